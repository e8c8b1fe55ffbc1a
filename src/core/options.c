/* options.c - engine options and the names of metrics and fsync policies. */
#include <string.h>

#include "vexlake.h"

static const char *const metric_names[] = {"l2", "cosine", "ip"};
static const char *const fsync_names[] = {"always", "everysec", "no"};
static const char *const index_names[] = {"flat", "hnsw", "ivf"};
static const char *const quant_names[] = {"none", "sq8", "rabitq"};

void vl_options_init(vl_options *opt)
{
    opt->default_metric = VL_METRIC_COSINE;
    opt->fsync = VL_FSYNC_ALWAYS;
    opt->deferred_sync = 0;
    opt->flush_rows = 100000;
    opt->flush_wal_bytes = 256u * 1024 * 1024;
    opt->flush_seconds = 300;
    opt->retain_versions = 10;
    opt->compact_segments = 8;
    opt->open_previous_on_damage = 0;
    opt->wal_truncate_damaged = 0;
    opt->max_memory = 0;
    opt->store = NULL;
    memset(&opt->index, 0, sizeof opt->index);
    opt->index.kind = VL_INDEX_HNSW;
    opt->index.quant = VL_QUANT_SQ8;
    opt->index_min_rows = 1024;
    opt->tail_index_rows = 4096;
    opt->tail_ef_construction = 32;
    opt->read_only = 0;
}

static int lookup(const char *const *names, int n, const char *name)
{
    for (int i = 0; name && i < n; i++)
        if (strcmp(names[i], name) == 0)
            return i;
    return -1;
}

vl_status vl_metric_parse(const char *name, vl_metric *out)
{
    int i = lookup(metric_names, 3, name);
    if (i < 0)
        return VL_ERR_ARG;
    *out = (vl_metric)i;
    return VL_OK;
}

const char *vl_metric_name(vl_metric m)
{
    return (unsigned)m < 3 ? metric_names[m] : "unknown";
}

vl_status vl_fsync_parse(const char *name, vl_fsync *out)
{
    int i = lookup(fsync_names, 3, name);
    if (i < 0)
        return VL_ERR_ARG;
    *out = (vl_fsync)i;
    return VL_OK;
}

const char *vl_fsync_name(vl_fsync f)
{
    return (unsigned)f < 3 ? fsync_names[f] : "unknown";
}

vl_status vl_index_kind_parse(const char *name, vl_index_kind *out)
{
    int i = lookup(index_names, 3, name);
    if (i < 0)
        return VL_ERR_ARG;
    *out = (vl_index_kind)i;
    return VL_OK;
}

const char *vl_index_kind_name(vl_index_kind k)
{
    return (unsigned)k < 3 ? index_names[k] : "unknown";
}

vl_status vl_quant_parse(const char *name, vl_quant *out)
{
    int i = lookup(quant_names, 3, name);
    if (i < 0)
        return VL_ERR_ARG;
    *out = (vl_quant)i;
    return VL_OK;
}

const char *vl_quant_name(vl_quant q)
{
    return (unsigned)q < 3 ? quant_names[q] : "unknown";
}
