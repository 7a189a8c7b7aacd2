/*
 * The on-disk orphan list: s_last_orphan heads a chain of inodes linked
 * through i_dtime, as the kernel's ext4 keeps it. Unlinked-but-open inodes
 * wait there so a crash does not leak them; a rw mount frees (or, for
 * inodes that still have links, truncates to i_size) whatever a crash left.
 */
#include <stdio.h>

#include "core/fs_internal.h"

static int orphan_ino_valid(struct fs *fs, ext2_ino_t ino)
{
	struct ext2_super_block *sb = fs->e2->super;

	return ino >= EXT2_FIRST_INODE(sb) && ino <= sb->s_inodes_count;
}

int orphan_add(struct fs *fs, ext2_ino_t ino, struct ext2_inode_large *inode)
{
	struct ext2_super_block *sb = fs->e2->super;
	int ret;

	inode->i_dtime = sb->s_last_orphan;
	ret = fsi_write(fs, ino, inode);
	if (ret)
		return ret;
	sb->s_last_orphan = ino;
	ext2fs_mark_super_dirty(fs->e2);
	return 0;
}

/*
 * Unchains ino from the orphan list; clears its i_dtime too unless the
 * caller is about to free it (fsi_free writes i_dtime anyway).
 */
static int unchain(struct fs *fs, ext2_ino_t ino, int freeing)
{
	struct ext2_super_block *sb = fs->e2->super;
	struct ext2_inode_large inode, prev_inode;
	ext2_ino_t prev = 0, cur = sb->s_last_orphan;
	__u32 steps = 0;
	int ret;

	while (cur) {
		if (!orphan_ino_valid(fs, cur) || ++steps > sb->s_inodes_count)
			return FS_CORRUPT(fs, cur, "bad orphan list");
		ret = fsi_read(fs, cur, &inode);
		if (ret)
			return ret;
		if (cur != ino) {
			prev = cur;
			cur = inode.i_dtime;
			continue;
		}
		if (prev) {
			ret = fsi_read(fs, prev, &prev_inode);
			if (ret)
				return ret;
			prev_inode.i_dtime = inode.i_dtime;
			ret = fsi_write(fs, prev, &prev_inode);
			if (ret)
				return ret;
		} else {
			sb->s_last_orphan = inode.i_dtime;
			ext2fs_mark_super_dirty(fs->e2);
		}
		if (freeing)
			return 0;
		inode.i_dtime = 0;
		return fsi_write(fs, ino, &inode);
	}
	return 0;
}

int orphan_remove(struct fs *fs, ext2_ino_t ino)
{
	return unchain(fs, ino, 0);
}

int orphan_free(struct fs *fs, ext2_ino_t ino)
{
	int ret = unchain(fs, ino, 1);
	/* Freed even when the list cannot be followed, as ever. */
	int ret2 = fsi_free(fs, ino);

	return ret ? ret : ret2;
}

int orphan_process(struct fs *fs)
{
	struct ext2_super_block *sb = fs->e2->super;
	struct ext2_inode_large inode;
	ext2_ino_t ino, next;
	__u32 steps = 0;
	int ret;

	while ((ino = sb->s_last_orphan) != 0) {
		if (!orphan_ino_valid(fs, ino) || ++steps > sb->s_inodes_count) {
			/* Drop a list we cannot follow; e2fsck will sort it. */
			sb->s_last_orphan = 0;
			ext2fs_mark_super_dirty(fs->e2);
			return FS_CORRUPT(fs, ino, "bad orphan list");
		}
		ret = fsi_read(fs, ino, &inode);
		if (ret)
			return ret;
		next = inode.i_dtime;
		sb->s_last_orphan = next;
		ext2fs_mark_super_dirty(fs->e2);
		inode.i_dtime = 0;
		if (!ext2fs_test_inode_bitmap2(fs->e2->inode_map, ino))
			ret = 0; /* already free: just unchain it */
		else if (inode.i_links_count == 0)
			ret = fsi_write(fs, ino, &inode) ?: fsi_free(fs, ino);
		else if (LINUX_S_ISREG(inode.i_mode))
			ret = fsi_truncate(fs, ino, &inode, fsi_size(&inode));
		else
			ret = fsi_write(fs, ino, &inode);
		if (ret)
			return ret;
		if (fs->debug)
			fprintf(stderr, "%s: orphan inode %u cleaned up\n",
				fs->device, ino);
	}
	return 0;
}
