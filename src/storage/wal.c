/*
 * wal.c - the write-ahead log (see wal.h and docs/storage-format.md).
 *
 * Decisions:
 *  1. Replay maps each file read-only (mmap) instead of reading it into a
 *     buffer: files reach 64 MiB and the torn-tail scan needs random access.
 *  2. A record is valid only if every check passes: length bounds, CRC-32C
 *     of the body, known type, zero reserved bytes, field lengths within the
 *     engine limits that consume the body exactly, and an LSN one above the
 *     previous record's (the very first record may start anywhere >= 1).
 *  3. Torn tail: only the last file may end in damage.  At the first invalid
 *     record X of the last file we look for any valid record starting after
 *     X whose LSN could follow the last good one (cheap header checks first,
 *     then the full decode).  None: truncate to X and carry on.  One: the
 *     damage is not a crash artefact, so refuse with VL_ERR_CORRUPT.  A
 *     record whose CRC matches but whose content is invalid can never come
 *     from a torn write, so it is always VL_ERR_CORRUPT.
 *  4. Vectors are copied from the (unaligned) record into an aligned scratch
 *     buffer before apply sees them.
 *  5. Appends go to a growable buffer; flush writes it with one write() loop
 *     to a file opened O_APPEND.  A failed write truncates the file back to
 *     its size before the flush, so a later open sees no partial record; the
 *     records stay pending (same LSNs) and the next flush retries them.  If
 *     that truncate, or any fsync, fails the WAL is poisoned: after a failed
 *     fsync the kernel may have dropped the dirty pages, so nothing written
 *     can be trusted and every later append/flush returns VL_ERR_IO.
 *  6. A sync thread fdatasyncs a dup() of the current fd (so rotation can
 *     close the real fd without waiting for it): once a second for
 *     EVERYSEC if anything was written, and on request for ALWAYS, so the
 *     server can write the next batch while the previous one syncs
 *     (vl_wal_write / vl_wal_request_sync / vl_wal_durable_lsn).  The mutex
 *     guards fd, dirty, stop and the written/synced LSNs.
 *  7. Rotation (after a flush leaves the file >= the rotate size): fdatasync
 *     the old file, create the next number with O_EXCL, fsync the directory,
 *     then switch.  If the new file cannot be created the flush reports
 *     VL_ERR_IO, the old file stays current and the next flush tries again.
 */
#include "storage/wal.h"
#include "storage/wal_internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "storage/crc32c.h"
#include "util/error.h"

_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
               "the WAL is written in host byte order, which must be little-endian");
_Static_assert(sizeof(float) == 4, "vectors are stored as 32-bit floats");

#define HDR_LEN 8u        /* u32 body_len + u32 crc */
#define BODY_FIXED 12u    /* u8 type + 3 reserved + u64 lsn */
#define MIN_BODY 16u      /* smallest body_len accepted by the first check */
#define MIN_RECORD 25u    /* header + fixed + coll_len + 1-byte name */
#define FILE_NAME_LEN 20u /* 16 hex digits + ".log" */

/* One decoded record: rec plus where its vector bytes sit. */
typedef struct {
    vl_wal_record rec;
    const unsigned char *vec_raw;
    size_t len; /* header + body */
    int crc_ok;
} decoded;

/* ---- little helpers ------------------------------------------------------ */

static uint32_t rd32(const unsigned char *p)
{
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}

static uint64_t rd64(const unsigned char *p)
{
    uint64_t v;
    memcpy(&v, p, 8);
    return v;
}

static void file_name(char out[FILE_NAME_LEN + 1], uint64_t no)
{
    snprintf(out, FILE_NAME_LEN + 1, "%016" PRIx64 ".log", no);
}

static int fsync_path(const char *path)
{
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    int rc;
    do
        rc = fsync(fd);
    while (rc < 0 && errno == EINTR);
    int saved = errno;
    close(fd);
    errno = saved;
    return rc;
}

static char *join(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    char *p = malloc(la + lb + 2);
    if (p) {
        memcpy(p, a, la);
        p[la] = '/';
        memcpy(p + la + 1, b, lb + 1);
    }
    return p;
}

/* fdatasync fd, counting it; -1 with errno on failure. */
static int wal_datasync(vl_wal *w, int fd)
{
    int rc;
    do
        rc = fdatasync(fd);
    while (rc < 0 && errno == EINTR);
    if (rc == 0)
        __atomic_fetch_add(&w->fsyncs, 1, __ATOMIC_RELAXED);
    return rc;
}

static void wal_poison(vl_wal *w, int e)
{
    int zero = 0;
    __atomic_compare_exchange_n(&w->failed_errno, &zero, e ? e : EIO, 0, __ATOMIC_RELAXED,
                                __ATOMIC_RELAXED);
}

static vl_status poisoned(vl_wal *w, vl_error *err)
{
    int e = __atomic_load_n(&w->failed_errno, __ATOMIC_RELAXED);
    return vl_fail(err, VL_ERR_IO, "wal: unusable after an earlier write/fsync failure (%s)",
                   strerror(e));
}

/* ---- record decoding ----------------------------------------------------- */

typedef struct {
    const unsigned char *p;
    size_t left;
} cursor;

static int take(cursor *c, size_t n, const unsigned char **out)
{
    if (c->left < n)
        return 0;
    *out = c->p;
    c->p += n;
    c->left -= n;
    return 1;
}

static int take_u32(cursor *c, uint32_t *v)
{
    const unsigned char *p;
    if (!take(c, 4, &p))
        return 0;
    *v = rd32(p);
    return 1;
}

/* Length-prefixed byte string of 1..max bytes. */
static int take_str(cursor *c, uint32_t max, uint32_t *len, const char **s)
{
    const unsigned char *p;
    if (!take_u32(c, len) || *len < 1 || *len > max || !take(c, *len, &p))
        return 0;
    *s = (const char *)p;
    return 1;
}

/* Decode the fields after type/reserved/lsn; NULL or the reason. */
static const char *decode_fields(cursor *c, decoded *d)
{
    vl_wal_record *r = &d->rec;
    if (!take_str(c, VL_MAX_COLLECTION_NAME, &r->coll_len, &r->coll))
        return "bad collection name length";
    if (r->type != VL_WAL_CLEAR && !take_str(c, VL_MAX_KEY_LEN, &r->key_len, &r->key))
        return "bad key length";
    if (r->type == VL_WAL_PUT) {
        if (!take_u32(c, &r->dim) || r->dim < 1 || r->dim > VL_MAX_DIM ||
            !take(c, (size_t)r->dim * 4, &d->vec_raw))
            return "bad vector dimension";
    }
    return c->left == 0 ? NULL : "record length does not match its fields";
}

/* Frame checks: header, length bounds, checksum. */
static const char *decode_frame(const unsigned char *p, size_t avail, decoded *d)
{
    if (avail < HDR_LEN)
        return "truncated record header";
    uint32_t body_len = rd32(p);
    if (body_len < MIN_BODY || body_len > VL_WAL_MAX_BODY)
        return "record length out of range";
    if (body_len > avail - HDR_LEN)
        return "truncated record";
    if (vl_crc32c(0, p + HDR_LEN, body_len) != rd32(p + 4))
        return "checksum mismatch";
    d->crc_ok = 1;
    d->len = HDR_LEN + body_len;
    return NULL;
}

/*
 * Decode the record at p (avail bytes available).  expect is the LSN it
 * must carry, or 0 for any LSN >= 1.  Returns NULL when valid, else why not.
 */
static const char *rec_decode(const unsigned char *p, size_t avail, uint64_t expect, decoded *d)
{
    memset(d, 0, sizeof *d);
    const char *why = decode_frame(p, avail, d);
    if (why)
        return why;
    const unsigned char *b = p + HDR_LEN;
    d->rec.type = (vl_wal_type)b[0];
    d->rec.lsn = rd64(b + 4);
    if (b[0] < VL_WAL_PUT || b[0] > VL_WAL_CLEAR)
        return "unknown record type";
    if (b[1] || b[2] || b[3])
        return "reserved bytes not zero";
    if (d->rec.lsn == 0 || d->rec.lsn > VL_WAL_MAX_LSN)
        return "LSN out of range";
    if (expect && d->rec.lsn != expect)
        return "LSN out of sequence";
    cursor c = {b + BODY_FIXED, d->len - HDR_LEN - BODY_FIXED};
    return decode_fields(&c, d);
}

/* ---- replay -------------------------------------------------------------- */

static uint64_t next_lsn(const vl_wal_replay *rs)
{
    return rs->last_lsn ? rs->last_lsn + 1 : 0;
}

static vl_status apply_record(vl_wal_replay *rs, decoded *d, vl_error *err)
{
    if (d->rec.type == VL_WAL_PUT) {
        memcpy(rs->scratch, d->vec_raw, (size_t)d->rec.dim * sizeof(float));
        d->rec.vec = rs->scratch;
    }
    rs->last_lsn = d->rec.lsn;
    return rs->apply ? rs->apply(rs->ctx, &d->rec, err) : VL_OK;
}

/* Cheap checks of a candidate record start at p (y bytes past the damage). */
static int plausible(const unsigned char *p, size_t avail, uint64_t lo, uint64_t y)
{
    if (avail < HDR_LEN + BODY_FIXED)
        return 0;
    uint32_t body_len = rd32(p);
    if (body_len < MIN_BODY || body_len > VL_WAL_MAX_BODY || body_len > avail - HDR_LEN)
        return 0;
    const unsigned char *b = p + HDR_LEN;
    if (b[0] < VL_WAL_PUT || b[0] > VL_WAL_CLEAR || b[1] || b[2] || b[3])
        return 0;
    /* Records lo .. lsn-1 would have to fit in the y damaged bytes; with
     * no good record before the damage (lo == 0) any LSN may follow. */
    uint64_t lsn = rd64(b + 4);
    if (lo == 0)
        return lsn >= 1;
    return lsn >= lo && lsn - lo <= y / MIN_RECORD;
}

/* 1 if a valid record that could follow the last good one starts after x. */
static int valid_record_after(const unsigned char *map, size_t size, size_t x,
                              const vl_wal_replay *rs)
{
    uint64_t lo = next_lsn(rs);
    for (size_t y = x + 1; y + MIN_RECORD <= size; y++) {
        decoded d;
        if (plausible(map + y, size - y, lo, y - x) &&
            !rec_decode(map + y, size - y, rd64(map + y + HDR_LEN + 4), &d))
            return 1;
    }
    return 0;
}

static vl_status map_file(const char *path, const char *name, unsigned char **map, size_t *size,
                          vl_error *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return vl_fail(err, VL_ERR_IO, "wal/%s: open: %s", name, strerror(errno));
    struct stat sb;
    vl_status st = VL_OK;
    *map = NULL;
    *size = 0;
    if (fstat(fd, &sb) < 0) {
        st = vl_fail(err, VL_ERR_IO, "wal/%s: fstat: %s", name, strerror(errno));
    } else if (sb.st_size > 0) {
        void *m = mmap(NULL, (size_t)sb.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (m == MAP_FAILED)
            st = vl_fail(err, VL_ERR_IO, "wal/%s: mmap: %s", name, strerror(errno));
        else {
            *map = m;
            *size = (size_t)sb.st_size;
        }
    }
    close(fd);
    return st;
}

/* Apply every valid record of map; *end is where the first invalid one (or
 * the end) is and *why says what was wrong (NULL when none). */
static vl_status replay_records(vl_wal_replay *rs, const unsigned char *map, size_t size,
                                size_t *end, decoded *d, const char **why, vl_error *err)
{
    size_t off = 0;
    *why = NULL;
    while (off < size) {
        *why = rec_decode(map + off, size - off, next_lsn(rs), d);
        if (*why)
            break;
        vl_status st = apply_record(rs, d, err);
        if (st != VL_OK)
            return st;
        off += d->len;
    }
    *end = off;
    return VL_OK;
}

vl_status vl_wal_replay_object(vl_wal_replay *rs, const char *name, const unsigned char *p,
                               size_t len, vl_error *err)
{
    size_t end;
    decoded d;
    const char *why;
    vl_status st = replay_records(rs, p, len, &end, &d, &why, err);
    if (st == VL_OK && why)
        st = vl_fail(err, VL_ERR_CORRUPT, "%s: damaged record at offset %zu (%s)", name, end, why);
    return st;
}

/* Why the damage found at end makes the open fail (NULL: a torn tail). */
static const char *damage_verdict(const unsigned char *map, size_t size, size_t end,
                                  const decoded *d, int is_last, const vl_wal_replay *rs)
{
    if (!is_last)
        return "in a file that is not the last";
    if (rs->truncate_damaged)
        return NULL;
    if (d->crc_ok)
        return "has a matching checksum, so it is not a torn write";
    if (valid_record_after(map, size, end, rs))
        return "is followed by valid records";
    return NULL;
}

/* Replay one file of *size bytes.  For the last file, *keep receives the
 * length to keep (a torn tail starts there); others must be entirely valid. */
static vl_status replay_file(vl_wal_replay *rs, const char *dir, const char *name, int is_last,
                             uint64_t *keep, uint64_t *fsize, vl_error *err)
{
    char *path = join(dir, name);
    if (!path)
        return vl_fail(err, VL_ERR_NOMEM, "wal/%s: out of memory", name);
    unsigned char *map;
    size_t size, end = 0;
    vl_status st = map_file(path, name, &map, &size, err);
    free(path);
    decoded d;
    const char *why = NULL;
    if (st == VL_OK)
        st = replay_records(rs, map, size, &end, &d, &why, err);
    const char *verdict =
        (st == VL_OK && why) ? damage_verdict(map, size, end, &d, is_last, rs) : NULL;
    if (verdict)
        st = vl_fail(err, VL_ERR_CORRUPT,
                     "wal/%s: damaged record at offset %zu (%s) %s; refusing to start", name, end,
                     why, verdict);
    if (map)
        munmap(map, size);
    *keep = end;
    *fsize = size;
    return st;
}

/* ---- directory and files ------------------------------------------------- */

/* mkdir path if missing; when created, fsync its parent. */
static int mkdir_synced(const char *path, const char *parent)
{
    if (mkdir(path, 0777) == 0)
        return fsync_path(parent);
    return errno == EEXIST ? 0 : -1;
}

static vl_status prepare_dir(const char *dir, char **waldir, vl_error *err)
{
    char *parent = join(dir, "..");
    *waldir = join(dir, "wal");
    if (!parent || !*waldir) {
        free(parent);
        free(*waldir);
        return vl_fail(err, VL_ERR_NOMEM, "wal: out of memory");
    }
    vl_status st = VL_OK;
    if (mkdir_synced(dir, parent) < 0)
        st = vl_fail(err, VL_ERR_IO, "wal: mkdir %s: %s", dir, strerror(errno));
    else if (mkdir_synced(*waldir, dir) < 0)
        st = vl_fail(err, VL_ERR_IO, "wal: mkdir %s: %s", *waldir, strerror(errno));
    free(parent);
    if (st != VL_OK) {
        free(*waldir);
        *waldir = NULL;
    }
    return st;
}

/* Parse "<16 lowercase hex>.log" into *no; 0 if the name is not a WAL file. */
static int parse_file_name(const char *s, uint64_t *no)
{
    if (strlen(s) != FILE_NAME_LEN || strcmp(s + 16, ".log") != 0)
        return 0;
    uint64_t v = 0;
    for (int i = 0; i < 16; i++) {
        int c = s[i];
        int dgt = (c >= '0' && c <= '9') ? c - '0' : (c >= 'a' && c <= 'f') ? c - 'a' + 10 : -1;
        if (dgt < 0)
            return 0;
        v = (v << 4) | (uint64_t)dgt;
    }
    *no = v;
    return v != 0;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

static vl_status push_no(uint64_t **nums, size_t *n, size_t *cap, uint64_t no, vl_error *err)
{
    if (*n == *cap) {
        size_t c = *cap ? *cap * 2 : 16;
        uint64_t *p = realloc(*nums, c * sizeof *p);
        if (!p)
            return vl_fail(err, VL_ERR_NOMEM, "wal: out of memory");
        *nums = p;
        *cap = c;
    }
    (*nums)[(*n)++] = no;
    return VL_OK;
}

/* Sorted numbers of the WAL files in waldir; they must be consecutive. */
static vl_status list_files(const char *waldir, uint64_t **nums, size_t *n, vl_error *err)
{
    DIR *dp = opendir(waldir);
    if (!dp)
        return vl_fail(err, VL_ERR_IO, "wal: opendir %s: %s", waldir, strerror(errno));
    size_t cap = 0;
    vl_status st = VL_OK;
    struct dirent *de;
    uint64_t no;
    *nums = NULL;
    *n = 0;
    while (st == VL_OK && (de = readdir(dp)))
        if (parse_file_name(de->d_name, &no))
            st = push_no(nums, n, &cap, no, err);
    closedir(dp);
    if (st == VL_OK && *n > 1)
        qsort(*nums, *n, sizeof **nums, cmp_u64);
    for (size_t i = 1; st == VL_OK && i < *n; i++)
        if ((*nums)[i] != (*nums)[i - 1] + 1)
            st = vl_fail(err, VL_ERR_CORRUPT,
                         "wal: file %016" PRIx64 ".log is missing (have %016" PRIx64
                         ".log and %016" PRIx64 ".log); refusing to start",
                         (*nums)[i - 1] + 1, (*nums)[i - 1], (*nums)[i]);
    if (st != VL_OK) {
        free(*nums);
        *nums = NULL;
    }
    return st;
}

/* Open file no for appending (creating it with O_EXCL when create). */
static int open_append(const char *dir, uint64_t no, int create)
{
    char name[FILE_NAME_LEN + 1];
    file_name(name, no);
    char *path = join(dir, name);
    if (!path) {
        errno = ENOMEM;
        return -1;
    }
    int flags = O_WRONLY | O_APPEND | O_CLOEXEC | (create ? O_CREAT | O_EXCL : 0);
    int fd = open(path, flags, 0644);
    int saved = errno;
    free(path);
    errno = saved;
    return fd;
}

/* Create and durably publish file no into *fd.  A failed directory fsync
 * poisons the WAL (the new name may not survive a crash). */
static vl_status create_file(vl_wal *w, uint64_t no, int *fd, vl_error *err)
{
    *fd = open_append(w->dir, no, 1);
    if (*fd < 0)
        return vl_fail(err, VL_ERR_IO, "wal/%016" PRIx64 ".log: create: %s", no, strerror(errno));
    if (fsync_path(w->dir) < 0) {
        int e = errno;
        wal_poison(w, e);
        close(*fd);
        *fd = -1;
        return vl_fail(err, VL_ERR_IO, "wal/%016" PRIx64 ".log: fsync directory: %s", no,
                       strerror(e));
    }
    return VL_OK;
}

/* Cut the last file to keep bytes and fsync it. */
static vl_status truncate_tail(vl_wal *w, uint64_t keep, vl_error *err)
{
    char name[FILE_NAME_LEN + 1];
    file_name(name, w->file_no);
    if (ftruncate(w->fd, (off_t)keep) < 0 || wal_datasync(w, w->fd) < 0)
        return vl_fail(err, VL_ERR_IO, "wal/%s: truncating torn tail at offset %" PRIu64 ": %s",
                       name, keep, strerror(errno));
    return VL_OK;
}

/* ---- open ---------------------------------------------------------------- */

vl_status vl_wal_remember_closed(vl_wal *w, uint64_t no, uint64_t last_lsn, uint64_t size,
                                 vl_error *err)
{
    if (w->nclosed == w->cap_closed) {
        size_t cap = w->cap_closed ? w->cap_closed * 2 : 16;
        closed_file *p = realloc(w->closed, cap * sizeof *p);
        if (!p)
            return vl_fail(err, VL_ERR_NOMEM, "wal: out of memory");
        w->closed = p;
        w->cap_closed = cap;
    }
    w->closed[w->nclosed++] = (closed_file){no, last_lsn, size};
    return VL_OK;
}

static vl_status replay_all(vl_wal *w, vl_wal_replay *rs, const uint64_t *nums, size_t n,
                            uint64_t *dropped, vl_error *err)
{
    for (size_t i = 0; i < n; i++) {
        char name[FILE_NAME_LEN + 1];
        uint64_t keep = 0, size = 0;
        file_name(name, nums[i]);
        vl_status st = replay_file(rs, w->dir, name, i + 1 == n, &keep, &size, err);
        if (st != VL_OK)
            return st;
        if (i + 1 < n) {
            w->bytes_before += keep;
            if ((st = vl_wal_remember_closed(w, nums[i], rs->last_lsn, keep, err)) != VL_OK)
                return st;
            continue;
        }
        w->file_no = nums[i];
        w->fd = open_append(w->dir, nums[i], 0);
        if (w->fd < 0)
            return vl_fail(err, VL_ERR_IO, "wal/%s: open: %s", name, strerror(errno));
        if (keep < size && (st = truncate_tail(w, keep, err)) != VL_OK)
            return st;
        *dropped = size - keep;
        w->file_size = keep;
    }
    return VL_OK;
}

static vl_status load(vl_wal *w, vl_wal_apply_fn apply, void *ctx, int truncate_damaged,
                      uint64_t *dropped, vl_error *err)
{
    uint64_t *nums = NULL;
    size_t n = 0;
    vl_status st = list_files(w->dir, &nums, &n, err);
    if (st != VL_OK)
        return st;
    vl_wal_replay rs = {apply, ctx, 0, malloc((size_t)VL_MAX_DIM * sizeof(float)),
                        truncate_damaged};
    if (!rs.scratch)
        st = vl_fail(err, VL_ERR_NOMEM, "wal: out of memory");
    else if (n > 0)
        st = replay_all(w, &rs, nums, n, dropped, err);
    else
        st = create_file(w, 1, &w->fd, err);
    if (n == 0)
        w->file_no = 1;
    w->files = n ? n : 1;
    w->last_lsn = w->written_lsn = w->synced_lsn = rs.last_lsn;
    free(rs.scratch);
    free(nums);
    return st;
}

static void *sync_thread(void *arg);

static vl_status start_thread(vl_wal *w, vl_error *err)
{
    if (w->policy == VL_FSYNC_NO)
        return VL_OK;
    int rc = pthread_create(&w->thread, NULL, w->store ? vl_wal_store_thread : sync_thread, w);
    if (rc != 0)
        return vl_fail(err, VL_ERR_IO, "wal: starting the fsync thread: %s", strerror(rc));
    w->thread_started = 1;
    return VL_OK;
}

vl_wal *vl_wal_new(vl_fsync policy)
{
    vl_wal *w = calloc(1, sizeof *w);
    if (!w)
        return NULL;
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&w->cv, &ca);
    pthread_condattr_destroy(&ca);
    pthread_mutex_init(&w->mu, NULL);
    w->policy = policy;
    w->fd = -1;
    w->sync_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (w->sync_fd < 0) {
        free(w);
        return NULL;
    }
    w->rotate_bytes = VL_WAL_ROTATE_BYTES;
    return w;
}

void vl_wal_free(vl_wal *w)
{
    if (w->fd >= 0)
        close(w->fd);
    if (w->sync_fd >= 0)
        close(w->sync_fd);
    pthread_mutex_destroy(&w->mu);
    pthread_cond_destroy(&w->cv);
    free(w->buf);
    free(w->batch);
    free(w->dir);
    free(w->closed);
    free(w);
}

vl_status vl_wal_open(const char *dir, vl_fsync policy, vl_wal_apply_fn apply, void *ctx,
                      vl_wal **out, uint64_t *dropped_bytes, vl_error *err)
{
    return vl_wal_open_ex(dir, policy, apply, ctx, 0, out, dropped_bytes, err);
}

vl_status vl_wal_open_ex(const char *dir, vl_fsync policy, vl_wal_apply_fn apply, void *ctx,
                         int truncate_damaged, vl_wal **out, uint64_t *dropped_bytes, vl_error *err)
{
    uint64_t dropped = 0;
    if (dropped_bytes)
        *dropped_bytes = 0;
    if (!dir || !*dir)
        return vl_fail(err, VL_ERR_ARG, "wal: empty directory name");
    vl_wal *w = vl_wal_new(policy);
    if (!w)
        return vl_fail(err, VL_ERR_NOMEM, "wal: out of memory");
    vl_status st = prepare_dir(dir, &w->dir, err);
    if (st == VL_OK)
        st = load(w, apply, ctx, truncate_damaged, &dropped, err);
    if (st == VL_OK)
        st = start_thread(w, err);
    if (st != VL_OK) {
        vl_wal_free(w);
        return st;
    }
    if (dropped_bytes)
        *dropped_bytes = dropped;
    *out = w;
    return VL_OK;
}

/* ---- appending ----------------------------------------------------------- */

static vl_status check_record(const vl_wal_record *r, vl_error *err)
{
    if (r->type < VL_WAL_PUT || r->type > VL_WAL_CLEAR)
        return vl_fail(err, VL_ERR_ARG, "wal: unknown record type %d", (int)r->type);
    if (!r->coll || r->coll_len < 1 || r->coll_len > VL_MAX_COLLECTION_NAME)
        return vl_fail(err, VL_ERR_ARG, "wal: collection name must be 1..%d bytes",
                       VL_MAX_COLLECTION_NAME);
    if (r->type != VL_WAL_CLEAR && (!r->key || r->key_len < 1 || r->key_len > VL_MAX_KEY_LEN))
        return vl_fail(err, VL_ERR_ARG, "wal: key must be 1..%d bytes", VL_MAX_KEY_LEN);
    if (r->type == VL_WAL_PUT && (!r->vec || r->dim < 1 || r->dim > VL_MAX_DIM))
        return vl_fail(err, VL_ERR_ARG, "wal: vector must have 1..%d dimensions", VL_MAX_DIM);
    return VL_OK;
}

static size_t body_size(const vl_wal_record *r)
{
    size_t n = BODY_FIXED + 4 + r->coll_len;
    if (r->type != VL_WAL_CLEAR)
        n += 4 + (size_t)r->key_len;
    if (r->type == VL_WAL_PUT)
        n += 4 + (size_t)r->dim * 4;
    return n;
}

static int reserve(vl_wal *w, size_t more)
{
    if (w->buf_cap - w->buf_len >= more)
        return 0;
    size_t cap = w->buf_cap ? w->buf_cap : 4096;
    while (cap - w->buf_len < more)
        cap *= 2;
    unsigned char *p = realloc(w->buf, cap);
    if (!p)
        return -1;
    w->buf = p;
    w->buf_cap = cap;
    return 0;
}

static unsigned char *put_bytes(unsigned char *p, const void *src, size_t n)
{
    memcpy(p, src, n);
    return p + n;
}

static unsigned char *put_u32(unsigned char *p, uint32_t v)
{
    return put_bytes(p, &v, 4);
}

static void encode(unsigned char *p, const vl_wal_record *r, uint32_t body_len)
{
    unsigned char *b = p + HDR_LEN;
    unsigned char *q = b;
    *q++ = (unsigned char)r->type;
    *q++ = 0;
    *q++ = 0;
    *q++ = 0;
    q = put_bytes(q, &r->lsn, 8);
    q = put_u32(q, r->coll_len);
    q = put_bytes(q, r->coll, r->coll_len);
    if (r->type != VL_WAL_CLEAR) {
        q = put_u32(q, r->key_len);
        q = put_bytes(q, r->key, r->key_len);
    }
    if (r->type == VL_WAL_PUT) {
        q = put_u32(q, r->dim);
        put_bytes(q, r->vec, (size_t)r->dim * 4);
    }
    put_u32(p, body_len);
    put_u32(p + 4, vl_crc32c(0, b, body_len));
}

vl_status vl_wal_append(vl_wal *w, vl_wal_record *rec, vl_error *err)
{
    if (__atomic_load_n(&w->failed_errno, __ATOMIC_RELAXED))
        return poisoned(w, err);
    vl_status st = check_record(rec, err);
    if (st != VL_OK)
        return st;
    if (w->last_lsn >= VL_WAL_MAX_LSN)
        return vl_fail(err, VL_ERR_LIMIT, "wal: LSN %" PRIu64 " is the last one a log may hold",
                       w->last_lsn);
    size_t body_len = body_size(rec);
    if (reserve(w, HDR_LEN + body_len) < 0)
        return vl_fail(err, VL_ERR_NOMEM, "wal: out of memory for the pending buffer");
    rec->lsn = w->last_lsn + 1;
    encode(w->buf + w->buf_len, rec, (uint32_t)body_len);
    w->buf_len += HDR_LEN + body_len;
    w->last_lsn = rec->lsn;
    return VL_OK;
}

/* ---- flushing and rotation ----------------------------------------------- */

static int write_all(int fd, const unsigned char *p, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

static vl_status write_pending(vl_wal *w, vl_error *err)
{
    if (write_all(w->fd, w->buf, w->buf_len) < 0) {
        int e = errno;
        if (ftruncate(w->fd, (off_t)w->file_size) < 0)
            wal_poison(w, errno);
        return vl_fail(err, VL_ERR_IO, "wal/%016" PRIx64 ".log: write: %s", w->file_no,
                       strerror(e));
    }
    pthread_mutex_lock(&w->mu);
    w->dirty = 1;
    w->written_lsn = w->last_lsn;
    pthread_mutex_unlock(&w->mu);
    w->file_size += w->buf_len;
    w->buf_len = 0;
    return VL_OK;
}

/* Record that everything up to lsn is durable and wake whoever waits. */
static void advance_synced(vl_wal *w, uint64_t lsn)
{
    pthread_mutex_lock(&w->mu);
    if (lsn > w->synced_lsn)
        w->synced_lsn = lsn;
    pthread_mutex_unlock(&w->mu);
    uint64_t one = 1;
    ssize_t ignored = write(w->sync_fd, &one, sizeof one);
    (void)ignored;
}

/* fdatasync the current file if anything was written since the last sync. */
static vl_status sync_current(vl_wal *w, vl_error *err)
{
    pthread_mutex_lock(&w->mu);
    int dirty = w->dirty;
    uint64_t target = w->written_lsn;
    w->dirty = 0;
    pthread_mutex_unlock(&w->mu);
    if (!dirty)
        return VL_OK;
    if (wal_datasync(w, w->fd) < 0) {
        int e = errno;
        wal_poison(w, e);
        return vl_fail(err, VL_ERR_IO, "wal/%016" PRIx64 ".log: fdatasync: %s", w->file_no,
                       strerror(e));
    }
    advance_synced(w, target);
    return VL_OK;
}

static vl_status rotate(vl_wal *w, vl_error *err)
{
    vl_status st = sync_current(w, err);
    if (st != VL_OK)
        return st;
    int fd;
    st = create_file(w, w->file_no + 1, &fd, err);
    if (st != VL_OK)
        return st;
    pthread_mutex_lock(&w->mu);
    int old = w->fd;
    w->fd = fd;
    w->dirty = 0;
    pthread_mutex_unlock(&w->mu);
    close(old);
    st = vl_wal_remember_closed(w, w->file_no, w->last_lsn, w->file_size, err);
    w->bytes_before += w->file_size;
    w->file_size = 0;
    w->file_no++;
    w->files++;
    return st;
}

vl_status vl_wal_flush(vl_wal *w, vl_error *err)
{
    if (w->store)
        return vl_wal_store_sync(w, err);
    if (__atomic_load_n(&w->failed_errno, __ATOMIC_RELAXED))
        return poisoned(w, err);
    if (w->buf_len == 0)
        return VL_OK;
    vl_status st = write_pending(w, err);
    if (st == VL_OK && w->policy == VL_FSYNC_ALWAYS)
        st = sync_current(w, err);
    if (st == VL_OK && w->file_size >= w->rotate_bytes)
        st = rotate(w, err);
    return st;
}

/* ---- background fsync ---------------------------------------------------- */

/* The sync thread serves two policies.  EVERYSEC: once a second, if
 * anything was written.  ALWAYS: whenever vl_wal_request_sync() asks for
 * an LSN not yet durable -- the event loop goes on reading and writing the
 * next batch while this fdatasync runs (pipelined group commit). */
static int sync_wanted(const vl_wal *w)
{
    return w->sync_target > w->synced_lsn && w->written_lsn > w->synced_lsn;
}

/* Wait up to one second, until stop or a requested sync; called and
 * returns with mu held.  Returns 1 when the second elapsed. */
static int wait_for_work(vl_wal *w)
{
    struct timespec deadline;
    clock_gettime(CLOCK_MONOTONIC, &deadline);
    deadline.tv_sec += 1;
    while (!w->stop && !sync_wanted(w))
        if (pthread_cond_timedwait(&w->cv, &w->mu, &deadline) == ETIMEDOUT)
            return 1;
    return 0;
}

static void *sync_thread(void *arg)
{
    vl_wal *w = arg;
    pthread_mutex_lock(&w->mu);
    for (;;) {
        int second = wait_for_work(w);
        if (w->stop)
            break;
        int due = sync_wanted(w) || (second && w->policy == VL_FSYNC_EVERYSEC && w->dirty);
        if (!due)
            continue;
        int fd = dup(w->fd);
        if (fd < 0)
            continue; /* out of descriptors: stay dirty, try again */
        uint64_t target = w->written_lsn;
        w->dirty = 0;
        pthread_mutex_unlock(&w->mu);
        if (wal_datasync(w, fd) < 0)
            wal_poison(w, errno);
        else
            advance_synced(w, target);
        close(fd);
        pthread_mutex_lock(&w->mu);
    }
    pthread_mutex_unlock(&w->mu);
    return NULL;
}

vl_status vl_wal_write(vl_wal *w, vl_error *err)
{
    if (w->store)
        return vl_wal_store_write(w);
    if (__atomic_load_n(&w->failed_errno, __ATOMIC_RELAXED))
        return poisoned(w, err);
    if (w->buf_len == 0)
        return VL_OK;
    vl_status st = write_pending(w, err);
    if (st == VL_OK && w->file_size >= w->rotate_bytes)
        st = rotate(w, err);
    return st;
}

void vl_wal_request_sync(vl_wal *w)
{
    pthread_mutex_lock(&w->mu);
    w->sync_target = w->written_lsn;
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

int vl_wal_sync_in_flight(vl_wal *w)
{
    pthread_mutex_lock(&w->mu);
    int busy = w->sync_target > w->synced_lsn;
    pthread_mutex_unlock(&w->mu);
    return busy;
}

uint64_t vl_wal_durable_lsn(vl_wal *w)
{
    pthread_mutex_lock(&w->mu);
    uint64_t lsn = w->policy == VL_FSYNC_ALWAYS ? w->synced_lsn : w->written_lsn;
    pthread_mutex_unlock(&w->mu);
    return lsn;
}

int vl_wal_sync_fd(const vl_wal *w)
{
    return w->sync_fd;
}

vl_status vl_wal_check(vl_wal *w, vl_error *err)
{
    uint64_t n;
    ssize_t ignored = read(w->sync_fd, &n, sizeof n); /* consume the signal */
    (void)ignored;
    if (w->store)
        return vl_wal_store_check(w, err);
    if (__atomic_load_n(&w->failed_errno, __ATOMIC_RELAXED))
        return poisoned(w, err);
    return VL_OK;
}

/* ---- queries and close --------------------------------------------------- */

int vl_wal_has_pending(const vl_wal *w)
{
    return w->buf_len > 0;
}

uint64_t vl_wal_last_lsn(const vl_wal *w)
{
    return w->last_lsn;
}

void vl_wal_stats_get(vl_wal *w, vl_wal_stats *st)
{
    st->fsyncs = __atomic_load_n(&w->fsyncs, __ATOMIC_RELAXED);
    if (w->store) {
        pthread_mutex_lock(&w->mu);
        st->files = w->nclosed;
        st->bytes = w->store_bytes;
        st->puts = w->puts;
        pthread_mutex_unlock(&w->mu);
        return;
    }
    st->files = w->files;
    st->bytes = w->bytes_before + w->file_size;
    st->puts = 0;
}

vl_status vl_wal_sync(vl_wal *w, vl_error *err)
{
    if (w->store)
        return vl_wal_store_sync(w, err);
    vl_status st = vl_wal_flush(w, err);
    if (st == VL_OK && w->policy != VL_FSYNC_ALWAYS)
        st = sync_current(w, err);
    return st;
}

vl_status vl_wal_sync_and_rotate(vl_wal *w, vl_error *err)
{
    if (w->store) /* every batch is an object of its own: nothing to rotate */
        return vl_wal_store_sync(w, err);
    vl_status st = vl_wal_sync(w, err);
    if (st == VL_OK && w->file_size > 0)
        st = rotate(w, err);
    return st;
}

vl_status vl_wal_remove_through(vl_wal *w, uint64_t lsn, vl_error *err)
{
    if (w->store)
        return vl_wal_store_remove_through(w, lsn, err);
    size_t n = 0;
    while (n < w->nclosed && w->closed[n].last_lsn <= lsn) {
        char name[FILE_NAME_LEN + 1];
        file_name(name, w->closed[n].no);
        char *path = join(w->dir, name);
        int rc = path ? unlink(path) : -1;
        free(path);
        if (rc < 0 && errno != ENOENT)
            break;
        w->bytes_before -= w->closed[n].size;
        w->files--;
        n++;
    }
    if (n == 0)
        return VL_OK;
    memmove(w->closed, w->closed + n, (w->nclosed - n) * sizeof *w->closed);
    w->nclosed -= n;
    if (fsync_path(w->dir) < 0)
        return vl_fail(err, VL_ERR_IO, "wal: fsync directory after removing files: %s",
                       strerror(errno));
    return VL_OK;
}

vl_status vl_wal_bump_lsn(vl_wal *w, uint64_t lsn, vl_error *err)
{
    if (w->last_lsn >= lsn)
        return VL_OK;
    /* A store log always keeps its newest object, which may hold no
     * records: what counts there is whether replay saw any. */
    int has_records = w->store ? w->last_lsn > 0 : (w->buf_len || w->file_size || w->nclosed);
    if (has_records)
        return vl_fail(err, VL_ERR_CORRUPT,
                       "wal: the log ends at LSN %" PRIu64 " but committed data covers LSN %" PRIu64
                       "; log files are missing",
                       w->last_lsn, lsn);
    w->last_lsn = w->written_lsn = w->synced_lsn = lsn;
    return VL_OK;
}

void vl_wal_set_rotate_bytes_for_test(vl_wal *w, uint64_t bytes)
{
    w->rotate_bytes = bytes ? bytes : 1;
}

void vl_wal_close(vl_wal *w)
{
    if (!w)
        return;
    if (w->store) {
        vl_wal_store_close(w);
        return;
    }
    if (w->thread_started) {
        pthread_mutex_lock(&w->mu);
        w->stop = 1;
        pthread_cond_signal(&w->cv);
        pthread_mutex_unlock(&w->mu);
        pthread_join(w->thread, NULL);
    }
    if (vl_wal_flush(w, NULL) == VL_OK)
        sync_current(w, NULL);
    vl_wal_free(w);
}
