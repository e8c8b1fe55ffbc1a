/*
 * cmd_connection.c - the connection commands clients send on their own:
 * PING, ECHO, QUIT, AUTH, HELLO, CLIENT, SELECT and COMMAND.
 *
 * These exist so stock Redis clients connect without errors: redis-py 8
 * sends HELLO 3 and CLIENT SETINFO on connect, redis-cli asks COMMAND DOCS
 * for its hints.  Only database 0 exists.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands/commands.h"
#include "server/server.h"
#include "util/alloc.h"
#include "util/number.h"

vl_dispatch_result vl_cmd_ping(vl_client *c, int argc, const char **argv, const size_t *lens)
{
    if (argc > 2)
        vl_reply_error(&c->out, "ERR wrong number of arguments for 'ping' command");
    else if (argc == 2)
        vl_reply_bulk(&c->out, argv[1], lens[1]);
    else
        vl_reply_simple(&c->out, "PONG");
    return VL_DISPATCH_DONE;
}

vl_dispatch_result vl_cmd_echo(vl_client *c, int argc, const char **argv, const size_t *lens)
{
    (void)argc;
    vl_reply_bulk(&c->out, argv[1], lens[1]);
    return VL_DISPATCH_DONE;
}

vl_dispatch_result vl_cmd_quit(vl_client *c, int argc, const char **argv, const size_t *lens)
{
    (void)argc, (void)argv, (void)lens;
    vl_reply_simple(&c->out, "OK");
    c->flags |= VL_CLIENT_CLOSE_AFTER_REPLY;
    return VL_DISPATCH_DONE;
}

/* SHUTDOWN [NOSAVE|SAVE]: every acknowledged write is already in the WAL,
 * so both forms simply stop the server cleanly; the connection closes
 * without a reply, as with Redis. */
vl_dispatch_result vl_cmd_shutdown(vl_client *c, int argc, const char **argv, const size_t *lens)
{
    if (argc > 2 || (argc == 2 && !vl_arg_is(argv[1], lens[1], "NOSAVE") &&
                     !vl_arg_is(argv[1], lens[1], "SAVE"))) {
        vl_reply_error(&c->out, "ERR syntax error: SHUTDOWN [NOSAVE|SAVE]");
        return VL_DISPATCH_DONE;
    }
    vl_loop_stop(server.loop);
    return VL_DISPATCH_DONE;
}

static void set_string(char **field, const char *s, size_t len)
{
    free(*field);
    *field = len ? vl_strndup(s, len) : NULL;
}

static int valid_client_name(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (s[i] <= ' ' || s[i] > '~')
            return 0;
    return 1;
}

static void reply_hello_map(vl_client *c)
{
    vl_reply_map(&c->out, 7);
    vl_reply_bulk_str(&c->out, "server");
    vl_reply_bulk_str(&c->out, "vexlake");
    vl_reply_bulk_str(&c->out, "version");
    vl_reply_bulk_str(&c->out, VL_VERSION);
    vl_reply_bulk_str(&c->out, "proto");
    vl_reply_int(&c->out, c->out.proto);
    vl_reply_bulk_str(&c->out, "id");
    vl_reply_int(&c->out, (long long)c->id);
    vl_reply_bulk_str(&c->out, "mode");
    vl_reply_bulk_str(&c->out, "standalone");
    vl_reply_bulk_str(&c->out, "role");
    vl_reply_bulk_str(&c->out, "master");
    vl_reply_bulk_str(&c->out, "modules");
    vl_reply_array(&c->out, 0);
}

static void reply_wrongpass(vl_client *c)
{
    vl_reply_error(&c->out, "WRONGPASS invalid username-password pair or user is disabled.");
}

/* AUTH [username] password.  A failed AUTH leaves the client logged in as
 * whoever it was (Redis does the same). */
vl_dispatch_result vl_cmd_auth(vl_client *c, int argc, const char **argv, const size_t *lens)
{
    if (argc > 3) {
        vl_reply_error(&c->out, "ERR syntax error");
        return VL_DISPATCH_DONE;
    }
    if (argc == 2 && vl_auth_default_nopass()) {
        vl_reply_error(&c->out, "ERR AUTH <password> called without any password configured for "
                                "the default user. Are you sure your configuration is correct?");
        return VL_DISPATCH_DONE;
    }
    const char *name = argc == 3 ? argv[1] : "default";
    size_t nlen = argc == 3 ? lens[1] : 7;
    struct vl_acl_user *u = vl_auth_login(name, nlen, argv[argc - 1], lens[argc - 1]);
    if (!u) {
        reply_wrongpass(c);
        return VL_DISPATCH_DONE;
    }
    c->user = u;
    vl_reply_simple(&c->out, "OK");
    return VL_DISPATCH_DONE;
}

/* HELLO [protover [AUTH username password] [SETNAME clientname]], in
 * Redis' order: options are parsed first, then AUTH, then the client must
 * be authenticated, then SETNAME, and only then does the protocol switch
 * (so a failed HELLO changes nothing). */
vl_dispatch_result vl_cmd_hello(vl_client *c, int argc, const char **argv, const size_t *lens)
{
    int proto = c->out.proto;
    if (argc >= 2) {
        long long v;
        if (vl_parse_ll(argv[1], lens[1], &v) != 0) {
            vl_reply_error(&c->out, "ERR Protocol version is not an integer or out of range");
            return VL_DISPATCH_DONE;
        }
        if (v != 2 && v != 3) {
            vl_reply_error(&c->out, "NOPROTO unsupported protocol version");
            return VL_DISPATCH_DONE;
        }
        proto = (int)v;
    }
    int auth = 0, setname = 0;
    for (int i = 2; i < argc; i++) {
        if (vl_arg_is(argv[i], lens[i], "AUTH") && i + 2 < argc) {
            auth = i + 1;
            i += 2;
        } else if (vl_arg_is(argv[i], lens[i], "SETNAME") && i + 1 < argc) {
            setname = i + 1;
            i++;
        } else {
            vl_reply_error(&c->out, "ERR Syntax error in HELLO option");
            return VL_DISPATCH_DONE;
        }
    }
    if (auth) {
        struct vl_acl_user *u =
            vl_auth_login(argv[auth], lens[auth], argv[auth + 1], lens[auth + 1]);
        if (!u) {
            reply_wrongpass(c);
            return VL_DISPATCH_DONE;
        }
        c->user = u;
    }
    if (!c->user) {
        vl_reply_error(&c->out, "NOAUTH HELLO must be called with the client already "
                                "authenticated, otherwise the HELLO <proto> AUTH <user> <pass> "
                                "option can be used to authenticate the client and select the "
                                "RESP protocol version at the same time");
        return VL_DISPATCH_DONE;
    }
    if (setname) {
        if (!valid_client_name(argv[setname], lens[setname])) {
            vl_reply_error(&c->out, "ERR Client names cannot contain spaces, newlines or "
                                    "special characters.");
            return VL_DISPATCH_DONE;
        }
        set_string(&c->name, argv[setname], lens[setname]);
    }
    c->out.proto = proto;
    reply_hello_map(c);
    return VL_DISPATCH_DONE;
}

static vl_dispatch_result client_setinfo(vl_client *c, int argc, const char **argv,
                                         const size_t *lens)
{
    if (argc != 4) {
        vl_reply_error(&c->out, "ERR wrong number of arguments for 'client|setinfo' command");
    } else if (!valid_client_name(argv[3], lens[3])) {
        vl_reply_error(&c->out, "ERR CLIENT SETINFO value cannot contain spaces or newlines");
    } else if (vl_arg_is(argv[2], lens[2], "LIB-NAME")) {
        set_string(&c->lib_name, argv[3], lens[3]);
        vl_reply_simple(&c->out, "OK");
    } else if (vl_arg_is(argv[2], lens[2], "LIB-VER")) {
        set_string(&c->lib_ver, argv[3], lens[3]);
        vl_reply_simple(&c->out, "OK");
    } else {
        vl_reply_error(&c->out, "ERR Unrecognized option '%.*s'",
                       (int)(lens[2] > 64 ? 64 : lens[2]), argv[2]);
    }
    return VL_DISPATCH_DONE;
}

static void client_info_line(vl_client *c, vl_client *who)
{
    char line[1024];
    int n = snprintf(line, sizeof line,
                     "id=%llu addr=%s name=%s lib-name=%s lib-ver=%s user=%s resp=%d\n",
                     (unsigned long long)who->id, who->addr, who->name ? who->name : "",
                     who->lib_name ? who->lib_name : "", who->lib_ver ? who->lib_ver : "",
                     who->user ? who->user->name : "default", who->out.proto);
    if (n < 0 || (size_t)n >= sizeof line) /* long names are cut, never read past */
        n = n < 0 ? 0 : (int)sizeof line - 1;
    vl_reply_bulk(&c->out, line, (size_t)n);
}

/* CLIENT ID | GETNAME | SETNAME name | SETINFO attr value | INFO */
vl_dispatch_result vl_cmd_client(vl_client *c, int argc, const char **argv, const size_t *lens)
{
    const char *sub = argv[1];
    size_t sl = lens[1];
    if (vl_arg_is(sub, sl, "ID") && argc == 2) {
        vl_reply_int(&c->out, (long long)c->id);
    } else if (vl_arg_is(sub, sl, "GETNAME") && argc == 2) {
        if (c->name)
            vl_reply_bulk_str(&c->out, c->name);
        else
            vl_reply_null(&c->out);
    } else if (vl_arg_is(sub, sl, "SETNAME") && argc == 3) {
        if (!valid_client_name(argv[2], lens[2])) {
            vl_reply_error(&c->out, "ERR Client names cannot contain spaces, newlines or special "
                                    "characters.");
        } else {
            set_string(&c->name, argv[2], lens[2]);
            vl_reply_simple(&c->out, "OK");
        }
    } else if (vl_arg_is(sub, sl, "SETINFO")) {
        return client_setinfo(c, argc, argv, lens);
    } else if (vl_arg_is(sub, sl, "INFO") && argc == 2) {
        client_info_line(c, c);
    } else {
        vl_reply_error(&c->out,
                       "ERR unknown subcommand or wrong number of arguments for 'CLIENT|%.*s'",
                       (int)(sl > 32 ? 32 : sl), sub);
    }
    return VL_DISPATCH_DONE;
}

vl_dispatch_result vl_cmd_select(vl_client *c, int argc, const char **argv, const size_t *lens)
{
    (void)argc;
    long long db;
    if (vl_parse_ll(argv[1], lens[1], &db) != 0)
        vl_reply_error(&c->out, "ERR value is not an integer or out of range");
    else if (db == 0)
        vl_reply_simple(&c->out, "OK");
    else
        vl_reply_error(&c->out, "ERR DB index is out of range (VexLake has only database 0)");
    return VL_DISPATCH_DONE;
}

/* Most bytes reply_command_info() queues for one command. */
#define COMMAND_INFO_BOUND 256

/* The Redis 7 layout (10 fields); clients parse it by position. */
static void reply_command_info(vl_client *c, const vl_command *cmd)
{
    vl_reply_array(&c->out, 10);
    vl_reply_bulk_str(&c->out, cmd->name);
    vl_reply_int(&c->out, cmd->arity);
    size_t nflags = 0;
    for (const char *p = cmd->flags; *p;) { /* flags are space separated */
        nflags++;
        p += strcspn(p, " ");
        p += strspn(p, " ");
    }
    vl_reply_array(&c->out, nflags);
    for (const char *p = cmd->flags; *p;) {
        size_t n = strcspn(p, " ");
        vl_reply_simple_n(&c->out, p, n);
        p += n;
        p += strspn(p, " ");
    }
    int has_key = strcmp(cmd->name, "vget") == 0 || strcmp(cmd->name, "vset") == 0 ||
                  strcmp(cmd->name, "vdel") == 0;
    vl_reply_int(&c->out, has_key);
    vl_reply_int(&c->out, has_key);
    vl_reply_int(&c->out, has_key);
    size_t ncat = 0;
    for (size_t i = 0; vl_acl_category_names[i]; i++)
        ncat += (cmd->acl >> i) & 1;
    vl_reply_array(&c->out, ncat); /* ACL categories, as "@read" */
    for (size_t i = 0; vl_acl_category_names[i]; i++) {
        if ((cmd->acl >> i) & 1) {
            char name[32];
            snprintf(name, sizeof name, "@%s", vl_acl_category_names[i]);
            vl_reply_simple(&c->out, name);
        }
    }
    for (int i = 0; i < 3; i++) /* tips, key specs, subcommands */
        vl_reply_array(&c->out, 0);
}

/* COMMAND | COMMAND COUNT | COMMAND INFO name... | COMMAND DOCS [name...] | COMMAND LIST */
vl_dispatch_result vl_cmd_command(vl_client *c, int argc, const char **argv, const size_t *lens)
{
    size_t n;
    const vl_command *t = vl_command_table(&n);
    if (argc == 1) {
        vl_reply_array(&c->out, n);
        for (size_t i = 0; i < n; i++)
            reply_command_info(c, &t[i]);
    } else if (vl_arg_is(argv[1], lens[1], "COUNT") && argc == 2) {
        vl_reply_int(&c->out, (long long)n);
    } else if (vl_arg_is(argv[1], lens[1], "LIST") && argc == 2) {
        vl_reply_array(&c->out, n);
        for (size_t i = 0; i < n; i++)
            vl_reply_bulk_str(&c->out, t[i].name);
    } else if (vl_arg_is(argv[1], lens[1], "INFO")) {
        /* ~10-byte names asking for ~100-byte entries: admit it first */
        if (vl_client_reserve_output(c, (size_t)(argc - 2) * COMMAND_INFO_BOUND) != 0)
            return VL_DISPATCH_DONE;
        vl_reply_array(&c->out, (size_t)(argc - 2));
        for (int a = 2; a < argc; a++) {
            const vl_command *found = NULL;
            for (size_t i = 0; i < n && !found; i++)
                if (vl_arg_is(argv[a], lens[a], t[i].name))
                    found = &t[i];
            if (found)
                reply_command_info(c, found);
            else
                vl_reply_null(&c->out);
        }
    } else if (vl_arg_is(argv[1], lens[1], "DOCS")) {
        vl_reply_map(&c->out, 0); /* no docs: clients fall back to no hints */
    } else {
        vl_reply_error(&c->out,
                       "ERR unknown subcommand or wrong number of arguments for 'COMMAND|%.*s'",
                       (int)(lens[1] > 32 ? 32 : lens[1]), argv[1]);
    }
    return VL_DISPATCH_DONE;
}
