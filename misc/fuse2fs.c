/*
 * fuse2fs: the high-level (path) FUSE front-end. Paths become inode
 * numbers by walking namei_lookup from the root; open files and
 * directories keep their inode number in the handle and a core reference
 * (fs_iref_get), so IO never resolves a path again and an unlinked open
 * file stays usable until its last release. Each handler turns one
 * request into core calls; the logic is in lib/core.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <linux/fs.h>

#include "fuse_glue.h"

/*
 * How long the kernel may cache names, present or absent (libfuse's
 * default): only this mount creates names. Attributes are not cached at
 * all (see op_init).
 */
#define TIMEOUT 1.0

/*
 * Inodes seen with several names in this mount (linked, or opened with
 * more than one link). Each name has a kernel inode of its own here, and
 * what one of them cached may since have been overwritten through
 * another, so opens of these never keep the page cache, even once a
 * single name is left. Open addressing on inode numbers (0 is no inode);
 * it only grows.
 */
static struct {
	pthread_mutex_t lock;
	ext2_ino_t *slots;
	size_t size; /* a power of two, or 0 */
	size_t used;
} shared = { .lock = PTHREAD_MUTEX_INITIALIZER };

static size_t shared_slot(ext2_ino_t *slots, size_t size, ext2_ino_t ino)
{
	size_t i = (ino * 2654435761u) & (size - 1);

	while (slots[i] && slots[i] != ino)
		i = (i + 1) & (size - 1);
	return i;
}

/* Caller holds shared.lock; grows the table to keep it half empty. */
static int shared_grow(void)
{
	size_t size = shared.size ? shared.size * 2 : 64, i;
	ext2_ino_t *slots = calloc(size, sizeof(*slots));

	if (!slots)
		return -ENOMEM;
	for (i = 0; i < shared.size; i++)
		if (shared.slots[i])
			slots[shared_slot(slots, size, shared.slots[i])] =
				shared.slots[i];
	free(shared.slots);
	shared.slots = slots;
	shared.size = size;
	return 0;
}

/* -ENOMEM if ino cannot be recorded: the caller must then fail. */
static int shared_add(ext2_ino_t ino)
{
	size_t i;
	int ret = 0;

	pthread_mutex_lock(&shared.lock);
	if ((shared.used + 1) * 2 > shared.size)
		ret = shared_grow();
	if (!ret) {
		i = shared_slot(shared.slots, shared.size, ino);
		if (!shared.slots[i]) {
			shared.slots[i] = ino;
			shared.used++;
		}
	}
	pthread_mutex_unlock(&shared.lock);
	return ret;
}

static int shared_has(ext2_ino_t ino)
{
	int ret = 0;

	pthread_mutex_lock(&shared.lock);
	if (shared.size)
		ret = shared.slots[shared_slot(shared.slots, shared.size,
					       ino)] == ino;
	pthread_mutex_unlock(&shared.lock);
	return ret;
}

/*
 * The paths under which files of the shared table are open: a write(2)
 * through one name must drop what the other names' kernel inodes cached
 * (a shared mapping keeps its pages even under direct_io). One entry per
 * open handle; a rename of the open file leaves its entry on the old
 * path, which then invalidates nothing or another file's cache.
 */
struct open_name {
	ext2_ino_t ino;
	const char *path; /* the handle's gf->path */
	struct open_name *next;
};

static struct {
	pthread_mutex_t lock;
	struct open_name *head;
} open_names = { .lock = PTHREAD_MUTEX_INITIALIZER };

static int open_name_add(ext2_ino_t ino, const char *path)
{
	struct open_name *n = malloc(sizeof(*n));

	if (!n)
		return -ENOMEM;
	n->ino = ino;
	n->path = path;
	pthread_mutex_lock(&open_names.lock);
	n->next = open_names.head;
	open_names.head = n;
	pthread_mutex_unlock(&open_names.lock);
	return 0;
}

static void open_name_del(const char *path)
{
	struct open_name **p, *n = NULL;

	pthread_mutex_lock(&open_names.lock);
	for (p = &open_names.head; *p; p = &(*p)->next) {
		if ((*p)->path == path) {
			n = *p;
			*p = n->next;
			break;
		}
	}
	pthread_mutex_unlock(&open_names.lock);
	free(n);
}

/*
 * Drops the page caches of ino's other open names, around a write through
 * path. The kernel writes back their dirty pages first and waits for it,
 * which another thread must serve: so not with -s, and not for the
 * write-back of cached pages (a msync of a mapping), which the pages of
 * another name could be waiting on in turn.
 */
static void invalidate_other_names(ext2_ino_t ino, const char *path)
{
	struct fuse *f = fuse_get_context()->fuse;
	struct open_name *n;
	char **paths = NULL, **more;
	size_t i, count = 0;

	pthread_mutex_lock(&open_names.lock);
	for (n = open_names.head; n; n = n->next) {
		if (n->ino != ino || !strcmp(n->path, path))
			continue;
		more = realloc(paths, (count + 1) * sizeof(*paths));
		if (!more)
			break;
		paths = more;
		paths[count] = strdup(n->path);
		if (paths[count])
			count++;
	}
	pthread_mutex_unlock(&open_names.lock);
	/* Not under the lock: the kernel may send requests meanwhile. */
	for (i = 0; i < count; i++) {
		fuse_invalidate_path(f, paths[i]);
		free(paths[i]);
	}
	free(paths);
}

static struct glue *ctx_glue(void)
{
	return fuse_get_context()->private_data;
}

static struct fs *ctx_fs(void)
{
	return ctx_glue()->fs;
}

static void ctx_cred(struct fs_cred *cred)
{
	const struct fuse_context *ctx = fuse_get_context();

	glue_cred(ctx->private_data, NULL, ctx->uid, ctx->gid, ctx->umask, cred);
}

/* Walks the first len bytes of an absolute path from the root. */
static int resolve_len(const char *path, size_t len, ext2_ino_t *ino)
{
	struct fs *fs = ctx_fs();
	char name[EXT2_NAME_LEN + 1];
	const char *p = path, *end = path + len, *next;
	ext2_ino_t cur = EXT2_ROOT_INO;
	int ret;

	while (p < end) {
		if (*p == '/') {
			p++;
			continue;
		}
		next = memchr(p, '/', end - p);
		if (!next)
			next = end;
		if (next - p > EXT2_NAME_LEN)
			return -ENAMETOOLONG;
		memcpy(name, p, next - p);
		name[next - p] = 0;
		ret = namei_lookup(fs, cur, name, &cur, NULL);
		if (ret)
			return ret;
		p = next;
	}
	*ino = cur;
	return 0;
}

static int resolve(const char *path, ext2_ino_t *ino)
{
	return resolve_len(path, strlen(path), ino);
}

/* The directory holding path's last component, and that component. */
static int resolve_parent(const char *path, ext2_ino_t *dir,
			  const char **name)
{
	const char *slash = strrchr(path, '/');

	if (!slash || !slash[1])
		return -EINVAL;
	*name = slash + 1;
	return resolve_len(path, slash - path, dir);
}

/*
 * The inode a request is about: the open handle's when there is one (the
 * path may be gone, or NULL with nullpath_ok), else the path's.
 */
static int path_ino(const char *path, struct fuse_file_info *fi,
		    ext2_ino_t *ino)
{
	struct glue_file *gf = fi ? glue_file_get(fi->fh) : NULL;

	/* GETATTR of an open node, possibly unlinked (fuse_open_nodes.c). */
	if (fi && glue_fh_ino(fi->fh, ino))
		return 0;
	if (gf) {
		*ino = gf->ino;
		return 0;
	}
	if (!path)
		return -EBADF;
	return resolve(path, ino);
}

/* The open handle of IO requests; -EBADF if it is not ours. */
static int handle_ino(struct fuse_file_info *fi, ext2_ino_t *ino)
{
	struct glue_file *gf = glue_file_get(fi->fh);

	if (!gf)
		return -EBADF;
	*ino = gf->ino;
	return 0;
}

static void *op_init(struct fuse_conn_info *conn, struct fuse_config *cfg)
{
	struct glue *g = ctx_glue();

	/*
	 * Attributes with every listed name (the core reads them with the
	 * directory), so ls -l sends no lookup per entry. No
	 * AUTO_INVAL_DATA: with attributes never cached it would cost a
	 * GETATTR per read, to detect changes that cannot happen (this
	 * server is the only writer, and files with several names, the one
	 * way a kernel inode's data could change behind it, bypass the page
	 * cache; see new_handle).
	 */
	glue_init_conn(g, conn, FUSE_CAP_READDIRPLUS,
		       FUSE_CAP_READDIRPLUS_AUTO | FUSE_CAP_AUTO_INVAL_DATA);
	/* st_ino is the real inode number, as tools like find expect. */
	cfg->use_ino = 1;
	/* The core keeps unlinked open files: no .fuse_hidden renames. */
	cfg->hard_remove = 1;
	/* Handles carry the inode: IO on them needs no path. */
	cfg->nullpath_ok = 1;
	cfg->entry_timeout = TIMEOUT;
	cfg->negative_timeout = TIMEOUT;
	/*
	 * A hard-linked file has one kernel inode per name: a change made
	 * through one name (link count, ctime, data size) cannot be pushed
	 * to the others, so attributes are never cached.
	 */
	cfg->attr_timeout = 0;
	return g;
}

static int op_getattr(const char *path, struct stat *st,
		      struct fuse_file_info *fi)
{
	ext2_ino_t ino;
	int ret;

	ret = path_ino(path, fi, &ino);
	if (!ret)
		ret = inode_getattr(ctx_fs(), ino, st);
	return ret;
}

static int op_readlink(const char *path, char *buf, size_t size)
{
	ext2_ino_t ino;
	int ret;

	ret = resolve(path, &ino);
	if (!ret)
		ret = namei_readlink(ctx_fs(), ino, buf, size);
	return ret < 0 ? ret : 0;
}

static int op_mknod(const char *path, mode_t mode, dev_t rdev)
{
	struct fs_cred cred;
	const char *name;
	struct stat st;
	ext2_ino_t dir;
	int ret;

	ctx_cred(&cred);
	ret = resolve_parent(path, &dir, &name);
	if (!ret)
		ret = namei_mknod(ctx_fs(), dir, name, mode, rdev, &cred, &st);
	return ret;
}

static int op_mkdir(const char *path, mode_t mode)
{
	struct fs_cred cred;
	const char *name;
	struct stat st;
	ext2_ino_t dir;
	int ret;

	ctx_cred(&cred);
	ret = resolve_parent(path, &dir, &name);
	if (!ret)
		ret = namei_mkdir(ctx_fs(), dir, name, mode, &cred, &st);
	return ret;
}

/* unlink and rmdir: remove, one of the two, takes path's last name. */
static int remove_name(const char *path,
		       int (*remove)(struct fs *fs, ext2_ino_t dir,
				     const char *name))
{
	const char *name;
	ext2_ino_t dir;
	int ret;

	ret = resolve_parent(path, &dir, &name);
	if (!ret)
		ret = remove(ctx_fs(), dir, name);
	return ret;
}

static int op_unlink(const char *path)
{
	return remove_name(path, namei_unlink);
}

static int op_rmdir(const char *path)
{
	return remove_name(path, namei_rmdir);
}

static int op_symlink(const char *target, const char *path)
{
	struct fs_cred cred;
	const char *name;
	struct stat st;
	ext2_ino_t dir;
	int ret;

	ctx_cred(&cred);
	ret = resolve_parent(path, &dir, &name);
	if (!ret)
		ret = namei_symlink(ctx_fs(), dir, name, target, &cred, &st);
	return ret;
}

static int op_rename(const char *from, const char *to, unsigned int flags)
{
	const char *oldname, *newname;
	ext2_ino_t olddir, newdir;
	unsigned fsflags = 0;
	int ret;

	if (flags & ~(RENAME_NOREPLACE | RENAME_EXCHANGE))
		return -EINVAL;
	if (flags & RENAME_NOREPLACE)
		fsflags |= FS_RENAME_NOREPLACE;
	if (flags & RENAME_EXCHANGE)
		fsflags |= FS_RENAME_EXCHANGE;
	ret = resolve_parent(from, &olddir, &oldname);
	if (!ret)
		ret = resolve_parent(to, &newdir, &newname);
	if (!ret)
		ret = namei_rename(ctx_fs(), olddir, oldname, newdir, newname,
				   fsflags);
	return ret;
}

static int op_link(const char *from, const char *to)
{
	const char *name;
	ext2_ino_t ino, dir;
	struct stat st;
	int ret;

	ret = resolve(from, &ino);
	if (!ret)
		ret = resolve_parent(to, &dir, &name);
	if (!ret)
		ret = shared_add(ino);
	if (!ret)
		ret = namei_link(ctx_fs(), ino, dir, name, &st);
	/*
	 * The new name gets a kernel inode of its own: the old name's has
	 * just gone stale (link count, ctime).
	 */
	if (!ret)
		fuse_invalidate_path(fuse_get_context()->fuse, from);
	return ret;
}

static int setattr(const char *path, struct fuse_file_info *fi,
		   const struct stat *st, unsigned valid)
{
	struct fs_cred cred;
	ext2_ino_t ino;
	int ret;

	ctx_cred(&cred);
	ret = path_ino(path, fi, &ino);
	if (!ret)
		ret = inode_setattr(ctx_fs(), ino, st, valid, &cred, NULL);
	return ret;
}

static int op_chmod(const char *path, mode_t mode, struct fuse_file_info *fi)
{
	struct stat st = { .st_mode = mode };

	return setattr(path, fi, &st, FS_SET_MODE);
}

static int op_chown(const char *path, uid_t uid, gid_t gid,
		    struct fuse_file_info *fi)
{
	struct stat st = { .st_uid = uid, .st_gid = gid };
	unsigned valid = 0;

	/* -1 leaves that id alone, as in chown(2). */
	if (uid != (uid_t)-1)
		valid |= FS_SET_UID;
	if (gid != (gid_t)-1)
		valid |= FS_SET_GID;
	return setattr(path, fi, &st, valid);
}

static int op_truncate(const char *path, off_t size,
		       struct fuse_file_info *fi)
{
	struct stat st = { .st_size = size };

	return setattr(path, fi, &st, FS_SET_SIZE);
}

static int op_utimens(const char *path, const struct timespec tv[2],
		      struct fuse_file_info *fi)
{
	struct stat st = { .st_atim = tv[0], .st_mtim = tv[1] };
	unsigned valid = 0;

	if (tv[0].tv_nsec == UTIME_NOW)
		valid |= FS_SET_ATIME_NOW;
	else if (tv[0].tv_nsec != UTIME_OMIT)
		valid |= FS_SET_ATIME;
	if (tv[1].tv_nsec == UTIME_NOW)
		valid |= FS_SET_MTIME_NOW;
	else if (tv[1].tv_nsec != UTIME_OMIT)
		valid |= FS_SET_MTIME;
	return setattr(path, fi, &st, valid);
}

/*
 * Gives fi a handle on ino holding a reference, which release drops.
 * st: the file's attributes, NULL for directories. Several names mean
 * several kernel inodes for one file: their page caches would disagree,
 * so such opens bypass them. A file that never had another name in this
 * mount keeps what its one kernel inode cached (this server is the only
 * writer).
 */
static int new_handle(struct fuse_file_info *fi, ext2_ino_t ino,
		      const char *path, const struct stat *st,
		      const struct fs_cred *cred)
{
	struct glue_file *gf;
	char *copy = NULL;
	unsigned opts = 0;
	int ret, shared;

	if (st) {
		ret = glue_open_opts(ctx_glue(), ino, fi->flags, cred, st,
				     &opts);
		if (ret)
			return ret;
		if (st->st_nlink > 1) {
			ret = shared_add(ino);
			if (ret)
				return ret;
			opts |= GLUE_FILE_DIRECT;
		}
	}
	shared = st && shared_has(ino);
	if ((opts & GLUE_FILE_KILLPRIV) || shared) {
		copy = strdup(path);
		if (!copy)
			return -ENOMEM;
	}
	if (shared && open_name_add(ino, copy)) {
		free(copy);
		return -ENOMEM;
	}
	fi->fh = glue_file_new(ino, fi->flags, opts);
	gf = glue_file_get(fi->fh);
	if (!gf) {
		if (shared)
			open_name_del(copy);
		free(copy);
		return -ENOMEM;
	}
	gf->path = copy;
	fs_iref_get(ctx_fs(), ino);
	fi->direct_io = !!(opts & GLUE_FILE_DIRECT);
	fi->keep_cache = st && !fi->direct_io && !shared;
	return 0;
}

static void drop_handle(struct fuse_file_info *fi)
{
	struct glue_file *gf = glue_file_get(fi->fh);

	if (!gf)
		return;
	if (gf->path)
		open_name_del(gf->path);
	fs_iref_put(ctx_fs(), gf->ino, 1);
	glue_file_free(fi->fh);
	fi->fh = 0;
}

static int op_open(const char *path, struct fuse_file_info *fi)
{
	struct fs_cred cred;
	struct stat st;
	ext2_ino_t ino;
	int ret;

	ctx_cred(&cred);
	ret = resolve(path, &ino);
	if (!ret)
		ret = file_open(ctx_fs(), ino, fi->flags, &cred);
	if (!ret)
		ret = inode_getattr(ctx_fs(), ino, &st);
	if (!ret)
		ret = new_handle(fi, ino, path, &st, &cred);
	return ret;
}

static int op_create(const char *path, mode_t mode, struct fuse_file_info *fi)
{
	struct fs_cred cred;
	const char *name;
	struct stat st;
	ext2_ino_t dir, ino;
	int ret;

	ctx_cred(&cred);
	ret = resolve_parent(path, &dir, &name);
	if (!ret)
		ret = glue_create(ctx_glue(), dir, name, mode, fi->flags, &cred,
				  &ino, &st);
	if (!ret)
		ret = new_handle(fi, ino, path, &st, &cred);
	return ret;
}

static int op_read(const char *path, char *buf, size_t size, off_t off,
		   struct fuse_file_info *fi)
{
	ext2_ino_t ino;
	int ret;

	(void)path;
	ret = handle_ino(fi, &ino);
	if (ret)
		return ret;
	return file_read(ctx_fs(), ino, buf, size, off);
}

static int op_write(const char *path, const char *buf, size_t size,
		    off_t off, struct fuse_file_info *fi)
{
	struct glue_file *gf = glue_file_get(fi->fh);
	struct fs_cred cred;
	int others;
	ssize_t ret;

	(void)path;
	if (!gf)
		return -EBADF;
	ctx_cred(&cred);
	/*
	 * The file's other names: their dirty pages go to the file before
	 * this write (else they would overwrite it later), and what they
	 * cached is dropped after it.
	 */
	others = gf->path && !fi->writepage && !ctx_glue()->cmd.singlethread;
	if (others)
		invalidate_other_names(gf->ino, gf->path);
	ret = file_write(ctx_fs(), gf->ino, buf, size, off,
			 glue_write_appends(ctx_glue(), gf, fi), &cred);
	/*
	 * The core may have cleared setuid/setgid: the kernel must not go
	 * on showing its cached mode. The open bypasses the page cache, so
	 * dropping it with the attributes holds no page lock up.
	 */
	if (ret > 0 && (gf->opts & GLUE_FILE_KILLPRIV))
		fuse_invalidate_path(fuse_get_context()->fuse, gf->path);
	if (ret > 0 && others)
		invalidate_other_names(gf->ino, gf->path);
	return ret;
}

static int op_statfs(const char *path, struct statvfs *st)
{
	(void)path;
	return fs_statfs(ctx_fs(), st);
}

/* Also releasedir: a directory handle is dropped the same way. */
static int op_release(const char *path, struct fuse_file_info *fi)
{
	(void)path;
	drop_handle(fi);
	return 0;
}

static int op_fsync(const char *path, int datasync, struct fuse_file_info *fi)
{
	ext2_ino_t ino;
	int ret;

	ret = path_ino(path, fi, &ino);
	if (!ret)
		ret = file_fsync(ctx_fs(), ino, datasync);
	return ret;
}

static int op_setxattr(const char *path, const char *name, const char *value,
		       size_t size, int flags)
{
	struct fs_cred cred;
	ext2_ino_t ino;
	int ret;

	ctx_cred(&cred);
	ret = resolve(path, &ino);
	if (!ret)
		ret = xattr_set(ctx_fs(), ino, name, value, size, flags,
				&cred);
	return ret;
}

static int op_getxattr(const char *path, const char *name, char *value,
		       size_t size)
{
	ext2_ino_t ino;
	int ret;

	ret = resolve(path, &ino);
	if (ret)
		return ret;
	return xattr_get(ctx_fs(), ino, name, size ? value : NULL, size);
}

static int op_listxattr(const char *path, char *list, size_t size)
{
	ext2_ino_t ino;
	int ret;

	ret = resolve(path, &ino);
	if (ret)
		return ret;
	return xattr_list(ctx_fs(), ino, size ? list : NULL, size);
}

static int op_removexattr(const char *path, const char *name)
{
	ext2_ino_t ino;
	int ret;

	ret = resolve(path, &ino);
	if (!ret)
		ret = xattr_remove(ctx_fs(), ino, name);
	return ret;
}

static int op_opendir(const char *path, struct fuse_file_info *fi)
{
	ext2_ino_t ino;
	int ret;

	ret = resolve(path, &ino);
	if (!ret)
		ret = dir_open(ctx_fs(), ino);
	if (!ret)
		ret = new_handle(fi, ino, path, NULL, NULL);
	return ret;
}

struct dirfill {
	void *buf;
	fuse_fill_dir_t filler;
};

static int fill_dir(void *ctx, const char *name, size_t namelen,
		    ext2_ino_t ino, unsigned dtype, const struct stat *st,
		    off_t next)
{
	struct dirfill *d = ctx;
	char nbuf[EXT2_NAME_LEN + 1];
	struct stat plain;

	if (namelen > EXT2_NAME_LEN)
		namelen = EXT2_NAME_LEN;
	memcpy(nbuf, name, namelen);
	nbuf[namelen] = 0;
	/* With attributes, libfuse gives the kernel the entry too. */
	if (st)
		return d->filler(d->buf, nbuf, st, next, FUSE_FILL_DIR_PLUS);
	memset(&plain, 0, sizeof(plain));
	plain.st_ino = ino;
	plain.st_mode = DTTOIF(dtype);
	return d->filler(d->buf, nbuf, &plain, next, 0);
}

static int op_readdir(const char *path, void *buf, fuse_fill_dir_t filler,
		      off_t off, struct fuse_file_info *fi,
		      enum fuse_readdir_flags flags)
{
	struct dirfill d = { .buf = buf, .filler = filler };
	ext2_ino_t ino;
	int ret;

	(void)path;
	ret = handle_ino(fi, &ino);
	if (ret)
		return ret;
	ret = dir_read(ctx_fs(), ino, off, !!(flags & FUSE_READDIR_PLUS),
		       fill_dir, &d);
	return ret < 0 ? ret : 0;
}

static int op_access(const char *path, int mask)
{
	ext2_ino_t ino;
	int ret;

	ret = resolve(path, &ino);
	if (!ret)
		ret = inode_access(ctx_fs(), ino, mask);
	return ret;
}

/*
 * libfuse does not say how large data is. The kernel sends the flags
 * ioctls with a 4-byte int whatever the command number says, any other
 * with _IOC_SIZE(cmd) bytes.
 */
static size_t ioctl_size(unsigned cmd)
{
	switch (cmd) {
	case FS_IOC_GETFLAGS:
	case FS_IOC_SETFLAGS:
	case FS_IOC32_GETFLAGS:
	case FS_IOC32_SETFLAGS:
		return sizeof(uint32_t);
	}
	return _IOC_SIZE(cmd);
}

static int op_ioctl(const char *path, unsigned int cmd, void *arg,
		    struct fuse_file_info *fi, unsigned int flags, void *data)
{
	struct fs_cred cred;
	size_t size = ioctl_size(cmd), out_len;
	ext2_ino_t ino;
	int ret;

	(void)arg;
	(void)flags;
	ret = path_ino(path, fi, &ino);
	if (ret)
		return ret;
	ctx_cred(&cred);
	ret = glue_ioctl(ctx_glue(), ino, cmd, data, size, data, size,
			 &out_len, &cred);
	/*
	 * libfuse copies all of data back to the caller. GETVERSION is
	 * numbered for a long but answered, as ext4 answers it, with an
	 * int, and callers pass an int: rather than overrun it, refuse.
	 */
	if (!ret && out_len && out_len < size)
		ret = -ENOTTY;
	return ret;
}

static int op_fallocate(const char *path, int mode, off_t off, off_t len,
			struct fuse_file_info *fi)
{
	ext2_ino_t ino;
	int ret;

	(void)path;
	ret = handle_ino(fi, &ino);
	if (!ret)
		ret = file_fallocate(ctx_fs(), ino, mode, off, len);
	return ret;
}

/* Only SEEK_DATA and SEEK_HOLE reach us: the kernel does the rest. */
static off_t op_lseek(const char *path, off_t off, int whence,
		      struct fuse_file_info *fi)
{
	ext2_ino_t ino;
	int ret;

	(void)path;
	ret = handle_ino(fi, &ino);
	if (ret)
		return ret;
	return file_lseek(ctx_fs(), ino, off, whence);
}

static ssize_t op_copy_file_range(const char *path_in,
				  struct fuse_file_info *fi_in, off_t off_in,
				  const char *path_out,
				  struct fuse_file_info *fi_out, off_t off_out,
				  size_t len, int flags)
{
	ext2_ino_t ino_in, ino_out;
	struct fs_cred cred;
	int ret;

	(void)path_in;
	(void)path_out;
	if (flags)
		return -EINVAL;
	ret = handle_ino(fi_in, &ino_in);
	if (!ret)
		ret = handle_ino(fi_out, &ino_out);
	if (ret)
		return ret;
	ctx_cred(&cred);
	return file_copy_range(ctx_fs(), ino_in, off_in, ino_out, off_out,
			       len, &cred);
}

/*
 * No .flush (nor .lock): libfuse answers ENOSYS and the kernel sends no
 * more. Writes reached the core when they were answered.
 */
static const struct fuse_operations fuse2fs_ops = {
	.init = op_init,
	.getattr = op_getattr,
	.readlink = op_readlink,
	.mknod = op_mknod,
	.mkdir = op_mkdir,
	.unlink = op_unlink,
	.rmdir = op_rmdir,
	.symlink = op_symlink,
	.rename = op_rename,
	.link = op_link,
	.chmod = op_chmod,
	.chown = op_chown,
	.truncate = op_truncate,
	.utimens = op_utimens,
	.open = op_open,
	.create = op_create,
	.read = op_read,
	.write = op_write,
	.statfs = op_statfs,
	.release = op_release,
	.fsync = op_fsync,
	.setxattr = op_setxattr,
	.getxattr = op_getxattr,
	.listxattr = op_listxattr,
	.removexattr = op_removexattr,
	.opendir = op_opendir,
	.readdir = op_readdir,
	.releasedir = op_release,
	.fsyncdir = op_fsync,
	.access = op_access,
	.ioctl = op_ioctl,
	.fallocate = op_fallocate,
	.copy_file_range = op_copy_file_range,
	.lseek = op_lseek,
};

int main(int argc, char *argv[])
{
	struct fuse_args args = FUSE_ARGS_INIT(argc, argv);
	struct fuse *f;
	struct glue g;
	int ret;

	ret = glue_parse_args(&g, &args, "fuse2fs", fuse_lib_help);
	if (ret) {
		ret = ret < 0;
		goto out;
	}
	/*
	 * The core clears setuid/setgid itself on write, truncate and
	 * chown; the kernel then stops asking for security.capability
	 * before every write. Files with several names are opened with
	 * direct_io (see new_handle): the kernel maps them shared only if
	 * told it may.
	 */
	g.init_want = GLUE_INIT_KILLPRIV_V2 | GLUE_INIT_DIRECT_IO_MMAP;
	g.track_open_nodes = 1;
	/* Before the image is touched: a bad FUSE option fails cleanly. */
	f = fuse_new(&args, &fuse2fs_ops, sizeof(fuse2fs_ops), &g);
	if (!f) {
		ret = 1;
		goto out;
	}
	ret = glue_run(&g, fuse_get_session(f), f);
	fuse_destroy(f);
out:
	glue_done(&g, &args);
	return ret;
}
