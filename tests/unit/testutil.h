/*
 * testutil.h - helpers shared by the unit tests: temporary directories
 * and the location of the shared ANN datasets.
 */
#ifndef VL_TESTUTIL_H
#define VL_TESTUTIL_H

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

static int vl_test_rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb, (void)flag, (void)ftw;
    return remove(path);
}

/** Remove dir and everything below it. */
static inline void vl_test_rmtree(const char *dir)
{
    nftw(dir, vl_test_rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/** Create a fresh directory /tmp/vl_<tag>_XXXXXX into buf (64 bytes). */
static inline char *vl_test_tmpdir(char *buf, size_t cap, const char *tag)
{
    snprintf(buf, cap, "/tmp/vl_%s_XXXXXX", tag);
    return mkdtemp(buf);
}

/** The shared datasets: $VL_DATASETS, else ../shared/datasets beside the
 *  checkout (tests run from the repository root). */
static inline const char *vl_test_datasets(void)
{
    const char *d = getenv("VL_DATASETS");
    return d && *d ? d : "../shared/datasets";
}

#endif
