/* command_table.c - lookup, arity checks and dispatch; see commands.h. */
#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "commands/commands.h"
#include "server/server.h"

#define R VL_ACL_READ
#define W VL_ACL_WRITE
#define A VL_ACL_ADMIN
#define CONN VL_ACL_CONNECTION
#define NOAUTH VL_CMD_NO_AUTH
#define COLL VL_CMD_COLLECTION

static const vl_subcommand acl_subs[] = {
    {"whoami", CONN}, {"cat", CONN}, {"list", A}, {"users", A}, {"load", A}, {NULL, 0},
};

/* Categories follow Redis' where it has the command: @connection for what
 * a client sends on its own, @admin for SAVE / CONFIG / SHUTDOWN and for
 * INFO and LASTSAVE (Redis: @dangerous / @admin), @read and @write for the
 * data commands.  DBSIZE and VERSIONS describe a collection, so they are
 * @read and checked against the user's collection patterns. */
static const vl_command table[] = {
    {"ping", -1, vl_cmd_ping, "fast", CONN, 0, NULL},
    {"echo", 2, vl_cmd_echo, "fast", CONN, 0, NULL},
    {"quit", -1, vl_cmd_quit, "fast", CONN, NOAUTH, NULL},
    {"auth", -2, vl_cmd_auth, "fast no-auth", CONN, NOAUTH, NULL},
    {"hello", -1, vl_cmd_hello, "fast no-auth", CONN, NOAUTH, NULL},
    {"client", -2, vl_cmd_client, "fast", CONN, 0, NULL},
    {"select", 2, vl_cmd_select, "fast", CONN, 0, NULL},
    {"command", -1, vl_cmd_command, "loading", CONN, 0, NULL},
    {"acl", -2, vl_cmd_acl, "admin", A, 0, acl_subs},
    {"shutdown", -1, vl_cmd_shutdown, "admin", A, 0, NULL},
    {"info", -1, vl_cmd_info, "loading", A, 0, NULL},
    {"stats", -1, vl_cmd_info, "loading", A, 0, NULL},
    {"config", -2, vl_cmd_config, "admin", A, 0, NULL},
    {"save", 1, vl_cmd_save, "admin", A, 0, NULL},
    {"bgsave", -1, vl_cmd_bgsave, "admin", A, 0, NULL},
    {"lastsave", 1, vl_cmd_lastsave, "fast", A, 0, NULL},
    {"dbsize", 1, vl_cmd_dbsize, "readonly fast", R, COLL, NULL},
    {"vset", -3, vl_cmd_vset, "write", W, COLL, NULL},
    {"vget", -2, vl_cmd_vget, "readonly fast", R, COLL, NULL},
    {"vdel", 2, vl_cmd_vdel, "write fast", W, COLL, NULL},
    {"clear", 1, vl_cmd_clear, "write", W, COLL, NULL},
    {"vsearch", -3, vl_cmd_vsearch, "readonly", R, COLL, NULL},
    {"versions", 1, vl_cmd_versions, "readonly", R, COLL, NULL},
};

#define NCOMMANDS (sizeof table / sizeof table[0])

/* The ACL catalog: each command, then each of its subcommands as
 * "cmd|sub"; first_id[i] is table[i]'s id. */
static vl_acl_command catalog[VL_ACL_MAX_COMMANDS];
static char catalog_names[VL_ACL_MAX_COMMANDS][48];
static vl_acl_catalog acl_catalog = {catalog, 0};
static size_t first_id[NCOMMANDS];

const vl_acl_catalog *vl_command_acl_catalog(void)
{
    if (acl_catalog.n)
        return &acl_catalog;
    size_t n = 0;
    for (size_t i = 0; i < NCOMMANDS; i++) {
        first_id[i] = n;
        catalog[n++] = (vl_acl_command){table[i].name, table[i].acl};
        for (const vl_subcommand *s = table[i].subs; s && s->name; s++) {
            snprintf(catalog_names[n], sizeof catalog_names[n], "%s|%s", table[i].name, s->name);
            catalog[n] = (vl_acl_command){catalog_names[n], s->acl};
            n++;
        }
    }
    acl_catalog.n = n;
    return &acl_catalog;
}

const vl_command *vl_command_table(size_t *n)
{
    *n = NCOMMANDS;
    return table;
}

int vl_arg_is(const char *arg, size_t len, const char *word)
{
    size_t wl = strlen(word);
    if (wl != len)
        return 0;
    for (size_t i = 0; i < len; i++)
        if (tolower((unsigned char)arg[i]) != tolower((unsigned char)word[i]))
            return 0;
    return 1;
}

static const vl_command *lookup(const char *name, size_t len)
{
    for (size_t i = 0; i < NCOMMANDS; i++)
        if (vl_arg_is(name, len, table[i].name))
            return &table[i];
    return NULL;
}

/* Printable excerpt of an argument for error messages (Redis style). */
static void excerpt(const char *s, size_t len, char *out, size_t cap)
{
    size_t n = 0;
    for (size_t i = 0; i < len && n + 4 < cap; i++)
        out[n++] = (s[i] >= 32 && s[i] < 127 && s[i] != '\'') ? s[i] : '?';
    if (len && n < len && n + 4 < cap)
        out[n++] = '.', out[n++] = '.', out[n++] = '.';
    out[n] = '\0';
}

static void unknown_command(vl_client *c, int argc, const char **argv, const size_t *lens)
{
    char name[64], args[256] = "";
    excerpt(argv[0], lens[0], name, sizeof name);
    size_t used = 0;
    for (int i = 1; i < argc && used < sizeof args - 80; i++) {
        char a[64];
        excerpt(argv[i], lens[i], a, sizeof a);
        used += (size_t)snprintf(args + used, sizeof args - used, "'%s' ", a);
    }
    vl_reply_error(&c->out, "ERR unknown command '%s', with args beginning with: %s", name, args);
}

/* ---- access ---- */

static const char denied[] =
    "-DENIED VexLake is running in protected mode because protected mode is enabled and no "
    "password is set for the default user. In this mode connections are only accepted from the "
    "loopback interface. If you want to connect from external computers to VexLake you may "
    "adopt one of the following solutions: 1) Restart the server with the '--protected-mode no' "
    "option, however MAKE SURE VexLake is not publicly accessible from internet if you do so. "
    "2) Set up an authentication password for the default user (--requirepass, "
    "--requirepass-file or --aclfile). NOTE: You only need to do one of the above things in "
    "order for the server to start accepting connections from the outside.\r\n";

static int client_is_local(const vl_client *c)
{
    char ip[sizeof c->addr];
    snprintf(ip, sizeof ip, "%s", c->addr);
    char *port = strrchr(ip, ':'); /* addr is "ip:port", IPv6 unbracketed */
    if (port)
        *port = '\0';
    return vl_acl_is_loopback(ip);
}

/* Until a client is logged in, on each request: protected mode may refuse
 * it (0), else it is logged in as the default user if that needs no
 * password. */
static int admit(vl_client *c)
{
    if (c->user)
        return 1;
    if (server.cfg.protected_mode && vl_auth_default_nopass() && !client_is_local(c)) {
        vl_reply_raw(&c->out, denied, sizeof denied - 1);
        c->flags |= VL_CLIENT_CLOSE_AFTER_REPLY;
        return 0;
    }
    c->user = vl_auth_auto_user();
    return 1;
}

/* The catalog id of this request: its subcommand's when listed. */
static size_t request_acl_id(const vl_command *cmd, int argc, const char **argv, const size_t *lens)
{
    size_t id = first_id[cmd - table];
    if (cmd->subs && argc >= 2)
        for (size_t k = 0; cmd->subs[k].name; k++)
            if (vl_arg_is(argv[1], lens[1], cmd->subs[k].name))
                return id + 1 + k;
    return id;
}

/* The collection a request acts on.  Every vector command acts on the
 * default collection today; a command that takes a collection name reads
 * it here. */
static const char *request_collection(const vl_command *cmd, int argc, const char **argv,
                                      const size_t *lens, size_t *len)
{
    (void)cmd, (void)argc, (void)argv, (void)lens;
    *len = strlen(VL_DEFAULT_COLLECTION);
    return VL_DEFAULT_COLLECTION;
}

/* 1 when c may run this request; else the error reply is written. */
static int access_allowed(vl_client *c, const vl_command *cmd, int argc, const char **argv,
                          const size_t *lens)
{
    if (!c->user) {
        if (cmd->access & VL_CMD_NO_AUTH)
            return 1;
        vl_reply_error(&c->out, "NOAUTH Authentication required.");
        return 0;
    }
    const vl_acl_catalog *cat = vl_command_acl_catalog();
    size_t id = request_acl_id(cmd, argc, argv, lens);
    if (!(cat->cmds[id].categories & VL_ACL_CONNECTION) && !vl_acl_command_allowed(c->user, id)) {
        vl_reply_error(&c->out, "NOPERM User %s has no permissions to run the '%s' command",
                       c->user->name, cat->cmds[id].name);
        return 0;
    }
    size_t len;
    const char *coll =
        (cmd->access & VL_CMD_COLLECTION) ? request_collection(cmd, argc, argv, lens, &len) : NULL;
    if (coll && !vl_acl_collection_allowed(c->user, coll, len)) {
        vl_reply_error(&c->out, "NOPERM No permissions to access a key");
        return 0;
    }
    return 1;
}

/* 1 when the store WAL refuses this command (the error reply is
 * written): writes while the store is unavailable; every data command once
 * this writer is fenced, since its memory holds changes that will never be
 * stored (server.c). */
static int refused_by_store(vl_client *c, const vl_command *cmd)
{
    vl_error why;
    if (!(cmd->acl & (VL_ACL_READ | VL_ACL_WRITE)))
        return 0;
    vl_status st = vl_write_refusal(server.engine, &why);
    if (st == VL_OK || (st != VL_ERR_CONFLICT && !(cmd->acl & VL_ACL_WRITE)))
        return 0;
    vl_reply_error(&c->out, "ERR %s", why.msg);
    return 1;
}

vl_dispatch_result vl_command_dispatch(vl_client *c, int argc, const char **argv,
                                       const size_t *lens)
{
    server.commands_processed++;
    if (!admit(c)) {
        server.error_replies++;
        return VL_DISPATCH_DONE;
    }
    const vl_command *cmd = lookup(argv[0], lens[0]);
    if (!cmd) {
        server.error_replies++;
        unknown_command(c, argc, argv, lens);
        return VL_DISPATCH_DONE;
    }
    if ((cmd->arity > 0 && argc != cmd->arity) || (cmd->arity < 0 && argc < -cmd->arity)) {
        server.error_replies++;
        vl_reply_error(&c->out, "ERR wrong number of arguments for '%s' command", cmd->name);
        return VL_DISPATCH_DONE;
    }
    if (!access_allowed(c, cmd, argc, argv, lens) || refused_by_store(c, cmd)) {
        if (cmd->acl & VL_ACL_WRITE)
            c->flags |= VL_CLIENT_WRITE_REPLY;
        server.error_replies++;
        return VL_DISPATCH_DONE;
    }
    if (server.cfg.read_only && (cmd->acl & VL_ACL_WRITE)) { /* as a Redis replica replies */
        server.error_replies++;
        vl_reply_error(&c->out, "READONLY You can't write against a read only replica.");
        return VL_DISPATCH_DONE;
    }
    size_t before = c->out.len;
    vl_dispatch_result r = cmd->fn(c, argc, argv, lens);
    if (c->out.len > before && c->out.data[before] == '-')
        server.error_replies++;
    if (cmd->acl & VL_ACL_WRITE)
        c->flags |= VL_CLIENT_WRITE_REPLY;
    return r;
}

vl_dispatch_result vl_reply_status(vl_client *c, vl_status st, const vl_error *err)
{
    if (st == VL_OK)
        vl_reply_simple(&c->out, "OK");
    else
        vl_reply_error(&c->out, "ERR %s", err->msg);
    return VL_DISPATCH_DONE;
}
