/*
 * FUSE glue shared by fuse2fs (high-level API) and fuse4fs (low-level API):
 * command line, mount and session loop, credentials, connection setup,
 * open-file handles and the ioctls both servers answer. Everything here is
 * the same for both front-ends; what differs stays in their own files.
 */
#ifndef MISC_FUSE_GLUE_H
#define MISC_FUSE_GLUE_H

#include <stdint.h>
#include <stdio.h>

#include <fuse.h>
#include <fuse_lowlevel.h>

#include "core/core.h"

/* One per process: parsed options, the open filesystem, negotiated state. */
struct glue {
	const char *progname;        /* "fuse2fs" or "fuse4fs" */
	struct fs_options fsopts;    /* handed to fs_open */
	struct fuse_cmdline_opts cmd; /* -f, -s, -d and the mountpoint */
	struct fs *fs;
	char *device;                /* as given, for messages */
	int fakeroot;
	int allow_root;
	unsigned max_read;           /* -o max_read=, 0 if not given */
	int server_umask;            /* kernel leaves umask to us (DONT_MASK) */
	struct fuse_session *se;     /* for notifications to the kernel */
	/*
	 * Negotiated at init: the kernel caches writes and owns i_size and
	 * mtime (WRITEBACK_CACHE); the kernel goes on without OPENDIR when
	 * it is answered with ENOSYS (NO_OPENDIR_SUPPORT).
	 */
	int writeback;
	int no_opendir;
	/*
	 * Replies may splice data (SPLICE_WRITE), through a pipe of at most
	 * splice_max bytes: bigger ones libfuse copies through a buffer.
	 */
	int splice;
	size_t splice_max;
	/*
	 * INIT flags of the FUSE protocol that libfuse 3.14 does not know
	 * (GLUE_INIT_*): the front-end's wish, set before glue_run, and what
	 * the kernel granted, known when the front-end's init runs (see
	 * fuse_io.c).
	 */
	uint64_t init_want;
	uint64_t init_got;
	/* Set before glue_run: see struct glue_below_ops (fuse_io.c). */
	const struct glue_below_ops *below;
	/* fuse2fs: GETATTR of open nodes without a path (fuse_open_nodes.c). */
	int track_open_nodes;
};

/*
 * The kernel leaves clearing setuid/setgid on write, truncate and chown
 * to the server (the core does it by the caller's credentials) and in
 * exchange marks inodes it found free of them and of file capabilities,
 * instead of asking for security.capability before every write(2). It
 * no longer refreshes its cached mode after such a write, so the
 * front-end must (GLUE_FILE_KILLPRIV).
 */
#define GLUE_INIT_KILLPRIV_V2        (1ull << 28)
/* Shared mmap of files opened with direct_io (kernels since 6.6). */
#define GLUE_INIT_DIRECT_IO_MMAP     (1ull << 36)

/*
 * A spliced read reply has at most GLUE_READ_SEGS extents, and holes go
 * out as pieces of a GLUE_ZERO_PIECE buffer of zeros.
 */
#define GLUE_READ_SEGS 32
#define GLUE_ZERO_PIECE (64u << 10)
/*
 * Whether a read reply of size bytes fits the pipe libfuse splices
 * through, by the room libfuse asks for: a page per buffer beyond the
 * data and header. What does not fit, libfuse copies through a buffer.
 */
int glue_splice_fits(const struct glue *g, size_t size);
/*
 * Without CAP_SYS_RESOURCE a pipe holds at most pipe-max-size (1 MiB by
 * default): too little for a 1 MiB read reply and the page slots libfuse
 * reserves, so such replies would be copied twice instead of spliced.
 * Unless -o max_read was given, caps reads (a mount option: the kernel
 * splits larger ones) at the largest size that splices. Call before
 * fuse_session_new. Cold 1 GiB sequential read (fio, which asks for
 * sequential readahead): 740-840 -> 1000+ MiB/s.
 */
int glue_fit_reads_to_pipe(struct glue *g, struct fuse_args *args);

/*
 * Parses the command line into g and leaves in args what FUSE must see
 * (its own options plus fsname, subtype, default_permissions,
 * allow_other). fuse_help prints the front-end's FUSE options for --help.
 * Returns 0 to go on, 1 when --help or --version was answered (exit 0),
 * -1 after printing one line about a bad command line (exit 1).
 */
int glue_parse_args(struct glue *g, struct fuse_args *args,
		    const char *progname,
		    void (*fuse_help)(struct fuse_args *));

/*
 * Opens the filesystem, mounts it on the session, daemonizes unless -f,
 * runs the session loop (multi-threaded unless -s; through f when the
 * high-level API is used, else on se), unmounts and closes the
 * filesystem. Returns the process exit status; errors before mounting
 * print one line.
 */
int glue_run(struct glue *g, struct fuse_session *se, struct fuse *f);

/* Frees what glue_parse_args allocated, args included. */
void glue_done(struct glue *g, struct fuse_args *args);

/*
 * Connection setup for both front-ends: POSIX ACLs (and with them umask
 * handling in the server), large writes and read-ahead, async reads,
 * ioctls on directories, the filesystem's timestamp granularity; the
 * writeback cache only if asked for in want. want/dontwant add what
 * differs. Records what was negotiated in g.
 */
void glue_init_conn(struct glue *g, struct fuse_conn_info *conn,
		    unsigned want, unsigned dontwant);

/* The caller's credentials as the core wants them. */
/* req: the low-level request, or NULL in the high-level API's context. */
void glue_cred(const struct glue *g, fuse_req_t req, uid_t uid, gid_t gid,
	       mode_t umask, struct fs_cred *cred);

/*
 * What fi->fh points to for open files and directories: the inode (so IO
 * never resolves a name again), the open flags and how the open is
 * served (GLUE_FILE_*).
 */
#define GLUE_FILE_MAGIC 0x4f46344fu /* "O4FO" */

/* Bypass the page cache (fi->direct_io). */
#define GLUE_FILE_DIRECT      (1u << 0)
/*
 * The inode is append-only: O_APPEND writes go at the server's EOF even
 * under the writeback cache (such opens bypass the cache, so the kernel's
 * i_size and the server's agree).
 */
#define GLUE_FILE_APPEND_ONLY (1u << 1)
/*
 * A writer that is not root on a setuid/setgid file: the core clears the
 * bits on write by the writer's credentials, so writes must reach it
 * uncached (GLUE_FILE_DIRECT too) and the kernel's cached mode be
 * dropped after each.
 */
#define GLUE_FILE_KILLPRIV    (1u << 2)

struct glue_file {
	uint32_t magic;
	ext2_ino_t ino;
	int flags;
	unsigned opts;
	/*
	 * fuse2fs, GLUE_FILE_KILLPRIV opens: the path opened, to find the
	 * kernel's node (the high-level API gives no node ids). Freed with
	 * the handle.
	 */
	char *path;
	/*
	 * fuse4fs, writeback cache: -errno of a cached write that failed
	 * (ENOSPC...), until reported (atomic: set and taken on different
	 * threads).
	 */
	int wb_error;
};

/* Returns the new handle's fh value, or 0 without memory. */
uint64_t glue_file_new(ext2_ino_t ino, int flags, unsigned opts);
/* NULL if fh is not one of ours (a bug in the caller or in libfuse). */
struct glue_file *glue_file_get(uint64_t fh);
void glue_file_free(uint64_t fh);

/*
 * How an open of regular file ino with open(2) flags by cred is served:
 * GLUE_FILE_* bits in *opts. st: the inode's attributes if the caller
 * has them, else NULL. 0 or -errno.
 */
int glue_open_opts(struct glue *g, ext2_ino_t ino, int flags,
		   const struct fs_cred *cred, const struct stat *st,
		   unsigned *opts);

/*
 * Does this write (fi: the WRITE request's, whose flags are the file's
 * current f_flags) go at the server's EOF rather than at its offset?
 * gf: the handle, or NULL.
 */
int glue_write_appends(const struct glue *g, const struct glue_file *gf,
		       const struct fuse_file_info *fi);

/*
 * create(2) as FUSE asks for it: makes a regular file, or opens the
 * existing one when O_EXCL is not set, then checks it can be opened with
 * flags. Fills *ino and *st.
 */
int glue_create(struct glue *g, ext2_ino_t dir, const char *name,
		mode_t mode, int flags, const struct fs_cred *cred,
		ext2_ino_t *ino, struct stat *st);

/*
 * The file ioctls both servers answer: GETFLAGS, SETFLAGS, GETVERSION
 * (native and 32-bit numbers; the values are 32-bit ints) and
 * FSGETXATTR/FSSETXATTR for the flags they share, and FITRIM (on any
 * inode, as ext4 takes it on any file of the fs). in/in_size is the
 * caller's argument, out/out_size the room for the result; *out_len gets
 * the bytes written to out. -ENOTTY for anything else.
 */
int glue_ioctl(struct glue *g, ext2_ino_t ino, unsigned cmd,
	       const void *in, size_t in_size, void *out, size_t out_size,
	       size_t *out_len, const struct fs_cred *cred);

/* ---- fuse_open_nodes.c: fstat of unlinked open files (fuse2fs) ---- */

/* Tags a file handle that is an inode number, not a struct glue_file. */
#define GLUE_INO_FH (1ull << 63)

/*
 * Called by fuse_io.c when g->track_open_nodes is set: with each request
 * before libfuse reads it, and with each reply before it is written.
 * They note open nodes and give their GETATTRs a GLUE_INO_FH handle.
 * glue_nodes_reply returns the node id it noted as opened (0 if none),
 * to be given to glue_nodes_unreply if the kernel refuses the reply.
 */
void glue_nodes_request(void *buf, size_t len);
uint64_t glue_nodes_reply(const struct iovec *iov, int count);
void glue_nodes_unreply(uint64_t nodeid);
/* 1 and *ino if fh is a GLUE_INO_FH handle, else 0. */
int glue_fh_ino(uint64_t fh, ext2_ino_t *ino);

/* ---- fuse_io.c: beneath libfuse (request counters, INIT flags) ---- */

/* A FUSE_TMPFILE answered: the entry and the open file it hands out. */
struct glue_tmpfile {
	uint64_t node;   /* node id of the new inode */
	struct stat st;
	double timeout;  /* of the entry and its attributes */
	uint64_t fh;
	int direct_io;
	int keep_cache;
};

/*
 * Requests libfuse 3.14 cannot decode, answered beneath it by fuse_io.c
 * through these front-end callbacks (0 or -errno). A front-end without
 * them (g->below NULL) leaves those requests to libfuse, which answers
 * ENOSYS: the kernel then stops sending them and falls back (GETATTR
 * without birth time; O_TMPFILE fails with EOPNOTSUPP).
 */
struct glue_below_ops {
	/* FUSE_STATX of node; *timeout: how long the kernel may cache it. */
	int (*statx)(struct glue *g, uint64_t node, struct fs_statx *sx,
		     double *timeout);
	/*
	 * FUSE_TMPFILE in dir: creates and opens the file with open(2)
	 * flags, filling *t; the kernel holds a lookup reference on the
	 * node once the reply is sent.
	 */
	int (*tmpfile)(struct glue *g, uint64_t dir, mode_t mode, int flags,
		       const struct fs_cred *cred, struct glue_tmpfile *t);
	/* The reply did not reach the kernel: gives back what t holds. */
	void (*tmpfile_undo)(struct glue *g, const struct glue_tmpfile *t);
};

/*
 * Counts every request the session reads, by opcode, adds the INIT
 * flags libfuse does not know (g->init_want) and answers through
 * g->below what libfuse cannot (FUSE_STATX, FUSE_TMPFILE). Call right after
 * fuse_session_mount. 0, or -1 after printing why.
 */
int glue_stats_attach(struct glue *g, struct fuse_session *se);
/*
 * Starts the thread that prints the counters on SIGUSR1. Call after
 * daemonizing and before the session loop starts its threads. 0 or -1.
 */
int glue_stats_start(struct glue *g);
void glue_stats_stop(struct glue *g);
/*
 * "requests OPCODE COUNT" lines (counts since mount, nonzero ones), a
 * "requests total COUNT" line, then the core's cache counters.
 */
void glue_stats_print(struct glue *g, FILE *f);

#endif
