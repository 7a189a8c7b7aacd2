/*
 * Channel helpers for the io_managers of lib/support (cache_io and the
 * stacking fault_io): allocating and freeing a channel, the byte length
 * of a block count, the 32-bit block ops, and calling a channel's
 * read_error / write_error handler.
 */
#include <stdlib.h>
#include <string.h>

#include "support/cache_io_internal.h"

io_channel cio_chan_new(io_manager m, const char *name, void *priv)
{
	io_channel ch = calloc(1, sizeof(*ch));

	if (!ch)
		return NULL;
	ch->name = strdup(name);
	if (!ch->name) {
		free(ch);
		return NULL;
	}
	ch->magic = EXT2_ET_MAGIC_IO_CHANNEL;
	ch->manager = m;
	ch->block_size = 1024;
	ch->refcount = 1;
	ch->private_data = priv;
	return ch;
}

void cio_chan_free(io_channel ch)
{
	free(ch->name);
	ch->magic = 0;
	free(ch);
}

size_t cio_chan_bytes(io_channel ch, int count)
{
	return count < 0 ? (size_t)-(long long)count :
			   (size_t)count * ch->block_size;
}

errcode_t cio_chan_read_blk(io_channel ch, unsigned long blk, int count,
			    void *buf)
{
	return ch->manager->read_blk64(ch, blk, count, buf);
}

errcode_t cio_chan_write_blk(io_channel ch, unsigned long blk, int count,
			     const void *buf)
{
	return ch->manager->write_blk64(ch, blk, count, buf);
}

errcode_t cio_chan_read_error(io_channel ch, unsigned long long blk,
			      int count, void *buf, errcode_t err)
{
	if (!ch->read_error)
		return err;
	return ch->read_error(ch, blk, count, buf, cio_chan_bytes(ch, count),
			      0, err);
}

errcode_t cio_chan_write_error(io_channel ch, unsigned long long blk,
			       int count, const void *buf, errcode_t err)
{
	if (!ch->write_error)
		return err;
	return ch->write_error(ch, blk, count, buf, cio_chan_bytes(ch, count),
			       0, err);
}
