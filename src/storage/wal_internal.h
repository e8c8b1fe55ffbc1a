/*
 * wal_internal.h - what wal.c (the log, local files) and wal_store.c (the
 * same log as objects in a store) share; not for use outside them.
 *
 * One struct serves both: appending, LSNs and the pending buffer are the
 * same, only where a batch goes differs.  In store mode (store != NULL) fd
 * is -1 and the closed list names objects instead of files; the fields
 * marked "store" belong to wal_store.c.
 */
#ifndef VL_STORAGE_WAL_INTERNAL_H
#define VL_STORAGE_WAL_INTERNAL_H

#include <pthread.h>

#include "storage/objstore.h"
#include "storage/wal.h"

/* A closed file (or stored object) before the current one: what removing
 * it would drop. */
typedef struct {
    uint64_t no, last_lsn, size;
} closed_file;

struct vl_wal {
    char *dir;           /* <dir>/wal (local files only) */
    closed_file *closed; /* oldest first; under mu in store mode */
    size_t nclosed, cap_closed;
    vl_fsync policy;
    int fd; /* current (last) file, O_APPEND */
    uint64_t file_no;
    uint64_t file_size;
    uint64_t files;
    uint64_t bytes_before; /* bytes in files before the current one */
    uint64_t last_lsn;
    uint64_t rotate_bytes;
    unsigned char *buf; /* pending records */
    size_t buf_len, buf_cap;
    uint64_t fsyncs;  /* atomic */
    int failed_errno; /* atomic; nonzero once poisoned */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    pthread_t thread;
    int thread_started;
    int stop;             /* under mu */
    int dirty;            /* under mu: written since the last sync */
    uint64_t written_lsn; /* under mu: last LSN handed to write() */
    uint64_t synced_lsn;  /* under mu: last LSN known to be on stable storage */
    uint64_t sync_target; /* under mu: LSN a caller asked the sync thread for */
    int sync_fd;          /* eventfd, signalled when synced_lsn advances */

    /* store mode (wal_store.c) */
    vl_objstore *store;   /* NULL: local files */
    unsigned char *batch; /* the batch being stored; the thread's while batch_busy */
    size_t batch_len, batch_cap;
    uint64_t batch_last;    /* under mu: LSN of the batch's last record */
    int batch_busy;         /* under mu: a batch waits to be stored */
    uint64_t next_seq;      /* under mu: number of the next object */
    int fenced;             /* under mu: another writer took the next object */
    int stalled;            /* under mu: the last attempt failed; retrying */
    vl_error store_err;     /* under mu: why (fenced or stalled) */
    uint64_t puts;          /* under mu: batch objects stored since open */
    uint64_t store_bytes;   /* under mu: bytes of the objects in closed */
    uint64_t remove_lsn;    /* under mu: objects covered up to here may be removed */
    uint64_t confirm_asked; /* under mu: confirmations asked for (vl_wal_confirm_writer) */
    uint64_t confirm_done;  /* under mu: ... answered, by confirm_st */
    vl_status confirm_st;   /* under mu: the last answer */
    vl_error confirm_err;   /* under mu: why it was not VL_OK (unless fenced) */
};

/* Replay state: the callback and the LSN the next record must carry. */
typedef struct {
    vl_wal_apply_fn apply;
    void *ctx;
    uint64_t last_lsn; /* 0 before the first record */
    float *scratch;
    int truncate_damaged; /* operator's choice: cut the last file at any damage */
} vl_wal_replay;

/* wal.c */
vl_wal *vl_wal_new(vl_fsync policy);
void vl_wal_free(vl_wal *w);
/** Apply every record of one whole object (len bytes); any invalid record
 *  is VL_ERR_CORRUPT naming the object and the offset (an object is
 *  stored whole, so there is no torn tail). */
vl_status vl_wal_replay_object(vl_wal_replay *rs, const char *name, const unsigned char *p,
                               size_t len, vl_error *err);
vl_status vl_wal_remember_closed(vl_wal *w, uint64_t no, uint64_t last_lsn, uint64_t size,
                                 vl_error *err);

/* wal_store.c: the store-mode halves of wal.c's public calls */
void *vl_wal_store_thread(void *arg);
vl_status vl_wal_store_write(vl_wal *w);
vl_status vl_wal_store_sync(vl_wal *w, vl_error *err);
vl_status vl_wal_store_check(vl_wal *w, vl_error *err);
vl_status vl_wal_store_remove_through(vl_wal *w, uint64_t lsn, vl_error *err);
void vl_wal_store_close(vl_wal *w);

#endif
