/*
 * What both servers do beneath libfuse, through its custom io hooks on
 * /dev/fuse: count every request by opcode (so fuse2fs counts what the
 * kernel sends, not the high-level API's path operations), negotiate
 * INIT flags libfuse 3.14 does not know (g->init_want), and for fuse2fs
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

/* libfuse reads each request whole: the header comes first. */
static ssize_t counting_read(int fd, void *buf, size_t len, void *userdata)
{
	ssize_t n = read(fd, buf, len);
	const struct fuse_in_header *h = buf;
	unsigned slot;

	(void)userdata;
	if (n < (ssize_t)sizeof(*h))
		return n;
	slot = h->opcode < OPCODE_SLOTS ? h->opcode : SLOT_OTHER;
	atomic_fetch_add_explicit(&counts[slot], 1, memory_order_relaxed);
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
