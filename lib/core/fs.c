/*
 * Opening and closing a filesystem: feature and geometry checks that turn
 * bad images into one clear message, the superblock's mount bookkeeping,
 * statfs and whole-filesystem sync.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/fs_internal.h"
#include "core/iomap.h"
#include "support/cache_io.h"
#include "support/crc32c.h"
#include "support/fault_io.h"
#include "support/image_users.h"

/* A one-line reason for a failed ext2fs_open2, for the command line. */
static const char *open_error_msg(errcode_t err)
{
	switch (err) {
	case ENOENT:
		return "no such file or device";
	case EACCES:
	case EPERM:
		return "permission denied";
	case EBUSY:
		return "image is in use by another process (mounted read-write elsewhere?)";
	case EISDIR:
		return "is a directory, not an image or device";
	case EXT2_ET_BAD_MAGIC:
		return "not an ext2/ext3/ext4 filesystem (bad superblock magic)";
	case EXT2_ET_SHORT_READ:
		return "image is too short: truncated or not an ext2/3/4 image";
	case EXT2_ET_UNSUPP_FEATURE:
		return "filesystem has incompatible features this server does not support";
	case EXT2_ET_RO_UNSUPP_FEATURE:
		return "filesystem has features that allow only a read-only mount (use -o ro)";
	case EXT2_ET_SB_CSUM_INVALID:
		return "superblock checksum does not match: damaged superblock (run e2fsck)";
	case EXT2_ET_CORRUPT_SUPERBLOCK:
	case EXT2_ET_BAD_DESC_SIZE:
		return "superblock is corrupt (run e2fsck)";
	case EXT2_ET_BLOCK_BITMAP_CSUM_INVALID:
	case EXT2_ET_INODE_BITMAP_CSUM_INVALID:
	case EXT2_ET_GDESC_BAD_BLOCK_MAP:
	case EXT2_ET_GDESC_BAD_INODE_MAP:
	case EXT2_ET_GDESC_BAD_INODE_TABLE:
		return "group descriptors or bitmaps are corrupt (run e2fsck)";
	case EXT2_ET_UNEXPECTED_BLOCK_SIZE:
		return "unsupported block size";
	default:
		return NULL;
	}
}

/* Refuses images whose geometry does not fit the device behind them. */
static int check_geometry(struct fs *fs, const char **msg)
{
	ext2_filsys e2 = fs->e2;
	blk64_t dev_blocks, dev_bytes = 0;
	errcode_t err;
	__u32 first;

	/*
	 * Group 0 starts at block 1 with 1 KiB blocks (block 0 is the boot
	 * block) and at block 0 otherwise, as e2fsck insists. libext2fs
	 * trusts s_first_data_block: ext2fs_read_bitmaps writes past its
	 * bitmap buffer when it is larger.
	 */
	first = e2->blocksize == 1024 && EXT2FS_CLUSTER_RATIO(e2) == 1;
	if (e2->super->s_first_data_block != first) {
		*msg = "superblock is corrupt: bad first data block (run e2fsck)";
		return -EINVAL;
	}
	err = ext2fs_get_device_size2(fs->device, 1, &dev_bytes);
	if (err)
		return 0; /* size unknown: let IO errors speak later */
	dev_bytes = dev_bytes > fs->data_off ? dev_bytes - fs->data_off : 0;
	dev_blocks = dev_bytes / e2->blocksize;
	if (dev_blocks < ext2fs_blocks_count(e2->super)) {
		*msg = "image is truncated: the filesystem is larger than the file or device";
		return -EINVAL;
	}
	return 0;
}

static int check_features(struct fs *fs, const char **msg)
{
	ext2_filsys e2 = fs->e2;

	if (ext2fs_has_feature_journal_dev(e2->super)) {
		*msg = "this is an external journal device, not a filesystem";
		return -EINVAL;
	}
	return 0;
}

/*
 * A journal that needs recovery is replayed, as the kernel does at mount,
 * unless norecovery asked to look at the image as it is.
 */
static int recover_journal(struct fs *fs, int norecovery, const char **msg)
{
	int ret;

	if (!ext2fs_has_feature_journal_needs_recovery(fs->e2->super))
		return 0;
	if (norecovery) {
		fprintf(stderr, "%s: journal not recovered (norecovery): what it holds is not seen\n",
			fs->device);
		return 0;
	}
	ret = journal_recover(fs, msg);
	/* Its file data may be in the cache only: not for the executor. */
	if (!ret && fs->replayed_in_memory)
		fs->iomap_mode = FS_IOMAP_OFF;
	return ret;
}

/* Superblock bookkeeping of a read-write mount, written at once. */
static int mark_mounted(struct fs *fs, const char *mountpoint)
{
	struct ext2_super_block *sb = fs->e2->super;
	time_t now = time(NULL);

	if (sb->s_max_mnt_count == 0 || sb->s_mnt_count < 0xffff)
		sb->s_mnt_count++;
	sb->s_mtime = (__u32)now;
	sb->s_mtime_hi = (__u8)((uint64_t)now >> 32);
	if (mountpoint) {
		memset(sb->s_last_mounted, 0, sizeof(sb->s_last_mounted));
		strncpy((char *)sb->s_last_mounted, mountpoint,
			sizeof(sb->s_last_mounted) - 1);
	}
	/* Not clean while mounted: a crash makes e2fsck look. */
	sb->s_state &= ~EXT2_VALID_FS;
	ext2fs_mark_super_dirty(fs->e2);
	/* Not yet mounted: a failure refuses the mount, errors= has no say. */
	return fs_errno(ext2fs_flush(fs->e2));
}

/* The refusal for writer `who` (a process or a loop device), per thread. */
static const char *writer_msg(const char *who)
{
	static __thread char buf[256];

	if (who[0] == '/')
		snprintf(buf, sizeof(buf),
			 "image is attached read-write to %s: a second writer would corrupt it",
			 who);
	else
		snprintf(buf, sizeof(buf),
			 "image is open for writing by %s: a second writer would corrupt it",
			 who);
	return buf;
}

/*
 * Refuses a read-write open while a program that takes no lock (so that
 * cache_io's lock cannot see it) writes the image, or the filesystem's
 * part of it: the two would corrupt it.
 */
static int check_other_writer(struct fs *fs, const char **msg)
{
	uint64_t len = ext2fs_blocks_count(fs->e2->super) *
		       (uint64_t)fs->e2->blocksize;
	char who[96];

	if (!image_wait_other_writer(fs->device, fs->data_off, len, who,
				     sizeof(who)))
		return 0;
	*msg = writer_msg(who);
	return -EBUSY;
}

/* offset= must leave room for a superblock in the image or device. */
static int check_offset(struct fs *fs, unsigned long long offset,
			const char **msg)
{
	blk64_t bytes;

	if (!offset || ext2fs_get_device_size2(fs->device, 1, &bytes))
		return 0;
	if (offset >= bytes) {
		*msg = "offset is past the end of the image or device";
		return -EINVAL;
	}
	return 0;
}

/*
 * The testing hook: FUSE4FS_FAULT=read=B,write=B makes the device fail IO
 * to block B with EIO (see fault_io.h), for tests of IO error handling
 * under a mounted server.
 */
static int attach_faults(struct fs *fs, const char **msg)
{
	const char *spec = getenv("FUSE4FS_FAULT");

	if (!spec || !*spec)
		return 0;
	fs->fault = fault_io_attach(fs->e2->io, spec);
	if (!fs->fault) {
		*msg = "bad FUSE4FS_FAULT: want read=BLOCK and/or write=BLOCK";
		return -EINVAL;
	}
	return 0;
}

int fs_open(const struct fs_options *opts, struct fs **fsp, const char **msg)
{
	char io_opts[96];
	const char *dummy;
	struct fs *fs;
	struct stat st;
	errcode_t err;
	int flags = EXT2_FLAG_64BITS;
	int ret;

	if (!msg)
		msg = &dummy;
	*msg = NULL;
	*fsp = NULL;
	if (!opts->device || !*opts->device) {
		*msg = "no image or device given";
		return -EINVAL;
	}
	if (stat(opts->device, &st) < 0) {
		ret = -errno;
		*msg = open_error_msg(errno);
		return ret;
	}
	if (S_ISDIR(st.st_mode)) {
		*msg = open_error_msg(EISDIR);
		return -EISDIR;
	}

	fs = calloc(1, sizeof(*fs));
	if (!fs)
		return -ENOMEM;
	fs->magic = FS_MAGIC;
	/* As ext4: the journal left unread allows no writing. */
	fs->readonly = opts->readonly || opts->norecovery;
	fs->errors = opts->errors;
	fs->debug = opts->debug;
	fs->iomap_mode = opts->iomap;
	fs->iomap_hardlinks = opts->iomap_hardlinks;
	fs->map_uid = opts->map_uid;
	fs->map_gid = opts->map_gid;
	fs->data_fd = -1;
	fs->device = strdup(opts->device);
	pthread_mutex_init(&fs->lock, NULL);
	if (!fs->device) {
		ret = -ENOMEM;
		goto fail;
	}

	if (!fs->readonly && fs_storage_readonly(fs->device)) {
		*msg = "image is on read-only storage: mount it with -o ro";
		ret = -EROFS;
		goto fail;
	}
	if (!fs->readonly)
		flags |= EXT2_FLAG_RW | EXT2_FLAG_EXCLUSIVE;
	ret = check_offset(fs, opts->offset, msg);
	if (ret)
		goto fail;
	/* MMP the way a mount does it, not e2fsck's way (mmp.c). */
	flags |= EXT2_FLAG_SKIP_MMP;
	/* Never NULL options: libext2fs would split the name at a '?'. */
	snprintf(io_opts, sizeof(io_opts), "cache_size=%llu&offset=%llu",
		 opts->cache_size ? opts->cache_size : CACHE_IO_DEFAULT_BUDGET,
		 opts->offset);
	err = ext2fs_open2(fs->device, io_opts, flags, 0, 0, cache_io_manager,
			   &fs->e2);
	if (err) {
		char who[96];

		*msg = open_error_msg(err);
		if (!*msg)
			*msg = error_message(err);
		/* Locked by another writer: name it, if it can be seen. */
		if (err == EBUSY && !fs->readonly &&
		    image_other_writer(fs->device, opts->offset, UINT64_MAX / 2,
				       who, sizeof(who)))
			*msg = writer_msg(who);
		ret = err == EXT2_ET_BAD_MAGIC ? -EINVAL : -EIO;
		if (err > 0 && err < 4096)
			ret = -(int)err;
		fs->e2 = NULL;
		goto fail;
	}
	fs->data_off = cache_io_get_offset(fs->e2->io);
	ret = attach_faults(fs, msg);
	if (ret)
		goto fail;
	ret = check_geometry(fs, msg);
	if (ret)
		goto fail;
	/* After the open: the superblock tells which bytes are ours. */
	if (!fs->readonly) {
		ret = check_other_writer(fs, msg);
		if (ret)
			goto fail;
	}
	ret = check_features(fs, msg);
	if (!ret)
		ret = recover_journal(fs, opts->norecovery, msg);
	if (ret)
		goto fail;
	ret = mmp_start(fs, msg);
	if (ret)
		goto fail;
	err = ext2fs_read_bitmaps(fs->e2);
	if (err) {
		*msg = open_error_msg(err);
		if (!*msg)
			*msg = "cannot read block and inode bitmaps (run e2fsck)";
		ret = -EIO;
		goto fail;
	}
	/*
	 * Cached copies of freed blocks must go before the executor writes
	 * file data straight to the image fd, which it shares with the cache.
	 */
	cache_io_install_free_hook(fs->e2);
	if (fs->debug && ext2fs_has_feature_metadata_csum(fs->e2->super))
		fprintf(stderr, "%s: metadata checksums by crc32c %s\n",
			fs->device, crc32c_impl());
	fs->data_fd = cache_io_get_fd(fs->e2->io);
	ret = map_cache_init(fs);
	if (!ret)
		ret = uncache_init(fs);
	if (!ret)
		ret = itable_ra_init(fs);
	if (!ret)
		ret = iref_init(fs);
	if (!ret)
		ret = trim_init(fs, opts->discard);
	if (ret)
		goto fail;
	if (!fs->readonly) {
		fs->mount_state = fs->e2->super->s_state;
		*msg = fs_mount_warning(fs->e2->super, time(NULL));
		ret = mark_mounted(fs, opts->mountpoint);
		if (!ret)
			ret = orphan_process(fs);
		if (ret) {
			*msg = "cannot update the superblock";
			goto fail;
		}
	}
	*fsp = fs;
	return 0;

fail:
	mmp_stop(fs);
	trim_fini(fs);
	if (fs->e2)
		ext2fs_close_free(&fs->e2);
	fault_io_detach(fs->fault);
	mmp_finish(fs);
	iref_fini(fs);
	map_cache_fini(fs);
	uncache_fini(fs);
	itable_ra_fini(fs);
	dir_csum_fini(fs);
	dir_bufs_fini(fs);
	pthread_mutex_destroy(&fs->lock);
	free(fs->device);
	free(fs);
	return ret;
}

int fs_close(struct fs *fs)
{
	struct ext2_super_block *sb;
	errcode_t err;
	int ret = 0;

	if (!fs)
		return 0;
	mmp_stop(fs);
	fs_lock(fs);
	iref_fini(fs);
	sb = fs->e2->super;
	if (fs->e2->flags & EXT2_FLAG_RW) {
		/* Back to the state we found, plus any error we recorded. */
		sb->s_state = (fs->mount_state & ~EXT2_ERROR_FS) |
			      (sb->s_state & EXT2_ERROR_FS);
		ext2fs_mark_super_dirty(fs->e2);
	}
	trim_fini(fs);
	err = ext2fs_close_free(&fs->e2);
	if (err)
		ret = -EIO;
	fault_io_detach(fs->fault);
	mmp_finish(fs);
	map_cache_fini(fs);
	uncache_fini(fs);
	itable_ra_fini(fs);
	dir_csum_fini(fs);
	dir_bufs_fini(fs);
	fs_unlock(fs);
	pthread_mutex_destroy(&fs->lock);
	free(fs->device);
	fs->magic = 0;
	free(fs);
	return ret;
}

/* Blocks the kernel's ext4 counts as overhead: not in f_blocks. */
static blk64_t fs_overhead(struct fs *fs)
{
	ext2_filsys e2 = fs->e2;
	struct ext2_super_block *sb = e2->super;
	blk64_t overhead = sb->s_first_data_block;
	struct ext2_inode inode;
	dgrp_t g;

	if (sb->s_overhead_clusters)
		return sb->s_overhead_clusters;
	for (g = 0; g < e2->group_desc_count; g++) {
		blk_t used = 0;

		ext2fs_super_and_bgd_loc2(e2, g, NULL, NULL, NULL, &used);
		overhead += used + 2 + e2->inode_blocks_per_group;
	}
	if (ext2fs_has_feature_journal(sb) && sb->s_journal_inum &&
	    !ext2fs_read_inode(e2, sb->s_journal_inum, &inode))
		overhead += EXT2_I_SIZE(&inode) / e2->blocksize;
	return overhead;
}

int fs_statfs(struct fs *fs, struct statvfs *st)
{
	struct ext2_super_block *sb;
	blk64_t blocks, bfree, resv, over;

	fs_lock(fs);
	sb = fs->e2->super;
	memset(st, 0, sizeof(*st));
	blocks = ext2fs_blocks_count(sb);
	over = fs_overhead(fs);
	bfree = ext2fs_free_blocks_count(sb);
	resv = ext2fs_r_blocks_count(sb);
	st->f_bsize = fs->e2->blocksize;
	st->f_frsize = fs->e2->blocksize;
	st->f_blocks = blocks > over ? blocks - over : 0;
	st->f_bfree = bfree;
	/* As ext4: 2% (at most 4096 clusters) held back for extent splits. */
	if (ext2fs_has_feature_extents(sb)) {
		unsigned bits = fs->e2->cluster_ratio_bits;
		blk64_t split = (blocks >> bits) / 50;

		resv += (split < 4096 ? split : 4096) << bits;
	}
	st->f_bavail = bfree > resv ? bfree - resv : 0;
	st->f_files = sb->s_inodes_count;
	st->f_ffree = sb->s_free_inodes_count;
	st->f_favail = sb->s_free_inodes_count;
	st->f_namemax = EXT2_NAME_LEN;
	memcpy(&st->f_fsid, sb->s_uuid, sizeof(st->f_fsid));
	if (fs->readonly)
		st->f_flag |= ST_RDONLY;
	fs_unlock(fs);
	return 0;
}

int fs_flush_locked(struct fs *fs)
{
	errcode_t err = 0;
	int ret;

	if (fs->e2->flags & EXT2_FLAG_RW) {
		err = ext2fs_write_bitmaps(fs->e2);
		if (!err)
			err = ext2fs_flush2(fs->e2, 0);
		if (!err)
			err = io_channel_flush(fs->e2->io);
	}
	ret = FS_ERR(fs, err, 0);
	if (!ret)
		trim_synced(fs);
	return ret;
}

int fs_sync(struct fs *fs)
{
	int ret;

	fs_lock(fs);
	ret = fs_flush_locked(fs);
	fs_unlock(fs);
	/* On the device now: the FUSE page cache's copy is the one to keep. */
	if (!ret)
		uncache_sync(fs);
	return ret;
}

void fs_set_attr_hook(struct fs *fs, void (*fn)(void *arg, ext2_ino_t ino),
		      void *arg)
{
	fs->attr_hook = fn;
	fs->attr_hook_arg = arg;
}

void fs_notify_attr(struct fs *fs, ext2_ino_t ino)
{
	if (fs->attr_hook)
		fs->attr_hook(fs->attr_hook_arg, ino);
}

int fs_is_readonly(struct fs *fs)
{
	return fs->readonly;
}

unsigned fs_blocksize(struct fs *fs)
{
	return fs->e2->blocksize;
}
