/*
 * vector_args.h - reading a vector argument: text "[1, 2, 3]" or
 * FP32 <little-endian float32 blob> (two words, the fast path).
 */
#ifndef VL_COMMANDS_VECTOR_ARGS_H
#define VL_COMMANDS_VECTOR_ARGS_H

#include <stddef.h>
#include <stdint.h>

#include "vexlake.h"

/**
 * Parse the vector starting at argv[i] into out (room for VL_MAX_DIM
 * floats, aligned for float).  *used receives how many words it took (1 or
 * 2).  On error err holds a message suitable for "-ERR <msg>".
 */
vl_status vl_vector_arg(int argc, const char **argv, const size_t *lens, int i, float *out,
                        uint32_t *dim, int *used, vl_error *err);

/** Parse "VERSION n" at argv[i] (n a positive integer). */
vl_status vl_version_arg(int argc, const char **argv, const size_t *lens, int i, uint64_t *version,
                         vl_error *err);

/** Room for one VL_MAX_DIM vector, for handlers on the loop thread. */
float *vl_scratch_vector(void);

/** Parse a positive integer K (1..VL_MAX_K) from a word. */
vl_status vl_k_arg(const char *s, size_t len, uint32_t *k, vl_error *err);

/** Largest VSEARCH EF: ten times the largest K (a beam below K is raised
 *  to K by the index, so any EF up to this is meaningful). */
#define VL_VSEARCH_MAX_EF (10u * VL_MAX_K)
/** Largest VSEARCH NPROBE: the largest --ivf-lists (a segment with fewer
 *  lists probes all of them). */
#define VL_VSEARCH_MAX_NPROBE 65536u

/**
 * Parse "NAME n" at argv[i] (NAME already matched) with n an integer in
 * lo..hi, strictly as util/number.h reads integers.  The message names the
 * option: "EF must be an integer from 1 to 100000".
 */
vl_status vl_bounded_arg(int argc, const char **argv, const size_t *lens, int i, const char *name,
                         uint32_t lo, uint32_t hi, uint32_t *out, vl_error *err);

#endif
