/*
 * objstore_cache.c - the local cache of immutable lake objects.
 *
 * Decisions:
 *  1. Object "a/b" is file "<dir>/a/b": the object's bytes, then an 8-byte
 *     trailer, "VLC1" and the CRC-32C of the bytes (little-endian).  A file
 *     too short, without the magic or with another CRC is corrupt: it is
 *     deleted (stats.dropped) and the object fetched again.  The lake still
 *     checks the manifest's CRC of what it reads; the cache's own checksum
 *     catches a damaged copy before the lake would refuse to open.
 *  2. A copy is written to "<path>.tmp.<pid>.<n>" and renamed into place,
 *     so a reader never sees half a file.  No fsync: a copy torn by a crash
 *     fails its checksum and is fetched again.  ".tmp." never occurs in an
 *     object name, and open removes leftovers of cacheable names.
 *  3. Reads that miss fill the cache (get, not get_range: a range is not
 *     the object); so do put and put_if_absent of a cacheable object, so a
 *     writer's own flushes are warm on its next start.  del removes the copy
 *     before deleting the object.
 *  4. A get_range of a cached object reads and verifies the whole file, then
 *     slices it: one code path that is always checked.
 *  5. The index (an LRU list, most recent first) is the cache's belief, not
 *     the truth: a file deleted under it is found missing on read, which is
 *     a miss and drops the entry.  Its bytes count until then.  Hits touch
 *     the file's mtime, so the order survives a restart (open sorts by it).
 *  6. One mutex guards the index and the renames and unlinks that change
 *     it, so eviction never removes a file a concurrent fill just placed.
 *     File reads and the inner store's requests run outside it.  Each fill
 *     gets a generation number, so a reader that found a corrupt file drops
 *     it only if no newer fill replaced it meanwhile.
 *  7. A copy that cannot be made (disk full, permissions) is counted in
 *     stats.errors and otherwise ignored: the cache only ever saves work.
 *  8. One process per cache directory: open takes flock(LOCK_EX|LOCK_NB)
 *     on "<dir>/.lock" (with our pid in it, to name the holder) before it
 *     looks at any file, because adopting evicts and removes unfinished
 *     copies, which would be another server's fills in flight, and two
 *     indexes over one directory would each count bytes the other evicts.
 *     The kernel drops the lock when the process ends, however it ends.
 */
#include <errno.h>
#include <fcntl.h>
#include <dirent.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "storage/crc32c.h"
#include "storage/objstore_cache.h"
#include "util/error.h"

#define TRAILER 8
static const char MAGIC[4] = {'V', 'L', 'C', '1'};

typedef struct entry {
    char *name;
    uint64_t size; /* file bytes, trailer included */
    uint64_t gen;
    int64_t mtime_ns; /* only while open sorts the adopted files */
    struct entry *prev, *next;
} entry;

typedef struct {
    vl_objstore base;
    vl_objstore *inner;
    char *dir;
    int lock_fd; /* holds <dir>/.lock */
    pthread_mutex_t lock;
    entry *head, *tail; /* most recently used first */
    uint64_t next_gen, tmp_seq;
    vl_cache_stats st;
} cache;

static const vl_objstore_ops cache_ops;

static cache *as_cache(vl_objstore *s)
{
    return (cache *)(void *)s;
}

int vl_objstore_cache_keeps(const char *name)
{
    if (!vl_objstore_name_valid(name) || strncmp(name, "tables/", 7) != 0)
        return 0;
    const char *coll = name + 7, *kind = strchr(coll, '/');
    if (!kind || kind == coll)
        return 0;
    kind++;
    const char *rest = strchr(kind, '/');
    if (!rest || !rest[1])
        return 0;
    size_t kl = (size_t)(rest - kind);
    return (kl == 8 && strncmp(kind, "segments", 8) == 0) ||
           (kl == 7 && strncmp(kind, "deletes", 7) == 0) ||
           (kl == 9 && strncmp(kind, "manifests", 9) == 0) ||
           (kl == 7 && strncmp(kind, "indexes", 7) == 0);
}

static int path_of(const cache *c, const char *name, char *out, size_t cap)
{
    int n = snprintf(out, cap, "%s/%s", c->dir, name);
    return n < 0 || (size_t)n >= cap ? -1 : 0;
}

/* ---- the index (callers hold c->lock) ------------------------------------ */

static entry *find(cache *c, const char *name)
{
    for (entry *e = c->head; e; e = e->next)
        if (strcmp(e->name, name) == 0)
            return e;
    return NULL;
}

static void unlink_entry(cache *c, entry *e)
{
    if (e->prev)
        e->prev->next = e->next;
    else
        c->head = e->next;
    if (e->next)
        e->next->prev = e->prev;
    else
        c->tail = e->prev;
    e->prev = e->next = NULL;
}

static void push_front(cache *c, entry *e)
{
    e->next = c->head;
    e->prev = NULL;
    if (c->head)
        c->head->prev = e;
    c->head = e;
    if (!c->tail)
        c->tail = e;
}

/* Forget e and delete its file. */
static void drop(cache *c, entry *e)
{
    char path[PATH_MAX];
    if (path_of(c, e->name, path, sizeof path) == 0)
        unlink(path);
    unlink_entry(c, e);
    c->st.bytes -= e->size;
    c->st.files--;
    free(e->name);
    free(e);
}

static void evict_to_fit(cache *c, const entry *keep)
{
    while (c->st.bytes > c->st.capacity && c->tail && c->tail != keep) {
        drop(c, c->tail);
        c->st.evictions++;
    }
}

/* ---- reading a cached file ----------------------------------------------- */

typedef enum { READ_OK, READ_MISSING, READ_CORRUPT } read_result;

/* The object bytes of file path (*data malloc'd), checked against its
 * trailer. */
static read_result read_verified(const char *path, void **data, size_t *len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT ? READ_MISSING : READ_CORRUPT;
    struct stat sb;
    char *buf = NULL;
    read_result r = READ_CORRUPT;
    if (fstat(fd, &sb) == 0 && sb.st_size >= TRAILER && (buf = malloc((size_t)sb.st_size))) {
        size_t size = (size_t)sb.st_size, got = 0;
        while (got < size) {
            ssize_t n = read(fd, buf + got, size - got);
            if (n <= 0)
                break;
            got += (size_t)n;
        }
        size_t body = size - TRAILER;
        uint32_t crc = vl_crc32c(0, buf, body);
        const unsigned char *t = (const unsigned char *)buf + body;
        uint32_t want =
            (uint32_t)t[4] | (uint32_t)t[5] << 8 | (uint32_t)t[6] << 16 | (uint32_t)t[7] << 24;
        if (got == size && memcmp(t, MAGIC, 4) == 0 && crc == want)
            r = READ_OK;
    }
    if (r == READ_OK) {
        futimens(fd, NULL); /* LRU order for the next start */
        *data = buf;
        *len = (size_t)sb.st_size - TRAILER;
    } else {
        free(buf);
    }
    close(fd);
    return r;
}

/* VL_OK with the cached copy of name, or VL_ERR_NOTFOUND (a miss; a
 * missing or corrupt file is dropped from the index first). */
static vl_status lookup(cache *c, const char *name, void **data, size_t *len)
{
    char path[PATH_MAX];
    pthread_mutex_lock(&c->lock);
    entry *e = find(c, name);
    uint64_t gen = e ? e->gen : 0;
    if (e) {
        unlink_entry(c, e);
        push_front(c, e);
    }
    pthread_mutex_unlock(&c->lock);
    if (!e || path_of(c, name, path, sizeof path) != 0)
        return VL_ERR_NOTFOUND;
    read_result r = read_verified(path, data, len);
    pthread_mutex_lock(&c->lock);
    if (r == READ_OK) {
        c->st.hits++;
    } else if ((e = find(c, name)) && e->gen == gen) {
        c->st.dropped += r == READ_CORRUPT;
        drop(c, e);
    }
    pthread_mutex_unlock(&c->lock);
    return r == READ_OK ? VL_OK : VL_ERR_NOTFOUND;
}

/* ---- filling ------------------------------------------------------------- */

/* mkdir -p of path's parent directory. */
static int make_parent(const char *path)
{
    char parent[PATH_MAX + 64];
    snprintf(parent, sizeof parent, "%s", path);
    char *slash = strrchr(parent, '/');
    if (!slash)
        return 0;
    *slash = '\0';
    return vl_objstore_local_mkdirs(parent);
}

static int write_copy(const char *tmp, const void *data, size_t len)
{
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0 && errno == ENOENT && make_parent(tmp) == 0)
        fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return -1;
    uint32_t crc = vl_crc32c(0, data, len);
    unsigned char t[TRAILER] = {'V',
                                'L',
                                'C',
                                '1',
                                (unsigned char)crc,
                                (unsigned char)(crc >> 8),
                                (unsigned char)(crc >> 16),
                                (unsigned char)(crc >> 24)};
    const unsigned char *parts[2] = {data, t};
    size_t lens[2] = {len, TRAILER};
    int ok = 1;
    for (int p = 0; p < 2 && ok; p++)
        for (size_t off = 0; off < lens[p] && ok;) {
            ssize_t n = write(fd, parts[p] + off, lens[p] - off);
            ok = n > 0;
            off += ok ? (size_t)n : 0;
        }
    return close(fd) == 0 && ok ? 0 : -1;
}

/* Place a copy of name's bytes in the cache; failures only count. */
static void fill(cache *c, const char *name, const void *data, size_t len)
{
    uint64_t size = (uint64_t)len + TRAILER;
    char path[PATH_MAX], tmp[PATH_MAX + 64];
    if (size > c->st.capacity || path_of(c, name, path, sizeof path) != 0)
        return;
    pthread_mutex_lock(&c->lock);
    uint64_t seq = c->tmp_seq++;
    pthread_mutex_unlock(&c->lock);
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld.%llu", path, (long)getpid(), (unsigned long long)seq);
    int ok = write_copy(tmp, data, len) == 0;
    pthread_mutex_lock(&c->lock);
    if (ok)
        ok = rename(tmp, path) == 0 ||
             (errno == ENOENT && make_parent(path) == 0 && rename(tmp, path) == 0);
    entry *e = find(c, name);
    int existing = e != NULL;
    if (ok && !e && (e = calloc(1, sizeof *e)) && !(e->name = strdup(name))) {
        free(e);
        e = NULL;
    }
    if (!ok || !e) {
        unlink(tmp);
        if (ok) /* placed but not indexed: remove it, bytes must be counted */
            unlink(path);
        c->st.errors++;
        pthread_mutex_unlock(&c->lock);
        return;
    }
    if (existing) {
        unlink_entry(c, e);
        c->st.bytes -= e->size;
        c->st.files--;
    }
    e->size = size;
    e->gen = ++c->next_gen;
    push_front(c, e);
    c->st.bytes += size;
    c->st.files++;
    evict_to_fit(c, e);
    pthread_mutex_unlock(&c->lock);
}

/* ---- the verbs ----------------------------------------------------------- */

static void count_miss(cache *c)
{
    pthread_mutex_lock(&c->lock);
    c->st.misses++;
    pthread_mutex_unlock(&c->lock);
}

static vl_status cache_get(vl_objstore *s, const char *name, void **data, size_t *len,
                           vl_error *err)
{
    cache *c = as_cache(s);
    if (!vl_objstore_cache_keeps(name))
        return vl_obj_get(c->inner, name, data, len, err);
    if (lookup(c, name, data, len) == VL_OK)
        return VL_OK;
    count_miss(c);
    vl_status st = vl_obj_get(c->inner, name, data, len, err);
    if (st == VL_OK)
        fill(c, name, *data, *len);
    return st;
}

static vl_status cache_get_range(vl_objstore *s, const char *name, uint64_t offset, size_t len,
                                 void *buf, size_t *got, vl_error *err)
{
    cache *c = as_cache(s);
    void *data;
    size_t size;
    if (!vl_objstore_cache_keeps(name))
        return vl_obj_get_range(c->inner, name, offset, len, buf, got, err);
    if (lookup(c, name, &data, &size) != VL_OK) {
        count_miss(c);
        return vl_obj_get_range(c->inner, name, offset, len, buf, got, err);
    }
    size_t avail = offset < size ? size - (size_t)offset : 0;
    *got = avail < len ? avail : len;
    if (*got)
        memcpy(buf, (const char *)data + offset, *got);
    free(data);
    return VL_OK;
}

static vl_status cache_put(vl_objstore *s, const char *name, const void *data, size_t len,
                           vl_error *err)
{
    cache *c = as_cache(s);
    vl_status st = vl_obj_put(c->inner, name, data, len, err);
    if (st == VL_OK && vl_objstore_cache_keeps(name))
        fill(c, name, data, len);
    return st;
}

static vl_status cache_put_if_absent(vl_objstore *s, const char *name, const void *data, size_t len,
                                     vl_error *err)
{
    cache *c = as_cache(s);
    vl_status st = vl_obj_put_if_absent(c->inner, name, data, len, err);
    if (st == VL_OK && vl_objstore_cache_keeps(name))
        fill(c, name, data, len);
    return st;
}

static vl_status cache_list(vl_objstore *s, const char *prefix, vl_objinfo **out, size_t *n,
                            vl_error *err)
{
    return vl_obj_list(as_cache(s)->inner, prefix, out, n, err);
}

static vl_status cache_del(vl_objstore *s, const char *name, vl_error *err)
{
    cache *c = as_cache(s);
    if (vl_objstore_cache_keeps(name)) {
        pthread_mutex_lock(&c->lock);
        entry *e = find(c, name);
        if (e)
            drop(c, e);
        pthread_mutex_unlock(&c->lock);
    }
    return vl_obj_del(c->inner, name, err);
}

static void free_index(cache *c)
{
    for (entry *e = c->head, *next; e; e = next) {
        next = e->next;
        free(e->name);
        free(e);
    }
    c->head = c->tail = NULL;
}

static void cache_close(vl_objstore *s)
{
    cache *c = as_cache(s);
    vl_obj_close(c->inner);
    free_index(c);
    pthread_mutex_destroy(&c->lock);
    close(c->lock_fd);
    free(c->dir);
    free(c);
}

static const vl_objstore_ops cache_ops = {
    .put = cache_put,
    .put_if_absent = cache_put_if_absent,
    .get = cache_get,
    .get_range = cache_get_range,
    .list = cache_list,
    .del = cache_del,
    .close = cache_close,
};

/* ---- adopting the files already there ------------------------------------ */

typedef struct {
    entry **items;
    size_t n, cap;
} entry_list;

static int add_found(entry_list *l, const char *name, const struct stat *sb)
{
    if (l->n == l->cap) {
        size_t nc = l->cap ? l->cap * 2 : 64;
        entry **grown = realloc(l->items, nc * sizeof *grown);
        if (!grown)
            return -1;
        l->items = grown;
        l->cap = nc;
    }
    entry *e = calloc(1, sizeof *e);
    if (!e || !(e->name = strdup(name))) {
        free(e);
        return -1;
    }
    e->size = (uint64_t)sb->st_size;
    e->mtime_ns = (int64_t)sb->st_mtim.tv_sec * 1000000000 + sb->st_mtim.tv_nsec;
    l->items[l->n++] = e;
    return 0;
}

/* One file found under the cache: adopt it, remove it (a fill cut short),
 * or leave it alone (not ours). */
static int found_file(entry_list *l, const char *path, const char *name, const struct stat *sb)
{
    const char *tmp = strstr(name, ".tmp.");
    if (!tmp)
        return vl_objstore_cache_keeps(name) ? add_found(l, name, sb) : 0;
    char *base = strndup(name, (size_t)(tmp - name));
    if (!base)
        return -1;
    if (vl_objstore_cache_keeps(base))
        unlink(path);
    free(base);
    return 0;
}

/* Walk dir/rel ("" for the top) depth first; -1 when out of memory. */
static int walk(const char *dir, const char *rel, entry_list *l)
{
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s%s%s", dir, *rel ? "/" : "", rel);
    DIR *d = opendir(path);
    if (!d)
        return 0; /* deleted meanwhile, or unreadable: nothing to adopt */
    int rc = 0;
    for (struct dirent *de; rc == 0 && (de = readdir(d));) {
        if (de->d_name[0] == '.' && (!de->d_name[1] || (de->d_name[1] == '.' && !de->d_name[2])))
            continue;
        char sub[PATH_MAX], full[PATH_MAX];
        int n = snprintf(sub, sizeof sub, "%s%s%s", rel, *rel ? "/" : "", de->d_name);
        if (n < 0 || (size_t)n >= sizeof sub ||
            snprintf(full, sizeof full, "%s/%s", dir, sub) >= (int)sizeof full)
            continue;
        struct stat sb;
        if (lstat(full, &sb) != 0)
            continue;
        if (S_ISDIR(sb.st_mode))
            rc = walk(dir, sub, l);
        else if (S_ISREG(sb.st_mode))
            rc = found_file(l, full, sub, &sb);
    }
    closedir(d);
    return rc;
}

static int older_first(const void *a, const void *b)
{
    const entry *x = *(entry *const *)a, *y = *(entry *const *)b;
    return x->mtime_ns < y->mtime_ns ? -1 : x->mtime_ns > y->mtime_ns;
}

static vl_status adopt_files(cache *c, vl_error *err)
{
    entry_list l = {0};
    int rc = walk(c->dir, "", &l);
    if (l.n > 1)
        qsort(l.items, l.n, sizeof *l.items, older_first);
    for (size_t i = 0; i < l.n; i++) { /* the newest ends up in front */
        entry *e = l.items[i];
        e->gen = ++c->next_gen;
        push_front(c, e);
        c->st.bytes += e->size;
        c->st.files++;
    }
    free(l.items);
    if (rc != 0)
        return vl_fail(err, VL_ERR_NOMEM, "cache %s: out of memory reading it", c->dir);
    evict_to_fit(c, NULL);
    return VL_OK;
}

/* flock <dir>/.lock into *fd, recording our pid; VL_ERR_BUSY names the
 * holder. */
static vl_status take_lock(const char *dir, int *fd, vl_error *err)
{
    char path[PATH_MAX + 8], pid[32] = "";
    snprintf(path, sizeof path, "%s/.lock", dir);
    *fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (*fd < 0)
        return vl_fail(err, VL_ERR_IO, "cache %s: %s: %s", dir, path, strerror(errno));
    if (flock(*fd, LOCK_EX | LOCK_NB) != 0) {
        int e = errno;
        ssize_t n = pread(*fd, pid, sizeof pid - 1, 0);
        pid[n > 0 ? strcspn(pid, "\n") : 0] = '\0';
        close(*fd);
        if (e != EWOULDBLOCK)
            return vl_fail(err, VL_ERR_IO, "cache %s: flock: %s", dir, strerror(e));
        return vl_fail(err, VL_ERR_BUSY,
                       "cache %s is locked by another process%s%s%s; each server needs its own "
                       "--cache-dir",
                       dir, *pid ? " (pid " : "", pid, *pid ? ")" : "");
    }
    int n = snprintf(pid, sizeof pid, "%ld\n", (long)getpid());
    if (ftruncate(*fd, 0) == 0) /* the pid only names us in a refusal: best effort */
        (void)!pwrite(*fd, pid, (size_t)n, 0);
    return VL_OK;
}

vl_status vl_objstore_cache_open(vl_objstore *inner, const char *dir, uint64_t capacity,
                                 vl_objstore **out, vl_error *err)
{
    if (vl_objstore_local_mkdirs(dir) != 0)
        return vl_fail(err, VL_ERR_IO, "cache %s: cannot create it: %s", dir, strerror(errno));
    int lock_fd;
    vl_status st = take_lock(dir, &lock_fd, err);
    if (st != VL_OK)
        return st;
    cache *c = calloc(1, sizeof *c);
    if (!c || !(c->dir = strdup(dir))) {
        free(c);
        close(lock_fd);
        return vl_fail(err, VL_ERR_NOMEM, "cache %s: out of memory", dir);
    }
    c->lock_fd = lock_fd;
    size_t ld = strlen(c->dir);
    while (ld > 1 && c->dir[ld - 1] == '/')
        c->dir[--ld] = '\0';
    c->base.ops = &cache_ops;
    c->inner = inner;
    c->st.capacity = capacity;
    pthread_mutex_init(&c->lock, NULL);
    st = adopt_files(c, err);
    if (st != VL_OK) {
        c->inner = NULL;
        free_index(c);
        pthread_mutex_destroy(&c->lock);
        close(c->lock_fd);
        free(c->dir);
        free(c);
        return st;
    }
    *out = &c->base;
    return VL_OK;
}

void vl_objstore_cache_stats(vl_objstore *s, vl_cache_stats *out)
{
    memset(out, 0, sizeof *out);
    if (!s || s->ops != &cache_ops)
        return;
    cache *c = as_cache(s);
    pthread_mutex_lock(&c->lock);
    *out = c->st;
    pthread_mutex_unlock(&c->lock);
}
