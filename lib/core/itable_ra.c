/*
 * Read-ahead of inode tables. A cold `ls -l`, `find` or random lookups in
 * a big directory read inodes one 4 KiB inode-table block at a time, and
 * random preads of the image get no read-ahead from the page cache under
 * it, so each one waits for the disk. Like ext4's inode_readahead_blks,
 * the first inode read in each window of ITABLE_RA_BLOCKS blocks of a
 * group's inode table asks for the whole window (POSIX_FADV_WILLNEED on
 * the image through the io channel); the read that follows then waits
 * for one larger IO instead of many small ones.
 *
 * One bit per window remembers that it was asked for: 16 KiB for a 1 TiB
 * ext4 with default mkfs options.
 */
#include <stdlib.h>

#include "core/fs_internal.h"

#define ITABLE_RA_BLOCKS 32

int itable_ra_init(struct fs *fs)
{
	ext2_filsys e2 = fs->e2;
	size_t bits;

	fs->itable_ra_windows = (e2->inode_blocks_per_group +
				 ITABLE_RA_BLOCKS - 1) / ITABLE_RA_BLOCKS;
	bits = (size_t)e2->group_desc_count * fs->itable_ra_windows;
	fs->itable_ra = calloc((bits + 7) / 8, 1);
	return fs->itable_ra ? 0 : -ENOMEM;
}

void itable_ra_fini(struct fs *fs)
{
	free(fs->itable_ra);
	fs->itable_ra = NULL;
}

void itable_ra_touch(struct fs *fs, ext2_ino_t ino)
{
	ext2_filsys e2 = fs->e2;
	dgrp_t group = (ino - 1) / e2->super->s_inodes_per_group;
	unsigned index = (ino - 1) % e2->super->s_inodes_per_group;
	blk64_t first = index / (e2->blocksize / EXT2_INODE_SIZE(e2->super));
	unsigned window = first / ITABLE_RA_BLOCKS;
	size_t bit = (size_t)group * fs->itable_ra_windows + window;
	blk64_t table, count;

	if (!fs->itable_ra || group >= e2->group_desc_count ||
	    window >= fs->itable_ra_windows)
		return;
	if (fs->itable_ra[bit / 8] & (1u << (bit % 8)))
		return;
	fs->itable_ra[bit / 8] |= 1u << (bit % 8);
	table = ext2fs_inode_table_loc(e2, group);
	first = (blk64_t)window * ITABLE_RA_BLOCKS;
	count = e2->inode_blocks_per_group - first;
	if (count > ITABLE_RA_BLOCKS)
		count = ITABLE_RA_BLOCKS;
	/* A damaged descriptor must not send us reading elsewhere. */
	if (!table || table + first + count > ext2fs_blocks_count(e2->super))
		return;
	io_channel_cache_readahead(e2->io, table + first, count);
}
