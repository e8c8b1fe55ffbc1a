/*
 * driver.h - the load generator's engine: streams of requests over many
 * connections, driven by a few epoll threads.
 *
 * A stream is one kind of request (PING, VSET, VSEARCH) with its own
 * connections, pipeline depth, op budget and optional rate cap.  Its ops are
 * numbered 0, 1, ...; a connection claims up to `pipeline` numbers at a time
 * from a shared counter, writes them as one batch (one write()), and reads
 * their replies before it claims the next batch, as redis-benchmark -P does.
 * Op i is VSET <prefix>n FP32 <row n mod nbase> with n = key_offset + i
 * (i mod keyspace when a keyspace is set, so the keys are overwritten in
 * turn), or VSEARCH FP32 <query i mod nquery> K [EF ef].
 *
 * Latency is per request: from the moment its batch was written to the
 * moment the read that completed its reply returned.  With pipeline 1 that
 * is the round trip; with pipeline P a request also waits for the batch
 * ahead of it in the server.
 *
 * Connections are spread round-robin over the threads; each thread owns its
 * connections and their buffers, and the only shared state is the per-stream
 * op counter and a stop flag.  Results are merged when the threads end.
 */
#ifndef VB_DRIVER_H
#define VB_DRIVER_H

#include <stdatomic.h>
#include <stdint.h>

#include "dataset.h"
#include "hist.h"

typedef enum { VB_OP_PING, VB_OP_VSET, VB_OP_VSEARCH } vb_op;

typedef struct {
    vb_hist hist;
    uint64_t done, errors, protocol_errors;
    uint64_t scored, hits_ids, hits_tie; /* searches scored; rows found, both ways */
    uint64_t dup_replies;                /* VSEARCH replies naming a key twice */
    double t_last;                       /* when the last reply came (seconds) */
    char first_error[200];
} vb_result;

typedef struct {
    /* set by the caller */
    const char *name;
    vb_op op;
    int connections, pipeline;
    uint64_t limit;                /* ops to issue; UINT64_MAX: until the others end */
    double rate;                   /* ops per second at most, all connections together; 0: no cap */
    uint64_t key_offset, keyspace; /* VSET key numbers: offset + (i mod keyspace) */
    uint32_t k, ef;                /* VSEARCH; ef 0: not sent */
    int endless;                   /* runs until every finite stream has ended */
    /* filled by vb_run */
    _Atomic uint64_t next;
    _Atomic int live; /* connections still running */
    double t_start;
    vb_result res;
} vb_stream;

typedef struct {
    const char *host;
    int port;
    const char *user, *password; /* AUTH on connect when password is set */
    const char *key_prefix;
    int threads;
    double seconds; /* stop issuing after this long; 0: no limit */
    const vb_dataset *data;
} vb_target;

/* Connect every stream's connections, run until the finite streams are done
 * (or the time is up), drain, and fill each stream's res.  Returns 0, or -1
 * when a connection could not be made (message on stderr). */
int vb_run(const vb_target *t, vb_stream *streams, int nstreams);

double vb_now(void);

#endif
