/*
 * index_set.c - building and releasing index sets (see index_set.h).
 *
 * Rows of one segment are contiguous in a generation nearly always (a flush
 * or a load appends them in segment order), so the lookup of a row's
 * segment remembers the last hit and falls back to a linear search of the
 * few segments.  Tail indexes are mapped first, marking their rows in a
 * bitmap of the generation's rows (nrows / 8 bytes for the pass), so the
 * one pass over the rows then sends each live row to its segment index,
 * its tail index or the scan ranges.
 */
#include "core/index_set.h"

#include <stdlib.h>

#include "util/alloc.h"

static void add_range(vl_index_set *s, size_t *cap, uint64_t row)
{
    if (s->nscan && s->scan[s->nscan - 1].hi == row) {
        s->scan[s->nscan - 1].hi = row + 1;
        return;
    }
    if (s->nscan == *cap) {
        *cap = *cap ? *cap * 2 : 8;
        s->scan = vl_realloc(s->scan, *cap * sizeof *s->scan);
    }
    s->scan[s->nscan++] = (vl_row_range){row, row + 1};
}

static long entry_of(const vl_index_set *s, uint32_t seg, long *last)
{
    if (*last >= 0 && s->entries[*last].seg_id == seg)
        return *last;
    for (size_t i = 0; i < s->n; i++)
        if (s->entries[i].seg_id == seg)
            return *last = (long)i;
    return -1;
}

/* An index none of whose rows is live (its rows were cleared, overwritten
 * or deleted) would only cost a walk: leave it out.  The others learn
 * whether every row maps and the largest row, for search.c's filter. */
static void drop_unused(vl_index_set *s)
{
    size_t w = 0;
    for (size_t i = 0; i < s->n; i++) {
        vl_index_entry *e = &s->entries[i];
        uint32_t rows = vl_seg_index_rows(e->ix), mapped = 0;
        e->max_row = 0;
        for (uint32_t r = 0; r < rows; r++) {
            if (e->map[r] == VL_ROW_NONE)
                continue;
            mapped++;
            e->max_row = e->map[r] > e->max_row ? e->map[r] : e->max_row;
        }
        e->whole = mapped == rows;
        if (mapped) {
            s->entries[w++] = *e;
        } else {
            vl_seg_index_unref(e->ix);
            free(e->map);
        }
    }
    s->n = w;
}

/* The segment entry that reaches row r of rs (live), or -1; *seg_row set. */
static long segment_of(const vl_index_set *s, const vl_rowstore *rs, uint64_t r, long *last,
                       uint32_t *seg_row)
{
    uint32_t seg;
    vl_rowstore_location(rs, (uint32_t)r, &seg, seg_row);
    long k = seg == VL_SEG_NONE ? -1 : entry_of(s, seg, last);
    return k >= 0 && *seg_row < vl_seg_index_rows(s->entries[k].ix) ? k : -1;
}

static void add_entry(vl_index_set *s, uint32_t seg_id, vl_seg_index *ix, int tail)
{
    vl_index_entry *e = &s->entries[s->n++];
    e->seg_id = seg_id;
    e->ix = ix;
    e->tail = tail;
    vl_seg_index_ref(ix);
    uint32_t rows = vl_seg_index_rows(ix);
    e->map = vl_malloc(((size_t)rows ? rows : 1) * sizeof *e->map);
    for (uint32_t r = 0; r < rows; r++)
        e->map[r] = VL_ROW_NONE;
}

/* Map the rows of tail index t that are live and in no segment index, and
 * mark them in taken (one bit per row of the generation). */
static void map_tail(vl_index_set *s, const vl_rowstore *rs, uint64_t nrows, const vl_row_index *t,
                     uint64_t *taken, uint64_t keep_lsn)
{
    vl_index_entry *e = &s->entries[s->n - 1];
    uint32_t rows = vl_seg_index_rows(t->ix), seg_row;
    long last = -1;
    for (uint32_t i = 0; i < rows; i++) {
        uint32_t r = t->rows[i];
        if (r == VL_ROW_NONE || r >= nrows || (taken[r / 64] >> (r % 64) & 1))
            continue;
        uint64_t del = vl_rowstore_del_lsn(rs, r);
        if ((del && del <= keep_lsn) || segment_of(s, rs, r, &last, &seg_row) >= 0)
            continue;
        e->map[i] = r;
        taken[r / 64] |= 1ull << (r % 64);
    }
}

vl_index_set *vl_index_set_build(const vl_rowstore *rs, uint64_t nrows, const uint32_t *ids,
                                 vl_seg_index *const *ixs, size_t n, const vl_row_index *tails,
                                 size_t ntails, uint64_t keep_lsn)
{
    size_t used = ntails;
    for (size_t i = 0; i < n; i++)
        used += ixs[i] != NULL;
    if (!rs || used == 0)
        return NULL;
    vl_index_set *s = vl_calloc(1, sizeof *s);
    atomic_init(&s->refs, 1);
    s->rows = rs;
    s->base = nrows;
    s->deletions = rs->deletions;
    s->entries = vl_calloc(used, sizeof *s->entries);
    for (size_t i = 0; i < n; i++)
        if (ixs[i])
            add_entry(s, ids[i], ixs[i], 0);
    size_t nseg = s->n;
    uint64_t *taken = ntails ? vl_calloc(nrows / 64 + 1, sizeof *taken) : NULL;
    for (size_t i = 0; i < ntails; i++) {
        add_entry(s, VL_SEG_NONE, tails[i].ix, 1);
        map_tail(s, rs, nrows, &tails[i], taken, keep_lsn);
    }
    size_t cap = 0;
    long last = -1;
    for (uint64_t r = 0; r < nrows; r++) {
        uint64_t del = vl_rowstore_del_lsn(rs, (uint32_t)r);
        if (del && del <= keep_lsn) { /* dead for every snapshot at dead_lsn or later */
            s->dead_lsn = del > s->dead_lsn ? del : s->dead_lsn;
            continue;
        }
        if (del)
            s->deletions = UINT64_MAX; /* kept: mapped rows are not all live */
        uint32_t seg_row;
        long k = nseg ? segment_of(s, rs, r, &last, &seg_row) : -1;
        if (k >= 0) {
            s->entries[k].map[seg_row] = (uint32_t)r;
            s->covered++;
        } else if (taken && (taken[r / 64] >> (r % 64) & 1)) {
            s->covered++;
            s->tail_covered++;
        } else {
            add_range(s, &cap, r);
            s->unindexed++;
        }
    }
    free(taken);
    drop_unused(s);
    for (size_t i = 0; i < s->n; i++)
        s->ntails += s->entries[i].tail;
    return s;
}

void vl_index_set_ref(vl_index_set *s)
{
    atomic_fetch_add_explicit(&s->refs, 1, memory_order_relaxed);
}

void vl_index_set_unref(vl_index_set *s)
{
    if (!s || atomic_fetch_sub_explicit(&s->refs, 1, memory_order_acq_rel) != 1)
        return;
    for (size_t i = 0; i < s->n; i++) {
        vl_seg_index_unref(s->entries[i].ix);
        free(s->entries[i].map);
    }
    free(s->entries);
    free(s->scan);
    free(s);
}

uint64_t vl_index_set_memory(const vl_index_set *s)
{
    if (!s)
        return 0;
    uint64_t b = sizeof *s + s->n * sizeof *s->entries + s->nscan * sizeof *s->scan;
    for (size_t i = 0; i < s->n; i++)
        b += (uint64_t)vl_seg_index_rows(s->entries[i].ix) * sizeof(uint32_t) +
             vl_seg_index_memory(s->entries[i].ix);
    return b;
}
