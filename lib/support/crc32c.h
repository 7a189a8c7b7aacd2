/*
 * CRC32C for libext2fs' metadata checksums, computed with the CPU's crc32
 * instruction where there is one. crc32c.c defines ext2fs_crc32c_le
 * itself: libext2fs calls that function through its PLT, so the
 * executable's definition replaces the library's table-driven one for
 * every checksum the library computes (ELF symbol interposition).
 */
#ifndef SUPPORT_CRC32C_H
#define SUPPORT_CRC32C_H

#include <stddef.h>
#include <stdint.h>

/*
 * Which implementation serves ext2fs_crc32c_le: "sse4.2", "table"
 * (no SSE4.2 on this CPU) or "libext2fs" (not x86-64: not replaced).
 * Calling it also makes the linker take crc32c.o out of libsupport.a.
 */
const char *crc32c_impl(void);

/* The portable implementation, for tests that compare the two. */
uint32_t crc32c_table(uint32_t crc, const unsigned char *p, size_t len);

#endif
