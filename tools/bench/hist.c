/*
 * hist.c - see hist.h.  Bucket of v: below 2^7 the value itself; else with
 * e = floor(log2 v), the 7 bits after the leading one select one of 128
 * sub-buckets of [2^e, 2^(e+1)).  A quantile reports its bucket's midpoint.
 */
#include "hist.h"

static unsigned bucket_of(uint64_t v)
{
    if (v < (1u << VB_HIST_SUB_BITS))
        return (unsigned)v;
    unsigned e = 63u - (unsigned)__builtin_clzll(v);
    unsigned sub = (unsigned)(v >> (e - VB_HIST_SUB_BITS)) & ((1u << VB_HIST_SUB_BITS) - 1);
    return ((e - VB_HIST_SUB_BITS + 1) << VB_HIST_SUB_BITS) + sub;
}

static uint64_t bucket_mid(unsigned b)
{
    if (b < (1u << VB_HIST_SUB_BITS))
        return b;
    unsigned e = (b >> VB_HIST_SUB_BITS) + VB_HIST_SUB_BITS - 1;
    uint64_t sub = b & ((1u << VB_HIST_SUB_BITS) - 1);
    uint64_t lo = ((1ull << VB_HIST_SUB_BITS) + sub) << (e - VB_HIST_SUB_BITS);
    uint64_t width = 1ull << (e - VB_HIST_SUB_BITS);
    return lo + width / 2;
}

void vb_hist_record(vb_hist *h, uint64_t ns)
{
    h->counts[bucket_of(ns)]++;
    h->n++;
    if (ns > h->max)
        h->max = ns;
}

void vb_hist_merge(vb_hist *into, const vb_hist *from)
{
    for (unsigned i = 0; i < VB_HIST_BUCKETS; i++)
        into->counts[i] += from->counts[i];
    into->n += from->n;
    if (from->max > into->max)
        into->max = from->max;
}

uint64_t vb_hist_quantile(const vb_hist *h, double q)
{
    if (h->n == 0)
        return 0;
    if (q >= 1.0)
        return h->max;
    /* The rank-th smallest value, rank = ceil(q * n), at least 1. */
    uint64_t rank = (uint64_t)(q * (double)h->n);
    if ((double)rank < q * (double)h->n)
        rank++;
    if (rank == 0)
        rank = 1;
    uint64_t seen = 0;
    for (unsigned i = 0; i < VB_HIST_BUCKETS; i++) {
        seen += h->counts[i];
        if (seen >= rank) {
            uint64_t mid = bucket_mid(i);
            return mid > h->max ? h->max : mid;
        }
    }
    return h->max;
}
