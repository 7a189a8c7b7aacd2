/*
 * fuse2fs only: fstat(2) of a file unlinked while open. The high-level
 * API answers GETATTR through the node's path, and an unlinked node has
 * none, so libfuse failed it with ESTALE where ext4 gives st_nlink 0.
 * The kernel's GETATTR for stat(2) and fstat(2) carries no file handle,
 * so beneath libfuse (fuse_io.c) this notes which inode each open node
 * id is, from the OPEN and CREATE replies until the last RELEASE, and
 * gives a GETATTR of an open node FUSE_GETATTR_FH with a handle that is
 * the inode number tagged GLUE_INO_FH: libfuse then calls getattr with
 * that handle and no path. The inode, not the open handle, goes in: a
 * RELEASE may free the handle while the GETATTR is being answered.
 */
#include <pthread.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>

#include <linux/fuse.h>

#include "fuse_glue.h"

#define NODE_BUCKETS 256

struct open_node {
	struct open_node *next;
	uint64_t nodeid;
	ext2_ino_t ino;
	unsigned opens;
};

static pthread_mutex_t nodes_lock = PTHREAD_MUTEX_INITIALIZER;
static struct open_node *nodes[NODE_BUCKETS];

/*
 * The OPEN or CREATE this thread is answering: libfuse reads, handles
 * and replies to a request on one thread, and the high-level API replies
 * to these before its handler returns.
 */
static __thread struct {
	uint64_t unique;
	uint64_t nodeid; /* OPEN's node; CREATE's comes with the reply */
	uint32_t opcode; /* 0: none */
} pending;

static struct open_node **bucket(uint64_t nodeid)
{
	return &nodes[(nodeid * 0x9e3779b97f4a7c15ull) >> 56];
}

/* Caller holds nodes_lock. */
static struct open_node **find(uint64_t nodeid)
{
	struct open_node **p = bucket(nodeid);

	while (*p && (*p)->nodeid != nodeid)
		p = &(*p)->next;
	return p;
}

/* 1 if noted, 0 out of memory (that node's fstat after unlink fails). */
static int node_opened(uint64_t nodeid, ext2_ino_t ino)
{
	struct open_node **p, *n;

	pthread_mutex_lock(&nodes_lock);
	p = find(nodeid);
	if (*p) {
		n = *p;
		n->opens++;
	} else {
		n = malloc(sizeof(*n));
		if (n) {
			n->next = NULL;
			n->nodeid = nodeid;
			n->ino = ino;
			n->opens = 1;
			*p = n;
		}
	}
	pthread_mutex_unlock(&nodes_lock);
	return n != NULL;
}

static void node_released(uint64_t nodeid)
{
	struct open_node **p, *n;

	pthread_mutex_lock(&nodes_lock);
	p = find(nodeid);
	n = *p;
	if (n && !--n->opens) {
		*p = n->next;
		free(n);
	}
	pthread_mutex_unlock(&nodes_lock);
}

/* The inode of an open node, or 0. */
static ext2_ino_t node_ino(uint64_t nodeid)
{
	struct open_node *n;
	ext2_ino_t ino;

	pthread_mutex_lock(&nodes_lock);
	n = *find(nodeid);
	ino = n ? n->ino : 0;
	pthread_mutex_unlock(&nodes_lock);
	return ino;
}

void glue_nodes_request(void *buf, size_t len)
{
	struct fuse_in_header *h = buf;
	struct fuse_getattr_in *ga;
	ext2_ino_t ino;

	switch (h->opcode) {
	case FUSE_OPEN:
	case FUSE_CREATE:
		pending.unique = h->unique;
		pending.nodeid = h->nodeid;
		pending.opcode = h->opcode;
		break;
	case FUSE_RELEASE:
		node_released(h->nodeid);
		break;
	case FUSE_GETATTR:
		if (len < sizeof(*h) + sizeof(*ga))
			break;
		ga = (struct fuse_getattr_in *)(h + 1);
		if (ga->getattr_flags & FUSE_GETATTR_FH)
			break;
		ino = node_ino(h->nodeid);
		if (ino) {
			ga->getattr_flags |= FUSE_GETATTR_FH;
			ga->fh = GLUE_INO_FH | ino;
		}
		break;
	}
}

uint64_t glue_nodes_reply(const struct iovec *iov, int count)
{
	const struct fuse_out_header *out = iov[0].iov_base;
	struct fuse_open_out open_out;
	size_t off = 0, want, at, n;
	uint64_t nodeid = pending.nodeid;
	struct glue_file *gf;
	char body[sizeof(struct fuse_entry_out) + sizeof(open_out)];
	int i;

	if (!pending.opcode || iov[0].iov_len < sizeof(*out) ||
	    out->unique != pending.unique)
		return 0;
	at = pending.opcode == FUSE_CREATE ? sizeof(struct fuse_entry_out) : 0;
	pending.opcode = 0;
	if (out->error)
		return 0;
	/* The reply's arguments, whichever iovecs libfuse put them in. */
	want = at + sizeof(open_out);
	for (i = 1; i < count && off < want; i++) {
		n = iov[i].iov_len < want - off ? iov[i].iov_len : want - off;
		memcpy(body + off, iov[i].iov_base, n);
		off += n;
	}
	if (off < want)
		return 0;
	if (at)
		memcpy(&nodeid, body + offsetof(struct fuse_entry_out, nodeid),
		       sizeof(nodeid));
	memcpy(&open_out, body + at, sizeof(open_out));
	/*
	 * Before the kernel has the reply: until then no RELEASE can come
	 * to free the handle, or find the node not yet noted.
	 */
	gf = glue_file_get(open_out.fh);
	if (!gf || !node_opened(nodeid, gf->ino))
		return 0;
	return nodeid;
}

void glue_nodes_unreply(uint64_t nodeid)
{
	node_released(nodeid);
}

int glue_fh_ino(uint64_t fh, ext2_ino_t *ino)
{
	if (!(fh & GLUE_INO_FH))
		return 0;
	*ino = (ext2_ino_t)(fh & ~GLUE_INO_FH);
	return 1;
}
