/*
 * FUSE glue shared by fuse2fs and fuse4fs: option parsing, usage and
 * version text, the mount/daemonize/loop/unmount sequence, connection
 * setup, credentials, open-file handles and ioctl dispatch. No
 * filesystem logic: that is the core's (lib/core/core.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <malloc.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <linux/fs.h>

#include "fuse_glue.h"

/*
 * Largest write the kernel may send in one request. libfuse 3.14 sizes
 * its receive buffer for 256 pages and lowers anything larger itself.
 */
#define GLUE_MAX_WRITE (1u << 20)
/* Read-ahead the kernel may do: one request of the largest size. */
#define GLUE_MAX_READAHEAD (1u << 20)
/* Readahead is lowered in these steps until a reply splices. */
#define GLUE_READAHEAD_STEP (128u << 10)
/*
 * Dirty pages the kernel may hold for this mount under the writeback
 * cache: enough that random writes over a file of this size stay in the
 * page cache and go back to the server in order, merged into large
 * requests.
 */
#define GLUE_MAX_DIRTY (256ull << 20)

enum {
	KEY_RO,
	KEY_RW,
	KEY_FAKEROOT,
	KEY_ERRORS,
	KEY_IOMAP,
	KEY_CACHE_SIZE,
	KEY_OFFSET,
	KEY_UID,
	KEY_GID,
	KEY_ALLOW_ROOT,
	KEY_MAX_READ,
	KEY_NORECOVERY,
	KEY_DISCARD,
	KEY_IGNORE,
	KEY_REFUSE,
};

static const struct fuse_opt glue_opt_spec[] = {
	FUSE_OPT_KEY("ro", KEY_RO),
	FUSE_OPT_KEY("rw", KEY_RW),
	FUSE_OPT_KEY("fakeroot", KEY_FAKEROOT),
	FUSE_OPT_KEY("errors=", KEY_ERRORS),
	FUSE_OPT_KEY("iomap=", KEY_IOMAP),
	FUSE_OPT_KEY("cache_size=", KEY_CACHE_SIZE),
	FUSE_OPT_KEY("offset=", KEY_OFFSET),
	/*
	 * Ours, not libfuse's: its high-level layer would show every file
	 * as owned by them, one way only (see fs_map_uid).
	 */
	FUSE_OPT_KEY("uid=", KEY_UID),
	FUSE_OPT_KEY("gid=", KEY_GID),
	FUSE_OPT_KEY("allow_root", KEY_ALLOW_ROOT),
	FUSE_OPT_KEY("max_read=", KEY_MAX_READ),
	FUSE_OPT_KEY("norecovery", KEY_NORECOVERY),
	FUSE_OPT_KEY("noload", KEY_NORECOVERY),
	FUSE_OPT_KEY("discard", KEY_DISCARD),
	FUSE_OPT_KEY("nodiscard", KEY_DISCARD),
	/*
	 * What mount(8) and mount.fuse3 pass on that libfuse 3.14 rejects:
	 * fstab-only words, and VFS flags it has no table entry for. They
	 * are dropped: relatime is the kernel's default anyway, and the
	 * kernel itself ignores mand.
	 */
	FUSE_OPT_KEY("defaults", KEY_IGNORE),
	FUSE_OPT_KEY("auto", KEY_IGNORE),
	FUSE_OPT_KEY("noauto", KEY_IGNORE),
	FUSE_OPT_KEY("nofail", KEY_IGNORE),
	FUSE_OPT_KEY("_netdev", KEY_IGNORE),
	FUSE_OPT_KEY("nouser", KEY_IGNORE),
	FUSE_OPT_KEY("relatime", KEY_IGNORE),
	FUSE_OPT_KEY("norelatime", KEY_IGNORE),
	FUSE_OPT_KEY("strictatime", KEY_IGNORE),
	FUSE_OPT_KEY("nostrictatime", KEY_IGNORE),
	FUSE_OPT_KEY("diratime", KEY_IGNORE),
	FUSE_OPT_KEY("nodiratime", KEY_IGNORE),
	FUSE_OPT_KEY("lazytime", KEY_IGNORE),
	FUSE_OPT_KEY("nolazytime", KEY_IGNORE),
	FUSE_OPT_KEY("iversion", KEY_IGNORE),
	FUSE_OPT_KEY("noiversion", KEY_IGNORE),
	FUSE_OPT_KEY("silent", KEY_IGNORE),
	FUSE_OPT_KEY("loud", KEY_IGNORE),
	FUSE_OPT_KEY("mand", KEY_IGNORE),
	FUSE_OPT_KEY("nomand", KEY_IGNORE),
	/* A security promise we cannot keep must not be dropped quietly. */
	FUSE_OPT_KEY("nosymfollow", KEY_REFUSE),
	FUSE_OPT_END
};

/* Connection options (-o max_write=, -o readdirplus=...) for init. */
static struct fuse_conn_info_opts *glue_conn_opts;

/* "N", "NK", "NM", "NG" (either case) into bytes; -1 if malformed. */
static int parse_size(const char *s, unsigned long long *bytes)
{
	unsigned long long v, mult = 1;
	char *end;

	if (*s < '0' || *s > '9')
		return -1;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno)
		return -1;
	switch (*end) {
	case 'k': case 'K':
		mult = 1ull << 10;
		end++;
		break;
	case 'm': case 'M':
		mult = 1ull << 20;
		end++;
		break;
	case 'g': case 'G':
		mult = 1ull << 30;
		end++;
		break;
	}
	if (*end || v > ULLONG_MAX / mult)
		return -1;
	*bytes = v * mult;
	return 0;
}

/* A user or group id: decimal, below (uid_t)-1; -1 if malformed. */
static int parse_id(const char *s, unsigned *id)
{
	unsigned long v;
	char *end;

	if (*s < '0' || *s > '9')
		return -1;
	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || *end || v >= (uid_t)-1)
		return -1;
	*id = v;
	return 0;
}

static int bad_value(struct glue *g, const char *arg, const char *allowed)
{
	fprintf(stderr, "%s: bad option -o %s (expected %s)\n", g->progname,
		arg, allowed);
	return -1;
}

/*
 * fuse_opt callback: takes our own options out of the argument list and
 * the device name; everything else (including "ro", which the kernel
 * mount needs too) stays for libfuse.
 */
static int glue_opt_proc(void *data, const char *arg, int key,
			 struct fuse_args *outargs)
{
	struct glue *g = data;
	const char *val = strchr(arg, '=');

	switch (key) {
	case FUSE_OPT_KEY_NONOPT:
		if (g->device)
			return 1;
		g->device = strdup(arg);
		if (!g->device) {
			fprintf(stderr, "%s: out of memory\n", g->progname);
			return -1;
		}
		return 0;
	case KEY_RO:
		g->fsopts.readonly = 1;
		return 1;
	case KEY_RW:
		g->fsopts.readonly = 0;
		return 1;
	case KEY_FAKEROOT:
		g->fakeroot = 1;
		return 0;
	case KEY_ALLOW_ROOT:
		g->allow_root = 1;
		return 1;
	case KEY_MAX_READ:
		/* libfuse 3.14 wants init to repeat it: see glue_init_conn. */
		g->max_read = strtoul(val + 1, NULL, 10);
		return 1;
	case KEY_NORECOVERY:
		/* As ext4: an unread journal allows a read-only mount only. */
		g->fsopts.norecovery = 1;
		g->fsopts.readonly = 1;
		return fuse_opt_add_arg(outargs, "-oro") ? -1 : 0;
	case KEY_DISCARD:
		g->fsopts.discard = !strcmp(arg, "discard");
		return 0;
	case KEY_IGNORE:
		return 0;
	case KEY_REFUSE:
		fprintf(stderr, "%s: -o %s is not supported\n", g->progname,
			arg);
		return -1;
	case KEY_ERRORS:
		val++;
		if (!strcmp(val, "continue"))
			g->fsopts.errors = FS_ERRORS_CONTINUE;
		else if (!strcmp(val, "remount-ro"))
			g->fsopts.errors = FS_ERRORS_REMOUNT_RO;
		else if (!strcmp(val, "panic"))
			g->fsopts.errors = FS_ERRORS_PANIC;
		else
			return bad_value(g, arg,
					 "continue, remount-ro or panic");
		return 0;
	case KEY_IOMAP:
		val++;
		if (!strcmp(val, "auto"))
			g->fsopts.iomap = FS_IOMAP_AUTO;
		else if (!strcmp(val, "on"))
			g->fsopts.iomap = FS_IOMAP_ON;
		else if (!strcmp(val, "off"))
			g->fsopts.iomap = FS_IOMAP_OFF;
		else
			return bad_value(g, arg, "auto, on or off");
		return 0;
	case KEY_CACHE_SIZE:
		if (parse_size(val + 1, &g->fsopts.cache_size))
			return bad_value(g, arg, "a size in bytes, K, M or G");
		return 0;
	case KEY_OFFSET:
		if (parse_size(val + 1, &g->fsopts.offset))
			return bad_value(g, arg, "a byte offset, or K, M or G");
		return 0;
	case KEY_UID:
		if (parse_id(val + 1, &g->fsopts.map_uid))
			return bad_value(g, arg, "a numeric user id");
		return 0;
	case KEY_GID:
		if (parse_id(val + 1, &g->fsopts.map_gid))
			return bad_value(g, arg, "a numeric group id");
		return 0;
	}
	return 1;
}

static void usage(const struct glue *g)
{
	printf("usage: %s [options] DEVICE|IMAGE MOUNTPOINT\n\n"
	       "%s options:\n"
	       "    -o ro                  mount read-only\n"
	       "    -o rw                  mount read-write (default)\n"
	       "    -o fakeroot            every caller is root; no permission checks\n"
	       "    -o errors=continue|remount-ro|panic\n"
	       "                           what to do on finding corruption\n"
	       "                           (default: what the superblock says)\n"
	       "    -o iomap=auto|on|off   file data path (default: auto)\n"
	       "    -o cache_size=N[KMG]   metadata cache size in bytes\n"
	       "    -o norecovery, -o noload\n"
	       "                           mount read-only without replaying the journal\n"
	       "    -o offset=N[KMG]       the filesystem starts N bytes into the\n"
	       "                           image or device (a partition)\n"
	       "    -o uid=N,gid=N         files of user/group 0 on disk are N's in\n"
	       "                           the mount, N's are 0's; new files too\n"
	       "                           (these, not libfuse's uid=/gid=)\n"
	       "    -o discard, -o nodiscard\n"
	       "                           give freed blocks back to the image file\n"
	       "                           or device as they are freed (batched)\n"
	       "    -o no_writeback_cache  the kernel does not cache writes (fuse4fs;\n"
	       "                           fuse2fs never lets it)\n"
	       "    -o max_read=N          largest read request in bytes (default:\n"
	       "                           1 MiB, or what a pipe can hold)\n"
	       "\nFUSE options:\n",
	       g->progname, g->progname);
	fflush(stdout);
}

static void version(const struct glue *g)
{
	const char *e2ver = NULL;

	ext2fs_get_library_version(&e2ver, NULL);
	printf("%s %s (libext2fs %s, libfuse %s)\n", g->progname,
	       PACKAGE_VERSION, e2ver, fuse_pkgversion());
	fflush(stdout);
	fuse_lowlevel_version();
}

/* Prepends "-o fsname=DEVICE,subtype=PROG[,...]" so later options win. */
static int add_fuse_opts(struct glue *g, struct fuse_args *args)
{
	char *opts = NULL, *fsname = NULL, *subtype = NULL;
	int ret = -1;

	if (asprintf(&fsname, "fsname=%s", g->fsopts.device) < 0)
		fsname = NULL;
	if (asprintf(&subtype, "subtype=%s", g->progname) < 0)
		subtype = NULL;
	if (!fsname || !subtype ||
	    fuse_opt_add_opt_escaped(&opts, fsname) ||
	    fuse_opt_add_opt(&opts, subtype))
		goto out;
	/*
	 * The kernel checks permissions (and, with POSIX ACLs negotiated,
	 * ACLs); the core only applies ownership and umask. fakeroot is the
	 * one mode where everybody may do anything.
	 */
	if (!g->fakeroot && fuse_opt_add_opt(&opts, "default_permissions"))
		goto out;
	/* A filesystem mounted by root is meant for every user. */
	if (geteuid() == 0 && !g->allow_root &&
	    fuse_opt_add_opt(&opts, "allow_other"))
		goto out;
	if (fuse_opt_insert_arg(args, 1, opts) ||
	    fuse_opt_insert_arg(args, 1, "-o"))
		goto out;
	ret = 0;
out:
	if (ret)
		fprintf(stderr, "%s: out of memory\n", g->progname);
	free(opts);
	free(fsname);
	free(subtype);
	return ret;
}

int glue_parse_args(struct glue *g, struct fuse_args *args,
		    const char *progname,
		    void (*fuse_help)(struct fuse_args *))
{
	char *abs;

	memset(g, 0, sizeof(*g));
	g->progname = progname;
	/*
	 * One malloc arena for all of libfuse's worker threads. glibc grows
	 * a thread arena a page at a time (an mprotect each), which cost ~8%
	 * of the CPU while the block cache fills; the main arena grows in
	 * larger steps. Most work is serialised by the fs lock anyway, and
	 * cache blocks freed by another thread stay reusable (RSS).
	 */
	mallopt(M_ARENA_MAX, 1);
	if (fuse_opt_parse(args, g, glue_opt_spec, glue_opt_proc))
		return -1;
	if (g->device) {
		/* The daemon runs in "/": the core may reopen the device. */
		abs = realpath(g->device, NULL);
		g->fsopts.device = abs ? abs : g->device;
		/*
		 * Before fuse_parse_cmdline, which would otherwise name the
		 * subtype after argv[0].
		 */
		if (add_fuse_opts(g, args))
			return -1;
	}
	if (fuse_parse_cmdline(args, &g->cmd))
		return -1;
	if (g->cmd.show_help) {
		usage(g);
		fuse_cmdline_help();
		fuse_help(args);
		return 1;
	}
	if (g->cmd.show_version) {
		version(g);
		return 1;
	}
	if (!g->device || !g->cmd.mountpoint) {
		fprintf(stderr, "%s: missing %s (see %s --help)\n", progname,
			g->device ? "MOUNTPOINT" : "DEVICE|IMAGE", progname);
		return -1;
	}
	glue_conn_opts = fuse_parse_conn_info_opts(args);
	if (!glue_conn_opts)
		return -1;
	g->fsopts.mountpoint = g->cmd.mountpoint;
	g->fsopts.debug = g->cmd.debug;
	return 0;
}

/*
 * Every handle handed out and not yet released. The RELEASE of a file
 * closed just before the unmount goes out in the background and is
 * dropped with the connection, so what is left here when the loop ends
 * is freed then.
 */
struct glue_handle {
	struct glue_handle *prev, *next;
	struct glue_file file;
};

static pthread_mutex_t handles_lock = PTHREAD_MUTEX_INITIALIZER;
static struct glue_handle handles = { &handles, &handles, { 0 } };

/* After the loop: the handles whose RELEASE never came. */
static void free_unreleased(void)
{
	while (handles.next != &handles)
		glue_file_free((uintptr_t)&handles.next->file);
}

int glue_run(struct glue *g, struct fuse_session *se, struct fuse *f)
{
	struct fuse_loop_config *lc;
	const char *msg = NULL;
	int ret, status = 1;

	ret = fs_open(&g->fsopts, &g->fs, &msg);
	if (ret < 0) {
		fprintf(stderr, "%s: %s: %s\n", g->progname, g->device,
			msg ? msg : strerror(-ret));
		return 1;
	}
	if (msg)
		fprintf(stderr, "%s: %s: %s\n", g->progname, g->device, msg);
	g->se = se;
	if (fuse_set_signal_handlers(se))
		goto out_close;
	/* libfuse prints why a mount fails. */
	if (fuse_session_mount(se, g->cmd.mountpoint))
		goto out_signals;
	if (glue_stats_attach(g, se))
		goto out_unmount;
	/* Only now: every error so far reached the terminal. */
	if (fuse_daemonize(g->cmd.foreground))
		goto out_unmount;
	/* Threads do not survive daemonizing: started after it. */
	if (glue_stats_start(g))
		fprintf(stderr, "%s: no request counters on SIGUSR1\n",
			g->progname);
	ret = fs_start_background(g->fs);
	if (ret < 0) {
		fprintf(stderr, "%s: %s: cannot start the MMP updater: %s\n",
			g->progname, g->device, strerror(-ret));
		goto out_unmount;
	}
	if (g->cmd.singlethread) {
		ret = f ? fuse_loop(f) : fuse_session_loop(se);
	} else {
		lc = fuse_loop_cfg_create();
		if (!lc)
			goto out_unmount;
		fuse_loop_cfg_set_clone_fd(lc, g->cmd.clone_fd);
		/*
		 * UINT_MAX means "not given"; libfuse 3.14's setters would
		 * warn about it, so leave its defaults alone then.
		 */
		if (g->cmd.max_idle_threads != UINT_MAX)
			fuse_loop_cfg_set_idle_threads(lc,
						       g->cmd.max_idle_threads);
		if (g->cmd.max_threads != UINT_MAX)
			fuse_loop_cfg_set_max_threads(lc, g->cmd.max_threads);
		ret = f ? fuse_loop_mt(f, lc) : fuse_session_loop_mt(se, lc);
		fuse_loop_cfg_destroy(lc);
	}
	/* A signal ending the loop is a normal way to stop. */
	status = ret < 0 ? 1 : 0;
	free_unreleased();
	glue_stats_stop(g);
	if (g->cmd.debug)
		glue_stats_print(g, stderr);
out_unmount:
	fuse_session_unmount(se);
out_signals:
	fuse_remove_signal_handlers(se);
out_close:
	ret = fs_close(g->fs);
	g->fs = NULL;
	if (ret < 0) {
		fprintf(stderr, "%s: %s: closing: %s\n", g->progname,
			g->device, strerror(-ret));
		status = 1;
	}
	return status;
}

void glue_done(struct glue *g, struct fuse_args *args)
{
	if (g->fsopts.device != g->device)
		free((char *)g->fsopts.device);
	free(g->device);
	free(g->cmd.mountpoint);
	free(glue_conn_opts);
	glue_conn_opts = NULL;
	fuse_opt_free_args(args);
}

/*
 * The major:minor of the mount on g's mount point (the last one there),
 * from /proc/self/mountinfo, which names mount points with blanks and
 * backslashes in octal. 0, or -1 if not found.
 */
static int mount_dev(const struct glue *g, char *dev, size_t size)
{
	char *line = NULL, *esc, *q;
	const char *p;
	size_t cap = 0;
	int found = -1;
	FILE *f;

	esc = malloc(strlen(g->cmd.mountpoint) * 4 + 1);
	if (!esc)
		return -1;
	for (p = g->cmd.mountpoint, q = esc; *p; p++) {
		if (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\\')
			q += sprintf(q, "\\%03o", (unsigned char)*p);
		else
			*q++ = *p;
	}
	*q = 0;
	f = fopen("/proc/self/mountinfo", "r");
	while (f && getline(&line, &cap, f) > 0) {
		char *save, *mdev = NULL, *tok = strtok_r(line, " ", &save);
		int i;

		/* id parent major:minor root mountpoint ... */
		for (i = 1; tok && i < 5; i++) {
			if (i == 3)
				mdev = tok;
			tok = strtok_r(NULL, " ", &save);
		}
		if (tok && mdev && !strcmp(tok, esc)) {
			snprintf(dev, size, "%s", mdev);
			found = 0;
		}
	}
	if (f)
		fclose(f);
	free(line);
	free(esc);
	return found;
}

static void bdi_set(const char *dev, const char *knob, unsigned long long v)
{
	char path[128];
	FILE *f;

	snprintf(path, sizeof(path), "/sys/class/bdi/%s/%s", dev, knob);
	f = fopen(path, "w");
	if (!f)
		return;
	fprintf(f, "%llu\n", v);
	fclose(f);
}

/*
 * The kernel gives a FUSE mount the default read-ahead (128 KiB) whatever
 * max_readahead says, and lets it hold about 1% of the dirty page
 * allowance: limits meant for servers it cannot trust. A server mounted
 * by root raises them for its own mount through sysfs: read-ahead to
 * what was negotiated and, under the writeback cache, GLUE_MAX_DIRTY.
 * Where that fails, the kernel's defaults stay.
 */
static void tune_bdi(struct glue *g, unsigned readahead)
{
	char dev[32];

	if (geteuid() != 0 || mount_dev(g, dev, sizeof(dev)))
		return;
	bdi_set(dev, "read_ahead_kb", readahead >> 10);
	if (g->writeback)
		bdi_set(dev, "max_bytes", GLUE_MAX_DIRTY);
}

/*
 * How large a pipe libfuse will be able to splice replies through: what
 * a request of the largest size needs if the process may go past
 * /proc/sys/fs/pipe-max-size (CAP_SYS_RESOURCE), else that limit.
 */
static size_t pipe_capacity(void)
{
	int fds[2], res;

	if (pipe(fds))
		return 0;
	res = fcntl(fds[0], F_SETPIPE_SZ, 2 * GLUE_MAX_WRITE);
	if (res < 0) {
		FILE *f = fopen("/proc/sys/fs/pipe-max-size", "r");

		if (!f || fscanf(f, "%d", &res) != 1)
			res = 0;
		if (f)
			fclose(f);
		if (res > 0)
			res = fcntl(fds[0], F_SETPIPE_SZ, res);
	}
	close(fds[0]);
	close(fds[1]);
	return res > 0 ? (size_t)res : 0;
}

int glue_splice_fits(const struct glue *g, size_t size)
{
	size_t bufs = GLUE_READ_SEGS + size / GLUE_ZERO_PIECE + 2;

	return g->splice && size + 4096 * bufs + 64 <= g->splice_max;
}

int glue_fit_reads_to_pipe(struct glue *g, struct fuse_args *args)
{
	struct glue probe = { .splice = 1, .splice_max = pipe_capacity() };
	unsigned size = GLUE_MAX_WRITE;
	char opt[32];

	if (g->max_read)
		return 0;
	while (size > GLUE_READAHEAD_STEP && !glue_splice_fits(&probe, size))
		size -= GLUE_READAHEAD_STEP;
	if (size == GLUE_MAX_WRITE || !glue_splice_fits(&probe, size))
		return 0;
	snprintf(opt, sizeof(opt), "-omax_read=%u", size);
	if (fuse_opt_add_arg(args, opt))
		return -1;
	g->max_read = size;
	return 0;
}

void glue_init_conn(struct glue *g, struct fuse_conn_info *conn,
		    unsigned want, unsigned dontwant)
{
	/*
	 * With POSIX ACLs the kernel checks ACLs itself, and with DONT_MASK
	 * it leaves the umask to us, so that a parent's default ACL can
	 * replace it. POSIX ACLs also force permission checks, which
	 * fakeroot does not want.
	 */
	const unsigned acl = FUSE_CAP_POSIX_ACL | FUSE_CAP_DONT_MASK;

	want |= FUSE_CAP_ASYNC_READ | FUSE_CAP_IOCTL_DIR |
		FUSE_CAP_CACHE_SYMLINKS;
	if (!g->fakeroot && (conn->capable & acl) == acl)
		want |= acl;
	conn->want |= want & conn->capable;
	conn->want &= ~dontwant;
	conn->max_write = GLUE_MAX_WRITE;
	conn->max_readahead = GLUE_MAX_READAHEAD;
	/* The kernel rounds the times it sets or stamps itself likewise. */
	conn->time_gran = fs_time_gran(g->fs);
	conn->max_read = g->max_read;
	if (glue_conn_opts)
		fuse_apply_conn_info_opts(glue_conn_opts, conn);
	/*
	 * The writeback cache only where the front-end asked for it,
	 * whatever the command line says: the kernel then owns i_size and
	 * mtime and places O_APPEND writes itself, which the front-end has
	 * to follow (see glue_write_appends). And the kernel is left to
	 * clear setuid bits (HANDLE_KILLPRIV would make that the server's
	 * job on write, truncate and chown).
	 */
	if (!(want & FUSE_CAP_WRITEBACK_CACHE))
		conn->want &= ~FUSE_CAP_WRITEBACK_CACHE;
	conn->want &= ~FUSE_CAP_HANDLE_KILLPRIV;
	g->writeback = !!(conn->want & FUSE_CAP_WRITEBACK_CACHE);
	g->no_opendir = !!(conn->capable & FUSE_CAP_NO_OPENDIR_SUPPORT);
	g->splice = !!(conn->want & FUSE_CAP_SPLICE_WRITE);
	if (g->splice)
		g->splice_max = pipe_capacity();
	/* Readahead requests no larger than what splices: see above. */
	while (g->splice && conn->max_readahead > GLUE_READAHEAD_STEP &&
	       !glue_splice_fits(g, conn->max_readahead))
		conn->max_readahead -= GLUE_READAHEAD_STEP;
	g->server_umask = (conn->want & acl) == acl;
	tune_bdi(g, conn->max_readahead);
}

/*
 * Supplementary groups cost a read of /proc/PID/status in libfuse, so
 * they are fetched only when the core asks.
 */
static int glue_in_group(const struct fs_cred *cred, gid_t want)
{
	gid_t groups[256];
	int i, n;

	if (cred->priv)
		n = fuse_req_getgroups(cred->priv, 256, groups);
	else
		n = fuse_getgroups(256, groups);
	for (i = 0; i < n && i < 256; i++)
		if (groups[i] == want)
			return 1;
	return 0;
}

void glue_cred(const struct glue *g, fuse_req_t req, uid_t uid, gid_t gid,
	       mode_t umask, struct fs_cred *cred)
{
	cred->uid = g->fakeroot ? 0 : uid;
	cred->gid = g->fakeroot ? 0 : gid;
	/* Without DONT_MASK the kernel already applied it. */
	cred->umask = g->server_umask ? umask : 0;
	cred->in_group = glue_in_group;
	cred->priv = req;
}

static struct glue_handle *handle_of(struct glue_file *gf)
{
	return (struct glue_handle *)((char *)gf -
				      offsetof(struct glue_handle, file));
}

uint64_t glue_file_new(ext2_ino_t ino, int flags, unsigned opts)
{
	struct glue_handle *h = malloc(sizeof(*h));
	struct glue_file *gf;

	if (!h)
		return 0;
	gf = &h->file;
	gf->magic = GLUE_FILE_MAGIC;
	gf->ino = ino;
	gf->flags = flags;
	gf->opts = opts;
	gf->path = NULL;
	gf->wb_error = 0;
	pthread_mutex_lock(&handles_lock);
	h->next = handles.next;
	h->prev = &handles;
	h->next->prev = h;
	handles.next = h;
	pthread_mutex_unlock(&handles_lock);
	return (uintptr_t)gf;
}

struct glue_file *glue_file_get(uint64_t fh)
{
	struct glue_file *gf = (struct glue_file *)(uintptr_t)fh;

	if (!gf || (fh & GLUE_INO_FH) || gf->magic != GLUE_FILE_MAGIC)
		return NULL;
	return gf;
}

void glue_file_free(uint64_t fh)
{
	struct glue_file *gf = glue_file_get(fh);
	struct glue_handle *h;

	if (!gf)
		return;
	h = handle_of(gf);
	pthread_mutex_lock(&handles_lock);
	h->prev->next = h->next;
	h->next->prev = h->prev;
	pthread_mutex_unlock(&handles_lock);
	gf->magic = 0;
	free(gf->path);
	free(h);
}

int glue_open_opts(struct glue *g, ext2_ino_t ino, int flags,
		   const struct fs_cred *cred, const struct stat *st,
		   unsigned *opts)
{
	int writing = (flags & O_ACCMODE) != O_RDONLY;
	struct stat sbuf;
	uint32_t iflags;
	int ret;

	*opts = 0;
	if (flags & O_DIRECT)
		*opts |= GLUE_FILE_DIRECT;
	if (!writing)
		return 0;
	/*
	 * The kernel clears setuid, and setgid only with group exec, before
	 * a write; the core also applies the newer rule (setgid cleared when
	 * the writer is not in the file's group). That needs the writer's
	 * credentials on the WRITE, which cached writes do not carry, and a
	 * kernel told that the mode changed.
	 */
	if (cred->uid) {
		if (!st) {
			ret = inode_getattr(g->fs, ino, &sbuf);
			if (ret)
				return ret;
			st = &sbuf;
		}
		if (st->st_mode & (S_ISUID | S_ISGID))
			*opts |= GLUE_FILE_DIRECT | GLUE_FILE_KILLPRIV;
	}
	/*
	 * The kernel knows nothing of append-only inodes: cached writes of
	 * such a file would reach the server as positioned ones, which it
	 * must refuse.
	 */
	if (g->writeback) {
		ret = ioctl_getflags(g->fs, ino, &iflags);
		if (ret)
			return ret;
		if (iflags & FS_APPEND_FL)
			*opts |= GLUE_FILE_DIRECT | GLUE_FILE_APPEND_ONLY;
	}
	return 0;
}

int glue_write_appends(const struct glue *g, const struct glue_file *gf,
		       const struct fuse_file_info *fi)
{
	/* Cached writes carry no flags and always their own offset. */
	if (!(fi->flags & O_APPEND) || fi->writepage)
		return 0;
	/*
	 * With the writeback cache the kernel's i_size is the true one (the
	 * server's lags behind cached writes) and the kernel placed the
	 * write at it.
	 */
	return !g->writeback || (gf && (gf->opts & GLUE_FILE_APPEND_ONLY));
}

int glue_create(struct glue *g, ext2_ino_t dir, const char *name,
		mode_t mode, int flags, const struct fs_cred *cred,
		ext2_ino_t *ino, struct stat *st)
{
	int ret;

	ret = namei_mknod(g->fs, dir, name, S_IFREG | (mode & ~S_IFMT), 0,
			  cred, st);
	if (!ret) {
		/* Nothing to truncate in a new file. */
		flags &= ~O_TRUNC;
	} else if (ret == -EEXIST && !(flags & O_EXCL)) {
		ret = namei_lookup(g->fs, dir, name, ino, st);
	}
	if (ret)
		return ret;
	*ino = st->st_ino;
	ret = file_open(g->fs, *ino, flags, cred);
	if (ret || !(flags & O_TRUNC))
		return ret;
	return inode_getattr(g->fs, *ino, st);
}

/*
 * The FS_XFLAG_* bits with an FS_*_FL twin, paired as the kernel pairs
 * them. The kernel asks FS_IOC_FSGETXATTR before every chattr, so that
 * view of the flags must work too.
 */
static const struct {
	uint32_t fl;
	uint32_t xflag;
} xflag_map[] = {
	{ FS_SYNC_FL, FS_XFLAG_SYNC },
	{ FS_IMMUTABLE_FL, FS_XFLAG_IMMUTABLE },
	{ FS_APPEND_FL, FS_XFLAG_APPEND },
	{ FS_NODUMP_FL, FS_XFLAG_NODUMP },
	{ FS_NOATIME_FL, FS_XFLAG_NOATIME },
	{ FS_DAX_FL, FS_XFLAG_DAX },
	{ FS_PROJINHERIT_FL, FS_XFLAG_PROJINHERIT },
};

static int fsgetxattr(struct glue *g, ext2_ino_t ino, struct fsxattr *fa)
{
	uint32_t flags;
	size_t i;
	int ret;

	ret = ioctl_getflags(g->fs, ino, &flags);
	if (ret)
		return ret;
	memset(fa, 0, sizeof(*fa));
	for (i = 0; i < sizeof(xflag_map) / sizeof(xflag_map[0]); i++)
		if (flags & xflag_map[i].fl)
			fa->fsx_xflags |= xflag_map[i].xflag;
	return 0;
}

/* Only what maps onto inode flags; no project ids or extent sizes. */
static int fssetxattr(struct glue *g, ext2_ino_t ino, const struct fsxattr *fa,
		      const struct fs_cred *cred)
{
	uint32_t flags, xflags = fa->fsx_xflags;
	size_t i;
	int ret;

	if (fa->fsx_projid || fa->fsx_extsize || fa->fsx_cowextsize)
		return -EOPNOTSUPP;
	ret = ioctl_getflags(g->fs, ino, &flags);
	if (ret)
		return ret;
	for (i = 0; i < sizeof(xflag_map) / sizeof(xflag_map[0]); i++) {
		flags &= ~xflag_map[i].fl;
		if (xflags & xflag_map[i].xflag)
			flags |= xflag_map[i].fl;
		xflags &= ~xflag_map[i].xflag;
	}
	if (xflags)
		return -EOPNOTSUPP;
	return ioctl_setflags(g->fs, ino, flags, cred);
}

/* FITRIM's range is read and written back with len = bytes trimmed. */
static int fitrim(struct glue *g, const void *in, size_t in_size, void *out,
		  size_t out_size, size_t *out_len, const struct fs_cred *cred)
{
	struct fstrim_range r;
	uint64_t len;
	int ret;

	if (in_size < sizeof(r) || out_size < sizeof(r))
		return -EINVAL;
	memcpy(&r, in, sizeof(r));
	len = r.len;
	ret = ioctl_fitrim(g->fs, r.start, &len, r.minlen, cred);
	if (ret)
		return ret;
	r.len = len;
	memcpy(out, &r, sizeof(r));
	*out_len = sizeof(r);
	return 0;
}

int glue_ioctl(struct glue *g, ext2_ino_t ino, unsigned cmd,
	       const void *in, size_t in_size, void *out, size_t out_size,
	       size_t *out_len, const struct fs_cred *cred)
{
	struct fsxattr fa;
	uint32_t v;
	int ret;

	*out_len = 0;
	switch (cmd) {
	case FS_IOC_GETFLAGS:
	case FS_IOC32_GETFLAGS:
		if (out_size < sizeof(v))
			return -EINVAL;
		ret = ioctl_getflags(g->fs, ino, &v);
		break;
	case FS_IOC_SETFLAGS:
	case FS_IOC32_SETFLAGS:
		if (in_size < sizeof(v))
			return -EINVAL;
		memcpy(&v, in, sizeof(v));
		return ioctl_setflags(g->fs, ino, v, cred);
	case FS_IOC_GETVERSION:
	case FS_IOC32_GETVERSION:
		if (out_size < sizeof(v))
			return -EINVAL;
		ret = ioctl_getversion(g->fs, ino, &v);
		break;
	case FS_IOC_FSGETXATTR:
		if (out_size < sizeof(fa))
			return -EINVAL;
		ret = fsgetxattr(g, ino, &fa);
		if (ret)
			return ret;
		memcpy(out, &fa, sizeof(fa));
		*out_len = sizeof(fa);
		return 0;
	case FS_IOC_FSSETXATTR:
		if (in_size < sizeof(fa))
			return -EINVAL;
		memcpy(&fa, in, sizeof(fa));
		return fssetxattr(g, ino, &fa, cred);
	case FITRIM:
		return fitrim(g, in, in_size, out, out_size, out_len, cred);
	default:
		return -ENOTTY;
	}
	if (ret)
		return ret;
	/* Callers that must return all of out get no stale bytes. */
	memset(out, 0, out_size);
	memcpy(out, &v, sizeof(v));
	*out_len = sizeof(v);
	return 0;
}
