/*
 * objstore_local.c - the object store on a local directory.
 *
 * Decisions:
 *  1. Object "a/b.c" is the file <root>/a/b.c; parent directories are made
 *     on demand and fsynced into their own parents, so a durable object never
 *     hangs off a directory entry that a crash could lose.
 *  2. put writes a temp file "<target>.tmp.XXXXXX" in the target's directory,
 *     fsyncs it, rename(2)s it over the target and fsyncs the directory: a
 *     reader sees the old object or the new one, never a mix.
 *  3. put_if_absent does the same but publishes with link(2), which fails
 *     with EEXIST instead of replacing: the compare-and-swap S3 offers with
 *     If-None-Match.  The temp name is unlinked afterwards either way.
 *  4. Any name component containing ".tmp." is reserved for temp files:
 *     such names are refused, skipped by list, and files carrying them are
 *     deleted on open (they are leftovers of a crash mid-put).
 *  5. Names are validated before any path is built: no empty name, no
 *     leading '/', no empty, "." or ".." component, so nothing escapes root.
 *  6. Every syscall that can be interrupted is retried on EINTR; writes and
 *     reads loop over short transfers.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "storage/objstore.h"
#include "util/error.h"

#define TMP_MARK ".tmp."

typedef struct {
    vl_objstore base;
    char *root;
} local_store;

typedef struct {
    vl_objinfo *items;
    size_t n, cap;
} obj_list;

static const vl_objstore_ops local_ops;

/* ---- small helpers ------------------------------------------------------- */

static char *path_join(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    char *p = malloc(la + lb + 2);
    if (!p)
        return NULL;
    memcpy(p, a, la);
    p[la] = '/';
    memcpy(p + la + 1, b, lb + 1);
    return p;
}

/* Decision 5; shared by every backend (objstore.h). */
int vl_objstore_name_valid(const char *name)
{
    if (!name || !*name || name[0] == '/')
        return 0;
    const char *p = name;
    for (;;) {
        const char *slash = strchr(p, '/');
        size_t n = slash ? (size_t)(slash - p) : strlen(p);
        if (n == 0 || (n == 1 && p[0] == '.') || (n == 2 && p[0] == '.' && p[1] == '.'))
            return 0;
        if (memmem(p, n, TMP_MARK, strlen(TMP_MARK)))
            return 0;
        if (!slash)
            return 1;
        p = slash + 1;
    }
}

static int write_all(int fd, const void *data, size_t len)
{
    const char *p = data;
    while (len > 0) {
        ssize_t w = write(fd, p, len);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        p += w;
        len -= (size_t)w;
    }
    return 0;
}

static int fsync_retry(int fd)
{
    int rc;
    do
        rc = fsync(fd);
    while (rc < 0 && errno == EINTR);
    return rc;
}

/* fsync the directory path; returns -1 with errno set on failure. */
static int fsync_dir(const char *path)
{
    int fd;
    do
        fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    while (fd < 0 && errno == EINTR);
    if (fd < 0)
        return -1;
    int rc = fsync_retry(fd);
    int saved = errno;
    close(fd);
    errno = saved;
    return rc;
}

/* Directory part of path ("." when there is none); malloc'd. */
static char *dir_of(const char *path)
{
    const char *slash = strrchr(path, '/');
    if (!slash)
        return strdup(".");
    if (slash == path)
        return strdup("/");
    return strndup(path, (size_t)(slash - path));
}

/* mkdir one directory; when newly created, fsync its parent. */
static int mkdir_one(const char *path)
{
    if (mkdir(path, 0777) == 0) {
        char *parent = dir_of(path);
        if (!parent) {
            errno = ENOMEM;
            return -1;
        }
        int rc = fsync_dir(parent);
        int saved = errno;
        free(parent);
        errno = saved;
        return rc;
    }
    struct stat st;
    if (errno == EEXIST && stat(path, &st) == 0) {
        if (S_ISDIR(st.st_mode))
            return 0;
        errno = ENOTDIR;
    }
    return -1;
}

/* mkdir -p path; errors leave errno set. */
static int mkdir_p(const char *path)
{
    char *tmp = strdup(path);
    if (!tmp) {
        errno = ENOMEM;
        return -1;
    }
    int rc = 0;
    for (char *p = tmp + 1; rc == 0; p++) {
        if (*p != '/' && *p != '\0')
            continue;
        char saved = *p;
        *p = '\0';
        if (p[-1] != '/')
            rc = mkdir_one(tmp);
        *p = saved;
        if (saved == '\0')
            break;
    }
    int e = errno;
    free(tmp);
    errno = e;
    return rc;
}

static vl_status sys_fail(vl_error *err, const char *verb, const char *name, const char *what)
{
    int e = errno;
    vl_status st = (e == ENOMEM) ? VL_ERR_NOMEM : VL_ERR_IO;
    return vl_fail(err, st, "%s %s: %s: %s", verb, name, what, strerror(e));
}

static local_store *as_local(vl_objstore *s)
{
    return (local_store *)(void *)s;
}

/* Validate name and build its full path (*path malloc'd). */
static vl_status resolve(vl_objstore *s, const char *verb, const char *name, char **path,
                         vl_error *err)
{
    if (!vl_objstore_name_valid(name))
        return vl_fail(err, VL_ERR_ARG, "%s: invalid object name \"%s\"", verb, name ? name : "");
    *path = path_join(as_local(s)->root, name);
    if (!*path)
        return vl_fail(err, VL_ERR_NOMEM, "%s %s: out of memory", verb, name);
    return VL_OK;
}

/* ---- writing ------------------------------------------------------------- */

/* Create parent dirs, then write data durably to a fresh temp file beside
 * path.  On success *tmp (malloc'd) names it and the caller publishes it. */
static vl_status write_temp(const char *verb, const char *name, const char *path, const void *data,
                            size_t len, char **tmp, vl_error *err)
{
    char *dir = dir_of(path);
    if (!dir)
        return vl_fail(err, VL_ERR_NOMEM, "%s %s: out of memory", verb, name);
    int rc = mkdir_p(dir);
    free(dir);
    if (rc < 0)
        return sys_fail(err, verb, name, "mkdir");
    size_t plen = strlen(path);
    *tmp = malloc(plen + sizeof TMP_MARK "XXXXXX");
    if (!*tmp)
        return vl_fail(err, VL_ERR_NOMEM, "%s %s: out of memory", verb, name);
    memcpy(*tmp, path, plen);
    memcpy(*tmp + plen, TMP_MARK "XXXXXX", sizeof TMP_MARK "XXXXXX");
    int fd = mkostemp(*tmp, O_CLOEXEC);
    if (fd < 0) {
        vl_status st = sys_fail(err, verb, name, "create temp file");
        free(*tmp);
        *tmp = NULL;
        return st;
    }
    const char *what = NULL;
    if (write_all(fd, data, len) < 0)
        what = "write";
    else if (fsync_retry(fd) < 0)
        what = "fsync";
    int saved = errno;
    if (close(fd) < 0 && !what && errno != EINTR) {
        what = "close";
        saved = errno;
    }
    if (!what)
        return VL_OK;
    unlink(*tmp);
    free(*tmp);
    *tmp = NULL;
    errno = saved;
    return sys_fail(err, verb, name, what);
}

static vl_status sync_parent(const char *verb, const char *name, const char *path, vl_error *err)
{
    char *dir = dir_of(path);
    if (!dir)
        return vl_fail(err, VL_ERR_NOMEM, "%s %s: out of memory", verb, name);
    int rc = fsync_dir(dir);
    free(dir);
    return rc < 0 ? sys_fail(err, verb, name, "fsync directory") : VL_OK;
}

static vl_status local_put(vl_objstore *s, const char *name, const void *data, size_t len,
                           vl_error *err)
{
    char *path, *tmp;
    vl_status st = resolve(s, "put", name, &path, err);
    if (st != VL_OK)
        return st;
    st = write_temp("put", name, path, data, len, &tmp, err);
    if (st == VL_OK) {
        if (rename(tmp, path) < 0) {
            st = sys_fail(err, "put", name, "rename");
            unlink(tmp);
        } else {
            st = sync_parent("put", name, path, err);
        }
        free(tmp);
    }
    free(path);
    return st;
}

static vl_status local_put_if_absent(vl_objstore *s, const char *name, const void *data, size_t len,
                                     vl_error *err)
{
    char *path, *tmp;
    vl_status st = resolve(s, "put_if_absent", name, &path, err);
    if (st != VL_OK)
        return st;
    st = write_temp("put_if_absent", name, path, data, len, &tmp, err);
    if (st == VL_OK) {
        if (link(tmp, path) < 0) {
            if (errno == EEXIST)
                st = vl_fail(err, VL_ERR_CONFLICT,
                             "put_if_absent %s: object already exists (another writer "
                             "committed it first)",
                             name);
            else
                st = sys_fail(err, "put_if_absent", name, "link");
        }
        unlink(tmp);
        free(tmp);
        vl_status st2 = sync_parent("put_if_absent", name, path, st == VL_OK ? err : NULL);
        if (st == VL_OK)
            st = st2;
    }
    free(path);
    return st;
}

/* ---- reading ------------------------------------------------------------- */

static int open_read(const char *path)
{
    int fd;
    do
        fd = open(path, O_RDONLY | O_CLOEXEC);
    while (fd < 0 && errno == EINTR);
    return fd;
}

/* pread up to len bytes at off, looping on short reads; -1 on error. */
static ssize_t pread_full(int fd, void *buf, size_t len, uint64_t off)
{
    size_t got = 0;
    while (got < len) {
        ssize_t r = pread(fd, (char *)buf + got, len - got, (off_t)(off + got));
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        if (r == 0)
            break;
        got += (size_t)r;
    }
    return (ssize_t)got;
}

static vl_status open_object(vl_objstore *s, const char *verb, const char *name, int *fd,
                             vl_error *err)
{
    char *path;
    vl_status st = resolve(s, verb, name, &path, err);
    if (st != VL_OK)
        return st;
    *fd = open_read(path);
    free(path);
    if (*fd >= 0)
        return VL_OK;
    if (errno == ENOENT || errno == ENOTDIR)
        return vl_fail(err, VL_ERR_NOTFOUND, "%s %s: no such object", verb, name);
    return sys_fail(err, verb, name, "open");
}

static vl_status local_get(vl_objstore *s, const char *name, void **data, size_t *len,
                           vl_error *err)
{
    int fd;
    vl_status st = open_object(s, "get", name, &fd, err);
    if (st != VL_OK)
        return st;
    struct stat sb;
    char *buf = NULL;
    ssize_t got = -1;
    if (fstat(fd, &sb) < 0) {
        st = sys_fail(err, "get", name, "fstat");
    } else if (!(buf = malloc((size_t)sb.st_size + 1))) {
        st = vl_fail(err, VL_ERR_NOMEM, "get %s: out of memory", name);
    } else if ((got = pread_full(fd, buf, (size_t)sb.st_size, 0)) < 0) {
        st = sys_fail(err, "get", name, "read");
        free(buf);
    } else {
        *data = buf;
        *len = (size_t)got;
    }
    close(fd);
    return st;
}

static vl_status local_get_range(vl_objstore *s, const char *name, uint64_t offset, size_t len,
                                 void *buf, size_t *got, vl_error *err)
{
    int fd;
    vl_status st = open_object(s, "get_range", name, &fd, err);
    if (st != VL_OK)
        return st;
    ssize_t r = pread_full(fd, buf, len, offset);
    if (r < 0)
        st = sys_fail(err, "get_range", name, "pread");
    else
        *got = (size_t)r;
    close(fd);
    return st;
}

/* The object's pages are the page cache's, shared, populated at once (one
 * pass instead of a fault per 4 KiB page); a file of 0 bytes cannot be
 * mapped and goes through get. */
static vl_status local_map(vl_objstore *s, const char *name, const void **data, size_t *len,
                           vl_error *err)
{
    int fd;
    vl_status st = open_object(s, "map", name, &fd, err);
    if (st != VL_OK)
        return st;
    struct stat sb;
    void *p = MAP_FAILED;
    if (fstat(fd, &sb) < 0)
        st = sys_fail(err, "map", name, "fstat");
    else if (sb.st_size <= 0)
        st = vl_fail(err, VL_ERR_ARG, "map %s: empty", name);
    else if ((p = mmap(NULL, (size_t)sb.st_size, PROT_READ, MAP_PRIVATE | MAP_POPULATE, fd, 0)) ==
             MAP_FAILED)
        st = sys_fail(err, "map", name, "mmap");
    close(fd);
    if (st == VL_OK) {
        *data = p;
        *len = (size_t)sb.st_size;
    }
    return st;
}

static void local_unmap(vl_objstore *s, const void *data, size_t len)
{
    (void)s;
    munmap((void *)data, len);
}

/* ---- listing ------------------------------------------------------------- */

static int list_push(obj_list *l, const char *name, uint64_t size)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 16;
        vl_objinfo *items = realloc(l->items, cap * sizeof *items);
        if (!items)
            return -1;
        l->items = items;
        l->cap = cap;
    }
    char *copy = strdup(name);
    if (!copy)
        return -1;
    l->items[l->n].name = copy;
    l->items[l->n].size = size;
    l->n++;
    return 0;
}

/* Could a name starting with rel (a directory, rel ends with '/') match prefix? */
static int dir_may_match(const char *rel, const char *prefix)
{
    size_t lr = strlen(rel), lp = strlen(prefix);
    size_t n = lr < lp ? lr : lp;
    return strncmp(rel, prefix, n) == 0;
}

static int walk(const char *root, const char *rel, const char *prefix, obj_list *l);

/* Handle one directory entry of walk(). */
static int walk_entry(const char *root, const char *rel, const char *ent, const char *prefix,
                      obj_list *l)
{
    char *child = *rel ? path_join(rel, ent) : strdup(ent);
    char *full = child ? path_join(root, child) : NULL;
    struct stat sb;
    int rc = 0;
    if (!full)
        rc = -1;
    else if (lstat(full, &sb) < 0)
        rc = (errno == ENOENT) ? 0 : -1;
    else if (S_ISDIR(sb.st_mode))
        rc = walk(root, child, prefix, l);
    else if (S_ISREG(sb.st_mode) && !strstr(ent, TMP_MARK) &&
             strncmp(child, prefix, strlen(prefix)) == 0)
        rc = list_push(l, child, (uint64_t)sb.st_size);
    free(full);
    free(child);
    return rc;
}

/* Recursively collect regular files under root/rel matching prefix. */
static int walk(const char *root, const char *rel, const char *prefix, obj_list *l)
{
    if (*rel) {
        char *d = path_join(rel, "");
        if (!d)
            return -1;
        int ok = dir_may_match(d, prefix);
        free(d);
        if (!ok)
            return 0;
    }
    char *dirpath = *rel ? path_join(root, rel) : strdup(root);
    DIR *dir = dirpath ? opendir(dirpath) : NULL;
    free(dirpath);
    if (!dir)
        return -1;
    int rc = 0;
    struct dirent *de;
    while (rc == 0 && (errno = 0, de = readdir(dir))) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        rc = walk_entry(root, rel, de->d_name, prefix, l);
    }
    if (rc == 0 && errno != 0)
        rc = -1;
    int saved = errno;
    closedir(dir);
    errno = saved;
    return rc;
}

static int cmp_info(const void *a, const void *b)
{
    return strcmp(((const vl_objinfo *)a)->name, ((const vl_objinfo *)b)->name);
}

static vl_status local_list(vl_objstore *s, const char *prefix, vl_objinfo **out, size_t *n,
                            vl_error *err)
{
    obj_list l = {0};
    if (!prefix)
        prefix = "";
    if (walk(as_local(s)->root, "", prefix, &l) < 0) {
        vl_status st = sys_fail(err, "list", *prefix ? prefix : "(all)", "read directory");
        vl_objinfo_free(l.items, l.n);
        return st;
    }
    if (l.n > 1)
        qsort(l.items, l.n, sizeof *l.items, cmp_info);
    *out = l.items;
    *n = l.n;
    return VL_OK;
}

void vl_objinfo_free(vl_objinfo *list, size_t n)
{
    if (!list)
        return;
    for (size_t i = 0; i < n; i++)
        free(list[i].name);
    free(list);
}

/* ---- delete, open, close ------------------------------------------------- */

static vl_status local_del(vl_objstore *s, const char *name, vl_error *err)
{
    char *path;
    vl_status st = resolve(s, "del", name, &path, err);
    if (st != VL_OK)
        return st;
    if (unlink(path) < 0) {
        if (errno == ENOENT || errno == ENOTDIR)
            st = vl_fail(err, VL_ERR_NOTFOUND, "del %s: no such object", name);
        else
            st = sys_fail(err, "del", name, "unlink");
    } else {
        st = sync_parent("del", name, path, err);
    }
    free(path);
    return st;
}

static void local_close(vl_objstore *s)
{
    local_store *ls = as_local(s);
    free(ls->root);
    free(ls);
}

/* Remove crash leftovers: every file whose name carries the temp mark. */
static int remove_temps(const char *dirpath)
{
    DIR *dir = opendir(dirpath);
    if (!dir)
        return -1;
    int rc = 0, removed = 0;
    struct dirent *de;
    while (rc == 0 && (de = readdir(dir))) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        char *full = path_join(dirpath, de->d_name);
        struct stat sb;
        if (!full)
            rc = -1;
        else if (lstat(full, &sb) < 0)
            rc = (errno == ENOENT) ? 0 : -1;
        else if (S_ISDIR(sb.st_mode))
            rc = remove_temps(full);
        else if (strstr(de->d_name, TMP_MARK) && unlink(full) == 0)
            removed = 1;
        free(full);
    }
    int saved = errno;
    closedir(dir);
    if (rc == 0 && removed)
        rc = fsync_dir(dirpath);
    else
        errno = saved;
    return rc;
}

int vl_objstore_local_mkdirs(const char *dir)
{
    return mkdir_p(dir);
}

vl_status vl_objstore_local_open(const char *dir, vl_objstore **out, vl_error *err)
{
    if (!dir || !*dir)
        return vl_fail(err, VL_ERR_ARG, "object store: empty directory name");
    if (mkdir_p(dir) < 0)
        return vl_fail(err, VL_ERR_IO, "object store %s: mkdir: %s", dir, strerror(errno));
    if (remove_temps(dir) < 0)
        return vl_fail(err, VL_ERR_IO, "object store %s: removing temp files: %s", dir,
                       strerror(errno));
    local_store *ls = calloc(1, sizeof *ls);
    if (!ls || !(ls->root = strdup(dir))) {
        free(ls);
        return vl_fail(err, VL_ERR_NOMEM, "object store %s: out of memory", dir);
    }
    ls->base.ops = &local_ops;
    *out = &ls->base;
    return VL_OK;
}

static const vl_objstore_ops local_ops = {
    .put = local_put,
    .put_if_absent = local_put_if_absent,
    .get = local_get,
    .get_range = local_get_range,
    .list = local_list,
    .del = local_del,
    .close = local_close,
    .map = local_map,
    .unmap = local_unmap,
};
