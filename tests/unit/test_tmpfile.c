/*
 * Unit test of namei_tmpfile (O_TMPFILE): the inode has no link and
 * heads the orphan list; a link takes it off the list and keeps it, the
 * last reference frees an unlinked one (blocks too); the errors; e2fsck
 * -fn after each image, with a tmpfile still referenced at close.
 */
#include <sys/stat.h>

#include "unit.h"

static struct fs_cred cred;

static __u32 last_orphan(struct fs *fs)
{
	return fs->e2->super->s_last_orphan;
}

static int in_use(struct fs *fs, ext2_ino_t ino)
{
	int ret;

	fs_lock(fs);
	ret = ext2fs_test_inode_bitmap2(fs->e2->inode_map, ino);
	fs_unlock(fs);
	return ret;
}

static void test_link_and_free(void)
{
	const char *path = unit_mkfs("tmp.img", "-t ext4", 32768);
	struct fs *fs = unit_open(path, 0);
	struct stat st, st2, nst;
	struct statvfs before, after;
	char buf[65536];
	ext2_ino_t ino;

	printf("# tmpfile: linked, then one freed at its last reference\n");
	CHECK_EQ(namei_tmpfile(fs, EXT2_ROOT_INO, 0666, &cred, &st), 0);
	CHECK(S_ISREG(st.st_mode));
	CHECK_EQ(st.st_mode & 07777, 0644);
	CHECK_EQ(st.st_nlink, 0);
	CHECK_EQ(last_orphan(fs), st.st_ino);
	fs_iref_get(fs, st.st_ino);
	CHECK_EQ(file_write(fs, st.st_ino, "tmpdata", 7, 0, 0, &cred), 7);
	CHECK_EQ(namei_link(fs, st.st_ino, EXT2_ROOT_INO, "named", &nst), 0);
	CHECK_EQ(nst.st_nlink, 1);
	CHECK_EQ(last_orphan(fs), 0);
	fs_iref_put(fs, st.st_ino, 1);
	CHECK(in_use(fs, st.st_ino));
	CHECK_EQ(namei_lookup(fs, EXT2_ROOT_INO, "named", &ino, NULL), 0);
	CHECK_EQ(ino, st.st_ino);
	CHECK_EQ(file_read(fs, ino, buf, sizeof(buf), 0), 7);

	CHECK_EQ(fs_statfs(fs, &before), 0);
	CHECK_EQ(namei_tmpfile(fs, EXT2_ROOT_INO, 0600, &cred, &st2), 0);
	CHECK_EQ(st2.st_mode & 07777, 0600);
	fs_iref_get(fs, st2.st_ino);
	memset(buf, 'x', sizeof(buf));
	CHECK_EQ(file_write(fs, st2.st_ino, buf, sizeof(buf), 0, 0, &cred),
		 (ssize_t)sizeof(buf));
	CHECK_EQ(fs_sync(fs), 0);
	fs_iref_put(fs, st2.st_ino, 1);
	CHECK(!in_use(fs, st2.st_ino));
	CHECK_EQ(last_orphan(fs), 0);
	CHECK_EQ(fs_statfs(fs, &after), 0);
	CHECK_EQ(after.f_bfree, before.f_bfree);
	CHECK_EQ(after.f_ffree, before.f_ffree);
	/* An unlinked inode nobody holds cannot get a name back. */
	CHECK_EQ(namei_link(fs, st2.st_ino, EXT2_ROOT_INO, "late", NULL),
		 -ENOENT);

	/* Still referenced at unmount: freed then, as the kernel's ext4. */
	CHECK_EQ(namei_tmpfile(fs, EXT2_ROOT_INO, 0644, &cred, &st), 0);
	fs_iref_get(fs, st.st_ino);
	CHECK_EQ(file_write(fs, st.st_ino, buf, 4096, 0, 0, &cred), 4096);
	fs_close(fs);
	unit_fsck(path);
}

static void test_errors(void)
{
	const char *path = unit_mkfs("err.img", "-t ext4", 32768);
	struct fs *fs = unit_open(path, 0);
	ext2_ino_t d = unit_mkd(fs, EXT2_ROOT_INO, "d");
	struct ext2_inode_large inode;
	struct stat st;
	ext2_ino_t f;

	printf("# tmpfile errors\n");
	CHECK_EQ(namei_mknod(fs, EXT2_ROOT_INO, "f", S_IFREG | 0644, 0, &cred,
			     &st), 0);
	f = st.st_ino;
	CHECK_EQ(namei_tmpfile(fs, f, 0644, &cred, &st), -ENOTDIR);
	fs_lock(fs);
	fsi_read(fs, d, &inode);
	inode.i_flags |= EXT2_IMMUTABLE_FL;
	fsi_write(fs, d, &inode);
	fs_unlock(fs);
	CHECK_EQ(namei_tmpfile(fs, d, 0644, &cred, &st), -EPERM);
	fs_lock(fs);
	fsi_read(fs, d, &inode);
	inode.i_flags &= ~EXT2_IMMUTABLE_FL;
	fsi_write(fs, d, &inode);
	fs_unlock(fs);
	CHECK_EQ(namei_rmdir(fs, EXT2_ROOT_INO, "d"), 0);
	CHECK_EQ(last_orphan(fs), 0);
	fs_close(fs);
	fs = unit_open(path, 1);
	CHECK_EQ(namei_tmpfile(fs, EXT2_ROOT_INO, 0644, &cred, &st), -EROFS);
	fs_close(fs);
	unit_fsck(path);
}

int main(void)
{
	cred = unit_root();
	test_link_and_free();
	test_errors();
	return unit_done();
}
