/*
 * What the front-ends may ask about a mounted filesystem as a whole,
 * beyond the per-object answers of the rest of core.h: its counters and
 * the granularity of its timestamps.
 */
#include "core/fs_internal.h"
#include "support/cache_io.h"

void fs_print_stats(struct fs *fs, FILE *f)
{
	fs_lock(fs);
	cache_io_print_stats(fs->e2->io, f);
	map_cache_print_stats(fs, f);
	fs_unlock(fs);
}

/* As ext4: nanoseconds need the extra fields of inodes over 128 bytes. */
unsigned fs_time_gran(struct fs *fs)
{
	unsigned gran;

	fs_lock(fs);
	gran = EXT2_INODE_SIZE(fs->e2->super) > EXT2_GOOD_OLD_INODE_SIZE ?
	       1 : 1000000000;
	fs_unlock(fs);
	return gran;
}
