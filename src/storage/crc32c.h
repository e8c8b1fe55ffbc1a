/*
 * crc32c.h - CRC-32C (Castagnoli), the checksum of every WAL record.
 *
 * Chosen over CRC-32 because x86-64 (SSE4.2) and ARMv8 compute it in
 * hardware; a table-driven fallback gives identical results elsewhere.
 */
#ifndef VL_STORAGE_CRC32C_H
#define VL_STORAGE_CRC32C_H

#include <stddef.h>
#include <stdint.h>

/** Extend crc (start with 0) over len bytes of data. */
uint32_t vl_crc32c(uint32_t crc, const void *data, size_t len);

/** The portable implementation, exposed so tests can compare it with the
 *  hardware path. */
uint32_t vl_crc32c_portable(uint32_t crc, const void *data, size_t len);

#endif
