/*
 * The block cache's data structure: hash table, CLOCK queue, pinned list,
 * dirty and pinned counts, spare entries for reuse. See blkcache.h.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>

#include "support/blkcache.h"

#define BC_MIN_HASH_BITS 6
#define BC_MAX_HASH_BITS 28

#define entry_of(l) \
	((struct bc_entry *)((char *)(l) - offsetof(struct bc_entry, link)))

static void link_init(struct bc_link *head)
{
	head->prev = head;
	head->next = head;
}

static void link_del(struct bc_link *l)
{
	l->prev->next = l->next;
	l->next->prev = l->prev;
}

/* Before `head` means last in the list: behind the clock hand. */
static void link_add_tail(struct bc_link *head, struct bc_link *l)
{
	l->prev = head->prev;
	l->next = head;
	head->prev->next = l;
	head->prev = l;
}

static size_t bc_hash(const struct blkcache *bc, unsigned long long blk)
{
	return (size_t)((blk * 0x9e3779b97f4a7c15ULL) >> (64 - bc->hash_bits));
}

static unsigned bits_for(size_t expect)
{
	unsigned bits = BC_MIN_HASH_BITS;

	while (bits < BC_MAX_HASH_BITS && ((size_t)1 << bits) < expect)
		bits++;
	return bits;
}

int bc_init(struct blkcache *bc, size_t blksize, size_t expect)
{
	bc->hash_bits = bits_for(expect);
	bc->hash = calloc((size_t)1 << bc->hash_bits, sizeof(*bc->hash));
	if (!bc->hash)
		return -ENOMEM;
	link_init(&bc->clock);
	link_init(&bc->pinned);
	bc->blksize = blksize;
	bc->nr = 0;
	bc->nr_dirty = 0;
	bc->nr_pinned = 0;
	bc->spare = NULL;
	bc->nr_spare = 0;
	bc->keep = 0;
	return 0;
}

static void free_list(struct bc_link *head)
{
	struct bc_link *l = head->next;

	while (l != head) {
		struct bc_link *next = l->next;

		free(entry_of(l));
		l = next;
	}
	link_init(head);
}

static void trim_spares(struct blkcache *bc, size_t keep)
{
	while (bc->spare && bc->nr + bc->nr_spare > keep) {
		struct bc_entry *e = bc->spare;

		bc->spare = e->hnext;
		bc->nr_spare--;
		free(e);
	}
}

void bc_destroy(struct blkcache *bc)
{
	free_list(&bc->clock);
	free_list(&bc->pinned);
	free(bc->hash);
	bc->hash = NULL;
	bc->nr = 0;
	bc->nr_dirty = 0;
	bc->nr_pinned = 0;
	trim_spares(bc, 0);
}

int bc_reset(struct blkcache *bc, size_t blksize, size_t expect)
{
	unsigned bits = bits_for(expect);
	struct bc_entry **hash = calloc((size_t)1 << bits, sizeof(*hash));

	if (!hash)
		return -ENOMEM;
	bc_destroy(bc);
	bc->hash = hash;
	bc->hash_bits = bits;
	bc->blksize = blksize;
	return 0;
}

int bc_rehash(struct blkcache *bc, size_t expect)
{
	unsigned bits = bits_for(expect), old_bits = bc->hash_bits;
	struct bc_entry **old = bc->hash, **hash;
	size_t i;

	if (bits == old_bits)
		return 0;
	hash = calloc((size_t)1 << bits, sizeof(*hash));
	if (!hash)
		return -ENOMEM;
	bc->hash = hash;
	bc->hash_bits = bits;
	for (i = 0; i < ((size_t)1 << old_bits); i++) {
		struct bc_entry *e = old[i];

		while (e) {
			struct bc_entry *next = e->hnext;
			size_t h = bc_hash(bc, e->blk);

			e->hnext = hash[h];
			hash[h] = e;
			e = next;
		}
	}
	free(old);
	return 0;
}

struct bc_entry *bc_lookup(struct blkcache *bc, unsigned long long blk)
{
	struct bc_entry *e = bc->hash[bc_hash(bc, blk)];

	while (e && e->blk != blk)
		e = e->hnext;
	return e;
}

struct bc_entry *bc_alloc(struct blkcache *bc, unsigned long long blk)
{
	struct bc_entry *e;

	if (bc->spare) {
		e = bc->spare;
		bc->spare = e->hnext;
		bc->nr_spare--;
	} else if (posix_memalign((void **)&e, 64, sizeof(*e) + bc->blksize)) {
		return NULL;
	}
	e->hnext = NULL;
	e->blk = blk;
	e->flags = 0;
	return e;
}

void bc_free(struct blkcache *bc, struct bc_entry *e)
{
	if (bc->nr + bc->nr_spare >= bc->keep) {
		free(e);
		return;
	}
	e->hnext = bc->spare;
	bc->spare = e;
	bc->nr_spare++;
}

void bc_set_keep(struct blkcache *bc, size_t keep)
{
	bc->keep = keep;
	trim_spares(bc, keep);
}

void bc_insert(struct blkcache *bc, struct bc_entry *e)
{
	size_t h = bc_hash(bc, e->blk);

	e->hnext = bc->hash[h];
	bc->hash[h] = e;
	link_add_tail(&bc->clock, &e->link);
	bc->nr++;
	/* Chains stay short even when pinned blocks overflow the budget. */
	if (bc->nr > ((size_t)2 << bc->hash_bits))
		bc_rehash(bc, bc->nr);
}

void bc_delete(struct blkcache *bc, struct bc_entry *e)
{
	struct bc_entry **pp = &bc->hash[bc_hash(bc, e->blk)];

	while (*pp != e)
		pp = &(*pp)->hnext;
	*pp = e->hnext;
	link_del(&e->link);
	if (e->flags & BC_DIRTY)
		bc->nr_dirty--;
	if (e->flags & BC_PINNED)
		bc->nr_pinned--;
	bc->nr--;
	bc_free(bc, e);
}

void bc_set_dirty(struct blkcache *bc, struct bc_entry *e)
{
	if (!(e->flags & BC_DIRTY)) {
		e->flags |= BC_DIRTY;
		bc->nr_dirty++;
	}
}

void bc_set_clean(struct blkcache *bc, struct bc_entry *e)
{
	if (e->flags & BC_DIRTY) {
		e->flags &= ~BC_DIRTY;
		bc->nr_dirty--;
	}
}

void bc_pin(struct blkcache *bc, struct bc_entry *e)
{
	if (e->flags & BC_PINNED)
		return;
	link_del(&e->link);
	link_add_tail(&bc->pinned, &e->link);
	e->flags |= BC_PINNED;
	bc->nr_pinned++;
}

void bc_unpin(struct blkcache *bc, struct bc_entry *e)
{
	if (!(e->flags & BC_PINNED))
		return;
	link_del(&e->link);
	link_add_tail(&bc->clock, &e->link);
	e->flags &= ~BC_PINNED;
	bc->nr_pinned--;
}

struct bc_entry *bc_victim(struct blkcache *bc, unsigned skip)
{
	size_t budget = 2 * (bc->nr - bc->nr_pinned) + 1;
	struct bc_link *l = bc->clock.next;

	/*
	 * Each entry is seen at most twice: once to clear its bit, once
	 * after it went round behind the hand.
	 */
	while (l != &bc->clock && budget--) {
		struct bc_entry *e = entry_of(l);
		struct bc_link *next = l->next;

		if (e->flags & BC_REF) {
			e->flags &= ~BC_REF;
			/* The last entry is behind the hand already: again. */
			if (next == &bc->clock)
				continue;
			link_del(l);
			link_add_tail(&bc->clock, l);
		} else if (!(e->flags & skip)) {
			return e;
		}
		l = next;
	}
	return NULL;
}

static int vec_push(struct bc_vec *vec, struct bc_entry *e)
{
	if (vec->n == vec->cap) {
		size_t cap = vec->cap ? 2 * vec->cap : 64;
		struct bc_entry **v = realloc(vec->v, cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		vec->v = v;
		vec->cap = cap;
	}
	vec->v[vec->n++] = e;
	return 0;
}

static int cmp_blk(const void *a, const void *b)
{
	const struct bc_entry *x = *(struct bc_entry *const *)a;
	const struct bc_entry *y = *(struct bc_entry *const *)b;

	return x->blk < y->blk ? -1 : x->blk > y->blk;
}

static void sort_from(struct bc_vec *vec, size_t from)
{
	if (vec->n - from > 1)
		qsort(vec->v + from, vec->n - from, sizeof(*vec->v), cmp_blk);
}

/* Appends the entries of list that match; in list order. */
static int collect_list(struct bc_link *head, struct bc_vec *vec,
			unsigned long long start, unsigned long long end,
			unsigned need)
{
	struct bc_link *l;

	for (l = head->next; l != head; l = l->next) {
		struct bc_entry *e = entry_of(l);

		if (e->blk < start || e->blk >= end)
			continue;
		if ((e->flags & need) != need)
			continue;
		if (vec_push(vec, e))
			return -ENOMEM;
	}
	return 0;
}

int bc_collect_range(struct blkcache *bc, unsigned long long start,
		     unsigned long long count, struct bc_vec *vec)
{
	unsigned long long end = start + count, b;
	size_t from = vec->n;
	int ret;

	if (end < start)
		end = ~0ULL;
	if (!bc->nr || !count)
		return 0;
	/* Look each block up, or walk the whole cache, whichever is less. */
	if (end - start <= bc->nr) {
		for (b = start; b < end; b++) {
			struct bc_entry *e = bc_lookup(bc, b);

			if (e && vec_push(vec, e))
				return -ENOMEM;
		}
		return 0;
	}
	ret = collect_list(&bc->clock, vec, start, end, 0);
	if (!ret)
		ret = collect_list(&bc->pinned, vec, start, end, 0);
	sort_from(vec, from);
	return ret;
}

int bc_collect_dirty(struct blkcache *bc, int with_pinned, struct bc_vec *vec)
{
	size_t from = vec->n;
	int ret = 0;

	if (!bc->nr_dirty)
		return 0;
	ret = collect_list(&bc->clock, vec, 0, ~0ULL, BC_DIRTY);
	if (!ret && with_pinned)
		ret = collect_list(&bc->pinned, vec, 0, ~0ULL, BC_DIRTY);
	sort_from(vec, from);
	return ret;
}

void bc_vec_free(struct bc_vec *vec)
{
	free(vec->v);
	vec->v = NULL;
	vec->n = 0;
	vec->cap = 0;
}
