/*
 * Helpers for the core's unit tests: scratch images made by mkfs, checks
 * that count failures, an e2fsck -fn at the end, and numbered files with a
 * resumable directory lister for the directory tests. Header-only so that
 * every test program stays a single file.
 */
#ifndef TESTS_UNIT_H
#define TESTS_UNIT_H

#include <dirent.h>
#include <errno.h>
#include <regex.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/core.h"
#include "core/fs_internal.h"

static int unit_failures;
/* The first part of the test that could not run, or NULL. */
static const char *unit_skipped;
static char unit_dir[256];
/* iomap= for unit_open: tests of the data path run in each mode. */
static enum fs_iomap_mode unit_iomap = FS_IOMAP_AUTO;

#define CHECK(cond)                                                        \
	do {                                                               \
		if (cond) {                                                \
			printf("ok   %s:%d %s\n", __FILE__, __LINE__, #cond); \
		} else {                                                   \
			printf("FAIL %s:%d %s\n", __FILE__, __LINE__, #cond); \
			unit_failures++;                                   \
		}                                                          \
	} while (0)

/* CHECK_EQ for integers, printing both sides on failure. */
#define CHECK_EQ(a, b)                                                     \
	do {                                                               \
		long long _a = (long long)(a), _b = (long long)(b);        \
		if (_a == _b) {                                            \
			printf("ok   %s:%d %s == %s\n", __FILE__, __LINE__, \
			       #a, #b);                                    \
		} else {                                                   \
			printf("FAIL %s:%d %s == %s (%lld != %lld)\n",     \
			       __FILE__, __LINE__, #a, #b, _a, _b);        \
			unit_failures++;                                   \
		}                                                          \
	} while (0)

static inline int unit_run(const char *fmt, ...)
{
	char cmd[4096];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	return system(cmd);
}

/*
 * A private scratch directory, removed at exit unless KEEP_UNIT_DIR is set.
 * In /var/tmp, not /tmp: that may be tmpfs, whose page cache cannot be
 * dropped, and test_uncache counts an image's cached pages.
 */
static inline const char *unit_scratch(void)
{
	if (!unit_dir[0]) {
		snprintf(unit_dir, sizeof(unit_dir), "/var/tmp/unit.XXXXXX");
		if (!mkdtemp(unit_dir)) {
			perror("mkdtemp");
			exit(1);
		}
	}
	return unit_dir;
}

/*
 * Makes IMAGE (a name inside the scratch dir) with `mkfs_args` (e.g.
 * "-t ext4 -O inline_data") and size in KiB; returns its path (static).
 */
static inline const char *unit_mkfs(const char *name, const char *mkfs_args,
				    unsigned long size_kib)
{
	static char path[512];

	snprintf(path, sizeof(path), "%s/%s", unit_scratch(), name);
	if (unit_run("mke2fs -q -F %s '%s' %luk >/dev/null 2>&1", mkfs_args,
		     path, size_kib)) {
		printf("FAIL mke2fs %s %s\n", mkfs_args, path);
		exit(1);
	}
	return path;
}

static inline struct fs *unit_open(const char *path, int readonly)
{
	struct fs_options o = { .device = path, .readonly = readonly,
				.iomap = unit_iomap };
	const char *msg = NULL;
	struct fs *fs = NULL;
	int ret = fs_open(&o, &fs, &msg);

	if (ret) {
		printf("FAIL fs_open %s: %d %s\n", path, ret, msg ? msg : "");
		exit(1);
	}
	return fs;
}

/*
 * Whether a line of e2fsck -fn's output is one that a clean check prints:
 * the banner, the headers of passes 1 to 5, the summary, blank lines, and
 * the offer to make an extent tree shallower, which e2fsck marks as no
 * fix (the kernel leaves such trees behind as well). Anything else is a
 * complaint, even when e2fsck exits 0 (it does for wrong free counts).
 */
static inline int unit_fsck_line_ok(const char *line)
{
	static const char ok_re[] =
		"^(|e2fsck [0-9].*|Pass [1-5]: .*"
		"|.*: [0-9]+/[0-9]+ files \\([0-9.]+% non-contiguous\\), "
		"[0-9]+/[0-9]+ blocks"
		"|Inode [0-9]+ extent tree \\(at level [0-9]+\\) could be "
		"(shorter|narrower)\\.  Optimize\\? no)$";
	regex_t re;
	int ok;

	if (regcomp(&re, ok_re, REG_EXTENDED | REG_NOSUB))
		return 0;
	ok = !regexec(&re, line, 0, NULL, 0);
	regfree(&re);
	return ok;
}

/*
 * Whether the superblock says "clean" and records no errors: 0 if so,
 * else 1 with the state and error count in why.
 */
static inline int unit_sb_unclean(const char *path, char *why, size_t len)
{
	char cmd[600], line[256], state[64] = "";
	unsigned long errors = 0;
	FILE *p;

	snprintf(cmd, sizeof(cmd), "dumpe2fs -h '%s' 2>/dev/null", path);
	p = popen(cmd, "r");
	while (p && fgets(line, sizeof(line), p)) {
		line[strcspn(line, "\n")] = 0;
		sscanf(line, "Filesystem state: %63[^\n]", state);
		sscanf(line, "FS Error count: %lu", &errors);
	}
	if (p)
		pclose(p);
	snprintf(why, len, "state \"%s\", %lu error(s) recorded", state,
		 errors);
	return strcmp(state, "clean") || errors;
}

/*
 * e2fsck -fn must exit 0 and print nothing but its pass lines and
 * summary, and the superblock must say clean with no errors recorded;
 * counts a failure otherwise.
 */
static inline void unit_fsck(const char *path)
{
	char log[300], line[1024], why[128];
	int ret, extra = 0, unclean;
	FILE *f;

	snprintf(log, sizeof(log), "%s/fsck.log", unit_scratch());
	ret = unit_run("e2fsck -fn '%s' >%s 2>&1", path, log);
	f = fopen(log, "r");
	while (f && fgets(line, sizeof(line), f)) {
		line[strcspn(line, "\n")] = 0;
		extra += !unit_fsck_line_ok(line);
	}
	if (f)
		fclose(f);
	unclean = unit_sb_unclean(path, why, sizeof(why));
	if (ret || extra || !f || unclean) {
		printf("FAIL e2fsck -fn %s: exit %d, superblock %s:\n", path,
		       ret, why);
		fflush(stdout);
		unit_run("cat %s", log);
		unit_failures++;
	} else {
		printf("ok   e2fsck -fn %s\n", path);
	}
}

static inline struct fs_cred unit_root(void)
{
	struct fs_cred c = { 0, 0, 022 };
	return c;
}

/* A directory as root; returns its inode number, or 0 if mkdir failed. */
static inline ext2_ino_t unit_mkd(struct fs *fs, ext2_ino_t dir,
				  const char *name)
{
	struct fs_cred cred = unit_root();
	struct stat st;

	if (namei_mkdir(fs, dir, name, 0755, &cred, &st))
		return 0;
	return st.st_ino;
}

/*
 * Directory tests name their files "<prefix><number>". Creates the regular
 * file prefix<i> as root; returns 0 or -errno.
 */
static inline int unit_mkf(struct fs *fs, ext2_ino_t dir, const char *prefix,
			   int i)
{
	struct fs_cred cred = unit_root();
	char name[300];

	snprintf(name, sizeof(name), "%s%d", prefix, i);
	return namei_mknod(fs, dir, name, S_IFREG | 0644, 0, &cred, NULL);
}

/* Removes prefix<i>; returns 0 or -errno. */
static inline int unit_rmf(struct fs *fs, ext2_ino_t dir, const char *prefix,
			   int i)
{
	char name[300];

	snprintf(name, sizeof(name), "%s%d", prefix, i);
	return namei_unlink(fs, dir, name);
}

#define UNIT_LIST_MAX 100000

/*
 * A dir_read consumer that takes `budget` entries a call, like a small
 * reply buffer, so that listings are resumed from cookies many times.
 * It counts how often each prefix<n> was seen; any other name but "." and
 * ".." counts as `other`. Large: keep one static per test program.
 */
struct unit_lister {
	int budget;
	int taken;	/* entries accepted by the current call */
	off_t next;	/* cookie to resume from */
	int want_attrs;	/* readdirplus: st must match ino and dtype */
	const char *prefix;
	int dot, dotdot, other, dup, calls;
	int bad_order;	/* a cookie that did not grow */
	int bad_attr;	/* with want_attrs: st missing or not matching */
	int bad_dtype;	/* without: dots not DT_DIR, others not DT_REG */
	int seen[UNIT_LIST_MAX];
};

static inline int unit_list_fill(void *ctx, const char *name, size_t namelen,
				 ext2_ino_t ino, unsigned dtype,
				 const struct stat *st, off_t next)
{
	struct unit_lister *l = ctx;
	size_t plen = strlen(l->prefix);
	char buf[300];

	if (l->taken == l->budget)
		return 1;
	if (next <= l->next)
		l->bad_order++;
	l->taken++;
	l->next = next;
	memcpy(buf, name, namelen);
	buf[namelen] = '\0';
	if (l->want_attrs &&
	    (!st || st->st_ino != ino || IFTODT(st->st_mode) != dtype))
		l->bad_attr++;
	if (!l->want_attrs &&
	    dtype != (buf[0] == '.' && namelen <= 2 ? DT_DIR : DT_REG))
		l->bad_dtype++;
	if (!strcmp(buf, ".")) {
		l->dot++;
	} else if (!strcmp(buf, "..")) {
		l->dotdot++;
	} else if (namelen > plen && !memcmp(buf, l->prefix, plen)) {
		int n = atoi(buf + plen);

		if (n >= 0 && n < UNIT_LIST_MAX) {
			if (l->seen[n])
				l->dup++;
			l->seen[n]++;
		} else {
			l->other++;
		}
	} else {
		l->other++;
	}
	return 0;
}

static inline void unit_lister_init(struct unit_lister *l, const char *prefix,
				    int budget, int want_attrs)
{
	memset(l, 0, sizeof(*l));
	l->prefix = prefix;
	l->budget = budget;
	l->want_attrs = want_attrs;
}

/* One dir_read call; returns how many entries it gave, or -errno. */
static inline int unit_list_step(struct fs *fs, ext2_ino_t dir,
				 struct unit_lister *l)
{
	int ret;

	l->taken = 0;
	ret = dir_read(fs, dir, l->next, l->want_attrs, unit_list_fill, l);
	l->calls++;
	return ret < 0 ? ret : l->taken;
}

/*
 * Steps to the end; returns 0 or -errno, -ELOOP if the cookies never reach
 * the end.
 */
static inline int unit_list_rest(struct fs *fs, ext2_ino_t dir,
				 struct unit_lister *l)
{
	int ret;

	while ((ret = unit_list_step(fs, dir, l)) > 0)
		if (l->calls > 100000)
			return -ELOOP;
	return ret;
}

/* How many of seen[from..to) were listed exactly `times` times. */
static inline int unit_count_seen(const struct unit_lister *l, int from,
				  int to, int times)
{
	int i, n = 0;

	for (i = from; i < to; i++)
		n += l->seen[i] == times;
	return n;
}

/*
 * A part of the test that cannot run here (no loop device, say): noted so
 * that the program ends as skipped, not passed, while the other parts
 * still count their failures.
 */
static inline void unit_skip(const char *why)
{
	printf("skip %s\n", why);
	if (!unit_skipped)
		unit_skipped = why;
}

/*
 * Prints the summary and returns main()'s exit status: 1 on failures,
 * else 77 (the runner's "skipped", its reason the last line) if a part
 * was skipped, else 0.
 */
static inline int unit_done(void)
{
	if (unit_dir[0] && !getenv("KEEP_UNIT_DIR"))
		unit_run("rm -rf '%s'", unit_dir);
	if (unit_failures) {
		printf("FAILED: %d failure(s)\n", unit_failures);
		return 1;
	}
	if (unit_skipped) {
		printf("not run: %s\n", unit_skipped);
		return 77;
	}
	printf("PASSED: 0 failure(s)\n");
	return 0;
}

/*
 * Attaches path to a free loop device (read-only if ro) and puts its name
 * in dev; returns 0, or -1 where there is no loop device to be had.
 */
static inline int unit_losetup(const char *path, int ro, char *dev,
			       size_t len)
{
	char cmd[600];
	FILE *p;

	snprintf(cmd, sizeof(cmd), "losetup %s-f --show '%s' 2>/dev/null",
		 ro ? "-r " : "", path);
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

/* Sets and clears i_flags bits behind the core's back, no checks made. */
static inline void unit_poke_flags(struct fs *fs, ext2_ino_t ino,
				   uint32_t set, uint32_t clear)
{
	struct ext2_inode_large inode;

	fs_lock(fs);
	fsi_read(fs, ino, &inode);
	inode.i_flags = (inode.i_flags | set) & ~clear;
	fsi_write(fs, ino, &inode);
	fs_unlock(fs);
}

#endif
