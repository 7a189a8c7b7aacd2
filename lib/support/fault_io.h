/*
 * fault_io_manager: an io_manager for tests that stacks on another one
 * (cache_io_manager unless fault_io_set_backing says otherwise) and makes
 * the Nth read or the Nth write fail with EIO, either at its own level or,
 * in device mode, underneath a cache_io channel where the cache issues IO
 * to the image fd (so write-back and read-miss errors can be tested).
 *
 * Configured by the functions below on an open channel, or by io options
 * (ext2fs_open2's io_options, io_channel_set_options):
 *   fail_read=N    the Nth read from now fails (0: none)
 *   fail_write=N   the Nth write from now fails (write_byte counts)
 *   fail_device=1  count and fail the IO the cache under this channel
 *                  issues to the fd, not the calls into this channel
 * Other options go to the channel underneath. Each fault fires once.
 * Not thread-safe beyond what the cache's lock gives device mode.
 */
#ifndef SUPPORT_FAULT_IO_H
#define SUPPORT_FAULT_IO_H

#include <ext2fs/ext2fs.h>

extern io_manager fault_io_manager;

/* The manager new fault_io channels open underneath. */
void fault_io_set_backing(io_manager manager);
/* The channel under a fault_io channel; NULL if ch is not one. */
io_channel fault_io_inner(io_channel ch);

errcode_t fault_io_fail_read(io_channel ch, unsigned long nth);
errcode_t fault_io_fail_write(io_channel ch, unsigned long nth);
/*
 * on != 0: device mode (the channel underneath must be a cache_io one,
 * else EXT2_ET_UNIMPLEMENTED); resets both counts.
 */
errcode_t fault_io_set_device(io_channel ch, int on);
/* How many faults this channel has injected. */
unsigned long fault_io_injected(io_channel ch);

/*
 * Device-mode faults by block on a cache_io channel itself, with no
 * fault_io channel above it: what a mounted server stacks when a test
 * asks (FUSE4FS_FAULT). spec is "read=B", "write=B" or both, comma
 * separated: every read (write) the cache issues to the fd, and every
 * direct IO announced by cache_io_sync_range, that touches block B (in
 * the channel's block size at the time of the IO) fails with EIO, for as
 * long as the channel lives, as a bad sector would. Returns NULL for a
 * bad spec, a channel that is not a cache_io one, or no memory.
 */
struct fault;
struct fault *fault_io_attach(io_channel cache_ch, const char *spec);
/* Frees what fault_io_attach made; only once its channel is closed. */
void fault_io_detach(struct fault *f);

#endif
