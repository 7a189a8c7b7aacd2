/*
 * Who else writes an image. cache_io's OFD lock keeps our own servers
 * apart, but programs that take no lock write images too: Debian's
 * fuse2fs (whose umount returns while it is still writing the image),
 * debugfs -w, a loop device under the kernel's ext4. Two writers corrupt
 * an image, so a read-write mount first looks for them where root sees
 * them all: every process's open files in /proc, every loop device's
 * backing file in /sys/block. What the caller may not read is skipped:
 * this is a safety net, not a lock.
 */
#include <ctype.h>
#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "support/image_users.h"

/*
 * Descriptors are matched through /proc/PID/fdinfo (mount id and inode
 * number), never by stat() of what they point to: that would hang on a
 * dead FUSE or NFS mount that some other process has files open on. A
 * kernel whose fdinfo has no ino: line (older than 5.14) matches nothing
 * here; a process that opened the image through another mount of its
 * filesystem (a bind mount) has another mount id and is not seen.
 */
struct fd_id {
	unsigned long flags;
	long mnt_id;
	unsigned long long ino;
};

/* The first line of a small file, newline dropped; 0 or -1. */
static int read_line(const char *path, char *buf, size_t len)
{
	FILE *f = fopen(path, "re");
	int ret = -1;

	if (!f)
		return -1;
	if (fgets(buf, (int)len, f)) {
		buf[strcspn(buf, "\n")] = 0;
		ret = 0;
	}
	fclose(f);
	return ret;
}

/* Flags, mount id and inode of descriptor fd of pid; 0 or -1. */
static int read_fd_id(const char *pid, const char *fd, struct fd_id *id)
{
	char path[600], line[128];
	int have = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%s/fdinfo/%s", pid, fd);
	f = fopen(path, "re");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "flags: %lo", &id->flags) == 1)
			have |= 1;
		else if (sscanf(line, "mnt_id: %ld", &id->mnt_id) == 1)
			have |= 2;
		else if (sscanf(line, "ino: %llu", &id->ino) == 1)
			have |= 4;
	}
	fclose(f);
	return have == 7 ? 0 : -1;
}

/* Whether process pid has the image (img, seen by us as mine) open to write. */
static int pid_writes(const char *pid, const struct stat *img,
		      const struct fd_id *mine)
{
	char path[600];
	struct fd_id id;
	struct dirent *d;
	int found = 0;
	DIR *fds;

	snprintf(path, sizeof(path), "/proc/%s/fd", pid);
	fds = opendir(path);
	if (!fds)
		return 0;
	while (!found && (d = readdir(fds))) {
		if (d->d_name[0] == '.' || read_fd_id(pid, d->d_name, &id) ||
		    id.ino != (unsigned long long)img->st_ino ||
		    id.mnt_id != mine->mnt_id)
			continue;
		found = (id.flags & O_ACCMODE) != O_RDONLY;
	}
	closedir(fds);
	return found;
}

static int proc_writer(const char *image, const struct stat *img, char *who,
		       size_t len)
{
	char self[16], path[600], comm[64];
	struct fd_id mine;
	struct dirent *p;
	int found = 0, fd;
	DIR *proc;

	/* Our own view of the image gives the mount id to look for. */
	fd = open(image, O_PATH | O_CLOEXEC);
	if (fd < 0)
		return 0;
	snprintf(self, sizeof(self), "%d", (int)getpid());
	snprintf(path, sizeof(path), "%d", fd);
	proc = opendir("/proc");
	if (!read_fd_id(self, path, &mine) && proc) {
		while (!found && (p = readdir(proc))) {
			if (!isdigit((unsigned char)p->d_name[0]) ||
			    !strcmp(p->d_name, self) ||
			    !pid_writes(p->d_name, img, &mine))
				continue;
			snprintf(path, sizeof(path), "/proc/%s/comm",
				 p->d_name);
			if (read_line(path, comm, sizeof(comm)))
				strcpy(comm, "?");
			snprintf(who, len, "pid %s (%s)", p->d_name, comm);
			found = 1;
		}
	}
	if (proc)
		closedir(proc);
	close(fd);
	return found;
}

/*
 * Whether loop device dev (a name in /sys/block) maps bytes of its
 * backing file that overlap [off, off + size): its offset and sizelimit
 * (0: to the end of the file). Unreadable: assume so.
 */
static int loop_overlaps(const char *dev, unsigned long long off,
			 unsigned long long size)
{
	unsigned long long loff, lsize;
	char path[600], line[64];

	snprintf(path, sizeof(path), "/sys/block/%s/loop/offset", dev);
	if (read_line(path, line, sizeof(line)) ||
	    sscanf(line, "%llu", &loff) != 1)
		return 1;
	snprintf(path, sizeof(path), "/sys/block/%s/loop/sizelimit", dev);
	if (read_line(path, line, sizeof(line)) ||
	    sscanf(line, "%llu", &lsize) != 1)
		return 1;
	if (size > ULLONG_MAX - off)
		size = ULLONG_MAX - off;
	if (loff >= off + size)
		return 0;
	return !lsize || loff + lsize > off;
}

/* A loop device attached read-write to [off, off + size) of the image. */
static int loop_writer(const struct stat *img, unsigned long long off,
		       unsigned long long size, char *who, size_t len)
{
	char path[600], line[4096];
	struct dirent *d;
	struct stat st;
	int found = 0;
	DIR *sys;
	char *del;

	sys = opendir("/sys/block");
	if (!sys)
		return 0;
	while (!found && (d = readdir(sys))) {
		if (strncmp(d->d_name, "loop", 4))
			continue;
		snprintf(path, sizeof(path), "/sys/block/%s/loop/backing_file",
			 d->d_name);
		if (read_line(path, line, sizeof(line)))
			continue;
		del = strstr(line, " (deleted)");
		if (del)
			*del = 0;
		if (stat(line, &st) || st.st_dev != img->st_dev ||
		    st.st_ino != img->st_ino)
			continue;
		snprintf(path, sizeof(path), "/sys/block/%s/ro", d->d_name);
		if (read_line(path, line, sizeof(line)) || strcmp(line, "0") ||
		    !loop_overlaps(d->d_name, off, size))
			continue;
		snprintf(who, len, "/dev/%s", d->d_name);
		found = 1;
	}
	closedir(sys);
	return found;
}

int image_other_writer(const char *image, unsigned long long off,
		       unsigned long long size, char *who, size_t len)
{
	struct stat img;

	/*
	 * Only a file or a block device holds an image: the writers of a
	 * character device such as /dev/null (every shell has it open) write
	 * nothing that a mount could read back.
	 */
	if (stat(image, &img) ||
	    !(S_ISREG(img.st_mode) || S_ISBLK(img.st_mode)))
		return 0;
	if (proc_writer(image, &img, who, len))
		return 1;
	return S_ISREG(img.st_mode) &&
	       loop_writer(&img, off, size, who, len);
}

/* Milliseconds on the monotonic clock. */
static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int image_wait_other_writer(const char *image, unsigned long long off,
			    unsigned long long size, char *who, size_t len)
{
	const struct timespec poll = {0, IMAGE_POLL_MS * 1000000L};
	long long end = now_ms() + IMAGE_GRACE_MS;

	/*
	 * The grace is counted on the clock, not in polls: on a busy
	 * machine one look through /proc can take longer than the poll.
	 */
	for (;;) {
		if (!image_other_writer(image, off, size, who, len))
			return 0;
		if (now_ms() >= end)
			return 1;
		nanosleep(&poll, NULL);
	}
}
