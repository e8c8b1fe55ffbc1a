/*
 * fuzz_vector_args.c - vector and number arguments of the commands:
 * "FP32 <blob>", a text vector through vl_vector_arg, "VERSION n", K, and
 * VSEARCH's bounded options ("EF n" through vl_bounded_arg).
 *
 * Byte 0 picks the entry point (low three bits), the rest is the argument
 * word, copied to a heap buffer of exactly its length (arguments are not
 * NUL terminated on the wire; a read past the end is an ASan report).
 * Properties on success: 2 words used for FP32, 1 for text (a lone word
 * "fp32" asks for a blob that is not there: an error); an FP32 vector is
 * the blob's bytes, len/4 elements, all finite; a text vector has
 * 1..VL_MAX_DIM elements; K is in 1..VL_MAX_K; a VERSION is >= 1; an EF
 * is in 1..VL_VSEARCH_MAX_EF.  Errors carry a message.
 */
#include <math.h>

#include "commands/vector_args.h"
#include "fuzz.h"

static void vector(const char *word, size_t len, int fp32)
{
    const char *argv[2] = {"FP32", word};
    size_t lens[2] = {4, len};
    float *out = malloc((size_t)VL_MAX_DIM * sizeof *out);
    uint32_t dim = 0;
    int used = 0;
    vl_error err = {{0}};
    vl_status st = fp32 ? vl_vector_arg(2, argv, lens, 0, out, &dim, &used, &err)
                        : vl_vector_arg(1, argv + 1, lens + 1, 0, out, &dim, &used, &err);
    if (st == VL_OK) {
        VL_FUZZ_CHECK(used == (fp32 ? 2 : 1));
        VL_FUZZ_CHECK(dim >= 1 && dim <= VL_MAX_DIM);
        for (uint32_t i = 0; i < dim; i++)
            VL_FUZZ_CHECK(isfinite(out[i]));
        if (fp32)
            VL_FUZZ_CHECK(dim == len / 4 && len % 4 == 0 && memcmp(out, word, len) == 0);
    } else {
        VL_FUZZ_CHECK(err.msg[0] != '\0');
    }
    free(out);
}

static void version(const char *word, size_t len)
{
    const char *argv[2] = {"VERSION", word};
    size_t lens[2] = {7, len};
    uint64_t v = 0;
    vl_error err = {{0}};
    if (vl_version_arg(2, argv, lens, 0, &v, &err) == VL_OK)
        VL_FUZZ_CHECK(v >= 1);
    else
        VL_FUZZ_CHECK(err.msg[0] != '\0');
}

static void k_arg(const char *word, size_t len)
{
    uint32_t k = 0;
    vl_error err = {{0}};
    if (vl_k_arg(word, len, &k, &err) == VL_OK)
        VL_FUZZ_CHECK(k >= 1 && k <= VL_MAX_K);
    else
        VL_FUZZ_CHECK(err.msg[0] != '\0');
}

static void bounded(const char *word, size_t len)
{
    const char *argv[2] = {"EF", word};
    size_t lens[2] = {2, len};
    uint32_t v = 0;
    vl_error err = {{0}};
    if (vl_bounded_arg(2, argv, lens, 0, "EF", 1, VL_VSEARCH_MAX_EF, &v, &err) == VL_OK)
        VL_FUZZ_CHECK(v >= 1 && v <= VL_VSEARCH_MAX_EF);
    else
        VL_FUZZ_CHECK(err.msg[0] != '\0');
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    size_t len = size - 1;
    char *word = malloc(len ? len : 1);
    memcpy(word, data + 1, len);
    switch (data[0] & 7) {
    case 0: vector(word, len, 1); break;
    case 1: vector(word, len, 0); break;
    case 2: version(word, len); break;
    case 3: k_arg(word, len); break;
    default: bounded(word, len); break;
    }
    free(word);
    return 0;
}
