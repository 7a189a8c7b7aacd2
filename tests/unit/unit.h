/*
 * Helpers for the core's unit tests: scratch images made by mkfs, checks
 * that count failures, and an e2fsck -fn at the end. Header-only so that
 * every test program stays a single file.
 */
#ifndef TESTS_UNIT_H
#define TESTS_UNIT_H

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/core.h"

static int unit_failures;
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

/* A private scratch directory, removed at exit unless KEEP_UNIT_DIR is set. */
static inline const char *unit_scratch(void)
{
	if (!unit_dir[0]) {
		snprintf(unit_dir, sizeof(unit_dir), "/tmp/unit.XXXXXX");
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

/* e2fsck -fn must report nothing; counts a failure otherwise. */
static inline void unit_fsck(const char *path)
{
	int ret = unit_run("e2fsck -fn '%s' >%s/fsck.log 2>&1", path,
			   unit_scratch());

	if (ret) {
		printf("FAIL e2fsck -fn %s:\n", path);
		unit_run("cat %s/fsck.log", unit_scratch());
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

/* Prints the summary and returns main()'s exit status. */
static inline int unit_done(void)
{
	if (unit_dir[0] && !getenv("KEEP_UNIT_DIR"))
		unit_run("rm -rf '%s'", unit_dir);
	printf("%s: %d failure(s)\n", unit_failures ? "FAILED" : "PASSED",
	       unit_failures);
	return unit_failures ? 1 : 0;
}

#endif
