/*
 * The on-disk inode: reading and writing the large inode with its sanity
 * checks, ext4's time encoding (nanoseconds and the epoch bits that carry
 * dates past 2038), conversion to struct stat, allocation of new inodes and
 * freeing of dead ones.
 */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/sysmacros.h>

#include "core/iomap.h"

static int ino_in_range(struct fs *fs, ext2_ino_t ino)
{
	return ino >= 1 && ino <= fs->e2->super->s_inodes_count;
}

int fsi_read(struct fs *fs, ext2_ino_t ino, struct ext2_inode_large *inode)
{
	unsigned isize = EXT2_INODE_SIZE(fs->e2->super);
	errcode_t err;

	if (!ino_in_range(fs, ino))
		return -ESTALE;
	memset(inode, 0, sizeof(*inode));
	itable_ra_touch(fs, ino);
	err = ext2fs_read_inode_full(fs->e2, ino, (struct ext2_inode *)inode,
				     sizeof(*inode));
	if (err)
		return FS_ERR(fs, err, ino);
	if (isize > EXT2_GOOD_OLD_INODE_SIZE &&
	    (inode->i_extra_isize > isize - EXT2_GOOD_OLD_INODE_SIZE ||
	     (inode->i_extra_isize & 3)))
		return FS_CORRUPT(fs, ino, "bad i_extra_isize");
	if (isize <= EXT2_GOOD_OLD_INODE_SIZE)
		inode->i_extra_isize = 0;
	return 0;
}

int fsi_write(struct fs *fs, ext2_ino_t ino, struct ext2_inode_large *inode)
{
	errcode_t err;

	if (!ino_in_range(fs, ino))
		return -ESTALE;
	err = ext2fs_write_inode_full(fs->e2, ino, (struct ext2_inode *)inode,
				      sizeof(*inode));
	return FS_ERR(fs, err, ino);
}

/* Does the inode's extra area reach the end of the field at `end`? */
static int has_extra(const struct ext2_inode_large *inode, size_t end)
{
	return EXT2_GOOD_OLD_INODE_SIZE + inode->i_extra_isize >= end;
}

#define EXTRA_END(field)                                    \
	(offsetof(struct ext2_inode_large, field) +         \
	 sizeof(((struct ext2_inode_large *)0)->field))

struct time_fields {
	__u32 *lo;
	__u32 *extra; /* NULL when the inode has no room for it */
};

static struct time_fields time_fields(struct ext2_inode_large *inode,
				      enum fsi_time which)
{
	struct time_fields f = { NULL, NULL };

	switch (which) {
	case FSI_ATIME:
		f.lo = &inode->i_atime;
		if (has_extra(inode, EXTRA_END(i_atime_extra)))
			f.extra = &inode->i_atime_extra;
		break;
	case FSI_MTIME:
		f.lo = &inode->i_mtime;
		if (has_extra(inode, EXTRA_END(i_mtime_extra)))
			f.extra = &inode->i_mtime_extra;
		break;
	case FSI_CTIME:
		f.lo = &inode->i_ctime;
		if (has_extra(inode, EXTRA_END(i_ctime_extra)))
			f.extra = &inode->i_ctime_extra;
		break;
	case FSI_CRTIME:
		if (has_extra(inode, EXTRA_END(i_crtime)))
			f.lo = &inode->i_crtime;
		if (has_extra(inode, EXTRA_END(i_crtime_extra)))
			f.extra = &inode->i_crtime_extra;
		break;
	}
	return f;
}

int fsi_has_crtime(const struct ext2_inode_large *inode)
{
	return has_extra(inode, EXTRA_END(i_crtime));
}

#define EPOCH_BITS 2
#define EPOCH_MASK ((1u << EPOCH_BITS) - 1)

void fsi_get_time(const struct ext2_inode_large *inode, enum fsi_time which,
		  struct timespec *ts)
{
	struct time_fields f =
		time_fields((struct ext2_inode_large *)inode, which);

	ts->tv_sec = 0;
	ts->tv_nsec = 0;
	if (!f.lo)
		return;
	/* The low 32 bits are signed: dates before 1970 stay negative. */
	ts->tv_sec = (int32_t)*f.lo;
	if (f.extra) {
		ts->tv_sec += (int64_t)(*f.extra & EPOCH_MASK) << 32;
		ts->tv_nsec = *f.extra >> EPOCH_BITS;
		if (ts->tv_nsec >= 1000000000)
			ts->tv_nsec = 999999999;
	}
}

void fsi_set_time(struct ext2_inode_large *inode, enum fsi_time which,
		  const struct timespec *ts)
{
	struct time_fields f = time_fields(inode, which);
	/* With the epoch bits: 1901 to 2446; without: the int32 range. */
	int64_t min = INT32_MIN;
	int64_t max = f.extra ? (int64_t)INT32_MAX + (3LL << 32) : INT32_MAX;
	int64_t sec = ts->tv_sec;
	long nsec = ts->tv_nsec;

	if (!f.lo)
		return;
	/* As the kernel's timestamp_truncate: a bound keeps no nanoseconds. */
	if (sec <= min) {
		sec = min;
		nsec = 0;
	} else if (sec >= max) {
		sec = max;
		nsec = 0;
	}
	*f.lo = (__u32)(int32_t)(sec & 0xffffffff);
	if (f.extra)
		*f.extra = (((uint64_t)(sec - (int32_t)sec) >> 32) &
			    EPOCH_MASK) |
			   ((__u32)nsec << EPOCH_BITS);
}

void fsi_touch(struct ext2_inode_large *inode, unsigned which)
{
	struct timespec now;

	clock_gettime(CLOCK_REALTIME, &now);
	if (which & FSI_TOUCH_ATIME)
		fsi_set_time(inode, FSI_ATIME, &now);
	if (which & FSI_TOUCH_MTIME)
		fsi_set_time(inode, FSI_MTIME, &now);
	if (which & FSI_TOUCH_CTIME)
		fsi_set_time(inode, FSI_CTIME, &now);
}

uint64_t fsi_size(const struct ext2_inode_large *inode)
{
	return EXT2_I_SIZE(inode);
}

static dev_t decode_rdev(const struct ext2_inode_large *inode)
{
	__u32 old = inode->i_block[0], new = inode->i_block[1];

	if (old)
		return makedev((old >> 8) & 0xff, old & 0xff);
	return makedev((new & 0xfff00) >> 8,
		       (new & 0xff) | ((new >> 12) & 0xfff00));
}

void fsi_to_stat(struct fs *fs, ext2_ino_t ino,
		 const struct ext2_inode_large *inode, struct stat *st)
{
	memset(st, 0, sizeof(*st));
	st->st_ino = ino;
	st->st_dev = 0;
	st->st_mode = inode->i_mode;
	st->st_nlink = inode->i_links_count;
	st->st_uid = fs_map_uid(fs, inode_uid(*inode));
	st->st_gid = fs_map_gid(fs, inode_gid(*inode));
	if (LINUX_S_ISCHR(inode->i_mode) || LINUX_S_ISBLK(inode->i_mode))
		st->st_rdev = decode_rdev(inode);
	st->st_size = EXT2_I_SIZE(inode);
	st->st_blksize = fs->e2->blocksize;
	st->st_blocks = ext2fs_get_stat_i_blocks(fs->e2,
						 (struct ext2_inode *)inode);
	fsi_get_time(inode, FSI_ATIME, &st->st_atim);
	fsi_get_time(inode, FSI_MTIME, &st->st_mtim);
	fsi_get_time(inode, FSI_CTIME, &st->st_ctim);
}

static void init_extent_header(struct ext2_inode_large *inode)
{
	struct ext3_extent_header *eh = (void *)inode->i_block;

	eh->eh_magic = ext2fs_cpu_to_le16(EXT3_EXT_MAGIC);
	eh->eh_depth = 0;
	eh->eh_entries = 0;
	eh->eh_max = ext2fs_cpu_to_le16((sizeof(inode->i_block) -
					 sizeof(*eh)) /
					sizeof(struct ext3_extent));
	inode->i_flags |= EXT4_EXTENTS_FL;
}

/*
 * A random i_generation: NFS-style handles tell reused inode numbers
 * apart by it. One getrandom call serves FS_GEN_POOL new inodes, as a
 * system call per create costs more than the rest of fsi_new.
 */
static __u32 new_generation(struct fs *fs, ext2_ino_t ino,
			    const struct timespec *now)
{
	if (!fs->gen_left) {
		if (getrandom(fs->gen_pool, sizeof(fs->gen_pool), 0) !=
		    sizeof(fs->gen_pool))
			return (__u32)(now->tv_nsec ^ now->tv_sec ^ ino);
		fs->gen_left = FS_GEN_POOL;
	}
	return fs->gen_pool[--fs->gen_left];
}

int fsi_new(struct fs *fs, ext2_ino_t dir, mode_t mode,
	    const struct fs_cred *cred, ext2_ino_t *ino,
	    struct ext2_inode_large *inode)
{
	ext2_filsys e2 = fs->e2;
	struct ext2_inode_large parent;
	unsigned isize = EXT2_INODE_SIZE(e2->super);
	gid_t gid = cred->gid;
	uid_t uid = fs_map_uid(fs, cred->uid);
	struct timespec now;
	errcode_t err;
	int ret;

	ret = fsi_read(fs, dir, &parent);
	if (ret)
		return ret;
	if (parent.i_mode & LINUX_S_ISGID) {
		gid = fs_map_gid(fs, inode_gid(parent));
		if (LINUX_S_ISDIR(mode))
			mode |= S_ISGID;
	}
	/* As inode_init_owner: no setgid file for a group we are not in. */
	if (!LINUX_S_ISDIR(mode) && (mode & S_ISGID) && cred->uid != 0 &&
	    gid != cred->gid)
		mode &= ~S_ISGID;

	err = ext2fs_new_inode(e2, dir, mode, NULL, ino);
	if (err)
		return FS_ERR(fs, err, dir);

	memset(inode, 0, sizeof(*inode));
	inode->i_mode = mode;
	inode->i_uid = uid & 0xffff;
	ext2fs_set_i_uid_high(*inode, uid >> 16);
	gid = fs_map_gid(fs, gid);
	inode->i_gid = gid & 0xffff;
	ext2fs_set_i_gid_high(*inode, gid >> 16);
	inode->i_links_count = LINUX_S_ISDIR(mode) ? 2 : 1;
	if (isize > EXT2_GOOD_OLD_INODE_SIZE) {
		size_t want = sizeof(struct ext2_inode_large) -
			      EXT2_GOOD_OLD_INODE_SIZE;

		if (want > isize - EXT2_GOOD_OLD_INODE_SIZE)
			want = isize - EXT2_GOOD_OLD_INODE_SIZE;
		inode->i_extra_isize = want;
	}
	clock_gettime(CLOCK_REALTIME, &now);
	fsi_set_time(inode, FSI_ATIME, &now);
	fsi_set_time(inode, FSI_MTIME, &now);
	fsi_set_time(inode, FSI_CTIME, &now);
	fsi_set_time(inode, FSI_CRTIME, &now);
	inode->i_generation = new_generation(fs, *ino, &now);
	if (ext2fs_has_feature_extents(e2->super) &&
	    (LINUX_S_ISREG(mode) || LINUX_S_ISDIR(mode)))
		init_extent_header(inode);
	ext2fs_inode_alloc_stats2(e2, *ino, +1, LINUX_S_ISDIR(mode));
	return 0;
}

/*
 * libext2fs 1.47.0 refuses (EXT2_ET_BAD_BLOCK_NUM) to free an extent that
 * ends at the filesystem's last block, after removing it from the tree:
 * the blocks leak. Fixed upstream in 1.47.4. Until then, while the last
 * block is in use, the in-memory block count is raised by one around
 * every call that may free blocks. The block bitmap is stretched to match
 * with the phantom block marked in use, or an allocation inside the call
 * (an extent split) would search past the bitmap and fail with EINVAL.
 * Nothing writes the superblock or the bitmap meanwhile (fs lock held).
 * Returns whether the quirk was applied, to pass to last_block_unquirk.
 */
static __u64 block_bitmap_real_end(ext2_filsys e2)
{
	return (__u64)EXT2_BLOCKS_PER_GROUP(e2->super) * e2->group_desc_count -
	       1 + e2->super->s_first_data_block;
}

static int last_block_quirk(struct fs *fs)
{
	ext2_filsys e2 = fs->e2;
	blk64_t n = ext2fs_blocks_count(e2->super);
	__u64 real_end = block_bitmap_real_end(e2);

	if (!e2->block_map || ext2fs_has_feature_bigalloc(e2->super) ||
	    !ext2fs_test_block_bitmap2(e2->block_map, n - 1) ||
	    ext2fs_resize_block_bitmap2(n, real_end > n ? real_end : n,
					e2->block_map))
		return 0;
	ext2fs_mark_block_bitmap2(e2->block_map, n);
	ext2fs_blocks_count_set(e2->super, n + 1);
	return 1;
}

static void last_block_unquirk(struct fs *fs, int applied)
{
	ext2_filsys e2 = fs->e2;
	blk64_t n;

	if (!applied)
		return;
	n = ext2fs_blocks_count(e2->super) - 1;
	ext2fs_blocks_count_set(e2->super, n);
	ext2fs_unmark_block_bitmap2(e2->block_map, n);
	ext2fs_resize_block_bitmap2(n - 1, block_bitmap_real_end(e2),
				    e2->block_map);
}

/*
 * Frees the indirect block *p (covering logical blocks from base, with
 * children of `span` blocks each) and those below it that point to
 * nothing any more, looking only at children that meet [start, end].
 */
static errcode_t prune_ind(struct fs *fs, blk_t *p, blk64_t span,
			   blk64_t base, blk64_t start, blk64_t end,
			   blk64_t *freed)
{
	ext2_filsys e2 = fs->e2;
	blk64_t per = e2->blocksize / sizeof(blk_t), i;
	int empty = 1, dirty = 0;
	blk_t *buf;
	errcode_t err;

	if (*p < e2->super->s_first_data_block ||
	    *p >= ext2fs_blocks_count(e2->super))
		return 0; /* e2fsck's business, not ours to free */
	err = ext2fs_get_mem(e2->blocksize, &buf);
	if (err)
		return err;
	err = ext2fs_read_ind_block(e2, *p, buf);
	for (i = 0; !err && i < per; i++) {
		blk64_t child = base + i * span;

		if (buf[i] && span > 1 && child <= end &&
		    child + span - 1 >= start) {
			blk_t old = buf[i];

			err = prune_ind(fs, &buf[i], span / per, child, start,
					end, freed);
			dirty |= buf[i] != old;
		}
		empty &= !buf[i];
	}
	if (!err && empty) {
		ext2fs_block_alloc_stats2(e2, *p, -1);
		*p = 0;
		(*freed)++;
	} else if (!err && dirty) {
		err = ext2fs_write_ind_block(e2, *p, buf);
	}
	ext2fs_free_mem(&buf);
	return err;
}

/*
 * libext2fs 1.47.0 punches a bounded range of a block-mapped file wrongly
 * once it involves a doubly indirect block: it frees blocks outside the
 * range and keeps some inside it. So such ranges are punched here: data
 * blocks one at a time, then the indirect blocks left empty.
 */
static errcode_t punch_blockmap(struct fs *fs, ext2_ino_t ino,
				struct ext2_inode *inode, blk64_t start,
				blk64_t end)
{
	ext2_filsys e2 = fs->e2;
	blk64_t per = e2->blocksize / sizeof(blk_t);
	blk64_t lblk, pblk, zero = 0, freed = 0, base, span;
	errcode_t err = 0;
	int level;

	for (lblk = start; !err && lblk <= end; lblk++) {
		err = ext2fs_bmap2(e2, ino, inode, NULL, 0, lblk, NULL, &pblk);
		if (err || !pblk)
			continue;
		err = ext2fs_bmap2(e2, ino, inode, NULL, BMAP_SET, lblk, NULL,
				   &zero);
		if (err)
			break;
		ext2fs_block_alloc_stats2(e2, pblk, -1);
		freed++;
	}
	/* i_block[12..14]: single, double, triple indirect. */
	base = EXT2_NDIR_BLOCKS;
	span = 1;
	for (level = 0; !err && level < 3; level++) {
		blk_t *p = &inode->i_block[EXT2_IND_BLOCK + level];
		blk64_t covers = span * per;

		if (*p && base <= end && base + covers - 1 >= start)
			err = prune_ind(fs, p, span, base, start, end, &freed);
		base += covers;
		span = covers;
	}
	if (freed) {
		errcode_t err2 = ext2fs_iblk_sub_blocks(e2, inode, freed);

		if (!err2)
			err2 = ext2fs_write_inode(e2, ino, inode);
		if (!err)
			err = err2;
	}
	return err;
}

errcode_t fsi_punch(struct fs *fs, ext2_ino_t ino, struct ext2_inode *inode,
		    blk64_t start, blk64_t end)
{
	errcode_t err;
	int quirk;

	map_cache_forget(fs, ino);
	quirk = last_block_quirk(fs);
	if (!(inode->i_flags & EXT4_EXTENTS_FL) && end != ~0ULL &&
	    end >= EXT2_NDIR_BLOCKS)
		err = punch_blockmap(fs, ino, inode, start, end);
	else
		err = ext2fs_punch(fs->e2, ino, inode, NULL, start, end);
	last_block_unquirk(fs, quirk);
	return err;
}

int fsi_free(struct fs *fs, ext2_ino_t ino)
{
	struct ext2_inode_large inode;
	errcode_t err;
	int ret;

	ret = fsi_read(fs, ino, &inode);
	if (ret)
		return ret;
	if (ext2fs_inode_has_valid_blocks2(fs->e2, (struct ext2_inode *)&inode)) {
		err = fsi_punch(fs, ino, (struct ext2_inode *)&inode, 0,
				~0ULL);
		if (err)
			return FS_ERR(fs, err, ino);
		/* ext2fs_punch wrote the small inode; pick up its result. */
		ret = fsi_read(fs, ino, &inode);
		if (ret)
			return ret;
	}
	/* EA inodes hold their own blocks: release them first. */
	ret = xattr_release(fs, ino);
	if (ret)
		return ret;
	ret = fsi_read(fs, ino, &inode);
	if (ret)
		return ret;
	if (ext2fs_file_acl_block(fs->e2, (struct ext2_inode *)&inode)) {
		err = ext2fs_free_ext_attr(fs->e2, ino, &inode);
		if (err)
			return FS_ERR(fs, err, ino);
		ext2fs_file_acl_block_set(fs->e2, (struct ext2_inode *)&inode,
					  0);
	}
	inode.i_links_count = 0;
	inode.i_size = 0;
	inode.i_size_high = 0;
	inode.i_dtime = (__u32)time(NULL);
	ret = fsi_write(fs, ino, &inode);
	if (ret)
		return ret;
	ext2fs_inode_alloc_stats2(fs->e2, ino, -1, LINUX_S_ISDIR(inode.i_mode));
	return 0;
}

int fsi_truncate(struct fs *fs, ext2_ino_t ino,
		 struct ext2_inode_large *inode, uint64_t size)
{
	ext2_file_t file;
	errcode_t err, err2;
	int ret, quirk;

	if (file_uses_iomap(fs, inode))
		return iomap_truncate_locked(fs, ino, inode, size);
	map_cache_forget(fs, ino);
	ret = fsi_write(fs, ino, inode);
	if (ret)
		return ret;
	err = ext2fs_file_open2(fs->e2, ino, NULL, EXT2_FILE_WRITE, &file);
	if (err)
		return FS_ERR(fs, err, ino);
	quirk = last_block_quirk(fs);
	err = ext2fs_file_set_size2(file, size);
	last_block_unquirk(fs, quirk);
	err2 = ext2fs_file_close(file);
	if (!err)
		err = err2;
	if (err)
		return FS_ERR(fs, err, ino);
	return fsi_read(fs, ino, inode);
}
