/*
 * What both servers do beneath libfuse, through its custom io hooks on
 * /dev/fuse: count every request by opcode (so fuse2fs counts what the
 * kernel sends, not the high-level API's path operations), negotiate
 * INIT flags libfuse 3.14 does not know (g->init_want), answer the
 * requests it cannot decode (FUSE_STATX, FUSE_TMPFILE) through the
 * front-end's g->below, replying on /dev/fuse directly, and for fuse2fs
 * show open nodes' GETATTRs to fuse_open_nodes.c. The counts and
 * the core's cache counters are printed on SIGUSR1, by a thread of their
 * own, and at unmount under -o debug.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <sys/sysmacros.h>
#include <sys/uio.h>

#include <linux/fuse.h>

#include "fuse_glue.h"

/* Opcodes of the FUSE protocol have small numbers; CUSE's go to OTHER. */
#define OPCODE_SLOTS 64
#define SLOT_OTHER OPCODE_SLOTS

static const char *const opcode_names[OPCODE_SLOTS + 1] = {
	[FUSE_LOOKUP] = "LOOKUP",
	[FUSE_FORGET] = "FORGET",
	[FUSE_GETATTR] = "GETATTR",
	[FUSE_SETATTR] = "SETATTR",
	[FUSE_READLINK] = "READLINK",
	[FUSE_SYMLINK] = "SYMLINK",
	[FUSE_MKNOD] = "MKNOD",
	[FUSE_MKDIR] = "MKDIR",
	[FUSE_UNLINK] = "UNLINK",
	[FUSE_RMDIR] = "RMDIR",
	[FUSE_RENAME] = "RENAME",
	[FUSE_LINK] = "LINK",
	[FUSE_OPEN] = "OPEN",
	[FUSE_READ] = "READ",
	[FUSE_WRITE] = "WRITE",
	[FUSE_STATFS] = "STATFS",
	[FUSE_RELEASE] = "RELEASE",
	[FUSE_FSYNC] = "FSYNC",
	[FUSE_SETXATTR] = "SETXATTR",
	[FUSE_GETXATTR] = "GETXATTR",
	[FUSE_LISTXATTR] = "LISTXATTR",
	[FUSE_REMOVEXATTR] = "REMOVEXATTR",
	[FUSE_FLUSH] = "FLUSH",
	[FUSE_INIT] = "INIT",
	[FUSE_OPENDIR] = "OPENDIR",
	[FUSE_READDIR] = "READDIR",
	[FUSE_RELEASEDIR] = "RELEASEDIR",
	[FUSE_FSYNCDIR] = "FSYNCDIR",
	[FUSE_GETLK] = "GETLK",
	[FUSE_SETLK] = "SETLK",
	[FUSE_SETLKW] = "SETLKW",
	[FUSE_ACCESS] = "ACCESS",
	[FUSE_CREATE] = "CREATE",
	[FUSE_INTERRUPT] = "INTERRUPT",
	[FUSE_BMAP] = "BMAP",
	[FUSE_DESTROY] = "DESTROY",
	[FUSE_IOCTL] = "IOCTL",
	[FUSE_POLL] = "POLL",
	[FUSE_NOTIFY_REPLY] = "NOTIFY_REPLY",
	[FUSE_BATCH_FORGET] = "BATCH_FORGET",
	[FUSE_FALLOCATE] = "FALLOCATE",
	[FUSE_READDIRPLUS] = "READDIRPLUS",
	[FUSE_RENAME2] = "RENAME2",
	[FUSE_LSEEK] = "LSEEK",
	[FUSE_COPY_FILE_RANGE] = "COPY_FILE_RANGE",
	[FUSE_SETUPMAPPING] = "SETUPMAPPING",
	[FUSE_REMOVEMAPPING] = "REMOVEMAPPING",
	[FUSE_SYNCFS] = "SYNCFS",
	[FUSE_TMPFILE] = "TMPFILE",
	/* Newer than Debian 12's <linux/fuse.h>. */
	[52] = "STATX",
	[53] = "COPY_FILE_RANGE_64",
	[SLOT_OTHER] = "OTHER",
};

static atomic_ullong counts[OPCODE_SLOTS + 1];

/*
 * FUSE_STATX (protocol 7.39): newer than Debian 12's <linux/fuse.h>, so
 * its wire structures are spelled out here, as the kernel's uapi header
 * lays them out (the statx part is bit for bit struct statx).
 */
#define IO_FUSE_STATX 52

struct io_sx_time {
	int64_t tv_sec;
	uint32_t tv_nsec;
	int32_t reserved;
};

struct io_statx {
	uint32_t mask;
	uint32_t blksize;
	uint64_t attributes;
	uint32_t nlink;
	uint32_t uid;
	uint32_t gid;
	uint16_t mode;
	uint16_t spare0;
	uint64_t ino;
	uint64_t size;
	uint64_t blocks;
	uint64_t attributes_mask;
	struct io_sx_time atime;
	struct io_sx_time btime;
	struct io_sx_time ctime;
	struct io_sx_time mtime;
	uint32_t rdev_major;
	uint32_t rdev_minor;
	uint32_t dev_major;
	uint32_t dev_minor;
	uint64_t spare2[14];
};

struct io_statx_in {
	uint32_t getattr_flags;
	uint32_t reserved;
	uint64_t fh;
	uint32_t sx_flags;
	uint32_t sx_mask;
};

struct io_statx_out {
	uint64_t attr_valid;
	uint32_t attr_valid_nsec;
	uint32_t flags;
	uint64_t spare[2];
	struct io_statx stat;
};

_Static_assert(sizeof(struct io_statx) == 256, "struct statx layout");
_Static_assert(sizeof(struct io_statx_out) == 288, "fuse_statx_out layout");

/*
 * The INIT flags to add to the reply with this unique id: what the
 * front-end wants (g->init_want) and the kernel offered. INIT comes
 * first and alone, so these are set and cleared before any other
 * request runs.
 */
static struct glue *init_glue;
static uint64_t init_unique;
static int init_patch;

static sem_t stats_wake;
static volatile sig_atomic_t stats_wanted;
static volatile sig_atomic_t stats_stopping;
static pthread_t stats_tid;
static int stats_running;

/*
 * A reply written here, beneath libfuse: header and body in one writev.
 * 0, or -errno if the kernel did not take it (the request was
 * interrupted, or the connection is gone).
 */
static int reply_below(int fd, uint64_t unique, int error,
		       struct iovec *body, int nbody)
{
	struct fuse_out_header out = { .unique = unique, .error = error };
	struct iovec iov[3];
	size_t len = sizeof(out);
	int i;

	iov[0] = (struct iovec){ .iov_base = &out, .iov_len = sizeof(out) };
	for (i = 0; i < nbody && !error; i++) {
		iov[i + 1] = body[i];
		len += body[i].iov_len;
	}
	out.len = len;
	if (writev(fd, iov, error ? 1 : nbody + 1) < 0)
		return -errno;
	return 0;
}

static void set_sx_time(struct io_sx_time *t, const struct timespec *ts)
{
	t->tv_sec = ts->tv_sec;
	t->tv_nsec = ts->tv_nsec;
}

static void set_valid(uint64_t *sec, uint32_t *nsec, double timeout)
{
	*sec = (uint64_t)timeout;
	*nsec = (uint32_t)((timeout - (double)*sec) * 1e9);
}

static void answer_statx(struct glue *g, int fd,
			 const struct fuse_in_header *h)
{
	struct io_statx_out out;
	struct io_statx *x = &out.stat;
	struct fs_statx sx;
	struct iovec body = { .iov_base = &out, .iov_len = sizeof(out) };
	double timeout;
	int ret;

	ret = g->below->statx(g, h->nodeid, &sx, &timeout);
	if (ret) {
		reply_below(fd, h->unique, ret, NULL, 0);
		return;
	}
	memset(&out, 0, sizeof(out));
	set_valid(&out.attr_valid, &out.attr_valid_nsec, timeout);
	/* All basic fields whatever was asked: the kernel requires them. */
	x->mask = STATX_BASIC_STATS | (sx.has_btime ? STATX_BTIME : 0);
	x->blksize = sx.st.st_blksize;
	x->attributes = sx.attributes;
	x->attributes_mask = sx.attributes_mask;
	x->nlink = sx.st.st_nlink;
	x->uid = sx.st.st_uid;
	x->gid = sx.st.st_gid;
	x->mode = sx.st.st_mode;
	x->ino = sx.st.st_ino;
	x->size = sx.st.st_size;
	x->blocks = sx.st.st_blocks;
	set_sx_time(&x->atime, &sx.st.st_atim);
	set_sx_time(&x->mtime, &sx.st.st_mtim);
	set_sx_time(&x->ctime, &sx.st.st_ctim);
	if (sx.has_btime)
		set_sx_time(&x->btime, &sx.btime);
	x->rdev_major = major(sx.st.st_rdev);
	x->rdev_minor = minor(sx.st.st_rdev);
	reply_below(fd, h->unique, 0, &body, 1);
}

static void fill_attr(struct fuse_attr *a, const struct stat *st)
{
	memset(a, 0, sizeof(*a));
	a->ino = st->st_ino;
	a->size = st->st_size;
	a->blocks = st->st_blocks;
	a->atime = st->st_atim.tv_sec;
	a->mtime = st->st_mtim.tv_sec;
	a->ctime = st->st_ctim.tv_sec;
	a->atimensec = st->st_atim.tv_nsec;
	a->mtimensec = st->st_mtim.tv_nsec;
	a->ctimensec = st->st_ctim.tv_nsec;
	a->mode = st->st_mode;
	a->nlink = st->st_nlink;
	a->uid = st->st_uid;
	a->gid = st->st_gid;
	a->rdev = st->st_rdev;
	a->blksize = st->st_blksize;
}

/*
 * FUSE_TMPFILE carries a fuse_create_in and a name (the kernel's "/"),
 * and is answered like CREATE: an entry and an open file.
 */
static void answer_tmpfile(struct glue *g, int fd,
			   const struct fuse_in_header *h, size_t n)
{
	const struct fuse_create_in *in = (const void *)(h + 1);
	struct fuse_entry_out entry;
	struct fuse_open_out open;
	struct glue_tmpfile t;
	struct fs_cred cred;
	struct iovec body[2] = {
		{ .iov_base = &entry, .iov_len = sizeof(entry) },
		{ .iov_base = &open, .iov_len = sizeof(open) },
	};
	int ret;

	if (n < sizeof(*h) + sizeof(*in)) {
		reply_below(fd, h->unique, -EINVAL, NULL, 0);
		return;
	}
	glue_cred(g, NULL, h->uid, h->gid, in->umask, &cred);
	/* Supplementary groups come from libfuse's request, which has none. */
	cred.in_group = NULL;
	memset(&t, 0, sizeof(t));
	ret = g->below->tmpfile(g, h->nodeid, in->mode, in->flags, &cred, &t);
	if (ret) {
		reply_below(fd, h->unique, ret, NULL, 0);
		return;
	}
	memset(&entry, 0, sizeof(entry));
	entry.nodeid = t.node;
	set_valid(&entry.entry_valid, &entry.entry_valid_nsec, t.timeout);
	set_valid(&entry.attr_valid, &entry.attr_valid_nsec, t.timeout);
	fill_attr(&entry.attr, &t.st);
	memset(&open, 0, sizeof(open));
	open.fh = t.fh;
	if (t.direct_io)
		open.open_flags |= FOPEN_DIRECT_IO;
	if (t.keep_cache)
		open.open_flags |= FOPEN_KEEP_CACHE;
	if (reply_below(fd, h->unique, 0, body, 2))
		g->below->tmpfile_undo(g, &t);
}

/* 1 if the request was answered here, 0 if it goes on to libfuse. */
static int answer_below(int fd, const struct fuse_in_header *h, size_t n)
{
	struct glue *g = init_glue;

	if (!g || !g->below)
		return 0;
	switch (h->opcode) {
	case IO_FUSE_STATX:
		if (!g->below->statx ||
		    n < sizeof(*h) + sizeof(struct io_statx_in))
			return 0;
		answer_statx(g, fd, h);
		return 1;
	case FUSE_TMPFILE:
		if (!g->below->tmpfile)
			return 0;
		answer_tmpfile(g, fd, h, n);
		return 1;
	}
	return 0;
}

/*
 * libfuse reads each request whole: the header comes first. What is
 * answered here is not returned: the next request is read instead.
 */
static ssize_t counting_read(int fd, void *buf, size_t len, void *userdata)
{
	const struct fuse_in_header *h = buf;
	unsigned slot;
	ssize_t n;

	(void)userdata;
	do {
		n = read(fd, buf, len);
		if (n < (ssize_t)sizeof(*h))
			return n;
		slot = h->opcode < OPCODE_SLOTS ? h->opcode : SLOT_OTHER;
		atomic_fetch_add_explicit(&counts[slot], 1,
					  memory_order_relaxed);
	} while (answer_below(fd, h, n));
	if (h->opcode == FUSE_INIT && init_glue && init_glue->init_want &&
	    n >= (ssize_t)(sizeof(*h) + sizeof(struct fuse_init_in))) {
		const struct fuse_init_in *in = (const void *)(h + 1);
		uint64_t offer = in->flags;

		/* Flags past bit 31 need the extended reply libfuse sends. */
		if (in->flags & FUSE_INIT_EXT)
			offer |= (uint64_t)in->flags2 << 32;
		init_glue->init_got = init_glue->init_want & offer;
		init_unique = h->unique;
		init_patch = !!init_glue->init_got;
	}
	if (init_glue && init_glue->track_open_nodes)
		glue_nodes_request(buf, (size_t)n);
	return n;
}

/*
 * libfuse builds the INIT reply as a header and the fuse_init_out it
 * knows, after the front-end's init has run; the flags it does not know
 * are added there.
 */
static void patch_init_reply(struct iovec *iov, int count)
{
	struct fuse_out_header *out = iov[0].iov_base;
	uint64_t got = init_glue->init_got;
	struct fuse_init_out *arg;

	if (count < 2 || iov[0].iov_len != sizeof(*out) ||
	    out->unique != init_unique)
		return;
	init_patch = 0;
	arg = iov[1].iov_base;
	if (out->error || iov[1].iov_len < offsetof(struct fuse_init_out,
						    flags2) +
					  sizeof(arg->flags2) ||
	    !(arg->flags & FUSE_INIT_EXT)) {
		init_glue->init_got = 0;
		return;
	}
	arg->flags |= (uint32_t)got;
	arg->flags2 |= (uint32_t)(got >> 32);
}

static ssize_t plain_writev(int fd, struct iovec *iov, int count,
			    void *userdata)
{
	uint64_t opened = 0;
	ssize_t n;

	(void)userdata;
	if (init_patch)
		patch_init_reply(iov, count);
	if (init_glue && init_glue->track_open_nodes)
		opened = glue_nodes_reply(iov, count);
	n = writev(fd, iov, count);
	/* A reply the kernel refused opened nothing. */
	if (n < 0 && opened)
		glue_nodes_unreply(opened);
	return n;
}

/*
 * Given, so that libfuse still offers splicing replies (it does not when
 * custom io lacks it). No splice_receive: requests must come through
 * counting_read, so the kernel is not offered SPLICE_READ.
 */
static ssize_t plain_splice_send(int fdin, off_t *offin, int fdout,
				 off_t *offout, size_t len, unsigned int flags,
				 void *userdata)
{
	(void)userdata;
	return splice(fdin, offin, fdout, offout, len, flags);
}

static const struct fuse_custom_io counting_io = {
	.read = counting_read,
	.writev = plain_writev,
	.splice_send = plain_splice_send,
};

int glue_stats_attach(struct glue *g, struct fuse_session *se)
{
	int ret;

	/*
	 * On the fd fuse_session_mount opened: the session keeps its mount
	 * point, so fuse_session_unmount still unmounts.
	 */
	init_glue = g;
	ret = fuse_session_custom_io(se, &counting_io, fuse_session_fd(se));
	if (ret < 0) {
		fprintf(stderr, "%s: cannot count requests: %s\n",
			g->progname, strerror(-ret));
		return -1;
	}
	return 0;
}

void glue_stats_print(struct glue *g, FILE *f)
{
	unsigned long long n, total = 0;
	unsigned i;

	for (i = 0; i <= OPCODE_SLOTS; i++) {
		n = atomic_load_explicit(&counts[i], memory_order_relaxed);
		if (!n)
			continue;
		if (opcode_names[i])
			fprintf(f, "requests %s %llu\n", opcode_names[i], n);
		else
			fprintf(f, "requests OP%u %llu\n", i, n);
		total += n;
	}
	fprintf(f, "requests total %llu\n", total);
	if (g->fs)
		fs_print_stats(g->fs, f);
	fflush(f);
}

/* Async-signal-safe: sem_post is, printing is not. */
static void on_usr1(int sig)
{
	(void)sig;
	stats_wanted = 1;
	sem_post(&stats_wake);
}

static void *stats_thread(void *arg)
{
	struct glue *g = arg;
	sigset_t usr1;

	sigemptyset(&usr1);
	sigaddset(&usr1, SIGUSR1);
	pthread_sigmask(SIG_UNBLOCK, &usr1, NULL);
	for (;;) {
		if (sem_wait(&stats_wake) && errno == EINTR)
			continue;
		if (stats_stopping)
			break;
		if (stats_wanted) {
			stats_wanted = 0;
			glue_stats_print(g, stderr);
		}
	}
	return NULL;
}

int glue_stats_start(struct glue *g)
{
	struct sigaction sa;
	sigset_t usr1;
	int err;

	if (sem_init(&stats_wake, 0, 0))
		return -1;
	/*
	 * Only the stats thread takes SIGUSR1: the threads libfuse starts
	 * later inherit the mask from this one, so no request handler is
	 * interrupted by it.
	 */
	sigemptyset(&usr1);
	sigaddset(&usr1, SIGUSR1);
	pthread_sigmask(SIG_BLOCK, &usr1, NULL);
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_usr1;
	sa.sa_flags = SA_RESTART;
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGUSR1, &sa, NULL))
		goto fail;
	stats_stopping = 0;
	err = pthread_create(&stats_tid, NULL, stats_thread, g);
	if (err) {
		signal(SIGUSR1, SIG_IGN);
		goto fail;
	}
	stats_running = 1;
	return 0;
fail:
	sem_destroy(&stats_wake);
	return -1;
}

void glue_stats_stop(struct glue *g)
{
	(void)g;
	if (!stats_running)
		return;
	/* A late SIGUSR1 must find a handler that has nothing to wake. */
	signal(SIGUSR1, SIG_IGN);
	stats_stopping = 1;
	sem_post(&stats_wake);
	pthread_join(stats_tid, NULL);
	sem_destroy(&stats_wake);
	stats_running = 0;
}
