/*
 * One copy of file data in memory, not two. The executor moves data
 * between the kernel's FUSE page cache and the image fd, and the image
 * file has a page cache of its own: without this, every byte read or
 * written through the mount would sit in memory twice.
 *
 * Reads the server copies (pread) ask the kernel not to keep what they
 * bring in (RWF_DONTCACHE, Linux 6.14): one syscall, and pages that were
 * cached before stay. Reads spliced into the reply, and every read where
 * RWF_DONTCACHE is refused, drop the image's pages of the range once the
 * reply has the bytes (POSIX_FADV_DONTNEED), a syscall more per read
 * (about a tenth of the server's time under 4 KiB random reads). The page
 * cache holds large folios (up to 2 MiB here) and drops
 * only those wholly inside the range, so a streaming read drops from
 * UNCACHE_BEHIND before its start: that much behind a sequential reader
 * has been read already, and the folio it ended in last time goes now.
 * Writes: the image's pages are dirty and
 * cannot be dropped yet. Streaming writes (UNCACHE_WRITE_MIN and up) start
 * their writeback at once and are queued; once more than UNCACHE_LAG bytes
 * are queued behind, the oldest are waited for (long written by then) and
 * dropped, and an fsync drops them all. Small writes are left to the
 * image's page cache, which merges them into larger device writes.
 */
#include <fcntl.h>
#include <stdlib.h>
#include <sys/uio.h>
#include <unistd.h>

#include "core/iomap.h"

#define UNCACHE_WRITE_MIN (128u << 10)
#define UNCACHE_READ_MIN  (128u << 10)
#define UNCACHE_BEHIND	  (2u << 20)
#define UNCACHE_LAG	  (16u << 20)
#define UNCACHE_RANGES	  64

#ifndef RWF_DONTCACHE
#define RWF_DONTCACHE 0x00000080
#endif

struct uncache_range {
	uint64_t addr, len;
};

struct uncache {
	pthread_mutex_t lock;
	struct uncache_range ring[UNCACHE_RANGES];
	unsigned head, n; /* oldest at ring[head] */
	uint64_t queued;  /* bytes in the ring */
	int dontcache;	  /* RWF_DONTCACHE not refused yet (atomic) */
};

int uncache_init(struct fs *fs)
{
	fs->uncache = calloc(1, sizeof(*fs->uncache));
	if (!fs->uncache)
		return -ENOMEM;
	pthread_mutex_init(&fs->uncache->lock, NULL);
	fs->uncache->dontcache = 1;
	return 0;
}

void uncache_fini(struct fs *fs)
{
	if (!fs->uncache)
		return;
	pthread_mutex_destroy(&fs->uncache->lock);
	free(fs->uncache);
	fs->uncache = NULL;
}

void uncache_read(struct fs *fs, uint64_t addr, uint64_t len)
{
	uint64_t behind = 0;

	if (len >= UNCACHE_READ_MIN)
		behind = addr < UNCACHE_BEHIND ? addr : UNCACHE_BEHIND;
	posix_fadvise(fs->data_fd, addr - behind, len + behind,
		      POSIX_FADV_DONTNEED);
}

ssize_t uncache_pread(struct fs *fs, void *buf, size_t len, uint64_t addr)
{
	struct iovec iov = {buf, len};
	int *dontcache = &fs->uncache->dontcache;
	ssize_t n;

	if (__atomic_load_n(dontcache, __ATOMIC_RELAXED)) {
		n = preadv2(fs->data_fd, &iov, 1, addr, RWF_DONTCACHE);
		if (n >= 0 || (errno != EOPNOTSUPP && errno != EINVAL))
			return n;
		/* An older kernel, or an image on tmpfs, NFS, ... */
		__atomic_store_n(dontcache, 0, __ATOMIC_RELAXED);
	}
	n = pread(fs->data_fd, buf, len, addr);
	if (n > 0)
		uncache_read(fs, addr, n);
	return n;
}

/* Waits for a queued range's writeback, then drops its pages. */
static void drop_written(struct fs *fs, const struct uncache_range *r)
{
	sync_file_range(fs->data_fd, r->addr, r->len,
			SYNC_FILE_RANGE_WAIT_BEFORE | SYNC_FILE_RANGE_WRITE |
				SYNC_FILE_RANGE_WAIT_AFTER);
	posix_fadvise(fs->data_fd, r->addr, r->len, POSIX_FADV_DONTNEED);
}

/* Takes the oldest range off the ring if keep bytes or more are behind. */
static int pop_oldest(struct uncache *u, uint64_t keep,
		      struct uncache_range *out)
{
	int popped = 0;

	pthread_mutex_lock(&u->lock);
	if (u->n && u->queued > keep) {
		*out = u->ring[u->head];
		u->head = (u->head + 1) % UNCACHE_RANGES;
		u->n--;
		u->queued -= out->len;
		popped = 1;
	}
	pthread_mutex_unlock(&u->lock);
	return popped;
}

/* Queues [addr, addr + len), merged with the newest range if it follows. */
static int push_range(struct uncache *u, uint64_t addr, uint64_t len)
{
	struct uncache_range *last;
	int full = 0;

	pthread_mutex_lock(&u->lock);
	last = u->n ? &u->ring[(u->head + u->n - 1) % UNCACHE_RANGES] : NULL;
	if (last && last->addr + last->len == addr) {
		last->len += len;
	} else if (u->n < UNCACHE_RANGES) {
		u->ring[(u->head + u->n) % UNCACHE_RANGES] =
			(struct uncache_range){addr, len};
		u->n++;
	} else {
		full = 1;
	}
	if (!full)
		u->queued += len;
	pthread_mutex_unlock(&u->lock);
	return full ? -ENOSPC : 0;
}

void uncache_written(struct fs *fs, uint64_t addr, uint64_t len)
{
	struct uncache *u = fs->uncache;
	struct uncache_range r;

	if (len < UNCACHE_WRITE_MIN)
		return;
	sync_file_range(fs->data_fd, addr, len, SYNC_FILE_RANGE_WRITE);
	while (push_range(u, addr, len))
		if (pop_oldest(u, 0, &r))
			drop_written(fs, &r);
	/* The syscalls run outside the lock: other writers go on meanwhile. */
	while (pop_oldest(u, UNCACHE_LAG, &r))
		drop_written(fs, &r);
}

void uncache_sync(struct fs *fs)
{
	struct uncache_range r;

	while (pop_oldest(fs->uncache, 0, &r))
		drop_written(fs, &r);
}
