/*
 * client_memory.c - what client buffers may hold, per client and in total.
 *
 * Decisions:
 *  - A client's memory is the capacity of its query buffer plus that of its
 *    reply buffer (what malloc really holds, not what is filled).  The
 *    registry keeps running totals, updated by vl_client_account() after
 *    every step that can change a buffer, so no limit check walks the
 *    client list; only choosing whom to evict does (rare, O(clients)).
 *  - Past --maxmemory-clients the client using the most is evicted, as in
 *    Redis' client eviction -- usually the hostile one.  Eviction and the
 *    output-limit close only *schedule* a close (VL_CLIENT_CLOSE_ASAP): a
 *    handler may be running for another client, or the flush may hold the
 *    victim in a list, so client.c closes scheduled clients where nothing
 *    refers to them.  A scheduled client's buffers stop counting at once,
 *    so one overflow never evicts more clients than it needs.
 *  - The output limit is applied before a large reply is built
 *    (vl_client_reserve_output: VSEARCH knows its size from the hits), and
 *    checked again after every command for replies built without asking.
 *    Past the limit the client is closed without the reply, as Redis does
 *    for its client-output-buffer-limit.
 */
#include <stdio.h>

#include "network/client.h"
#include "util/log.h"

void vl_clients_set_limits(vl_clients *cs, const vl_client_limits *limits)
{
    cs->limits = *limits;
}

static int closing(const vl_client *c)
{
    return (c->flags & (VL_CLIENT_CLOSED | VL_CLIENT_CLOSE_ASAP)) != 0;
}

void vl_client_account(vl_client *c)
{
    vl_clients *cs = c->owner;
    size_t q = closing(c) ? 0 : c->qcap, o = closing(c) ? 0 : c->out.cap;
    cs->query_bytes = cs->query_bytes - c->acct_query + q;
    cs->output_bytes = cs->output_bytes - c->acct_output + o;
    c->acct_query = q;
    c->acct_output = o;
}

void vl_client_schedule_close(vl_client *c)
{
    if (closing(c))
        return;
    c->flags |= VL_CLIENT_CLOSE_ASAP;
    c->owner->closing++;
    vl_client_account(c);
}

static size_t usage(const vl_client *c)
{
    return c->qcap + c->out.cap;
}

/* what: "Evicting client:" or "Client", as Redis words its lines. */
static void log_client(const char *what, const vl_client *c, size_t extra, const char *why)
{
    vl_log(VL_LOG_WARNING,
           "%s id=%llu addr=%s name=%s qbuf=%zu qbuf-cap=%zu omem=%zu tot-mem=%zu %s", what,
           (unsigned long long)c->id, c->addr, c->name ? c->name : "", c->qlen, c->qcap, c->out.cap,
           usage(c) + extra, why);
}

int vl_clients_make_room(vl_clients *cs, vl_client *c, size_t extra)
{
    size_t max = cs->limits.total_max;
    while (max && cs->query_bytes + cs->output_bytes + extra > max) {
        vl_client *victim = NULL;
        size_t most = 0;
        for (vl_client *x = cs->head; x; x = x->next) {
            size_t u = usage(x) + (x == c ? extra : 0);
            if (!closing(x) && u >= most) {
                victim = x;
                most = u;
            }
        }
        if (!victim)
            return 0;
        char why[128];
        snprintf(why, sizeof why, "(clients use %zu bytes; maxmemory-clients is %zu)",
                 cs->query_bytes + cs->output_bytes + extra, max);
        log_client("Evicting client:", victim, victim == c ? extra : 0, why);
        cs->evicted_clients++;
        vl_client_schedule_close(victim);
        if (victim == c)
            return -1;
    }
    return 0;
}

static void over_output_limit(vl_client *c, size_t pending)
{
    char why[160];
    snprintf(why, sizeof why,
             "scheduled to be closed ASAP for overcoming of output buffer limits "
             "(%zu bytes pending; client-output-buffer-limit is %zu)",
             pending, c->owner->limits.output_max);
    log_client("Client", c, 0, why);
    c->owner->output_limit_disconnections++;
    vl_client_schedule_close(c);
}

int vl_client_reserve_output(vl_client *c, size_t bytes)
{
    vl_clients *cs = c->owner;
    if (closing(c))
        return -1;
    if (cs->limits.output_max && c->out.len + bytes > cs->limits.output_max) {
        over_output_limit(c, c->out.len + bytes);
        return -1;
    }
    vl_client_account(c);
    size_t room = vl_reply_room(&c->out);
    return vl_clients_make_room(cs, c, bytes > room ? bytes - room : 0);
}

void vl_client_check_output(vl_client *c)
{
    vl_clients *cs = c->owner;
    if (closing(c))
        return;
    if (c->out.failed) {
        log_client("Client", c, 0, "closed: out of memory building its reply");
        vl_client_schedule_close(c);
        return;
    }
    if (cs->limits.output_max && c->out.len > cs->limits.output_max) {
        over_output_limit(c, c->out.len);
        return;
    }
    vl_client_account(c);
    vl_clients_make_room(cs, c, 0);
}
