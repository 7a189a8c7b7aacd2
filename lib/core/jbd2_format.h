/*
 * The on-disk format of ext4's journal (jbd2), as the kernel and e2fsck
 * read it: every field is big-endian. Byte offsets rather than structs,
 * since the records are read straight out of journal blocks.
 */
#ifndef CORE_JBD2_FORMAT_H
#define CORE_JBD2_FORMAT_H

#include <stdint.h>

#define JBD2_MAGIC 0xc03b3998u

/* Every journal block but data blocks starts with this header. */
#define JH_MAGIC     0
#define JH_BLOCKTYPE 4
#define JH_SEQUENCE  8
#define JH_SIZE	     12

#define JBD2_DESCRIPTOR_BLOCK 1
#define JBD2_COMMIT_BLOCK     2
#define JBD2_SUPERBLOCK_V1    3
#define JBD2_SUPERBLOCK_V2    4
#define JBD2_REVOKE_BLOCK     5

/* The journal superblock (block 0 of the journal). */
#define JSB_BLOCKSIZE	      12
#define JSB_MAXLEN	      16 /* blocks in the journal */
#define JSB_FIRST	      20 /* first block of the log */
#define JSB_SEQUENCE	      24 /* first transaction expected in the log */
#define JSB_START	      28 /* block of that transaction; 0: log empty */
#define JSB_ERRNO	      32 /* set when the journal was aborted */
#define JSB_FEATURE_COMPAT    36
#define JSB_FEATURE_INCOMPAT  40
#define JSB_FEATURE_RO_COMPAT 44
#define JSB_UUID	      48 /* 16 bytes */
#define JSB_NR_USERS	      64
#define JSB_CHECKSUM_TYPE     80 /* one byte */
#define JSB_NUM_FC_BLKS	      84
#define JSB_CHECKSUM	      252
#define JSB_SIZE	      1024

#define JBD2_FEATURE_COMPAT_CHECKSUM	   0x1 /* v1: crc32 in commit */
#define JBD2_FEATURE_INCOMPAT_REVOKE	   0x1
#define JBD2_FEATURE_INCOMPAT_64BIT	   0x2
#define JBD2_FEATURE_INCOMPAT_ASYNC_COMMIT 0x4
#define JBD2_FEATURE_INCOMPAT_CSUM_V2	   0x8
#define JBD2_FEATURE_INCOMPAT_CSUM_V3	   0x10
#define JBD2_FEATURE_INCOMPAT_FAST_COMMIT  0x20
#define JBD2_KNOWN_INCOMPAT                                                   \
	(JBD2_FEATURE_INCOMPAT_REVOKE | JBD2_FEATURE_INCOMPAT_64BIT |         \
	 JBD2_FEATURE_INCOMPAT_ASYNC_COMMIT | JBD2_FEATURE_INCOMPAT_CSUM_V2 | \
	 JBD2_FEATURE_INCOMPAT_CSUM_V3)

#define JBD2_CRC32C_CHKSUM 4

/*
 * Descriptor block tags. With CSUM_V3 a tag is 16 bytes: block number,
 * flags (32 bits), high block number, checksum (32 bits). Otherwise:
 * block number, checksum (16 bits), flags (16 bits), then the high block
 * number only with 64BIT; CSUM_V2 adds two bytes to that size. A tag
 * without SAME_UUID is followed by a 16-byte UUID.
 */
#define TAG_BLOCKNR	 0
#define TAG3_FLAGS	 4
#define TAG_BLOCKNR_HIGH 8
#define TAG3_CHECKSUM	 12
#define TAG_CHECKSUM	 4
#define TAG_FLAGS	 6

#define JBD2_FLAG_ESCAPE    0x1 /* data began with JBD2_MAGIC: zeroed */
#define JBD2_FLAG_SAME_UUID 0x2
#define JBD2_FLAG_DELETED   0x4
#define JBD2_FLAG_LAST_TAG  0x8

/* CSUM_V2/V3: descriptor and revoke blocks end in a 32-bit checksum. */
#define JBD2_TAIL_SIZE 4

/* Commit block: the CSUM_V2/V3 checksum is the first h_chksum word. */
#define JC_CHKSUM 16

/* Revoke block: bytes used (header included), then block numbers. */
#define JR_COUNT   12
#define JR_RECORDS 16

static inline uint32_t jbd2_get32(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	       (uint32_t)p[2] << 8 | p[3];
}

static inline uint16_t jbd2_get16(const unsigned char *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static inline void jbd2_put32(unsigned char *p, uint32_t v)
{
	p[0] = v >> 24;
	p[1] = v >> 16;
	p[2] = v >> 8;
	p[3] = v;
}

#endif
