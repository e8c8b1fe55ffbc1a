/*
 * main.c - bin/vexlake-bench: a RESP load generator for VexLake (and any
 * server that speaks the commands it sends).  Flags, the run plan for each
 * mode, and the report; the work is in driver.c.
 *
 * Modes: insert (VSET key FP32 blob), search (VSEARCH FP32 blob K [EF n]),
 * mixed (searches while an insert stream runs on its own connections; the
 * inserts go on until the searches end), ping (PING: the client's own cost,
 * to hold against redis-benchmark on the same server).
 *
 * Output: a readable block per stream, then one "result" line per stream of
 * space-separated key=value pairs for scripts (bench/resp_bench.sh and
 * tests/e2e/test_bench_tool.py read it).  Exit status: 0, 1 when any request
 * failed or a connection was lost, 2 for bad flags.
 */
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "dataset.h"
#include "driver.h"

typedef struct {
    const char *mode, *dataset, *host, *auth, *user, *prefix, *label, *metric;
    long long n, concurrency, pipeline, k, ef, port, threads, dim, seed;
    long long insert_concurrency, insert_pipeline, insert_n, key_offset, keyspace;
    double seconds, insert_rate;
} options;

static const char usage_text[] =
    "usage: vexlake-bench -mode=insert|search|mixed|ping [flags]\n"
    "\n"
    "A RESP load generator: many connections, pipelining, latency percentiles and,\n"
    "with a dataset that has ground truth, recall@k of every search reply.\n"
    "\n"
    "  -mode=M            insert: VSET <prefix><i> FP32 <blob>, row i of the dataset\n"
    "                     search: VSEARCH FP32 <blob> K [EF ef], query i mod nquery\n"
    "                     mixed:  search, while an insert stream runs on its own\n"
    "                             connections until the searches end\n"
    "                     ping:   PING (this tool's own cost; compare with redis-benchmark)\n"
    "  -n=N               requests (insert: default one per base row; search: one per\n"
    "                     query; ping: 100000)\n"
    "  -concurrency=C     connections (default 50)\n"
    "  -pipeline=P        requests written at once per connection; the next batch goes\n"
    "                     when all P replies are in, as redis-benchmark -P (default 1)\n"
    "  -dataset=DIR       base.fvecs, query.fvecs [, groundtruth.ivecs,\n"
    "                     groundtruth_dist.fvecs] (texmex layout); without it, seeded\n"
    "                     random vectors of -dim dimensions and no recall\n"
    "  -k=K               VSEARCH K (default 10)\n"
    "  -ef=EF             send EF EF with every VSEARCH (default: not sent)\n"
    "  -host=H -port=P    server (default 127.0.0.1:6379)\n"
    "  -auth=PASS         AUTH on every connection [-user=USER for AUTH USER PASS]\n"
    "  -threads=T         client threads, each an epoll loop over its share of the\n"
    "                     connections (default 1)\n"
    "  -seconds=S         stop issuing after S seconds (default: no limit)\n"
    "  -insert-concurrency=C  mixed: insert connections (default 50)\n"
    "  -insert-pipeline=P     mixed: insert pipeline (default 1)\n"
    "  -insert-rate=R         mixed: at most R inserts/s in total (default: no cap)\n"
    "  -insert-n=N            mixed: at most N inserts (default: until searches end)\n"
    "  -key-prefix=S      keys are S<number> (default empty: \"0\", \"1\", ...)\n"
    "  -key-offset=O      insert key numbers start at O (default 0; mixed: the base\n"
    "                     size, so the stream adds copies of rows under new keys)\n"
    "  -keyspace=N        insert key numbers wrap: offset + (i mod N), overwriting;\n"
    "                     -key-offset=0 -keyspace=<base rows> rewrites the dataset\n"
    "                     in place, so searches keep their answers (default: no wrap)\n"
    "  -metric=auto|l2|cosine  distances for tie-aware recall (default: from the\n"
    "                     dataset directory name, e.g. sift-128-euclidean)\n"
    "  -dim=D -seed=S     random vectors without -dataset (default 128, 1)\n"
    "  -label=TEXT        printed with the results (e.g. appendfsync=always)\n"
    "  -help              this text\n"
    "\n"
    "Latency is per request: from the write() of its pipeline batch to the read()\n"
    "that completed its reply. recall@k: a returned key <prefix><n> is base row\n"
    "n mod nbase; \"ids\" counts the true k nearest ids that came back, \"tie-aware\" rows\n"
    "at most as far as the k-th true neighbour (copies and ties are not misses).\n"
    "\n"
    "Output ends with one line per stream for scripts:\n"
    "  result stream=S ops=N seconds=T ops_per_sec=R errors=E p50_ms=.. p95_ms=..\n"
    "         p99_ms=.. max_ms=.. cpu_us_per_op=.. [dup_replies=.. recall=.. recall_ids=..]\n"
    "         [label=..]\n"
    "(cpu_us_per_op: this process's CPU time during the run over the requests of every\n"
    "stream: the client's own cost, which shares the machine with the server)\n"
    "(dup_replies: VSEARCH replies that name a key twice, which no correct server sends)\n"
    "Exit status: 0; 1 if a request failed or a connection was lost; 2 bad flags.\n";

static int bad(const char *flag, const char *value)
{
    fprintf(stderr, "vexlake-bench: bad value for -%s: '%s' (see -help)\n", flag, value);
    return -1;
}

static int parse_ll(const char *flag, const char *v, long long lo, long long hi, long long *out)
{
    char *end;
    errno = 0;
    long long x = strtoll(v, &end, 10);
    if (errno || end == v || *end || x < lo || x > hi)
        return bad(flag, v);
    *out = x;
    return 0;
}

static int parse_double(const char *flag, const char *v, double *out)
{
    char *end;
    errno = 0;
    double x = strtod(v, &end);
    if (errno || end == v || *end || !(x >= 0) || x > 1e12)
        return bad(flag, v);
    *out = x;
    return 0;
}

typedef struct {
    const char *name;
    char kind; /* s string, i integer (lo..hi), d non-negative double */
    void *dst;
    long long lo, hi;
} flag_def;

static int set_flag(options *o, const char *name, const char *value)
{
    const flag_def defs[] = {
        {"mode", 's', &o->mode, 0, 0},
        {"dataset", 's', &o->dataset, 0, 0},
        {"host", 's', &o->host, 0, 0},
        {"auth", 's', &o->auth, 0, 0},
        {"user", 's', &o->user, 0, 0},
        {"key-prefix", 's', &o->prefix, 0, 0},
        {"label", 's', &o->label, 0, 0},
        {"metric", 's', &o->metric, 0, 0},
        {"n", 'i', &o->n, 1, INT64_MAX / 2},
        {"concurrency", 'i', &o->concurrency, 1, 10000},
        {"pipeline", 'i', &o->pipeline, 1, 100000},
        {"k", 'i', &o->k, 1, 100000},
        {"ef", 'i', &o->ef, 1, 1000000},
        {"port", 'i', &o->port, 1, 65535},
        {"threads", 'i', &o->threads, 1, 256},
        {"dim", 'i', &o->dim, 1, 65536},
        {"seed", 'i', &o->seed, 0, INT64_MAX},
        {"insert-concurrency", 'i', &o->insert_concurrency, 1, 10000},
        {"insert-pipeline", 'i', &o->insert_pipeline, 1, 100000},
        {"insert-n", 'i', &o->insert_n, 1, INT64_MAX / 2},
        {"key-offset", 'i', &o->key_offset, 0, INT64_MAX / 2},
        {"keyspace", 'i', &o->keyspace, 1, INT64_MAX / 2},
        {"seconds", 'd', &o->seconds, 0, 0},
        {"insert-rate", 'd', &o->insert_rate, 0, 0},
    };
    for (size_t i = 0; i < sizeof defs / sizeof defs[0]; i++) {
        if (strcmp(defs[i].name, name) != 0)
            continue;
        if (defs[i].kind == 's') {
            *(const char **)defs[i].dst = value;
            return 0;
        }
        if (defs[i].kind == 'i')
            return parse_ll(name, value, defs[i].lo, defs[i].hi, defs[i].dst);
        return parse_double(name, value, defs[i].dst);
    }
    fprintf(stderr, "vexlake-bench: unknown flag -%s (see -help)\n", name);
    return -1;
}

/* -name=value, --name=value, or -name value.  Returns 1 for -help. */
static int parse_flags(int argc, char **argv, options *o)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (a[0] != '-' || !a[1]) {
            fprintf(stderr, "vexlake-bench: unexpected argument '%s' (see -help)\n", a);
            return -1;
        }
        a += a[1] == '-' ? 2 : 1;
        if (!strcmp(a, "help") || !strcmp(a, "h"))
            return 1;
        char name[64];
        const char *eq = strchr(a, '='), *value;
        size_t len = eq ? (size_t)(eq - a) : strlen(a);
        if (len >= sizeof name)
            return set_flag(o, a, "");
        memcpy(name, a, len);
        name[len] = 0;
        if (eq) {
            value = eq + 1;
        } else if (i + 1 < argc) {
            value = argv[++i];
        } else {
            fprintf(stderr, "vexlake-bench: -%s needs a value (see -help)\n", name);
            return -1;
        }
        if (set_flag(o, name, value) != 0)
            return -1;
    }
    return 0;
}

static double ms(uint64_t ns)
{
    return (double)ns / 1e6;
}

static int report(const vb_stream *s, const vb_dataset *d, const char *label, double cpu_us)
{
    const vb_result *r = &s->res;
    double secs = r->t_last > s->t_start ? r->t_last - s->t_start : 0;
    double rate = secs > 0 ? (double)r->done / secs : 0;
    printf("== %s: %d connections, pipeline %d%s%s\n", s->name, s->connections, s->pipeline,
           label ? ", " : "", label ? label : "");
    printf("ops        %llu in %.3f s = %.1f ops/s, %llu errors\n", (unsigned long long)r->done,
           secs, rate, (unsigned long long)(r->errors + r->protocol_errors));
    if (r->first_error[0])
        printf("first error: %s\n", r->first_error);
    printf("client CPU %.2f us per request (this process, user + system, every stream)\n", cpu_us);
    const vb_hist *h = &r->hist;
    printf("latency    p50 %.3f ms, p95 %.3f ms, p99 %.3f ms, max %.3f ms (per request, from the "
           "write of its batch of %d)\n",
           ms(vb_hist_quantile(h, 0.50)), ms(vb_hist_quantile(h, 0.95)),
           ms(vb_hist_quantile(h, 0.99)), ms(h->max), s->pipeline);
    double recall = -1, recall_ids = -1;
    if (s->op == VB_OP_VSEARCH && r->scored) {
        double slots = (double)r->scored * s->k;
        recall_ids = (double)r->hits_ids / slots;
        if (vb_dataset_tie_aware(d, s->k)) {
            recall = (double)r->hits_tie / slots;
            printf("recall@%u  %.4f tie-aware, %.4f by ids, over %llu replies\n", s->k, recall,
                   recall_ids, (unsigned long long)r->scored);
        } else {
            recall = recall_ids;
            printf("recall@%u  %.4f by ids, over %llu replies\n", s->k, recall,
                   (unsigned long long)r->scored);
        }
    } else if (s->op == VB_OP_VSEARCH) {
        printf("recall     not measured (%s)\n", !d->gt           ? "no ground truth"
                                                 : s->k > d->gt_k ? "k is past the ground truth"
                                                                  : "no replies");
    }
    if (s->op == VB_OP_VSEARCH && r->dup_replies)
        printf("repeated   %llu replies named one key twice (a key has one row: a server bug)\n",
               (unsigned long long)r->dup_replies);
    printf("result stream=%s ops=%llu seconds=%.4f ops_per_sec=%.1f errors=%llu p50_ms=%.4f "
           "p95_ms=%.4f p99_ms=%.4f max_ms=%.4f cpu_us_per_op=%.2f",
           s->name, (unsigned long long)r->done, secs, rate,
           (unsigned long long)(r->errors + r->protocol_errors), ms(vb_hist_quantile(h, 0.50)),
           ms(vb_hist_quantile(h, 0.95)), ms(vb_hist_quantile(h, 0.99)), ms(h->max), cpu_us);
    if (s->op == VB_OP_VSEARCH)
        printf(" dup_replies=%llu", (unsigned long long)r->dup_replies);
    if (recall >= 0)
        printf(" recall=%.4f recall_ids=%.4f", recall, recall_ids);
    if (label)
        printf(" label=%s", label);
    printf("\n");
    return r->errors || r->protocol_errors ? 1 : 0;
}

/* CPU seconds (user + system) this process has used so far. */
static double cpu_seconds(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
           (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1e-6;
}

static int load_data(const options *o, vb_dataset *d)
{
    vb_metric metric = VB_METRIC_NONE;
    if (!strcmp(o->metric, "l2"))
        metric = VB_METRIC_L2;
    else if (!strcmp(o->metric, "cosine"))
        metric = VB_METRIC_COSINE;
    else if (strcmp(o->metric, "auto"))
        return bad("metric", o->metric);
    if (!o->dataset) {
        uint32_t rows = o->n > 0 && o->n < 65536 ? (uint32_t)o->n : 65536;
        vb_dataset_random(d, (uint32_t)o->dim, rows, 1000, (uint64_t)o->seed);
        return 0;
    }
    char err[512];
    if (vb_dataset_load(d, o->dataset, metric, err, sizeof err) != 0) {
        fprintf(stderr, "vexlake-bench: dataset: %s\n", err);
        return -1;
    }
    if (!d->query && strcmp(o->mode, "insert") && strcmp(o->mode, "ping")) {
        fprintf(stderr, "vexlake-bench: dataset %s has no query.fvecs\n", o->dataset);
        return -1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    options o = {.mode = "search",
                 .host = "127.0.0.1",
                 .prefix = "",
                 .metric = "auto",
                 .concurrency = 50,
                 .pipeline = 1,
                 .k = 10,
                 .port = 6379,
                 .threads = 1,
                 .dim = 128,
                 .seed = 1,
                 .insert_concurrency = 50,
                 .insert_pipeline = 1,
                 .key_offset = -1};
    int pf = parse_flags(argc, argv, &o);
    if (pf == 1) {
        fputs(usage_text, stdout);
        return 0;
    }
    if (pf != 0)
        return 2;
    int insert = !strcmp(o.mode, "insert"), search = !strcmp(o.mode, "search");
    int mixed = !strcmp(o.mode, "mixed"), ping = !strcmp(o.mode, "ping");
    if (!insert && !search && !mixed && !ping) {
        bad("mode", o.mode);
        return 2;
    }
    const uint32_t one = 1;
    if (*(const unsigned char *)&one != 1) {
        fprintf(stderr, "vexlake-bench: FP32 blobs are little-endian; this host is not\n");
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    vb_dataset d;
    if (load_data(&o, &d) != 0)
        return 2;

    vb_stream st[2];
    memset(st, 0, sizeof st);
    int ns = 1;
    uint64_t unlimited = o.seconds > 0 ? UINT64_MAX : 0;
    vb_stream *main_s = &st[0];
    main_s->connections = (int)o.concurrency;
    main_s->pipeline = (int)o.pipeline;
    if (ping) {
        main_s->name = "ping";
        main_s->op = VB_OP_PING;
        main_s->limit = o.n ? (uint64_t)o.n : unlimited ? unlimited : 100000;
    } else if (insert) {
        main_s->name = "insert";
        main_s->op = VB_OP_VSET;
        main_s->limit = o.n ? (uint64_t)o.n : unlimited ? unlimited : d.nbase;
        main_s->key_offset = o.key_offset >= 0 ? (uint64_t)o.key_offset : 0;
        main_s->keyspace = (uint64_t)o.keyspace;
    } else {
        main_s->name = "search";
        main_s->op = VB_OP_VSEARCH;
        main_s->limit = o.n ? (uint64_t)o.n : unlimited ? unlimited : d.nquery;
        main_s->k = (uint32_t)o.k;
        main_s->ef = (uint32_t)o.ef;
    }
    if (mixed) {
        vb_stream *ins = &st[ns++];
        ins->name = "insert";
        ins->op = VB_OP_VSET;
        ins->connections = (int)o.insert_concurrency;
        ins->pipeline = (int)o.insert_pipeline;
        ins->limit = o.insert_n ? (uint64_t)o.insert_n : UINT64_MAX;
        ins->endless = 1;
        ins->rate = o.insert_rate;
        ins->key_offset = o.key_offset >= 0 ? (uint64_t)o.key_offset : d.nbase;
        ins->keyspace = (uint64_t)o.keyspace;
    }
    vb_target t = {.host = o.host,
                   .port = (int)o.port,
                   .user = o.user,
                   .password = o.auth,
                   .key_prefix = o.prefix,
                   .threads = (int)o.threads,
                   .seconds = o.seconds,
                   .data = &d};
    printf("vexlake-bench: mode=%s host=%s port=%d dataset=%s (%u x %u, %u queries%s) "
           "threads=%d\n",
           o.mode, o.host, (int)o.port, o.dataset ? o.dataset : "random", d.nbase, d.dim, d.nquery,
           d.gt ? ", ground truth" : "", t.threads);
    fflush(stdout);
    double cpu0 = cpu_seconds();
    if (vb_run(&t, st, ns) != 0) {
        vb_dataset_free(&d);
        return 1;
    }
    double cpu = cpu_seconds() - cpu0;
    uint64_t ops = 0;
    for (int i = 0; i < ns; i++)
        ops += st[i].res.done;
    double cpu_us = ops ? cpu * 1e6 / (double)ops : 0;
    int rc = 0;
    for (int i = 0; i < ns; i++)
        rc |= report(&st[i], &d, o.label, cpu_us);
    vb_dataset_free(&d);
    return rc;
}
