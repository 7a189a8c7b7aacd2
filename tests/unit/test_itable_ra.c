/*
 * Unit tests of lib/core/itable_ra.c: the first inode read in each
 * 32-block window of a group's inode table asks the io channel to read
 * the whole window ahead, once; a damaged inode table location asks for
 * nothing.
 */
#include "unit.h"
#include "core/fs_internal.h"
#include "support/cache_io.h"

static unsigned long long ra_blocks(struct fs *fs)
{
	struct cache_io_stats st;

	if (cache_io_stats(fs->e2->io, &st))
		return ~0ULL;
	return st.readahead_blocks;
}

static void read_ino(struct fs *fs, ext2_ino_t ino)
{
	struct ext2_inode_large inode;

	CHECK_EQ(fsi_read(fs, ino, &inode), 0);
}

int main(void)
{
	/* 2 groups of 8192 inodes: 512 inode-table blocks, 16 windows each. */
	const char *img = unit_mkfs("ra.img", "-t ext4 -b 4096 -I 256 -N 16384",
				    256 * 1024);
	struct fs *fs = unit_open(img, 1);
	ext2_filsys e2 = fs->e2;
	unsigned per_block = e2->blocksize / EXT2_INODE_SIZE(e2->super);
	unsigned ipg = e2->super->s_inodes_per_group;
	unsigned long long base = ra_blocks(fs);
	blk64_t table;

	CHECK_EQ(e2->group_desc_count, 2);
	CHECK_EQ(e2->inode_blocks_per_group, 512);
	read_ino(fs, 12);
	CHECK_EQ(ra_blocks(fs) - base, 32);
	/* Same window: nothing more, even for the last inode in it. */
	read_ino(fs, 13);
	read_ino(fs, 32 * per_block);
	CHECK_EQ(ra_blocks(fs) - base, 32);
	/* Next window, then the first window of group 1. */
	read_ino(fs, 32 * per_block + 1);
	CHECK_EQ(ra_blocks(fs) - base, 64);
	read_ino(fs, ipg + 1);
	CHECK_EQ(ra_blocks(fs) - base, 96);
	read_ino(fs, ipg + 2);
	CHECK_EQ(ra_blocks(fs) - base, 96);

	/* A table said to lie past the end of the fs is not read ahead. */
	table = ext2fs_inode_table_loc(e2, 1);
	ext2fs_inode_table_loc_set(e2, 1, ext2fs_blocks_count(e2->super) - 8);
	itable_ra_touch(fs, ipg + 32 * per_block + 1);
	CHECK_EQ(ra_blocks(fs) - base, 96);
	ext2fs_inode_table_loc_set(e2, 1, table);

	CHECK_EQ(fs_close(fs), 0);
	unit_fsck(img);
	return unit_done();
}
