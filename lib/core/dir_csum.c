/*
 * Directory blocks whose checksum is known to be good. With metadata_csum
 * libext2fs checksums a whole directory block every time it reads one, and
 * a create reads its parent's block twice (the kernel's negative LOOKUP,
 * then the CREATE's own search) although the block has not changed since
 * we wrote it. This remembers, in a few slots, the exact content last
 * verified or written for a block of a directory; a read that finds the
 * same bytes skips the verification.
 *
 * The verdict is a pure function of the directory's inode number and
 * generation and the block's bytes, so an exact copy is all the check
 * needs: whoever else writes the block (libext2fs, the data executor on
 * a freed and reused block), a copy that no longer matches is simply not
 * used. Protected by fs->lock.
 */
#include <stdlib.h>
#include <string.h>

#include "core/fs_internal.h"

#define DIR_CSUM_SLOTS 8 /* power of two */

struct dir_csum_slot {
	blk64_t pblk; /* 0: empty (block 0 is never a directory block) */
	ext2_ino_t dir;
	__u32 gen;
	char *data;
};

struct dir_csum {
	struct dir_csum_slot slot[DIR_CSUM_SLOTS];
};

void dir_csum_fini(struct fs *fs)
{
	unsigned i;

	if (!fs->dir_csum)
		return;
	for (i = 0; i < DIR_CSUM_SLOTS; i++)
		free(fs->dir_csum->slot[i].data);
	free(fs->dir_csum);
	fs->dir_csum = NULL;
}

/*
 * Only where there is a checksum to spare, and where the block is read
 * as stored: libext2fs byte-swaps directory blocks on big-endian hosts.
 */
static int dir_csum_used(struct fs *fs)
{
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
	(void)fs;
	return 0;
#else
	return ext2fs_has_feature_metadata_csum(fs->e2->super) &&
	       !(fs->e2->flags & EXT2_FLAG_IGNORE_CSUM_ERRORS);
#endif
}

/* The slot for pblk, its buffer allocated; NULL without memory. */
static struct dir_csum_slot *slot_of(struct fs *fs, blk64_t pblk)
{
	struct dir_csum_slot *s;

	if (!fs->dir_csum) {
		fs->dir_csum = calloc(1, sizeof(*fs->dir_csum));
		if (!fs->dir_csum)
			return NULL;
	}
	s = &fs->dir_csum->slot[pblk & (DIR_CSUM_SLOTS - 1)];
	if (!s->data) {
		s->data = malloc(fs->e2->blocksize);
		if (!s->data)
			return NULL;
	}
	return s;
}

static int known_good(struct fs *fs, ext2_ino_t dir, __u32 gen, blk64_t pblk,
		      const char *buf)
{
	struct dir_csum_slot *s = slot_of(fs, pblk);

	return s && s->pblk == pblk && s->dir == dir && s->gen == gen &&
	       !memcmp(s->data, buf, fs->e2->blocksize);
}

static void note_good(struct fs *fs, ext2_ino_t dir, __u32 gen, blk64_t pblk,
		      const char *buf)
{
	struct dir_csum_slot *s = slot_of(fs, pblk);

	if (!s)
		return;
	s->pblk = pblk;
	s->dir = dir;
	s->gen = gen;
	memcpy(s->data, buf, fs->e2->blocksize);
}

int dir_read_block(struct fs *fs, ext2_ino_t dir, __u32 gen, blk64_t pblk,
		   char *buf)
{
	ext2_filsys e2 = fs->e2;
	errcode_t err;

	if (!dir_csum_used(fs))
		return FS_ERR(fs, ext2fs_read_dir_block4(e2, pblk, buf, 0, dir),
			      dir);
	err = io_channel_read_blk64(e2->io, pblk, 1, buf);
	if (err)
		return FS_ERR(fs, err, dir);
	if (known_good(fs, dir, gen, pblk, buf))
		return 0;
	if (!ext2fs_dir_block_csum_verify(e2, dir, (void *)buf))
		return FS_ERR(fs, EXT2_ET_DIR_CSUM_INVALID, dir);
	note_good(fs, dir, gen, pblk, buf);
	return 0;
}

int dir_write_block(struct fs *fs, ext2_ino_t dir, __u32 gen, blk64_t pblk,
		    char *buf)
{
	errcode_t err = ext2fs_write_dir_block4(fs->e2, pblk, buf, 0, dir);

	if (err)
		return FS_ERR(fs, err, dir);
	/* buf now holds the checksum just computed for these bytes. */
	if (dir_csum_used(fs))
		note_good(fs, dir, gen, pblk, buf);
	return 0;
}
