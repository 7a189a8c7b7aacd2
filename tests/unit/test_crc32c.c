/*
 * Unit tests of lib/support/crc32c.c: the ext2fs_crc32c_le this program
 * links (ours, replacing libext2fs' by interposition) gives the library's
 * own results for every length and alignment, and a metadata_csum
 * filesystem changed through the core with it passes e2fsck -fn.
 */
#include <dlfcn.h>
#include <sys/stat.h>

#include "unit.h"
#include "support/crc32c.h"

typedef __u32 (*crc_fn)(__u32, unsigned char const *, size_t);

static void check_vectors(void)
{
	static const unsigned char digits[] = "123456789";

	/* The standard CRC32C check value (init ~0, final inversion). */
	CHECK_EQ(~ext2fs_crc32c_le(~0u, digits, 9), 0xe3069283u);
	CHECK_EQ(~crc32c_table(~0u, digits, 9), 0xe3069283u);
	CHECK_EQ(ext2fs_crc32c_le(0x12345678u, digits, 0), 0x12345678u);
}

/* Ours against the library's, on random data at every small alignment. */
static void check_against_library(void)
{
	crc_fn lib = (crc_fn)dlsym(RTLD_NEXT, "ext2fs_crc32c_le");
	static unsigned char buf[8192 + 8];
	int mismatches = 0, table_mismatches = 0;

	CHECK(lib != NULL);
	if (!lib)
		return;
	CHECK(lib != ext2fs_crc32c_le);
	srandom(7);
	for (size_t i = 0; i < sizeof(buf); i++)
		buf[i] = random();
	for (size_t len = 0; len <= 8192; len += len < 300 ? 1 : 509) {
		for (int off = 0; off < 8; off++) {
			__u32 seed = random();
			__u32 want = lib(seed, buf + off, len);

			if (ext2fs_crc32c_le(seed, buf + off, len) != want)
				mismatches++;
			if (crc32c_table(seed, buf + off, len) != want)
				table_mismatches++;
		}
	}
	CHECK_EQ(mismatches, 0);
	CHECK_EQ(table_mismatches, 0);
}

/* Directory blocks, inodes, bitmaps and group descriptors all summed. */
static void check_filesystem(void)
{
	const char *img = unit_mkfs("csum.img", "-t ext4 -O metadata_csum",
				    16384);
	struct fs_cred cred = unit_root();
	struct fs *fs = unit_open(img, 0);
	struct stat st;
	char name[32];
	int failed = 0;

	if (namei_mkdir(fs, EXT2_ROOT_INO, "d", 0755, &cred, &st)) {
		CHECK(!"mkdir d");
		fs_close(fs);
		return;
	}
	for (int i = 0; i < 300; i++) {
		snprintf(name, sizeof(name), "file-with-a-long-name-%04d", i);
		if (namei_mknod(fs, st.st_ino, name, S_IFREG | 0644, 0, &cred,
				NULL))
			failed++;
	}
	CHECK_EQ(failed, 0);
	CHECK_EQ(fs_close(fs), 0);
	unit_fsck(img);
}

int main(void)
{
	printf("crc32c implementation: %s\n", crc32c_impl());
	check_vectors();
	check_against_library();
	check_filesystem();
	return unit_done();
}
