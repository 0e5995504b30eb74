/* SPDX-License-Identifier: GPL-2.0 */
#ifndef AMBER_CRC32C_H
#define AMBER_CRC32C_H

#include <stddef.h>
#include <stdint.h>

/*
 * CRC-32C (Castagnoli, reflected polynomial 0x82f63b78) register update
 * without pre- or post-inversion: the same function as the kernel's
 * crc32c(crc, buf, len). The standard CRC-32C of a buffer, the one the
 * store superblock carries, is ~crc32c(~0, buf, len); crc32c_std() is that.
 */
uint32_t crc32c(uint32_t crc, const void *buf, size_t len);

static inline uint32_t crc32c_std(const void *buf, size_t len)
{
	return ~crc32c(~0U, buf, len);
}

#endif
