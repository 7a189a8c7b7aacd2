/*
 * The block cache's data structure: fixed-size blocks keyed by block number
 * in a hash table, a CLOCK (second chance) queue for eviction, a list of
 * pinned blocks that eviction never sees and a stack of spare entries
 * that new blocks reuse. No IO and no locking here: the io_manager
 * (cache_io*.c) does both.
 */
#ifndef SUPPORT_BLKCACHE_H
#define SUPPORT_BLKCACHE_H

#include <stddef.h>

/* bc_entry.flags */
#define BC_REF    0x1u /* used since the clock hand last passed */
#define BC_DIRTY  0x2u /* newer than the device */
#define BC_PINNED 0x4u /* on the pinned list: not evicted, not written back */
#define BC_TXN    0x8u /* already recorded in the open transaction */

struct bc_link {
	struct bc_link *prev, *next;
};

struct bc_entry {
	struct bc_entry *hnext;
	struct bc_link link;      /* clock queue or pinned list */
	unsigned long long blk;
	unsigned flags;
	unsigned char data[] __attribute__((aligned(16)));
};

struct blkcache {
	struct bc_entry **hash;
	unsigned hash_bits;
	struct bc_link clock;     /* clock.next is where the hand points */
	struct bc_link pinned;
	size_t blksize;
	size_t nr;                /* entries, pinned ones included */
	size_t nr_dirty;
	size_t nr_pinned;
	struct bc_entry *spare;   /* freed entries kept for reuse, by hnext */
	size_t nr_spare;
	size_t keep;              /* see bc_set_keep */
};

/* A growable array of entry pointers, reused between calls. */
struct bc_vec {
	struct bc_entry **v;
	size_t n, cap;
};

/* Sets up an empty cache of blksize blocks, keeping no spares. */
int bc_init(struct blkcache *bc, size_t blksize, size_t expect);
/* Frees every entry (dirty ones and spares too) and the hash table. */
void bc_destroy(struct blkcache *bc);
/* Empties the cache for blocks of a new size; -ENOMEM leaves it as is. */
int bc_reset(struct blkcache *bc, size_t blksize, size_t expect);
/* Resizes the hash table for about `expect` entries; -ENOMEM leaves it. */
int bc_rehash(struct blkcache *bc, size_t expect);

struct bc_entry *bc_lookup(struct blkcache *bc, unsigned long long blk);
/* A new clean entry for blk, not yet in the cache; NULL on ENOMEM. */
struct bc_entry *bc_alloc(struct blkcache *bc, unsigned long long blk);
/* Gives back an entry from bc_alloc that never went into the cache. */
void bc_free(struct blkcache *bc, struct bc_entry *e);
/*
 * Entries leaving the cache are kept as spares for bc_alloc while the
 * cache and its spares hold at most `keep` entries (the budget in
 * blocks), and freed beyond that; spares over the new limit go at once.
 * Reused entries stay where they were first allocated, so the cache's
 * memory stays within `keep` entries whichever threads (and so malloc
 * arenas) allocate and free them.
 */
void bc_set_keep(struct blkcache *bc, size_t keep);
/* Adds e (not present) behind the clock hand, unreferenced. */
void bc_insert(struct blkcache *bc, struct bc_entry *e);
/* Takes e out of the cache and frees it (or keeps it as a spare). */
void bc_delete(struct blkcache *bc, struct bc_entry *e);

void bc_set_dirty(struct blkcache *bc, struct bc_entry *e);
void bc_set_clean(struct blkcache *bc, struct bc_entry *e);
void bc_pin(struct blkcache *bc, struct bc_entry *e);
/* Back on the clock queue, behind the hand. */
void bc_unpin(struct blkcache *bc, struct bc_entry *e);

/*
 * Runs the clock: referenced entries lose their bit and go behind the
 * hand; the first unreferenced entry without any of the `skip` flags is
 * returned (still cached). NULL when no entry qualifies.
 */
struct bc_entry *bc_victim(struct blkcache *bc, unsigned skip);

/*
 * Appends the cached entries of blocks [start, start + count) to vec in
 * block order. -ENOMEM on failure (vec then holds a partial list).
 */
int bc_collect_range(struct blkcache *bc, unsigned long long start,
		     unsigned long long count, struct bc_vec *vec);
/*
 * Appends the dirty entries in block order: unpinned ones, and pinned ones
 * too if with_pinned. -ENOMEM on failure.
 */
int bc_collect_dirty(struct blkcache *bc, int with_pinned,
		     struct bc_vec *vec);
void bc_vec_free(struct bc_vec *vec);

#endif
