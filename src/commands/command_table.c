/* command_table.c - lookup, arity checks and dispatch; see commands.h. */
#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "commands/commands.h"
#include "server/server.h"

static const vl_command table[] = {
    {"ping", -1, vl_cmd_ping, "fast"},
    {"echo", 2, vl_cmd_echo, "fast"},
    {"quit", -1, vl_cmd_quit, "fast"},
    {"shutdown", -1, vl_cmd_shutdown, "admin"},
    {"hello", -1, vl_cmd_hello, "fast"},
    {"client", -2, vl_cmd_client, "fast"},
    {"select", 2, vl_cmd_select, "fast"},
    {"command", -1, vl_cmd_command, "loading"},
    {"info", -1, vl_cmd_info, "loading"},
    {"stats", -1, vl_cmd_info, "loading"},
    {"dbsize", 1, vl_cmd_dbsize, "readonly fast"},
    {"config", -2, vl_cmd_config, "admin"},
    {"vset", -3, vl_cmd_vset, "write"},
    {"vget", -2, vl_cmd_vget, "readonly fast"},
    {"vdel", 2, vl_cmd_vdel, "write fast"},
    {"clear", 1, vl_cmd_clear, "write"},
    {"vsearch", -3, vl_cmd_vsearch, "readonly"},
    {"save", 1, vl_cmd_save, "admin"},
    {"bgsave", -1, vl_cmd_bgsave, "admin"},
    {"lastsave", 1, vl_cmd_lastsave, "fast"},
    {"versions", 1, vl_cmd_versions, "readonly"},
};

const vl_command *vl_command_table(size_t *n)
{
    *n = sizeof table / sizeof table[0];
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
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++)
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

vl_dispatch_result vl_command_dispatch(vl_client *c, int argc, const char **argv,
                                       const size_t *lens)
{
    server.commands_processed++;
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
    size_t before = c->out.len;
    vl_dispatch_result r = cmd->fn(c, argc, argv, lens);
    if (c->out.len > before && c->out.data[before] == '-')
        server.error_replies++;
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
