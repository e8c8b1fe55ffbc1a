/*
 * commands.h - the command table: the single place listing what the
 * server speaks, with each command's arity and handler.
 *
 * Handlers follow one shape: check arguments at the top, reply with a
 * precise -ERR and return early on bad input, then act.  Arity follows
 * Redis: N > 0 means exactly N words (command name included), N < 0 means
 * at least -N.
 *
 * Access: every command has ACL categories (commands/acl.h).  Dispatch
 * checks, in Redis' order after lookup and arity: authenticated (else
 * -NOAUTH, except for VL_CMD_NO_AUTH commands), command allowed to the
 * user (connection commands always are; else -NOPERM), collection allowed
 * (VL_CMD_COLLECTION commands; else -NOPERM).  Before any of it, protected
 * mode refuses a client that is not on loopback while the default user
 * has no password.
 */
#ifndef VL_COMMANDS_COMMANDS_H
#define VL_COMMANDS_COMMANDS_H

#include <stddef.h>

#include "commands/acl.h"
#include "network/client.h"

typedef vl_dispatch_result (*vl_command_fn)(vl_client *c, int argc, const char **argv,
                                            const size_t *lens);

enum {
    VL_CMD_NO_AUTH = 1 << 0,   /* may run before authentication (AUTH, HELLO, QUIT) */
    VL_CMD_COLLECTION = 1 << 1 /* acts on a collection: checked against ~patterns */
};

/** A subcommand with categories of its own (ACL WHOAMI vs ACL LOAD). */
typedef struct {
    const char *name; /* lower case; NULL ends the list */
    unsigned acl;
} vl_subcommand;

typedef struct {
    const char *name; /* lower case */
    int arity;
    vl_command_fn fn;
    const char *flags;         /* COMMAND INFO flags, e.g. "write" or "readonly fast" */
    unsigned acl;              /* VL_ACL_* categories */
    unsigned access;           /* VL_CMD_* */
    const vl_subcommand *subs; /* or NULL: the whole command has categories acl */
} vl_command;

/** Run one request: look up the command, check arity, call its handler. */
vl_dispatch_result vl_command_dispatch(vl_client *c, int argc, const char **argv,
                                       const size_t *lens);

/** The table, for COMMAND. */
const vl_command *vl_command_table(size_t *n);

/** Every command and subcommand with its categories, for ACL rules:
 *  "name" or "name|sub". */
const vl_acl_catalog *vl_command_acl_catalog(void);

/* ---- users (cmd_acl.c) ---- */

/** Set up the users at start: from aclfile (if not NULL), else the
 *  built-in default user, with password requirepass (if not NULL).  Bad
 *  files fail with a message naming file, line and token. */
vl_status vl_auth_configure(const char *requirepass, const char *aclfile, vl_error *err);
/** Log a warning when binding bind exposes a server without a password. */
void vl_auth_warn_exposure(const char *bind, int protected_mode);
/** The enabled user name/password opens, else NULL (WRONGPASS). */
struct vl_acl_user *vl_auth_login(const char *name, size_t nlen, const char *pw, size_t plen);
/** The default user if it is enabled and needs no password, else NULL:
 *  clients are logged in as it when they connect. */
struct vl_acl_user *vl_auth_auto_user(void);
/** Whether the default user needs no password (protected mode applies). */
int vl_auth_default_nopass(void);

/** Reply +OK, or -ERR with err's message. */
vl_dispatch_result vl_reply_status(vl_client *c, vl_status st, const vl_error *err);

/** Called on the loop thread once a version is loaded (st says whether it
 *  could be); returns whether the client is still blocked by it. */
typedef vl_dispatch_result (*vl_version_ready_fn)(void *arg, vl_status st, const vl_error *err);

/** Make sure retained version `version` of the default collection is
 *  loaded -- on a worker thread, blocking c meanwhile, unless it is cached
 *  -- then call then(arg, ...).  Returns the dispatch result for c. */
vl_dispatch_result vl_with_version(vl_client *c, uint64_t version, vl_version_ready_fn then,
                                   void *arg);

/** Answer the SAVEs waiting for their flush (--storage: SAVE blocks only
 *  its client, cmd_lake.c); start the next one once no job runs.  Called
 *  after each background completion and every cron tick. */
void vl_saves_poll(void);

/** Case-insensitive comparison of a (ptr, len) argument with a C string. */
int vl_arg_is(const char *arg, size_t len, const char *word);

/* Handlers, by file. */
vl_dispatch_result vl_cmd_ping(vl_client *c, int argc, const char **argv, const size_t *lens);
vl_dispatch_result vl_cmd_echo(vl_client *c, int argc, const char **argv, const size_t *lens);
vl_dispatch_result vl_cmd_quit(vl_client *c, int argc, const char **argv, const size_t *lens);
vl_dispatch_result vl_cmd_shutdown(vl_client *c, int argc, const char **argv, const size_t *lens);
vl_dispatch_result vl_cmd_hello(vl_client *c, int argc, const char **argv, const size_t *lens);
vl_dispatch_result vl_cmd_client(vl_client *c, int argc, const char **argv, const size_t *lens);
vl_dispatch_result vl_cmd_select(vl_client *c, int argc, const char **argv, const size_t *lens);
vl_dispatch_result vl_cmd_command(vl_client *c, int argc, const char **argv, const size_t *lens);
vl_dispatch_result vl_cmd_info(vl_client *c, int argc, const char **argv, const size_t *lens);
vl_dispatch_result vl_cmd_config(vl_client *c, int argc, const char **argv, const size_t *lens);
vl_dispatch_result vl_cmd_dbsize(vl_client *c, int argc, const char **argv, const size_t *lens);
vl_dispatch_result vl_cmd_vset(vl_client *c, int argc, const char **argv, const size_t *lens);
vl_dispatch_result vl_cmd_vget(vl_client *c, int argc, const char **argv, const size_t *lens);
vl_dispatch_result vl_cmd_vdel(vl_client *c, int argc, const char **argv, const size_t *lens);
vl_dispatch_result vl_cmd_clear(vl_client *c, int argc, const char **argv, const size_t *lens);
vl_dispatch_result vl_cmd_vsearch(vl_client *c, int argc, const char **argv, const size_t *lens);
vl_dispatch_result vl_cmd_save(vl_client *c, int argc, const char **argv, const size_t *lens);
vl_dispatch_result vl_cmd_bgsave(vl_client *c, int argc, const char **argv, const size_t *lens);
vl_dispatch_result vl_cmd_lastsave(vl_client *c, int argc, const char **argv, const size_t *lens);
vl_dispatch_result vl_cmd_auth(vl_client *c, int argc, const char **argv, const size_t *lens);
vl_dispatch_result vl_cmd_acl(vl_client *c, int argc, const char **argv, const size_t *lens);
vl_dispatch_result vl_cmd_versions(vl_client *c, int argc, const char **argv, const size_t *lens);

#endif
