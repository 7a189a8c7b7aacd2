/*
 * Inode attributes: getattr, setattr (mode, owner, size, times) with the
 * kernel's rules for immutable and append-only inodes and for setuid and
 * setgid bits, and access(2) as root sees it.
 */
#include <string.h>
#include <unistd.h>

#include "core/fs_internal.h"

int inode_getattr(struct fs *fs, ext2_ino_t ino, struct stat *st)
{
	struct ext2_inode_large inode;
	int ret;

	fs_lock(fs);
	ret = fsi_read(fs, ino, &inode);
	if (ret)
		goto out;
	fsi_to_stat(fs, ino, &inode, st);
out:
	fs_unlock(fs);
	return ret;
}

/* The inode flags statx(2) reports on ext4, and as what. */
static const struct {
	__u32 flag;
	uint64_t attr;
} statx_flags[] = {
	{ EXT2_APPEND_FL, STATX_ATTR_APPEND },
	{ EXT2_COMPR_FL, STATX_ATTR_COMPRESSED },
	{ EXT4_ENCRYPT_FL, STATX_ATTR_ENCRYPTED },
	{ EXT2_IMMUTABLE_FL, STATX_ATTR_IMMUTABLE },
	{ EXT2_NODUMP_FL, STATX_ATTR_NODUMP },
	{ EXT4_VERITY_FL, STATX_ATTR_VERITY },
};

int inode_statx(struct fs *fs, ext2_ino_t ino, struct fs_statx *sx)
{
	struct ext2_inode_large inode;
	size_t i;
	int ret;

	memset(sx, 0, sizeof(*sx));
	fs_lock(fs);
	ret = fsi_read(fs, ino, &inode);
	if (ret)
		goto out;
	fsi_to_stat(fs, ino, &inode, &sx->st);
	sx->has_btime = fsi_has_crtime(&inode);
	if (sx->has_btime)
		fsi_get_time(&inode, FSI_CRTIME, &sx->btime);
	for (i = 0; i < sizeof(statx_flags) / sizeof(statx_flags[0]); i++) {
		sx->attributes_mask |= statx_flags[i].attr;
		if (inode.i_flags & statx_flags[i].flag)
			sx->attributes |= statx_flags[i].attr;
	}
out:
	fs_unlock(fs);
	return ret;
}

/*
 * Immutable inodes take no change at all; append-only ones only times set
 * to now (touch), as the VFS allows them.
 */
static int setattr_allowed(const struct ext2_inode_large *inode,
			   unsigned valid)
{
	if (inode->i_flags & EXT2_IMMUTABLE_FL)
		return -EPERM;
	if (!(inode->i_flags & EXT2_APPEND_FL))
		return 0;
	if (valid & (FS_SET_MODE | FS_SET_UID | FS_SET_GID | FS_SET_SIZE))
		return -EPERM;
	if ((valid & FS_SET_ATIME) && !(valid & FS_SET_ATIME_NOW))
		return -EPERM;
	if ((valid & FS_SET_MTIME) && !(valid & FS_SET_MTIME_NOW))
		return -EPERM;
	return 0;
}

static int setattr_size(struct fs *fs, ext2_ino_t ino,
			struct ext2_inode_large *inode, off_t size,
			const struct fs_cred *cred)
{
	uint64_t old = EXT2_I_SIZE(inode);
	int ret;

	if (LINUX_S_ISDIR(inode->i_mode))
		return -EISDIR;
	if (!LINUX_S_ISREG(inode->i_mode) || size < 0)
		return -EINVAL;
	if (inode->i_flags & (EXT4_ENCRYPT_FL | EXT4_VERITY_FL))
		return -EOPNOTSUPP;
	ret = file_set_size(fs, ino, inode, size);
	if (ret)
		return ret;
	file_kill_priv(fs, inode, cred);
	if ((uint64_t)size != old)
		fsi_touch(inode, FSI_TOUCH_MTIME);
	return 0;
}

static void set_owner(struct fs *fs, struct ext2_inode_large *inode,
		      const struct stat *st, unsigned valid)
{
	if (valid & FS_SET_UID) {
		uid_t uid = fs_map_uid(fs, st->st_uid);

		inode->i_uid = uid & 0xffff;
		ext2fs_set_i_uid_high(*inode, uid >> 16);
	}
	if (valid & FS_SET_GID) {
		gid_t gid = fs_map_gid(fs, st->st_gid);

		inode->i_gid = gid & 0xffff;
		ext2fs_set_i_gid_high(*inode, gid >> 16);
	}
	/*
	 * chown(2) of anything but a directory drops setuid, and setgid
	 * with group exec, whoever the caller is: the new owner must not
	 * inherit a privileged executable.
	 */
	if (LINUX_S_ISDIR(inode->i_mode))
		return;
	inode->i_mode &= ~LINUX_S_ISUID;
	if (inode->i_mode & LINUX_S_IXGRP)
		inode->i_mode &= ~LINUX_S_ISGID;
}

static void set_times(struct ext2_inode_large *inode, const struct stat *st,
		      unsigned valid)
{
	if (valid & FS_SET_ATIME_NOW)
		fsi_touch(inode, FSI_TOUCH_ATIME);
	else if (valid & FS_SET_ATIME)
		fsi_set_time(inode, FSI_ATIME, &st->st_atim);
	if (valid & FS_SET_MTIME_NOW)
		fsi_touch(inode, FSI_TOUCH_MTIME);
	else if (valid & FS_SET_MTIME)
		fsi_set_time(inode, FSI_MTIME, &st->st_mtim);
	if (valid & FS_SET_CTIME)
		fsi_set_time(inode, FSI_CTIME, &st->st_ctim);
	else
		fsi_touch(inode, FSI_TOUCH_CTIME);
}

int inode_setattr(struct fs *fs, ext2_ino_t ino, const struct stat *st,
		  unsigned valid, const struct fs_cred *cred, struct stat *out)
{
	struct ext2_inode_large inode;
	struct iref *r = NULL;
	int ret;

	/* A size change frees blocks: no IO of this inode may be in flight. */
	if (valid & FS_SET_SIZE) {
		r = iref_pin(fs, ino, 1);
		if (!r)
			return -ENOMEM;
	}
	fs_lock(fs);
	ret = fsi_read(fs, ino, &inode);
	if (ret || !valid)
		goto done;
	ret = fs_writable(fs);
	if (ret)
		goto out;
	ret = setattr_allowed(&inode, valid);
	if (ret)
		goto out;
	/* Size first: it re-reads the inode the other fields go into. */
	if (valid & FS_SET_SIZE) {
		ret = setattr_size(fs, ino, &inode, st->st_size, cred);
		if (ret)
			goto out;
	}
	if (valid & FS_SET_MODE)
		inode.i_mode = (inode.i_mode & LINUX_S_IFMT) |
			       (st->st_mode & 07777);
	if (valid & (FS_SET_UID | FS_SET_GID))
		set_owner(fs, &inode, st, valid);
	set_times(&inode, st, valid);
	ret = fsi_write(fs, ino, &inode);
	if (ret)
		goto out;
	/* The ACL lives in xattrs the inode copy above does not track. */
	if (valid & FS_SET_MODE) {
		ret = acl_chmod(fs, ino, inode.i_mode);
		if (ret)
			goto out;
		if (out)
			ret = fsi_read(fs, ino, &inode);
	}
done:
	if (!ret && out)
		fsi_to_stat(fs, ino, &inode, out);
out:
	fs_unlock(fs);
	if (r)
		iref_unpin(fs, r);
	return ret;
}

int inode_access(struct fs *fs, ext2_ino_t ino, int mask)
{
	struct ext2_inode_large inode;
	__u16 mode;
	int ret;

	fs_lock(fs);
	ret = fsi_read(fs, ino, &inode);
	if (ret)
		goto out;
	mode = inode.i_mode;
	if (mask & W_OK) {
		/* Devices and fifos stay writable on a read-only fs. */
		if (LINUX_S_ISREG(mode) || LINUX_S_ISDIR(mode) ||
		    LINUX_S_ISLNK(mode)) {
			ret = fs_writable(fs);
			if (ret)
				goto out;
		}
		if (inode.i_flags & EXT2_IMMUTABLE_FL) {
			ret = -EPERM;
			goto out;
		}
	}
	/* Root may execute only what someone may execute. */
	if ((mask & X_OK) && !LINUX_S_ISDIR(mode) &&
	    !(mode & (LINUX_S_IXUSR | LINUX_S_IXGRP | LINUX_S_IXOTH)))
		ret = -EACCES;
out:
	fs_unlock(fs);
	return ret;
}
