/*
 * dirlock.c - one owner per data directory.
 *
 * Two engines on one directory both append to the WAL, and one's flush
 * removes log files the other still writes: acknowledged writes are lost.
 * So vl_open takes an exclusive lock first and keeps it until vl_close.
 *
 * Decisions:
 *  1. flock(LOCK_EX | LOCK_NB) on <dir>/LOCK.  flock belongs to the open
 *     file description, so a second vl_open of the same directory in the
 *     same process is refused too.  (A POSIX fcntl lock belongs to the
 *     process: it would let that second open through, and closing any fd of
 *     the file would silently drop the lock.)
 *  2. The kernel releases the lock when the holder exits, however it exits,
 *     so a crash leaves no stale lock.  The file itself stays: deleting it
 *     would race a new owner that already opened the old inode.
 *  3. The holder writes its pid into the file only so a refusal can name
 *     it; the lock, not the file's contents, decides who owns the directory.
 *  4. O_CLOEXEC: a program the server executes does not inherit the lock.
 *  5. Taken before anything else touches the directory: opening the object
 *     store deletes leftover temp files, which could be an owner's writes
 *     in flight.
 */
#include "core/dirlock.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "storage/objstore.h"
#include "util/error.h"

/* The pid the holder wrote, or 0 if unreadable. */
static long holder_pid(int fd)
{
    char buf[32];
    ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
    if (n <= 0)
        return 0;
    buf[n] = '\0';
    char *end;
    long pid = strtol(buf, &end, 10);
    return (pid > 0 && (*end == '\n' || *end == '\0')) ? pid : 0;
}

static vl_status refuse(const char *dir, int fd, vl_error *err)
{
    long pid = holder_pid(fd);
    if (pid == getpid())
        return vl_fail(err, VL_ERR_BUSY,
                       "data directory %s is already open in this process (pid %ld); "
                       "one engine owns a directory",
                       dir, pid);
    if (pid)
        return vl_fail(err, VL_ERR_BUSY,
                       "data directory %s is locked by another process (pid %ld); "
                       "only one server may use a directory",
                       dir, pid);
    return vl_fail(err, VL_ERR_BUSY,
                   "data directory %s is locked by another process; only one server may "
                   "use a directory",
                   dir);
}

/* Record our pid in the (locked) file. */
static vl_status write_pid(const char *path, int fd, vl_error *err)
{
    char buf[32];
    int n = snprintf(buf, sizeof buf, "%ld\n", (long)getpid());
    if (ftruncate(fd, 0) != 0 || pwrite(fd, buf, (size_t)n, 0) != n)
        return vl_fail(err, VL_ERR_IO, "%s: write: %s", path, strerror(errno));
    return VL_OK;
}

vl_status vl_dirlock_acquire(const char *dir, int *out, vl_error *err)
{
    if (!dir || !*dir)
        return vl_fail(err, VL_ERR_ARG, "empty data directory name");
    if (vl_objstore_local_mkdirs(dir) != 0)
        return vl_fail(err, VL_ERR_IO, "data directory %s: mkdir: %s", dir, strerror(errno));
    size_t len = strlen(dir) + sizeof "/" VL_DIRLOCK_FILE;
    char *path = malloc(len);
    if (!path)
        return vl_fail(err, VL_ERR_NOMEM, "data directory %s: out of memory", dir);
    snprintf(path, len, "%s/%s", dir, VL_DIRLOCK_FILE);
    vl_status st = VL_OK;
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) {
        st = vl_fail(err, VL_ERR_IO, "%s: open: %s", path, strerror(errno));
    } else if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        st = errno == EWOULDBLOCK ? refuse(dir, fd, err)
                                  : vl_fail(err, VL_ERR_IO, "%s: flock: %s", path, strerror(errno));
    } else {
        st = write_pid(path, fd, err);
    }
    free(path);
    if (st != VL_OK) {
        if (fd >= 0)
            close(fd);
        return st;
    }
    *out = fd;
    return VL_OK;
}
