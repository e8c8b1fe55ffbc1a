/*
 * acl.h - users and their rules: a subset of Redis' ACL language.
 *
 * Pure: no server state, no sockets.  The command layer passes in a
 * catalog (every command name with its categories) and asks questions;
 * tests and the fuzz harness drive the parser with nothing else.
 *
 * A rules line reads "user <name> <rule> <rule> ..." and a user starts
 * with nothing: off, no password, no collection, no command.  Rules apply
 * left to right:
 *   on | off            enabled or not (an off user cannot log in)
 *   >password           add a password (stored as its SHA-256 only)
 *   #<64 hex digits>    add a password given as its SHA-256
 *   nopass              any password works; forgets the passwords
 *   resetpass           forget the passwords and nopass
 *   ~<glob>             may touch collections matching the glob
 *   allkeys             the same as ~*
 *   +@<cat> / -@<cat>   allow / deny a category: read, write, admin,
 *                       connection, all
 *   +<cmd> / -<cmd>     allow / deny one command (or "acl|load": one
 *                       subcommand; "+acl" is every ACL subcommand)
 *   allcommands         +@all;  nocommands: -@all
 * Connection commands (PING, AUTH, HELLO, ...) are always allowed to an
 * authenticated user, so "-ping" or "-@connection" is refused as a rule
 * that could not take effect; "+ping" is accepted and changes nothing.
 * Passwords containing spaces cannot be written with '>' (lines split on
 * blanks, no quoting): give them as '#<sha256>'.
 */
#ifndef VL_COMMANDS_ACL_H
#define VL_COMMANDS_ACL_H

#include <stddef.h>

#include "util/error.h"

/* Command categories (bits). */
#define VL_ACL_READ 1u
#define VL_ACL_WRITE 2u
#define VL_ACL_ADMIN 4u
#define VL_ACL_CONNECTION 8u

/** Most entries a catalog may hold (commands plus subcommands). */
#define VL_ACL_MAX_COMMANDS 256
#define VL_ACL_DIGEST_LEN 32

/** One command (or "cmd|sub" subcommand) the server speaks. */
typedef struct {
    const char *name; /* lower case */
    unsigned categories;
} vl_acl_command;

typedef struct {
    const vl_acl_command *cmds; /* index = the id permission checks use */
    size_t n;                   /* at most VL_ACL_MAX_COMMANDS */
} vl_acl_catalog;

typedef struct vl_acl_user {
    char *name;
    int enabled;
    int nopass;
    unsigned char (*hashes)[VL_ACL_DIGEST_LEN];
    size_t nhashes;
    int allkeys;
    char **patterns;
    size_t npatterns;
    unsigned char allowed[VL_ACL_MAX_COMMANDS / 8]; /* bit per catalog id */
    char *rules;                                    /* command rules, normalized, for ACL LIST */
    struct vl_acl_user *next;
} vl_acl_user;

/** A set of users, names unique. */
typedef struct {
    vl_acl_user *head;
} vl_acl_users;

/** A new user with nothing allowed (off, no password). */
vl_acl_user *vl_acl_user_new(const char *name, size_t len);
void vl_acl_user_free(vl_acl_user *u);

/** Apply one rule to u.  VL_ERR_ARG with the reason on a bad rule
 *  (u may then be partly changed). */
vl_status vl_acl_user_apply(const vl_acl_catalog *cat, vl_acl_user *u, const char *rule, size_t len,
                            vl_error *err);

/** Parse one line of an ACL file.  Returns VL_OK with *out a new user, or
 *  VL_OK with *out NULL for a blank or '#' comment line, or VL_ERR_ARG
 *  with err naming the offending token.  Any bytes are accepted as input. */
vl_status vl_acl_parse_line(const vl_acl_catalog *cat, const char *line, size_t len,
                            vl_acl_user **out, vl_error *err);

/** Parse a whole file's text into *out (replacing nothing on failure).
 *  Adds the built-in default user ("on nopass ~* +@all") when the text
 *  defines none.  Errors read "<fname>:<line>: ...". */
vl_status vl_acl_load(const vl_acl_catalog *cat, const char *text, size_t len, const char *fname,
                      vl_acl_users *out, vl_error *err);

/** The users a server without an ACL file has: "default on nopass ~* +@all". */
void vl_acl_users_builtin(const vl_acl_catalog *cat, vl_acl_users *out);

void vl_acl_users_free(vl_acl_users *users);
vl_acl_user *vl_acl_users_find(const vl_acl_users *users, const char *name, size_t len);
/** Users sorted by name (a malloc'd array of *n pointers). */
vl_acl_user **vl_acl_users_sorted(const vl_acl_users *users, size_t *n);

/** The user as one ACL file line, passwords as #<sha256>. malloc'd. */
char *vl_acl_user_describe(const vl_acl_user *u);

/** SHA-256 of a password. */
void vl_acl_hash(const void *password, size_t len, unsigned char out[VL_ACL_DIGEST_LEN]);
/** 1 if equal; time does not depend on where they differ. */
int vl_acl_digest_equal(const unsigned char *a, const unsigned char *b);
/** Whether password opens u (enabled or not: the caller checks that).
 *  Every stored hash is compared, none skipped on a match. */
int vl_acl_password_ok(const vl_acl_user *u, const char *password, size_t len);

/** Redis-style glob: * ? [abc] [^a-z] and \x escapes.  Linear-space,
 *  no recursion. */
int vl_acl_glob_match(const char *pat, size_t plen, const char *s, size_t slen);

int vl_acl_command_allowed(const vl_acl_user *u, size_t id);
int vl_acl_collection_allowed(const vl_acl_user *u, const char *name, size_t len);

/** The category's bit for its name ("read", ...), 0 if unknown; "all" is
 *  every bit. */
unsigned vl_acl_category_parse(const char *name, size_t len);
/** Names of the categories, NULL terminated (ACL CAT); [i] is the name
 *  of bit 1 << i. */
extern const char *const vl_acl_category_names[];

/** 1 for a loopback IP address in text form (127.0.0.0/8, ::1,
 *  ::ffff:127.x.x.x) or "localhost"; 0 for anything else. */
int vl_acl_is_loopback(const char *ip);

#endif
