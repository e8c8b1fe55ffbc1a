/*
 * commands.h - the command table: the single place listing what the
 * server speaks, with each command's arity and handler.
 *
 * Handlers follow one shape: check arguments at the top, reply with a
 * precise -ERR and return early on bad input, then act.  Arity follows
 * Redis: N > 0 means exactly N words (command name included), N < 0 means
 * at least -N.
 */
#ifndef VL_COMMANDS_COMMANDS_H
#define VL_COMMANDS_COMMANDS_H

#include <stddef.h>

#include "network/client.h"

typedef vl_dispatch_result (*vl_command_fn)(vl_client *c, int argc, const char **argv,
                                            const size_t *lens);

typedef struct {
    const char *name; /* lower case */
    int arity;
    vl_command_fn fn;
    const char *flags; /* COMMAND INFO flags, e.g. "write" or "readonly fast" */
} vl_command;

/** Run one request: look up the command, check arity, call its handler. */
vl_dispatch_result vl_command_dispatch(vl_client *c, int argc, const char **argv,
                                       const size_t *lens);

/** The table, for COMMAND. */
const vl_command *vl_command_table(size_t *n);

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
vl_dispatch_result vl_cmd_versions(vl_client *c, int argc, const char **argv, const size_t *lens);

#endif
