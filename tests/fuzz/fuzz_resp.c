/*
 * fuzz_resp.c - the RESP request parser (multibulk and inline), driven as
 * a connection drives it.
 *
 * The input is a byte stream from a client.  It is parsed twice: once with
 * every byte already in the buffer, once arriving in chunks whose sizes
 * come from a hash of the input (sometimes one byte at a time); bytes not
 * yet received are poisoned, so reading past what has arrived is an ASan
 * report.  The two
 * runs must produce the same commands (same request boundaries, same
 * arguments) and end the same way (waiting for more, or a protocol error):
 * resuming after a partial request may not change what is parsed.
 */
#include <sanitizer/asan_interface.h>

#include "fuzz.h"
#include "network/resp_parser.h"

typedef struct {
    size_t start, pos, argc;
    size_t *offs, *lens;
} command;

typedef struct {
    command *cmds;
    size_t n;
    vl_resp_result last; /* how the stream ended: INCOMPLETE or PROTOCOL_ERROR */
} transcript;

static void check_command(const vl_resp_parser *p, size_t avail)
{
    VL_FUZZ_CHECK(p->pos > 0 && p->pos <= avail);
    for (size_t i = 0; i < p->argc; i++)
        VL_FUZZ_CHECK(p->offs[i] <= p->pos && p->lens[i] <= p->pos - p->offs[i]);
}

static void record(transcript *t, const vl_resp_parser *p, size_t start)
{
    command *c;
    t->cmds = realloc(t->cmds, (t->n + 1) * sizeof *t->cmds);
    c = &t->cmds[t->n++];
    c->start = start;
    c->pos = p->pos;
    c->argc = p->argc;
    c->offs = malloc((p->argc ? p->argc : 1) * sizeof *c->offs);
    c->lens = malloc((p->argc ? p->argc : 1) * sizeof *c->lens);
    if (p->argc) {
        memcpy(c->offs, p->offs, p->argc * sizeof *c->offs);
        memcpy(c->lens, p->lens, p->argc * sizeof *c->lens);
    }
}

static void whole(const uint8_t *data, size_t size, transcript *t)
{
    vl_resp_parser p;
    size_t used = 0;
    vl_resp_parser_init(&p);
    for (;;) {
        vl_resp_result r = vl_resp_parse(&p, (const char *)data + used, size - used);
        if (r != VL_RESP_COMMAND) {
            t->last = r;
            break;
        }
        check_command(&p, size - used);
        record(t, &p, used);
        used += p.pos;
        vl_resp_parser_reset(&p);
    }
    vl_resp_parser_free(&p);
}

static int same_command(const command *c, const vl_resp_parser *p, size_t start)
{
    if (c->start != start || c->pos != p->pos || c->argc != p->argc)
        return 0;
    for (size_t i = 0; i < p->argc; i++)
        if (c->offs[i] != p->offs[i] || c->lens[i] != p->lens[i])
            return 0;
    return 1;
}

/* Feed data in chunks; compare every command with the whole-buffer run.
 * One copy of the input holds the stream; the bytes not yet "received"
 * are poisoned, so reading them is an ASan report, as reading past the
 * end of a connection's query buffer would be. */
static void chunked(const uint8_t *data, size_t size, const transcript *t)
{
    uint64_t seed = 14695981039346656037ull;
    for (size_t i = 0; i < size; i++)
        seed = (seed ^ data[i]) * 1099511628211ull;
    int bytewise = (seed & 7) == 0;
    char *stream = malloc(size ? size : 1);
    memcpy(stream, data, size);
    ASAN_POISON_MEMORY_REGION(stream, size);
    vl_resp_parser p;
    size_t used = 0, have = 0, k = 0;
    vl_resp_result r = VL_RESP_INCOMPLETE;
    vl_resp_parser_init(&p);
    while (have < size && r != VL_RESP_PROTOCOL_ERROR) {
        uint64_t x = vl_fuzz_next(&seed);
        size_t chunk = bytewise  ? 1
                       : (x & 3) ? 1 + (size_t)(x >> 8) % 16
                                 : 1 + (size_t)(x >> 8) % 512;
        chunk = chunk < size - have ? chunk : size - have;
        ASAN_UNPOISON_MEMORY_REGION(stream + have, chunk);
        have += chunk;
        for (;;) {
            r = vl_resp_parse(&p, stream + used, have - used);
            if (r != VL_RESP_COMMAND)
                break;
            check_command(&p, have - used);
            VL_FUZZ_CHECK(k < t->n && same_command(&t->cmds[k], &p, used));
            k++;
            used += p.pos;
            vl_resp_parser_reset(&p);
        }
    }
    VL_FUZZ_CHECK(k == t->n);
    VL_FUZZ_CHECK(r == t->last);
    vl_resp_parser_free(&p);
    ASAN_UNPOISON_MEMORY_REGION(stream, size);
    free(stream);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    transcript t = {NULL, 0, VL_RESP_INCOMPLETE};
    whole(data, size, &t);
    chunked(data, size, &t);
    for (size_t i = 0; i < t.n; i++) {
        free(t.cmds[i].offs);
        free(t.cmds[i].lens);
    }
    free(t.cmds);
    return 0;
}
