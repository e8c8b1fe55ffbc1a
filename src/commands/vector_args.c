/* vector_args.c - see vector_args.h. */
#include "commands/vector_args.h"

#include <stdlib.h>
#include <string.h>

#include "commands/commands.h"
#include "core/vector_text.h"
#include "util/error.h"
#include "util/number.h"

static vl_status fp32_blob(const char *blob, size_t len, float *out, uint32_t *dim, vl_error *err)
{
    if (len == 0)
        return vl_fail(err, VL_ERR_ARG, "invalid vector: empty vector");
    if (len % 4)
        return vl_fail(err, VL_ERR_ARG,
                       "invalid vector: FP32 blob length %zu is not a multiple of 4", len);
    if (len / 4 > VL_MAX_DIM)
        return vl_fail(err, VL_ERR_LIMIT, "vector has %zu dimensions; the maximum is %u", len / 4,
                       VL_MAX_DIM);
    memcpy(out, blob, len); /* little-endian host: the bytes are the floats */
    *dim = (uint32_t)(len / 4);
    return vl_vector_check_finite(out, *dim, err);
}

vl_status vl_vector_arg(int argc, const char **argv, const size_t *lens, int i, float *out,
                        uint32_t *dim, int *used, vl_error *err)
{
    if (vl_arg_is(argv[i], lens[i], "FP32")) {
        if (i + 1 >= argc)
            return vl_fail(err, VL_ERR_ARG, "FP32 must be followed by a float32 blob");
        *used = 2;
        return fp32_blob(argv[i + 1], lens[i + 1], out, dim, err);
    }
    *used = 1;
    return vl_vector_parse_text(argv[i], lens[i], out, VL_MAX_DIM, dim, err);
}

vl_status vl_k_arg(const char *s, size_t len, uint32_t *k, vl_error *err)
{
    long long v;
    if (vl_parse_ll(s, len, &v) != 0 || v <= 0)
        return vl_fail(err, VL_ERR_ARG, "K must be a positive integer");
    if (v > VL_MAX_K)
        return vl_fail(err, VL_ERR_LIMIT, "K must be at most %u", VL_MAX_K);
    *k = (uint32_t)v;
    return VL_OK;
}

vl_status vl_version_arg(int argc, const char **argv, const size_t *lens, int i, uint64_t *version,
                         vl_error *err)
{
    if (i + 1 >= argc || !vl_arg_is(argv[i], lens[i], "VERSION"))
        return vl_fail(err, VL_ERR_ARG, "syntax error near '%.*s'",
                       (int)(lens[i] > 32 ? 32 : lens[i]), argv[i]);
    long long v;
    if (vl_parse_ll(argv[i + 1], lens[i + 1], &v) != 0 || v <= 0)
        return vl_fail(err, VL_ERR_ARG, "VERSION must be a positive integer");
    *version = (uint64_t)v;
    return VL_OK;
}

vl_status vl_bounded_arg(int argc, const char **argv, const size_t *lens, int i, const char *name,
                         uint32_t lo, uint32_t hi, uint32_t *out, vl_error *err)
{
    if (i + 1 >= argc)
        return vl_fail(err, VL_ERR_ARG, "syntax error: %s needs a value", name);
    long long v;
    if (vl_parse_ll(argv[i + 1], lens[i + 1], &v) != 0 || v < lo || v > hi)
        return vl_fail(err, VL_ERR_ARG, "%s must be an integer from %u to %u", name, lo, hi);
    *out = (uint32_t)v;
    return VL_OK;
}

float *vl_scratch_vector(void)
{
    static _Alignas(64) float scratch[VL_MAX_DIM];
    return scratch;
}
