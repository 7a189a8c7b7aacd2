/*
 * What xattr.c and acl.c share with each other and nobody else: raw access
 * to an inode's attributes (values exactly as stored, ACLs in ext4's
 * on-disk format) and the system.posix_acl_* handlers. Everything here
 * expects fs->lock held.
 */
#ifndef CORE_ACL_H
#define CORE_ACL_H

#include "core/fs_internal.h"

#define FS_XATTR_ACL_ACCESS  "system.posix_acl_access"
#define FS_XATTR_ACL_DEFAULT "system.posix_acl_default"

enum fs_acl_type { FS_ACL_ACCESS, FS_ACL_DEFAULT };

/*
 * Copies the stored value of `name` (full name, prefix included) into a
 * malloc'ed *value. -ENODATA if absent, else 0 or -errno.
 */
int xattr_raw_get(struct fs *fs, ext2_ino_t ino, const char *name,
		  void **value, size_t *size);
/* Stores value as it is (no format translation). 0 or -errno. */
int xattr_raw_set(struct fs *fs, ext2_ino_t ino, const char *name,
		  const void *value, size_t size);
/* Removes name. -ENODATA if it was not there, else 0 or -errno. */
int xattr_raw_remove(struct fs *fs, ext2_ino_t ino, const char *name);

/*
 * getxattr of an ACL: the stored ACL in the xattr format (version 2).
 * size 0 returns the size needed; -ERANGE if size is too small; -ENODATA
 * if there is no ACL of that type.
 */
ssize_t acl_xattr_get(struct fs *fs, ext2_ino_t ino, enum fs_acl_type type,
		      void *value, size_t size);
/*
 * setxattr (size > 0) or removexattr (size 0: no ACL) of an ACL, with the
 * kernel's rules: validation, the mode follows an access ACL,
 * an ACL equivalent to the mode is not stored, default ACLs only on
 * directories. cred NULL means a privileged caller. Stamps ctime.
 */
int acl_xattr_set(struct fs *fs, ext2_ino_t ino, enum fs_acl_type type,
		  const void *value, size_t size, const struct fs_cred *cred);

#endif
