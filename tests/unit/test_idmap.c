/*
 * Unit tests of the uid=/gid= mapping in the core (fs_map_uid): on-disk
 * owner 0 and N trade places in every id the core hands out and takes
 * (getattr, new inodes, chown), other ids pass through, and the rules
 * that compare the caller with the owner (setgid on write, SETFLAGS)
 * compare ids as the caller sees them, while privilege stays with the
 * caller's real id.
 */
#include "unit.h"

#define N 1000
#define G 100

static const struct fs_cred root;
static const struct fs_cred user = { N, G, 022 };

/* The owner on disk, as "uid:gid" packed into one number for CHECK_EQ. */
static long long disk_owner(struct fs *fs, ext2_ino_t ino)
{
	struct ext2_inode_large inode;

	fs_lock(fs);
	fsi_read(fs, ino, &inode);
	fs_unlock(fs);
	return (long long)inode_uid(inode) << 32 | inode_gid(inode);
}

#define OWNER(u, g) ((long long)(u) << 32 | (g))

int main(void)
{
	const char *img = unit_mkfs("idmap.img", "-t ext4", 8192);
	struct fs_options o = { .device = img, .map_uid = N, .map_gid = G };
	struct stat st, set;
	struct fs *fs = NULL;
	ext2_ino_t ino;
	uint32_t flags;

	CHECK_EQ(fs_open(&o, &fs, NULL), 0);
	if (!fs)
		return unit_done();

	printf("== what the disk has, as the kernel sees it\n");
	CHECK_EQ(inode_getattr(fs, EXT2_ROOT_INO, &st), 0);
	CHECK_EQ(st.st_uid, N);
	CHECK_EQ(st.st_gid, G);

	printf("== new inodes: the caller's ids, swapped back\n");
	CHECK_EQ(namei_mknod(fs, EXT2_ROOT_INO, "mine", S_IFREG | 0644, 0,
			     &user, &st), 0);
	ino = st.st_ino;
	CHECK_EQ(st.st_uid, N);
	CHECK_EQ(st.st_gid, G);
	CHECK_EQ(disk_owner(fs, ino), OWNER(0, 0));
	CHECK_EQ(namei_mknod(fs, EXT2_ROOT_INO, "roots", S_IFREG | 0644, 0,
			     &root, &st), 0);
	CHECK_EQ(st.st_uid, 0);
	CHECK_EQ(disk_owner(fs, st.st_ino), OWNER(N, G));

	printf("== chown: other ids pass, N and 0 swap\n");
	set.st_uid = 555;
	set.st_gid = 0;
	CHECK_EQ(inode_setattr(fs, ino, &set, FS_SET_UID | FS_SET_GID, &root,
			       &st), 0);
	CHECK_EQ(st.st_uid, 555);
	CHECK_EQ(st.st_gid, 0);
	CHECK_EQ(disk_owner(fs, ino), OWNER(555, G));
	set.st_uid = N;
	set.st_gid = G;
	CHECK_EQ(inode_setattr(fs, ino, &set, FS_SET_UID | FS_SET_GID, &root,
			       &st), 0);
	CHECK_EQ(disk_owner(fs, ino), OWNER(0, 0));

	printf("== owner rules compare the ids the caller sees\n");
	CHECK_EQ(ioctl_getflags(fs, ino, &flags), 0);
	CHECK_EQ(ioctl_setflags(fs, ino, flags | EXT2_NODUMP_FL, &user), 0);
	CHECK_EQ(ioctl_getflags(fs, ino, &flags), 0);
	CHECK(flags & EXT2_NODUMP_FL);
	/* ...but N is no root: immutable stays root's. */
	CHECK_EQ(ioctl_setflags(fs, ino, flags | EXT2_IMMUTABLE_FL, &user),
		 -EPERM);
	/* A writer in the file's group (G, 0 on disk) keeps setgid. */
	set.st_mode = 02644;
	CHECK_EQ(inode_setattr(fs, ino, &set, FS_SET_MODE, &root, &st), 0);
	set.st_size = 0;
	CHECK_EQ(inode_setattr(fs, ino, &set, FS_SET_SIZE, &user, &st), 0);
	CHECK_EQ(st.st_mode & 07777, 02644);

	CHECK_EQ(fs_close(fs), 0);
	unit_fsck(img);
	return unit_done();
}
