/*
 * fuse4fs: the low-level (inode) FUSE front-end. FUSE node ids are ext2
 * inode numbers; every entry reply hands the kernel a core reference
 * (fs_iref_get) that forget gives back, so an unlinked inode lives as long
 * as the kernel can name it. Each handler turns one request into core
 * calls and replies exactly once; the logic is in lib/core.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <linux/fs.h>

#include "fuse_glue.h"

/*
 * How long the kernel may trust names and attributes. This server is the
 * only writer, and the kernel updates or invalidates its caches on its
 * own operations, so a timeout only bounds how long the few changes the
 * kernel cannot see stay invisible (atime stamped on a read, ctime of a
 * flags ioctl). A minute keeps those fresh enough while a busy tree still
 * costs about one lookup and one getattr per inode per minute.
 */
#define TIMEOUT 60.0

static struct glue *req_glue(fuse_req_t req)
{
	return fuse_req_userdata(req);
}

/*
 * The one translation between node ids and inode numbers: the FUSE root
 * and the ext2 root trade places. Swapping rather than mapping one way
 * keeps it a bijection, so a hostile directory entry naming inode 1
 * cannot alias the root.
 */
static ext2_ino_t node_to_ino(fuse_ino_t node)
{
	if (node == FUSE_ROOT_ID)
		return EXT2_ROOT_INO;
	if (node == EXT2_ROOT_INO)
		return FUSE_ROOT_ID;
	return node;
}

static fuse_ino_t ino_to_node(ext2_ino_t ino)
{
	if (ino == EXT2_ROOT_INO)
		return FUSE_ROOT_ID;
	if (ino == FUSE_ROOT_ID)
		return EXT2_ROOT_INO;
	return ino;
}

static void req_cred(fuse_req_t req, struct fs_cred *cred)
{
	const struct fuse_ctx *ctx = fuse_req_ctx(req);

	glue_cred(req_glue(req), req, ctx->uid, ctx->gid, ctx->umask, cred);
}

/* Core results are 0 or -errno; fuse_reply_err(req, 0) is success. */
static void reply_err(fuse_req_t req, int ret)
{
	fuse_reply_err(req, -ret);
}

static void fill_entry(struct fuse_entry_param *e, const struct stat *st)
{
	memset(e, 0, sizeof(*e));
	e->ino = ino_to_node(st->st_ino);
	e->attr = *st;
	e->attr_timeout = TIMEOUT;
	e->entry_timeout = TIMEOUT;
}

/*
 * Replies with an entry (or the error) and gives the kernel the lookup
 * reference it now holds; a reply the kernel did not take (interrupted
 * request) gives it back.
 */
static void reply_entry(fuse_req_t req, int ret, const struct stat *st)
{
	struct fs *fs = req_glue(req)->fs;
	struct fuse_entry_param e;

	if (ret) {
		reply_err(req, ret);
		return;
	}
	fill_entry(&e, st);
	fs_iref_get(fs, st->st_ino);
	if (fuse_reply_entry(req, &e))
		fs_iref_put(fs, st->st_ino, 1);
}

/*
 * Under the writeback cache the kernel keeps its own mtime and ctime of
 * regular files: after a SETATTR it shows the time it asked for, even
 * one ext4 cannot store and the core clamped (before 1901, after 2446,
 * after 2038 on small inodes). Only a fresh lookup shows the stored one,
 * so the name is dropped from the kernel's cache; the last name each
 * regular file was handed out under is kept for that. Direct-mapped and
 * best effort: a node whose slot was reused shows the stored time once
 * the kernel forgets it.
 */
#define NAME_SLOTS 1024

struct name_slot {
	fuse_ino_t node;
	fuse_ino_t parent;
	char name[EXT2_NAME_LEN + 1];
};

static struct name_slot name_slots[NAME_SLOTS];
static pthread_mutex_t name_lock = PTHREAD_MUTEX_INITIALIZER;

static void remember_name(struct glue *g, fuse_ino_t parent, const char *name,
			  const struct stat *st)
{
	fuse_ino_t node = ino_to_node(st->st_ino);
	struct name_slot *slot = &name_slots[node % NAME_SLOTS];

	if (!g->writeback || !S_ISREG(st->st_mode) ||
	    strlen(name) > EXT2_NAME_LEN)
		return;
	pthread_mutex_lock(&name_lock);
	slot->node = node;
	slot->parent = parent;
	strcpy(slot->name, name);
	pthread_mutex_unlock(&name_lock);
}

/*
 * Called before the SETATTR reply: the caller still holds the dentry, so
 * dropping it from the cache now frees the inode with the caller's last
 * reference, and nothing can look it up in between.
 */
static void forget_name(struct glue *g, fuse_ino_t node)
{
	struct name_slot *slot = &name_slots[node % NAME_SLOTS];
	char name[EXT2_NAME_LEN + 1];
	fuse_ino_t parent = 0;

	pthread_mutex_lock(&name_lock);
	if (slot->node == node) {
		parent = slot->parent;
		strcpy(name, slot->name);
		slot->node = 0;
	}
	pthread_mutex_unlock(&name_lock);
	if (parent)
		fuse_lowlevel_notify_inval_entry(g->se, parent, name,
						 strlen(name));
}

static void op_init(void *userdata, struct fuse_conn_info *conn)
{
	struct glue *g = userdata;
	unsigned want = FUSE_CAP_READDIRPLUS;

	/*
	 * Attributes with every listed name: no lookup per entry after ls.
	 * No EXPORT_SUPPORT: file handles would bring lookups of node ids
	 * the kernel holds no reference on, whose inodes may since have
	 * been freed and reused, and entries carry no generation number
	 * to tell the two apart. No AUTO_INVAL_DATA: this server is the
	 * only writer, so an mtime the kernel did not expect (its own
	 * writes) is no reason to drop the page cache.
	 *
	 * The writeback cache where the executor moves the data: the page
	 * cache absorbs small writes and sends them in large requests. The
	 * legacy path keeps write-through, as the reference it is.
	 */
	if (g->fsopts.iomap != FS_IOMAP_OFF)
		want |= FUSE_CAP_WRITEBACK_CACHE | FUSE_CAP_SPLICE_WRITE |
			FUSE_CAP_SPLICE_MOVE;
	glue_init_conn(g, conn, want,
		       FUSE_CAP_READDIRPLUS_AUTO | FUSE_CAP_EXPORT_SUPPORT |
		       FUSE_CAP_AUTO_INVAL_DATA);
}

static void op_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct fuse_entry_param e;
	struct stat st;
	ext2_ino_t ino;
	int ret;

	ret = namei_lookup(req_glue(req)->fs, node_to_ino(parent), name, &ino,
			   &st);
	if (ret == -ENOENT) {
		/* Node id 0: the kernel caches the name as absent. */
		memset(&e, 0, sizeof(e));
		e.entry_timeout = TIMEOUT;
		fuse_reply_entry(req, &e);
		return;
	}
	if (!ret)
		remember_name(req_glue(req), parent, name, &st);
	reply_entry(req, ret, &st);
}

static void op_forget(fuse_req_t req, fuse_ino_t node, uint64_t nlookup)
{
	fs_iref_put(req_glue(req)->fs, node_to_ino(node), nlookup);
	fuse_reply_none(req);
}

static void op_forget_multi(fuse_req_t req, size_t count,
			    struct fuse_forget_data *forgets)
{
	struct fs *fs = req_glue(req)->fs;
	size_t i;

	for (i = 0; i < count; i++)
		fs_iref_put(fs, node_to_ino(forgets[i].ino),
			    forgets[i].nlookup);
	fuse_reply_none(req);
}

static void op_getattr(fuse_req_t req, fuse_ino_t node,
		       struct fuse_file_info *fi)
{
	struct glue_file *gf = fi ? glue_file_get(fi->fh) : NULL;
	struct stat st;
	int ret;

	/* See op_write: a lost cached write fails the next write(2). */
	if (gf) {
		ret = __atomic_exchange_n(&gf->wb_error, 0, __ATOMIC_ACQ_REL);
		if (ret) {
			reply_err(req, ret);
			return;
		}
	}
	ret = inode_getattr(req_glue(req)->fs, node_to_ino(node), &st);
	if (ret)
		reply_err(req, ret);
	else
		fuse_reply_attr(req, &st, TIMEOUT);
}

static void op_setattr(fuse_req_t req, fuse_ino_t node, struct stat *attr,
		       int to_set, struct fuse_file_info *fi)
{
	struct glue *g = req_glue(req);
	struct fs_cred cred;
	struct stat st;
	unsigned valid = 0;
	int ret;

	/* A handle names the same inode as the node: fi adds nothing. */
	(void)fi;
	if (to_set & FUSE_SET_ATTR_MODE)
		valid |= FS_SET_MODE;
	if (to_set & FUSE_SET_ATTR_UID)
		valid |= FS_SET_UID;
	if (to_set & FUSE_SET_ATTR_GID)
		valid |= FS_SET_GID;
	if (to_set & FUSE_SET_ATTR_SIZE)
		valid |= FS_SET_SIZE;
	/* The kernel sets ATIME along with ATIME_NOW: "now" wins. */
	if (to_set & FUSE_SET_ATTR_ATIME_NOW)
		valid |= FS_SET_ATIME_NOW;
	else if (to_set & FUSE_SET_ATTR_ATIME)
		valid |= FS_SET_ATIME;
	if (to_set & FUSE_SET_ATTR_MTIME_NOW)
		valid |= FS_SET_MTIME_NOW;
	else if (to_set & FUSE_SET_ATTR_MTIME)
		valid |= FS_SET_MTIME;
	if (to_set & FUSE_SET_ATTR_CTIME)
		valid |= FS_SET_CTIME;
	req_cred(req, &cred);
	ret = inode_setattr(g->fs, node_to_ino(node), attr, valid, &cred,
			    &st);
	if (ret) {
		reply_err(req, ret);
		return;
	}
	if (g->writeback && S_ISREG(st.st_mode) && (valid & FS_SET_MTIME) &&
	    (st.st_mtim.tv_sec != attr->st_mtim.tv_sec ||
	     st.st_mtim.tv_nsec != attr->st_mtim.tv_nsec))
		forget_name(g, node);
	fuse_reply_attr(req, &st, TIMEOUT);
}

static void op_readlink(fuse_req_t req, fuse_ino_t node)
{
	struct fs *fs = req_glue(req)->fs;
	size_t size = fs_blocksize(fs) + 1;
	char *buf = malloc(size);
	int ret;

	if (!buf) {
		reply_err(req, -ENOMEM);
		return;
	}
	ret = namei_readlink(fs, node_to_ino(node), buf, size);
	if (ret < 0)
		reply_err(req, ret);
	else
		fuse_reply_readlink(req, buf);
	free(buf);
}

static void op_mknod(fuse_req_t req, fuse_ino_t parent, const char *name,
		     mode_t mode, dev_t rdev)
{
	struct fs_cred cred;
	struct stat st;
	int ret;

	req_cred(req, &cred);
	ret = namei_mknod(req_glue(req)->fs, node_to_ino(parent), name, mode,
			  rdev, &cred, &st);
	if (!ret)
		remember_name(req_glue(req), parent, name, &st);
	reply_entry(req, ret, &st);
}

static void op_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name,
		     mode_t mode)
{
	struct fs_cred cred;
	struct stat st;
	int ret;

	req_cred(req, &cred);
	ret = namei_mkdir(req_glue(req)->fs, node_to_ino(parent), name, mode,
			  &cred, &st);
	reply_entry(req, ret, &st);
}

static void op_symlink(fuse_req_t req, const char *target, fuse_ino_t parent,
		       const char *name)
{
	struct fs_cred cred;
	struct stat st;
	int ret;

	req_cred(req, &cred);
	ret = namei_symlink(req_glue(req)->fs, node_to_ino(parent), name,
			    target, &cred, &st);
	reply_entry(req, ret, &st);
}

static void op_link(fuse_req_t req, fuse_ino_t node, fuse_ino_t newparent,
		    const char *newname)
{
	struct stat st;
	int ret;

	ret = namei_link(req_glue(req)->fs, node_to_ino(node),
			 node_to_ino(newparent), newname, &st);
	if (!ret)
		remember_name(req_glue(req), newparent, newname, &st);
	reply_entry(req, ret, &st);
}

static void op_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	reply_err(req, namei_unlink(req_glue(req)->fs, node_to_ino(parent),
				    name));
}

static void op_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	reply_err(req, namei_rmdir(req_glue(req)->fs, node_to_ino(parent),
				   name));
}

static void op_rename(fuse_req_t req, fuse_ino_t parent, const char *name,
		      fuse_ino_t newparent, const char *newname,
		      unsigned int flags)
{
	unsigned fsflags = 0;

	if (flags & ~(RENAME_NOREPLACE | RENAME_EXCHANGE)) {
		reply_err(req, -EINVAL);
		return;
	}
	if (flags & RENAME_NOREPLACE)
		fsflags |= FS_RENAME_NOREPLACE;
	if (flags & RENAME_EXCHANGE)
		fsflags |= FS_RENAME_EXCHANGE;
	reply_err(req, namei_rename(req_glue(req)->fs, node_to_ino(parent),
				    name, node_to_ino(newparent), newname,
				    fsflags));
}

/*
 * Hands out a handle for an open by cred (st: ino's attributes, or NULL);
 * returns -errno, -ENOMEM if there is no memory for one.
 */
static int new_handle(struct glue *g, struct fuse_file_info *fi,
		      ext2_ino_t ino, const struct fs_cred *cred,
		      const struct stat *st)
{
	unsigned opts;
	int ret;

	ret = glue_open_opts(g, ino, fi->flags, cred, st, &opts);
	if (ret)
		return ret;
	fi->fh = glue_file_new(ino, fi->flags, opts);
	if (!fi->fh)
		return -ENOMEM;
	fi->direct_io = !!(opts & GLUE_FILE_DIRECT);
	/*
	 * One kernel inode per ext2 inode and no other writer: what the
	 * page cache holds from an earlier open is still right.
	 */
	fi->keep_cache = 1;
	return 0;
}

/*
 * Regular files keep OPEN: it is where immutable and append-only inodes
 * refuse writers (the kernel knows nothing of those flags), and declining
 * it would be for every file at once. Directories have nothing to check
 * there (see op_opendir).
 */
static void op_open(fuse_req_t req, fuse_ino_t node, struct fuse_file_info *fi)
{
	struct glue *g = req_glue(req);
	ext2_ino_t ino = node_to_ino(node);
	struct fs_cred cred;
	int ret;

	req_cred(req, &cred);
	ret = file_open(g->fs, ino, fi->flags, &cred);
	if (!ret)
		ret = new_handle(g, fi, ino, &cred, NULL);
	if (ret)
		reply_err(req, ret);
	else if (fuse_reply_open(req, fi))
		glue_file_free(fi->fh);
}

static void op_create(fuse_req_t req, fuse_ino_t parent, const char *name,
		      mode_t mode, struct fuse_file_info *fi)
{
	struct glue *g = req_glue(req);
	struct fuse_entry_param e;
	struct fs_cred cred;
	struct stat st;
	ext2_ino_t ino;
	int ret;

	req_cred(req, &cred);
	ret = glue_create(g, node_to_ino(parent), name, mode, fi->flags, &cred,
			  &ino, &st);
	if (!ret)
		ret = new_handle(g, fi, ino, &cred, &st);
	if (ret) {
		reply_err(req, ret);
		return;
	}
	/*
	 * The open that creates a file writes it through. Such files are
	 * mostly written once, front to back, in large writes, where the
	 * writeback cache only adds to each file a synchronous write-back at
	 * close, an mtime SETATTR and a security.capability lookup. Where it
	 * pays, rewriting files in place, they have been reopened. Only if
	 * the kernel lets such files be mmapped shared.
	 */
	if (g->writeback && (g->init_got & GLUE_INIT_DIRECT_IO_MMAP)) {
		glue_file_get(fi->fh)->opts |= GLUE_FILE_DIRECT;
		fi->direct_io = 1;
	}
	remember_name(g, parent, name, &st);
	fill_entry(&e, &st);
	fs_iref_get(g->fs, ino);
	if (fuse_reply_create(req, &e, fi)) {
		fs_iref_put(g->fs, ino, 1);
		glue_file_free(fi->fh);
	}
}

/*
 * Beneath libfuse (fuse_io.c), which cannot decode these requests.
 * STATX: the attributes with birth time and inode flags.
 */
static int below_statx(struct glue *g, uint64_t node, struct fs_statx *sx,
		       double *timeout)
{
	*timeout = TIMEOUT;
	return inode_statx(g->fs, node_to_ino(node), sx);
}

/*
 * TMPFILE: answered like CREATE, with the lookup reference the entry
 * hands the kernel; the orphaned inode lives until its last FORGET, or
 * gets a name through LINK (linkat with AT_EMPTY_PATH).
 */
static int below_tmpfile(struct glue *g, uint64_t dir, mode_t mode,
			 int flags, const struct fs_cred *cred,
			 struct glue_tmpfile *t)
{
	struct fuse_file_info fi;
	int ret;

	ret = namei_tmpfile(g->fs, node_to_ino(dir), mode, cred, &t->st);
	if (ret)
		return ret;
	fs_iref_get(g->fs, t->st.st_ino);
	memset(&fi, 0, sizeof(fi));
	fi.flags = flags & ~(O_TMPFILE | O_CREAT | O_EXCL);
	ret = new_handle(g, &fi, t->st.st_ino, cred, &t->st);
	if (ret) {
		fs_iref_put(g->fs, t->st.st_ino, 1);
		return ret;
	}
	t->node = ino_to_node(t->st.st_ino);
	t->timeout = TIMEOUT;
	t->fh = fi.fh;
	t->direct_io = fi.direct_io;
	t->keep_cache = fi.keep_cache;
	return 0;
}

static void below_tmpfile_undo(struct glue *g, const struct glue_tmpfile *t)
{
	glue_file_free(t->fh);
	fs_iref_put(g->fs, node_to_ino(t->node), 1);
}

static const struct glue_below_ops fuse4fs_below = {
	.statx = below_statx,
	.tmpfile = below_tmpfile,
	.tmpfile_undo = below_tmpfile_undo,
};

/*
 * Reads from this size up are answered by splicing the data from the
 * image into the reply (below it libfuse copies through a buffer
 * anyway), as long as GLUE_READ_SEGS extents and holes cover them.
 */
#define SPLICE_MIN (32u << 10)

/* Holes and unwritten extents in a spliced reply; never written. */
static char zeros[GLUE_ZERO_PIECE];

/* Replies with the pinned segments; the caller unpins after. */
static void reply_pinned(fuse_req_t req, struct glue *g,
			 const struct fs_data_seg *segs, unsigned n)
{
	struct fuse_bufvec *bv;
	unsigned i, count = 0;
	uint64_t left, k;

	for (i = 0; i < n; i++)
		count += segs[i].zero ?
			 (segs[i].len + sizeof(zeros) - 1) / sizeof(zeros) : 1;
	bv = malloc(sizeof(*bv) + count * sizeof(bv->buf[0]));
	if (!bv) {
		reply_err(req, -ENOMEM);
		return;
	}
	bv->count = count;
	bv->idx = 0;
	bv->off = 0;
	count = 0;
	for (i = 0; i < n; i++) {
		if (!segs[i].zero) {
			bv->buf[count++] = (struct fuse_buf){
				.size = segs[i].len,
				.flags = FUSE_BUF_IS_FD | FUSE_BUF_FD_SEEK,
				.fd = fs_data_fd(g->fs),
				.pos = segs[i].addr,
			};
			continue;
		}
		for (left = segs[i].len; left; left -= k) {
			k = left < sizeof(zeros) ? left : sizeof(zeros);
			bv->buf[count++] = (struct fuse_buf){
				.size = k,
				.mem = zeros,
			};
		}
	}
	fuse_reply_data(req, bv, FUSE_BUF_SPLICE_MOVE);
	free(bv);
}

/*
 * Each thread reads into a buffer of its own, kept from one request to
 * the next: a fresh megabyte per read would be mapped, faulted in page by
 * page and zeroed each time.
 */
static pthread_key_t rbuf_key;
static pthread_once_t rbuf_once = PTHREAD_ONCE_INIT;

struct rbuf {
	size_t size;
	char data[];
};

static void rbuf_init(void)
{
	pthread_key_create(&rbuf_key, free);
}

static char *read_buffer(size_t size)
{
	struct rbuf *b;

	pthread_once(&rbuf_once, rbuf_init);
	b = pthread_getspecific(rbuf_key);
	if (b && b->size >= size)
		return b->data;
	free(b);
	b = malloc(sizeof(*b) + size);
	pthread_setspecific(rbuf_key, b);
	if (!b)
		return NULL;
	b->size = size;
	return b->data;
}

static void op_read(fuse_req_t req, fuse_ino_t node, size_t size, off_t off,
		    struct fuse_file_info *fi)
{
	struct glue *g = req_glue(req);
	struct fs_data_seg segs[GLUE_READ_SEGS];
	struct fs_data_pin *pin;
	unsigned n;
	char *buf;
	ssize_t ret;

	(void)fi;
	/*
	 * The blocks stay pinned until the reply has taken their bytes, so
	 * a truncate cannot hand them to another file in between.
	 */
	if (size >= SPLICE_MIN && glue_splice_fits(g, size)) {
		ret = file_read_pin(g->fs, node_to_ino(node), off, size, segs,
				    GLUE_READ_SEGS, &n, &pin);
		if (ret > 0) {
			reply_pinned(req, g, segs, n);
			fs_data_unpin(g->fs, pin, segs, n);
			return;
		}
		if (ret != -EOPNOTSUPP && ret != -E2BIG) {
			if (ret < 0)
				reply_err(req, ret);
			else
				fuse_reply_buf(req, NULL, 0);
			return;
		}
	}
	buf = read_buffer(size);
	if (!buf) {
		reply_err(req, -ENOMEM);
		return;
	}
	ret = file_read(g->fs, node_to_ino(node), buf, size, off);
	if (ret < 0)
		reply_err(req, ret);
	else
		fuse_reply_buf(req, buf, ret);
}

/*
 * The writeback cache hands a file's dirty pages back several requests at
 * once and this server's threads take them as they come. Were a later
 * part of the file allocated before an earlier one, the file would be
 * laid out backwards and its extent tree could grow a level. So a cached
 * write that starts past the server's EOF waits while cached writes of
 * the same file are running (one of them may be the one in front of it),
 * then for at most WB_WAIT_NS for one to arrive: a hole the application
 * made on purpose costs that much.
 */
#define WB_WAIT_NS 10000000L

/* A cached write past wb_wait_turn, on its thread's stack. */
struct wb_run {
	ext2_ino_t ino;
	struct wb_run *next;
};

static pthread_mutex_t wb_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t wb_moved = PTHREAD_COND_INITIALIZER;
static struct wb_run *wb_runs;

static int wb_running(ext2_ino_t ino)
{
	struct wb_run *r;

	for (r = wb_runs; r; r = r->next)
		if (r->ino == ino)
			return 1;
	return 0;
}

/*
 * wb_lock is held across the size check (the core's lock nests inside
 * it) so that no wb_done can slip between the check and the wait.
 */
static void wb_wait_turn(struct fs *fs, ext2_ino_t ino, off_t off,
			 struct wb_run *me)
{
	struct timespec deadline;
	int timed_out = 0, waiting = 0;
	struct stat st;

	pthread_mutex_lock(&wb_lock);
	while (!inode_getattr(fs, ino, &st) && st.st_size < off) {
		if (wb_running(ino)) {
			pthread_cond_wait(&wb_moved, &wb_lock);
			waiting = 0;
			continue;
		}
		if (!waiting) {
			waiting = 1;
			clock_gettime(CLOCK_REALTIME, &deadline);
			deadline.tv_nsec += WB_WAIT_NS;
			if (deadline.tv_nsec >= 1000000000L) {
				deadline.tv_sec++;
				deadline.tv_nsec -= 1000000000L;
			}
		} else if (timed_out) {
			break;
		}
		timed_out = pthread_cond_timedwait(&wb_moved, &wb_lock,
						   &deadline) == ETIMEDOUT;
	}
	me->ino = ino;
	me->next = wb_runs;
	wb_runs = me;
	pthread_mutex_unlock(&wb_lock);
}

/* The cached write is done: the EOF may have moved. */
static void wb_done(struct wb_run *me)
{
	struct wb_run **p;

	pthread_mutex_lock(&wb_lock);
	for (p = &wb_runs; *p; p = &(*p)->next) {
		if (*p == me) {
			*p = me->next;
			break;
		}
	}
	pthread_cond_broadcast(&wb_moved);
	pthread_mutex_unlock(&wb_lock);
}

static void op_write(fuse_req_t req, fuse_ino_t node, const char *buf,
		     size_t size, off_t off, struct fuse_file_info *fi)
{
	struct glue *g = req_glue(req);
	struct glue_file *gf = glue_file_get(fi->fh);
	struct fs_cred cred;
	struct wb_run run;
	ssize_t ret;

	if (!gf) {
		reply_err(req, -EBADF);
		return;
	}
	req_cred(req, &cred);
	if (fi->writepage)
		wb_wait_turn(g->fs, node_to_ino(node), off, &run);
	ret = file_write(g->fs, node_to_ino(node), buf, size, off,
			 glue_write_appends(g, gf, fi), &cred);
	if (fi->writepage)
		wb_done(&run);
	if (ret < 0 && fi->writepage) {
		/*
		 * The write(2) that made these pages dirty has long returned
		 * and the kernel only keeps the error for fsync and close: a
		 * writer filling the filesystem would go on for ever. Its next
		 * write(2) refreshes the attributes first, through its
		 * handle: that GETATTR gets the error (op_getattr).
		 */
		__atomic_store_n(&gf->wb_error, (int)ret, __ATOMIC_RELEASE);
		fuse_lowlevel_notify_inval_inode(g->se, node, -1, 0);
		reply_err(req, ret);
		return;
	}
	if (ret < 0) {
		reply_err(req, ret);
		return;
	}
	/*
	 * Before the reply, so that nothing the writer does next sees the
	 * old mode; attributes only (offset < 0): no page lock is taken.
	 */
	if (gf->opts & GLUE_FILE_KILLPRIV)
		fuse_lowlevel_notify_inval_inode(g->se, node, -1, 0);
	fuse_reply_write(req, ret);
}

static void op_release(fuse_req_t req, fuse_ino_t node,
		       struct fuse_file_info *fi)
{
	(void)node;
	glue_file_free(fi->fh);
	reply_err(req, 0);
}

static void op_fsync(fuse_req_t req, fuse_ino_t node, int datasync,
		     struct fuse_file_info *fi)
{
	(void)fi;
	reply_err(req, file_fsync(req_glue(req)->fs, node_to_ino(node),
				  datasync));
}

/*
 * The kernel only opens what it knows to be a directory and readdir
 * needs no handle, so where the kernel can do without OPENDIR it is
 * declined: the first ENOSYS makes it stop sending OPENDIR and
 * RELEASEDIR, and cache listings in its page cache (dropped whenever it
 * changes the directory itself, and this server is the only writer).
 */
static void op_opendir(fuse_req_t req, fuse_ino_t node,
		       struct fuse_file_info *fi)
{
	struct glue *g = req_glue(req);
	int ret;

	if (g->no_opendir) {
		reply_err(req, -ENOSYS);
		return;
	}
	ret = dir_open(g->fs, node_to_ino(node));
	if (ret) {
		reply_err(req, ret);
		return;
	}
	/* For a directory the kernel keeps its cached listing across opens. */
	fi->cache_readdir = 1;
	fi->keep_cache = 1;
	fuse_reply_open(req, fi);
}

/* One readdir reply being filled by dir_read. */
struct dirbuf {
	fuse_req_t req;
	int plus;
	char *buf;
	size_t size;
	size_t used;
	ext2_ino_t *inos; /* readdirplus: the references this reply hands out */
	size_t ninos;
	size_t maxinos;
};

static int is_dot_or_dotdot(const char *name)
{
	return name[0] == '.' &&
	       (!name[1] || (name[1] == '.' && !name[2]));
}

static int fill_dir(void *ctx, const char *name, size_t namelen,
		    ext2_ino_t ino, unsigned dtype, const struct stat *st,
		    off_t next)
{
	struct dirbuf *d = ctx;
	char nbuf[EXT2_NAME_LEN + 1];
	struct fuse_entry_param e;
	struct stat plain;
	size_t len, room = d->size - d->used;
	ext2_ino_t *inos;

	if (namelen > EXT2_NAME_LEN)
		namelen = EXT2_NAME_LEN;
	memcpy(nbuf, name, namelen);
	nbuf[namelen] = 0;
	memset(&plain, 0, sizeof(plain));
	plain.st_ino = ino;
	plain.st_mode = DTTOIF(dtype);
	if (!d->plus) {
		len = fuse_add_direntry(d->req, d->buf + d->used, room, nbuf,
					&plain, next);
		if (len > room)
			return 1;
		d->used += len;
		return 0;
	}
	/*
	 * Node id 0 gives the kernel a name without a node: it takes no
	 * reference on those, nor on "." and "..".
	 */
	if (st && !is_dot_or_dotdot(nbuf)) {
		fill_entry(&e, st);
		if (d->ninos == d->maxinos) {
			inos = realloc(d->inos, (d->maxinos * 2 + 16) *
					       sizeof(*inos));
			if (!inos)
				return 1;
			d->inos = inos;
			d->maxinos = d->maxinos * 2 + 16;
		}
	} else {
		memset(&e, 0, sizeof(e));
		e.attr = plain;
	}
	len = fuse_add_direntry_plus(d->req, d->buf + d->used, room, nbuf, &e,
				     next);
	if (len > room)
		return 1;
	d->used += len;
	if (e.ino)
		d->inos[d->ninos++] = st->st_ino;
	return 0;
}

static void do_readdir(fuse_req_t req, fuse_ino_t node, size_t size,
		       off_t off, int plus)
{
	struct fs *fs = req_glue(req)->fs;
	struct dirbuf d;
	size_t i;
	int ret;

	memset(&d, 0, sizeof(d));
	d.req = req;
	d.plus = plus;
	d.size = size;
	d.buf = malloc(size ? size : 1);
	if (!d.buf) {
		reply_err(req, -ENOMEM);
		return;
	}
	ret = dir_read(fs, node_to_ino(node), off, plus, fill_dir, &d);
	/* What was listed before an error is still worth sending. */
	if (ret < 0 && !d.used) {
		reply_err(req, ret);
		goto out;
	}
	/*
	 * References are taken here, not in fill_dir, which runs under the
	 * core's lock. The kernel holds the directory locked against
	 * unlink and rename while it reads, so the entries cannot go away
	 * in between.
	 */
	for (i = 0; i < d.ninos; i++)
		fs_iref_get(fs, d.inos[i]);
	if (fuse_reply_buf(req, d.buf, d.used))
		for (i = 0; i < d.ninos; i++)
			fs_iref_put(fs, d.inos[i], 1);
out:
	free(d.inos);
	free(d.buf);
}

static void op_readdir(fuse_req_t req, fuse_ino_t node, size_t size,
		       off_t off, struct fuse_file_info *fi)
{
	(void)fi;
	do_readdir(req, node, size, off, 0);
}

static void op_readdirplus(fuse_req_t req, fuse_ino_t node, size_t size,
			   off_t off, struct fuse_file_info *fi)
{
	(void)fi;
	do_readdir(req, node, size, off, 1);
}

static void op_releasedir(fuse_req_t req, fuse_ino_t node,
			  struct fuse_file_info *fi)
{
	(void)node;
	(void)fi;
	reply_err(req, 0);
}

static void op_statfs(fuse_req_t req, fuse_ino_t node)
{
	struct statvfs st;
	int ret;

	(void)node;
	ret = fs_statfs(req_glue(req)->fs, &st);
	if (ret)
		reply_err(req, ret);
	else
		fuse_reply_statfs(req, &st);
}

static void op_setxattr(fuse_req_t req, fuse_ino_t node, const char *name,
			const char *value, size_t size, int flags)
{
	struct fs_cred cred;

	req_cred(req, &cred);
	reply_err(req, xattr_set(req_glue(req)->fs, node_to_ino(node), name,
				 value, size, flags, &cred));
}

/* size 0 asks for the length; otherwise the value, or ERANGE. */
static void reply_xattr(fuse_req_t req, ssize_t ret, const char *buf,
			size_t size)
{
	if (ret < 0)
		reply_err(req, ret);
	else if (!size)
		fuse_reply_xattr(req, ret);
	else
		fuse_reply_buf(req, buf, ret);
}

static void op_getxattr(fuse_req_t req, fuse_ino_t node, const char *name,
			size_t size)
{
	char *buf = malloc(size ? size : 1);

	if (!buf) {
		reply_err(req, -ENOMEM);
		return;
	}
	reply_xattr(req, xattr_get(req_glue(req)->fs, node_to_ino(node), name,
				   size ? buf : NULL, size), buf, size);
	free(buf);
}

static void op_listxattr(fuse_req_t req, fuse_ino_t node, size_t size)
{
	char *buf = malloc(size ? size : 1);

	if (!buf) {
		reply_err(req, -ENOMEM);
		return;
	}
	reply_xattr(req, xattr_list(req_glue(req)->fs, node_to_ino(node),
				    size ? buf : NULL, size), buf, size);
	free(buf);
}

static void op_removexattr(fuse_req_t req, fuse_ino_t node, const char *name)
{
	reply_err(req, xattr_remove(req_glue(req)->fs, node_to_ino(node),
				    name));
}

static void op_access(fuse_req_t req, fuse_ino_t node, int mask)
{
	reply_err(req, inode_access(req_glue(req)->fs, node_to_ino(node),
				    mask));
}

static void op_ioctl(fuse_req_t req, fuse_ino_t node, unsigned int cmd,
		     void *arg, struct fuse_file_info *fi, unsigned flags,
		     const void *in_buf, size_t in_bufsz, size_t out_bufsz)
{
	struct fs_cred cred;
	char out[sizeof(struct fsxattr)];
	size_t out_len;
	int ret;

	(void)arg;
	(void)fi;
	(void)flags;
	req_cred(req, &cred);
	ret = glue_ioctl(req_glue(req), node_to_ino(node), cmd, in_buf,
			 in_bufsz, out,
			 out_bufsz < sizeof(out) ? out_bufsz : sizeof(out),
			 &out_len, &cred);
	if (ret)
		reply_err(req, ret);
	else
		fuse_reply_ioctl(req, 0, out_len ? out : NULL, out_len);
}

static void op_fallocate(fuse_req_t req, fuse_ino_t node, int mode,
			 off_t off, off_t len, struct fuse_file_info *fi)
{
	(void)fi;
	reply_err(req, file_fallocate(req_glue(req)->fs, node_to_ino(node),
				      mode, off, len));
}

/* Only SEEK_DATA and SEEK_HOLE reach us: the kernel does the rest. */
static void op_lseek(fuse_req_t req, fuse_ino_t node, off_t off, int whence,
		     struct fuse_file_info *fi)
{
	off_t ret;

	(void)fi;
	ret = file_lseek(req_glue(req)->fs, node_to_ino(node), off, whence);
	if (ret < 0)
		reply_err(req, ret);
	else
		fuse_reply_lseek(req, ret);
}

static void op_copy_file_range(fuse_req_t req, fuse_ino_t node_in,
			       off_t off_in, struct fuse_file_info *fi_in,
			       fuse_ino_t node_out, off_t off_out,
			       struct fuse_file_info *fi_out, size_t len,
			       int flags)
{
	struct fs_cred cred;
	ssize_t ret;

	(void)fi_in;
	(void)fi_out;
	if (flags) {
		reply_err(req, -EINVAL);
		return;
	}
	req_cred(req, &cred);
	ret = file_copy_range(req_glue(req)->fs, node_to_ino(node_in), off_in,
			      node_to_ino(node_out), off_out, len, &cred);
	if (ret < 0)
		reply_err(req, ret);
	else
		fuse_reply_write(req, ret);
}

/*
 * No .flush: libfuse answers ENOSYS and the kernel sends no more. Writes
 * reached the core when they were answered, and the writeback cache
 * writes its dirty pages back at close whether FLUSH is sent or not.
 */
static const struct fuse_lowlevel_ops fuse4fs_ops = {
	.init = op_init,
	.lookup = op_lookup,
	.forget = op_forget,
	.forget_multi = op_forget_multi,
	.getattr = op_getattr,
	.setattr = op_setattr,
	.readlink = op_readlink,
	.mknod = op_mknod,
	.mkdir = op_mkdir,
	.symlink = op_symlink,
	.link = op_link,
	.unlink = op_unlink,
	.rmdir = op_rmdir,
	.rename = op_rename,
	.open = op_open,
	.create = op_create,
	.read = op_read,
	.write = op_write,
	.release = op_release,
	.fsync = op_fsync,
	.opendir = op_opendir,
	.readdir = op_readdir,
	.readdirplus = op_readdirplus,
	.releasedir = op_releasedir,
	.fsyncdir = op_fsync,
	.statfs = op_statfs,
	.setxattr = op_setxattr,
	.getxattr = op_getxattr,
	.listxattr = op_listxattr,
	.removexattr = op_removexattr,
	.access = op_access,
	.ioctl = op_ioctl,
	.fallocate = op_fallocate,
	.lseek = op_lseek,
	.copy_file_range = op_copy_file_range,
};

static void fuse4fs_help(struct fuse_args *args)
{
	(void)args;
	fuse_lowlevel_help();
}

int main(int argc, char *argv[])
{
	struct fuse_args args = FUSE_ARGS_INIT(argc, argv);
	struct fuse_session *se;
	struct glue g;
	int ret;

	ret = glue_parse_args(&g, &args, "fuse4fs", fuse4fs_help);
	if (ret) {
		ret = ret < 0;
		goto out;
	}
	/* One kernel inode per ext2 inode: hard links share a page cache. */
	g.fsopts.iomap_hardlinks = 1;
	/* The executor splices read replies (see op_read). */
	if (g.fsopts.iomap != FS_IOMAP_OFF &&
	    glue_fit_reads_to_pipe(&g, &args)) {
		ret = 1;
		goto out;
	}
	/*
	 * The core clears setuid/setgid itself on write, truncate and
	 * chown; the kernel then stops asking for security.capability
	 * before every write.
	 */
	g.init_want = GLUE_INIT_KILLPRIV_V2 | GLUE_INIT_DIRECT_IO_MMAP;
	g.below = &fuse4fs_below;
	/* Before the image is touched: a bad FUSE option fails cleanly. */
	se = fuse_session_new(&args, &fuse4fs_ops, sizeof(fuse4fs_ops), &g);
	if (!se) {
		ret = 1;
		goto out;
	}
	ret = glue_run(&g, se, NULL);
	fuse_session_destroy(se);
out:
	glue_done(&g, &args);
	return ret;
}
