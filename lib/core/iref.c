/*
 * References the front-ends hold on inodes (fuse4fs: the kernel's lookup
 * count; fuse2fs: open handles), and what happens when the last link or
 * the last reference goes: an unreferenced inode without links is freed at
 * once, a referenced one waits on the orphan list until its last put.
 */
#include <stdlib.h>

#include "core/fs_internal.h"

#define IREF_BUCKETS 4096

struct iref {
	struct iref *next;
	ext2_ino_t ino;
	uint64_t count;
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

/* An inode in use whose last link is gone: it waits for its last put. */
static int is_orphan(struct fs *fs, ext2_ino_t ino)
{
	struct ext2_inode_large inode;

	if (fs->readonly || !fs->e2->inode_map ||
	    !ext2fs_test_inode_bitmap2(fs->e2->inode_map, ino))
		return 0;
	return !fsi_read(fs, ino, &inode) && inode.i_links_count == 0;
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
			if (fs->e2 && is_orphan(fs, r->ino)) {
				orphan_remove(fs, r->ino);
				fsi_free(fs, r->ino);
			}
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
	struct iref **p, *r;

	fs_lock(fs);
	p = iref_slot(fs, ino);
	if (*p) {
		(*p)->count++;
		goto out;
	}
	r = malloc(sizeof(*r));
	if (!r)
		goto out; /* the inode is then freed at unlink: no leak */
	r->ino = ino;
	r->count = 1;
	r->next = NULL;
	*p = r;
out:
	fs_unlock(fs);
}

void fs_iref_put(struct fs *fs, ext2_ino_t ino, uint64_t n)
{
	struct iref **p, *r;

	fs_lock(fs);
	p = iref_slot(fs, ino);
	r = *p;
	if (!r)
		goto out;
	if (r->count > n) {
		r->count -= n;
		goto out;
	}
	*p = r->next;
	free(r);
	if (is_orphan(fs, ino)) {
		orphan_remove(fs, ino);
		fsi_free(fs, ino);
	}
out:
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
	ret = fsi_write(fs, ino, &inode);
	if (ret || inode.i_links_count)
		return ret;
	if (fs_iref_held(fs, ino))
		return orphan_add(fs, ino);
	return fsi_free(fs, ino);
}
