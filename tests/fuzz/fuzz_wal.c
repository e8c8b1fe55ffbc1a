/*
 * fuzz_wal.c - WAL replay (vl_wal_open on a log written from the input).
 *
 * Input: one control byte, then the log bytes.  Control bits:
 *   0  VL_FUZZ_FIX_CRC: rewrite the CRC of every record frame whose length
 *      fits, so mutations reach the record decoder and the LSN and
 *      torn-tail rules instead of stopping at the checksum;
 *   1  open with truncate_damaged (the operator's --wal-truncate-damaged);
 *   2  split the bytes into two files (1 and 2) at a point taken from the
 *      next byte, so the rule "only the last file may be damaged" runs.
 * The log lives in a per-process directory on tmpfs, rewritten for every
 * input.  Replay must not crash, leak or read out of bounds, every record
 * handed to apply must be within the engine's limits with LSNs counting up
 * by one, and an open that succeeds must leave a log that takes a new
 * record and replays it after the old ones when opened again.
 */
#include "fuzz.h"
#include "storage/crc32c.h"
#include "storage/wal.h"

typedef struct {
    uint64_t n, last_lsn;
} replayed;

static vl_status apply(void *ctx, const vl_wal_record *rec, vl_error *err)
{
    (void)err;
    replayed *r = ctx;
    VL_FUZZ_CHECK(rec->type >= VL_WAL_PUT && rec->type <= VL_WAL_CLEAR);
    VL_FUZZ_CHECK(rec->lsn >= 1 && (r->n == 0 || rec->lsn == r->last_lsn + 1));
    VL_FUZZ_CHECK(rec->coll_len >= 1 && rec->coll_len <= VL_MAX_COLLECTION_NAME);
    volatile char sink = rec->coll[0] ^ rec->coll[rec->coll_len - 1];
    if (rec->type != VL_WAL_CLEAR) {
        VL_FUZZ_CHECK(rec->key_len >= 1 && rec->key_len <= VL_MAX_KEY_LEN);
        sink ^= rec->key[0] ^ rec->key[rec->key_len - 1];
    }
    if (rec->type == VL_WAL_PUT) {
        VL_FUZZ_CHECK(rec->dim >= 1 && rec->dim <= VL_MAX_DIM);
        VL_FUZZ_CHECK(((uintptr_t)rec->vec & (sizeof(float) - 1)) == 0);
        float f = rec->vec[0] + rec->vec[rec->dim - 1];
        sink ^= (char)(f == f);
    }
    (void)sink;
    r->n++;
    r->last_lsn = rec->lsn;
    return VL_OK;
}

static void fix_crcs(uint8_t *p, size_t len)
{
    size_t off = 0;
    while (len - off >= 8) {
        uint32_t body_len;
        memcpy(&body_len, p + off, 4);
        if (body_len > len - off - 8)
            break;
        uint32_t crc = vl_crc32c(0, p + off + 8, body_len);
        memcpy(p + off + 4, &crc, 4);
        off += 8 + (size_t)body_len;
        if (body_len == 0)
            break;
    }
}

static void write_log(const char *waldir, uint64_t no, const uint8_t *p, size_t len)
{
    char path[128];
    snprintf(path, sizeof path, "%s/%016llx.log", waldir, (unsigned long long)no);
    vl_fuzz_write_file(path, p, len);
}

/* An open that succeeded: append one record, reopen, expect it last.  A
 * log that ends at VL_WAL_MAX_LSN is valid but full: the append must be
 * refused. */
static void check_append(const char *dir, vl_wal *w, const replayed *first)
{
    vl_error err;
    vl_wal_record rec = {.type = VL_WAL_DEL, .coll = "c", .coll_len = 1, .key = "k", .key_len = 1};
    if (first->last_lsn == VL_WAL_MAX_LSN) {
        VL_FUZZ_CHECK(vl_wal_append(w, &rec, &err) == VL_ERR_LIMIT);
        vl_wal_close(w);
        return;
    }
    VL_FUZZ_CHECK(vl_wal_append(w, &rec, &err) == VL_OK);
    VL_FUZZ_CHECK(rec.lsn == (first->n ? first->last_lsn + 1 : 1));
    VL_FUZZ_CHECK(vl_wal_flush(w, &err) == VL_OK);
    vl_wal_close(w);
    replayed again = {0, 0};
    VL_FUZZ_CHECK(vl_wal_open(dir, VL_FSYNC_NO, apply, &again, &w, NULL, &err) == VL_OK);
    VL_FUZZ_CHECK(again.n == first->n + 1 && again.last_lsn == rec.lsn);
    vl_wal_close(w);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    uint8_t ctl = data[0];
    const uint8_t *log = data + 1;
    size_t len = size - 1, split = len;
    if ((ctl & 4) && len > 0) {
        split = (size_t)log[0] * len / 256;
        log++, len--, split = split < len ? split : len;
    }
    uint8_t *bytes = malloc(len ? len : 1);
    memcpy(bytes, log, len);
    if (ctl & VL_FUZZ_FIX_CRC) {
        fix_crcs(bytes, split);
        fix_crcs(bytes + split, len - split);
    }
    const char *dir = vl_fuzz_dir();
    char waldir[128];
    snprintf(waldir, sizeof waldir, "%s/wal", dir);
    vl_fuzz_rmtree(waldir);
    mkdir(waldir, 0755);
    if (ctl & 4) {
        write_log(waldir, 1, bytes, split);
        write_log(waldir, 2, bytes + split, len - split);
    } else {
        write_log(waldir, 1, bytes, len);
    }
    free(bytes);

    replayed r = {0, 0};
    vl_wal *w = NULL;
    uint64_t dropped = 0;
    vl_error err = {{0}};
    vl_status st = vl_wal_open_ex(dir, VL_FSYNC_NO, apply, &r, (ctl >> 1) & 1, &w, &dropped, &err);
    if (st == VL_OK) {
        VL_FUZZ_CHECK(dropped <= len);
        VL_FUZZ_CHECK(vl_wal_last_lsn(w) == r.last_lsn);
        check_append(dir, w, &r);
    } else {
        VL_FUZZ_CHECK(st == VL_ERR_CORRUPT && err.msg[0] != '\0');
    }
    return 0;
}
