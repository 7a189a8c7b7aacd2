/*
 * Unit tests of inode.c and ioctl.c: timestamps through setattr and
 * getattr (before 1970, past 2038, nanoseconds; checked against the
 * kernel's reading of the image), mode, owner and size changes with the
 * setuid/setgid rules, immutable and append-only inodes, access(2), and
 * the FS_IOC_GETFLAGS / SETFLAGS / GETVERSION rules.
 */
#include <sys/mount.h>

#include "unit.h"
#include "core/fs_internal.h"

static struct fs_cred root;
static const struct fs_cred user = { 1000, 1000, 022 };

/* Creates an empty regular file in the root directory. */
static ext2_ino_t mkfile(struct fs *fs, const char *name)
{
	unsigned isize = EXT2_INODE_SIZE(fs->e2->super);
	struct ext2_inode_large inode;
	ext2_ino_t ino = 0;
	errcode_t err = 0;
	char *raw;

	fs_lock(fs);
	if (fsi_new(fs, EXT2_ROOT_INO, LINUX_S_IFREG | 0644, &root, &ino,
		    &inode)) {
		err = 1;
		goto out;
	}
	/* A new inode: clear whatever the table held past our struct. */
	raw = calloc(1, isize);
	memcpy(raw, &inode, isize < sizeof(inode) ? isize : sizeof(inode));
	err = ext2fs_write_inode_full(fs->e2, ino, (void *)raw, isize);
	free(raw);
	if (!err)
		err = ext2fs_link(fs->e2, EXT2_ROOT_INO, name, ino,
				  EXT2_FT_REG_FILE);
out:
	fs_unlock(fs);
	if (err) {
		printf("FAIL cannot create %s\n", name);
		exit(1);
	}
	return ino;
}

static ext2_ino_t mkdir_(struct fs *fs, const char *name)
{
	ext2_ino_t ino = 0;
	errcode_t err;

	fs_lock(fs);
	err = ext2fs_mkdir(fs->e2, EXT2_ROOT_INO, 0, name);
	if (!err)
		err = ext2fs_namei(fs->e2, EXT2_ROOT_INO, EXT2_ROOT_INO, name,
				   &ino);
	fs_unlock(fs);
	if (err) {
		printf("FAIL cannot mkdir %s\n", name);
		exit(1);
	}
	return ino;
}

static mode_t mode_of(struct fs *fs, ext2_ino_t ino)
{
	struct stat st;

	inode_getattr(fs, ino, &st);
	return st.st_mode;
}

static int set_mode(struct fs *fs, ext2_ino_t ino, mode_t mode)
{
	struct stat st = { .st_mode = mode };

	return inode_setattr(fs, ino, &st, FS_SET_MODE, &root, NULL);
}

static int set_owner(struct fs *fs, ext2_ino_t ino, uid_t uid, gid_t gid,
		     const struct fs_cred *cred)
{
	struct stat st = { .st_uid = uid, .st_gid = gid };

	return inode_setattr(fs, ino, &st, FS_SET_UID | FS_SET_GID, cred,
			     NULL);
}

/*
 * Adds `fl` (immutable or append-only) to ino's flags as root, then checks
 * that mode, owner and size are refused. Returns the flags from before.
 */
static uint32_t set_locked(struct fs *fs, ext2_ino_t ino, uint32_t fl)
{
	struct stat st = { .st_size = 0 };
	uint32_t flags = 0;

	CHECK_EQ(ioctl_getflags(fs, ino, &flags), 0);
	CHECK_EQ(ioctl_setflags(fs, ino, flags | fl, &root), 0);
	CHECK_EQ(set_mode(fs, ino, 0600), -EPERM);
	CHECK_EQ(set_owner(fs, ino, 1, 1, &root), -EPERM);
	CHECK_EQ(inode_setattr(fs, ino, &st, FS_SET_SIZE, &root, NULL),
		 -EPERM);
	return flags;
}

static const struct {
	const char *name;
	int64_t sec;
	long nsec;
} times[] = {
	{ "t_epoch", 0, 0 },
	{ "t_1938", -1000000000LL, 123456789 },
	{ "t_1901", INT32_MIN, 1 },
	{ "t_2038", INT32_MAX, 999999999 },
	{ "t_2039", (1LL << 31) + 5, 500 },
	{ "t_2106", 4294967296LL + 100, 42 },
	{ "t_2446", 15032385535LL, 7 }, /* the last second ext4 can hold */
};
#define NTIMES (sizeof(times) / sizeof(times[0]))

/* As the kernel's timestamp_truncate: a time at a bound keeps no ns. */
static long want_nsec(unsigned i)
{
	if (times[i].sec == INT32_MIN || times[i].sec == 15032385535LL)
		return 0;
	return times[i].nsec;
}

/* Stores each time as mtime and atime; returns what getattr says. */
static void test_times(void)
{
	const char *path = unit_mkfs("times.img", "-t ext4 -I 256", 32768);
	struct fs *fs = unit_open(path, 0);
	char mnt[512], name[600];
	struct stat st, out, k;
	unsigned i;

	printf("# timestamps (256-byte inodes)\n");
	for (i = 0; i < NTIMES; i++) {
		ext2_ino_t ino = mkfile(fs, times[i].name);

		memset(&st, 0, sizeof(st));
		st.st_mtim.tv_sec = times[i].sec;
		st.st_mtim.tv_nsec = times[i].nsec;
		st.st_atim.tv_sec = times[i].sec - 1;
		st.st_atim.tv_nsec = times[i].nsec / 2;
		CHECK_EQ(inode_setattr(fs, ino, &st,
				       FS_SET_MTIME | FS_SET_ATIME, &root,
				       &out), 0);
		CHECK_EQ(out.st_mtim.tv_sec, times[i].sec);
		CHECK_EQ(out.st_mtim.tv_nsec, want_nsec(i));
		CHECK_EQ(inode_getattr(fs, ino, &st), 0);
		CHECK_EQ(st.st_mtim.tv_sec, times[i].sec);
		CHECK_EQ(st.st_mtim.tv_nsec, want_nsec(i));
		if (times[i].sec > INT32_MIN) {
			CHECK_EQ(st.st_atim.tv_sec, times[i].sec - 1);
			CHECK_EQ(st.st_atim.tv_nsec, times[i].nsec / 2);
		}
		/* Any change stamps ctime with the present. */
		CHECK(st.st_ctim.tv_sec >= time(NULL) - 5);
	}
	fs_close(fs);
	unit_fsck(path);

	/* The kernel must read the same times back. */
	snprintf(mnt, sizeof(mnt), "%s/mnt", unit_scratch());
	unit_run("mkdir -p %s", mnt);
	if (unit_run("mount -o loop,ro %s %s 2>/dev/null", path, mnt)) {
		unit_skip("kernel comparison: no loop mount");
		return;
	}
	for (i = 0; i < NTIMES; i++) {
		snprintf(name, sizeof(name), "%s/%s", mnt, times[i].name);
		CHECK_EQ(stat(name, &k), 0);
		CHECK_EQ(k.st_mtim.tv_sec, times[i].sec);
		CHECK_EQ(k.st_mtim.tv_nsec, want_nsec(i));
	}
	umount(mnt);
}

/* 128-byte inodes: whole seconds, clamped to the 32-bit range. */
static void test_times_small(void)
{
	const char *path = unit_mkfs("small.img", "-t ext4 -I 128", 32768);
	struct fs *fs = unit_open(path, 0);
	ext2_ino_t ino = mkfile(fs, "f");
	struct stat st = { 0 }, out;

	printf("# timestamps (128-byte inodes)\n");
	st.st_mtim.tv_sec = -1000000000LL;
	st.st_mtim.tv_nsec = 5;
	CHECK_EQ(inode_setattr(fs, ino, &st, FS_SET_MTIME, &root, &out), 0);
	CHECK_EQ(out.st_mtim.tv_sec, -1000000000LL);
	CHECK_EQ(out.st_mtim.tv_nsec, 0);
	st.st_mtim.tv_sec = 4294967296LL + 100;
	CHECK_EQ(inode_setattr(fs, ino, &st, FS_SET_MTIME, &root, &out), 0);
	CHECK_EQ(out.st_mtim.tv_sec, INT32_MAX);
	fs_close(fs);
	unit_fsck(path);
}

static void test_setattr(void)
{
	const char *path = unit_mkfs("attr.img", "-t ext4", 32768);
	struct fs *fs = unit_open(path, 0);
	ext2_ino_t f = mkfile(fs, "f"), g = mkfile(fs, "g");
	ext2_ino_t sz = mkfile(fs, "size");
	ext2_ino_t d = mkdir_(fs, "d");
	char buf[8192], zero[8192] = { 0 };
	struct stat st = { 0 }, out;
	time_t before;

	printf("# setattr\n");
	/* chmod keeps the file type and stamps ctime. */
	st.st_ctim.tv_sec = 1000;
	CHECK_EQ(inode_setattr(fs, f, &st, FS_SET_CTIME, &root, &out), 0);
	CHECK_EQ(out.st_ctim.tv_sec, 1000);
	st.st_mode = S_IFDIR | 0600;
	CHECK_EQ(inode_setattr(fs, f, &st, FS_SET_MODE, &root, &out), 0);
	CHECK_EQ(out.st_mode, S_IFREG | 0600);
	CHECK(out.st_ctim.tv_sec > 1000);
	CHECK_EQ(set_mode(fs, d, 01777), 0);
	CHECK_EQ(mode_of(fs, d), S_IFDIR | 01777);

	/* valid == 0 changes nothing. */
	before = out.st_ctim.tv_sec;
	CHECK_EQ(inode_setattr(fs, f, &st, 0, &root, &out), 0);
	CHECK_EQ(out.st_ctim.tv_sec, before);

	/* Owner: 32-bit ids. */
	CHECK_EQ(set_owner(fs, f, 70000, 80000, &root), 0);
	CHECK_EQ(inode_getattr(fs, f, &out), 0);
	CHECK_EQ(out.st_uid, 70000);
	CHECK_EQ(out.st_gid, 80000);
	memset(&st, 0, sizeof(st));
	st.st_gid = 5;
	CHECK_EQ(inode_setattr(fs, f, &st, FS_SET_GID, &root, &out), 0);
	CHECK_EQ(out.st_uid, 70000);
	CHECK_EQ(out.st_gid, 5);

	/* chown drops setuid, and setgid with group exec, even by root. */
	CHECK_EQ(set_mode(fs, g, 06755), 0);
	CHECK_EQ(set_owner(fs, g, 1000, 1000, &user), 0);
	CHECK_EQ(mode_of(fs, g) & 07777, 0755);
	CHECK_EQ(set_mode(fs, g, 06745), 0);
	CHECK_EQ(set_owner(fs, g, 1000, 1000, &user), 0);
	CHECK_EQ(mode_of(fs, g) & 07777, 02745);
	CHECK_EQ(set_mode(fs, g, 06711), 0);
	CHECK_EQ(set_owner(fs, g, 0, 0, &root), 0);
	CHECK_EQ(mode_of(fs, g) & 07777, 0711);
	/* Directories keep setgid: it is how group inheritance works. */
	CHECK_EQ(set_mode(fs, d, 02775), 0);
	CHECK_EQ(set_owner(fs, d, 1000, 1000, &root), 0);
	CHECK_EQ(mode_of(fs, d) & 07777, 02775);

	/* Size: grow sparse, shrink frees, the cut block is zeroed. */
	memset(buf, 'x', sizeof(buf));
	CHECK_EQ(file_write(fs, sz, buf, sizeof(buf), 0, 0, &root),
		 sizeof(buf));
	memset(&st, 0, sizeof(st));
	st.st_mtim.tv_sec = 1000;
	CHECK_EQ(inode_setattr(fs, sz, &st, FS_SET_MTIME, &root, NULL), 0);
	st.st_size = 5000;
	CHECK_EQ(inode_setattr(fs, sz, &st, FS_SET_SIZE, &root, &out), 0);
	CHECK_EQ(out.st_size, 5000);
	CHECK(out.st_mtim.tv_sec > 1000);
	st.st_size = 1 << 30;
	CHECK_EQ(inode_setattr(fs, sz, &st, FS_SET_SIZE, &root, &out), 0);
	CHECK_EQ(out.st_size, 1 << 30);
	CHECK(out.st_blocks * 512 <= 8192 + 4096);
	CHECK_EQ(file_read(fs, sz, buf, sizeof(buf), 0), sizeof(buf));
	CHECK(buf[4999] == 'x' && !memcmp(buf + 5000, zero, 8192 - 5000));
	st.st_size = 0;
	CHECK_EQ(inode_setattr(fs, sz, &st, FS_SET_SIZE, &root, &out), 0);
	CHECK_EQ(out.st_blocks, 0);
	st.st_size = -1;
	CHECK_EQ(inode_setattr(fs, sz, &st, FS_SET_SIZE, &root, NULL),
		 -EINVAL);
	st.st_size = 0;
	CHECK_EQ(inode_setattr(fs, d, &st, FS_SET_SIZE, &root, NULL),
		 -EISDIR);
	/* Truncate by someone else drops setuid; by root it stays. */
	CHECK_EQ(set_mode(fs, sz, 04755), 0);
	st.st_size = 10;
	CHECK_EQ(inode_setattr(fs, sz, &st, FS_SET_SIZE, &root, NULL), 0);
	CHECK_EQ(mode_of(fs, sz) & 07777, 04755);
	CHECK_EQ(inode_setattr(fs, sz, &st, FS_SET_SIZE, &user, NULL), 0);
	CHECK_EQ(mode_of(fs, sz) & 07777, 0755);

	/* Times set to now. */
	memset(&st, 0, sizeof(st));
	before = time(NULL);
	CHECK_EQ(inode_setattr(fs, f, &st, FS_SET_ATIME | FS_SET_ATIME_NOW |
			       FS_SET_MTIME | FS_SET_MTIME_NOW, &root, &out),
		 0);
	CHECK(out.st_atim.tv_sec >= before && out.st_mtim.tv_sec >= before);
	fs_close(fs);
	unit_fsck(path);
}

static void test_flags(void)
{
	const char *path = unit_mkfs("flags.img", "-t ext4", 32768);
	struct fs *fs = unit_open(path, 0);
	ext2_ino_t f = mkfile(fs, "f"), imm = mkfile(fs, "imm");
	ext2_ino_t app = mkfile(fs, "app"), x = mkfile(fs, "x");
	struct ext2_inode_large inode;
	struct stat st = { 0 }, out;
	uint32_t flags, version;

	printf("# flags, immutable, append-only, access\n");
	CHECK_EQ(ioctl_getflags(fs, f, &flags), 0);
	CHECK(flags & EXT4_EXTENTS_FL);
	CHECK_EQ(ioctl_getversion(fs, f, &version), 0);
	fs_lock(fs);
	fsi_read(fs, f, &inode);
	fs_unlock(fs);
	CHECK_EQ(version, inode.i_generation);

	/* The owner may set ordinary flags; others may not. */
	CHECK_EQ(set_owner(fs, f, 1000, 1000, &root), 0);
	st.st_ctim.tv_sec = 1000;
	CHECK_EQ(inode_setattr(fs, f, &st, FS_SET_CTIME, &root, NULL), 0);
	CHECK_EQ(ioctl_setflags(fs, f, flags | EXT2_NODUMP_FL, &user), 0);
	CHECK_EQ(ioctl_getflags(fs, f, &flags), 0);
	CHECK(flags & EXT2_NODUMP_FL);
	CHECK_EQ(inode_getattr(fs, f, &out), 0);
	CHECK(out.st_ctim.tv_sec > 1000);
	CHECK_EQ(ioctl_setflags(fs, f, flags, &(struct fs_cred){ 1001, 1001,
								 022 }),
		 -EPERM);
	/* Immutable and append-only are root's. */
	CHECK_EQ(ioctl_setflags(fs, f, flags | EXT2_IMMUTABLE_FL, &user),
		 -EPERM);
	CHECK_EQ(ioctl_setflags(fs, f, flags | EXT2_APPEND_FL, &user), -EPERM);
	/* Extents cannot be dropped; inline data cannot be switched. */
	CHECK_EQ(ioctl_setflags(fs, f, flags & ~EXT4_EXTENTS_FL, &root),
		 -EOPNOTSUPP);
	CHECK_EQ(ioctl_setflags(fs, f, flags | EXT4_INLINE_DATA_FL, &root), 0);
	CHECK_EQ(ioctl_getflags(fs, f, &flags), 0);
	CHECK(!(flags & EXT4_INLINE_DATA_FL));
	/* Flags outside the visible set are not reported. */
	unit_poke_flags(fs, f, EXT4_EA_INODE_FL, 0);
	CHECK_EQ(ioctl_getflags(fs, f, &flags), 0);
	CHECK(!(flags & EXT4_EA_INODE_FL));
	CHECK_EQ(ioctl_setflags(fs, f, flags, &root), 0);
	unit_poke_flags(fs, f, 0, EXT4_EA_INODE_FL);

	/* Immutable: nothing changes, not even by root. */
	flags = set_locked(fs, imm, EXT2_IMMUTABLE_FL);
	CHECK_EQ(inode_setattr(fs, imm, &st, FS_SET_ATIME | FS_SET_ATIME_NOW,
			       &root, NULL), -EPERM);
	CHECK_EQ(ioctl_setflags(fs, imm, flags | EXT2_IMMUTABLE_FL |
				EXT2_NODUMP_FL, &root), -EPERM);
	CHECK_EQ(inode_access(fs, imm, W_OK), -EPERM);
	CHECK_EQ(inode_access(fs, imm, R_OK), 0);
	CHECK_EQ(ioctl_setflags(fs, imm, flags, &user), -EPERM);
	CHECK_EQ(ioctl_setflags(fs, imm, flags, &root), 0);
	CHECK_EQ(set_mode(fs, imm, 0600), 0);

	/* Append-only: only touching the times to now. */
	set_locked(fs, app, EXT2_APPEND_FL);
	CHECK_EQ(inode_setattr(fs, app, &st, FS_SET_MTIME, &root, NULL),
		 -EPERM);
	CHECK_EQ(inode_setattr(fs, app, &st, FS_SET_ATIME | FS_SET_ATIME_NOW |
			       FS_SET_MTIME | FS_SET_MTIME_NOW, &root, NULL),
		 0);
	CHECK_EQ(inode_access(fs, app, W_OK), 0);

	/* access(2) as root: execute needs an x bit on non-directories. */
	CHECK_EQ(inode_access(fs, x, F_OK), 0);
	CHECK_EQ(inode_access(fs, x, R_OK | W_OK), 0);
	CHECK_EQ(inode_access(fs, x, X_OK), -EACCES);
	CHECK_EQ(set_mode(fs, x, 0610), 0);
	CHECK_EQ(inode_access(fs, x, X_OK), 0);
	CHECK_EQ(set_mode(fs, EXT2_ROOT_INO, 0644), 0);
	CHECK_EQ(inode_access(fs, EXT2_ROOT_INO, X_OK), 0);
	CHECK_EQ(set_mode(fs, EXT2_ROOT_INO, 0755), 0);
	CHECK_EQ(inode_access(fs, 0, F_OK) < 0, 1);
	fs_close(fs);
	unit_fsck(path);

	/* Read-only: W_OK is EROFS, changes too; reads work. */
	fs = unit_open(path, 1);
	CHECK_EQ(inode_access(fs, x, W_OK), -EROFS);
	CHECK_EQ(inode_access(fs, x, R_OK | X_OK), 0);
	CHECK_EQ(set_mode(fs, x, 0600), -EROFS);
	CHECK_EQ(ioctl_setflags(fs, x, 0, &root), -EROFS);
	CHECK_EQ(ioctl_getflags(fs, x, &flags), 0);
	fs_close(fs);
}

/*
 * Every new inode gets its own random generation, also past the batch
 * that one getrandom call fetches.
 */
static void test_generations(void)
{
	const char *path = unit_mkfs("gen.img", "-t ext4", 32768);
	struct fs *fs = unit_open(path, 0);
	struct ext2_inode_large inode;
	__u32 gen[200];
	char name[16];
	int i, j, same = 0;

	printf("# generations\n");
	for (i = 0; i < 200; i++) {
		struct stat st;

		snprintf(name, sizeof(name), "g%d", i);
		gen[i] = ~0u;
		if (namei_mknod(fs, EXT2_ROOT_INO, name, S_IFREG | 0644, 0,
				&root, &st))
			continue;
		fs_lock(fs);
		if (!fsi_read(fs, st.st_ino, &inode))
			gen[i] = inode.i_generation;
		fs_unlock(fs);
	}
	for (i = 0; i < 200; i++)
		for (j = 0; j < i; j++)
			same += gen[i] == gen[j];
	/* 200 random 32-bit values: a repeat is a one-in-200,000 event. */
	CHECK(same <= 1);
	CHECK_EQ(fs_close(fs), 0);
	unit_fsck(path);
}

int main(void)
{
	root = unit_root();
	test_times();
	test_times_small();
	test_setattr();
	test_flags();
	test_generations();
	return unit_done();
}
