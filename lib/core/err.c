/*
 * Errors: the single place where libext2fs errcode_t becomes -errno, and
 * where detected corruption is recorded in the superblock and handled as
 * errors=continue|remount-ro|panic says.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/fs_internal.h"

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

static void copy_func(__u8 *dst, const char *func)
{
	size_t n = strlen(func);

	memset(dst, 0, 32);
	memcpy(dst, func, n < 32 ? n : 32);
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
		sb->s_first_error_errcode = (__u8)errnum;
		copy_func(sb->s_first_error_func, func);
	}
	sb->s_last_error_time = (__u32)now;
	sb->s_last_error_time_hi = (__u8)((uint64_t)now >> 32);
	sb->s_last_error_ino = ino;
	sb->s_last_error_errcode = (__u8)errnum;
	copy_func(sb->s_last_error_func, func);
	ext2fs_mark_super_dirty(fs->e2);
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

static void fs_handle_corruption(struct fs *fs, ext2_ino_t ino,
				 const char *func)
{
	fs_mark_error(fs, ino, func, EFSCORRUPTED);
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

int fs_err(struct fs *fs, errcode_t err, ext2_ino_t ino, const char *func)
{
	int errnum;

	if (!err)
		return 0;
	errnum = errcode_to_errno(err);
	if (errnum == EFSCORRUPTED)
		fs_handle_corruption(fs, ino, func);
	else if (fs->debug)
		fprintf(stderr, "%s: %s (inode %u): %s\n", fs->device, func,
			ino, error_message(err));
	return -errnum;
}

int fs_corrupt(struct fs *fs, ext2_ino_t ino, const char *func,
	       const char *what)
{
	fprintf(stderr, "%s: corrupt: %s\n", fs->device, what);
	fs_handle_corruption(fs, ino, func);
	return -EFSCORRUPTED;
}

int fs_writable(struct fs *fs)
{
	return fs->readonly ? -EROFS : 0;
}
