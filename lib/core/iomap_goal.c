/*
 * Where the iomap engine looks for free blocks for a hole of an
 * extent-mapped file: beside the neighbouring extent, at the distance the
 * hole has from it in the file, as ext4 does. Writes into a file do not
 * arrive in file order: with the writeback cache the kernel sends several
 * at once and the server's threads take them as they come. libext2fs'
 * goal for a hole is the start of the inode's group whatever the hole, so
 * a later part of the file allocated first would come out before an
 * earlier one; with the distance kept, the earlier part still finds its
 * room in front.
 */
#include "core/iomap.h"

blk64_t iomap_alloc_goal(struct fs *fs, ext2_ino_t ino,
			 struct ext2_inode_large *inode, blk64_t lblk)
{
	ext2_filsys e2 = fs->e2;
	blk64_t base, goal, first, end, span;
	ext2_extent_handle_t h;
	struct ext2fs_extent ext;
	errcode_t err;

	base = ext2fs_find_inode_goal(e2, ino, (struct ext2_inode *)inode,
				      lblk);
	goal = base;
	first = e2->super->s_first_data_block;
	end = ext2fs_blocks_count(e2->super);
	/* Farther than a group away, keeping the distance buys nothing. */
	span = e2->super->s_blocks_per_group;
	if (ext2fs_extent_open2(e2, ino, (struct ext2_inode *)inode, &h))
		return base;
	/* The handle ends up on the extent before lblk, or after it. */
	err = ext2fs_extent_goto2(h, 0, lblk);
	if (err && err != EXT2_ET_EXTENT_NOT_FOUND &&
	    err != EXT2_ET_EXTENT_NO_NEXT)
		goto out;
	if (ext2fs_extent_get(h, EXT2_EXTENT_CURRENT, &ext)) {
		/* No blocks yet: counted from where the free space starts. */
		blk64_t free;

		if (lblk < span &&
		    !ext2fs_find_first_zero_block_bitmap2(e2->block_map, base,
							  end - 1, &free))
			goal = free + lblk;
	} else if (ext.e_lblk <= lblk) {
		if (lblk - ext.e_lblk < span)
			goal = ext.e_pblk + (lblk - ext.e_lblk);
	} else if (ext.e_lblk - lblk < span &&
		   ext.e_pblk >= first + (ext.e_lblk - lblk)) {
		goal = ext.e_pblk - (ext.e_lblk - lblk);
	}
out:
	ext2fs_extent_free(h);
	return goal >= first && goal < end ? goal : base;
}
