/*
 * Directory indexing (dir_index): the hash a directory's names are indexed
 * by, and the conversion of a full one-block directory into an htree the
 * way ext4 does it when that directory needs a second block. Block 0
 * becomes the index root ("." and ".." stay first, the root info and the
 * index entries live in the space ".." spans); the old entries, sorted by
 * hash, are split into two leaf blocks at a hash boundary. From then on
 * libext2fs' ext2fs_link inserts through the index (splitting leaves and
 * adding a level itself) and dir.c looks names up by hash.
 */
#include <stdlib.h>
#include <string.h>

#include "core/fs_internal.h"

/* Where ".." ends and the root info starts in an index root block. */
#define ROOT_INFO_OFF (EXT2_DIR_REC_LEN(1) + EXT2_DIR_REC_LEN(2))
#define ROOT_ENTRIES_OFF (ROOT_INFO_OFF + sizeof(struct ext2_dx_root_info))

int htree_version(struct fs *fs, const struct ext2_inode_large *inode,
		  unsigned raw)
{
	ext2_filsys e2 = fs->e2;

	if (raw != EXT2_HASH_LEGACY && raw != EXT2_HASH_HALF_MD4 &&
	    raw != EXT2_HASH_TEA)
		return -1;
	/* Names of encrypted directories hash as ciphertext we do not have. */
	if (inode->i_flags & EXT4_ENCRYPT_FL)
		return -1;
	/* A casefolded directory hashes folded names: needs the encoding. */
	if ((inode->i_flags & EXT4_CASEFOLD_FL) && !e2->encoding)
		return -1;
	if (e2->super->s_flags & EXT2_FLAGS_UNSIGNED_HASH)
		raw += EXT2_HASH_LEGACY_UNSIGNED;
	return raw;
}

int htree_new_version(struct fs *fs, const struct ext2_inode_large *inode)
{
	if (!ext2fs_has_feature_dir_index(fs->e2->super))
		return -1;
	return htree_version(fs, inode, fs->e2->super->s_def_hash_version);
}

int htree_hash(struct fs *fs, ext2_ino_t dir,
	       const struct ext2_inode_large *inode, int version,
	       const char *name, size_t len, __u32 *major, __u32 *minor)
{
	ext2_filsys e2 = fs->e2;
	ext2_dirhash_t h = 0, m = 0;
	errcode_t err;

	/* An all-zero seed selects the default one, in libext2fs as in ext4. */
	err = ext2fs_dirhash2(version, name, len, e2->encoding,
			      inode->i_flags & EXT4_CASEFOLD_FL,
			      e2->super->s_hash_seed, &h, &m);
	if (err)
		return FS_ERR(fs, err, dir);
	*major = h;
	*minor = m;
	return 0;
}

struct centry {
	__u32 hash;
	__u32 minor;
	unsigned off; /* of the entry in the old block */
	unsigned size; /* its packed rec_len */
};

static int centry_cmp(const void *a, const void *b)
{
	const struct centry *x = a, *y = b;

	if (x->hash != y->hash)
		return x->hash < y->hash ? -1 : 1;
	if (x->minor != y->minor)
		return x->minor < y->minor ? -1 : 1;
	return 0;
}

/*
 * Parses the live entries after ".." in the directory's block 0 into
 * ents (hashed). Returns the count, 0 when the block does not start with
 * "." and ".." as an index root needs, or -errno.
 */
static int parse_block0(struct fs *fs, ext2_ino_t dir,
			const struct ext2_inode_large *inode, int version,
			char *buf, struct centry *ents)
{
	ext2_filsys e2 = fs->e2;
	unsigned bs = e2->blocksize, off, rec_len, name_len;
	struct ext2_dir_entry *de = (void *)buf;
	int n = 0, ret;

	if (ext2fs_get_rec_len(e2, de, &rec_len) ||
	    rec_len != EXT2_DIR_REC_LEN(1) || ext2fs_dirent_name_len(de) != 1 ||
	    buf[8] != '.')
		return 0;
	de = (void *)(buf + rec_len);
	if (ext2fs_get_rec_len(e2, de, &rec_len) ||
	    ext2fs_dirent_name_len(de) != 2 || memcmp(de->name, "..", 2) ||
	    rec_len < EXT2_DIR_REC_LEN(2) || (rec_len & 3) ||
	    rec_len > bs - EXT2_DIR_REC_LEN(1))
		return 0;
	for (off = EXT2_DIR_REC_LEN(1) + rec_len; off < bs; off += rec_len) {
		de = (void *)(buf + off);
		if (bs - off < 8 || ext2fs_get_rec_len(e2, de, &rec_len) ||
		    rec_len < EXT2_DIR_REC_LEN(1) || (rec_len & 3) ||
		    rec_len > bs - off)
			return FS_CORRUPT(fs, dir, "bad directory rec_len");
		name_len = ext2fs_dirent_name_len(de);
		if (8 + name_len > rec_len ||
		    de->inode > e2->super->s_inodes_count ||
		    (de->inode && !name_len))
			return FS_CORRUPT(fs, dir, "bad directory entry");
		if (!de->inode)
			continue;
		ents[n].off = off;
		ents[n].size = EXT2_DIR_REC_LEN(name_len);
		ret = htree_hash(fs, dir, inode, version, de->name, name_len,
				 &ents[n].hash, &ents[n].minor);
		if (ret)
			return ret;
		n++;
	}
	return n;
}

/* Packs ents into a fresh leaf block, with the checksum tail if needed. */
static void fill_leaf(struct fs *fs, const char *old, const struct centry *ents,
		      int n, char *leaf)
{
	ext2_filsys e2 = fs->e2;
	unsigned bs = e2->blocksize, off = 0, tail = 0;
	struct ext2_dir_entry *de = NULL;
	int i;

	if (ext2fs_has_feature_metadata_csum(e2->super))
		tail = sizeof(struct ext2_dir_entry_tail);
	memset(leaf, 0, bs);
	for (i = 0; i < n; i++) {
		de = (void *)(leaf + off);
		memcpy(de, old + ents[i].off, ents[i].size);
		ext2fs_set_rec_len(e2, ents[i].size, de);
		off += ents[i].size;
	}
	/* The last entry spans the rest; parse_block0 made n >= 1. */
	ext2fs_set_rec_len(e2, bs - tail - (off - ents[n - 1].size), de);
	if (tail)
		ext2fs_initialize_dirent_tail(e2, EXT2_DIRENT_TAIL(leaf, bs));
}

/* Turns the directory's block 0 (in buf) into an index root over two leaves. */
static void fill_root(struct fs *fs, char *buf, unsigned raw_version,
		      __u32 split_hash)
{
	ext2_filsys e2 = fs->e2;
	unsigned bs = e2->blocksize, limit;
	struct ext2_dir_entry *dotdot = (void *)(buf + EXT2_DIR_REC_LEN(1));
	struct ext2_dx_root_info *info = (void *)(buf + ROOT_INFO_OFF);
	struct ext2_dx_countlimit *cl = (void *)(buf + ROOT_ENTRIES_OFF);
	struct ext2_dx_entry *ents = (void *)cl;

	limit = bs - ROOT_ENTRIES_OFF;
	if (ext2fs_has_feature_metadata_csum(e2->super))
		limit -= sizeof(struct ext2_dx_tail);
	limit /= sizeof(struct ext2_dx_entry);

	ext2fs_set_rec_len(e2, bs - EXT2_DIR_REC_LEN(1), dotdot);
	memset(buf + ROOT_INFO_OFF, 0, bs - ROOT_INFO_OFF);
	info->hash_version = raw_version;
	info->info_length = sizeof(*info);
	info->indirect_levels = 0;
	cl->limit = ext2fs_cpu_to_le16(limit);
	cl->count = ext2fs_cpu_to_le16(2);
	ents[0].block = ext2fs_cpu_to_le32(1);
	ents[1].hash = ext2fs_cpu_to_le32(split_hash);
	ents[1].block = ext2fs_cpu_to_le32(2);
}

/* Gives back blocks past the first that a failed conversion allocated. */
static void drop_leaves(struct fs *fs, ext2_ino_t dir)
{
	struct ext2_inode_large inode;

	if (!fsi_read(fs, dir, &inode))
		fsi_punch(fs, dir, (struct ext2_inode *)&inode, 1, 2);
}

/*
 * Allocates logical blocks 1 and 2 of the directory. On failure nothing
 * stays allocated.
 */
static int alloc_leaves(struct fs *fs, ext2_ino_t dir, blk64_t pblk[2])
{
	errcode_t err = 0;
	int i;

	for (i = 0; i < 2 && !err; i++) {
		pblk[i] = 0;
		err = ext2fs_bmap2(fs->e2, dir, NULL, NULL, BMAP_ALLOC, i + 1,
				   NULL, &pblk[i]);
	}
	if (!err)
		return 0;
	if (i > 1)
		drop_leaves(fs, dir);
	return FS_ERR(fs, err, dir);
}

/*
 * Splits the sorted entries in two of about equal size and returns where
 * the second leaf starts; *hash gets its index hash, with the low bit set
 * when the hash it starts with continues from the first leaf.
 */
static int split_point(const struct centry *ents, int n, __u32 *hash)
{
	unsigned total = 0, lower = 0;
	int i;

	for (i = 0; i < n; i++)
		total += ents[i].size;
	for (i = 0; i < n - 1 && lower + ents[i].size / 2 < total / 2; i++)
		lower += ents[i].size;
	if (!i)
		i = 1;
	*hash = ents[i].hash;
	if (ents[i].hash == ents[i - 1].hash)
		*hash |= 1;
	return i;
}

int htree_convert(struct fs *fs, ext2_ino_t dir)
{
	ext2_filsys e2 = fs->e2;
	unsigned bs = e2->blocksize;
	struct ext2_inode_large inode;
	struct centry *ents = NULL;
	char *buf = NULL, *leaf = NULL;
	blk64_t pblk0 = 0, pblk[2];
	int version, n, split, flags = 0, ret;
	__u32 split_hash;
	errcode_t err;

	ret = fsi_read(fs, dir, &inode);
	if (ret)
		return ret;
	version = htree_new_version(fs, &inode);
	if (version < 0 ||
	    (inode.i_flags & (EXT2_INDEX_FL | EXT4_INLINE_DATA_FL)) ||
	    fsi_size(&inode) != bs)
		return 1;

	err = ext2fs_get_mem(bs, &buf);
	if (!err)
		err = ext2fs_get_mem(bs, &leaf);
	if (!err)
		err = ext2fs_get_array(bs / EXT2_DIR_REC_LEN(1), sizeof(*ents),
				       &ents);
	if (!err)
		err = ext2fs_bmap2(e2, dir, (struct ext2_inode *)&inode, NULL,
				   0, 0, &flags, &pblk0);
	if (err) {
		ret = FS_ERR(fs, err, dir);
		goto out;
	}
	if (!pblk0 || (flags & BMAP_RET_UNINIT) ||
	    pblk0 < e2->super->s_first_data_block ||
	    pblk0 >= ext2fs_blocks_count(e2->super)) {
		ret = FS_CORRUPT(fs, dir, "bad directory block 0");
		goto out;
	}
	err = ext2fs_read_dir_block4(e2, pblk0, buf, 0, dir);
	if (err) {
		ret = FS_ERR(fs, err, dir);
		goto out;
	}
	n = parse_block0(fs, dir, &inode, version, buf, ents);
	if (n < 2) {
		/* Odd dots or next to nothing to split: stay linear. */
		ret = n < 0 ? n : 1;
		goto out;
	}
	qsort(ents, n, sizeof(*ents), centry_cmp);
	split = split_point(ents, n, &split_hash);

	ret = alloc_leaves(fs, dir, pblk);
	if (ret)
		goto out;
	fill_leaf(fs, buf, ents, split, leaf);
	err = ext2fs_write_dir_block4(e2, pblk[0], leaf, 0, dir);
	if (!err) {
		fill_leaf(fs, buf, ents + split, n - split, leaf);
		err = ext2fs_write_dir_block4(e2, pblk[1], leaf, 0, dir);
	}
	if (!err) {
		fill_root(fs, buf, e2->super->s_def_hash_version, split_hash);
		err = ext2fs_write_dir_block4(e2, pblk0, buf, 0, dir);
	}
	if (err) {
		/* Block 0 is still the old linear block if the root failed. */
		ret = FS_ERR(fs, err, dir);
		drop_leaves(fs, dir);
		goto out;
	}
	/* bmap allocated through its own copy of the inode: read it back. */
	ret = fsi_read(fs, dir, &inode);
	if (ret)
		goto out;
	inode.i_size = 3 * bs;
	inode.i_size_high = 0;
	inode.i_flags |= EXT2_INDEX_FL;
	ret = fsi_write(fs, dir, &inode);
out:
	ext2fs_free_mem(&ents);
	ext2fs_free_mem(&leaf);
	ext2fs_free_mem(&buf);
	return ret;
}
