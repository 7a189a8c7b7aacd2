/*
 * Journal recovery at mount: the jbd2 log of an internal journal read as
 * the kernel and e2fsck read it (descriptor, commit and revoke blocks,
 * 32- and 64-bit tags, checksums v2 and v3) and its committed
 * transactions written home. A read-only mount lays the replayed blocks
 * over the image in the cache instead, so the image is never written.
 *
 * The whole log is checked before anything is written: a journal that
 * fails a check is refused with one line, never half replayed.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/fs_internal.h"
#include "core/jbd2_format.h"
#include "support/cache_io.h"

struct revoke {
	blk64_t blk;
	uint32_t seq; /* the latest transaction that revoked blk */
};

struct jrec {
	ext2_filsys e2;
	unsigned bs;
	int readonly;
	blk64_t *map;	      /* journal block -> fs block */
	uint32_t first, last; /* the log is journal blocks [first, last) */
	uint32_t start, seq;  /* where the log starts, and its first ID */
	uint32_t incompat;
	int csum; /* CSUM_V2 or V3: every block checksummed */
	unsigned tag_bytes;
	uint32_t csum_seed;
	uint32_t end_seq; /* first transaction ID not committed */
	struct revoke *rv;
	size_t nrv, rv_cap;
	unsigned char *jsb, *buf, *data;
	uint64_t steps, max_steps; /* journal blocks walked, and the bound */
	unsigned long nr_trans, nr_blocks;
	const char *msg;
};

enum jpass { PASS_SCAN, PASS_REVOKE, PASS_REPLAY };

static int corrupt(struct jrec *j, const char *msg)
{
	j->msg = msg;
	return -EUCLEAN;
}

static uint32_t jcsum(uint32_t seed, const void *p, size_t len)
{
	return ext2fs_crc32c_le(seed, p, len);
}

/* The checksum of a block whose last 4 bytes hold it (zeroed for it). */
static int tail_csum_ok(struct jrec *j, unsigned char *b)
{
	unsigned char *tail = b + j->bs - JBD2_TAIL_SIZE;
	uint32_t want = jbd2_get32(tail), got;

	memset(tail, 0, JBD2_TAIL_SIZE);
	got = jcsum(j->csum_seed, b, j->bs);
	jbd2_put32(tail, want);
	return got == want;
}

static int commit_csum_ok(struct jrec *j, unsigned char *b)
{
	uint32_t want = jbd2_get32(b + JC_CHKSUM), got;

	memset(b + JC_CHKSUM, 0, 4);
	got = jcsum(j->csum_seed, b, j->bs);
	jbd2_put32(b + JC_CHKSUM, want);
	return got == want;
}

static int read_jblock(struct jrec *j, uint32_t jblk, unsigned char *buf)
{
	errcode_t err = io_channel_read_blk64(j->e2->io, j->map[jblk], 1, buf);

	if (err)
		return corrupt(j, "cannot read the journal");
	return 0;
}

static uint32_t next_jblock(struct jrec *j, uint32_t jblk)
{
	return jblk + 1 < j->last ? jblk + 1 : j->first;
}

static int map_journal(ext2_filsys e2, blk64_t *blocknr, e2_blkcnt_t blockcnt,
		       blk64_t ref_blk, int ref_offset, void *priv)
{
	struct jrec *j = priv;

	(void)e2;
	(void)ref_blk;
	(void)ref_offset;
	if (blockcnt >= 0 && blockcnt < j->last)
		j->map[blockcnt] = *blocknr;
	return 0;
}

/* Reads and checks the journal superblock and maps the journal's blocks. */
static int load_journal(struct jrec *j, struct fs *fs)
{
	ext2_filsys e2 = fs->e2;
	struct ext2_super_block *sb = e2->super;
	struct ext2_inode inode;
	uint32_t maxlen, type, i;
	blk64_t iblocks;
	errcode_t err;

	if (!ext2fs_has_feature_journal(sb) || !sb->s_journal_inum)
		return corrupt(j, "the journal is on an external device, which "
				  "this server cannot replay: run e2fsck");
	err = ext2fs_read_inode(e2, sb->s_journal_inum, &inode);
	if (err)
		return corrupt(j, "cannot read the journal inode: run e2fsck");
	iblocks = EXT2_I_SIZE(&inode) / j->bs;
	if (iblocks > ext2fs_blocks_count(sb))
		return corrupt(j, "the journal inode is larger than the "
				  "filesystem: run e2fsck");
	/* The superblock fits in the first block of the journal. */
	j->last = iblocks < 0xffffffffu ? (uint32_t)iblocks : 0xffffffffu;
	if (j->last < 2)
		return corrupt(j, "the journal inode is too small: run e2fsck");
	j->map = calloc(j->last, sizeof(*j->map));
	if (!j->map)
		return -ENOMEM;
	err = ext2fs_block_iterate3(e2, sb->s_journal_inum,
				    BLOCK_FLAG_READ_ONLY | BLOCK_FLAG_DATA_ONLY,
				    NULL, map_journal, j);
	if (err || !j->map[0])
		return corrupt(j,
			       "cannot map the journal's blocks: run e2fsck");
	if (read_jblock(j, 0, j->jsb))
		return -EUCLEAN;

	type = jbd2_get32(j->jsb + JH_BLOCKTYPE);
	if (jbd2_get32(j->jsb + JH_MAGIC) != JBD2_MAGIC ||
	    (type != JBD2_SUPERBLOCK_V1 && type != JBD2_SUPERBLOCK_V2))
		return corrupt(j, "journal superblock is corrupt (bad magic): "
				  "run e2fsck");
	if (jbd2_get32(j->jsb + JSB_BLOCKSIZE) != j->bs)
		return corrupt(j, "journal block size differs from the "
				  "filesystem's: run e2fsck");
	if (type == JBD2_SUPERBLOCK_V2) {
		j->incompat = jbd2_get32(j->jsb + JSB_FEATURE_INCOMPAT);
		if (j->incompat & JBD2_FEATURE_INCOMPAT_FAST_COMMIT)
			return corrupt(j,
				       "the journal uses fast commits, which "
				       "this server cannot replay: run e2fsck");
		if (j->incompat & ~JBD2_KNOWN_INCOMPAT)
			return corrupt(j, "the journal has features this "
					  "server does not know: run e2fsck");
		if (jbd2_get32(j->jsb + JSB_NR_USERS) > 1)
			return corrupt(j, "the journal is shared with other "
					  "filesystems: run e2fsck");
	}
	j->csum = !!(j->incompat & (JBD2_FEATURE_INCOMPAT_CSUM_V2 |
				    JBD2_FEATURE_INCOMPAT_CSUM_V3));
	if (j->csum) {
		uint32_t want = jbd2_get32(j->jsb + JSB_CHECKSUM), got;

		if (j->jsb[JSB_CHECKSUM_TYPE] != JBD2_CRC32C_CHKSUM)
			return corrupt(j, "journal superblock has an unknown "
					  "checksum type: run e2fsck");
		memset(j->jsb + JSB_CHECKSUM, 0, 4);
		got = jcsum(~0u, j->jsb, JSB_SIZE);
		jbd2_put32(j->jsb + JSB_CHECKSUM, want);
		if (got != want)
			return corrupt(j, "journal superblock checksum does "
					  "not match: run e2fsck");
		j->csum_seed = jcsum(~0u, j->jsb + JSB_UUID, 16);
	}
	if (j->incompat & JBD2_FEATURE_INCOMPAT_CSUM_V3)
		j->tag_bytes = 16;
	else
		j->tag_bytes =
			8 +
			(j->incompat & JBD2_FEATURE_INCOMPAT_CSUM_V2 ? 2 : 0) +
			(j->incompat & JBD2_FEATURE_INCOMPAT_64BIT ? 4 : 0);

	maxlen = jbd2_get32(j->jsb + JSB_MAXLEN);
	j->first = jbd2_get32(j->jsb + JSB_FIRST);
	j->start = jbd2_get32(j->jsb + JSB_START);
	j->seq = jbd2_get32(j->jsb + JSB_SEQUENCE);
	if (maxlen > j->last || j->first < 1 || j->first >= maxlen)
		return corrupt(
			j,
			"journal superblock is corrupt (bad size): run e2fsck");
	j->last = maxlen;
	if (j->start && (j->start < j->first || j->start >= j->last))
		return corrupt(j, "journal superblock is corrupt (bad log "
				  "start): run e2fsck");
	/* Every block of the log must be a block of the filesystem. */
	for (i = 0; i < j->last; i++)
		if (j->map[i] < sb->s_first_data_block ||
		    j->map[i] >= ext2fs_blocks_count(sb))
			return corrupt(j, "the journal's blocks are not all "
					  "mapped: run e2fsck");
	return 0;
}

static int add_revoke(struct jrec *j, blk64_t blk, uint32_t seq)
{
	if (j->nrv == j->rv_cap) {
		size_t cap = j->rv_cap ? 2 * j->rv_cap : 256;
		struct revoke *rv = realloc(j->rv, cap * sizeof(*rv));

		if (!rv)
			return -ENOMEM;
		j->rv = rv;
		j->rv_cap = cap;
	}
	j->rv[j->nrv].blk = blk;
	j->rv[j->nrv].seq = seq;
	j->nrv++;
	return 0;
}

static int cmp_revoke(const void *a, const void *b)
{
	const struct revoke *x = a, *y = b;

	if (x->blk != y->blk)
		return x->blk < y->blk ? -1 : 1;
	/* Latest transaction first: the lookup takes the first match. */
	return x->seq > y->seq ? -1 : x->seq < y->seq;
}

/* Was blk revoked by transaction seq or a later one? */
static int is_revoked(struct jrec *j, blk64_t blk, uint32_t seq)
{
	size_t lo = 0, hi = j->nrv;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (j->rv[mid].blk < blk)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < j->nrv && j->rv[lo].blk == blk &&
	       (int32_t)(j->rv[lo].seq - seq) >= 0;
}

static int scan_revoke_block(struct jrec *j, unsigned char *b, uint32_t seq,
			     enum jpass pass, int *bad)
{
	unsigned rec = j->incompat & JBD2_FEATURE_INCOMPAT_64BIT ? 8 : 4;
	unsigned count = jbd2_get32(b + JR_COUNT), off;
	unsigned room = j->bs - (j->csum ? JBD2_TAIL_SIZE : 0);
	int ret;

	if (pass == PASS_SCAN) {
		if ((j->csum && !tail_csum_ok(j, b)) || count < JR_RECORDS ||
		    count > room)
			*bad = 1;
		return 0;
	}
	if (pass != PASS_REVOKE)
		return 0;
	for (off = JR_RECORDS; off + rec <= count; off += rec) {
		blk64_t blk = jbd2_get32(b + off);

		if (rec == 8)
			blk = blk << 32 | jbd2_get32(b + off + 4);
		ret = add_revoke(j, blk, seq);
		if (ret)
			return ret;
	}
	return 0;
}

/*
 * The tags of descriptor block b: for each, the journal block that holds
 * its data (from *jblk on) is checked (SCAN) or written home (REPLAY).
 * *jblk ends on the block after the last data block.
 */
static int walk_tags(struct jrec *j, unsigned char *b, uint32_t seq,
		     enum jpass pass, uint32_t *jblk, int *bad)
{
	unsigned room = j->bs - (j->csum ? JBD2_TAIL_SIZE : 0);
	unsigned off = JH_SIZE;
	blk64_t nblocks = ext2fs_blocks_count(j->e2->super);
	unsigned char seqbe[4];
	int ret;

	jbd2_put32(seqbe, seq);
	if (pass == PASS_SCAN && j->csum && !tail_csum_ok(j, b))
		*bad = 1;
	while (off + j->tag_bytes <= room) {
		unsigned char *t = b + off;
		unsigned flags = j->incompat & JBD2_FEATURE_INCOMPAT_CSUM_V3
					 ? jbd2_get32(t + TAG3_FLAGS)
					 : jbd2_get16(t + TAG_FLAGS);
		blk64_t blk = jbd2_get32(t + TAG_BLOCKNR);
		uint32_t data_jblk = *jblk;

		if (++j->steps > j->max_steps)
			return corrupt(
				j,
				"the journal's log does not end: run e2fsck");

		if (j->incompat & JBD2_FEATURE_INCOMPAT_64BIT)
			blk |= (blk64_t)jbd2_get32(t + TAG_BLOCKNR_HIGH) << 32;
		*jblk = next_jblock(j, *jblk);
		off += j->tag_bytes + (flags & JBD2_FLAG_SAME_UUID ? 0 : 16);

		if (pass == PASS_SCAN) {
			if (blk >= nblocks) {
				*bad = 1;
			} else if (j->csum) {
				uint32_t c;

				ret = read_jblock(j, data_jblk, j->data);
				if (ret)
					return ret;
				c = jcsum(j->csum_seed, seqbe, 4);
				c = jcsum(c, j->data, j->bs);
				if (j->incompat & JBD2_FEATURE_INCOMPAT_CSUM_V3
					    ? c != jbd2_get32(t + TAG3_CHECKSUM)
					    : (c & 0xffff) !=
						      jbd2_get16(t +
								 TAG_CHECKSUM))
					*bad = 1;
			}
		} else if (pass == PASS_REPLAY) {
			if (!is_revoked(j, blk, seq)) {
				errcode_t err;

				ret = read_jblock(j, data_jblk, j->data);
				if (ret)
					return ret;
				if (flags & JBD2_FLAG_ESCAPE)
					jbd2_put32(j->data, JBD2_MAGIC);
				if (j->readonly)
					err = cache_io_overlay(j->e2->io, blk,
							       j->data);
				else
					err = io_channel_write_blk64(
						j->e2->io, blk, 1, j->data);
				if (err)
					return corrupt(j, "cannot write a "
							  "replayed block");
				j->nr_blocks++;
			}
		}
		if (flags & JBD2_FLAG_LAST_TAG)
			break;
	}
	return 0;
}

/*
 * One walk of the log from its start. SCAN finds where the committed
 * transactions end (j->end_seq) and checks every checksum of those;
 * REVOKE collects their revoke records; REPLAY writes their blocks.
 */
static int walk_log(struct jrec *j, enum jpass pass)
{
	uint32_t jblk = j->start, seq = j->seq;
	int bad = 0, ret = 0;

	/* A log never holds more blocks than the journal: a loop is damage. */
	j->steps = 0;
	j->max_steps = (uint64_t)j->last - j->first + 1;
	for (;;) {
		uint32_t type;

		if (pass != PASS_SCAN && seq == j->end_seq)
			break;
		if (++j->steps > j->max_steps)
			return corrupt(
				j,
				"the journal's log does not end: run e2fsck");
		ret = read_jblock(j, jblk, j->buf);
		if (ret)
			return ret;
		if (jbd2_get32(j->buf + JH_MAGIC) != JBD2_MAGIC ||
		    jbd2_get32(j->buf + JH_SEQUENCE) != seq)
			break;
		type = jbd2_get32(j->buf + JH_BLOCKTYPE);
		jblk = next_jblock(j, jblk);
		if (type == JBD2_DESCRIPTOR_BLOCK) {
			ret = walk_tags(j, j->buf, seq, pass, &jblk, &bad);
		} else if (type == JBD2_REVOKE_BLOCK) {
			ret = scan_revoke_block(j, j->buf, seq, pass, &bad);
		} else if (type == JBD2_COMMIT_BLOCK) {
			if (pass == PASS_SCAN &&
			    (bad || (j->csum && !commit_csum_ok(j, j->buf))))
				return corrupt(
					j,
					"the journal holds a corrupt "
					"transaction (checksum): run e2fsck");
			if (pass == PASS_SCAN)
				j->nr_trans++;
			seq++;
			bad = 0;
		} else {
			break;
		}
		if (ret)
			return ret;
	}
	if (pass == PASS_SCAN)
		j->end_seq = seq;
	return 0;
}

/* The log is empty from now on; the next transaction is j->end_seq + 1. */
static int reset_journal(struct jrec *j)
{
	errcode_t err;

	jbd2_put32(j->jsb + JSB_START, 0);
	jbd2_put32(j->jsb + JSB_SEQUENCE, j->end_seq + 1);
	if (j->csum) {
		memset(j->jsb + JSB_CHECKSUM, 0, 4);
		jbd2_put32(j->jsb + JSB_CHECKSUM, jcsum(~0u, j->jsb, JSB_SIZE));
	}
	err = io_channel_write_blk64(j->e2->io, j->map[0], 1, j->jsb);
	if (!err)
		err = io_channel_flush(j->e2->io);
	return err ? corrupt(j, "cannot write the journal superblock") : 0;
}

/*
 * Superblock fields the rest of libext2fs' state was computed from. The
 * kernel turns some ro_compat features on by itself (large_file,
 * huge_file, dir_nlink), so only those that change the layout count.
 */
#define LAYOUT_RO_COMPAT                                                     \
	(EXT4_FEATURE_RO_COMPAT_METADATA_CSUM |                              \
	 EXT4_FEATURE_RO_COMPAT_GDT_CSUM | EXT4_FEATURE_RO_COMPAT_BIGALLOC | \
	 EXT2_FEATURE_RO_COMPAT_SPARSE_SUPER)

static int same_geometry(const struct ext2_super_block *a,
			 const struct ext2_super_block *b)
{
	return a->s_blocks_count == b->s_blocks_count &&
	       a->s_blocks_count_hi == b->s_blocks_count_hi &&
	       a->s_inodes_count == b->s_inodes_count &&
	       a->s_first_data_block == b->s_first_data_block &&
	       a->s_log_block_size == b->s_log_block_size &&
	       a->s_log_cluster_size == b->s_log_cluster_size &&
	       a->s_blocks_per_group == b->s_blocks_per_group &&
	       a->s_inodes_per_group == b->s_inodes_per_group &&
	       a->s_inode_size == b->s_inode_size &&
	       a->s_desc_size == b->s_desc_size &&
	       a->s_first_meta_bg == b->s_first_meta_bg &&
	       a->s_feature_incompat == b->s_feature_incompat &&
	       (a->s_feature_ro_compat & LAYOUT_RO_COMPAT) ==
		       (b->s_feature_ro_compat & LAYOUT_RO_COMPAT) &&
	       a->s_checksum_seed == b->s_checksum_seed &&
	       !memcmp(a->s_uuid, b->s_uuid, sizeof(a->s_uuid));
}

/*
 * libext2fs read the superblock and group descriptors before the replay:
 * read them again, now with what the journal put there.
 */
static int reload_metadata(struct jrec *j)
{
	ext2_filsys e2 = j->e2;
	struct ext2_super_block *sb;
	unsigned char *blk = j->buf;
	blk64_t sb_blk = j->bs == 1024 ? 1 : 0;
	unsigned sb_off = j->bs == 1024 ? 0 : SUPERBLOCK_OFFSET;
	blk64_t free_blocks = 0;
	__u32 free_inodes = 0;
	dgrp_t g;
	unsigned i;

	if (io_channel_read_blk64(e2->io, sb_blk, 1, blk))
		return corrupt(j, "cannot read the replayed superblock");
	sb = (struct ext2_super_block *)(blk + sb_off);
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
	ext2fs_swap_super(sb);
#endif
	if (sb->s_magic != EXT2_SUPER_MAGIC || !same_geometry(sb, e2->super))
		return corrupt(j, "the journal changes the filesystem's "
				  "geometry: run e2fsck");
	memcpy(e2->super, sb, SUPERBLOCK_SIZE);
	if (e2->orig_super)
		memcpy(e2->orig_super, sb, SUPERBLOCK_SIZE);
	if (!ext2fs_superblock_csum_verify(e2, e2->super))
		return corrupt(j, "the replayed superblock's checksum does not "
				  "match: run e2fsck");
	for (i = 0; i < e2->desc_blocks; i++) {
		blk64_t b = ext2fs_descriptor_block_loc2(
			e2, e2->super->s_first_data_block, i);

		if (io_channel_read_blk64(e2->io, b, 1,
					  (char *)e2->group_desc +
						  (size_t)i * j->bs))
			return corrupt(
				j,
				"cannot read the replayed group descriptors");
	}
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
	for (g = 0; g < e2->group_desc_count; g++)
		ext2fs_swap_group_desc2(
			e2, ext2fs_group_desc(e2, e2->group_desc, g));
#endif
	for (g = 0; g < e2->group_desc_count; g++) {
		if (!ext2fs_group_desc_csum_verify(e2, g))
			return corrupt(j, "the replayed group descriptors are "
					  "corrupt: run e2fsck");
		free_blocks += ext2fs_bg_free_blocks_count(e2, g);
		free_inodes += ext2fs_bg_free_inodes_count(e2, g);
	}
	/*
	 * The kernel keeps the free counts in the group descriptors and
	 * writes the superblock's totals only now and then: sum them, as it
	 * does at mount.
	 */
	ext2fs_free_blocks_count_set(e2->super, EXT2FS_C2B(e2, free_blocks));
	e2->super->s_free_inodes_count = free_inodes;
	return 0;
}

int journal_recover(struct fs *fs, const char **msg)
{
	struct jrec j = {.e2 = fs->e2, .bs = fs->e2->blocksize};
	int ret = -ENOMEM;

	j.readonly = fs->readonly;
	j.jsb = malloc(j.bs);
	j.buf = malloc(j.bs);
	j.data = malloc(j.bs);
	if (!j.jsb || !j.buf || !j.data)
		goto out;
	ret = load_journal(&j, fs);
	if (ret)
		goto out;
	if (j.start) {
		ret = walk_log(&j, PASS_SCAN);
		if (!ret)
			ret = walk_log(&j, PASS_REVOKE);
		if (!ret) {
			if (j.nrv)
				qsort(j.rv, j.nrv, sizeof(*j.rv), cmp_revoke);
			ret = walk_log(&j, PASS_REPLAY);
		}
		if (ret)
			goto out;
	} else {
		j.end_seq = j.seq;
	}
	if (!j.readonly) {
		/* Home locations first: a crash now replays again. */
		if (io_channel_flush(fs->e2->io)) {
			ret = corrupt(&j, "cannot write the replayed blocks");
			goto out;
		}
		ret = reset_journal(&j);
		if (ret)
			goto out;
	}
	ret = reload_metadata(&j);
	if (ret)
		goto out;
	ext2fs_clear_feature_journal_needs_recovery(fs->e2->super);
	if (jbd2_get32(j.jsb + JSB_ERRNO))
		fs->e2->super->s_state |= EXT2_ERROR_FS;
	if (!j.readonly)
		ext2fs_mark_super_dirty(fs->e2);
	fprintf(stderr, "%s: journal recovered%s\n", fs->device,
		j.readonly ? " in memory only (read-only mount)" : "");
	if (fs->debug)
		fprintf(stderr,
			"%s: journal: %lu transactions, %lu blocks replayed\n",
			fs->device, j.nr_trans, j.nr_blocks);
	fs->replayed_in_memory = j.readonly && j.nr_blocks;
out:
	if (ret && msg)
		*msg = j.msg ? j.msg : "out of memory replaying the journal";
	free(j.map);
	free(j.rv);
	free(j.jsb);
	free(j.buf);
	free(j.data);
	return ret;
}
