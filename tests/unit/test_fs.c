/*
 * Unit tests of fs.c, err.c, orphan.c and the time encoding of
 * inode_disk.c: opening good and bad images, superblock bookkeeping,
 * statfs against the kernel's numbers, orphan-list recovery at mount.
 */
#include <sys/mount.h>
#include <sys/statvfs.h>

#include "unit.h"
#include "core/fs_internal.h"

/* An image whose s_first_data_block is set to first is refused. */
static void refuses_first_data_block(const char *name, const char *mkfs,
				     unsigned first)
{
	struct fs_options o = { 0 };
	const char *img = unit_mkfs(name, mkfs, 16384);
	const char *msg = NULL;
	struct fs *fs = NULL;

	unit_run("debugfs -w -R 'ssv first_data_block %u' %s >/dev/null 2>&1",
		 first, img);
	o.device = img;
	CHECK_EQ(fs_open(&o, &fs, &msg), -EINVAL);
	CHECK(msg && strstr(msg, "first data block"));
	CHECK(fs == NULL);
}

static void test_bad_images(void)
{
	struct fs_options o = { 0 };
	const char *msg = NULL;
	struct fs *fs = NULL;
	char path[512];

	o.device = "/nonexistent/image";
	CHECK_EQ(fs_open(&o, &fs, &msg), -ENOENT);
	CHECK(msg && strstr(msg, "no such file"));

	snprintf(path, sizeof(path), "%s/zeros", unit_scratch());
	unit_run("dd if=/dev/zero of=%s bs=1M count=8 2>/dev/null", path);
	o.device = path;
	CHECK(fs_open(&o, &fs, &msg) < 0);
	CHECK(msg && strstr(msg, "not an ext2/ext3/ext4"));
	CHECK(fs == NULL);

	snprintf(path, sizeof(path), "%s", unit_mkfs("trunc.img", "-t ext4", 65536));
	unit_run("truncate -s 16M %s", path);
	o.device = path;
	CHECK(fs_open(&o, &fs, &msg) < 0);
	CHECK(msg && strstr(msg, "truncated"));

	/* A superblock with a bad checksum (metadata_csum) is refused. */
	snprintf(path, sizeof(path), "%s", unit_mkfs("sbcsum.img", "-t ext4", 65536));
	unit_run("printf '\\377' | dd of=%s bs=1 seek=%d conv=notrunc 2>/dev/null",
		 path, 1024 + 0x68); /* inside s_uuid */
	o.device = path;
	CHECK(fs_open(&o, &fs, &msg) < 0);
	CHECK(msg && strstr(msg, "checksum"));

	/*
	 * A first data block other than the one the block size implies
	 * (fuzzing: 256 on a 1 KiB-block image) had libext2fs write past
	 * its block bitmap while reading the bitmaps at mount.
	 */
	refuses_first_data_block("firstblk.img", "-t ext4 -b 1024", 256);
	refuses_first_data_block("firstblk4k.img", "-t ext4 -b 4096", 1);

	/*
	 * needs_recovery with an empty log: nothing to replay, the flag is
	 * cleared by a read-write open; a read-only one leaves the image be.
	 */
	snprintf(path, sizeof(path), "%s", unit_mkfs("recover.img", "-t ext4", 65536));
	unit_run("debugfs -w -R 'feature needs_recovery' %s >/dev/null 2>&1", path);
	o.device = path;
	o.readonly = 1;
	CHECK_EQ(fs_open(&o, &fs, &msg), 0);
	if (fs) {
		CHECK(!ext2fs_has_feature_journal_needs_recovery(fs->e2->super));
		fs_close(fs);
	}
	CHECK(unit_run("dumpe2fs -h %s 2>/dev/null | grep -q needs_recovery", path) == 0);
	o.readonly = 0;
	CHECK_EQ(fs_open(&o, &fs, &msg), 0);
	if (fs)
		fs_close(fs);
	CHECK(unit_run("dumpe2fs -h %s 2>/dev/null | grep -q needs_recovery", path) != 0);

	/* A journal superblock without its magic: refused, both ways. */
	unit_run("debugfs -w -R 'feature needs_recovery' %s >/dev/null 2>&1", path);
	unit_run("bs=$(dumpe2fs -h %s 2>/dev/null | awk '/^Block size:/ { print $3 }'); "
		 "off=$(( $(debugfs -R 'bmap <8> 0' %s 2>/dev/null) * bs )); "
		 "printf '\\0' | dd of=%s bs=1 seek=$off conv=notrunc 2>/dev/null",
		 path, path, path);
	for (o.readonly = 0; o.readonly < 2; o.readonly++) {
		CHECK_EQ(fs_open(&o, &fs, &msg), -EUCLEAN);
		CHECK(msg && strstr(msg, "journal superblock is corrupt"));
		if (fs)
			fs_close(fs);
	}
	o.readonly = 0;
}

static void test_mount_bookkeeping(void)
{
	const char *path = unit_mkfs("book.img", "-t ext4", 65536);
	struct fs_options o = { .device = path, .mountpoint = "/mnt/x" };
	struct fs *fs = NULL;
	__u16 count;

	CHECK_EQ(fs_open(&o, &fs, NULL), 0);
	if (!fs)
		return;
	count = fs->e2->super->s_mnt_count;
	CHECK(!(fs->e2->super->s_state & EXT2_VALID_FS));
	CHECK(strcmp((char *)fs->e2->super->s_last_mounted, "/mnt/x") == 0);
	CHECK_EQ(fs_close(fs), 0);
	CHECK_EQ(unit_run("dumpe2fs -h %s 2>/dev/null | grep -q '^Filesystem state: *clean$'",
			  path), 0);
	CHECK_EQ(count, 1);
	unit_fsck(path);
}

static void test_statfs_like_kernel(const char *name, const char *args)
{
	const char *path = unit_mkfs(name, args, 65536);
	char mnt[512];
	struct statvfs k, u;
	struct fs *fs;

	snprintf(mnt, sizeof(mnt), "%s/mnt", unit_scratch());
	unit_run("mkdir -p %s", mnt);
	if (unit_run("mount -o loop,ro %s %s 2>/dev/null", path, mnt)) {
		unit_skip("statfs comparison: no loop mount");
		return;
	}
	statvfs(mnt, &k);
	umount(mnt);
	fs = unit_open(path, 1);
	CHECK_EQ(fs_statfs(fs, &u), 0);
	CHECK_EQ(u.f_bsize, k.f_bsize);
	CHECK_EQ(u.f_blocks, k.f_blocks);
	CHECK_EQ(u.f_bfree, k.f_bfree);
	CHECK_EQ(u.f_files, k.f_files);
	CHECK_EQ(u.f_ffree, k.f_ffree);
	CHECK_EQ(u.f_namemax, 255);
	CHECK(u.f_bavail <= u.f_bfree - fs->e2->super->s_r_blocks_count);
	fs_close(fs);
}

static void test_orphan_recovery(void)
{
	const char *path = unit_mkfs("orphan.img", "-t ext4", 65536);
	struct ext2_inode_large inode;
	char data[512];
	ext2_ino_t ino = 12;
	struct fs *fs;

	/* A 2 MiB file, unlinked with its inode left on the orphan list. */
	snprintf(data, sizeof(data), "%s/data", unit_scratch());
	unit_run("dd if=/dev/urandom of=%s bs=1M count=2 2>/dev/null", data);
	unit_run("debugfs -w -R 'write %s f' %s >/dev/null 2>&1", data, path);
	unit_run("debugfs -w -R 'unlink f' %s >/dev/null 2>&1", path);
	unit_run("debugfs -w -R 'sif <12> links_count 0' %s >/dev/null 2>&1", path);
	unit_run("debugfs -w -R 'ssv last_orphan 12' %s >/dev/null 2>&1", path);

	/*
	 * The precondition, through a read-only open (which leaves the list
	 * alone): inode 12 heads the orphan list, in use with no links and
	 * its 2 MiB still allocated.
	 */
	fs = unit_open(path, 1);
	CHECK_EQ(fs->e2->super->s_last_orphan, ino);
	CHECK(ext2fs_test_inode_bitmap2(fs->e2->inode_map, ino));
	CHECK_EQ(fsi_read(fs, ino, &inode), 0);
	CHECK_EQ(inode.i_links_count, 0);
	CHECK_EQ(EXT2_I_SIZE(&inode), 2 << 20);
	CHECK(ext2fs_get_stat_i_blocks(fs->e2, EXT2_INODE(&inode)) >= 4096);
	fs_close(fs);

	fs = unit_open(path, 0);
	CHECK_EQ(fs->e2->super->s_last_orphan, 0);
	CHECK(!ext2fs_test_inode_bitmap2(fs->e2->inode_map, ino));
	CHECK_EQ(fsi_read(fs, ino, &inode), 0);
	CHECK_EQ(inode.i_links_count, 0);
	fs_close(fs);
	unit_fsck(path);
}

static void test_time_encoding(void)
{
	static const struct {
		int64_t sec;
		long nsec;
	} cases[] = {
		{ 0, 0 },	      { 1, 999999999 },     { -1, 5 },
		{ INT32_MIN, 0 },     { INT32_MAX, 1 },     { 1LL << 31, 7 },
		{ 4102444800LL, 42 }, /* 2100-01-01 */
		{ 16725225600LL, 0 }, /* 2500: beyond 2446, clamped */
	};
	struct ext2_inode_large inode;
	unsigned i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct timespec in = { cases[i].sec, cases[i].nsec }, out;
		int64_t max = (int64_t)INT32_MAX + (3LL << 32);

		memset(&inode, 0, sizeof(inode));
		inode.i_extra_isize = 32;
		fsi_set_time(&inode, FSI_MTIME, &in);
		fsi_get_time(&inode, FSI_MTIME, &out);
		if (in.tv_sec > max) {
			CHECK_EQ(out.tv_sec, max);
		} else {
			CHECK_EQ(out.tv_sec, in.tv_sec);
			CHECK_EQ(out.tv_nsec, in.tv_nsec);
		}
		/*
		 * A 128-byte inode keeps whole seconds, clamped to the int32
		 * range (not wrapped into it).
		 */
		memset(&inode, 0, sizeof(inode));
		fsi_set_time(&inode, FSI_MTIME, &in);
		fsi_get_time(&inode, FSI_MTIME, &out);
		CHECK_EQ(out.tv_nsec, 0);
		CHECK_EQ(out.tv_sec, in.tv_sec < INT32_MIN ? INT32_MIN :
				     in.tv_sec > INT32_MAX ? INT32_MAX :
							     in.tv_sec);
	}
}

int main(void)
{
	test_bad_images();
	test_mount_bookkeeping();
	test_statfs_like_kernel("ext4.img", "-t ext4");
	test_statfs_like_kernel("ext2.img", "-t ext2 -b 1024");
	test_statfs_like_kernel("ext3.img", "-t ext3");
	test_orphan_recovery();
	test_time_encoding();
	return unit_done();
}
