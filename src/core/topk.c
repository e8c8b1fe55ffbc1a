/* topk.c - see topk.h. */
#include "core/topk.h"

#include <math.h>
#include <stdlib.h>

static int worse(const vl_candidate *a, const vl_candidate *b)
{
    return a->dist > b->dist || (a->dist == b->dist && a->row > b->row);
}

void vl_topk_init(vl_topk *t, vl_candidate *items, uint32_t k)
{
    t->items = items;
    t->n = 0;
    t->k = k;
}

static void sift_up(vl_candidate *h, uint32_t i)
{
    while (i > 0) {
        uint32_t p = (i - 1) / 2;
        if (!worse(&h[i], &h[p]))
            break;
        vl_candidate tmp = h[i];
        h[i] = h[p];
        h[p] = tmp;
        i = p;
    }
}

static void sift_down(vl_candidate *h, uint32_t n, uint32_t i)
{
    for (;;) {
        uint32_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < n && worse(&h[l], &h[m]))
            m = l;
        if (r < n && worse(&h[r], &h[m]))
            m = r;
        if (m == i)
            return;
        vl_candidate tmp = h[i];
        h[i] = h[m];
        h[m] = tmp;
        i = m;
    }
}

void vl_topk_push(vl_topk *t, double dist, uint64_t row)
{
    vl_candidate c = {dist, row};
    if (t->n < t->k) {
        t->items[t->n] = c;
        sift_up(t->items, t->n++);
    } else if (t->k > 0 && worse(&t->items[0], &c)) {
        t->items[0] = c;
        sift_down(t->items, t->n, 0);
    }
}

double vl_topk_bound(const vl_topk *t)
{
    return t->n < t->k ? INFINITY : t->items[0].dist;
}

static int cmp_candidate(const void *a, const void *b)
{
    const vl_candidate *x = a, *y = b;
    return worse(x, y) ? 1 : (worse(y, x) ? -1 : 0);
}

void vl_topk_sort(vl_topk *t)
{
    qsort(t->items, t->n, sizeof *t->items, cmp_candidate);
}
