/*
 * Extended attributes: the namespaces ext4 serves (user., trusted.,
 * security. and the two POSIX ACL names), their get/set/list/remove on top
 * of libext2fs' xattr handle, and raw access for the ACL code. Handles are
 * always opened raw so that libext2fs never translates ACLs itself: acl.c
 * does that, with validation libext2fs lacks.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/xattr.h>

#include "core/acl.h"

/* The VFS limits (linux/limits.h): longer names are ERANGE, values E2BIG. */
#define FS_XATTR_NAME_MAX 255
#define FS_XATTR_SIZE_MAX 65536
#define FS_XATTR_LIST_MAX 65536

enum xattr_kind {
	XK_PLAIN,	/* user., trusted., security.: stored as given */
	XK_ACL_ACCESS,
	XK_ACL_DEFAULT,
};

static const char *const plain_prefixes[] = {
	"user.", "trusted.", "security."
};

/*
 * Which kind of attribute `name` is, or -errno the way the kernel answers
 * names ext4 has no handler for.
 */
static int xattr_kind(const char *name)
{
	size_t len = strlen(name);
	size_t i;

	if (len == 0 || len > FS_XATTR_NAME_MAX)
		return -ERANGE;
	if (!strcmp(name, FS_XATTR_ACL_ACCESS))
		return XK_ACL_ACCESS;
	if (!strcmp(name, FS_XATTR_ACL_DEFAULT))
		return XK_ACL_DEFAULT;
	for (i = 0; i < sizeof(plain_prefixes) / sizeof(plain_prefixes[0]);
	     i++) {
		size_t plen = strlen(plain_prefixes[i]);

		if (strncmp(name, plain_prefixes[i], plen))
			continue;
		return len == plen ? -EINVAL : XK_PLAIN;
	}
	return -EOPNOTSUPP;
}

/*
 * Opens and reads ino's attributes. *hp stays NULL (and 0 is returned)
 * when the filesystem has no xattr support: nothing can be stored then.
 */
static int xh_open(struct fs *fs, ext2_ino_t ino, struct ext2_xattr_handle **hp)
{
	unsigned int raw = XATTR_HANDLE_FLAG_RAW;
	struct ext2_xattr_handle *h;
	errcode_t err;

	*hp = NULL;
	if (!ext2fs_has_feature_xattr(fs->e2->super) &&
	    !ext2fs_has_feature_inline_data(fs->e2->super))
		return 0;
	err = ext2fs_xattrs_open(fs->e2, ino, &h);
	if (err)
		return FS_ERR(fs, err, ino);
	ext2fs_xattrs_flags(h, &raw, NULL);
	err = ext2fs_xattrs_read(h);
	if (err) {
		ext2fs_xattrs_close(&h);
		return FS_ERR(fs, err, ino);
	}
	*hp = h;
	return 0;
}

/* As xh_open, but first turns the feature on, as ext4 does at first use. */
static int xh_open_write(struct fs *fs, ext2_ino_t ino,
			 struct ext2_xattr_handle **hp)
{
	if (!ext2fs_has_feature_xattr(fs->e2->super)) {
		ext2fs_set_feature_xattr(fs->e2->super);
		ext2fs_mark_super_dirty(fs->e2);
	}
	return xh_open(fs, ino, hp);
}

static void xh_close(struct ext2_xattr_handle *h)
{
	if (h)
		ext2fs_xattrs_close(&h);
}

struct xfind {
	const char *name;
	const char *value; /* points into the handle: valid while it is open */
	size_t size;
	int found;
};

static int xfind_cb(char *name, char *value, size_t size, void *data)
{
	struct xfind *f = data;

	if (strcmp(name, f->name))
		return 0;
	f->value = value;
	f->size = size;
	f->found = 1;
	return XATTR_ABORT;
}

/* Looks name up in an open handle (NULL: no attributes). */
static int xh_find(struct ext2_xattr_handle *h, const char *name,
		   struct xfind *f)
{
	memset(f, 0, sizeof(*f));
	f->name = name;
	if (!h)
		return 0;
	/* Iterating without changes never writes: it cannot fail here. */
	ext2fs_xattrs_iterate(h, xfind_cb, f);
	return f->found;
}

/* Adds the blocks charged for EA-inode values among the entries at start. */
static int charge_entries(struct fs *fs, ext2_ino_t ino, const char *start,
			  size_t size, blk64_t *blocks)
{
	uint64_t csize = (uint64_t)fs->e2->blocksize
			 << fs->e2->cluster_ratio_bits;
	size_t off = 0;

	while (size - off >= sizeof(__u32)) {
		const struct ext2_ext_attr_entry *e;

		e = (const void *)(start + off);

		if (EXT2_EXT_IS_LAST_ENTRY(e))
			return 0;
		if (size - off < sizeof(*e) ||
		    size - off < EXT2_EXT_ATTR_LEN(e->e_name_len))
			return FS_CORRUPT(fs, ino, "xattr entry past its area");
		if (e->e_value_inum)
			*blocks += EXT2FS_C2B(fs->e2,
					      (e->e_value_size + csize - 1) /
						      csize);
		off += EXT2_EXT_ATTR_LEN(e->e_name_len);
	}
	return 0;
}

/*
 * Blocks charged to ino for attribute values kept in EA inodes. ext4
 * counts them in the owner's i_blocks and e2fsck checks that; libext2fs
 * leaves i_blocks alone, so the core corrects it around every change.
 */
static int ea_charge(struct fs *fs, ext2_ino_t ino, blk64_t *blocks)
{
	ext2_filsys e2 = fs->e2;
	unsigned isize = EXT2_INODE_SIZE(e2->super);
	struct ext2_inode_large *inode;
	size_t ibody = EXT2_GOOD_OLD_INODE_SIZE + sizeof(__u32);
	char *buf;
	blk64_t blk;
	__u32 magic;
	errcode_t err;
	int ret;

	*blocks = 0;
	buf = malloc(isize > e2->blocksize ? isize : e2->blocksize);
	if (!buf)
		return -ENOMEM;
	inode = (struct ext2_inode_large *)buf;
	err = ext2fs_read_inode_full(e2, ino, (struct ext2_inode *)inode,
				     isize);
	if (err) {
		ret = FS_ERR(fs, err, ino);
		goto out;
	}
	ret = 0;
	/* The in-inode area, under the same conditions libext2fs uses. */
	if (isize > EXT2_GOOD_OLD_INODE_SIZE &&
	    inode->i_extra_isize >= sizeof(inode->i_extra_isize) &&
	    !(inode->i_extra_isize & 3) &&
	    isize > ibody + inode->i_extra_isize) {
		ibody += inode->i_extra_isize;
		memcpy(&magic, buf + ibody - sizeof(magic), sizeof(magic));
		if (magic == EXT2_EXT_ATTR_MAGIC)
			ret = charge_entries(fs, ino, buf + ibody,
					     isize - ibody, blocks);
		if (ret)
			goto out;
	}
	blk = ext2fs_file_acl_block(e2, (struct ext2_inode *)inode);
	if (!blk)
		goto out;
	if (blk < e2->super->s_first_data_block ||
	    blk >= ext2fs_blocks_count(e2->super)) {
		ret = FS_CORRUPT(fs, ino, "xattr block out of range");
		goto out;
	}
	err = ext2fs_read_ext_attr3(e2, blk, buf, ino);
	if (err) {
		ret = FS_ERR(fs, err, ino);
		goto out;
	}
	ret = charge_entries(fs, ino, buf + sizeof(struct ext2_ext_attr_header),
			     e2->blocksize -
				     sizeof(struct ext2_ext_attr_header),
			     blocks);
out:
	free(buf);
	return ret;
}

/*
 * Sets (value given) or removes (value NULL) name through an open
 * handle, keeping i_blocks right for values that live in EA inodes.
 */
static int xh_change(struct fs *fs, ext2_ino_t ino,
		     struct ext2_xattr_handle *h, const char *name,
		     const void *value, size_t size)
{
	int ea_inode = ext2fs_has_feature_ea_inode(fs->e2->super);
	struct ext2_inode_large inode;
	struct ext2_inode *small = (struct ext2_inode *)&inode;
	blk64_t before = 0, after = 0;
	errcode_t err;
	int ret;

	if (ea_inode) {
		ret = ea_charge(fs, ino, &before);
		if (ret)
			return ret;
	}
	if (value)
		err = ext2fs_xattr_set(h, name, value, size);
	else
		err = ext2fs_xattr_remove(h, name);
	if (err)
		return FS_ERR(fs, err, ino);
	if (!ea_inode)
		return 0;
	ret = ea_charge(fs, ino, &after);
	if (ret || after == before)
		return ret;
	ret = fsi_read(fs, ino, &inode);
	if (ret)
		return ret;
	if (after > before)
		err = ext2fs_iblk_add_blocks(fs->e2, small, after - before);
	else
		err = ext2fs_iblk_sub_blocks(fs->e2, small, before - after);
	if (err)
		return FS_ERR(fs, err, ino);
	return fsi_write(fs, ino, &inode);
}

int xattr_raw_get(struct fs *fs, ext2_ino_t ino, const char *name,
		  void **value, size_t *size)
{
	struct ext2_xattr_handle *h;
	struct xfind f;
	int ret;

	*value = NULL;
	*size = 0;
	ret = xh_open(fs, ino, &h);
	if (ret)
		return ret;
	if (!xh_find(h, name, &f)) {
		ret = -ENODATA;
		goto out;
	}
	/* One spare byte: malloc(0) may return NULL. */
	*value = malloc(f.size + 1);
	if (!*value) {
		ret = -ENOMEM;
		goto out;
	}
	memcpy(*value, f.value, f.size);
	*size = f.size;
out:
	xh_close(h);
	return ret;
}

int xattr_raw_set(struct fs *fs, ext2_ino_t ino, const char *name,
		  const void *value, size_t size)
{
	struct ext2_xattr_handle *h;
	int ret;

	ret = xh_open_write(fs, ino, &h);
	if (ret)
		return ret;
	if (!h)
		return -EOPNOTSUPP;
	ret = xh_change(fs, ino, h, name, value, size);
	xh_close(h);
	return ret;
}

int xattr_raw_remove(struct fs *fs, ext2_ino_t ino, const char *name)
{
	struct ext2_xattr_handle *h;
	struct xfind f;
	int ret;

	ret = xh_open(fs, ino, &h);
	if (ret)
		return ret;
	if (!xh_find(h, name, &f))
		ret = -ENODATA;
	else
		ret = xh_change(fs, ino, h, name, NULL, 0);
	xh_close(h);
	return ret;
}

static int xfirst_cb(char *name, char *value, size_t size, void *data)
{
	(void)value;
	(void)size;
	*(char **)data = strdup(name);
	return XATTR_ABORT;
}

int xattr_release(struct fs *fs, ext2_ino_t ino)
{
	struct ext2_xattr_handle *h;
	blk64_t blocks;
	size_t count;
	char *name;
	int ret;

	if (!ext2fs_has_feature_ea_inode(fs->e2->super))
		return 0;
	ret = ea_charge(fs, ino, &blocks);
	if (ret || !blocks)
		return ret;
	ret = xh_open(fs, ino, &h);
	if (ret || !h)
		return ret;
	/* Removing every attribute drops each EA inode's reference. */
	while (!ext2fs_xattrs_count(h, &count) && count) {
		size_t left;

		name = NULL;
		ext2fs_xattrs_iterate(h, xfirst_cb, &name);
		if (!name) {
			ret = -ENOMEM;
			break;
		}
		ret = xh_change(fs, ino, h, name, NULL, 0);
		free(name);
		if (!ret && (ext2fs_xattrs_count(h, &left) || left >= count))
			ret = FS_CORRUPT(fs, ino, "xattr cannot be removed");
		if (ret)
			break;
	}
	xh_close(h);
	return ret;
}

/* Stamps ctime after a change; libext2fs wrote the inode already. */
static int touch_ctime(struct fs *fs, ext2_ino_t ino)
{
	struct ext2_inode_large inode;
	int ret;

	ret = fsi_read(fs, ino, &inode);
	if (ret)
		return ret;
	fsi_touch(&inode, FSI_TOUCH_CTIME);
	return fsi_write(fs, ino, &inode);
}

static int is_acl(int kind)
{
	return kind == XK_ACL_ACCESS || kind == XK_ACL_DEFAULT;
}

static enum fs_acl_type acl_type(int kind)
{
	return kind == XK_ACL_ACCESS ? FS_ACL_ACCESS : FS_ACL_DEFAULT;
}

/* Symlinks have no ACLs in ext4: not even a way to ask for one. */
static int kind_fits(int kind, const struct ext2_inode_large *inode)
{
	if (is_acl(kind) && LINUX_S_ISLNK(inode->i_mode))
		return -EOPNOTSUPP;
	return 0;
}

/* Checks shared by set and remove: writable fs, inode not locked. */
static int may_modify(struct fs *fs, ext2_ino_t ino, int kind)
{
	struct ext2_inode_large inode;
	int ret;

	ret = fs_writable(fs);
	if (ret)
		return ret;
	ret = fsi_read(fs, ino, &inode);
	if (ret)
		return ret;
	if (inode.i_flags & (EXT2_IMMUTABLE_FL | EXT2_APPEND_FL))
		return -EPERM;
	return kind_fits(kind, &inode);
}

ssize_t xattr_get(struct fs *fs, ext2_ino_t ino, const char *name,
		  void *value, size_t size)
{
	struct ext2_xattr_handle *h = NULL;
	struct ext2_inode_large inode;
	struct xfind f;
	ssize_t ret;
	int kind;

	fs_lock(fs);
	kind = xattr_kind(name);
	if (kind < 0) {
		ret = kind;
		goto out;
	}
	ret = fsi_read(fs, ino, &inode);
	if (!ret)
		ret = kind_fits(kind, &inode);
	if (ret)
		goto out;
	if (is_acl(kind)) {
		ret = acl_xattr_get(fs, ino, acl_type(kind), value, size);
		goto out;
	}
	ret = xh_open(fs, ino, &h);
	if (ret)
		goto out;
	if (!xh_find(h, name, &f)) {
		ret = -ENODATA;
		goto out;
	}
	ret = f.size;
	if (size == 0)
		goto out;
	if (size < f.size) {
		ret = -ERANGE;
		goto out;
	}
	memcpy(value, f.value, f.size);
out:
	xh_close(h);
	fs_unlock(fs);
	return ret;
}

int xattr_set(struct fs *fs, ext2_ino_t ino, const char *name,
	      const void *value, size_t size, int flags,
	      const struct fs_cred *cred)
{
	struct ext2_xattr_handle *h = NULL;
	struct xfind f;
	int kind;
	int ret;

	fs_lock(fs);
	ret = fs_writable(fs);
	if (ret)
		goto out;
	if (flags & ~(XATTR_CREATE | XATTR_REPLACE)) {
		ret = -EINVAL;
		goto out;
	}
	kind = xattr_kind(name);
	if (kind < 0) {
		ret = kind;
		goto out;
	}
	if (size > FS_XATTR_SIZE_MAX) {
		ret = -E2BIG;
		goto out;
	}
	if (!value && size) {
		ret = -EFAULT;
		goto out;
	}
	ret = may_modify(fs, ino, kind);
	if (ret)
		goto out;
	if (is_acl(kind)) {
		/* As the kernel: ACLs ignore XATTR_CREATE / XATTR_REPLACE. */
		ret = acl_xattr_set(fs, ino, acl_type(kind),
				    value ? value : "", size, cred);
		goto out;
	}

	ret = xh_open_write(fs, ino, &h);
	if (ret)
		goto out;
	if (!h) {
		ret = -EOPNOTSUPP;
		goto out;
	}
	if (xh_find(h, name, &f)) {
		if (flags & XATTR_CREATE) {
			ret = -EEXIST;
			goto out;
		}
	} else if (flags & XATTR_REPLACE) {
		ret = -ENODATA;
		goto out;
	}
	ret = xh_change(fs, ino, h, name, value ? value : "", size);
	if (ret)
		goto out;
	ret = touch_ctime(fs, ino);
out:
	xh_close(h);
	fs_unlock(fs);
	return ret;
}

struct xlist {
	char *buf;
	size_t size;
	size_t used;
};

static int xlist_cb(char *name, char *value, size_t vsize, void *data)
{
	struct xlist *l = data;
	size_t len = strlen(name);

	(void)value;
	(void)vsize;
	/*
	 * Only what getxattr would serve: this hides inline data's
	 * system.data and names of namespaces ext4 does not export.
	 */
	if (xattr_kind(name) < 0)
		return 0;
	if (l->buf && l->used + len + 1 <= l->size)
		memcpy(l->buf + l->used, name, len + 1);
	l->used += len + 1;
	return 0;
}

ssize_t xattr_list(struct fs *fs, ext2_ino_t ino, char *list, size_t size)
{
	struct ext2_xattr_handle *h = NULL;
	struct ext2_inode_large inode;
	struct xlist l = { .buf = size ? list : NULL, .size = size };
	ssize_t ret;

	fs_lock(fs);
	ret = fsi_read(fs, ino, &inode);
	if (ret)
		goto out;
	ret = xh_open(fs, ino, &h);
	if (ret)
		goto out;
	if (h)
		ext2fs_xattrs_iterate(h, xlist_cb, &l);
	if (l.used > FS_XATTR_LIST_MAX)
		ret = -E2BIG;
	else if (size && l.used > size)
		ret = -ERANGE;
	else
		ret = l.used;
out:
	xh_close(h);
	fs_unlock(fs);
	return ret;
}

int xattr_remove(struct fs *fs, ext2_ino_t ino, const char *name)
{
	int kind;
	int ret;

	fs_lock(fs);
	kind = xattr_kind(name);
	if (kind < 0) {
		ret = kind;
		goto out;
	}
	ret = may_modify(fs, ino, kind);
	if (ret)
		goto out;
	if (is_acl(kind)) {
		ret = acl_xattr_set(fs, ino, acl_type(kind), NULL, 0, NULL);
		goto out;
	}
	ret = xattr_raw_remove(fs, ino, name);
	if (ret)
		goto out;
	ret = touch_ctime(fs, ino);
out:
	fs_unlock(fs);
	return ret;
}
