/*
 * Directory blocks are mapped through the mapping cache (dir.c's
 * read_lblk): a directory that grows, is indexed, and shrinks by unlinks
 * while its mappings are cached must still find every name, on extent-
 * and block-mapped filesystems, and e2fsck -fn must stay clean. The
 * cache's hit counter must move while the names are looked up, or none
 * of this went through it.
 */
#include <sys/stat.h>

#include "unit.h"

#define NAMES 600

/* The mapping cache's hits so far, from its statistics line. */
static unsigned long long map_hits(struct fs *fs)
{
	unsigned long long hits = 0, misses = 0;
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);

	if (!f)
		return 0;
	map_cache_print_stats(fs, f);
	fclose(f);
	if (!text || sscanf(text, "map cache: %llu hits, %llu misses", &hits,
			    &misses) != 2)
		hits = 0;
	free(text);
	return hits;
}

static void grow_and_look(const char *mkfs_args)
{
	const char *img = unit_mkfs("map.img", mkfs_args, 32768);
	struct fs_cred cred = unit_root();
	struct fs *fs = unit_open(img, 0);
	int created = 0, found = 0, early = 0, gone = 0;
	unsigned long long hits;
	struct stat st, fst;
	ext2_ino_t dir, ino;
	char name[64];

	printf("-- mkfs %s\n", mkfs_args);
	if (namei_mkdir(fs, EXT2_ROOT_INO, "d", 0755, &cred, &st)) {
		CHECK(!"mkdir d");
		fs_close(fs);
		return;
	}
	dir = st.st_ino;
	for (int i = 0; i < NAMES; i++) {
		snprintf(name, sizeof(name), "entry-with-a-longish-name-%05d", i);
		if (!namei_mknod(fs, dir, name, S_IFREG | 0644, 0, &cred, &fst))
			created++;
		/* Look up an early name too: its block's mapping is cached. */
		snprintf(name, sizeof(name), "entry-with-a-longish-name-%05d",
			 i / 2);
		if (!namei_lookup(fs, dir, name, &ino, &fst))
			early++;
	}
	CHECK_EQ(created, NAMES);
	CHECK_EQ(early, NAMES);
	hits = map_hits(fs);
	for (int i = 0; i < NAMES; i++) {
		snprintf(name, sizeof(name), "entry-with-a-longish-name-%05d", i);
		if (!namei_lookup(fs, dir, name, &ino, &fst))
			found++;
		if (i % 3 == 0 && !namei_unlink(fs, dir, name))
			gone++;
	}
	CHECK_EQ(found, NAMES);
	CHECK_EQ(gone, NAMES / 3);
	CHECK(map_hits(fs) > hits);
	found = 0;
	for (int i = 0; i < NAMES; i++) {
		snprintf(name, sizeof(name), "entry-with-a-longish-name-%05d", i);
		if (!namei_lookup(fs, dir, name, &ino, &fst))
			found++;
	}
	CHECK_EQ(found, NAMES - NAMES / 3);
	CHECK_EQ(fs_close(fs), 0);
	unit_fsck(img);
}

int main(void)
{
	grow_and_look("-t ext4 -b 1024");
	grow_and_look("-t ext3 -b 1024");
	grow_and_look("-t ext2 -b 4096 -O ^dir_index");
	return unit_done();
}
