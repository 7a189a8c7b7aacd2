/*
 * The inode ioctls: FS_IOC_GETFLAGS / FS_IOC_SETFLAGS with ext4's masks
 * of user-visible and user-changeable flags and its privilege rules, and
 * FS_IOC_GETVERSION (the inode generation); FITRIM's privilege check (the
 * trimming is trim.c's).
 */
#include "core/fs_internal.h"

#define FL_DAX 0x02000000 /* ext4's DAX flag; not in libext2fs 1.47 */

/* What chattr may change on ext4. */
#define FL_MODIFIABLE                                                      \
	(EXT2_SECRM_FL | EXT2_UNRM_FL | EXT2_COMPR_FL | EXT2_SYNC_FL |     \
	 EXT2_IMMUTABLE_FL | EXT2_APPEND_FL | EXT2_NODUMP_FL |             \
	 EXT2_NOATIME_FL | EXT3_JOURNAL_DATA_FL | EXT2_NOTAIL_FL |         \
	 EXT2_DIRSYNC_FL | EXT2_TOPDIR_FL | EXT4_EXTENTS_FL | FL_DAX |     \
	 EXT4_PROJINHERIT_FL | EXT4_CASEFOLD_FL)

/* What lsattr shows on ext4. */
#define FL_VISIBLE                                                         \
	(FL_MODIFIABLE | EXT2_DIRTY_FL | EXT2_COMPRBLK_FL |                \
	 EXT2_NOCOMPR_FL | EXT4_ENCRYPT_FL | EXT2_INDEX_FL |               \
	 EXT4_VERITY_FL | EXT4_INLINE_DATA_FL)

/*
 * Flags ext4 changes by converting the inode (extent migration, casefold
 * of an empty directory, DAX): not done here.
 */
#define FL_UNSUPPORTED (EXT4_EXTENTS_FL | EXT4_CASEFOLD_FL | FL_DAX)

int ioctl_getflags(struct fs *fs, ext2_ino_t ino, uint32_t *flags)
{
	struct ext2_inode_large inode;
	int ret;

	fs_lock(fs);
	ret = fsi_read(fs, ino, &inode);
	if (!ret)
		*flags = inode.i_flags & FL_VISIBLE;
	fs_unlock(fs);
	return ret;
}

/* The privilege and consistency rules of a flags change; 0 or -errno. */
static int setflags_allowed(struct fs *fs,
			    const struct ext2_inode_large *inode,
			    uint32_t newflags, const struct fs_cred *cred)
{
	uint32_t old = inode->i_flags;
	uint32_t changed = old ^ newflags;
	int root = !cred || cred->uid == 0;

	if (!root && cred->uid != fs_map_uid(fs, inode_uid(*inode)))
		return -EPERM;
	/* CAP_LINUX_IMMUTABLE and CAP_SYS_RESOURCE: root only. */
	if (!root &&
	    (changed & (EXT2_IMMUTABLE_FL | EXT2_APPEND_FL |
			EXT3_JOURNAL_DATA_FL)))
		return -EPERM;
	/* An inode that stays immutable takes no other change. */
	if ((old & newflags & EXT2_IMMUTABLE_FL) &&
	    (changed & ~EXT2_IMMUTABLE_FL))
		return -EPERM;
	if (changed & FL_UNSUPPORTED)
		return -EOPNOTSUPP;
	return 0;
}

int ioctl_setflags(struct fs *fs, ext2_ino_t ino, uint32_t flags,
		   const struct fs_cred *cred)
{
	struct ext2_inode_large inode;
	uint32_t newflags;
	int ret;

	fs_lock(fs);
	ret = fs_writable(fs);
	if (ret)
		goto out;
	ret = fsi_read(fs, ino, &inode);
	if (ret)
		goto out;
	/* Bits outside the changeable set keep their value, as in ext4. */
	newflags = (flags & FL_MODIFIABLE) | (inode.i_flags & ~FL_MODIFIABLE);
	ret = setflags_allowed(fs, &inode, newflags, cred);
	if (ret)
		goto out;
	inode.i_flags = newflags;
	fsi_touch(&inode, FSI_TOUCH_CTIME);
	ret = fsi_write(fs, ino, &inode);
out:
	fs_unlock(fs);
	return ret;
}

int ioctl_getversion(struct fs *fs, ext2_ino_t ino, uint32_t *version)
{
	struct ext2_inode_large inode;
	int ret;

	fs_lock(fs);
	ret = fsi_read(fs, ino, &inode);
	if (!ret)
		*version = inode.i_generation;
	fs_unlock(fs);
	return ret;
}

int ioctl_fitrim(struct fs *fs, uint64_t start, uint64_t *len,
		 uint64_t minlen, const struct fs_cred *cred)
{
	uint64_t trimmed;
	int ret;

	/* CAP_SYS_ADMIN on ext4. */
	if (cred && cred->uid != 0)
		return -EPERM;
	ret = trim_fs(fs, start, *len, minlen, &trimmed);
	if (!ret)
		*len = trimmed;
	return ret;
}
