/*
 * O_TMPFILE: a regular file created without a name. Like ext4, the inode
 * has no link and waits on the orphan list from the start, so a crash
 * frees it; a link (namei_link) takes it off the list, the last
 * reference (fs_iref_put) frees it. The directory is not changed.
 */
#include "core/fs_internal.h"

int namei_tmpfile(struct fs *fs, ext2_ino_t dir, mode_t mode,
		  const struct fs_cred *cred, struct stat *st)
{
	struct ext2_inode_large dinode, inode;
	ext2_ino_t ino;
	int ret;

	fs_lock(fs);
	ret = fs_writable(fs);
	if (ret)
		goto out;
	ret = fsi_read(fs, dir, &dinode);
	if (ret)
		goto out;
	ret = -ENOTDIR;
	if (!LINUX_S_ISDIR(dinode.i_mode))
		goto out;
	ret = -ENOENT;
	if (!dinode.i_links_count)
		goto out;
	/* The kernel asks for write access to dir, which this refuses. */
	ret = -EPERM;
	if (dinode.i_flags & EXT2_IMMUTABLE_FL)
		goto out;
	ret = fsi_new(fs, dir, LINUX_S_IFREG | (mode & 07777), cred, &ino,
		      &inode);
	if (ret)
		goto out;
	inode.i_links_count = 0;
	ret = fsi_write(fs, ino, &inode);
	if (ret) {
		/* The on-disk inode is still the old one: just unmark it. */
		ext2fs_inode_alloc_stats2(fs->e2, ino, -1, 0);
		goto out;
	}
	/* Umask or the directory's default ACL, as for a named file. */
	ret = acl_inherit(fs, dir, ino, cred);
	if (!ret)
		ret = fsi_read(fs, ino, &inode);
	if (!ret)
		ret = orphan_add(fs, ino, &inode);
	if (ret) {
		fsi_free(fs, ino);
		goto out;
	}
	fsi_to_stat(fs, ino, &inode, st);
out:
	fs_unlock(fs);
	return ret;
}
