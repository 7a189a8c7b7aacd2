/*
 * Unit test of the namespace operations (namei.c) on ext4, ext4 with
 * inline_data, ext2 with 1k blocks and 64bit+metadata_csum images: create
 * of every type, lookup, links, unlink, rmdir, rename with all flags,
 * immutable/append-only rules, link-count limits, orphans. Each image must
 * pass e2fsck -fn afterwards; the kernel reads back devices and symlinks.
 */
#include <errno.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include "unit.h"
#include "core/fs_internal.h"

static struct fs_cred cred;

/* Raw inode field access, as a hostile or special image would have it. */
static void set_flags(struct fs *fs, ext2_ino_t ino, __u32 set, __u32 clear)
{
	struct ext2_inode_large inode;

	fs_lock(fs);
	if (!fsi_read(fs, ino, &inode)) {
		inode.i_flags = (inode.i_flags | set) & ~clear;
		fsi_write(fs, ino, &inode);
	}
	fs_unlock(fs);
}

static void set_links(struct fs *fs, ext2_ino_t ino, unsigned links)
{
	struct ext2_inode_large inode;

	fs_lock(fs);
	if (!fsi_read(fs, ino, &inode)) {
		inode.i_links_count = links;
		fsi_write(fs, ino, &inode);
	}
	fs_unlock(fs);
}

static void set_old_times(struct fs *fs, ext2_ino_t ino)
{
	struct ext2_inode_large inode;
	struct timespec old = { 1000, 0 };

	fs_lock(fs);
	if (!fsi_read(fs, ino, &inode)) {
		fsi_set_time(&inode, FSI_MTIME, &old);
		fsi_set_time(&inode, FSI_CTIME, &old);
		fsi_write(fs, ino, &inode);
	}
	fs_unlock(fs);
}

/* 1 if the inode's mtime (which == 'm') or ctime was stamped since 1000. */
static int stamped(struct fs *fs, ext2_ino_t ino, char which)
{
	struct ext2_inode_large inode;
	struct timespec ts = { 0, 0 };

	fs_lock(fs);
	if (!fsi_read(fs, ino, &inode))
		fsi_get_time(&inode, which == 'm' ? FSI_MTIME : FSI_CTIME,
			     &ts);
	fs_unlock(fs);
	return ts.tv_sec > 1000;
}

static __u32 get_flags(struct fs *fs, ext2_ino_t ino)
{
	struct ext2_inode_large inode;

	memset(&inode, 0, sizeof(inode));
	fs_lock(fs);
	fsi_read(fs, ino, &inode);
	fs_unlock(fs);
	return inode.i_flags;
}

static ext2_ino_t lk(struct fs *fs, ext2_ino_t dir, const char *name)
{
	ext2_ino_t ino = 0;

	if (namei_lookup(fs, dir, name, &ino, NULL))
		return 0;
	return ino;
}

static nlink_t nlink(struct fs *fs, ext2_ino_t ino)
{
	struct stat st;
	struct ext2_inode_large inode;

	fs_lock(fs);
	if (fsi_read(fs, ino, &inode)) {
		fs_unlock(fs);
		return (nlink_t)-1;
	}
	fsi_to_stat(fs, ino, &inode, &st);
	fs_unlock(fs);
	return st.st_nlink;
}

static ext2_ino_t mkf(struct fs *fs, ext2_ino_t dir, const char *name)
{
	struct stat st;

	if (namei_mknod(fs, dir, name, S_IFREG | 0644, 0, &cred, &st))
		return 0;
	return st.st_ino;
}

static void test_names(struct fs *fs)
{
	char longname[301];
	struct stat st;
	ext2_ino_t ino, f;

	memset(longname, 'n', 300);
	longname[300] = '\0';
	f = mkf(fs, EXT2_ROOT_INO, "file");
	CHECK(f != 0);
	CHECK_EQ(lk(fs, EXT2_ROOT_INO, "file"), f);
	CHECK_EQ(namei_lookup(fs, EXT2_ROOT_INO, "file", &ino, &st), 0);
	CHECK(S_ISREG(st.st_mode) && (st.st_mode & 07777) == 0644);
	CHECK_EQ(st.st_nlink, 1);
	CHECK_EQ(namei_mknod(fs, EXT2_ROOT_INO, "file", S_IFREG | 0644, 0,
			     &cred, NULL), -EEXIST);
	CHECK_EQ(namei_mkdir(fs, EXT2_ROOT_INO, "file", 0755, &cred, NULL),
		 -EEXIST);
	CHECK_EQ(namei_mknod(fs, EXT2_ROOT_INO, longname, S_IFREG | 0644, 0,
			     &cred, NULL), -ENAMETOOLONG);
	CHECK_EQ(namei_lookup(fs, EXT2_ROOT_INO, longname, &ino, NULL),
		 -ENAMETOOLONG);
	longname[255] = '\0';
	CHECK(mkf(fs, EXT2_ROOT_INO, longname) != 0);
	CHECK_EQ(namei_unlink(fs, EXT2_ROOT_INO, longname), 0);
	CHECK_EQ(namei_mknod(fs, EXT2_ROOT_INO, "a/b", S_IFREG | 0644, 0,
			     &cred, NULL), -EINVAL);
	CHECK_EQ(namei_mknod(fs, EXT2_ROOT_INO, "", S_IFREG | 0644, 0, &cred,
			     NULL), -ENOENT);
	CHECK_EQ(namei_lookup(fs, EXT2_ROOT_INO, "", &ino, NULL), -ENOENT);
	CHECK_EQ(namei_mknod(fs, EXT2_ROOT_INO, ".", S_IFREG | 0644, 0, &cred,
			     NULL), -EEXIST);
	CHECK_EQ(namei_mkdir(fs, EXT2_ROOT_INO, "..", 0755, &cred, NULL),
		 -EEXIST);
	CHECK_EQ(lk(fs, EXT2_ROOT_INO, "."), EXT2_ROOT_INO);
	CHECK_EQ(lk(fs, EXT2_ROOT_INO, ".."), EXT2_ROOT_INO);
	CHECK_EQ(namei_lookup(fs, EXT2_ROOT_INO, "nothere", &ino, NULL),
		 -ENOENT);
	CHECK_EQ(namei_lookup(fs, f, "x", &ino, NULL), -ENOTDIR);
	CHECK_EQ(namei_mknod(fs, f, "x", S_IFREG | 0644, 0, &cred, NULL),
		 -ENOTDIR);
	CHECK_EQ(namei_mknod(fs, EXT2_ROOT_INO, "bad", S_IFDIR | 0755, 0,
			     &cred, NULL), -EINVAL);
	/* umask applied by acl_inherit. */
	CHECK_EQ(namei_mknod(fs, EXT2_ROOT_INO, "umasked", S_IFREG | 0666, 0,
			     &cred, &st), 0);
	CHECK_EQ(st.st_mode & 07777, 0644);
}

static void test_special(struct fs *fs)
{
	struct stat st;
	ext2_ino_t ino;

	CHECK_EQ(namei_mknod(fs, EXT2_ROOT_INO, "fifo", S_IFIFO | 0644, 0,
			     &cred, &st), 0);
	CHECK(S_ISFIFO(st.st_mode));
	CHECK_EQ(namei_mknod(fs, EXT2_ROOT_INO, "sock", S_IFSOCK | 0644, 0,
			     &cred, &st), 0);
	CHECK(S_ISSOCK(st.st_mode));
	CHECK_EQ(namei_mknod(fs, EXT2_ROOT_INO, "null", S_IFCHR | 0644,
			     makedev(1, 3), &cred, &st), 0);
	CHECK(S_ISCHR(st.st_mode) && st.st_rdev == makedev(1, 3));
	CHECK_EQ(namei_mknod(fs, EXT2_ROOT_INO, "bigdev", S_IFBLK | 0644,
			     makedev(300, 70000), &cred, &st), 0);
	CHECK(S_ISBLK(st.st_mode) && st.st_rdev == makedev(300, 70000));
	CHECK_EQ(namei_lookup(fs, EXT2_ROOT_INO, "bigdev", &ino, &st), 0);
	CHECK_EQ(major(st.st_rdev), 300);
	CHECK_EQ(minor(st.st_rdev), 70000);
	CHECK_EQ(get_flags(fs, ino) &
			 (EXT4_EXTENTS_FL | EXT4_INLINE_DATA_FL), 0);
}

static void test_symlinks(struct fs *fs)
{
	unsigned bs = fs_blocksize(fs);
	char target[8192], buf[8192];
	size_t lens[] = { 1, 10, 59, 60, 100, 150, 1000, bs - 1 };
	struct stat st;
	char name[32];
	unsigned i;

	for (i = 0; i < sizeof(target); i++)
		target[i] = 'a' + i % 26;
	for (i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
		size_t len = lens[i];
		char save = target[len];

		target[len] = '\0';
		snprintf(name, sizeof(name), "sl%zu", len);
		CHECK_EQ(namei_symlink(fs, EXT2_ROOT_INO, name, target, &cred,
				       &st), 0);
		CHECK(S_ISLNK(st.st_mode) && (size_t)st.st_size == len);
		CHECK_EQ(st.st_mode & 07777, 0777);
		memset(buf, 0, sizeof(buf));
		CHECK_EQ(namei_readlink(fs, st.st_ino, buf, sizeof(buf)), 0);
		CHECK(strcmp(buf, target) == 0);
		if (len > 5) {
			CHECK_EQ(namei_readlink(fs, st.st_ino, buf, 5), 0);
			CHECK(strlen(buf) == 4 && !memcmp(buf, target, 4));
		}
		target[len] = save;
	}
	target[bs] = '\0';
	CHECK_EQ(namei_symlink(fs, EXT2_ROOT_INO, "toolong", target, &cred,
			       NULL), -ENAMETOOLONG);
	CHECK_EQ(namei_symlink(fs, EXT2_ROOT_INO, "empty", "", &cred, NULL),
		 -ENOENT);
	CHECK_EQ(namei_readlink(fs, lk(fs, EXT2_ROOT_INO, "file"), buf,
				sizeof(buf)), -EINVAL);
	CHECK_EQ(namei_symlink(fs, EXT2_ROOT_INO, "sl10", "x", &cred, NULL),
		 -EEXIST);
}

static void test_dirs(struct fs *fs)
{
	ext2_ino_t d, sub, f;
	nlink_t root_links = nlink(fs, EXT2_ROOT_INO);

	set_old_times(fs, EXT2_ROOT_INO);
	d = unit_mkd(fs, EXT2_ROOT_INO, "dir");
	CHECK(d != 0);
	CHECK(stamped(fs, EXT2_ROOT_INO, 'm') &&
	      stamped(fs, EXT2_ROOT_INO, 'c'));
	CHECK_EQ(nlink(fs, d), 2);
	CHECK_EQ(nlink(fs, EXT2_ROOT_INO), root_links + 1);
	CHECK_EQ(lk(fs, d, ".."), EXT2_ROOT_INO);
	CHECK_EQ(lk(fs, d, "."), d);
	sub = unit_mkd(fs, d, "sub");
	CHECK(sub != 0);
	CHECK_EQ(nlink(fs, d), 3);
	f = mkf(fs, sub, "f");
	CHECK(f != 0);
	CHECK_EQ(namei_rmdir(fs, d, "sub"), -ENOTEMPTY);
	CHECK_EQ(namei_rmdir(fs, sub, "f"), -ENOTDIR);
	CHECK_EQ(namei_unlink(fs, d, "sub"), -EISDIR);
	CHECK_EQ(namei_rmdir(fs, d, "."), -EINVAL);
	CHECK_EQ(namei_rmdir(fs, d, ".."), -ENOTEMPTY);
	CHECK_EQ(namei_unlink(fs, d, "."), -EISDIR);
	CHECK_EQ(namei_rmdir(fs, d, "nothere"), -ENOENT);
	CHECK_EQ(namei_unlink(fs, sub, "f"), 0);
	CHECK_EQ(lk(fs, sub, "f"), 0);
	CHECK_EQ(namei_rmdir(fs, d, "sub"), 0);
	CHECK_EQ(nlink(fs, d), 2);
	CHECK_EQ(lk(fs, d, "sub"), 0);
	CHECK_EQ(namei_rmdir(fs, EXT2_ROOT_INO, "dir"), 0);
	CHECK_EQ(nlink(fs, EXT2_ROOT_INO), root_links);
}

static void test_links(struct fs *fs)
{
	ext2_ino_t f, d;
	struct stat st;

	f = mkf(fs, EXT2_ROOT_INO, "orig");
	d = unit_mkd(fs, EXT2_ROOT_INO, "ldir");
	set_old_times(fs, f);
	set_old_times(fs, d);
	CHECK_EQ(namei_link(fs, f, d, "hard", &st), 0);
	CHECK(stamped(fs, f, 'c') && stamped(fs, d, 'm') &&
	      stamped(fs, d, 'c'));
	CHECK_EQ(st.st_nlink, 2);
	CHECK_EQ(lk(fs, d, "hard"), f);
	CHECK_EQ(namei_link(fs, f, d, "hard", NULL), -EEXIST);
	CHECK_EQ(namei_link(fs, d, EXT2_ROOT_INO, "dirlink", NULL), -EPERM);
	CHECK_EQ(namei_link(fs, f, f, "x", NULL), -ENOTDIR);
	set_old_times(fs, EXT2_ROOT_INO);
	set_old_times(fs, f);
	CHECK_EQ(namei_unlink(fs, EXT2_ROOT_INO, "orig"), 0);
	CHECK(stamped(fs, EXT2_ROOT_INO, 'm') && stamped(fs, f, 'c'));
	CHECK_EQ(nlink(fs, f), 1);
	CHECK_EQ(lk(fs, d, "hard"), f);

	/* EMLINK at 65000. */
	set_links(fs, f, EXT2_LINK_MAX - 1);
	CHECK_EQ(namei_link(fs, f, d, "hard2", NULL), 0);
	CHECK_EQ(nlink(fs, f), EXT2_LINK_MAX);
	CHECK_EQ(namei_link(fs, f, d, "hard3", NULL), -EMLINK);
	CHECK_EQ(namei_unlink(fs, d, "hard2"), 0);
	set_links(fs, f, 1);

	/* An open inode keeps living after its last name goes. */
	fs_iref_get(fs, f);
	CHECK_EQ(namei_unlink(fs, d, "hard"), 0);
	CHECK_EQ(nlink(fs, f), 0);
	/* ... and can get a name back (O_TMPFILE + linkat). */
	CHECK_EQ(namei_link(fs, f, d, "back", &st), 0);
	CHECK_EQ(st.st_nlink, 1);
	CHECK_EQ(namei_unlink(fs, d, "back"), 0);
	fs_iref_put(fs, f, 1);
	CHECK_EQ(namei_link(fs, f, d, "gone", NULL), -ENOENT);
	CHECK_EQ(namei_rmdir(fs, EXT2_ROOT_INO, "ldir"), 0);
}

static __u32 dtime_of(struct fs *fs, ext2_ino_t ino)
{
	struct ext2_inode_large inode;
	__u32 dtime = ~0u;

	fs_lock(fs);
	if (!fsi_read(fs, ino, &inode))
		dtime = inode.i_dtime;
	fs_unlock(fs);
	return dtime;
}

static int in_use(struct fs *fs, ext2_ino_t ino)
{
	int ret;

	fs_lock(fs);
	ret = ext2fs_test_inode_bitmap2(fs->e2->inode_map, ino);
	fs_unlock(fs);
	return ret;
}

/*
 * Open inodes whose names go wait on the orphan list, chained through
 * i_dtime; the last put takes each off (middle, tail, head) and frees it.
 */
static void test_orphans(struct fs *fs)
{
	struct ext2_super_block *sb = fs->e2->super;
	ext2_ino_t d = unit_mkd(fs, EXT2_ROOT_INO, "orph");
	ext2_ino_t a = mkf(fs, d, "a");
	ext2_ino_t b = mkf(fs, d, "b");
	ext2_ino_t c = mkf(fs, d, "c");

	fs_iref_get(fs, a);
	fs_iref_get(fs, b);
	fs_iref_get(fs, c);
	CHECK_EQ(namei_unlink(fs, d, "a"), 0);
	CHECK_EQ(namei_unlink(fs, d, "b"), 0);
	CHECK_EQ(namei_unlink(fs, d, "c"), 0);
	CHECK_EQ(sb->s_last_orphan, c);
	CHECK_EQ(dtime_of(fs, c), b);
	CHECK_EQ(dtime_of(fs, b), a);
	CHECK_EQ(dtime_of(fs, a), 0);
	CHECK(stamped(fs, c, 'c'));
	CHECK_EQ(nlink(fs, c), 0);
	fs_iref_put(fs, b, 1);
	CHECK_EQ(sb->s_last_orphan, c);
	CHECK_EQ(dtime_of(fs, c), a);
	CHECK(!in_use(fs, b));
	fs_iref_put(fs, a, 1);
	CHECK_EQ(sb->s_last_orphan, c);
	CHECK_EQ(dtime_of(fs, c), 0);
	CHECK(!in_use(fs, a));
	fs_iref_put(fs, c, 1);
	CHECK_EQ(sb->s_last_orphan, 0);
	CHECK(!in_use(fs, c));
	CHECK(dtime_of(fs, c) > 1000);
	CHECK_EQ(namei_rmdir(fs, EXT2_ROOT_INO, "orph"), 0);
}

static void test_rename(struct fs *fs)
{
	ext2_ino_t a, b, sub, deep, f, g, h, e;
	nlink_t root_links;
	int i;

	a = unit_mkd(fs, EXT2_ROOT_INO, "ra");
	b = unit_mkd(fs, EXT2_ROOT_INO, "rb");
	root_links = nlink(fs, EXT2_ROOT_INO);
	f = mkf(fs, a, "f");
	g = mkf(fs, a, "g");

	/* Plain move within a dir and across dirs; who gets stamped. */
	set_old_times(fs, a);
	set_old_times(fs, b);
	set_old_times(fs, f);
	set_old_times(fs, g);
	CHECK_EQ(namei_rename(fs, a, "f", a, "f2", 0), 0);
	CHECK(stamped(fs, a, 'm') && stamped(fs, a, 'c'));
	CHECK(stamped(fs, f, 'c') && !stamped(fs, f, 'm'));
	CHECK(!stamped(fs, b, 'm') && !stamped(fs, g, 'c'));
	CHECK_EQ(lk(fs, a, "f"), 0);
	CHECK_EQ(lk(fs, a, "f2"), f);
	set_old_times(fs, a);
	CHECK_EQ(namei_rename(fs, a, "f2", b, "f", 0), 0);
	CHECK(stamped(fs, a, 'm') && stamped(fs, b, 'm') &&
	      stamped(fs, b, 'c'));
	CHECK_EQ(lk(fs, a, "f2"), 0);
	CHECK_EQ(lk(fs, b, "f"), f);
	CHECK_EQ(namei_rename(fs, a, "nothere", b, "x", 0), -ENOENT);

	/* Replace: the target inode loses its link (freed; fsck checks). */
	CHECK_EQ(namei_rename(fs, a, "g", b, "f", FS_RENAME_NOREPLACE),
		 -EEXIST);
	set_old_times(fs, f);
	CHECK_EQ(namei_rename(fs, a, "g", b, "f", 0), 0);
	CHECK_EQ(lk(fs, b, "f"), g);
	CHECK_EQ(lk(fs, a, "g"), 0);
	CHECK_EQ(namei_rename(fs, b, "f", a, "g", FS_RENAME_NOREPLACE), 0);
	CHECK_EQ(lk(fs, a, "g"), g);

	/* Flags. */
	CHECK_EQ(namei_rename(fs, a, "g", b, "g",
			      FS_RENAME_NOREPLACE | FS_RENAME_EXCHANGE),
		 -EINVAL);
	CHECK_EQ(namei_rename(fs, a, "g", b, "g", 1u << 5), -EINVAL);
	CHECK_EQ(namei_rename(fs, a, "g", b, "g", FS_RENAME_EXCHANGE),
		 -ENOENT);
	CHECK_EQ(namei_rename(fs, a, ".", b, "x", 0), -EBUSY);
	CHECK_EQ(namei_rename(fs, a, "g", b, "..", 0), -EBUSY);
	CHECK_EQ(namei_rename(fs, a, "g", b, "..", FS_RENAME_NOREPLACE),
		 -EEXIST);

	/* Hard link of the same inode: nothing happens. */
	CHECK_EQ(namei_link(fs, g, b, "g_link", NULL), 0);
	CHECK_EQ(namei_rename(fs, a, "g", b, "g_link", 0), 0);
	CHECK_EQ(lk(fs, a, "g"), g);
	CHECK_EQ(lk(fs, b, "g_link"), g);
	CHECK_EQ(nlink(fs, g), 2);
	CHECK_EQ(namei_unlink(fs, b, "g_link"), 0);

	/* Directory moves: "..", parents' link counts. */
	sub = unit_mkd(fs, a, "sub");
	deep = unit_mkd(fs, sub, "deep");
	CHECK_EQ(nlink(fs, a), 3);
	CHECK_EQ(namei_rename(fs, a, "sub", b, "sub", 0), 0);
	CHECK_EQ(lk(fs, sub, ".."), b);
	CHECK_EQ(nlink(fs, a), 2);
	CHECK_EQ(nlink(fs, b), 3);
	CHECK_EQ(nlink(fs, EXT2_ROOT_INO), root_links);

	/* Into its own subtree. */
	CHECK_EQ(namei_rename(fs, b, "sub", deep, "x", 0), -EINVAL);
	CHECK_EQ(namei_rename(fs, b, "sub", sub, "x", 0), -EINVAL);
	CHECK_EQ(namei_rename(fs, EXT2_ROOT_INO, "rb", deep, "x", 0), -EINVAL);
	CHECK(mkf(fs, deep, "x") != 0);
	CHECK_EQ(namei_rename(fs, b, "sub", deep, "x", FS_RENAME_EXCHANGE),
		 -EINVAL);
	CHECK_EQ(namei_unlink(fs, deep, "x"), 0);

	/* Type mismatches and non-empty targets. */
	h = mkf(fs, a, "h");
	CHECK_EQ(namei_rename(fs, b, "sub", a, "h", 0), -ENOTDIR);
	CHECK_EQ(namei_rename(fs, a, "h", b, "sub", 0), -EISDIR);
	e = unit_mkd(fs, a, "empty");
	CHECK_EQ(namei_rename(fs, a, "empty", b, "sub", 0), -ENOTEMPTY);
	/* Ancestor as target: not empty. */
	CHECK_EQ(namei_rename(fs, sub, "deep", EXT2_ROOT_INO, "rb", 0),
		 -ENOTEMPTY);

	/* Directory over an empty directory, across parents. */
	CHECK_EQ(nlink(fs, a), 3);
	CHECK_EQ(namei_rename(fs, b, "sub", a, "empty", 0), 0);
	CHECK_EQ(lk(fs, a, "empty"), sub);
	CHECK_EQ(lk(fs, sub, ".."), a);
	CHECK_EQ(nlink(fs, a), 3);
	CHECK_EQ(nlink(fs, b), 2);
	(void)e;

	/* Directory over an empty directory in the same parent. */
	e = unit_mkd(fs, a, "e2");
	CHECK_EQ(nlink(fs, a), 4);
	CHECK_EQ(namei_rename(fs, a, "e2", a, "empty", 0), -ENOTEMPTY);
	CHECK_EQ(namei_rename(fs, a, "empty", a, "e2", 0), 0);
	CHECK_EQ(nlink(fs, a), 3);
	CHECK_EQ(lk(fs, a, "e2"), sub);
	CHECK_EQ(lk(fs, a, "empty"), 0);

	/* Exchange a file and a directory across parents. */
	CHECK_EQ(namei_rename(fs, a, "e2", b, "hx", 0), 0);
	CHECK_EQ(namei_rename(fs, a, "h", b, "hx", FS_RENAME_EXCHANGE), 0);
	CHECK_EQ(lk(fs, a, "h"), sub);
	CHECK_EQ(lk(fs, b, "hx"), h);
	CHECK_EQ(lk(fs, sub, ".."), a);
	CHECK_EQ(nlink(fs, a), 3);
	CHECK_EQ(nlink(fs, b), 2);
	CHECK_EQ(namei_rename(fs, a, "h", b, "hx", FS_RENAME_EXCHANGE), 0);
	CHECK_EQ(lk(fs, b, "hx"), sub);
	CHECK_EQ(lk(fs, sub, ".."), b);
	CHECK_EQ(nlink(fs, a), 2);
	CHECK_EQ(nlink(fs, b), 3);

	/* Exchange two directories across parents. */
	e = unit_mkd(fs, a, "ea");
	CHECK_EQ(namei_rename(fs, a, "ea", b, "hx", FS_RENAME_EXCHANGE), 0);
	CHECK_EQ(lk(fs, a, "ea"), sub);
	CHECK_EQ(lk(fs, b, "hx"), e);
	CHECK_EQ(lk(fs, sub, ".."), a);
	CHECK_EQ(lk(fs, e, ".."), b);
	CHECK_EQ(nlink(fs, a), 3);
	CHECK_EQ(nlink(fs, b), 3);

	/* Exchange in the same directory. */
	CHECK_EQ(namei_rename(fs, a, "ea", a, "h", FS_RENAME_EXCHANGE), 0);
	CHECK_EQ(lk(fs, a, "ea"), h);
	CHECK_EQ(lk(fs, a, "h"), sub);

	/* Many renames in one directory: entries move between blocks. */
	for (i = 0; i < 100; i++) {
		char n1[64], n2[64];

		snprintf(n1, sizeof(n1), "renamed_%d_%040d", i, i);
		snprintf(n2, sizeof(n2), "renamed_%d_%040d", i + 1, i + 1);
		if (i == 0)
			CHECK_EQ(namei_rename(fs, a, "ea", a, n2, 0), 0);
		else if (namei_rename(fs, a, n1, a, n2, 0))
			CHECK(!"rename loop");
	}
	{
		char last[64];

		snprintf(last, sizeof(last), "renamed_%d_%040d", 100, 100);
		CHECK_EQ(lk(fs, a, last), h);
	}

	/* Clean up what the rest does not need. */
	CHECK_EQ(namei_rmdir(fs, a, "h"), -ENOTEMPTY);
	CHECK_EQ(namei_rmdir(fs, sub, "deep"), 0);
	CHECK_EQ(namei_rmdir(fs, a, "h"), 0);
	CHECK_EQ(nlink(fs, a), 2);
}

static void test_flags(struct fs *fs)
{
	ext2_ino_t d, f, g, imm, app;

	d = unit_mkd(fs, EXT2_ROOT_INO, "flags");
	f = mkf(fs, d, "f");
	g = mkf(fs, d, "g");
	imm = unit_mkd(fs, d, "imm");
	app = unit_mkd(fs, d, "app");
	CHECK(mkf(fs, imm, "inside") != 0);
	CHECK(mkf(fs, app, "inside") != 0);
	set_flags(fs, imm, EXT2_IMMUTABLE_FL, 0);
	set_flags(fs, app, EXT2_APPEND_FL, 0);

	CHECK_EQ(namei_mknod(fs, imm, "x", S_IFREG | 0644, 0, &cred, NULL),
		 -EPERM);
	CHECK_EQ(namei_mkdir(fs, imm, "x", 0755, &cred, NULL), -EPERM);
	CHECK_EQ(namei_symlink(fs, imm, "x", "t", &cred, NULL), -EPERM);
	CHECK_EQ(namei_link(fs, f, imm, "x", NULL), -EPERM);
	CHECK_EQ(namei_unlink(fs, imm, "inside"), -EPERM);
	CHECK_EQ(namei_rename(fs, d, "f", imm, "x", 0), -EPERM);
	CHECK_EQ(namei_rename(fs, imm, "inside", d, "x", 0), -EPERM);

	CHECK(mkf(fs, app, "new") != 0);
	CHECK_EQ(namei_unlink(fs, app, "inside"), -EPERM);
	CHECK_EQ(namei_rename(fs, app, "inside", d, "x", 0), -EPERM);
	CHECK_EQ(namei_rename(fs, d, "f", app, "inside", 0), -EPERM);
	CHECK_EQ(namei_rename(fs, d, "f", app, "moved", 0), 0);
	CHECK_EQ(namei_rename(fs, app, "moved", d, "f", 0), -EPERM);

	set_flags(fs, g, EXT2_IMMUTABLE_FL, 0);
	CHECK_EQ(namei_unlink(fs, d, "g"), -EPERM);
	CHECK_EQ(namei_link(fs, g, d, "g2", NULL), -EPERM);
	CHECK_EQ(namei_rename(fs, d, "g", d, "g2", 0), -EPERM);
	set_flags(fs, g, EXT2_APPEND_FL, EXT2_IMMUTABLE_FL);
	CHECK_EQ(namei_unlink(fs, d, "g"), -EPERM);
	CHECK_EQ(namei_link(fs, g, d, "g2", NULL), -EPERM);
	set_flags(fs, g, 0, EXT2_APPEND_FL);
	CHECK_EQ(namei_unlink(fs, d, "g"), 0);

	set_flags(fs, imm, 0, EXT2_IMMUTABLE_FL);
	set_flags(fs, app, 0, EXT2_APPEND_FL);
	CHECK_EQ(namei_unlink(fs, app, "moved"), 0);
	CHECK_EQ(namei_unlink(fs, app, "inside"), 0);
	CHECK_EQ(namei_unlink(fs, app, "new"), 0);
	CHECK_EQ(namei_unlink(fs, imm, "inside"), 0);
	CHECK_EQ(namei_rmdir(fs, d, "imm"), 0);
	CHECK_EQ(namei_rmdir(fs, d, "app"), 0);
}

/* Directory link counts at EXT2_LINK_MAX: dir_nlink's 1, or EMLINK. */
static void test_dir_nlink(struct fs *fs, int has_dir_nlink)
{
	ext2_ino_t d = unit_mkd(fs, EXT2_ROOT_INO, "many");
	ext2_ino_t x;

	set_links(fs, d, EXT2_LINK_MAX - 2);
	CHECK(unit_mkd(fs, d, "s1") != 0);
	CHECK_EQ(nlink(fs, d), EXT2_LINK_MAX - 1);
	if (has_dir_nlink) {
		CHECK(unit_mkd(fs, d, "s2") != 0);
		CHECK_EQ(nlink(fs, d), 1);
		CHECK(unit_mkd(fs, d, "s3") != 0);
		CHECK_EQ(nlink(fs, d), 1);
		x = unit_mkd(fs, EXT2_ROOT_INO, "s4");
		CHECK_EQ(namei_rename(fs, EXT2_ROOT_INO, "s4", d, "s4", 0), 0);
		CHECK_EQ(lk(fs, x, ".."), d);
		CHECK_EQ(namei_rmdir(fs, d, "s4"), 0);
		CHECK_EQ(namei_rmdir(fs, d, "s3"), 0);
		CHECK_EQ(namei_rmdir(fs, d, "s2"), 0);
		CHECK_EQ(nlink(fs, d), 1);
	} else {
		CHECK(unit_mkd(fs, d, "s2") != 0);
		CHECK_EQ(nlink(fs, d), EXT2_LINK_MAX);
		CHECK_EQ(namei_mkdir(fs, d, "s3", 0755, &cred, NULL), -EMLINK);
		x = unit_mkd(fs, EXT2_ROOT_INO, "s4");
		CHECK_EQ(namei_rename(fs, EXT2_ROOT_INO, "s4", d, "s4", 0),
			 -EMLINK);
		CHECK_EQ(namei_rmdir(fs, EXT2_ROOT_INO, "s4"), 0);
		(void)x;
		CHECK_EQ(namei_rmdir(fs, d, "s2"), 0);
	}
	CHECK_EQ(namei_rmdir(fs, d, "s1"), 0);
	set_links(fs, d, 2);
	CHECK_EQ(namei_rmdir(fs, EXT2_ROOT_INO, "many"), 0);
}

/* Enough names to push a directory past its first block (or inline). */
static void test_grow(struct fs *fs)
{
	ext2_ino_t d = unit_mkd(fs, EXT2_ROOT_INO, "grow");
	char name[128];
	int i, bad = 0;

	for (i = 0; i < 300; i++) {
		snprintf(name, sizeof(name), "a_rather_long_file_name_%04d", i);
		if (!mkf(fs, d, name))
			bad++;
	}
	CHECK_EQ(bad, 0);
	for (i = 0; i < 300; i++) {
		snprintf(name, sizeof(name), "a_rather_long_file_name_%04d", i);
		if (!lk(fs, d, name))
			bad++;
	}
	CHECK_EQ(bad, 0);
	for (i = 0; i < 300; i += 2) {
		snprintf(name, sizeof(name), "a_rather_long_file_name_%04d", i);
		if (namei_unlink(fs, d, name))
			bad++;
	}
	CHECK_EQ(bad, 0);
	CHECK_EQ(namei_rmdir(fs, EXT2_ROOT_INO, "grow"), -ENOTEMPTY);
}

/* The kernel must read what we wrote: device numbers and symlinks. */
static void kernel_check(const char *img)
{
	char mnt[512];

	snprintf(mnt, sizeof(mnt), "%s/mnt", unit_scratch());
	unit_run("mkdir -p %s", mnt);
	if (unit_run("mount -o loop,ro '%s' %s 2>/dev/null", img, mnt)) {
		unit_skip("kernel mount: cannot loop-mount");
		return;
	}
	CHECK_EQ(unit_run("test \"$(stat -c %%t:%%T %s/null)\" = 1:3", mnt), 0);
	CHECK_EQ(unit_run("test \"$(stat -c %%t:%%T %s/bigdev)\" = 12c:11170",
			  mnt), 0);
	CHECK_EQ(unit_run("test \"$(readlink %s/sl100 | wc -c)\" = 101", mnt),
		 0);
	CHECK_EQ(unit_run("test \"$(readlink %s/sl1000 | wc -c)\" = 1001",
			  mnt), 0);
	CHECK_EQ(unit_run("test \"$(readlink %s/sl10)\" = abcdefghij", mnt), 0);
	CHECK_EQ(unit_run("test \"$(ls %s/grow | wc -l)\" = 150", mnt), 0);
	unit_run("umount %s", mnt);
}

static void run(const char *name, const char *mkfs_args, unsigned long kib,
		int has_dir_nlink)
{
	const char *img;
	struct fs *fs;

	printf("== %s (%s)\n", name, mkfs_args);
	img = unit_mkfs(name, mkfs_args, kib);
	fs = unit_open(img, 0);
	test_names(fs);
	test_special(fs);
	test_symlinks(fs);
	test_dirs(fs);
	test_links(fs);
	test_orphans(fs);
	test_rename(fs);
	test_flags(fs);
	test_dir_nlink(fs, has_dir_nlink);
	test_grow(fs);
	CHECK_EQ(fs_close(fs), 0);
	unit_fsck(img);
	kernel_check(img);

	/* Read-only: every change is EROFS. */
	fs = unit_open(img, 1);
	CHECK_EQ(namei_mknod(fs, EXT2_ROOT_INO, "ro", S_IFREG | 0644, 0, &cred,
			     NULL), -EROFS);
	CHECK_EQ(namei_unlink(fs, EXT2_ROOT_INO, "file"), -EROFS);
	CHECK_EQ(namei_rename(fs, EXT2_ROOT_INO, "file", EXT2_ROOT_INO, "x",
			      0), -EROFS);
	CHECK(lk(fs, EXT2_ROOT_INO, "file") != 0);
	CHECK_EQ(fs_close(fs), 0);
}

static uint64_t dir_size(struct fs *fs, ext2_ino_t dir)
{
	struct ext2_inode_large inode;
	uint64_t size = 0;

	fs_lock(fs);
	if (!fsi_read(fs, dir, &inode))
		size = fsi_size(&inode);
	fs_unlock(fs);
	return size;
}

/* Counts the names prefix%d, from..to step 2, that lookup does not find. */
static int missing(struct fs *fs, ext2_ino_t dir, const char *prefix,
		   int from, int to)
{
	char name[32];
	int i, bad = 0;

	for (i = from; i < to; i += 2) {
		snprintf(name, sizeof(name), "%s%d", prefix, i);
		bad += !lk(fs, dir, name);
	}
	return bad;
}

/*
 * Linear (unindexed) directories of several blocks with checksum tails:
 * names land in the first block with room, in the space a removed name
 * left, never in the 12-byte tail (which a name of up to 4 bytes would
 * fit), and a name too long for any hole grows the directory.
 */
static void test_linear(void)
{
	const char *img;
	struct fs *fs;
	ext2_ino_t d;
	char name[64];
	uint64_t size;
	int i, bad = 0;

	printf("== linear directories\n");
	img = unit_mkfs("linear.img",
			"-t ext4 -b 1024 -O ^dir_index,metadata_csum", 8192);
	fs = unit_open(img, 0);
	d = unit_mkd(fs, EXT2_ROOT_INO, "lin");
	for (i = 0; i < 400; i++) {
		snprintf(name, sizeof(name), "n%d", i);
		bad += !mkf(fs, d, name);
	}
	CHECK_EQ(bad, 0);
	size = dir_size(fs, d);
	CHECK(size > 4 * 1024);
	for (i = 0; i < 400; i += 2) {
		snprintf(name, sizeof(name), "n%d", i);
		bad += namei_unlink(fs, d, name) != 0;
	}
	CHECK_EQ(bad, 0);
	/* Same lengths: each fits where a removed name was. */
	for (i = 0; i < 400; i += 2) {
		snprintf(name, sizeof(name), "m%d", i);
		bad += !mkf(fs, d, name);
	}
	CHECK_EQ(bad, 0);
	CHECK_EQ(dir_size(fs, d), size);
	CHECK_EQ(mkf(fs, d, "m0"), 0);
	CHECK_EQ(missing(fs, d, "n", 1, 400), 0);
	CHECK_EQ(missing(fs, d, "m", 0, 400), 0);
	CHECK_EQ(missing(fs, d, "n", 0, 400), 200);
	/* 48-byte entries: the holes cannot take them, new blocks must. */
	for (i = 0; i < 40; i++) {
		snprintf(name, sizeof(name), "%040d", i);
		bad += !mkf(fs, d, name);
	}
	CHECK_EQ(bad, 0);
	CHECK(dir_size(fs, d) > size);
	for (i = 0; i < 40; i++) {
		snprintf(name, sizeof(name), "%040d", i);
		bad += !lk(fs, d, name);
	}
	CHECK_EQ(bad, 0);
	CHECK_EQ(fs_close(fs), 0);
	unit_fsck(img);
}

/* Running out of inodes or blocks gives ENOSPC and leaks nothing. */
static void test_enospc(void)
{
	const char *img;
	struct fs *fs;
	char name[300], target[300];
	int i, ret = 0;

	printf("== ENOSPC: inodes\n");
	img = unit_mkfs("noinodes.img", "-t ext4 -b 1024 -N 64", 2048);
	fs = unit_open(img, 0);
	for (i = 0; i < 1000 && !ret; i++) {
		snprintf(name, sizeof(name), "f%d", i);
		ret = namei_mknod(fs, EXT2_ROOT_INO, name, S_IFREG | 0644, 0,
				  &cred, NULL);
	}
	CHECK_EQ(ret, -ENOSPC);
	CHECK_EQ(namei_mkdir(fs, EXT2_ROOT_INO, "d", 0755, &cred, NULL),
		 -ENOSPC);
	CHECK_EQ(fs_close(fs), 0);
	unit_fsck(img);

	printf("== ENOSPC: blocks\n");
	img = unit_mkfs("noblocks.img", "-t ext4 -b 1024 -N 2048", 1024);
	fs = unit_open(img, 0);
	memset(target, 't', 200);
	target[200] = '\0';
	ret = 0;
	for (i = 0; i < 5000 && !ret; i++) {
		snprintf(name, sizeof(name), "s%d", i);
		ret = namei_symlink(fs, EXT2_ROOT_INO, name, target, &cred,
				    NULL);
	}
	CHECK_EQ(ret, -ENOSPC);
	CHECK_EQ(namei_mkdir(fs, EXT2_ROOT_INO, "d", 0755, &cred, NULL),
		 -ENOSPC);
	/* Fill the root's last block, then it cannot grow. */
	memset(name, 'x', 250);
	ret = 0;
	for (i = 0; i < 100 && !ret; i++) {
		snprintf(name + 250, sizeof(name) - 250, "%d", i);
		ret = namei_mknod(fs, EXT2_ROOT_INO, name, S_IFREG | 0644, 0,
				  &cred, NULL);
	}
	CHECK_EQ(ret, -ENOSPC);
	CHECK_EQ(fs_close(fs), 0);
	unit_fsck(img);
}

int main(void)
{
	cred = unit_root();
	run("ext4.img", "-t ext4", 65536, 1);
	run("inline.img", "-t ext4 -O inline_data -I 256", 65536, 1);
	run("ext2.img", "-t ext2 -b 1024", 65536, 0);
	run("csum.img", "-t ext4 -O 64bit,metadata_csum", 65536, 1);
	test_enospc();
	test_linear();
	return unit_done();
}
