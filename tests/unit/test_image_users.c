/*
 * Unit tests of image_users.c and its use in fs_open: a read-write open
 * is refused while another process has the image open for writing or a
 * loop device is attached to it read-write (programs that take no lock),
 * waits for such a writer on its way out, and ignores readers, read-only
 * loop devices, this process's own descriptors and the writers of a
 * character device.
 */
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <sys/wait.h>

#include "unit.h"
#include "support/image_users.h"

/* A child holding path open with oflags; it exits hold_ms after opening. */
struct holder {
	pid_t pid;
};

static struct holder hold(const char *path, int oflags, unsigned hold_ms)
{
	struct holder h = {-1};
	int ready[2];
	char byte;

	CHECK_EQ(pipe(ready), 0);
	h.pid = fork();
	if (h.pid == 0) {
		if (open(path, oflags) < 0 || write(ready[1], "", 1) != 1)
			_exit(1);
		usleep(hold_ms * 1000);
		_exit(0);
	}
	CHECK(h.pid > 0 && read(ready[0], &byte, 1) == 1);
	close(ready[0]);
	close(ready[1]);
	return h;
}

static void release(struct holder h)
{
	int status = -1;

	kill(h.pid, SIGKILL);
	CHECK(waitpid(h.pid, &status, 0) == h.pid);
}

static int writer(const char *path, char *who, size_t len)
{
	who[0] = 0;
	return image_other_writer(path, 0, ULLONG_MAX, who, len);
}

/* Writers of bytes [off, off + size) only. */
static int range_writer(const char *path, unsigned long long off,
			unsigned long long size)
{
	char who[96];

	return image_other_writer(path, off, size, who, sizeof(who));
}

/* A read-write loop device over [off, off + size) of path; 0 or -1. */
static int losetup_range(const char *path, unsigned long long off,
			 unsigned long long size, char *dev, size_t len)
{
	char cmd[600];
	FILE *p;

	snprintf(cmd, sizeof(cmd),
		 "losetup -f --show -o %llu --sizelimit %llu '%s' 2>/dev/null",
		 off, size, path);
	dev[0] = 0;
	p = popen(cmd, "r");
	if (p) {
		if (!fgets(dev, (int)len, p))
			dev[0] = 0;
		pclose(p);
	}
	dev[strcspn(dev, "\n")] = 0;
	return dev[0] ? 0 : -1;
}

static int open_rw(const char *path, const char **msg)
{
	struct fs_options o = {.device = path};
	struct fs *fs = NULL;
	int ret;

	*msg = NULL;
	ret = fs_open(&o, &fs, msg);
	if (!ret)
		CHECK_EQ(fs_close(fs), 0);
	return ret;
}

static void test_processes(void)
{
	const char *img = unit_mkfs("users.img", "-t ext4", 8192);
	char who[96], want[32];
	const char *msg;
	struct holder h;
	int own;

	printf("== other processes\n");
	CHECK_EQ(writer(img, who, sizeof(who)), 0);

	own = open(img, O_RDWR);
	CHECK(own >= 0);
	CHECK_EQ(writer(img, who, sizeof(who)), 0); /* our own fd */
	close(own);

	h = hold(img, O_RDONLY, 60000);
	CHECK_EQ(writer(img, who, sizeof(who)), 0);
	CHECK_EQ(open_rw(img, &msg), 0);
	release(h);

	h = hold(img, O_RDWR, 60000);
	snprintf(want, sizeof(want), "pid %d (", (int)h.pid);
	CHECK_EQ(writer(img, who, sizeof(who)), 1);
	printf("writer: %s\n", who);
	CHECK(!strncmp(who, want, strlen(want)));
	CHECK_EQ(open_rw(img, &msg), -EBUSY);
	printf("refused: %s\n", msg ? msg : "(no message)");
	CHECK(msg && strstr(msg, want) && strstr(msg, "open for writing"));
	{
		struct fs_options o = {.device = img, .readonly = 1};
		struct fs *fs = NULL;

		/* A reader does not mind a writer that is not ours. */
		CHECK_EQ(fs_open(&o, &fs, &msg), 0);
		if (fs)
			CHECK_EQ(fs_close(fs), 0);
	}
	release(h);
	CHECK_EQ(writer(img, who, sizeof(who)), 0);

	/* A writer on its way out (Debian's fuse2fs after umount). */
	h = hold(img, O_WRONLY, 300);
	CHECK_EQ(open_rw(img, &msg), 0);
	release(h);
	unit_fsck(img);
}

static void test_loop(void)
{
	const char *img = unit_mkfs("loop.img", "-t ext4", 8192);
	char dev[64], who[96];
	const char *msg;

	printf("== loop devices\n");
	if (unit_losetup(img, 0, dev, sizeof(dev))) {
		unit_skip("loop cases: no loop device");
		return;
	}
	CHECK_EQ(writer(img, who, sizeof(who)), 1);
	CHECK(!strcmp(who, dev));
	CHECK_EQ(open_rw(img, &msg), -EBUSY);
	printf("refused: %s\n", msg ? msg : "(no message)");
	CHECK(msg && strstr(msg, dev) && strstr(msg, "attached read-write"));
	unit_run("losetup -d %s", dev);

	CHECK_EQ(unit_losetup(img, 1, dev, sizeof(dev)), 0);
	CHECK_EQ(writer(img, who, sizeof(who)), 0); /* read-only device */
	CHECK_EQ(open_rw(img, &msg), 0);
	unit_run("losetup -d %s", dev);

	/* offset=: a loop device over other bytes of the image is no writer. */
	CHECK_EQ(losetup_range(img, 4 << 20, 2 << 20, dev, sizeof(dev)), 0);
	CHECK_EQ(range_writer(img, 0, 4 << 20), 0);
	CHECK_EQ(range_writer(img, 6 << 20, 1 << 20), 0);
	CHECK_EQ(range_writer(img, 3 << 20, 2 << 20), 1);
	CHECK_EQ(range_writer(img, 5 << 20, 4 << 20), 1);
	CHECK_EQ(range_writer(img, 4 << 20, 2 << 20), 1);
	unit_run("losetup -d %s", dev);
	unit_fsck(img);
}

/* Every shell has /dev/null open for writing: no image is written there. */
static void test_chardev(void)
{
	struct holder h;
	char who[96];

	printf("== character device\n");
	h = hold("/dev/null", O_WRONLY, 10000);
	CHECK_EQ(writer("/dev/null", who, sizeof(who)), 0);
	release(h);
}

int main(void)
{
	test_chardev();
	test_processes();
	test_loop();
	return unit_done();
}
