/*
 * hist.h - latency histogram of the load generator: log-linear buckets
 * (128 per power of two, so a reported percentile is within 0.8% of the
 * true value), fixed size, no allocation while recording; one per thread
 * and stream, merged at the end.  Values are nanoseconds.
 */
#ifndef VB_HIST_H
#define VB_HIST_H

#include <stdint.h>

#define VB_HIST_SUB_BITS 7
#define VB_HIST_BUCKETS ((64 - VB_HIST_SUB_BITS + 1) << VB_HIST_SUB_BITS)

typedef struct {
    uint64_t counts[VB_HIST_BUCKETS];
    uint64_t n, max;
} vb_hist;

void vb_hist_record(vb_hist *h, uint64_t ns);
void vb_hist_merge(vb_hist *into, const vb_hist *from);
/* The value at quantile q in [0, 1] (q = 1: the exact maximum); 0 if empty. */
uint64_t vb_hist_quantile(const vb_hist *h, double q);

#endif
