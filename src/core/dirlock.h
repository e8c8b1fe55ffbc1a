/* dirlock.h - the exclusive lock that makes one engine the owner of a data
 * directory (see dirlock.c). */
#ifndef VL_CORE_DIRLOCK_H
#define VL_CORE_DIRLOCK_H

#include "vexlake.h"

/** Name of the lock file inside the data directory. */
#define VL_DIRLOCK_FILE "LOCK"

/**
 * Create dir if missing and lock <dir>/LOCK exclusively.  Returns the fd
 * that holds the lock (close it to release) in *fd.  VL_ERR_BUSY, with a
 * message naming the directory and the holder's pid, when another engine
 * (in this process or another) holds it; VL_ERR_IO on other failures.
 */
vl_status vl_dirlock_acquire(const char *dir, int *fd, vl_error *err);

#endif
