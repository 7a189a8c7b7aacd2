/*
 * Unit tests of xattr.c and acl.c: the four xattr calls in every
 * namespace, values in the inode, in the block and in an EA inode, the
 * CREATE/REPLACE flags, POSIX ACLs (format, validation, mode updates,
 * inheritance, chmod), damaged values, and the kernel's ext4 reading what
 * we wrote and the other way round (loop mount; skipped if unavailable).
 */
#include <fcntl.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/xattr.h>

#include "unit.h"
#include "core/acl.h"

#define ACL_ACCESS  FS_XATTR_ACL_ACCESS
#define ACL_DEFAULT FS_XATTR_ACL_DEFAULT

#define T_USER_OBJ  0x01
#define T_USER      0x02
#define T_GROUP_OBJ 0x04
#define T_GROUP     0x08
#define T_MASK      0x10
#define T_OTHER     0x20
#define NO_ID       0xffffffffu

#define SET_ACL(fs, ino, acl, len) \
	xattr_set((fs), (ino), ACL_ACCESS, (acl), (len), 0, NULL)

struct ent {
	uint16_t tag, perm;
	uint32_t id;
};

/* Builds an ACL in the xattr format (little-endian, as on x86). */
static size_t mkacl(unsigned char *buf, uint32_t version, const struct ent *e,
		    size_t n)
{
	size_t i;

	memcpy(buf, &version, 4);
	for (i = 0; i < n; i++) {
		memcpy(buf + 4 + 8 * i, &e[i].tag, 2);
		memcpy(buf + 6 + 8 * i, &e[i].perm, 2);
		memcpy(buf + 8 + 8 * i, &e[i].id, 4);
	}
	return 4 + 8 * n;
}

/*
 * mkacl() of a version 2 ACL whose entries are written in place and
 * counted by the compiler: MKACL(buf, { tag, perm, id }, ...).
 */
#define MKACL(buf, ...)                                                   \
	mkacl((buf), 2, (const struct ent[]){ __VA_ARGS__ },              \
	      sizeof((const struct ent[]){ __VA_ARGS__ }) / sizeof(struct ent))

static void hex(const void *buf, size_t len, char *out)
{
	const unsigned char *p = buf;
	size_t i;

	for (i = 0; i < len; i++)
		sprintf(out + 2 * i, "%02x", p[i]);
	out[2 * len] = 0;
}

/* The xattr `name` of ino must be want[0..len) (len < 256). */
static void check_value(struct fs *fs, ext2_ino_t ino, const char *name,
			const void *want, size_t len)
{
	unsigned char out[256];

	CHECK_EQ(xattr_get(fs, ino, name, out, sizeof(out)), len);
	CHECK(!memcmp(out, want, len));
}

static ext2_ino_t lookup(struct fs *fs, ext2_ino_t dir, const char *name)
{
	ext2_ino_t ino = 0;

	fs_lock(fs);
	if (ext2fs_lookup(fs->e2, dir, name, strlen(name), NULL, &ino))
		ino = 0;
	fs_unlock(fs);
	return ino;
}

/*
 * Creates `name` in dir as namei would: the inode written with the
 * requested mode, linked, then acl_inherit. Directories come from
 * ext2fs_mkdir and get their requested mode before acl_inherit.
 */
static ext2_ino_t create(struct fs *fs, ext2_ino_t dir, const char *name,
			 mode_t mode, const struct fs_cred *cred)
{
	struct ext2_inode_large inode;
	ext2_ino_t ino = 0;
	errcode_t err;
	int ret = 0;

	fs_lock(fs);
	if (S_ISDIR(mode)) {
		err = ext2fs_mkdir(fs->e2, dir, 0, name);
		if (!err)
			err = ext2fs_lookup(fs->e2, dir, name, strlen(name),
					    NULL, &ino);
		if (!err)
			ret = fsi_read(fs, ino, &inode);
		if (!err && !ret) {
			inode.i_mode = mode;
			ret = fsi_write(fs, ino, &inode);
		}
	} else {
		ret = fsi_new(fs, dir, mode, cred, &ino, &inode);
		if (!ret && S_ISLNK(mode)) {
			/* A fast symlink to "target". */
			memcpy(inode.i_block, "target", 6);
			inode.i_size = 6;
		}
		if (!ret)
			ret = fsi_write(fs, ino, &inode);
		err = ret ? 0 : ext2fs_link(fs->e2, dir, name, ino,
					   S_ISLNK(mode) ? EXT2_FT_SYMLINK :
							   EXT2_FT_REG_FILE);
	}
	if (!err && !ret)
		ret = acl_inherit(fs, dir, ino, cred);
	fs_unlock(fs);
	if (err || ret) {
		printf("FAIL create %s: %ld %d\n", name, (long)err, ret);
		unit_failures++;
		return 0;
	}
	return ino;
}

static mode_t imode(struct fs *fs, ext2_ino_t ino)
{
	struct ext2_inode_large inode;

	fs_lock(fs);
	memset(&inode, 0, sizeof(inode));
	fsi_read(fs, ino, &inode);
	fs_unlock(fs);
	return inode.i_mode;
}

/* Sets the immutable/append-only flags to `flags`, keeping the others. */
static void set_iflags(struct fs *fs, ext2_ino_t ino, uint32_t flags)
{
	const uint32_t lock = EXT2_IMMUTABLE_FL | EXT2_APPEND_FL;
	struct ext2_inode_large inode;

	fs_lock(fs);
	if (!fsi_read(fs, ino, &inode)) {
		inode.i_flags = (inode.i_flags & ~lock) | flags;
		fsi_write(fs, ino, &inode);
	}
	fs_unlock(fs);
}

static int has_name(const char *list, ssize_t len, const char *name)
{
	ssize_t off = 0;

	while (off < len) {
		if (!strcmp(list + off, name))
			return 1;
		off += strlen(list + off) + 1;
	}
	return 0;
}

/* The core's getxattr of name, as hex ("" if absent). */
static void core_hex(struct fs *fs, ext2_ino_t ino, const char *name,
		     char *out)
{
	static unsigned char buf[65536];
	ssize_t n = xattr_get(fs, ino, name, buf, sizeof(buf));

	if (n < 0)
		out[0] = 0;
	else
		hex(buf, n, out);
}

/* The kernel's getxattr of name on path, as hex ("" if absent). */
static void kernel_hex(const char *path, const char *name, char *out)
{
	char cmd[1024], *line = NULL;
	size_t nlen = strlen(name), cap = 0;
	FILE *f;

	out[0] = 0;
	snprintf(cmd, sizeof(cmd),
		 "getfattr --absolute-names -e hex -n '%s' '%s' 2>/dev/null",
		 name, path);
	f = popen(cmd, "r");
	if (!f)
		return;
	while (getline(&line, &cap, f) > 0) {
		if (!strncmp(line, name, nlen) &&
		    !strncmp(line + nlen, "=0x", 3)) {
			strcpy(out, line + nlen + 3);
			out[strcspn(out, "\n")] = 0;
		}
	}
	free(line);
	pclose(f);
}

static void test_namespaces(struct fs *fs, ext2_ino_t f)
{
	char big[300], buf[256];

	CHECK_EQ(xattr_set(fs, f, "user.a", "1", 1, 0, NULL), 0);
	CHECK_EQ(xattr_set(fs, f, "trusted.t", "tt", 2, 0, NULL), 0);
	CHECK_EQ(xattr_set(fs, f, "security.s", "sss", 3, 0, NULL), 0);
	CHECK_EQ(xattr_set(fs, f, "user.empty", NULL, 0, 0, NULL), 0);
	CHECK_EQ(xattr_get(fs, f, "user.a", NULL, 0), 1);
	CHECK_EQ(xattr_get(fs, f, "trusted.t", buf, sizeof(buf)), 2);
	CHECK(!memcmp(buf, "tt", 2));
	CHECK_EQ(xattr_get(fs, f, "security.s", buf, sizeof(buf)), 3);
	CHECK(!memcmp(buf, "sss", 3));
	CHECK_EQ(xattr_get(fs, f, "security.s", buf, 2), -ERANGE);
	CHECK_EQ(xattr_get(fs, f, "user.empty", buf, sizeof(buf)), 0);
	CHECK_EQ(xattr_get(fs, f, "user.missing", buf, sizeof(buf)), -ENODATA);

	/* Names ext4 has no handler for, as the kernel answers them. */
	CHECK_EQ(xattr_set(fs, f, "foo.bar", "x", 1, 0, NULL), -EOPNOTSUPP);
	CHECK_EQ(xattr_set(fs, f, "system.data", "x", 1, 0, NULL), -EOPNOTSUPP);
	CHECK_EQ(xattr_get(fs, f, "system.data", buf, sizeof(buf)),
		 -EOPNOTSUPP);
	CHECK_EQ(xattr_get(fs, f, "system.posix_acl_accessx", buf, 10),
		 -EOPNOTSUPP);
	CHECK_EQ(xattr_set(fs, f, "user.", "x", 1, 0, NULL), -EINVAL);
	CHECK_EQ(xattr_set(fs, f, "", "x", 1, 0, NULL), -ERANGE);
	memset(big, 'n', sizeof(big));
	memcpy(big, "user.", 5);
	big[256] = 0;
	CHECK_EQ(xattr_set(fs, f, big, "x", 1, 0, NULL), -ERANGE);
	CHECK_EQ(xattr_get(fs, f, big, buf, sizeof(buf)), -ERANGE);
	big[255] = 0;
	CHECK_EQ(xattr_set(fs, f, big, "x", 1, 0, NULL), 0);
	CHECK_EQ(xattr_get(fs, f, big, buf, sizeof(buf)), 1);
	CHECK_EQ(xattr_remove(fs, f, big), 0);
	CHECK_EQ(xattr_set(fs, f, "user.a", "x", 1, 0x40, NULL), -EINVAL);

	/* CREATE / REPLACE. */
	CHECK_EQ(xattr_set(fs, f, "user.a", "2", 1, XATTR_CREATE, NULL),
		 -EEXIST);
	CHECK_EQ(xattr_set(fs, f, "user.new", "2", 1, XATTR_REPLACE, NULL),
		 -ENODATA);
	CHECK_EQ(xattr_set(fs, f, "user.a", "22", 2, XATTR_REPLACE, NULL), 0);
	CHECK_EQ(xattr_get(fs, f, "user.a", buf, sizeof(buf)), 2);
	CHECK(!memcmp(buf, "22", 2));
	CHECK_EQ(xattr_set(fs, f, "user.new", "3", 1, XATTR_CREATE, NULL), 0);
	CHECK_EQ(xattr_get(fs, f, "user.new", buf, sizeof(buf)), 1);
}

static void test_list_remove(struct fs *fs, ext2_ino_t f)
{
	char list[1024];
	ssize_t need, n;

	need = xattr_list(fs, f, NULL, 0);
	CHECK(need > 0);
	n = xattr_list(fs, f, list, sizeof(list));
	CHECK_EQ(n, need);
	CHECK(has_name(list, n, "user.a"));
	CHECK(has_name(list, n, "trusted.t"));
	CHECK(has_name(list, n, "security.s"));
	CHECK(has_name(list, n, "user.empty"));
	CHECK(has_name(list, n, "user.new"));
	CHECK_EQ(xattr_list(fs, f, list, need - 1), -ERANGE);

	CHECK_EQ(xattr_remove(fs, f, "user.new"), 0);
	CHECK_EQ(xattr_get(fs, f, "user.new", NULL, 0), -ENODATA);
	CHECK_EQ(xattr_remove(fs, f, "user.new"), -ENODATA);
	CHECK_EQ(xattr_remove(fs, f, "bogus.x"), -EOPNOTSUPP);
	n = xattr_list(fs, f, list, sizeof(list));
	CHECK(n > 0 && !has_name(list, n, "user.new"));
	CHECK(has_name(list, n, "user.a"));
}

static void test_sizes(struct fs *fs, ext2_ino_t f, int ea_inode)
{
	static char val[70000], out[70000];
	size_t i;

	for (i = 0; i < sizeof(val); i++)
		val[i] = (char)(i * 7 + 3);
	/* Too big for the inode: goes to the EA block. */
	CHECK_EQ(xattr_set(fs, f, "user.block", val, 3000, 0, NULL), 0);
	CHECK_EQ(xattr_get(fs, f, "user.block", out, sizeof(out)), 3000);
	CHECK(!memcmp(out, val, 3000));
	CHECK_EQ(xattr_set(fs, f, "user.huge", val, 65537, 0, NULL), -E2BIG);
	if (!ea_inode) {
		CHECK_EQ(xattr_set(fs, f, "user.toobig", val, 5000, 0, NULL),
			 -ENOSPC);
		CHECK_EQ(xattr_get(fs, f, "user.toobig", NULL, 0), -ENODATA);
		CHECK_EQ(xattr_get(fs, f, "user.block", out, sizeof(out)),
			 3000);
		return;
	}
	CHECK_EQ(xattr_set(fs, f, "user.ea1", val, 60000, 0, NULL), 0);
	CHECK_EQ(xattr_set(fs, f, "user.ea2", val + 1, 65536, 0, NULL), 0);
	CHECK_EQ(xattr_get(fs, f, "user.ea1", out, sizeof(out)), 60000);
	CHECK(!memcmp(out, val, 60000));
	CHECK_EQ(xattr_get(fs, f, "user.ea2", out, sizeof(out)), 65536);
	CHECK(!memcmp(out, val + 1, 65536));
	CHECK_EQ(xattr_set(fs, f, "user.ea1", val + 5, 20000, 0, NULL), 0);
	CHECK_EQ(xattr_get(fs, f, "user.ea1", out, sizeof(out)), 20000);
	CHECK(!memcmp(out, val + 5, 20000));
}

static void test_many(struct fs *fs, ext2_ino_t f)
{
	char name[64], val[64], out[64];
	static char list[65536];
	int i, stored = 0, ok = 1, ret;
	ssize_t n;

	for (i = 0; i < 400; i++) {
		snprintf(name, sizeof(name), "user.many%03d", i);
		snprintf(val, sizeof(val), "value-%d", i * 31);
		ret = xattr_set(fs, f, name, val, strlen(val), 0, NULL);
		if (ret == -ENOSPC)
			break;
		if (ret) {
			ok = 0;
			break;
		}
		stored++;
	}
	CHECK(ok);
	CHECK(stored > 50);
	n = xattr_list(fs, f, list, sizeof(list));
	for (i = 0; i < stored; i++) {
		snprintf(name, sizeof(name), "user.many%03d", i);
		snprintf(val, sizeof(val), "value-%d", i * 31);
		if (!has_name(list, n, name) ||
		    xattr_get(fs, f, name, out, sizeof(out)) !=
			    (ssize_t)strlen(val) ||
		    memcmp(out, val, strlen(val)))
			ok = 0;
	}
	CHECK(ok);
	/* Remove every other one, the rest must stay intact. */
	for (i = 0; i < stored; i += 2) {
		snprintf(name, sizeof(name), "user.many%03d", i);
		if (xattr_remove(fs, f, name))
			ok = 0;
	}
	CHECK(ok);
	for (i = 0; i < stored; i++) {
		snprintf(name, sizeof(name), "user.many%03d", i);
		snprintf(val, sizeof(val), "value-%d", i * 31);
		n = xattr_get(fs, f, name, out, sizeof(out));
		if (i % 2 ? n != (ssize_t)strlen(val) || memcmp(out, val, n) :
			    n != -ENODATA)
			ok = 0;
	}
	CHECK(ok);
}

static void test_ctime_perm(struct fs *fs, ext2_ino_t f)
{
	struct ext2_inode_large inode;
	struct timespec old = { 1000000, 0 }, ts;

	fs_lock(fs);
	fsi_read(fs, f, &inode);
	fsi_set_time(&inode, FSI_CTIME, &old);
	fsi_write(fs, f, &inode);
	fs_unlock(fs);
	CHECK_EQ(xattr_set(fs, f, "user.c", "c", 1, 0, NULL), 0);
	fs_lock(fs);
	fsi_read(fs, f, &inode);
	fsi_get_time(&inode, FSI_CTIME, &ts);
	fsi_set_time(&inode, FSI_CTIME, &old);
	fsi_write(fs, f, &inode);
	fs_unlock(fs);
	CHECK(ts.tv_sec > old.tv_sec);
	CHECK_EQ(xattr_remove(fs, f, "user.c"), 0);
	fs_lock(fs);
	fsi_read(fs, f, &inode);
	fsi_get_time(&inode, FSI_CTIME, &ts);
	fs_unlock(fs);
	CHECK(ts.tv_sec > old.tv_sec);

	CHECK_EQ(xattr_set(fs, f, "user.a", "aa", 2, 0, NULL), 0);
	set_iflags(fs, f, EXT2_IMMUTABLE_FL);
	CHECK_EQ(xattr_set(fs, f, "user.i", "i", 1, 0, NULL), -EPERM);
	CHECK_EQ(xattr_remove(fs, f, "user.a"), -EPERM);
	CHECK_EQ(xattr_get(fs, f, "user.a", NULL, 0), 2);
	set_iflags(fs, f, EXT2_APPEND_FL);
	CHECK_EQ(xattr_set(fs, f, "user.i", "i", 1, 0, NULL), -EPERM);
	set_iflags(fs, f, 0);
	CHECK_EQ(xattr_set(fs, f, "user.i", "i", 1, 0, NULL), 0);
}

static const struct ent acl_named[] = {
	{ T_USER_OBJ, 7, NO_ID }, { T_USER, 6, 1000 },
	{ T_GROUP_OBJ, 5, NO_ID }, { T_GROUP, 1, 2000 },
	{ T_MASK, 7, NO_ID }, { T_OTHER, 4, NO_ID },
};

static void test_acl_set(struct fs *fs, ext2_ino_t f, ext2_ino_t d)
{
	struct fs_cred user = { 1000, 1000, 022 };
	unsigned char acl[256], out[256];
	void *raw;
	size_t len, rawlen;
	char list[512];
	ssize_t n;

	len = mkacl(acl, 2, acl_named, 6);
	CHECK_EQ(xattr_set(fs, f, ACL_ACCESS, acl, len, 0, NULL), 0);
	CHECK_EQ(imode(fs, f) & 07777, 0774);
	CHECK_EQ(xattr_get(fs, f, ACL_ACCESS, NULL, 0), len);
	CHECK_EQ(xattr_get(fs, f, ACL_ACCESS, out, len - 1), -ERANGE);
	check_value(fs, f, ACL_ACCESS, acl, len);
	n = xattr_list(fs, f, list, sizeof(list));
	CHECK(has_name(list, n, ACL_ACCESS));

	/* On disk: ext4's format, version 1, short entries without ids. */
	fs_lock(fs);
	CHECK_EQ(xattr_raw_get(fs, f, ACL_ACCESS, &raw, &rawlen), 0);
	fs_unlock(fs);
	CHECK_EQ(rawlen, 4 + 4 + 8 + 4 + 8 + 4 + 4);
	if (rawlen == 36) {
		static const unsigned char want[36] = {
			1, 0, 0, 0, 1, 0, 7, 0, 2, 0, 6, 0, 0xe8, 3, 0, 0,
			4, 0, 5, 0, 8, 0, 1, 0, 0xd0, 7, 0, 0, 0x10, 0, 7, 0,
			0x20, 0, 4, 0
		};
		CHECK(!memcmp(raw, want, 36));
	}
	free(raw);

	/* An ACL the mode can say is not stored; the mode follows it. */
	len = MKACL(acl, { T_USER_OBJ, 6, NO_ID }, { T_GROUP_OBJ, 4, NO_ID },
		    { T_OTHER, 0, NO_ID });
	CHECK_EQ(xattr_set(fs, f, ACL_ACCESS, acl, len, 0, NULL), 0);
	CHECK_EQ(imode(fs, f) & 07777, 0640);
	CHECK_EQ(xattr_get(fs, f, ACL_ACCESS, NULL, 0), -ENODATA);
	/* The mask stands for the group class. */
	len = MKACL(acl, { T_USER_OBJ, 7, NO_ID }, { T_GROUP_OBJ, 5, NO_ID },
		    { T_MASK, 3, NO_ID }, { T_OTHER, 1, NO_ID });
	CHECK_EQ(xattr_set(fs, f, ACL_ACCESS, acl, len, 0, NULL), 0);
	CHECK_EQ(imode(fs, f) & 07777, 0731);
	CHECK_EQ(xattr_get(fs, f, ACL_ACCESS, NULL, 0), len);
	/* Empty value, or a header alone: the ACL goes, the mode stays. */
	CHECK_EQ(xattr_set(fs, f, ACL_ACCESS, acl, 4, 0, NULL), 0);
	CHECK_EQ(xattr_get(fs, f, ACL_ACCESS, NULL, 0), -ENODATA);
	CHECK_EQ(imode(fs, f) & 07777, 0731);
	CHECK_EQ(xattr_remove(fs, f, ACL_ACCESS), 0);

	/* Invalid ACLs. */
	len = mkacl(acl, 3, acl_named, 6);
	CHECK_EQ(xattr_set(fs, f, ACL_ACCESS, acl, len, 0, NULL), -EOPNOTSUPP);
	len = mkacl(acl, 2, acl_named, 6);
	CHECK_EQ(xattr_set(fs, f, ACL_ACCESS, acl, len - 1, 0, NULL), -EINVAL);
	CHECK_EQ(xattr_set(fs, f, ACL_ACCESS, acl, 3, 0, NULL), -EINVAL);
	{
		const struct ent nomask[] = { { T_USER_OBJ, 7, NO_ID },
					      { T_USER, 6, 1000 },
					      { T_GROUP_OBJ, 5, NO_ID },
					      { T_OTHER, 4, NO_ID } };
		const struct ent order[] = { { T_GROUP_OBJ, 5, NO_ID },
					     { T_USER_OBJ, 7, NO_ID },
					     { T_OTHER, 4, NO_ID } };
		const struct ent perm[] = { { T_USER_OBJ, 8, NO_ID },
					    { T_GROUP_OBJ, 5, NO_ID },
					    { T_OTHER, 4, NO_ID } };
		const struct ent noother[] = { { T_USER_OBJ, 7, NO_ID },
					       { T_GROUP_OBJ, 5, NO_ID } };
		const struct ent tag[] = { { T_USER_OBJ, 7, NO_ID },
					   { 0x40, 5, NO_ID },
					   { T_OTHER, 4, NO_ID } };
		const struct ent twice[] = { { T_USER_OBJ, 7, NO_ID },
					     { T_GROUP_OBJ, 5, NO_ID },
					     { T_OTHER, 4, NO_ID },
					     { T_OTHER, 4, NO_ID } };
		const struct ent badid[] = { { T_USER_OBJ, 7, NO_ID },
					     { T_USER, 6, NO_ID },
					     { T_GROUP_OBJ, 5, NO_ID },
					     { T_MASK, 7, NO_ID },
					     { T_OTHER, 4, NO_ID } };

		len = mkacl(acl, 2, nomask, 4);
		CHECK_EQ(SET_ACL(fs, f, acl, len), -EINVAL);
		len = mkacl(acl, 2, order, 3);
		CHECK_EQ(SET_ACL(fs, f, acl, len), -EINVAL);
		len = mkacl(acl, 2, perm, 3);
		CHECK_EQ(SET_ACL(fs, f, acl, len), -EINVAL);
		len = mkacl(acl, 2, noother, 2);
		CHECK_EQ(SET_ACL(fs, f, acl, len), -EINVAL);
		len = mkacl(acl, 2, tag, 3);
		CHECK_EQ(SET_ACL(fs, f, acl, len), -EINVAL);
		len = mkacl(acl, 2, twice, 4);
		CHECK_EQ(SET_ACL(fs, f, acl, len), -EINVAL);
		len = mkacl(acl, 2, badid, 5);
		CHECK_EQ(SET_ACL(fs, f, acl, len), -EINVAL);
	}
	CHECK_EQ(xattr_get(fs, f, ACL_ACCESS, NULL, 0), -ENODATA);
	CHECK_EQ(imode(fs, f) & 07777, 0731);

	/* Default ACLs: directories only; removing one elsewhere is fine. */
	len = mkacl(acl, 2, acl_named, 6);
	CHECK_EQ(xattr_set(fs, f, ACL_DEFAULT, acl, len, 0, NULL), -EACCES);
	CHECK_EQ(xattr_remove(fs, f, ACL_DEFAULT), 0);
	CHECK_EQ(xattr_set(fs, d, ACL_DEFAULT, acl, len, 0, NULL), 0);
	check_value(fs, d, ACL_DEFAULT, acl, len);
	CHECK_EQ(xattr_remove(fs, d, ACL_DEFAULT), 0);
	CHECK_EQ(xattr_get(fs, d, ACL_DEFAULT, out, sizeof(out)), -ENODATA);
	CHECK_EQ(xattr_remove(fs, d, ACL_DEFAULT), 0);

	/* Only the owner (or root) sets ACLs; setgid goes for outsiders. */
	{
		struct ext2_inode_large inode;
		struct fs_cred other = { 1001, 1001, 022 };

		fs_lock(fs);
		fsi_read(fs, f, &inode);
		inode.i_uid = 1000;
		inode.i_gid = 50;
		inode.i_mode = S_IFREG | 02755;
		fsi_write(fs, f, &inode);
		fs_unlock(fs);
		len = mkacl(acl, 2, acl_named, 6);
		CHECK_EQ(xattr_set(fs, f, ACL_ACCESS, acl, len, 0, &other),
			 -EPERM);
		CHECK_EQ(xattr_set(fs, f, ACL_ACCESS, acl, len, 0, &user), 0);
		CHECK_EQ(imode(fs, f) & 07777, 0774);
		CHECK_EQ(xattr_remove(fs, f, ACL_ACCESS), 0);
	}
}

static void test_acl_chmod(struct fs *fs, ext2_ino_t f)
{
	unsigned char acl[256], want[256];
	size_t len;
	int ret;

	len = mkacl(acl, 2, acl_named, 6);
	CHECK_EQ(xattr_set(fs, f, ACL_ACCESS, acl, len, 0, NULL), 0);
	fs_lock(fs);
	ret = acl_chmod(fs, f, 0640);
	fs_unlock(fs);
	CHECK_EQ(ret, 0);
	len = MKACL(want, { T_USER_OBJ, 6, NO_ID }, { T_USER, 6, 1000 },
		    { T_GROUP_OBJ, 5, NO_ID }, { T_GROUP, 1, 2000 },
		    { T_MASK, 4, NO_ID }, { T_OTHER, 0, NO_ID });
	check_value(fs, f, ACL_ACCESS, want, len);

	/* Without a mask, the owning group takes the group bits. */
	{
		/*
		 * u::rwx g::rwx o::rwx, stored raw in ext4's format: setxattr
		 * would not store an ACL the mode can say.
		 */
		static const unsigned char disk[16] = {
			1, 0, 0, 0, 1, 0, 7, 0, 4, 0, 7, 0, 0x20, 0, 7, 0
		};
		fs_lock(fs);
		ret = xattr_raw_set(fs, f, ACL_ACCESS, disk, 16);
		if (!ret)
			ret = acl_chmod(fs, f, 0510);
		fs_unlock(fs);
		CHECK_EQ(ret, 0);
		len = MKACL(want, { T_USER_OBJ, 5, NO_ID },
			    { T_GROUP_OBJ, 1, NO_ID }, { T_OTHER, 0, NO_ID });
		check_value(fs, f, ACL_ACCESS, want, len);
	}
	CHECK_EQ(xattr_remove(fs, f, ACL_ACCESS), 0);
	fs_lock(fs);
	ret = acl_chmod(fs, f, 0600);
	fs_unlock(fs);
	CHECK_EQ(ret, 0);
	CHECK_EQ(xattr_get(fs, f, ACL_ACCESS, NULL, 0), -ENODATA);
}

static void test_inherit(struct fs *fs, ext2_ino_t root)
{
	struct fs_cred cred = unit_root();
	unsigned char acl[256], want[256];
	ext2_ino_t d, plain, f, f2, sub, s, e, ef;
	size_t len, dlen;

	/* No default ACL: the umask applies. */
	plain = create(fs, root, "plain", S_IFDIR | 0777, &cred);
	f = create(fs, plain, "f", S_IFREG | 0666, &cred);
	CHECK_EQ(imode(fs, f), S_IFREG | 0644);
	CHECK_EQ(xattr_get(fs, f, ACL_ACCESS, NULL, 0), -ENODATA);
	sub = create(fs, plain, "sub", S_IFDIR | 0777, &cred);
	CHECK_EQ(imode(fs, sub), S_IFDIR | 0755);

	d = create(fs, root, "acldir", S_IFDIR | 0755, &cred);
	dlen = MKACL(acl, { T_USER_OBJ, 7, NO_ID }, { T_USER, 7, 1000 },
		     { T_GROUP_OBJ, 5, NO_ID }, { T_MASK, 7, NO_ID },
		     { T_OTHER, 5, NO_ID });
	CHECK_EQ(xattr_set(fs, d, ACL_DEFAULT, acl, dlen, 0, NULL), 0);

	/* A file: the mode is masked by the ACL, the umask is not applied. */
	f = create(fs, d, "file", S_IFREG | 0666, &cred);
	CHECK_EQ(imode(fs, f), S_IFREG | 0664);
	len = MKACL(want, { T_USER_OBJ, 6, NO_ID }, { T_USER, 7, 1000 },
		    { T_GROUP_OBJ, 5, NO_ID }, { T_MASK, 6, NO_ID },
		    { T_OTHER, 4, NO_ID });
	check_value(fs, f, ACL_ACCESS, want, len);
	CHECK_EQ(xattr_get(fs, f, ACL_DEFAULT, NULL, 0), -ENODATA);

	f2 = create(fs, d, "private", S_IFREG | 0600, &cred);
	CHECK_EQ(imode(fs, f2), S_IFREG | 0600);
	CHECK_EQ(xattr_get(fs, f2, ACL_ACCESS, NULL, 0), len);

	/* A directory gets both the access and the default ACL. */
	sub = create(fs, d, "subdir", S_IFDIR | 0777, &cred);
	CHECK_EQ(imode(fs, sub), S_IFDIR | 0775);
	check_value(fs, sub, ACL_ACCESS, acl, dlen);
	check_value(fs, sub, ACL_DEFAULT, acl, dlen);
	/* ... and passes it on. */
	f = create(fs, sub, "deep", S_IFREG | 0640, &cred);
	CHECK_EQ(imode(fs, f), S_IFREG | 0640);

	/* Symlinks: neither ACL nor umask. */
	s = create(fs, d, "link", S_IFLNK | 0777, &cred);
	CHECK_EQ(imode(fs, s), S_IFLNK | 0777);
	CHECK_EQ(xattr_get(fs, s, ACL_ACCESS, NULL, 0), -EOPNOTSUPP);
	CHECK_EQ(xattr_set(fs, s, ACL_ACCESS, want, len, 0, NULL),
		 -EOPNOTSUPP);
	CHECK_EQ(xattr_remove(fs, s, ACL_DEFAULT), -EOPNOTSUPP);
	CHECK_EQ(xattr_set(fs, s, "trusted.l", "l", 1, 0, NULL), 0);
	CHECK_EQ(xattr_get(fs, s, "trusted.l", NULL, 0), 1);

	/* The same through namei and a chmod through inode_setattr. */
	{
		struct stat st, chm = { .st_mode = 0750 };
		ext2_ino_t nf;

		CHECK_EQ(namei_mknod(fs, d, "nfile", S_IFREG | 0666, 0, &cred,
				     &st), 0);
		CHECK_EQ(st.st_mode, S_IFREG | 0664);
		nf = st.st_ino;
		CHECK_EQ(xattr_get(fs, nf, ACL_ACCESS, NULL, 0), len);
		CHECK_EQ(namei_mkdir(fs, d, "ndir", 0777, &cred, &st), 0);
		CHECK_EQ(st.st_mode, S_IFDIR | 0775);
		check_value(fs, st.st_ino, ACL_DEFAULT, acl, dlen);
		CHECK_EQ(inode_setattr(fs, nf, &chm, FS_SET_MODE, &cred, &st),
			 0);
		CHECK_EQ(st.st_mode, S_IFREG | 0750);
		len = MKACL(want, { T_USER_OBJ, 7, NO_ID }, { T_USER, 7, 1000 },
			    { T_GROUP_OBJ, 5, NO_ID }, { T_MASK, 5, NO_ID },
			    { T_OTHER, 0, NO_ID });
		check_value(fs, nf, ACL_ACCESS, want, len);
	}

	/* A default ACL the mode can express: no access ACL, no umask. */
	e = create(fs, root, "eqdir", S_IFDIR | 0755, &cred);
	len = MKACL(acl, { T_USER_OBJ, 7, NO_ID }, { T_GROUP_OBJ, 7, NO_ID },
		    { T_OTHER, 7, NO_ID });
	CHECK_EQ(xattr_set(fs, e, ACL_DEFAULT, acl, len, 0, NULL), 0);
	ef = create(fs, e, "f", S_IFREG | 0666, &cred);
	CHECK_EQ(imode(fs, ef), S_IFREG | 0666);
	CHECK_EQ(xattr_get(fs, ef, ACL_ACCESS, NULL, 0), -ENODATA);
}

/* Damaged stored ACLs and EA blocks give errors, never a crash. */
static void test_damage(void)
{
	const char *img = unit_mkfs("damage.img", "-t ext4 -b 1024", 8192);
	struct fs_cred cred = unit_root();
	static const unsigned char bad[][12] = {
		{ 2, 0, 0, 0, 1, 0, 7, 0 },		/* wrong version */
		{ 1, 0, 0, 0, 1, 0, 7, 0, 2, 0, 6, 0 }, /* truncated id */
		{ 1, 0, 0, 0, 0x40, 0, 7, 0 },		/* unknown tag */
		{ 1, 0, 0, 0, 1, 0, 7, 0, 4, 0 },	/* half entry */
	};
	static const size_t badlen[] = { 8, 12, 8, 10 };
	unsigned char out[256];
	struct fs *fs = unit_open(img, 0);
	ext2_ino_t d, f;
	size_t i;
	char buf[4096];
	blk64_t blk;
	int fd, ret;

	d = create(fs, EXT2_ROOT_INO, "d", S_IFDIR | 0755, &cred);
	f = create(fs, EXT2_ROOT_INO, "f", S_IFREG | 0644, &cred);
	for (i = 0; i < sizeof(badlen) / sizeof(badlen[0]); i++) {
		fs_lock(fs);
		ret = xattr_raw_set(fs, f, ACL_ACCESS, bad[i], badlen[i]);
		ret |= xattr_raw_set(fs, d, ACL_DEFAULT, bad[i], badlen[i]);
		fs_unlock(fs);
		CHECK_EQ(ret, 0);
		CHECK_EQ(xattr_get(fs, f, ACL_ACCESS, out, sizeof(out)),
			 -EFSCORRUPTED);
		fs_lock(fs);
		ret = acl_chmod(fs, f, 0600);
		fs_unlock(fs);
		CHECK_EQ(ret, -EFSCORRUPTED);
		CHECK_EQ(xattr_get(fs, d, ACL_DEFAULT, out, sizeof(out)),
			 -EFSCORRUPTED);
	}
	/* An empty ACL on disk is no ACL at all. */
	fs_lock(fs);
	ret = xattr_raw_set(fs, f, ACL_ACCESS, "\1\0\0\0", 4);
	fs_unlock(fs);
	CHECK_EQ(ret, 0);
	CHECK_EQ(xattr_get(fs, f, ACL_ACCESS, out, sizeof(out)), -ENODATA);

	/* Trash the EA block: every call must fail cleanly. */
	memset(buf, 'v', sizeof(buf));
	CHECK_EQ(xattr_set(fs, f, "user.big", buf, 600, 0, NULL), 0);
	fs_lock(fs);
	{
		struct ext2_inode_large inode;

		fsi_read(fs, f, &inode);
		blk = ext2fs_file_acl_block(fs->e2,
					    (struct ext2_inode *)&inode);
	}
	fs_unlock(fs);
	CHECK(blk != 0);
	fs_close(fs);
	fd = open(img, O_RDWR);
	for (i = 0; i < sizeof(buf); i++)
		buf[i] = (char)(i * 13 + 5);
	CHECK(pwrite(fd, buf + 32, 1024 - 32, blk * 1024 + 32) == 1024 - 32);
	close(fd);
	fs = unit_open(img, 0);
	CHECK(xattr_get(fs, f, "user.big", buf, sizeof(buf)) < 0);
	CHECK(xattr_list(fs, f, buf, sizeof(buf)) < 0);
	CHECK(xattr_set(fs, f, "user.x", "x", 1, 0, NULL) < 0);
	CHECK(xattr_remove(fs, f, "user.big") < 0);
	fd = open(img, O_RDWR);
	CHECK(pwrite(fd, buf, 32, blk * 1024) == 32);
	close(fd);
	fs_close(fs);
	fs = unit_open(img, 0);
	CHECK(xattr_get(fs, f, "user.big", buf, sizeof(buf)) < 0);
	CHECK(xattr_list(fs, f, buf, sizeof(buf)) < 0);
	fs_close(fs);
}

/*
 * Random byte flips in the in-inode xattr area and in the EA block of an
 * image without checksums (so that libext2fs parses the damage): every
 * call must return, whatever it returns. Reproducible (fixed seed).
 */
static void test_fuzz(void)
{
	const char *img = unit_mkfs("fuzz.img", "-t ext4 -O ^metadata_csum",
				    8192);
	static const char *const names[] = { "user.a", "user.bb",
					     "security.s", "user.blk",
					     ACL_ACCESS };
	struct fs_cred cred = unit_root();
	unsigned char acl[64], *ibuf, *iorig, *bbuf, *borig;
	char val[700], out[2048];
	struct fs *fs = unit_open(img, 0);
	unsigned isize, bsize;
	ext2_ino_t f;
	blk64_t blk;
	int i, k, calls = 0;
	size_t j;

	srandom(1);
	f = create(fs, EXT2_ROOT_INO, "f", S_IFREG | 0644, &cred);
	memset(val, 'v', sizeof(val));
	xattr_set(fs, f, "user.a", "1", 1, 0, NULL);
	xattr_set(fs, f, "user.bb", "22", 2, 0, NULL);
	xattr_set(fs, f, "security.s", "333", 3, 0, NULL);
	xattr_set(fs, f, "user.blk", val, sizeof(val), 0, NULL);
	xattr_set(fs, f, ACL_ACCESS, acl, mkacl(acl, 2, acl_named, 6), 0,
		  NULL);

	fs_lock(fs);
	isize = EXT2_INODE_SIZE(fs->e2->super);
	bsize = fs->e2->blocksize;
	ibuf = malloc(isize);
	iorig = malloc(isize);
	bbuf = malloc(bsize);
	borig = malloc(bsize);
	ext2fs_read_inode_full(fs->e2, f, (struct ext2_inode *)iorig, isize);
	blk = ext2fs_file_acl_block(fs->e2, (struct ext2_inode *)iorig);
	io_channel_read_blk64(fs->e2->io, blk, 1, borig);
	fs_unlock(fs);
	CHECK(blk != 0);

	for (i = 0; i < 400; i++) {
		int inode_side = i % 2;

		fs_lock(fs);
		memcpy(ibuf, iorig, isize);
		memcpy(bbuf, borig, bsize);
		for (k = 0; k < 1 + (int)(random() % 6); k++) {
			if (inode_side)
				ibuf[160 + random() % (isize - 160)] =
					(unsigned char)random();
			else
				bbuf[random() % bsize] =
					(unsigned char)random();
		}
		ext2fs_write_inode_full(fs->e2, f, (struct ext2_inode *)ibuf,
					isize);
		io_channel_write_blk64(fs->e2->io, blk, 1, bbuf);
		fs_unlock(fs);
		for (j = 0; j < sizeof(names) / sizeof(names[0]); j++) {
			xattr_get(fs, f, names[j], out, sizeof(out));
			calls++;
		}
		xattr_list(fs, f, out, sizeof(out));
		xattr_set(fs, f, "user.new", "n", 1, 0, NULL);
		xattr_remove(fs, f, "user.a");
		calls += 3;
	}
	fs_lock(fs);
	ext2fs_write_inode_full(fs->e2, f, (struct ext2_inode *)iorig, isize);
	io_channel_write_blk64(fs->e2->io, blk, 1, borig);
	fs_unlock(fs);
	CHECK_EQ(xattr_get(fs, f, "user.blk", out, sizeof(out)), sizeof(val));
	CHECK_EQ(calls, 400 * 8);
	free(ibuf);
	free(iorig);
	free(bbuf);
	free(borig);
	fs_close(fs);
}

/*
 * Compares the core's and the kernel's view of what one side wrote. The
 * kernel reads our image; then writes its own ACLs for us to read.
 */
static void test_kernel(const char *img, const char *const *paths,
			const ext2_ino_t *inos, size_t n, int ea_inode)
{
	static const char *const names[] = { ACL_ACCESS, ACL_DEFAULT,
					     "user.a", "trusted.t",
					     "security.s", "user.block",
					     "user.ea1", "user.ea2" };
	static char core[131100], kern[131100];
	char mnt[512], path[1024];
	struct fs *fs;
	struct stat st;
	ext2_ino_t kf, kd;
	size_t i, j;
	int same = 1, compared = 0;

	snprintf(mnt, sizeof(mnt), "%s/mnt", unit_scratch());
	unit_run("mkdir -p '%s'", mnt);
	if (unit_run("mount -o loop '%s' '%s' 2>/dev/null", img, mnt)) {
		unit_skip("kernel interop: loop mount unavailable");
		return;
	}
	fs = unit_open(img, 1);
	for (i = 0; i < n; i++) {
		snprintf(path, sizeof(path), "%s/%s", mnt, paths[i]);
		if (stat(path, &st) || st.st_mode != imode(fs, inos[i])) {
			printf("FAIL mode of %s\n", paths[i]);
			same = 0;
		}
		for (j = 0; j < sizeof(names) / sizeof(names[0]); j++) {
			core_hex(fs, inos[i], names[j], core);
			kernel_hex(path, names[j], kern);
			if (kern[0])
				compared++;
			if (strcmp(core, kern)) {
				printf("FAIL %s %s: core %.40s kernel %.40s\n",
				       paths[i], names[j], core, kern);
				same = 0;
			}
		}
	}
	fs_close(fs);
	CHECK(same);
	CHECK(compared >= 10);
	fflush(stdout);
	unit_run("getfacl -n -p '%s/acldir/file' '%s/acldir/subdir'", mnt, mnt);
	CHECK_EQ(unit_run("getfacl -n -p -c '%s/acldir/file' | grep -qx "
			  "'user:1000:rwx.*#effective:rw-'",
			  mnt), 0);

	/* The kernel writes, we read. */
	CHECK_EQ(unit_run("touch '%s/kfile' && mkdir '%s/kdir' && "
			  "setfacl -m u:1234:rwx,g:55:r,o::- '%s/kfile' && "
			  "setfacl -d -m u:1234:rx '%s/kdir' && "
			  "setfattr -n user.k -v hello '%s/kfile'",
			  mnt, mnt, mnt, mnt, mnt), 0);
	if (ea_inode)
		CHECK_EQ(unit_run("setfattr -n user.kbig -v \"$(head -c 20000 "
				  "/dev/zero | tr '\\0' k)\" '%s/kfile'",
				  mnt), 0);
	snprintf(path, sizeof(path), "%s/kfile", mnt);
	kernel_hex(path, ACL_ACCESS, kern);
	stat(path, &st);
	{
		static char kdef[256];

		snprintf(path, sizeof(path), "%s/kdir", mnt);
		kernel_hex(path, ACL_DEFAULT, kdef);
		unit_run("umount '%s'", mnt);
		fs = unit_open(img, 1);
		kf = lookup(fs, EXT2_ROOT_INO, "kfile");
		kd = lookup(fs, EXT2_ROOT_INO, "kdir");
		core_hex(fs, kf, ACL_ACCESS, core);
		CHECK(kern[0] && !strcmp(core, kern));
		CHECK_EQ(imode(fs, kf), st.st_mode);
		core_hex(fs, kd, ACL_DEFAULT, core);
		CHECK(kdef[0] && !strcmp(core, kdef));
		CHECK_EQ(xattr_get(fs, kf, "user.k", core, sizeof(core)), 5);
		CHECK(!memcmp(core, "hello", 5));
		fs_close(fs);
	}
	if (ea_inode) {
		/* A value the kernel put in an EA inode: read, drop it. */
		fs = unit_open(img, 0);
		CHECK_EQ(xattr_get(fs, kf, "user.kbig", core, sizeof(core)),
			 20000);
		CHECK(core[0] == 'k' && core[19999] == 'k');
		CHECK_EQ(xattr_remove(fs, kf, "user.kbig"), 0);
		fs_close(fs);
	}
	unit_fsck(img);
}

/*
 * Freeing an inode whose values live in EA inodes: xattr_release drops
 * them first, so that nothing leaks (e2fsck checks at the end).
 */
static void test_release(struct fs *fs)
{
	struct fs_cred cred = unit_root();
	static char val[30000];
	ext2_ino_t f;
	errcode_t err;
	int ret;

	memset(val, 'r', sizeof(val));
	f = create(fs, EXT2_ROOT_INO, "doomed", S_IFREG | 0644, &cred);
	CHECK_EQ(xattr_set(fs, f, "user.r1", val, sizeof(val), 0, NULL), 0);
	CHECK_EQ(xattr_set(fs, f, "user.r2", val, 9000, 0, NULL), 0);
	CHECK_EQ(xattr_set(fs, f, "user.small", "s", 1, 0, NULL), 0);
	fs_lock(fs);
	err = ext2fs_unlink(fs->e2, EXT2_ROOT_INO, "doomed", f, 0);
	ret = xattr_release(fs, f);
	if (!ret)
		ret = fsi_free(fs, f);
	fs_unlock(fs);
	CHECK_EQ(err, 0);
	CHECK_EQ(ret, 0);
}

/* The main image: ext4 with 256-byte inodes, metadata_csum. */
static void test_ext4(const char *args, int ea_inode)
{
	const char *img = unit_mkfs(ea_inode ? "ea.img" : "ext4.img", args,
				    65536);
	static char imgpath[512];
	struct fs_cred cred = unit_root();
	const char *paths[8];
	ext2_ino_t inos[8];
	struct fs *fs;
	ext2_ino_t f, d, m, c;

	printf("== %s\n", args);
	snprintf(imgpath, sizeof(imgpath), "%s", img);
	fs = unit_open(imgpath, 0);
	f = create(fs, EXT2_ROOT_INO, "f", S_IFREG | 0644, &cred);
	d = create(fs, EXT2_ROOT_INO, "d", S_IFDIR | 0755, &cred);
	m = create(fs, EXT2_ROOT_INO, "many", S_IFREG | 0644, &cred);
	c = create(fs, EXT2_ROOT_INO, "c", S_IFREG | 0644, &cred);
	test_namespaces(fs, f);
	test_list_remove(fs, f);
	test_sizes(fs, f, ea_inode);
	test_many(fs, m);
	test_ctime_perm(fs, c);
	test_acl_set(fs, c, d);
	test_acl_chmod(fs, c);
	test_inherit(fs, EXT2_ROOT_INO);
	if (ea_inode)
		test_release(fs);
	fs_close(fs);
	unit_fsck(imgpath);

	/* Read-only: reads work, writes are EROFS. */
	fs = unit_open(imgpath, 1);
	CHECK_EQ(xattr_get(fs, f, "user.a", NULL, 0), 2);
	CHECK_EQ(xattr_set(fs, f, "user.ro", "x", 1, 0, NULL), -EROFS);
	CHECK_EQ(xattr_remove(fs, f, "user.a"), -EROFS);
	paths[0] = "f";
	paths[1] = "acldir/file";
	paths[2] = "acldir/private";
	paths[3] = "acldir/subdir";
	paths[4] = "acldir/subdir/deep";
	paths[5] = "acldir";
	paths[6] = "many";
	inos[0] = f;
	inos[1] = lookup(fs, lookup(fs, EXT2_ROOT_INO, "acldir"), "file");
	inos[2] = lookup(fs, lookup(fs, EXT2_ROOT_INO, "acldir"), "private");
	inos[3] = lookup(fs, lookup(fs, EXT2_ROOT_INO, "acldir"), "subdir");
	inos[4] = lookup(fs, inos[3], "deep");
	inos[5] = lookup(fs, EXT2_ROOT_INO, "acldir");
	inos[6] = m;
	fs_close(fs);
	test_kernel(imgpath, paths, inos, 7, ea_inode);
}

/* Filesystems where everything lives in the block, or nothing yet. */
static void test_small_inodes(void)
{
	const char *img;
	struct fs *fs;
	struct fs_cred cred = unit_root();
	ext2_ino_t f;
	char buf[64];

	img = unit_mkfs("ext2.img", "-t ext2 -I 128", 8192);
	fs = unit_open(img, 0);
	f = create(fs, EXT2_ROOT_INO, "f", S_IFREG | 0644, &cred);
	CHECK_EQ(xattr_set(fs, f, "user.a", "abc", 3, 0, NULL), 0);
	CHECK_EQ(xattr_get(fs, f, "user.a", buf, sizeof(buf)), 3);
	CHECK_EQ(xattr_list(fs, f, buf, sizeof(buf)), 7);
	fs_close(fs);
	unit_fsck(img);

	img = unit_mkfs("noxattr.img", "-t ext2 -O ^ext_attr", 8192);
	fs = unit_open(img, 0);
	f = create(fs, EXT2_ROOT_INO, "f", S_IFREG | 0644, &cred);
	CHECK_EQ(xattr_get(fs, f, "user.a", buf, sizeof(buf)), -ENODATA);
	CHECK_EQ(xattr_list(fs, f, buf, sizeof(buf)), 0);
	CHECK_EQ(xattr_set(fs, f, "user.a", "abc", 3, 0, NULL), 0);
	CHECK_EQ(xattr_get(fs, f, "user.a", buf, sizeof(buf)), 3);
	fs_close(fs);
	unit_fsck(img);
	CHECK_EQ(unit_run("dumpe2fs -h '%s' 2>/dev/null | grep -q ext_attr",
			  img), 0);

	/* inline_data keeps system.data out of sight and intact. */
	/* 100 bytes: 60 in i_block, the rest in system.data. */
	img = unit_mkfs("inline.img", "-t ext4 -O inline_data", 8192);
	unit_run("head -c 100 /dev/urandom >'%s/data100'", unit_scratch());
	unit_run("debugfs -w -R 'write %s/data100 hn' '%s' >/dev/null 2>&1",
		 unit_scratch(), img);
	fs = unit_open(img, 0);
	f = lookup(fs, EXT2_ROOT_INO, "hn");
	CHECK(f != 0);
	CHECK_EQ(xattr_list(fs, f, buf, sizeof(buf)), 0);
	CHECK_EQ(xattr_set(fs, f, "user.x", "y", 1, 0, NULL), 0);
	CHECK_EQ(xattr_list(fs, f, buf, sizeof(buf)), 7);
	CHECK_EQ(xattr_remove(fs, f, "system.data"), -EOPNOTSUPP);
	fs_close(fs);
	unit_fsck(img);
	CHECK_EQ(unit_run("debugfs -R 'dump hn %s/out100' '%s' >/dev/null 2>&1 "
			  "&& cmp -s %s/data100 %s/out100", unit_scratch(), img,
			  unit_scratch(), unit_scratch()), 0);
}

int main(void)
{
	test_ext4("-t ext4 -b 4096 -O metadata_csum", 0);
	test_ext4("-t ext4 -b 4096 -O ea_inode", 1);
	test_small_inodes();
	test_damage();
	test_fuzz();
	return unit_done();
}
