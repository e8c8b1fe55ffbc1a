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

/* 1 in the ASan build: tests there use smaller data sets. */
#if defined(__SANITIZE_ADDRESS__)
#define VL_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define VL_SANITIZED 1
#endif
#endif
#ifndef VL_SANITIZED
#define VL_SANITIZED 0
#endif

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

/** A cmocka fixture's state: one fresh temporary directory. */
typedef struct {
    char dir[64];
} vl_test_dir;

/** For a cmocka setup: *state = a new vl_test_dir /tmp/vl_<tag>_XXXXXX. */
static inline int vl_test_dir_setup(void **state, const char *tag)
{
    vl_test_dir *t = malloc(sizeof *t);
    if (!t || !vl_test_tmpdir(t->dir, sizeof t->dir, tag)) {
        free(t);
        return -1;
    }
    *state = t;
    return 0;
}

/** For a cmocka teardown: remove the directory of vl_test_dir_setup. */
static inline int vl_test_dir_teardown(void **state)
{
    vl_test_dir *t = *state;
    vl_test_rmtree(t->dir);
    free(t);
    return 0;
}

/** The shared datasets: $VL_DATASETS, else ../shared/datasets beside the
 *  checkout (tests run from the repository root). */
static inline const char *vl_test_datasets(void)
{
    const char *d = getenv("VL_DATASETS");
    return d && *d ? d : "../shared/datasets";
}

#endif
