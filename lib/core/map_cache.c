/*
 * The per-inode mapping cache: the last few block mappings iomap_begin
 * found for an inode, so that streaming IO does not walk the extent tree
 * (or, worse, a block map a block at a time) for every request.
 *
 * A direct-mapped table of inodes, each with a small ring of mappings:
 * its size is fixed, whatever the number of files in use. Every change to
 * an inode's block map calls map_cache_forget. As a second guard, each
 * entry remembers the inode fields a block-map change touches (the
 * i_block root, i_blocks, flags, generation); a lookup that finds them
 * changed drops the entry instead of trusting it. Protected by fs->lock.
 */
#include <stdlib.h>
#include <string.h>

#include "core/iomap.h"

#define MAP_CACHE_INODES 256 /* power of two */
#define MAP_CACHE_RING 8

struct map_cache_inode {
	ext2_ino_t ino; /* 0: free */
	__u32 i_block[EXT2_N_BLOCKS];
	__u32 i_blocks;
	__u16 i_blocks_hi;
	__u32 i_flags;
	__u32 i_generation;
	unsigned next; /* ring slot to fill next */
	unsigned used;
	struct bmap ring[MAP_CACHE_RING];
};

struct map_cache {
	struct map_cache_inode slot[MAP_CACHE_INODES];
	uint64_t hits, misses;
};

int map_cache_init(struct fs *fs)
{
	fs->maps = calloc(1, sizeof(*fs->maps));
	return fs->maps ? 0 : -ENOMEM;
}

void map_cache_fini(struct fs *fs)
{
	free(fs->maps);
	fs->maps = NULL;
}

static struct map_cache_inode *slot_of(struct fs *fs, ext2_ino_t ino)
{
	/* Multiplicative hash: neighbouring inode numbers spread out. */
	uint32_t h = (uint32_t)ino * 2654435761u;

	return &fs->maps->slot[h >> 24 & (MAP_CACHE_INODES - 1)];
}

static int same_map(const struct map_cache_inode *c,
		    const struct ext2_inode_large *inode)
{
	return !memcmp(c->i_block, inode->i_block, sizeof(c->i_block)) &&
	       c->i_blocks == inode->i_blocks &&
	       c->i_blocks_hi == inode->osd2.linux2.l_i_blocks_hi &&
	       c->i_flags == inode->i_flags &&
	       c->i_generation == inode->i_generation;
}

void map_cache_forget(struct fs *fs, ext2_ino_t ino)
{
	struct map_cache_inode *c;

	if (!fs->maps)
		return;
	c = slot_of(fs, ino);
	if (c->ino == ino)
		c->ino = 0;
}

int map_cache_find(struct fs *fs, ext2_ino_t ino,
		   const struct ext2_inode_large *inode, blk64_t lblk,
		   struct bmap *m)
{
	struct map_cache_inode *c = slot_of(fs, ino);
	unsigned i;

	if (c->ino == ino && !same_map(c, inode))
		c->ino = 0;
	if (c->ino != ino)
		goto miss;
	for (i = 0; i < c->used; i++) {
		const struct bmap *e = &c->ring[i];
		blk64_t skip;

		if (lblk < e->lblk || lblk - e->lblk >= e->count)
			continue;
		skip = lblk - e->lblk;
		m->lblk = lblk;
		m->type = e->type;
		m->count = e->count == ~0ULL ? ~0ULL : e->count - skip;
		m->pblk = e->type == IOMAP_HOLE ? 0 : e->pblk + skip;
		fs->maps->hits++;
		return 1;
	}
miss:
	fs->maps->misses++;
	return 0;
}

int map_cache_follows(struct fs *fs, ext2_ino_t ino,
		      const struct ext2_inode_large *inode, blk64_t lblk)
{
	struct map_cache_inode *c = slot_of(fs, ino);
	unsigned i;

	if (c->ino != ino || !same_map(c, inode))
		return 0;
	for (i = 0; i < c->used; i++)
		if (c->ring[i].count != ~0ULL &&
		    c->ring[i].lblk + c->ring[i].count == lblk)
			return 1;
	return 0;
}

void map_cache_add(struct fs *fs, ext2_ino_t ino,
		   const struct ext2_inode_large *inode, const struct bmap *m)
{
	struct map_cache_inode *c = slot_of(fs, ino);

	if (!m->count)
		return;
	if (c->ino != ino) {
		c->ino = ino;
		memcpy(c->i_block, inode->i_block, sizeof(c->i_block));
		c->i_blocks = inode->i_blocks;
		c->i_blocks_hi = inode->osd2.linux2.l_i_blocks_hi;
		c->i_flags = inode->i_flags;
		c->i_generation = inode->i_generation;
		c->next = 0;
		c->used = 0;
	}
	c->ring[c->next] = *m;
	c->next = (c->next + 1) % MAP_CACHE_RING;
	if (c->used < MAP_CACHE_RING)
		c->used++;
}

void map_cache_print_stats(struct fs *fs, FILE *f)
{
	if (fs->maps)
		fprintf(f, "map cache: %llu hits, %llu misses\n",
			(unsigned long long)fs->maps->hits,
			(unsigned long long)fs->maps->misses);
}
