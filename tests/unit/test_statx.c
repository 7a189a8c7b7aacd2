/*
 * Unit test of inode_statx: the birth time of inodes that have room for
 * one (and none on 128-byte inodes), and the inode flags reported as
 * statx attributes with the mask ext4 reports.
 */
#include <sys/stat.h>
#include <time.h>

#include "unit.h"

static const uint64_t all_attrs = STATX_ATTR_APPEND | STATX_ATTR_COMPRESSED |
				  STATX_ATTR_ENCRYPTED |
				  STATX_ATTR_IMMUTABLE | STATX_ATTR_NODUMP |
				  STATX_ATTR_VERITY;

static ext2_ino_t mkfile(struct fs *fs, const char *name)
{
	struct fs_cred cred = unit_root();
	struct stat st;

	if (namei_mknod(fs, EXT2_ROOT_INO, name, S_IFREG | 0644, 0, &cred,
			&st))
		return 0;
	return st.st_ino;
}

static void set_flags(struct fs *fs, ext2_ino_t ino, __u32 flags)
{
	struct ext2_inode_large inode;

	fs_lock(fs);
	if (!fsi_read(fs, ino, &inode)) {
		inode.i_flags |= flags;
		fsi_write(fs, ino, &inode);
	}
	fs_unlock(fs);
}

static void test_large(void)
{
	const char *path = unit_mkfs("large.img", "-t ext4 -I 256", 32768);
	struct fs *fs = unit_open(path, 0);
	struct fs_statx sx;
	time_t before = time(NULL), after;
	ext2_ino_t f = mkfile(fs, "f"), g = mkfile(fs, "g");

	after = time(NULL);
	printf("# birth time and attributes (256-byte inodes)\n");
	CHECK(f && g);
	CHECK_EQ(inode_statx(fs, f, &sx), 0);
	CHECK_EQ(sx.st.st_ino, f);
	CHECK(S_ISREG(sx.st.st_mode));
	CHECK_EQ(sx.has_btime, 1);
	CHECK(sx.btime.tv_sec >= before && sx.btime.tv_sec <= after);
	CHECK_EQ(sx.attributes, 0);
	CHECK_EQ(sx.attributes_mask, all_attrs);
	set_flags(fs, g, EXT2_IMMUTABLE_FL | EXT2_NODUMP_FL);
	CHECK_EQ(inode_statx(fs, g, &sx), 0);
	CHECK_EQ(sx.attributes, STATX_ATTR_IMMUTABLE | STATX_ATTR_NODUMP);
	set_flags(fs, g, EXT2_APPEND_FL | EXT2_COMPR_FL | EXT4_ENCRYPT_FL |
			 EXT4_VERITY_FL);
	CHECK_EQ(inode_statx(fs, g, &sx), 0);
	CHECK_EQ(sx.attributes, all_attrs);
	CHECK_EQ(inode_statx(fs, EXT2_ROOT_INO, &sx), 0);
	CHECK(S_ISDIR(sx.st.st_mode));
	CHECK_EQ(inode_statx(fs, 99999, &sx) < 0, 1);
	fs_close(fs);
	/* The raw flags above are not for e2fsck: no check of this image. */
}

static void test_small(void)
{
	const char *path = unit_mkfs("small.img", "-t ext4 -I 128", 32768);
	struct fs *fs = unit_open(path, 0);
	struct fs_statx sx;
	ext2_ino_t f = mkfile(fs, "f");

	printf("# no birth time (128-byte inodes)\n");
	CHECK_EQ(inode_statx(fs, f, &sx), 0);
	CHECK_EQ(sx.has_btime, 0);
	CHECK_EQ(sx.btime.tv_sec, 0);
	CHECK_EQ(sx.attributes_mask, all_attrs);
	fs_close(fs);
	unit_fsck(path);
}

int main(void)
{
	test_large();
	test_small();
	return unit_done();
}
