/*
 * Names: lookup, creation of every kind of inode, hard links, unlink,
 * rmdir and rename, with the VFS's rules on names, directory link counts
 * and the immutable/append-only flags. Entries are found, rewritten and
 * removed by dir.c (hashed lookups in htree directories); they are added
 * by libext2fs, which inserts through an htree index, once htree.c has
 * turned a directory outgrowing its first block into one. New inodes come
 * from fsi_new; a name's last link goes through fs_drop_link.
 */
#include <limits.h>
#include <string.h>
#include <sys/sysmacros.h>

#include "core/fs_internal.h"

#define NOCHANGE_FL (EXT2_IMMUTABLE_FL | EXT2_APPEND_FL)

/* 0 with *len set, or the errno the VFS gives for such a name. */
static int check_name(const char *name, size_t *len)
{
	size_t n = strnlen(name, EXT2_NAME_LEN + 1);

	if (!n)
		return -ENOENT;
	if (n > EXT2_NAME_LEN)
		return -ENAMETOOLONG;
	if (memchr(name, '/', n))
		return -EINVAL;
	*len = n;
	return 0;
}

/* 1 for ".", 2 for "..", 0 for any other name. */
static int dots(const char *name)
{
	if (name[0] != '.')
		return 0;
	if (!name[1])
		return 1;
	return name[1] == '.' && !name[2] ? 2 : 0;
}

/* What a directory entry may name: the root or a non-reserved inode. */
static int entry_ino_ok(struct fs *fs, ext2_ino_t ino)
{
	return ino == EXT2_ROOT_INO ||
	       (ino >= EXT2_FIRST_INO(fs->e2->super) &&
		ino <= fs->e2->super->s_inodes_count);
}

static int is_indexed(struct fs *fs, const struct ext2_inode_large *dir)
{
	return ext2fs_has_feature_dir_index(fs->e2->super) &&
	       (dir->i_flags & EXT2_INDEX_FL);
}

/* Reads a directory to work in: -ENOTDIR, or -ENOENT once removed. */
static int get_dir(struct fs *fs, ext2_ino_t dir,
		   struct ext2_inode_large *inode)
{
	int ret = fsi_read(fs, dir, inode);

	if (ret)
		return ret;
	if (!LINUX_S_ISDIR(inode->i_mode))
		return -ENOTDIR;
	if (!inode->i_links_count)
		return -ENOENT;
	return 0;
}

/* Finds name in dir: 0 with *ino, -ENOENT, or -errno. */
static int find_entry(struct fs *fs, ext2_ino_t dir, const char *name,
		      size_t len, ext2_ino_t *ino)
{
	int ret = dir_lookup(fs, dir, name, len, ino);

	if (!ret && !entry_ino_ok(fs, *ino))
		return FS_CORRUPT(fs, dir, "entry names a reserved inode");
	return ret;
}

/*
 * -EEXIST if name is taken in dir, 0 if free (room then says where it
 * fits, when dir.c could tell), else -errno.
 */
static int check_free(struct fs *fs, ext2_ino_t dir,
		      struct ext2_inode_large *dinode, const char *name,
		      size_t len, struct dir_slot *room)
{
	int ret = dir_check_free(fs, dir, dinode, name, len, room);

	if (ret != 1)
		return ret;
	if (!entry_ino_ok(fs, room->ino))
		return FS_CORRUPT(fs, dir, "entry names a reserved inode");
	return -EEXIST;
}

static unsigned mode_to_ftype(__u16 mode)
{
	switch (mode & LINUX_S_IFMT) {
	case LINUX_S_IFREG:
		return EXT2_FT_REG_FILE;
	case LINUX_S_IFDIR:
		return EXT2_FT_DIR;
	case LINUX_S_IFCHR:
		return EXT2_FT_CHRDEV;
	case LINUX_S_IFBLK:
		return EXT2_FT_BLKDEV;
	case LINUX_S_IFIFO:
		return EXT2_FT_FIFO;
	case LINUX_S_IFSOCK:
		return EXT2_FT_SOCK;
	case LINUX_S_IFLNK:
		return EXT2_FT_SYMLINK;
	default:
		return EXT2_FT_UNKNOWN;
	}
}

/*
 * Adds name -> ino to dir: where check_free found room (room may be
 * NULL), else through libext2fs. A full one-block directory becomes an
 * htree where the fs has dir_index (as in ext4), other full linear
 * directories grow by a block; libext2fs inserts into an htree itself.
 */
static int add_entry(struct fs *fs, ext2_ino_t dir, const char *name,
		     ext2_ino_t ino, unsigned ftype, struct dir_slot *room)
{
	struct ext2_inode_large inode;
	uint64_t grown = 0;
	errcode_t err;
	int ret, tries;

	if (room && room->buf)
		return dir_slot_insert(fs, dir, room, name, strlen(name), ino,
				       ftype);
	err = ext2fs_link(fs->e2, dir, name, ino, ftype);
	for (tries = 0; err == EXT2_ET_DIR_NO_SPACE && tries < 4; tries++) {
		ret = fsi_read(fs, dir, &inode);
		if (ret)
			return ret;
		if (inode.i_flags & EXT2_INDEX_FL) {
			/*
			 * One call splits at most once per level; a call that
			 * grew the tree may need another. One that did not
			 * met the depth limit, and a block appended outside
			 * the index would be invisible to hashed lookups.
			 */
			if (fsi_size(&inode) == grown)
				return -ENOSPC;
			grown = fsi_size(&inode);
		} else {
			ret = htree_convert(fs, dir);
			if (ret < 0)
				return ret;
			if (ret) {
				err = ext2fs_expand_dir(fs->e2, dir);
				if (err)
					break;
			}
		}
		err = ext2fs_link(fs->e2, dir, name, ino, ftype);
	}
	/*
	 * Blocks added by libext2fs change i_blocks, which the mapping
	 * cache checks; growing is rare enough to also say so outright.
	 */
	if (tries)
		map_cache_forget(fs, dir);
	if (err == EXT2_ET_DIR_NO_SPACE)
		return -ENOSPC;
	return FS_ERR(fs, err, dir);
}

static int remove_entry(struct fs *fs, ext2_ino_t dir, const char *name,
			size_t len, ext2_ino_t ino)
{
	return dir_set_entry(fs, dir, name, len, ino, 0, 0);
}

/*
 * Points the existing entry name -> from at `to` in place: no space is
 * needed and the entry's hash does not change. Also rewrites "..".
 */
static int retarget_entry(struct fs *fs, ext2_ino_t dir, const char *name,
			  size_t len, ext2_ino_t from, ext2_ino_t to,
			  unsigned ftype)
{
	int ret = dir_set_entry(fs, dir, name, len, from, to, ftype);

	if (ret == -ENOENT)
		return FS_CORRUPT(fs, dir, "directory entry vanished");
	return ret;
}

/* -EMLINK if dir cannot take the ".." of one more subdirectory. */
static int dir_link_full(struct fs *fs, const struct ext2_inode_large *dir)
{
	if (dir->i_links_count == 1 || dir->i_links_count < EXT2_LINK_MAX - 1)
		return 0;
	if (ext2fs_has_feature_dir_nlink(fs->e2->super) || is_indexed(fs, dir))
		return 0;
	return dir->i_links_count < EXT2_LINK_MAX ? 0 : -EMLINK;
}

/*
 * Counts one more subdirectory (dir_link_full said there is room). Past
 * EXT2_LINK_MAX a directory's count becomes 1, "too many to count", which
 * the dir_nlink feature allows, as ext4 does.
 */
static void dir_inc_link(struct fs *fs, struct ext2_inode_large *dir)
{
	ext2_filsys e2 = fs->e2;

	if (dir->i_links_count == 1)
		return;
	if (dir->i_links_count + 1 >= EXT2_LINK_MAX &&
	    (ext2fs_has_feature_dir_nlink(e2->super) || is_indexed(fs, dir))) {
		if (!ext2fs_has_feature_dir_nlink(e2->super)) {
			ext2fs_set_feature_dir_nlink(e2->super);
			ext2fs_mark_super_dirty(e2);
		}
		dir->i_links_count = 1;
		return;
	}
	dir->i_links_count++;
}

static void dir_dec_link(struct ext2_inode_large *dir)
{
	if (dir->i_links_count > 2)
		dir->i_links_count--;
}

/*
 * Re-reads a directory whose entries changed (libext2fs may have grown
 * it), adjusts its subdirectory count by `links` and stamps mtime/ctime.
 */
static int touch_dir(struct fs *fs, ext2_ino_t dir, int links)
{
	struct ext2_inode_large inode;
	int ret;

	ret = fsi_read(fs, dir, &inode);
	if (ret)
		return ret;
	if (links > 0)
		dir_inc_link(fs, &inode);
	else if (links < 0)
		dir_dec_link(&inode);
	fsi_touch(&inode, FSI_TOUCH_MTIME | FSI_TOUCH_CTIME);
	return fsi_write(fs, dir, &inode);
}

static int touch_ctime(struct fs *fs, ext2_ino_t ino)
{
	struct ext2_inode_large inode;
	int ret;

	ret = fsi_read(fs, ino, &inode);
	if (ret)
		return ret;
	fsi_touch(&inode, FSI_TOUCH_CTIME);
	return fsi_write(fs, ino, &inode);
}

static int fill_stat(struct fs *fs, ext2_ino_t ino, struct stat *st)
{
	struct ext2_inode_large inode;
	int ret;

	if (!st)
		return 0;
	ret = fsi_read(fs, ino, &inode);
	if (!ret)
		fsi_to_stat(fs, ino, &inode, st);
	return ret;
}

/*
 * The checks shared by everything that adds a name to dir; room (which
 * the caller zeroes first and releases) may get the place for the name.
 */
static int may_create(struct fs *fs, ext2_ino_t dir, const char *name,
		      struct ext2_inode_large *dinode, struct dir_slot *room)
{
	size_t len;
	int ret;

	ret = fs_writable(fs);
	if (ret)
		return ret;
	ret = check_name(name, &len);
	if (ret)
		return ret;
	ret = get_dir(fs, dir, dinode);
	if (ret)
		return ret;
	if (dinode->i_flags & EXT2_IMMUTABLE_FL)
		return -EPERM;
	if (dots(name))
		return -EEXIST;
	return check_free(fs, dir, dinode, name, len, room);
}

static void clear_data_map(struct ext2_inode_large *inode)
{
	inode->i_flags &= ~(EXT4_EXTENTS_FL | EXT4_INLINE_DATA_FL);
	memset(inode->i_block, 0, sizeof(inode->i_block));
}

/* Device numbers as ext4 stores them: old 8:8 format when it fits. */
static void encode_rdev(struct ext2_inode_large *inode, dev_t rdev)
{
	unsigned maj = major(rdev), min = minor(rdev);

	if (maj < 256 && min < 256) {
		inode->i_block[0] = ext2fs_cpu_to_le32((maj << 8) | min);
	} else {
		inode->i_block[1] = ext2fs_cpu_to_le32(
			(min & 0xff) | (maj << 8) | ((min & ~0xffu) << 12));
	}
}

static void init_extent_header(struct ext2_inode_large *inode)
{
	struct ext3_extent_header *eh = (void *)inode->i_block;

	memset(inode->i_block, 0, sizeof(inode->i_block));
	eh->eh_magic = ext2fs_cpu_to_le16(EXT3_EXT_MAGIC);
	eh->eh_max = ext2fs_cpu_to_le16((sizeof(inode->i_block) - sizeof(*eh)) /
					sizeof(struct ext3_extent));
	inode->i_flags |= EXT4_EXTENTS_FL;
}

/*
 * Allocates logical block 0 of a just-written inode and fills it; a
 * directory block goes through libext2fs for its checksum tail.
 */
static int write_first_block(struct fs *fs, ext2_ino_t ino, void *buf,
			     int isdir)
{
	blk64_t pblk = 0;
	errcode_t err;

	err = ext2fs_bmap2(fs->e2, ino, NULL, NULL, BMAP_ALLOC, 0, NULL, &pblk);
	if (err)
		return FS_ERR(fs, err, ino);
	if (isdir)
		err = ext2fs_write_dir_block4(fs->e2, pblk, buf, 0, ino);
	else
		err = io_channel_write_blk64(fs->e2->io, pblk, 1, buf);
	return FS_ERR(fs, err, ino);
}

/*
 * Sets up the in-memory inode of a new directory: inline when the fs has
 * inline_data (as the kernel does), else one block, filled by fill_dir.
 */
static int prep_dir(struct fs *fs, ext2_ino_t dir, ext2_ino_t ino,
		    struct ext2_inode_large *inode)
{
	ext2_filsys e2 = fs->e2;
	errcode_t err;

	if (ext2fs_has_feature_inline_data(e2->super) &&
	    EXT2_INODE_SIZE(e2->super) > EXT2_GOOD_OLD_INODE_SIZE) {
		clear_data_map(inode);
		inode->i_flags |= EXT4_INLINE_DATA_FL;
		err = ext2fs_new_dir_inline_data(e2, ino, dir, inode->i_block);
		inode->i_size = EXT4_MIN_INLINE_DATA_SIZE;
		return FS_ERR(fs, err, ino);
	}
	if (!ext2fs_has_feature_extents(e2->super))
		clear_data_map(inode);
	inode->i_size = e2->blocksize;
	return 0;
}

static int fill_dir(struct fs *fs, ext2_ino_t dir, ext2_ino_t ino,
		    const struct ext2_inode_large *inode)
{
	ext2_filsys e2 = fs->e2;
	char *block = NULL;
	errcode_t err;
	int ret;

	if (inode->i_flags & EXT4_INLINE_DATA_FL)
		return FS_ERR(fs, ext2fs_inline_data_init(e2, ino), ino);
	err = ext2fs_new_dir_block(e2, ino, dir, &block);
	if (err)
		return FS_ERR(fs, err, ino);
	ret = write_first_block(fs, ino, block, 1);
	ext2fs_free_mem(&block);
	return ret;
}

/*
 * Whether a symlink target of len bytes fits inline: 60 bytes in i_block,
 * the rest as the value of a "system.data" xattr in the (otherwise empty)
 * in-inode xattr area of a new inode.
 */
static int symlink_fits_inline(struct fs *fs,
			       const struct ext2_inode_large *inode,
			       size_t len)
{
	ext2_filsys e2 = fs->e2;
	size_t isize = EXT2_INODE_SIZE(e2->super);
	size_t used = EXT2_GOOD_OLD_INODE_SIZE + inode->i_extra_isize +
		      sizeof(__u32) + EXT2_EXT_ATTR_LEN(strlen("data")) +
		      sizeof(__u32);

	if (!ext2fs_has_feature_inline_data(e2->super) || used >= isize)
		return 0;
	return EXT2_EXT_ATTR_SIZE(len - EXT4_MIN_INLINE_DATA_SIZE) <=
	       isize - used;
}

/*
 * Fast symlink (the target in i_block) below 60 bytes, inline data when
 * the fs has it and the target fits, else one block.
 */
static void prep_symlink(struct fs *fs, struct ext2_inode_large *inode,
			 const char *target, size_t len)
{
	clear_data_map(inode);
	inode->i_size = len;
	if (len < sizeof(inode->i_block))
		memcpy(inode->i_block, target, len);
	else if (symlink_fits_inline(fs, inode, len))
		inode->i_flags |= EXT4_INLINE_DATA_FL;
	else if (ext2fs_has_feature_extents(fs->e2->super))
		init_extent_header(inode);
}

static int fill_symlink(struct fs *fs, ext2_ino_t ino,
			const struct ext2_inode_large *inode,
			const char *target, size_t len)
{
	ext2_filsys e2 = fs->e2;
	char *block = NULL;
	errcode_t err;
	int ret;

	if (len < sizeof(inode->i_block))
		return 0;
	if (inode->i_flags & EXT4_INLINE_DATA_FL) {
		err = ext2fs_inline_data_init(e2, ino);
		if (!err)
			err = ext2fs_inline_data_set(e2, ino, NULL,
						     (void *)target, len);
		return FS_ERR(fs, err, ino);
	}
	err = ext2fs_get_memzero(e2->blocksize, &block);
	if (err)
		return FS_ERR(fs, err, ino);
	memcpy(block, target, len);
	ret = write_first_block(fs, ino, block, 0);
	ext2fs_free_mem(&block);
	return ret;
}

/*
 * Creates an inode of `mode` named `name` in dir: the common part of
 * mknod, mkdir and symlink. The caller holds the lock.
 */
static int create(struct fs *fs, ext2_ino_t dir, const char *name,
		  mode_t mode, dev_t rdev, const char *target,
		  const struct fs_cred *cred, struct stat *st)
{
	struct ext2_inode_large dinode, inode;
	struct dir_slot room = { 0 };
	int isdir = LINUX_S_ISDIR(mode);
	size_t tlen = 0;
	ext2_ino_t ino;
	int ret;

	ret = may_create(fs, dir, name, &dinode, &room);
	if (ret)
		goto out;
	if (isdir) {
		ret = dir_link_full(fs, &dinode);
		if (ret)
			goto out;
	}
	if (target) {
		tlen = strnlen(target, PATH_MAX);
		ret = -ENOENT;
		if (!tlen)
			goto out;
		ret = -ENAMETOOLONG;
		if (tlen >= PATH_MAX || tlen >= fs->e2->blocksize)
			goto out;
	}

	ret = fsi_new(fs, dir, mode, cred, &ino, &inode);
	if (ret)
		goto out;
	switch (mode & LINUX_S_IFMT) {
	case LINUX_S_IFREG:
		break;
	case LINUX_S_IFDIR:
		ret = prep_dir(fs, dir, ino, &inode);
		break;
	case LINUX_S_IFLNK:
		prep_symlink(fs, &inode, target, tlen);
		break;
	default:
		clear_data_map(&inode);
		if (LINUX_S_ISCHR(mode) || LINUX_S_ISBLK(mode))
			encode_rdev(&inode, rdev);
		break;
	}
	if (!ret)
		ret = fsi_write(fs, ino, &inode);
	if (ret) {
		/* The on-disk inode is still the old one: just unmark it. */
		ext2fs_inode_alloc_stats2(fs->e2, ino, -1, isdir);
		goto out;
	}
	/* None of these writes dir's blocks: room stays current. */
	if (isdir)
		ret = fill_dir(fs, dir, ino, &inode);
	else if (target)
		ret = fill_symlink(fs, ino, &inode, target, tlen);
	if (!ret && !target)
		ret = acl_inherit(fs, dir, ino, cred);
	if (!ret)
		ret = add_entry(fs, dir, name, ino, mode_to_ftype(mode), &room);
	if (ret) {
		/* Nothing names the inode yet: give back all it holds. */
		fsi_free(fs, ino);
		goto out;
	}
	ret = touch_dir(fs, dir, isdir);
	if (!ret)
		ret = fill_stat(fs, ino, st);
out:
	dir_slot_release(fs, &room);
	return ret;
}

int namei_lookup(struct fs *fs, ext2_ino_t dir, const char *name,
		 ext2_ino_t *ino, struct stat *st)
{
	struct ext2_inode_large dinode;
	size_t len;
	int ret;

	fs_lock(fs);
	ret = check_name(name, &len);
	if (ret)
		goto out;
	ret = get_dir(fs, dir, &dinode);
	if (ret)
		goto out;
	ret = find_entry(fs, dir, name, len, ino);
	if (ret)
		goto out;
	ret = fill_stat(fs, *ino, st);
out:
	fs_unlock(fs);
	return ret;
}

int namei_mknod(struct fs *fs, ext2_ino_t dir, const char *name, mode_t mode,
		dev_t rdev, const struct fs_cred *cred, struct stat *st)
{
	int ret;

	fs_lock(fs);
	/* mknod(2): a zero type means a regular file. */
	if (!(mode & S_IFMT))
		mode |= S_IFREG;
	switch (mode & S_IFMT) {
	case S_IFREG:
	case S_IFCHR:
	case S_IFBLK:
	case S_IFIFO:
	case S_IFSOCK:
		ret = create(fs, dir, name, mode & (S_IFMT | 07777), rdev, NULL,
			     cred, st);
		break;
	default:
		ret = -EINVAL;
		break;
	}
	fs_unlock(fs);
	return ret;
}

int namei_mkdir(struct fs *fs, ext2_ino_t dir, const char *name, mode_t mode,
		const struct fs_cred *cred, struct stat *st)
{
	int ret;

	fs_lock(fs);
	ret = create(fs, dir, name, S_IFDIR | (mode & 07777), 0, NULL, cred,
		     st);
	fs_unlock(fs);
	return ret;
}

int namei_symlink(struct fs *fs, ext2_ino_t dir, const char *name,
		  const char *target, const struct fs_cred *cred,
		  struct stat *st)
{
	int ret;

	fs_lock(fs);
	ret = create(fs, dir, name, S_IFLNK | 0777, 0, target, cred, st);
	fs_unlock(fs);
	return ret;
}

/* Copies the target of a symlink whose inode is given into buf. */
static int read_target(struct fs *fs, ext2_ino_t ino,
		       struct ext2_inode_large *inode, char *buf, size_t size)
{
	ext2_filsys e2 = fs->e2;
	uint64_t len = fsi_size(inode);
	size_t have = 0;
	char *data = NULL;
	blk64_t pblk = 0;
	errcode_t err;
	int ret = 0, flags = 0;

	if (!len || len >= e2->blocksize || len >= PATH_MAX)
		return FS_CORRUPT(fs, ino, "bad symlink size");
	if (inode->i_flags & EXT4_INLINE_DATA_FL) {
		err = ext2fs_inline_data_size(e2, ino, &have);
		if (err)
			return FS_ERR(fs, err, ino);
		if (have < len)
			return FS_CORRUPT(fs, ino, "symlink beyond inline data");
		err = ext2fs_get_mem(have, &data);
		if (!err)
			err = ext2fs_inline_data_get(e2, ino,
						     (struct ext2_inode *)inode,
						     data, &have);
		if (!err && have < len)
			ret = FS_CORRUPT(fs, ino, "symlink beyond inline data");
	} else if (!ext2fs_inode_data_blocks2(e2, (struct ext2_inode *)inode)) {
		if (len >= sizeof(inode->i_block))
			return FS_CORRUPT(fs, ino, "bad fast symlink size");
		err = ext2fs_get_mem(len, &data);
		if (!err)
			memcpy(data, inode->i_block, len);
	} else {
		err = ext2fs_bmap2(e2, ino, (struct ext2_inode *)inode, NULL, 0,
				   0, &flags, &pblk);
		if (!err && (!pblk || (flags & BMAP_RET_UNINIT) ||
			     pblk < e2->super->s_first_data_block ||
			     pblk >= ext2fs_blocks_count(e2->super)))
			ret = FS_CORRUPT(fs, ino, "bad symlink block");
		if (!err && !ret)
			err = ext2fs_get_mem(e2->blocksize, &data);
		if (!err && !ret)
			err = io_channel_read_blk64(e2->io, pblk, 1, data);
	}
	if (err)
		ret = FS_ERR(fs, err, ino);
	if (!ret) {
		if (len > size - 1)
			len = size - 1;
		memcpy(buf, data, len);
		buf[len] = '\0';
	}
	ext2fs_free_mem(&data);
	return ret;
}

int namei_readlink(struct fs *fs, ext2_ino_t ino, char *buf, size_t size)
{
	struct ext2_inode_large inode;
	int ret;

	fs_lock(fs);
	if (!size) {
		ret = -EINVAL;
		goto out;
	}
	ret = fsi_read(fs, ino, &inode);
	if (ret)
		goto out;
	if (!LINUX_S_ISLNK(inode.i_mode)) {
		ret = -EINVAL;
		goto out;
	}
	ret = read_target(fs, ino, &inode, buf, size);
out:
	fs_unlock(fs);
	return ret;
}

int namei_link(struct fs *fs, ext2_ino_t ino, ext2_ino_t dir, const char *name,
	       struct stat *st)
{
	struct ext2_inode_large dinode, inode;
	struct dir_slot room = { 0 };
	int ret;

	fs_lock(fs);
	ret = may_create(fs, dir, name, &dinode, &room);
	if (ret)
		goto out;
	ret = fsi_read(fs, ino, &inode);
	if (ret)
		goto out;
	if (LINUX_S_ISDIR(inode.i_mode) || (inode.i_flags & NOCHANGE_FL)) {
		ret = -EPERM;
		goto out;
	}
	if (inode.i_links_count >= EXT2_LINK_MAX) {
		ret = -EMLINK;
		goto out;
	}
	/* Only an open inode without links (O_TMPFILE) may get one back. */
	if (!inode.i_links_count && !fs_iref_held(fs, ino)) {
		ret = -ENOENT;
		goto out;
	}
	ret = add_entry(fs, dir, name, ino, mode_to_ftype(inode.i_mode), &room);
	if (ret)
		goto out;
	if (!inode.i_links_count) {
		ret = orphan_remove(fs, ino);
		if (ret)
			goto out;
	}
	ret = fsi_read(fs, ino, &inode);
	if (ret)
		goto out;
	inode.i_links_count++;
	fsi_touch(&inode, FSI_TOUCH_CTIME);
	ret = fsi_write(fs, ino, &inode);
	if (ret)
		goto out;
	ret = touch_dir(fs, dir, 0);
	if (!ret)
		ret = fill_stat(fs, ino, st);
out:
	dir_slot_release(fs, &room);
	fs_unlock(fs);
	return ret;
}

/* What unlink and rmdir work on: the entry, its directory and its inode. */
struct victim {
	struct ext2_inode_large dinode, inode;
	struct dir_slot slot; /* slot.ino is the victim */
};

/*
 * The checks shared by unlink and rmdir; fills v, whose slot the caller
 * releases in every case. Dots are refused by the callers first.
 */
static int may_remove(struct fs *fs, ext2_ino_t dir, const char *name,
		      size_t len, struct victim *v)
{
	int ret;

	ret = get_dir(fs, dir, &v->dinode);
	if (ret)
		return ret;
	ret = dir_find(fs, dir, &v->dinode, name, len, &v->slot);
	if (ret)
		return ret;
	if (!entry_ino_ok(fs, v->slot.ino))
		return FS_CORRUPT(fs, dir, "entry names a reserved inode");
	if (v->dinode.i_flags & NOCHANGE_FL)
		return -EPERM;
	ret = fsi_read(fs, v->slot.ino, &v->inode);
	if (ret)
		return ret;
	if (v->inode.i_flags & NOCHANGE_FL)
		return -EPERM;
	return 0;
}

/* Removes the entry may_remove found, with no second search. */
static int remove_victim(struct fs *fs, ext2_ino_t dir, struct victim *v)
{
	return dir_slot_set(fs, dir, &v->dinode, &v->slot, 0, 0);
}

int namei_unlink(struct fs *fs, ext2_ino_t dir, const char *name)
{
	struct victim v;
	size_t len;
	int ret;

	memset(&v.slot, 0, sizeof(v.slot));
	fs_lock(fs);
	ret = fs_writable(fs);
	if (ret)
		goto out;
	ret = check_name(name, &len);
	if (ret)
		goto out;
	if (dots(name)) {
		ret = -EISDIR;
		goto out;
	}
	ret = may_remove(fs, dir, name, len, &v);
	if (ret)
		goto out;
	if (LINUX_S_ISDIR(v.inode.i_mode)) {
		ret = -EISDIR;
		goto out;
	}
	ret = remove_victim(fs, dir, &v);
	if (ret)
		goto out;
	ret = touch_dir(fs, dir, 0);
	if (!ret)
		ret = fs_drop_link(fs, v.slot.ino);
out:
	dir_slot_release(fs, &v.slot);
	fs_unlock(fs);
	return ret;
}

int namei_rmdir(struct fs *fs, ext2_ino_t dir, const char *name)
{
	struct victim v;
	size_t len;
	int ret;

	memset(&v.slot, 0, sizeof(v.slot));
	fs_lock(fs);
	ret = fs_writable(fs);
	if (ret)
		goto out;
	ret = check_name(name, &len);
	if (ret)
		goto out;
	switch (dots(name)) {
	case 1:
		ret = -EINVAL;
		goto out;
	case 2:
		ret = -ENOTEMPTY;
		goto out;
	}
	ret = may_remove(fs, dir, name, len, &v);
	if (ret)
		goto out;
	if (!LINUX_S_ISDIR(v.inode.i_mode)) {
		ret = -ENOTDIR;
		goto out;
	}
	if (v.slot.ino == EXT2_ROOT_INO) {
		ret = -EBUSY;
		goto out;
	}
	/* Reads another directory: the slot's block stays as it was. */
	ret = dir_is_empty(fs, v.slot.ino);
	if (ret)
		goto out;
	ret = remove_victim(fs, dir, &v);
	if (ret)
		goto out;
	ret = touch_dir(fs, dir, -1);
	if (!ret)
		ret = fs_drop_link(fs, v.slot.ino);
out:
	dir_slot_release(fs, &v.slot);
	fs_unlock(fs);
	return ret;
}

/*
 * -EINVAL if dir `anc` is `dir` itself or one of its ancestors, found by
 * walking ".." up to the root.
 */
static int check_not_ancestor(struct fs *fs, ext2_ino_t anc, ext2_ino_t dir)
{
	ext2_ino_t cur = dir, parent;
	uint32_t steps = 0;
	int ret;

	for (;;) {
		if (cur == anc)
			return -EINVAL;
		if (cur == EXT2_ROOT_INO)
			return 0;
		if (++steps > fs->e2->super->s_inodes_count)
			return FS_CORRUPT(fs, dir, "directory loop");
		ret = find_entry(fs, cur, "..", 2, &parent);
		if (ret == -ENOENT)
			return FS_CORRUPT(fs, cur, "directory without ..");
		if (ret)
			return ret;
		cur = parent;
	}
}

/* A directory about to move must name its current parent in "..". */
static int check_dotdot(struct fs *fs, ext2_ino_t dir, ext2_ino_t parent)
{
	ext2_ino_t ino;
	int ret = find_entry(fs, dir, "..", 2, &ino);

	if (ret == -ENOENT || (!ret && ino != parent))
		return FS_CORRUPT(fs, dir, "\"..\" does not name the parent");
	return ret;
}

struct rename_op {
	ext2_ino_t olddir, newdir, src, dst;
	const char *oldname, *newname;
	size_t oldlen, newlen;
	struct ext2_inode_large od, nd, si, di;
	int sdir, ddir;
	unsigned flags;
};

/* Every refusal rename can make before anything is changed. */
static int rename_check(struct fs *fs, struct rename_op *r)
{
	int exchange = r->flags & FS_RENAME_EXCHANGE;
	int ret;

	if (r->od.i_flags & NOCHANGE_FL || r->nd.i_flags & EXT2_IMMUTABLE_FL)
		return -EPERM;
	if (r->si.i_flags & NOCHANGE_FL)
		return -EPERM;
	if (r->dst && (r->nd.i_flags & EXT2_APPEND_FL ||
		       r->di.i_flags & NOCHANGE_FL))
		return -EPERM;
	if (r->dst && !exchange) {
		if (r->sdir && !r->ddir)
			return -ENOTDIR;
		if (!r->sdir && r->ddir)
			return -EISDIR;
	}
	if (r->olddir != r->newdir) {
		if (r->sdir) {
			ret = check_not_ancestor(fs, r->src, r->newdir);
			if (!ret)
				ret = check_dotdot(fs, r->src, r->olddir);
			if (ret)
				return ret;
		}
		if (exchange && r->ddir) {
			ret = check_not_ancestor(fs, r->dst, r->olddir);
			if (!ret)
				ret = check_dotdot(fs, r->dst, r->newdir);
			if (ret)
				return ret;
		}
		if (r->sdir && !r->ddir) {
			ret = dir_link_full(fs, &r->nd);
			if (ret)
				return ret;
		}
		if (exchange && r->ddir && !r->sdir) {
			ret = dir_link_full(fs, &r->od);
			if (ret)
				return ret;
		}
	}
	if (r->dst && !exchange && r->ddir)
		return dir_is_empty(fs, r->dst);
	return 0;
}

/* Points a moved directory's ".." at its new parent. */
static int set_dotdot(struct fs *fs, ext2_ino_t dir, ext2_ino_t from,
		      ext2_ino_t to)
{
	return retarget_entry(fs, dir, "..", 2, from, to, EXT2_FT_DIR);
}

static int rename_exchange(struct fs *fs, struct rename_op *r)
{
	int moved = r->olddir != r->newdir;
	int ret;

	ret = retarget_entry(fs, r->newdir, r->newname, r->newlen, r->dst,
			     r->src, mode_to_ftype(r->si.i_mode));
	if (!ret)
		ret = retarget_entry(fs, r->olddir, r->oldname, r->oldlen,
				     r->src, r->dst,
				     mode_to_ftype(r->di.i_mode));
	if (!ret && moved && r->sdir)
		ret = set_dotdot(fs, r->src, r->olddir, r->newdir);
	if (!ret && moved && r->ddir)
		ret = set_dotdot(fs, r->dst, r->newdir, r->olddir);
	if (!ret)
		ret = touch_ctime(fs, r->src);
	if (!ret)
		ret = touch_ctime(fs, r->dst);
	if (!ret)
		ret = touch_dir(fs, r->olddir,
				moved ? r->ddir - r->sdir : 0);
	if (!ret && moved)
		ret = touch_dir(fs, r->newdir, r->sdir - r->ddir);
	return ret;
}

static int rename_move(struct fs *fs, struct rename_op *r)
{
	int moved = r->olddir != r->newdir;
	unsigned ftype = mode_to_ftype(r->si.i_mode);
	int ret;

	if (r->dst)
		ret = retarget_entry(fs, r->newdir, r->newname, r->newlen,
				     r->dst, r->src, ftype);
	else
		ret = add_entry(fs, r->newdir, r->newname, r->src, ftype, NULL);
	if (!ret)
		ret = remove_entry(fs, r->olddir, r->oldname, r->oldlen,
				   r->src);
	if (!ret && moved && r->sdir)
		ret = set_dotdot(fs, r->src, r->olddir, r->newdir);
	if (!ret)
		ret = touch_ctime(fs, r->src);
	if (ret)
		return ret;
	if (moved) {
		ret = touch_dir(fs, r->olddir, -r->sdir);
		if (!ret)
			ret = touch_dir(fs, r->newdir, r->sdir - r->ddir);
	} else {
		ret = touch_dir(fs, r->olddir, -r->ddir);
	}
	if (!ret && r->dst)
		ret = fs_drop_link(fs, r->dst);
	return ret;
}

int namei_rename(struct fs *fs, ext2_ino_t olddir, const char *oldname,
		 ext2_ino_t newdir, const char *newname, unsigned flags)
{
	struct rename_op r = { .olddir = olddir, .newdir = newdir,
			       .oldname = oldname, .newname = newname,
			       .flags = flags };
	int ret;

	fs_lock(fs);
	ret = fs_writable(fs);
	if (ret)
		goto out;
	if ((flags & ~(FS_RENAME_NOREPLACE | FS_RENAME_EXCHANGE)) ||
	    ((flags & FS_RENAME_NOREPLACE) && (flags & FS_RENAME_EXCHANGE))) {
		ret = -EINVAL;
		goto out;
	}
	ret = check_name(oldname, &r.oldlen);
	if (!ret)
		ret = check_name(newname, &r.newlen);
	if (ret)
		goto out;
	if (dots(oldname) || dots(newname)) {
		ret = dots(oldname) || !(flags & FS_RENAME_NOREPLACE) ?
			      -EBUSY : -EEXIST;
		goto out;
	}
	ret = get_dir(fs, olddir, &r.od);
	if (!ret)
		ret = get_dir(fs, newdir, &r.nd);
	if (!ret)
		ret = find_entry(fs, olddir, oldname, r.oldlen, &r.src);
	if (ret)
		goto out;
	ret = find_entry(fs, newdir, newname, r.newlen, &r.dst);
	if (ret == -ENOENT && !(flags & FS_RENAME_EXCHANGE)) {
		r.dst = 0;
		ret = 0;
	}
	if (ret)
		goto out;
	if (r.dst && (flags & FS_RENAME_NOREPLACE)) {
		ret = -EEXIST;
		goto out;
	}
	/* Two names of one inode: rename(2) then does nothing at all. */
	if (r.dst == r.src)
		goto out;
	ret = fsi_read(fs, r.src, &r.si);
	if (!ret && r.dst)
		ret = fsi_read(fs, r.dst, &r.di);
	if (ret)
		goto out;
	r.sdir = LINUX_S_ISDIR(r.si.i_mode);
	r.ddir = r.dst && LINUX_S_ISDIR(r.di.i_mode);
	ret = rename_check(fs, &r);
	if (ret)
		goto out;
	if (flags & FS_RENAME_EXCHANGE)
		ret = rename_exchange(fs, &r);
	else
		ret = rename_move(fs, &r);
out:
	fs_unlock(fs);
	return ret;
}
