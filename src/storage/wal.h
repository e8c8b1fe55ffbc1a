/*
 * wal.h - the write-ahead log: every change, checksummed, in order.
 *
 * Layout: files <dir>/wal/<16 hex digits>.log, numbered from 1, replayed in
 * ascending order.  A file is a plain sequence of records (no header); the
 * byte layout is specified in docs/storage-format.md.  A file is closed
 * (rotated) after VL_WAL_ROTATE_BYTES and fsynced before the next one is
 * created, so only the last file can end in a torn record.
 *
 * Writing is two-phase so many writers share one fsync (group commit):
 * vl_wal_append() encodes into an in-memory buffer and assigns the record's
 * log sequence number (LSN); vl_wal_flush() writes the buffer with one
 * write() and, under VL_FSYNC_ALWAYS, one fdatasync().  With
 * VL_FSYNC_EVERYSEC a background thread fdatasyncs once a second.
 *
 * The WAL uses a plain local append file for speed; it lives beside the
 * object store's root, inside the storage layer, and nothing above this
 * layer knows its paths.
 *
 * Store mode (vl_wal_open_store, wal_store.c): the same records, but each
 * group-committed batch is one object wal/<20 decimal digits>.log created
 * with put_if_absent, and the object's sequence number doubles as the
 * writer's fence (docs/storage-format.md "WAL in an object store").
 */
#ifndef VL_STORAGE_WAL_H
#define VL_STORAGE_WAL_H

#include <stddef.h>
#include <stdint.h>

#include "storage/objstore.h"
#include "vexlake.h"

#define VL_WAL_ROTATE_BYTES (64u * 1024 * 1024)

/** Largest valid record body: type, reserved, lsn, the three length fields,
 *  the longest collection name and key and a VL_MAX_DIM vector, plus 64
 *  bytes of headroom.  Replay rejects a body_len above it before reading. */
#define VL_WAL_MAX_BODY                                                                            \
    (1u + 3u + 8u + 4u + VL_MAX_COLLECTION_NAME + 4u + VL_MAX_KEY_LEN + 4u + 4u * VL_MAX_DIM + 64u)

/** Largest LSN: a manifest records the LSN it covers as a JSON number,
 *  exact up to 2^53.  Replay refuses a record above it; an append that
 *  would need a larger one fails with VL_ERR_LIMIT. */
#define VL_WAL_MAX_LSN (1ull << 53)

typedef enum { VL_WAL_PUT = 1, VL_WAL_DEL = 2, VL_WAL_CLEAR = 3 } vl_wal_type;

/** A decoded record.  Pointers refer to memory owned by the caller (on
 *  append) or by the WAL for the duration of the apply callback (replay);
 *  on replay vec is suitably aligned for float access. */
typedef struct {
    vl_wal_type type;
    uint64_t lsn; /**< assigned by vl_wal_append */
    const char *coll;
    uint32_t coll_len;
    const char *key; /**< PUT and DEL */
    uint32_t key_len;
    const float *vec; /**< PUT only */
    uint32_t dim;
} vl_wal_record;

/** Called once per valid record during vl_wal_open, in LSN order.  A
 *  non-VL_OK return stops the replay and fails the open. */
typedef vl_status (*vl_wal_apply_fn)(void *ctx, const vl_wal_record *rec, vl_error *err);

typedef struct vl_wal vl_wal;

/**
 * Open the log in <dir>/wal (created if missing), replay every record
 * through apply, and position for appending.  A torn tail in the last file
 * is truncated away (reported through *dropped_bytes, may be NULL); any
 * other damage fails with VL_ERR_CORRUPT naming file and offset.
 */
vl_status vl_wal_open(const char *dir, vl_fsync policy, vl_wal_apply_fn apply, void *ctx,
                      vl_wal **out, uint64_t *dropped_bytes, vl_error *err);

/** vl_wal_open, but with truncate_damaged set, damage anywhere in the last
 *  file is treated like a torn tail: the file is cut at the first bad
 *  record, dropping every record after it.  An operator's escape hatch for
 *  a log the strict rule refuses (e.g. after a power loss that reordered
 *  page writes); the dropped byte count is reported. */
vl_status vl_wal_open_ex(const char *dir, vl_fsync policy, vl_wal_apply_fn apply, void *ctx,
                         int truncate_damaged, vl_wal **out, uint64_t *dropped_bytes,
                         vl_error *err);

/**
 * Open the log kept as objects in store (see docs/storage-format.md):
 * replay every wal/ object in order through apply, then claim the next
 * object number with an empty put_if_absent object, fencing any writer
 * that was using the store (its next batch conflicts).  Behaves as the
 * VL_FSYNC_ALWAYS file log: vl_wal_write hands the pending records to a
 * background thread that stores them as one object, and
 * vl_wal_durable_lsn advances once that PUT succeeded.  A PUT that fails
 * (after the store client's own retries) leaves the batch pending and
 * retried once a second: vl_wal_writable refuses changes meanwhile and
 * takes them again once it lands.  A PUT that finds its object taken by
 * someone else fences this log for good.  store is borrowed: it must
 * outlive the log.
 */
vl_status vl_wal_open_store(vl_objstore *store, vl_wal_apply_fn apply, void *ctx, vl_wal **out,
                            vl_error *err);

/** A store log object of exactly this many bytes is a fence ("VLWAL-FENCE-
 *  0001", docs/storage-format.md): it holds no records, so a reader of the
 *  objects skips it (no batch is this short). */
#define VL_WAL_FENCE_LEN 16u

/* Reading a store log without writing it (a follower, core/follow.c):
 * list, fetch and check, apply.  Nothing here writes to the store. */

/** A WAL object as listed: its number and its size in bytes. */
typedef struct {
    uint64_t seq;
    uint64_t size;
} vl_wal_object;

/** The WAL objects of store numbered above after, ascending; *out is the
 *  caller's (free()), NULL when none.  A fence (VL_WAL_FENCE_LEN) is
 *  listed with size 0: it holds no records, like an empty object. */
vl_status vl_wal_store_list(vl_objstore *store, uint64_t after, vl_wal_object **out, size_t *n,
                            vl_error *err);

/** Fetch object seq whole (*data / *len the caller's, free()), unchecked.
 *  VL_ERR_NOTFOUND: the object is gone (its writer removed it once a
 *  committed version covered it).  Any thread. */
vl_status vl_wal_store_get(vl_objstore *store, uint64_t seq, void **data, size_t *len,
                           vl_error *err);

/** Check every record of object seq's bytes (framing, CRC-32C, LSN range,
 *  LSNs consecutive, the first equal to expect unless expect is 0),
 *  passing each through check (may be NULL; its failure fails the check).
 *  *last: the object's last LSN (expect - 1 for an empty object, 0 without
 *  expect).  VL_ERR_CORRUPT names the object and the offset. */
vl_status vl_wal_object_check(uint64_t seq, const void *data, size_t len, uint64_t expect,
                              vl_wal_apply_fn check, void *ctx, uint64_t *last, vl_error *err);

/** vl_wal_store_get, then vl_wal_object_check; on failure nothing is
 *  returned. */
vl_status vl_wal_store_read(vl_objstore *store, uint64_t seq, uint64_t expect,
                            vl_wal_apply_fn check, void *ctx, void **data, size_t *len,
                            uint64_t *last, vl_error *err);

/** Pass every record of object seq's bytes, once checked, through apply
 *  in order. */
vl_status vl_wal_object_apply(uint64_t seq, const void *data, size_t len, vl_wal_apply_fn apply,
                              void *ctx, vl_error *err);

/** 1 for a log opened with vl_wal_open_store. */
int vl_wal_in_store(const vl_wal *w);

/** VL_OK when changes may be appended.  For a store log: VL_ERR_CONFLICT
 *  ("fenced: ...") once another writer took over, VL_ERR_IO ("store
 *  unavailable: ...") while a batch could not be stored yet.  A file log
 *  is always writable here (its failures poison it, see vl_wal_flush). */
vl_status vl_wal_writable(vl_wal *w, vl_error *err);

/** Is this log still the store's writer?  For a store log: creates the
 *  next object number (empty) now, which only the writer no one has
 *  fenced can do: VL_OK, or VL_ERR_CONFLICT ("fenced: ...", and the log
 *  is fenced from then on), or VL_ERR_IO when the store did not answer or
 *  a batch is being retried.  Callers that are about to act on the
 *  store's shared state (a commit that lost its version, GC) ask first.
 *  A file log (its directory is locked): always VL_OK.  Any thread; waits
 *  for one PUT (bounded by the store's timeout). */
vl_status vl_wal_confirm_writer(vl_wal *w, vl_error *err);

/** Encode rec into the pending buffer; sets rec->lsn. Not yet written. */
vl_status vl_wal_append(vl_wal *w, vl_wal_record *rec, vl_error *err);

/** Write all pending records, fsync if the policy is ALWAYS, rotate if the
 *  file is full.  On failure nothing pending may be acknowledged. */
vl_status vl_wal_flush(vl_wal *w, vl_error *err);

/* Pipelined group commit, for a caller that must not wait for fsync:
 * vl_wal_write() hands pending records to the OS (no fsync); under
 * VL_FSYNC_ALWAYS, vl_wal_request_sync() then asks the sync thread to make
 * them durable, and vl_wal_sync_fd() becomes readable when
 * vl_wal_durable_lsn() advances.  Under EVERYSEC and NO, written records
 * count as durable (that is those policies' promise). */
vl_status vl_wal_write(vl_wal *w, vl_error *err);
void vl_wal_request_sync(vl_wal *w);
uint64_t vl_wal_durable_lsn(vl_wal *w);
/** 1 while a requested sync has not finished. */
int vl_wal_sync_in_flight(vl_wal *w);
int vl_wal_sync_fd(const vl_wal *w);
/** Consume the sync fd's signal; VL_ERR_IO if a background fsync failed. */
vl_status vl_wal_check(vl_wal *w, vl_error *err);

/** 1 when records are appended but not yet flushed. */
int vl_wal_has_pending(const vl_wal *w);

/** LSN of the last appended record (0 for an empty log). */
uint64_t vl_wal_last_lsn(const vl_wal *w);

typedef struct {
    uint64_t files;
    uint64_t bytes;
    uint64_t fsyncs;
    uint64_t puts; /**< store mode: batch objects stored since open */
} vl_wal_stats;

void vl_wal_stats_get(vl_wal *w, vl_wal_stats *st);

/** Flush and fsync now, whatever the policy (a commit point for the lake:
 *  a manifest never covers log records that are not on disk). */
vl_status vl_wal_sync(vl_wal *w, vl_error *err);

/** vl_wal_sync, then start a new file if the current one holds records,
 *  so that everything logged so far can later be removed as a whole. */
vl_status vl_wal_sync_and_rotate(vl_wal *w, vl_error *err);

/** Remove closed log files whose records all have LSN <= lsn (they are
 *  covered by committed versions).  The current file is never removed. */
vl_status vl_wal_remove_through(vl_wal *w, uint64_t lsn, vl_error *err);

/** Continue numbering after lsn when the log holds no records at all (every
 *  file was covered and removed).  A log that has records but ends below
 *  lsn is missing files: VL_ERR_CORRUPT. */
vl_status vl_wal_bump_lsn(vl_wal *w, uint64_t lsn, vl_error *err);

/** Flush, fsync, stop the background thread and free. */
void vl_wal_close(vl_wal *w);

/** Tests only: rotate after bytes instead of VL_WAL_ROTATE_BYTES, so
 *  rotation can be exercised with a few records. */
void vl_wal_set_rotate_bytes_for_test(vl_wal *w, uint64_t bytes);

#endif
