/*
 * In-core inodes: the references the front-ends hold (fuse4fs: the
 * kernel's lookup count; fuse2fs: open handles), the per-inode IO lock of
 * the data path, and what happens when the last link or the last
 * reference goes: an unreferenced inode without links is freed at once, a
 * referenced one waits on the orphan list until its last put.
 *
 * Lock order: an inode's io_lock before fs->lock. The table itself is
 * protected by fs->lock.
 */
#include <stdlib.h>

#include "core/fs_internal.h"

#define IREF_BUCKETS 4096

struct iref {
	struct iref *next;
	ext2_ino_t ino;
	uint64_t count; /* front-end references */
	unsigned users; /* data-path operations in flight (iref_pin) */
	pthread_rwlock_t io_lock;
};

struct iref_table {
	struct iref *bucket[IREF_BUCKETS];
};

static struct iref **iref_slot(struct fs *fs, ext2_ino_t ino)
{
	struct iref **p = &fs->irefs->bucket[ino % IREF_BUCKETS];

	while (*p && (*p)->ino != ino)
		p = &(*p)->next;
	return p;
}

static struct iref *iref_find_or_add(struct fs *fs, ext2_ino_t ino)
{
	struct iref **p = iref_slot(fs, ino), *r;

	if (*p)
		return *p;
	r = calloc(1, sizeof(*r));
	if (!r)
		return NULL;
	r->ino = ino;
	pthread_rwlock_init(&r->io_lock, NULL);
	*p = r;
	return r;
}

/* An inode in use whose last link is gone: it waits for its last put. */
static int is_orphan(struct fs *fs, ext2_ino_t ino)
{
	struct ext2_inode_large inode;

	if (fs->readonly || !fs->e2->inode_map ||
	    !ext2fs_test_inode_bitmap2(fs->e2->inode_map, ino))
		return 0;
	return !fsi_read(fs, ino, &inode) && inode.i_links_count == 0;
}

/* Drops the entry once nobody uses it; frees the inode if it is dead. */
static void iref_release(struct fs *fs, struct iref *r)
{
	struct iref **p;
	ext2_ino_t ino = r->ino;

	if (r->count || r->users)
		return;
	p = iref_slot(fs, ino);
	*p = r->next;
	pthread_rwlock_destroy(&r->io_lock);
	free(r);
	if (is_orphan(fs, ino))
		orphan_free(fs, ino);
}

int iref_init(struct fs *fs)
{
	fs->irefs = calloc(1, sizeof(*fs->irefs));
	return fs->irefs ? 0 : -ENOMEM;
}

/* Frees what is still orphaned and referenced at unmount. */
void iref_fini(struct fs *fs)
{
	struct iref *r, *next;
	unsigned i;

	if (!fs->irefs)
		return;
	for (i = 0; i < IREF_BUCKETS; i++) {
		for (r = fs->irefs->bucket[i]; r; r = next) {
			next = r->next;
			if (fs->e2 && is_orphan(fs, r->ino))
				orphan_free(fs, r->ino);
			pthread_rwlock_destroy(&r->io_lock);
			free(r);
		}
	}
	free(fs->irefs);
	fs->irefs = NULL;
}

int fs_iref_held(struct fs *fs, ext2_ino_t ino)
{
	return *iref_slot(fs, ino) != NULL;
}

void fs_iref_get(struct fs *fs, ext2_ino_t ino)
{
	struct iref *r;

	fs_lock(fs);
	r = iref_find_or_add(fs, ino);
	/* Without memory the inode is freed at unlink: no leak, no ref. */
	if (r)
		r->count++;
	fs_unlock(fs);
}

void fs_iref_put(struct fs *fs, ext2_ino_t ino, uint64_t n)
{
	struct iref *r;

	fs_lock(fs);
	r = *iref_slot(fs, ino);
	if (!r || !r->count)
		goto out;
	r->count = r->count > n ? r->count - n : 0;
	iref_release(fs, r);
out:
	fs_unlock(fs);
}

struct iref *iref_pin(struct fs *fs, ext2_ino_t ino, int exclusive)
{
	struct iref *r;

	fs_lock(fs);
	r = iref_find_or_add(fs, ino);
	if (r)
		r->users++;
	fs_unlock(fs);
	if (!r)
		return NULL;
	if (exclusive)
		pthread_rwlock_wrlock(&r->io_lock);
	else
		pthread_rwlock_rdlock(&r->io_lock);
	return r;
}

void iref_unpin(struct fs *fs, struct iref *r)
{
	pthread_rwlock_unlock(&r->io_lock);
	fs_lock(fs);
	r->users--;
	iref_release(fs, r);
	fs_unlock(fs);
}

int fs_drop_link(struct fs *fs, ext2_ino_t ino)
{
	struct ext2_inode_large inode;
	int ret;

	ret = fsi_read(fs, ino, &inode);
	if (ret)
		return ret;
	if (LINUX_S_ISDIR(inode.i_mode))
		inode.i_links_count = 0;
	else if (inode.i_links_count > 0)
		inode.i_links_count--;
	fsi_touch(&inode, FSI_TOUCH_CTIME);
	/* An inode in use waits on the orphan list: one write for both. */
	if (!inode.i_links_count && fs_iref_held(fs, ino))
		return orphan_add(fs, ino, &inode);
	ret = fsi_write(fs, ino, &inode);
	if (ret || inode.i_links_count)
		return ret;
	return fsi_free(fs, ino);
}
