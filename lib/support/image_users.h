/*
 * Other writers of an image: processes with it open for writing, loop
 * devices attached to it read-write. See image_users.c.
 */
#ifndef SUPPORT_IMAGE_USERS_H
#define SUPPORT_IMAGE_USERS_H

#include <stddef.h>

/*
 * How long an open waits for another writer, or the holder of the image's
 * lock, to go away (umount(8) of a FUSE mount returns before its server
 * has closed the image), and how often it looks meanwhile.
 */
#define IMAGE_GRACE_MS 3000
#define IMAGE_POLL_MS  20

/*
 * Whether another process or a loop device writes bytes [off, off + size)
 * of the image (a regular file or a block device): 1 with who filled in
 * ("pid 1234 (fuse2fs)", "/dev/loop3"), else 0. A process with the image
 * open for writing counts whatever the range (nothing tells which bytes
 * it writes); a loop device only if its offset and sizelimit overlap the
 * range. This process's own open files do not count.
 */
int image_other_writer(const char *image, unsigned long long off,
		       unsigned long long size, char *who, size_t len);

/* image_other_writer, waiting up to IMAGE_GRACE_MS for the writer to go. */
int image_wait_other_writer(const char *image, unsigned long long off,
			    unsigned long long size, char *who, size_t len);

#endif
