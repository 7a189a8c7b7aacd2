/*
 * FUSE glue shared by fuse2fs (high-level API) and fuse4fs (low-level API):
 * command line, mount and session loop, credentials, connection setup,
 * open-file handles and the ioctls both servers answer. Everything here is
 * the same for both front-ends; what differs stays in their own files.
 */
#ifndef MISC_FUSE_GLUE_H
#define MISC_FUSE_GLUE_H

#include <stdint.h>

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
};

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
 * handling in the server), large writes, async reads, ioctls on
 * directories, no writeback cache. want/dontwant add what differs.
 */
void glue_init_conn(struct glue *g, struct fuse_conn_info *conn,
		    unsigned want, unsigned dontwant);

/* The caller's credentials as the core wants them. */
/* req: the low-level request, or NULL in the high-level API's context. */
void glue_cred(const struct glue *g, fuse_req_t req, uid_t uid, gid_t gid,
	       mode_t umask, struct fs_cred *cred);

/*
 * What fi->fh points to for open files and directories: the inode (so IO
 * never resolves a name again) and the open flags (O_APPEND).
 */
#define GLUE_FILE_MAGIC 0x4f46344fu /* "O4FO" */

struct glue_file {
	uint32_t magic;
	ext2_ino_t ino;
	int flags;
};

/* Returns the new handle's fh value, or 0 without memory. */
uint64_t glue_file_new(ext2_ino_t ino, int flags);
/* NULL if fh is not one of ours (a bug in the caller or in libfuse). */
struct glue_file *glue_file_get(uint64_t fh);
void glue_file_free(uint64_t fh);

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
 * FSGETXATTR/FSSETXATTR for the flags they share. in/in_size is the
 * caller's argument, out/out_size the room for the result; *out_len gets
 * the bytes written to out. -ENOTTY for anything else.
 */
int glue_ioctl(struct glue *g, ext2_ino_t ino, unsigned cmd,
	       const void *in, size_t in_size, void *out, size_t out_size,
	       size_t *out_len, const struct fs_cred *cred);

#endif
