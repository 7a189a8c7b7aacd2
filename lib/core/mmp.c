/*
 * Multi-mount protection (the mmp feature), as ext4 does it: a read-write
 * mount checks the MMP block (an active sequence must stay unchanged for
 * two check intervals, e2fsck's must not be there), claims it with a
 * sequence of its own, keeps bumping that sequence from a thread every
 * update interval while mounted, and writes the clean value at unmount.
 *
 * The block is read and written with O_DIRECT on a descriptor of its
 * own, as another node would see it, never through the block cache.
 * Only the checksum needs libext2fs (under fs->lock); the IO and the
 * waiting run without the lock.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/fs_internal.h"

struct mmp {
	int fd;
	struct mmp_struct *buf; /* one fs block, aligned for O_DIRECT */
	off_t off;              /* of the MMP block on the device */
	size_t size;            /* the fs block size */
	unsigned interval;      /* seconds between updates */
	unsigned check;         /* seconds another node waits, at least */
	__u32 seq;              /* what we wrote last */
	int done;               /* the block is not ours any more */
	pthread_t thread;
	int running;
	int stop;
	pthread_mutex_t lock;   /* guards stop, with wake */
	pthread_cond_t wake;
};

static int mmp_read(struct fs *fs, struct mmp *m, const char **msg)
{
	ssize_t n = pread(m->fd, m->buf, m->size, m->off);
	int ok;

	if (n != (ssize_t)m->size) {
		*msg = "cannot read the MMP block";
		return n < 0 ? -errno : -EIO;
	}
	fs_lock(fs);
	ok = ext2fs_mmp_csum_verify(fs->e2, m->buf);
	fs_unlock(fs);
	if (m->buf->mmp_magic != EXT4_MMP_MAGIC || !ok) {
		*msg = "MMP block is damaged (run e2fsck)";
		return -EUCLEAN;
	}
	return 0;
}

/* Fills the buffer with sequence seq, this node's name and the time. */
static void mmp_fill(struct fs *fs, struct mmp *m, __u32 seq)
{
	struct mmp_struct *p = m->buf;
	const char *dev = strrchr(fs->device, '/');

	memset(p, 0, m->size);
	p->mmp_magic = EXT4_MMP_MAGIC;
	p->mmp_seq = seq;
	p->mmp_time = (__u64)time(NULL);
	gethostname((char *)p->mmp_nodename, sizeof(p->mmp_nodename));
	strncpy((char *)p->mmp_bdevname, dev ? dev + 1 : fs->device,
		sizeof(p->mmp_bdevname));
	p->mmp_check_interval = (__u16)m->check;
	fs_lock(fs);
	ext2fs_mmp_csum_set(fs->e2, p);
	fs_unlock(fs);
}

/* Writes the buffer: 0 or -errno. Needs nothing of libext2fs. */
static int mmp_put(struct mmp *m)
{
	ssize_t n = pwrite(m->fd, m->buf, m->size, m->off);

	if (n != (ssize_t)m->size)
		return n < 0 ? -errno : -EIO;
	m->seq = m->buf->mmp_seq;
	return 0;
}

static int mmp_write(struct fs *fs, struct mmp *m, __u32 seq)
{
	mmp_fill(fs, m, seq);
	return mmp_put(m);
}

/*
 * Sleeps s seconds; returns early (non-zero) if asked to stop. Sleeps
 * without a thread (at mount) when the updater is not running.
 */
static int mmp_sleep(struct mmp *m, unsigned s)
{
	struct timespec until;
	int stop;

	clock_gettime(CLOCK_MONOTONIC, &until);
	until.tv_sec += s;
	pthread_mutex_lock(&m->lock);
	while (!m->stop &&
	       pthread_cond_timedwait(&m->wake, &m->lock, &until) == 0)
		;
	stop = m->stop;
	pthread_mutex_unlock(&m->lock);
	return stop;
}

/*
 * The check at mount; 0 once the block is ours, else -errno with *msg.
 * Nothing else has been written to the device yet.
 */
static int mmp_claim(struct fs *fs, struct mmp *m, const char **msg)
{
	unsigned wait;
	__u32 seq;
	int ret;

	ret = mmp_read(fs, m, msg);
	if (ret)
		return ret;
	seq = m->buf->mmp_seq;
	if (m->buf->mmp_check_interval > m->check)
		m->check = m->buf->mmp_check_interval;
	wait = m->check * 2 + 1 < m->check + 60 ? m->check * 2 + 1 :
						    m->check + 60;
	if (seq == EXT4_MMP_SEQ_FSCK) {
		*msg = "e2fsck is running on the filesystem (MMP block says so)";
		return -EBUSY;
	}
	if (seq != EXT4_MMP_SEQ_CLEAN && seq > EXT4_MMP_SEQ_MAX) {
		*msg = "MMP block has an unknown sequence: not safe to mount (run e2fsck)";
		return -EBUSY;
	}
	if (seq != EXT4_MMP_SEQ_CLEAN) {
		/* Not unmounted cleanly: is somebody still updating it? */
		mmp_sleep(m, wait);
		ret = mmp_read(fs, m, msg);
		if (ret)
			return ret;
		if (m->buf->mmp_seq != seq)
			goto busy;
	}
	ret = mmp_write(fs, m, ext2fs_mmp_new_seq());
	if (ret) {
		*msg = "cannot write the MMP block";
		return ret;
	}
	/* Two nodes that claimed it at once: one of them sees the other. */
	mmp_sleep(m, wait);
	seq = m->seq;
	ret = mmp_read(fs, m, msg);
	if (ret)
		return ret;
	if (m->buf->mmp_seq == seq)
		return 0;
busy:
	*msg = "filesystem is in use on another node (its MMP block is being updated)";
	return -EBUSY;
}

/*
 * The updater: a new sequence every interval. A block that is not what
 * we wrote last means another node uses the filesystem: recorded as an
 * error (errors= applies) and left alone. A read-only fs (errors=
 * remount-ro) needs no protection any more: marked clean, as ext4 does.
 * At unmount it just stops: the block is marked clean after the last
 * metadata write (mmp_finish).
 */
static void *mmp_thread(void *arg)
{
	struct fs *fs = arg;
	struct mmp *m = fs->mmp;
	const char *msg;
	int ro, stop;

	while (!(stop = mmp_sleep(m, m->interval))) {
		fs_lock(fs);
		ro = fs->readonly;
		fs_unlock(fs);
		if (ro)
			break;
		if (mmp_read(fs, m, &msg))
			continue;
		if (m->buf->mmp_seq != m->seq) {
			m->done = 1;
			fs_lock(fs);
			FS_CORRUPT(fs, 0, "MMP block changed: the filesystem seems to be mounted on another node too");
			fs_unlock(fs);
			return NULL;
		}
		mmp_write(fs, m, m->seq >= EXT4_MMP_SEQ_MAX ? 1 : m->seq + 1);
	}
	if (!stop) {
		mmp_write(fs, m, EXT4_MMP_SEQ_CLEAN);
		m->done = 1;
	}
	return NULL;
}

static void mmp_free(struct mmp *m)
{
	if (m->fd >= 0)
		close(m->fd);
	pthread_cond_destroy(&m->wake);
	pthread_mutex_destroy(&m->lock);
	free(m->buf);
	free(m);
}

int mmp_start(struct fs *fs, const char **msg)
{
	struct ext2_super_block *sb = fs->e2->super;
	pthread_condattr_t ca;
	struct mmp *m;
	int ret;

	if (fs->readonly || !ext2fs_has_feature_mmp(sb))
		return 0;
	if (sb->s_mmp_block <= sb->s_first_data_block ||
	    sb->s_mmp_block >= ext2fs_blocks_count(sb)) {
		*msg = "MMP block number is out of range (run e2fsck)";
		return -EUCLEAN;
	}
	m = calloc(1, sizeof(*m));
	if (!m)
		return -ENOMEM;
	m->fd = -1;
	pthread_mutex_init(&m->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&m->wake, &ca);
	pthread_condattr_destroy(&ca);
	m->size = fs->e2->blocksize;
	if (posix_memalign((void **)&m->buf, m->size, m->size)) {
		m->buf = NULL;
		ret = -ENOMEM;
		goto fail;
	}
	/* Files on tmpfs refuse O_DIRECT; one page cache serves all there. */
	m->fd = open(fs->device, O_RDWR | O_DIRECT | O_DSYNC | O_CLOEXEC);
	if (m->fd < 0 && errno == EINVAL)
		m->fd = open(fs->device, O_RDWR | O_DSYNC | O_CLOEXEC);
	if (m->fd < 0) {
		ret = -errno;
		*msg = "cannot open the device for the MMP block";
		goto fail;
	}
	m->off = (off_t)(fs->data_off + sb->s_mmp_block * fs->e2->blocksize);
	m->interval = sb->s_mmp_update_interval;
	if (!m->interval)
		m->interval = EXT4_MMP_UPDATE_INTERVAL;
	if (m->interval > EXT4_MMP_MAX_UPDATE_INTERVAL)
		m->interval = EXT4_MMP_MAX_UPDATE_INTERVAL;
	m->check = m->interval > EXT4_MMP_MIN_CHECK_INTERVAL ?
			   m->interval : EXT4_MMP_MIN_CHECK_INTERVAL;
	ret = mmp_claim(fs, m, msg);
	if (ret)
		goto fail;
	fs->mmp = m;
	return 0;
fail:
	mmp_free(m);
	return ret;
}

int fs_start_background(struct fs *fs)
{
	struct mmp *m = fs->mmp;
	int err;

	if (!m || m->running)
		return 0;
	err = pthread_create(&m->thread, NULL, mmp_thread, fs);
	if (err)
		return -err;
	m->running = 1;
	return 0;
}

void mmp_stop(struct fs *fs)
{
	struct mmp *m = fs->mmp;

	if (!m)
		return;
	if (m->running) {
		pthread_mutex_lock(&m->lock);
		m->stop = 1;
		pthread_cond_signal(&m->wake);
		pthread_mutex_unlock(&m->lock);
		pthread_join(m->thread, NULL);
		m->running = 0;
	}
	if (!m->done)
		mmp_fill(fs, m, EXT4_MMP_SEQ_CLEAN);
}

void mmp_finish(struct fs *fs)
{
	struct mmp *m = fs->mmp;

	if (!m)
		return;
	if (!m->done)
		mmp_put(m);
	fs->mmp = NULL;
	mmp_free(m);
}
