/*
 * Unit tests of fs_mount_check.c: the warning of ext4's mount for a
 * superblock that wants checking, in the kernel's order, and the
 * read-only storage check (a read-only loop device; a file, a character
 * device and a read-write device are writable).
 */
#include "unit.h"

static const char *warn(__u16 state, __u16 mnt, __s16 max, __u32 interval,
			__u32 lastcheck, time_t now)
{
	struct ext2_super_block sb;

	memset(&sb, 0, sizeof(sb));
	sb.s_state = state;
	sb.s_mnt_count = mnt;
	sb.s_max_mnt_count = (__u16)max;
	sb.s_checkinterval = interval;
	sb.s_lastcheck = lastcheck;
	return fs_mount_warning(&sb, now);
}

static int says(const char *msg, const char *what)
{
	return msg && strstr(msg, what) &&
	       strstr(msg, "running e2fsck is recommended");
}

static void test_warning(void)
{
	const __u16 clean = EXT2_VALID_FS;

	printf("== warnings\n");
	CHECK(warn(clean, 3, -1, 0, 0, 1000) == NULL);
	CHECK(says(warn(0, 0, -1, 0, 0, 1000), "mounting unchecked fs"));
	CHECK(says(warn(clean | EXT2_ERROR_FS, 0, -1, 0, 0, 1000),
		   "mounting fs with errors"));
	/* Not clean wins over errors, as in the kernel. */
	CHECK(says(warn(EXT2_ERROR_FS, 0, -1, 0, 0, 1000),
		   "mounting unchecked fs"));
	CHECK(says(warn(clean, 20, 20, 0, 0, 1000),
		   "maximal mount count reached"));
	CHECK(says(warn(clean, 21, 20, 0, 0, 1000),
		   "maximal mount count reached"));
	CHECK(warn(clean, 19, 20, 0, 0, 1000) == NULL);
	/* No limit: 0 or negative (tune2fs -c 0 or -1). */
	CHECK(warn(clean, 500, 0, 0, 0, 1000) == NULL);
	CHECK(warn(clean, 500, -1, 0, 0, 1000) == NULL);
	CHECK(says(warn(clean, 0, -1, 100, 900, 1000), "checktime reached"));
	CHECK(warn(clean, 0, -1, 100, 901, 1000) == NULL);
	CHECK(warn(clean, 0, -1, 0, 0, 1000) == NULL);
	/* The mount count comes before the check time. */
	CHECK(says(warn(clean, 5, 5, 100, 0, 1000),
		   "maximal mount count reached"));
}

static void test_readonly(void)
{
	const char *img = unit_mkfs("ro.img", "-t ext4", 4096);
	char dev[64];

	printf("== read-only storage\n");
	CHECK_EQ(fs_storage_readonly(img), 0);
	CHECK_EQ(fs_storage_readonly("/dev/null"), 0);
	if (unit_losetup(img, 1, dev, sizeof(dev))) {
		printf("no loop device: device cases not run\n");
		return;
	}
	CHECK_EQ(fs_storage_readonly(dev), 1);
	{
		struct fs_options o = {.device = dev};
		struct fs *fs = NULL;
		const char *msg = NULL;

		CHECK_EQ(fs_open(&o, &fs, &msg), -EROFS);
		printf("refused: %s\n", msg ? msg : "(no message)");
		CHECK(msg && strstr(msg, "-o ro"));
		o.readonly = 1;
		CHECK_EQ(fs_open(&o, &fs, &msg), 0);
		if (fs)
			CHECK_EQ(fs_close(fs), 0);
	}
	unit_run("losetup -d %s", dev);
	CHECK_EQ(unit_losetup(img, 0, dev, sizeof(dev)), 0);
	CHECK_EQ(fs_storage_readonly(dev), 0);
	unit_run("losetup -d %s", dev);
}

int main(void)
{
	test_warning();
	test_readonly();
	return unit_done();
}
