/*
 * Mount-time advice for a read-write open: the warning the kernel's ext4
 * prints for a filesystem that wants checking (it still mounts), and the
 * read-only storage that no read-write mount can use, caught before
 * libext2fs opens it and fails later with a vaguer error.
 */
#include <fcntl.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <linux/fs.h>

#include "core/fs_internal.h"

const char *fs_mount_warning(const struct ext2_super_block *sb, time_t now)
{
	/* The kernel reads these as signed 16 bits: <= 0 means no limit. */
	__s16 max_mnt = (__s16)sb->s_max_mnt_count;
	int64_t lastcheck = (int64_t)sb->s_lastcheck |
			    ((int64_t)sb->s_lastcheck_hi << 32);

	/* The same tests, in the same order, as ext4's mount. */
	if (!(sb->s_state & EXT2_VALID_FS))
		return "warning: mounting unchecked fs, running e2fsck is recommended";
	if (sb->s_state & EXT2_ERROR_FS)
		return "warning: mounting fs with errors, running e2fsck is recommended";
	if (max_mnt > 0 && sb->s_mnt_count >= (__u16)max_mnt)
		return "warning: maximal mount count reached, running e2fsck is recommended";
	if (sb->s_checkinterval &&
	    lastcheck + (int64_t)sb->s_checkinterval <= (int64_t)now)
		return "warning: checktime reached, running e2fsck is recommended";
	return NULL;
}

int fs_storage_readonly(const char *device)
{
	struct statvfs vfs;
	struct stat st;
	int ro = 0, fd;

	if (stat(device, &st))
		return 0;
	if (S_ISBLK(st.st_mode)) {
		/* Linux lets a read-only block device be opened for writing. */
		fd = open(device, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			return 0;
		if (ioctl(fd, BLKROGET, &ro))
			ro = 0;
		close(fd);
		return !!ro;
	}
	return S_ISREG(st.st_mode) && !statvfs(device, &vfs) &&
	       (vfs.f_flag & ST_RDONLY);
}
