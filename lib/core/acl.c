/*
 * POSIX ACLs: the xattr format that getxattr/setxattr speak (version 2,
 * every entry with an id) and ext4's compact on-disk format (version 1,
 * ids only on named user/group entries), their validation, and the mode
 * rules the kernel applies when an ACL is set, inherited at create time or
 * rewritten by chmod. Values reach the disk through xattr.c's raw helpers.
 */
#include <stdlib.h>
#include <string.h>

#include "core/acl.h"

#define ACL_XATTR_VERSION 2
#define ACL_DISK_VERSION  1

#define ACL_TAG_USER_OBJ  0x01
#define ACL_TAG_USER      0x02
#define ACL_TAG_GROUP_OBJ 0x04
#define ACL_TAG_GROUP     0x08
#define ACL_TAG_MASK      0x10
#define ACL_TAG_OTHER     0x20

#define ACL_PERM_RWX 07u
/* What getxattr reports as the id of entries that have none. */
#define ACL_NO_ID    0xffffffffu
#define MODE_PERMS   0777u

/* Byte sizes of headers and entries in the two encodings. */
#define ACL_XATTR_HDR   4
#define ACL_XATTR_ENTRY 8
#define ACL_DISK_HDR    4
#define ACL_DISK_SHORT  4
#define ACL_DISK_LONG   8

struct acl_entry {
	uint16_t tag;
	uint16_t perm;
	uint32_t id;
};

struct acl {
	size_t count;
	struct acl_entry e[];
};

static uint16_t get16(const unsigned char *p)
{
	uint16_t v;

	memcpy(&v, p, sizeof(v));
	return ext2fs_le16_to_cpu(v);
}

static uint32_t get32(const unsigned char *p)
{
	uint32_t v;

	memcpy(&v, p, sizeof(v));
	return ext2fs_le32_to_cpu(v);
}

static void put16(unsigned char *p, uint16_t v)
{
	v = ext2fs_cpu_to_le16(v);
	memcpy(p, &v, sizeof(v));
}

static void put32(unsigned char *p, uint32_t v)
{
	v = ext2fs_cpu_to_le32(v);
	memcpy(p, &v, sizeof(v));
}

static const char *acl_name(enum fs_acl_type type)
{
	return type == FS_ACL_ACCESS ? FS_XATTR_ACL_ACCESS :
				       FS_XATTR_ACL_DEFAULT;
}

static int tag_has_id(uint16_t tag)
{
	return tag == ACL_TAG_USER || tag == ACL_TAG_GROUP;
}

static int tag_known(uint16_t tag)
{
	switch (tag) {
	case ACL_TAG_USER_OBJ:
	case ACL_TAG_USER:
	case ACL_TAG_GROUP_OBJ:
	case ACL_TAG_GROUP:
	case ACL_TAG_MASK:
	case ACL_TAG_OTHER:
		return 1;
	default:
		return 0;
	}
}

static struct acl *acl_alloc(size_t count)
{
	struct acl *acl;

	acl = malloc(sizeof(*acl) + count * sizeof(acl->e[0]));
	if (acl)
		acl->count = count;
	return acl;
}

static struct acl *acl_dup(const struct acl *src)
{
	struct acl *acl = acl_alloc(src->count);

	if (acl)
		memcpy(acl->e, src->e, src->count * sizeof(acl->e[0]));
	return acl;
}

/*
 * Parses a setxattr value. An empty value or a header without entries
 * means "no ACL" (*aclp NULL), as in the kernel. -EOPNOTSUPP for an
 * unknown version, -EINVAL for a malformed value.
 */
static int acl_from_xattr(const void *value, size_t size, struct acl **aclp)
{
	const unsigned char *p = value;
	struct acl *acl;
	size_t count, i;

	*aclp = NULL;
	if (size == 0)
		return 0;
	if (size < ACL_XATTR_HDR)
		return -EINVAL;
	if (get32(p) != ACL_XATTR_VERSION)
		return -EOPNOTSUPP;
	if ((size - ACL_XATTR_HDR) % ACL_XATTR_ENTRY)
		return -EINVAL;
	count = (size - ACL_XATTR_HDR) / ACL_XATTR_ENTRY;
	if (count == 0)
		return 0;
	acl = acl_alloc(count);
	if (!acl)
		return -ENOMEM;
	p += ACL_XATTR_HDR;
	for (i = 0; i < count; i++, p += ACL_XATTR_ENTRY) {
		struct acl_entry *e = &acl->e[i];

		e->tag = get16(p);
		e->perm = get16(p + 2);
		if (!tag_known(e->tag)) {
			free(acl);
			return -EINVAL;
		}
		e->id = tag_has_id(e->tag) ? get32(p + 4) : ACL_NO_ID;
	}
	*aclp = acl;
	return 0;
}

static size_t acl_xattr_size(const struct acl *acl)
{
	return ACL_XATTR_HDR + acl->count * ACL_XATTR_ENTRY;
}

/* Encodes acl for getxattr into buf (acl_xattr_size bytes). */
static void acl_to_xattr(const struct acl *acl, void *buf)
{
	unsigned char *p = buf;
	size_t i;

	put32(p, ACL_XATTR_VERSION);
	p += ACL_XATTR_HDR;
	for (i = 0; i < acl->count; i++, p += ACL_XATTR_ENTRY) {
		put16(p, acl->e[i].tag);
		put16(p + 2, acl->e[i].perm);
		put32(p + 4, acl->e[i].id);
	}
}

/*
 * posix_acl_valid: owner, named users, owning group, named groups, mask,
 * other, in that order; exactly one of each *_OBJ and OTHER, a mask
 * whenever there are named entries, only rwx bits. Named entries need a
 * real id. -EINVAL otherwise.
 */
static int acl_valid(const struct acl *acl)
{
	enum { ST_USER_OBJ, ST_USER, ST_GROUP, ST_OTHER, ST_DONE } state;
	int needs_mask = 0;
	size_t i;

	state = ST_USER_OBJ;
	for (i = 0; i < acl->count; i++) {
		const struct acl_entry *e = &acl->e[i];

		if (e->perm & ~ACL_PERM_RWX)
			return -EINVAL;
		switch (e->tag) {
		case ACL_TAG_USER_OBJ:
			if (state != ST_USER_OBJ)
				return -EINVAL;
			state = ST_USER;
			break;
		case ACL_TAG_USER:
			if (state != ST_USER || e->id == ACL_NO_ID)
				return -EINVAL;
			needs_mask = 1;
			break;
		case ACL_TAG_GROUP_OBJ:
			if (state != ST_USER)
				return -EINVAL;
			state = ST_GROUP;
			break;
		case ACL_TAG_GROUP:
			if (state != ST_GROUP || e->id == ACL_NO_ID)
				return -EINVAL;
			needs_mask = 1;
			break;
		case ACL_TAG_MASK:
			if (state != ST_GROUP)
				return -EINVAL;
			state = ST_OTHER;
			break;
		case ACL_TAG_OTHER:
			if (state != ST_OTHER &&
			    (state != ST_GROUP || needs_mask))
				return -EINVAL;
			state = ST_DONE;
			break;
		default:
			return -EINVAL;
		}
	}
	return state == ST_DONE ? 0 : -EINVAL;
}

/*
 * A named entry's id between the disk and the kernel (-o uid=/gid=: the
 * swap is its own inverse, so one function serves both ways).
 */
static uint32_t map_id(struct fs *fs, uint16_t tag, uint32_t id)
{
	if (tag == ACL_TAG_USER)
		return fs_map_uid(fs, id);
	return fs_map_gid(fs, id);
}

/*
 * Parses a stored ACL, checking every length against the value holding
 * it. An ACL without entries is "no ACL" (*aclp NULL); a malformed one is
 * corruption.
 */
static int acl_from_disk(struct fs *fs, ext2_ino_t ino, const void *value,
			 size_t size, struct acl **aclp)
{
	const unsigned char *p = value;
	struct acl *acl;
	size_t off, count, i;

	*aclp = NULL;
	if (size < ACL_DISK_HDR || get32(p) != ACL_DISK_VERSION)
		return FS_CORRUPT(fs, ino, "bad ACL header");
	count = 0;
	for (off = ACL_DISK_HDR; off < size; count++) {
		uint16_t tag;

		if (size - off < ACL_DISK_SHORT)
			return FS_CORRUPT(fs, ino, "truncated ACL entry");
		tag = get16(p + off);
		if (!tag_known(tag))
			return FS_CORRUPT(fs, ino, "bad ACL tag");
		if (tag_has_id(tag)) {
			if (size - off < ACL_DISK_LONG)
				return FS_CORRUPT(fs, ino,
						  "truncated ACL entry");
			off += ACL_DISK_LONG;
		} else {
			off += ACL_DISK_SHORT;
		}
	}
	if (count == 0)
		return 0;
	acl = acl_alloc(count);
	if (!acl)
		return -ENOMEM;
	off = ACL_DISK_HDR;
	for (i = 0; i < count; i++) {
		struct acl_entry *e = &acl->e[i];

		e->tag = get16(p + off);
		e->perm = get16(p + off + 2);
		if (tag_has_id(e->tag)) {
			e->id = map_id(fs, e->tag, get32(p + off + 4));
			off += ACL_DISK_LONG;
		} else {
			e->id = ACL_NO_ID;
			off += ACL_DISK_SHORT;
		}
	}
	*aclp = acl;
	return 0;
}

/* Encodes acl in ext4's on-disk format into a malloc'ed buffer. */
static int acl_to_disk(struct fs *fs, const struct acl *acl, void **bufp,
		       size_t *sizep)
{
	unsigned char *buf, *p;
	size_t size = ACL_DISK_HDR;
	size_t i;

	for (i = 0; i < acl->count; i++)
		size += tag_has_id(acl->e[i].tag) ? ACL_DISK_LONG :
						    ACL_DISK_SHORT;
	buf = malloc(size);
	if (!buf)
		return -ENOMEM;
	put32(buf, ACL_DISK_VERSION);
	p = buf + ACL_DISK_HDR;
	for (i = 0; i < acl->count; i++) {
		put16(p, acl->e[i].tag);
		put16(p + 2, acl->e[i].perm);
		if (tag_has_id(acl->e[i].tag)) {
			put32(p + 4, map_id(fs, acl->e[i].tag, acl->e[i].id));
			p += ACL_DISK_LONG;
		} else {
			p += ACL_DISK_SHORT;
		}
	}
	*bufp = buf;
	*sizep = size;
	return 0;
}

/*
 * posix_acl_equiv_mode: puts the permission bits the ACL stands for into
 * *modep. Returns 1 if the ACL says more than those bits, 0 if it is
 * equivalent to them (and need not be stored).
 */
static int acl_equiv_mode(const struct acl *acl, mode_t *modep)
{
	mode_t mode = 0;
	int not_equiv = 0;
	size_t i;

	for (i = 0; i < acl->count; i++) {
		mode_t perm = acl->e[i].perm & ACL_PERM_RWX;

		switch (acl->e[i].tag) {
		case ACL_TAG_USER_OBJ:
			mode |= perm << 6;
			break;
		case ACL_TAG_GROUP_OBJ:
			mode |= perm << 3;
			break;
		case ACL_TAG_OTHER:
			mode |= perm;
			break;
		case ACL_TAG_MASK:
			/* The mask, not the owning group, sets group bits. */
			mode = (mode & ~(mode_t)S_IRWXG) | (perm << 3);
			not_equiv = 1;
			break;
		default:
			not_equiv = 1;
			break;
		}
	}
	*modep = (*modep & ~(mode_t)MODE_PERMS) | mode;
	return not_equiv;
}

/*
 * posix_acl_create_masq: a default ACL meets the mode asked for at
 * create time. Owner, other and the group class (mask, else owning group)
 * keep only what both allow, in the ACL and in *modep. Returns 1 if the
 * result needs an ACL, 0 if the mode says it all, -1 if the ACL has no
 * group class entry.
 */
static int acl_create_masq(struct acl *acl, mode_t *modep)
{
	struct acl_entry *group_obj = NULL, *mask = NULL, *cls;
	mode_t mode = *modep;
	int not_equiv = 0;
	size_t i;

	for (i = 0; i < acl->count; i++) {
		struct acl_entry *e = &acl->e[i];

		switch (e->tag) {
		case ACL_TAG_USER_OBJ:
			e->perm &= (mode >> 6) & ACL_PERM_RWX;
			mode &= ((mode_t)e->perm << 6) | ~(mode_t)S_IRWXU;
			break;
		case ACL_TAG_OTHER:
			e->perm &= mode & ACL_PERM_RWX;
			mode &= (mode_t)e->perm | ~(mode_t)S_IRWXO;
			break;
		case ACL_TAG_GROUP_OBJ:
			group_obj = e;
			break;
		case ACL_TAG_MASK:
			mask = e;
			not_equiv = 1;
			break;
		default:
			not_equiv = 1;
			break;
		}
	}
	cls = mask ? mask : group_obj;
	if (!cls)
		return -1;
	cls->perm &= (mode >> 3) & ACL_PERM_RWX;
	mode &= ((mode_t)cls->perm << 3) | ~(mode_t)S_IRWXG;
	*modep = (*modep & ~(mode_t)MODE_PERMS) | (mode & MODE_PERMS);
	return not_equiv;
}

/*
 * posix_acl_chmod: owner, group class (mask, else owning group) and other
 * take the new mode's bits; named entries stay. -1 without a group class.
 */
static int acl_chmod_masq(struct acl *acl, mode_t mode)
{
	struct acl_entry *group_obj = NULL, *mask = NULL, *cls;
	size_t i;

	for (i = 0; i < acl->count; i++) {
		struct acl_entry *e = &acl->e[i];

		switch (e->tag) {
		case ACL_TAG_USER_OBJ:
			e->perm = (mode >> 6) & ACL_PERM_RWX;
			break;
		case ACL_TAG_OTHER:
			e->perm = mode & ACL_PERM_RWX;
			break;
		case ACL_TAG_GROUP_OBJ:
			group_obj = e;
			break;
		case ACL_TAG_MASK:
			mask = e;
			break;
		default:
			break;
		}
	}
	cls = mask ? mask : group_obj;
	if (!cls)
		return -1;
	cls->perm = (mode >> 3) & ACL_PERM_RWX;
	return 0;
}

/* ino's stored ACL of `type`, parsed; *aclp NULL when there is none. */
static int acl_load(struct fs *fs, ext2_ino_t ino, enum fs_acl_type type,
		    struct acl **aclp)
{
	void *raw;
	size_t size;
	int ret;

	*aclp = NULL;
	ret = xattr_raw_get(fs, ino, acl_name(type), &raw, &size);
	if (ret == -ENODATA)
		return 0;
	if (ret)
		return ret;
	ret = acl_from_disk(fs, ino, raw, size, aclp);
	free(raw);
	return ret;
}

/*
 * Stores acl as ino's ACL of `type`; NULL removes it. Returns 1 if the
 * inode's attributes changed, 0 if there was nothing to remove, -errno.
 */
static int acl_store(struct fs *fs, ext2_ino_t ino, enum fs_acl_type type,
		     const struct acl *acl)
{
	void *buf;
	size_t size;
	int ret;

	if (!acl) {
		ret = xattr_raw_remove(fs, ino, acl_name(type));
		if (ret == -ENODATA)
			return 0;
		return ret ? ret : 1;
	}
	ret = acl_to_disk(fs, acl, &buf, &size);
	if (ret)
		return ret;
	ret = xattr_raw_set(fs, ino, acl_name(type), buf, size);
	free(buf);
	return ret ? ret : 1;
}

ssize_t acl_xattr_get(struct fs *fs, ext2_ino_t ino, enum fs_acl_type type,
		      void *value, size_t size)
{
	struct acl *acl;
	ssize_t ret;

	ret = acl_load(fs, ino, type, &acl);
	if (ret)
		return ret;
	if (!acl)
		return -ENODATA;
	ret = acl_xattr_size(acl);
	if (size && size < (size_t)ret)
		ret = -ERANGE;
	else if (size)
		acl_to_xattr(acl, value);
	free(acl);
	return ret;
}

int acl_xattr_set(struct fs *fs, ext2_ino_t ino, enum fs_acl_type type,
		  const void *value, size_t size, const struct fs_cred *cred)
{
	struct ext2_inode_large inode;
	struct acl *acl = NULL;
	int update_mode = 0;
	mode_t mode;
	int ret;

	ret = acl_from_xattr(value, size, &acl);
	if (ret)
		return ret;
	ret = fsi_read(fs, ino, &inode);
	if (ret)
		goto out;
	/* Removing a default ACL from a non-directory "succeeds". */
	if (type == FS_ACL_DEFAULT && !LINUX_S_ISDIR(inode.i_mode)) {
		ret = acl ? -EACCES : 0;
		goto out;
	}
	if (cred && cred->uid != 0 &&
	    cred->uid != fs_map_uid(fs, inode_uid(inode))) {
		ret = -EPERM;
		goto out;
	}
	if (acl) {
		ret = acl_valid(acl);
		if (ret)
			goto out;
	}
	mode = inode.i_mode;
	if (type == FS_ACL_ACCESS && acl) {
		update_mode = 1;
		if (!acl_equiv_mode(acl, &mode)) {
			free(acl);
			acl = NULL;
		}
		/*
		 * posix_acl_update_mode: setgid goes unless the caller is in
		 * the file's group. Only the primary group is known here.
		 */
		if (cred && cred->uid != 0 &&
		    cred->gid != fs_map_gid(fs, inode_gid(inode)))
			mode &= ~(mode_t)S_ISGID;
	}
	ret = acl_store(fs, ino, type, acl);
	if (ret < 0)
		goto out;
	if (ret == 0 && !update_mode)
		goto out;
	/* libext2fs rewrote the inode: start from what it wrote. */
	ret = fsi_read(fs, ino, &inode);
	if (ret)
		goto out;
	if (update_mode)
		inode.i_mode = mode;
	fsi_touch(&inode, FSI_TOUCH_CTIME);
	ret = fsi_write(fs, ino, &inode);
out:
	free(acl);
	return ret;
}

int acl_inherit(struct fs *fs, ext2_ino_t dir, ext2_ino_t ino,
		const struct fs_cred *cred)
{
	struct ext2_inode_large inode;
	struct acl *dacl = NULL, *acl = NULL;
	mode_t mode;
	int ret;

	ret = fsi_read(fs, ino, &inode);
	if (ret)
		return ret;
	/* Symlinks get neither an ACL nor the umask. */
	if (LINUX_S_ISLNK(inode.i_mode))
		return 0;
	mode = inode.i_mode;
	ret = acl_load(fs, dir, FS_ACL_DEFAULT, &dacl);
	if (ret)
		goto out;
	if (!dacl) {
		if (cred)
			mode &= ~((mode_t)cred->umask & MODE_PERMS);
		goto write;
	}

	acl = acl_dup(dacl);
	if (!acl) {
		ret = -ENOMEM;
		goto out;
	}
	ret = acl_create_masq(acl, &mode);
	if (ret < 0) {
		ret = FS_CORRUPT(fs, dir, "default ACL without group entry");
		goto out;
	}
	if (ret) {
		ret = acl_store(fs, ino, FS_ACL_ACCESS, acl);
		if (ret < 0)
			goto out;
	}
	if (LINUX_S_ISDIR(mode)) {
		ret = acl_store(fs, ino, FS_ACL_DEFAULT, dacl);
		if (ret < 0)
			goto out;
	}
	/* The stores rewrote the inode (xattr block, i_blocks). */
	ret = fsi_read(fs, ino, &inode);
	if (ret)
		goto out;
write:
	ret = 0;
	if (inode.i_mode != mode) {
		inode.i_mode = mode;
		ret = fsi_write(fs, ino, &inode);
	}
out:
	free(dacl);
	free(acl);
	return ret;
}

int acl_chmod(struct fs *fs, ext2_ino_t ino, mode_t mode)
{
	struct acl *acl;
	int ret;

	ret = acl_load(fs, ino, FS_ACL_ACCESS, &acl);
	if (ret || !acl)
		return ret;
	if (acl_chmod_masq(acl, mode) < 0)
		ret = FS_CORRUPT(fs, ino, "access ACL without group entry");
	else
		ret = acl_store(fs, ino, FS_ACL_ACCESS, acl);
	free(acl);
	return ret < 0 ? ret : 0;
}
