/*
 * siphash.h - SipHash-1-3 for hash tables keyed by client-chosen strings.
 *
 * Keys come from the network, so a predictable hash would let a client
 * force every key into one bucket.  SipHash with a random per-process key
 * (as Redis does) makes that infeasible; 1-3 rounds keep it cheap.
 */
#ifndef VL_UTIL_SIPHASH_H
#define VL_UTIL_SIPHASH_H

#include <stddef.h>
#include <stdint.h>

uint64_t vl_siphash(const void *data, size_t len, const uint8_t key[16]);

/** The process-wide random hash key, filled from getrandom() once. */
const uint8_t *vl_hash_seed(void);

#endif
