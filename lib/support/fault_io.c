/*
 * fault_io_manager: a stacking io_manager for tests that fails the Nth
 * read or write with EIO, above the channel underneath or, in device
 * mode, below a cache_io channel; and the same device-mode faults, by
 * block, attached straight to the cache_io channel of a mounted server
 * (the FUSE4FS_FAULT testing hook). See fault_io.h.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "support/cache_io_internal.h"
#include "support/fault_io.h"

#define FAULT_MAGIC 0x46494f31u /* "FIO1" */

struct fault {
	unsigned magic;
	io_channel inner;
	unsigned long read_nth, write_nth; /* countdowns; 0: off */
	int device;
	unsigned long injected;
	blk64_t read_blk, write_blk; /* fail every IO touching it; ~0: off */
};

static io_manager backing;

static struct fault *fault_of(io_channel ch)
{
	struct fault *f;

	if (!ch || ch->magic != EXT2_ET_MAGIC_IO_CHANNEL ||
	    ch->manager != fault_io_manager)
		return NULL;
	f = ch->private_data;
	return f && f->magic == FAULT_MAGIC ? f : NULL;
}

/* True when this IO is the one to fail. */
static int fire(struct fault *f, int write)
{
	unsigned long *nth = write ? &f->write_nth : &f->read_nth;

	if (!*nth || --*nth)
		return 0;
	f->injected++;
	return 1;
}

/* True when the byte range touches the bad block of this direction. */
static int hits_block(struct fault *f, int write, unsigned long long offset,
		      size_t len)
{
	blk64_t bad = write ? f->write_blk : f->read_blk;
	unsigned long long bs = f->inner->block_size;

	if (bad == ~0ULL || !len || !bs)
		return 0;
	if (offset / bs > bad || (offset + len - 1) / bs < bad)
		return 0;
	f->injected++;
	return 1;
}

static int dev_hook(void *arg, int write, unsigned long long offset,
		    size_t len)
{
	struct fault *f = arg;

	if (hits_block(f, write, offset, len))
		return EIO;
	return fire(f, write) ? EIO : 0;
}

static errcode_t fio_open(const char *name, int flags, io_channel *chp)
{
	io_manager m = backing ? backing : cache_io_manager;
	io_channel ch = NULL, inner = NULL;
	struct fault *f;
	errcode_t err;

	err = m->open(name, flags, &inner);
	if (err)
		return err;
	f = calloc(1, sizeof(*f));
	if (f)
		ch = cio_chan_new(fault_io_manager, name, f);
	if (!ch) {
		free(f);
		io_channel_close(inner);
		return EXT2_ET_NO_MEMORY;
	}
	f->magic = FAULT_MAGIC;
	f->inner = inner;
	f->read_blk = ~0ULL;
	f->write_blk = ~0ULL;
	ch->block_size = inner->block_size;
	ch->flags = inner->flags;
	*chp = ch;
	return 0;
}

static errcode_t fio_close(io_channel ch)
{
	struct fault *f = ch->private_data;
	errcode_t err;

	if (--ch->refcount > 0)
		return 0;
	/* The cache may still write back through dev_hook: f lives on. */
	err = io_channel_close(f->inner);
	f->magic = 0;
	free(f);
	cio_chan_free(ch);
	return err;
}

static errcode_t fio_set_blksize(io_channel ch, int blksize)
{
	struct fault *f = ch->private_data;
	errcode_t err = io_channel_set_blksize(f->inner, blksize);

	if (!err)
		ch->block_size = blksize;
	return err;
}

static errcode_t fio_read_blk64(io_channel ch, unsigned long long blk,
				int count, void *buf)
{
	struct fault *f = ch->private_data;
	errcode_t err;

	if (!f->device && fire(f, 0))
		err = EIO;
	else
		err = io_channel_read_blk64(f->inner, blk, count, buf);
	if (err)
		err = cio_chan_read_error(ch, blk, count, buf, err);
	return err;
}

static errcode_t fio_write_blk64(io_channel ch, unsigned long long blk,
				 int count, const void *buf)
{
	struct fault *f = ch->private_data;
	errcode_t err;

	if (!f->device && fire(f, 1))
		err = EIO;
	else
		err = io_channel_write_blk64(f->inner, blk, count, buf);
	if (err)
		err = cio_chan_write_error(ch, blk, count, buf, err);
	return err;
}

static errcode_t fio_write_byte(io_channel ch, unsigned long offset,
				int count, const void *buf)
{
	struct fault *f = ch->private_data;

	if (!f->device && fire(f, 1))
		return EIO;
	return io_channel_write_byte(f->inner, offset, count, buf);
}

static errcode_t fio_flush(io_channel ch)
{
	struct fault *f = ch->private_data;

	return io_channel_flush(f->inner);
}

static errcode_t fio_set_option(io_channel ch, const char *option,
				const char *arg)
{
	struct fault *f = ch->private_data;
	unsigned long n;
	char *end;

	if (strcmp(option, "fail_read") && strcmp(option, "fail_write") &&
	    strcmp(option, "fail_device")) {
		if (!f->inner->manager->set_option)
			return EXT2_ET_INVALID_ARGUMENT;
		return f->inner->manager->set_option(f->inner, option, arg);
	}
	if (!arg || !*arg)
		return EXT2_ET_INVALID_ARGUMENT;
	errno = 0;
	n = strtoul(arg, &end, 10);
	if (errno || *end)
		return EXT2_ET_INVALID_ARGUMENT;
	if (!strcmp(option, "fail_device"))
		return fault_io_set_device(ch, n != 0);
	if (!strcmp(option, "fail_read"))
		f->read_nth = n;
	else
		f->write_nth = n;
	return 0;
}

static errcode_t fio_get_stats(io_channel ch, io_stats *stats)
{
	struct fault *f = ch->private_data;

	if (!f->inner->manager->get_stats)
		return EXT2_ET_UNIMPLEMENTED;
	return f->inner->manager->get_stats(f->inner, stats);
}

static errcode_t fio_discard(io_channel ch, unsigned long long blk,
			     unsigned long long count)
{
	struct fault *f = ch->private_data;

	return io_channel_discard(f->inner, blk, count);
}

static errcode_t fio_cache_readahead(io_channel ch, unsigned long long blk,
				     unsigned long long count)
{
	struct fault *f = ch->private_data;

	return io_channel_cache_readahead(f->inner, blk, count);
}

static errcode_t fio_zeroout(io_channel ch, unsigned long long blk,
			     unsigned long long count)
{
	struct fault *f = ch->private_data;

	return io_channel_zeroout(f->inner, blk, count);
}

static struct struct_io_manager fault_io_ops = {
	.magic = EXT2_ET_MAGIC_IO_MANAGER,
	.name = "fault-injecting I/O Manager",
	.open = fio_open,
	.close = fio_close,
	.set_blksize = fio_set_blksize,
	.read_blk = cio_chan_read_blk,
	.write_blk = cio_chan_write_blk,
	.flush = fio_flush,
	.write_byte = fio_write_byte,
	.set_option = fio_set_option,
	.get_stats = fio_get_stats,
	.read_blk64 = fio_read_blk64,
	.write_blk64 = fio_write_blk64,
	.discard = fio_discard,
	.cache_readahead = fio_cache_readahead,
	.zeroout = fio_zeroout,
};

io_manager fault_io_manager = &fault_io_ops;

void fault_io_set_backing(io_manager manager)
{
	backing = manager;
}

io_channel fault_io_inner(io_channel ch)
{
	struct fault *f = fault_of(ch);

	return f ? f->inner : NULL;
}

errcode_t fault_io_fail_read(io_channel ch, unsigned long nth)
{
	struct fault *f = fault_of(ch);

	if (!f)
		return EXT2_ET_MAGIC_IO_CHANNEL;
	f->read_nth = nth;
	return 0;
}

errcode_t fault_io_fail_write(io_channel ch, unsigned long nth)
{
	struct fault *f = fault_of(ch);

	if (!f)
		return EXT2_ET_MAGIC_IO_CHANNEL;
	f->write_nth = nth;
	return 0;
}

errcode_t fault_io_set_device(io_channel ch, int on)
{
	struct fault *f = fault_of(ch);

	if (!f)
		return EXT2_ET_MAGIC_IO_CHANNEL;
	if (cache_io_set_dev_hook(f->inner, on ? dev_hook : NULL, f))
		return EXT2_ET_UNIMPLEMENTED;
	f->device = !!on;
	f->read_nth = 0;
	f->write_nth = 0;
	return 0;
}

unsigned long fault_io_injected(io_channel ch)
{
	struct fault *f = fault_of(ch);

	return f ? f->injected : 0;
}

/* Parses "read=B,write=B" into f; 0 or -1 for a bad spec. */
static int parse_spec(struct fault *f, const char *spec)
{
	const char *p = spec;

	while (*p) {
		blk64_t *dst;
		char *end;

		if (!strncmp(p, "read=", 5)) {
			dst = &f->read_blk;
			p += 5;
		} else if (!strncmp(p, "write=", 6)) {
			dst = &f->write_blk;
			p += 6;
		} else {
			return -1;
		}
		if (*p < '0' || *p > '9')
			return -1;
		errno = 0;
		*dst = strtoull(p, &end, 10);
		if (errno || *dst == ~0ULL || (*end && *end != ','))
			return -1;
		p = end;
		if (*p == ',' && !*++p)
			return -1;
	}
	return f->read_blk == ~0ULL && f->write_blk == ~0ULL ? -1 : 0;
}

struct fault *fault_io_attach(io_channel cache_ch, const char *spec)
{
	struct fault *f = calloc(1, sizeof(*f));

	if (!f)
		return NULL;
	f->magic = FAULT_MAGIC;
	f->inner = cache_ch;
	f->read_blk = ~0ULL;
	f->write_blk = ~0ULL;
	if (parse_spec(f, spec) ||
	    cache_io_set_dev_hook(cache_ch, dev_hook, f)) {
		free(f);
		return NULL;
	}
	return f;
}

void fault_io_detach(struct fault *f)
{
	if (!f)
		return;
	f->magic = 0;
	free(f);
}
