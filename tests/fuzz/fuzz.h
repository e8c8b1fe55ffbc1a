/*
 * fuzz.h - what every libFuzzer harness in tests/fuzz shares.
 *
 * A harness is tests/fuzz/fuzz_<name>.c defining LLVMFuzzerTestOneInput;
 * the Makefile picks it up by wildcard and links it against the library
 * built with -fsanitize=fuzzer-no-link,address,undefined (build/fuzz/bin/).
 * Its seeds live in tests/fuzz/corpus/<name>/, inputs that once crashed in
 * tests/fuzz/regressions/<name>/, an optional dictionary in
 * tests/fuzz/<name>.dict.  tests/fuzz/run.sh runs them (make fuzz, and the
 * short pass of make test).
 *
 * Conventions:
 *  - A harness checks properties, not just "no crash": VL_FUZZ_CHECK
 *    aborts (libFuzzer then saves the input) when a parser breaks its own
 *    contract, e.g. a decoded object does not survive re-encoding.
 *  - Inputs to parsers of checksummed formats start with one control
 *    byte; its bit 0 asks the harness to repair the checksum so the
 *    mutations reach the parser behind it instead of dying at the CRC.
 *  - Parsers that only read files get a per-process directory (made once,
 *    removed at exit) on tmpfs when there is one, to keep exec/s high.
 */
#ifndef VL_FUZZ_H
#define VL_FUZZ_H

#include <fcntl.h>
#include <ftw.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define VL_FUZZ_CHECK(cond)                                                                        \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: property violated: %s\n", __FILE__, __LINE__, #cond);          \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

/* Bit 0 of the control byte: repair the checksum of what follows. */
#define VL_FUZZ_FIX_CRC 0x01u

static char vl_fuzz_dir_path[64];

static inline int vl_fuzz_rm_entry(const char *path, const struct stat *sb, int flag,
                                   struct FTW *ftw)
{
    (void)sb, (void)flag, (void)ftw;
    return remove(path);
}

static inline void vl_fuzz_rmtree(const char *dir)
{
    nftw(dir, vl_fuzz_rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static inline void vl_fuzz_dir_cleanup(void)
{
    vl_fuzz_rmtree(vl_fuzz_dir_path);
}

/** The process's scratch directory (created on first use). */
static inline const char *vl_fuzz_dir(void)
{
    if (!vl_fuzz_dir_path[0]) {
        struct stat sb;
        const char *base = stat("/dev/shm", &sb) == 0 && S_ISDIR(sb.st_mode) ? "/dev/shm" : "/tmp";
        snprintf(vl_fuzz_dir_path, sizeof vl_fuzz_dir_path, "%s/vl_fuzz_XXXXXX", base);
        if (!mkdtemp(vl_fuzz_dir_path)) {
            perror("mkdtemp");
            abort();
        }
        atexit(vl_fuzz_dir_cleanup);
    }
    return vl_fuzz_dir_path;
}

/** Write len bytes to path (created or truncated); aborts on failure,
 *  which is the harness's environment failing, not the parser. */
static inline void vl_fuzz_write_file(const char *path, const void *data, size_t len)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0 || (len && write(fd, data, len) != (ssize_t)len)) {
        perror(path);
        abort();
    }
    close(fd);
}

/** Deterministic chunk sizes derived from the input (splitmix64). */
static inline uint64_t vl_fuzz_next(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

#endif
