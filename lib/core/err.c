/*
 * Errors: the single place where libext2fs errcode_t becomes -errno, and
 * where detected corruption and failed metadata IO are recorded in the
 * superblock and handled as errors=continue|remount-ro|panic says.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/fs_internal.h"
#include "support/cache_io.h"

/* Codes that say the on-disk structures are inconsistent. */
static int errcode_is_corruption(errcode_t err)
{
	switch (err) {
	case EXT2_ET_DIR_CORRUPTED:
	case EXT2_ET_EXTENT_HEADER_BAD:
	case EXT2_ET_EXTENT_INDEX_BAD:
	case EXT2_ET_EXTENT_LEAF_BAD:
	case EXT2_ET_EXTENT_CSUM_INVALID:
	case EXT2_ET_EXTENT_NOT_FOUND:
	case EXT2_ET_BAD_BLOCK_NUM:
	case EXT2_ET_BAD_INODE_NUM:
	case EXT2_ET_DIR_CSUM_INVALID:
	case EXT2_ET_DIR_NO_SPACE_FOR_CSUM:
	case EXT2_ET_INODE_CSUM_INVALID:
	case EXT2_ET_INODE_BITMAP_CSUM_INVALID:
	case EXT2_ET_BLOCK_BITMAP_CSUM_INVALID:
	case EXT2_ET_EXT_ATTR_CSUM_INVALID:
	case EXT2_ET_BAD_EA_HEADER:
	case EXT2_ET_BAD_EA_BLOCK_NUM:
	case EXT2_ET_BAD_EA_HASH:
	case EXT2_ET_EA_BAD_NAME_LEN:
	case EXT2_ET_EA_BAD_VALUE_SIZE:
	case EXT2_ET_EA_BAD_VALUE_OFFSET:
	case EXT2_ET_EA_INODE_CORRUPTED:
	case EXT2_ET_INODE_IS_GARBAGE:
	case EXT2_ET_INLINE_DATA_NO_BLOCK:
	case EXT2_ET_BAD_IND_BLOCK:
	case EXT2_ET_BAD_DIND_BLOCK:
	case EXT2_ET_BAD_TIND_BLOCK:
	case EXT2_ET_GDESC_BAD_BLOCK_MAP:
	case EXT2_ET_GDESC_BAD_INODE_MAP:
	case EXT2_ET_GDESC_BAD_INODE_TABLE:
	case EXT2_ET_CORRUPT_JOURNAL_SB:
		return 1;
	default:
		return 0;
	}
}

/*
 * Codes that say the device failed a read or write. Only metadata IO
 * reaches fs_err: as in the kernel's ext4, such a failure is a filesystem
 * error, while a failed file data IO is only the caller's EIO.
 */
static int errcode_is_io_error(errcode_t err)
{
	return err == EIO || err == EXT2_ET_SHORT_READ ||
	       err == EXT2_ET_SHORT_WRITE;
}

static int errcode_to_errno(errcode_t err)
{
	if (err > 0 && err < 4096)
		return (int)err; /* a plain errno from the io layer */
	switch (err) {
	case EXT2_ET_NO_MEMORY:
		return ENOMEM;
	case EXT2_ET_BLOCK_ALLOC_FAIL:
	case EXT2_ET_INODE_ALLOC_FAIL:
	case EXT2_ET_EA_NO_SPACE:
	case EXT2_ET_DIR_NO_SPACE:
	case EXT2_ET_INLINE_DATA_NO_SPACE:
	case EXT2_ET_RES_GDT_BLOCKS:
		return ENOSPC;
	case EXT2_ET_RO_FILSYS:
		return EROFS;
	case EXT2_ET_FILE_NOT_FOUND:
		return ENOENT;
	case EXT2_ET_DIR_EXISTS:
	case EXT2_ET_FILE_EXISTS:
		return EEXIST;
	case EXT2_ET_NO_DIRECTORY:
		return ENOTDIR;
	case EXT2_ET_FILE_TOO_BIG:
	case EXT2_ET_EXTENT_NO_SPACE:
		return EFBIG;
	case EXT2_ET_EA_KEY_NOT_FOUND:
		return ENODATA;
	case EXT2_ET_UNIMPLEMENTED:
	case EXT2_ET_OP_NOT_SUPPORTED:
	case EXT2_ET_UNSUPP_FEATURE:
	case EXT2_ET_RO_UNSUPP_FEATURE:
		return EOPNOTSUPP;
	case EXT2_ET_FILE_RO:
		return EBADF;
	case EXT2_ET_TOO_MANY_REFS:
		return EMLINK;
	default:
		return errcode_is_corruption(err) ? EFSCORRUPTED : EIO;
	}
}

/*
 * The superblock's error code field holds ext4's own small numbers, not
 * errno values (0: none recorded, 1: unknown).
 */
static __u8 sb_errcode(int errnum)
{
	switch (errnum) {
	case EIO:
		return 2;
	case ENOMEM:
		return 3;
	case EFSCORRUPTED:
		return 5;
	case ENOSPC:
		return 6;
	case EROFS:
		return 8;
	default:
		return 1;
	}
}

static void copy_func(__u8 *dst, const char *func)
{
	size_t n = strlen(func);

	memset(dst, 0, 32);
	memcpy(dst, func, n < 32 ? n : 32);
}

/*
 * Puts the superblock, with its error record, on the device now. A plain
 * ext2fs_flush writes the other dirty blocks first and gives up before the
 * superblock if one of them fails, which is just when the record matters:
 * so flush without that write-back and write the superblock's block alone.
 */
static void write_error_record(struct fs *fs)
{
	if (ext2fs_flush2(fs->e2, EXT2_FLAG_FLUSH_NO_SYNC))
		return;
	cache_io_sync_range(fs->e2->io, SUPERBLOCK_OFFSET, SUPERBLOCK_SIZE,
			    CACHE_IO_SYNC_READ);
}

/* Records one error in the superblock, as the kernel's ext4 does. */
static void fs_mark_error(struct fs *fs, ext2_ino_t ino, const char *func,
			  int errnum)
{
	struct ext2_super_block *sb = fs->e2->super;
	time_t now = time(NULL);

	fprintf(stderr, "%s: error in %s (inode %u): %s\n", fs->device, func,
		ino, strerror(errnum));
	if (!(fs->e2->flags & EXT2_FLAG_RW))
		return;
	sb->s_state |= EXT2_ERROR_FS;
	if (sb->s_error_count < UINT32_MAX)
		sb->s_error_count++;
	if (!sb->s_first_error_time) {
		sb->s_first_error_time = (__u32)now;
		sb->s_first_error_time_hi = (__u8)((uint64_t)now >> 32);
		sb->s_first_error_ino = ino;
		sb->s_first_error_errcode = sb_errcode(errnum);
		copy_func(sb->s_first_error_func, func);
	}
	sb->s_last_error_time = (__u32)now;
	sb->s_last_error_time_hi = (__u8)((uint64_t)now >> 32);
	sb->s_last_error_ino = ino;
	sb->s_last_error_errcode = sb_errcode(errnum);
	copy_func(sb->s_last_error_func, func);
	ext2fs_mark_super_dirty(fs->e2);
	write_error_record(fs);
}

static enum fs_errors_mode errors_mode(struct fs *fs)
{
	if (fs->errors != FS_ERRORS_DEFAULT)
		return fs->errors;
	switch (fs->e2->super->s_errors) {
	case EXT2_ERRORS_RO:
		return FS_ERRORS_REMOUNT_RO;
	case EXT2_ERRORS_PANIC:
		return FS_ERRORS_PANIC;
	default:
		return FS_ERRORS_CONTINUE;
	}
}

static void fs_handle_error(struct fs *fs, ext2_ino_t ino, const char *func,
			    int errnum)
{
	fs_mark_error(fs, ino, func, errnum);
	switch (errors_mode(fs)) {
	case FS_ERRORS_REMOUNT_RO:
		if (!fs->readonly) {
			fprintf(stderr, "%s: remounting read-only\n",
				fs->device);
			ext2fs_flush(fs->e2);
			fs->readonly = 1;
		}
		break;
	case FS_ERRORS_PANIC:
		/* Keep the error record, then stop serving at once. */
		fprintf(stderr, "%s: errors=panic: stopping\n", fs->device);
		ext2fs_flush(fs->e2);
		_exit(EXIT_FAILURE);
	default:
		break;
	}
}

int fs_errno(errcode_t err)
{
	return err ? -errcode_to_errno(err) : 0;
}

int fs_err(struct fs *fs, errcode_t err, ext2_ino_t ino, const char *func)
{
	int errnum;

	if (!err)
		return 0;
	errnum = errcode_to_errno(err);
	if (errnum == EFSCORRUPTED || errcode_is_io_error(err))
		fs_handle_error(fs, ino, func, errnum);
	else if (fs->debug)
		fprintf(stderr, "%s: %s (inode %u): %s\n", fs->device, func,
			ino, error_message(err));
	return -errnum;
}

int fs_corrupt(struct fs *fs, ext2_ino_t ino, const char *func,
	       const char *what)
{
	fprintf(stderr, "%s: corrupt: %s\n", fs->device, what);
	fs_handle_error(fs, ino, func, EFSCORRUPTED);
	return -EFSCORRUPTED;
}

int fs_writable(struct fs *fs)
{
	return fs->readonly ? -EROFS : 0;
}
