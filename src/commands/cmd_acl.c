/*
 * cmd_acl.c - the users the server knows (the registry), and the ACL
 * command: ACL WHOAMI | USERS | LIST | CAT [category] | LOAD.
 *
 * Decisions a reader cannot see from the code:
 * - The registry is one complete set of users.  Clients point into it
 *   (vl_client.user).  ACL LOAD parses the whole file into a new set
 *   first, so a bad file changes nothing; then every client is re-pointed
 *   at the new user of the same name, and a client whose user is gone or
 *   off is logged out by closing it, as Redis does; only then is the old
 *   set freed, so no client is left pointing into it.  A changed password
 *   does not log anyone out (Redis neither).
 * - --requirepass is the default user's password and cannot be combined
 *   with --aclfile (the file says what the default user is); only its
 *   SHA-256 is kept.
 * - Everything here runs on the event-loop thread (or in main() before it
 *   starts).
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "commands/commands.h"
#include "server/server.h"
#include "util/alloc.h"
#include "util/log.h"

/** Largest ACL file read. */
#define MAX_ACL_FILE (16u << 20)

static vl_acl_users users;
static int have_users;
static char aclfile[PATH_MAX];

static void ensure_users(void)
{
    if (!have_users) {
        vl_acl_users_builtin(vl_command_acl_catalog(), &users);
        have_users = 1;
    }
}

static vl_acl_user *default_user(void)
{
    ensure_users();
    return vl_acl_users_find(&users, "default", 7);
}

static vl_status read_acl_file(const char *path, vl_acl_users *out, vl_error *err)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return vl_fail(err, VL_ERR_IO, "cannot read ACL file %s: %s", path, strerror(errno));
    char *text = vl_malloc(MAX_ACL_FILE + 1);
    size_t n = fread(text, 1, MAX_ACL_FILE + 1, f);
    int failed = ferror(f);
    fclose(f);
    vl_status st;
    if (failed)
        st = vl_fail(err, VL_ERR_IO, "cannot read ACL file %s", path);
    else if (n > MAX_ACL_FILE)
        st = vl_fail(err, VL_ERR_LIMIT, "ACL file %s is larger than %u bytes", path, MAX_ACL_FILE);
    else
        st = vl_acl_load(vl_command_acl_catalog(), text, n, path, out, err);
    free(text);
    return st;
}

vl_status vl_auth_configure(const char *requirepass, const char *file, vl_error *err)
{
    if (requirepass && file)
        return vl_fail(err, VL_ERR_ARG,
                       "--requirepass and --aclfile do not mix: give the default user its "
                       "password in the ACL file");
    vl_acl_users fresh;
    if (file) {
        if (read_acl_file(file, &fresh, err) != VL_OK)
            return VL_ERR_ARG;
        snprintf(aclfile, sizeof aclfile, "%s", file);
    } else {
        vl_acl_users_builtin(vl_command_acl_catalog(), &fresh);
    }
    if (requirepass) {
        size_t len = strlen(requirepass);
        char *rule = vl_malloc(len + 2);
        rule[0] = '>';
        memcpy(rule + 1, requirepass, len + 1);
        vl_acl_user *def = vl_acl_users_find(&fresh, "default", 7);
        vl_acl_user_apply(vl_command_acl_catalog(), def, "resetpass", 9, NULL);
        vl_acl_user_apply(vl_command_acl_catalog(), def, rule, len + 1, NULL);
        OPENSSL_cleanse(rule, len + 2);
        free(rule);
    }
    if (have_users)
        vl_acl_users_free(&users);
    users = fresh;
    have_users = 1;
    return VL_OK;
}

void vl_auth_warn_exposure(const char *bind, int protected_mode)
{
    if (vl_acl_is_loopback(bind) || !vl_auth_default_nopass())
        return;
    if (protected_mode)
        vl_log(VL_LOG_WARNING,
               "listening on %s with no password for the default user: protected mode is on, "
               "so only loopback clients are served (set --requirepass, --requirepass-file or "
               "--aclfile to serve others)",
               bind);
    else
        vl_log(VL_LOG_WARNING,
               "listening on %s with no password for the default user and protected mode off: "
               "anyone who can reach this port can read and delete every vector",
               bind);
}

vl_acl_user *vl_auth_login(const char *name, size_t nlen, const char *pw, size_t plen)
{
    ensure_users();
    vl_acl_user *u = vl_acl_users_find(&users, name, nlen);
    if (!u) {
        unsigned char h[VL_ACL_DIGEST_LEN]; /* the same work as for a real user */
        vl_acl_hash(pw, plen, h);
        return NULL;
    }
    int ok = vl_acl_password_ok(u, pw, plen);
    return ok && u->enabled ? u : NULL;
}

vl_acl_user *vl_auth_auto_user(void)
{
    vl_acl_user *d = default_user();
    return d && d->enabled && d->nopass ? d : NULL;
}

int vl_auth_default_nopass(void)
{
    vl_acl_user *d = default_user();
    return d && d->nopass;
}

/* Point every client at its user in fresh, closing those whose user is
 * gone or off. */
static void relog_clients(const vl_acl_users *fresh)
{
    for (vl_client *c = server.clients.head; c; c = c->next) {
        if (!c->user)
            continue;
        vl_acl_user *u = vl_acl_users_find(fresh, c->user->name, strlen(c->user->name));
        if (u && u->enabled) {
            c->user = u;
            continue;
        }
        if (!(c->flags & VL_CLIENT_CLOSED)) {
            vl_log(VL_LOG_INFO, "ACL LOAD: closing client id=%llu addr=%s: user '%s' %s",
                   (unsigned long long)c->id, c->addr, c->user->name, u ? "is off" : "was removed");
            vl_client_close_soon(&server.clients, c);
        }
        c->user = NULL;
    }
}

static void acl_load(vl_client *c)
{
    if (!aclfile[0]) {
        vl_reply_error(&c->out, "ERR This VexLake instance is not configured to use an ACL file "
                                "(start it with --aclfile PATH)");
        return;
    }
    vl_acl_users fresh;
    vl_error err;
    if (read_acl_file(aclfile, &fresh, &err) != VL_OK) {
        vl_reply_error(&c->out,
                       "ERR %s. WARNING: ACL errors detected, no change to the previously "
                       "active ACL rules was performed",
                       err.msg);
        return;
    }
    ensure_users();
    relog_clients(&fresh);
    vl_acl_users_free(&users);
    users = fresh;
    vl_log(VL_LOG_INFO, "ACL LOAD: users reloaded from %s", aclfile);
    vl_reply_simple(&c->out, "OK");
}

static void acl_cat(vl_client *c, int argc, const char **argv, const size_t *lens)
{
    if (argc == 2) {
        size_t n = 0;
        while (vl_acl_category_names[n])
            n++;
        vl_reply_array(&c->out, n);
        for (size_t i = 0; i < n; i++)
            vl_reply_bulk_str(&c->out, vl_acl_category_names[i]);
        return;
    }
    unsigned bit = vl_acl_category_parse(argv[2], lens[2]);
    if (!bit || (bit & (bit - 1))) { /* unknown, or "all" (not a category of its own) */
        vl_reply_error(&c->out, "ERR Unknown category '%.*s'", (int)(lens[2] > 128 ? 128 : lens[2]),
                       argv[2]);
        return;
    }
    const vl_acl_catalog *cat = vl_command_acl_catalog();
    size_t n = 0;
    for (size_t i = 0; i < cat->n; i++)
        n += (cat->cmds[i].categories & bit) != 0;
    vl_reply_array(&c->out, n);
    for (size_t i = 0; i < cat->n; i++)
        if (cat->cmds[i].categories & bit)
            vl_reply_bulk_str(&c->out, cat->cmds[i].name);
}

static void acl_list(vl_client *c, int names_only)
{
    ensure_users();
    size_t n;
    vl_acl_user **v = vl_acl_users_sorted(&users, &n);
    vl_reply_array(&c->out, n);
    for (size_t i = 0; i < n; i++) {
        if (names_only) {
            vl_reply_bulk_str(&c->out, v[i]->name);
        } else {
            char *line = vl_acl_user_describe(v[i]);
            vl_reply_bulk_str(&c->out, line);
            free(line);
        }
    }
    free(v);
}

vl_dispatch_result vl_cmd_acl(vl_client *c, int argc, const char **argv, const size_t *lens)
{
    const char *sub = argv[1];
    size_t sl = lens[1];
    if (vl_arg_is(sub, sl, "WHOAMI") && argc == 2)
        vl_reply_bulk_str(&c->out, c->user->name);
    else if (vl_arg_is(sub, sl, "USERS") && argc == 2)
        acl_list(c, 1);
    else if (vl_arg_is(sub, sl, "LIST") && argc == 2)
        acl_list(c, 0);
    else if (vl_arg_is(sub, sl, "CAT") && argc <= 3)
        acl_cat(c, argc, argv, lens);
    else if (vl_arg_is(sub, sl, "LOAD") && argc == 2)
        acl_load(c);
    else
        vl_reply_error(&c->out,
                       "ERR unknown subcommand or wrong number of arguments for 'ACL|%.*s'",
                       (int)(sl > 32 ? 32 : sl), sub);
    return VL_DISPATCH_DONE;
}
