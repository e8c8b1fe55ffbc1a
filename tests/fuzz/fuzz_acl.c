/*
 * fuzz_acl.c - ACL rules (src/commands/acl.c), as an --aclfile holds them.
 *
 * Input: a control byte, then text.  Bit 1 of the control byte: the text
 * is a whole file (vl_acl_load), else one line (vl_acl_parse_line).  The
 * catalog is the server's own command table.  Properties:
 *  - a refused line or file gets VL_ERR_ARG with a one-line printable
 *    message (it goes to the log and into an -ERR reply);
 *  - every user parsed describes itself (ACL LIST) as a line that parses
 *    back to the same user and the same description;
 *  - a loaded file has unique user names and a default user;
 *  - every collection pattern without glob characters matches itself,
 *    and matching the input against the patterns terminates (glob).
 */
#include "commands/acl.h"
#include "commands/commands.h"
#include "fuzz.h"

static void check_message(const vl_error *err)
{
    VL_FUZZ_CHECK(err->msg[0] != '\0');
    for (const char *p = err->msg; *p; p++)
        VL_FUZZ_CHECK((unsigned char)*p >= ' ' && *p != 127);
}

static int has_glob_chars(const char *p)
{
    return strpbrk(p, "*?[\\") != NULL;
}

static void check_user(const vl_acl_catalog *cat, const vl_acl_user *u, const uint8_t *data,
                       size_t size)
{
    char *line = vl_acl_user_describe(u);
    vl_acl_user *v = NULL;
    vl_error err;
    VL_FUZZ_CHECK(vl_acl_parse_line(cat, line, strlen(line), &v, &err) == VL_OK && v);
    char *again = vl_acl_user_describe(v);
    VL_FUZZ_CHECK(strcmp(line, again) == 0);
    VL_FUZZ_CHECK(strcmp(u->name, v->name) == 0);
    VL_FUZZ_CHECK(u->enabled == v->enabled && u->nopass == v->nopass);
    VL_FUZZ_CHECK(u->allkeys == v->allkeys && u->npatterns == v->npatterns);
    VL_FUZZ_CHECK(u->nhashes == v->nhashes);
    VL_FUZZ_CHECK(memcmp(u->allowed, v->allowed, sizeof u->allowed) == 0);
    for (size_t i = 0; i < u->npatterns; i++) {
        const char *p = u->patterns[i];
        if (!has_glob_chars(p))
            VL_FUZZ_CHECK(vl_acl_glob_match(p, strlen(p), p, strlen(p)));
    }
    (void)vl_acl_collection_allowed(u, (const char *)data, size);
    free(again);
    free(line);
    vl_acl_user_free(v);
}

static int by_name(const void *a, const void *b)
{
    return strcmp((*(vl_acl_user *const *)a)->name, (*(vl_acl_user *const *)b)->name);
}

static void fuzz_file(const vl_acl_catalog *cat, const uint8_t *data, size_t size)
{
    vl_acl_users users;
    vl_error err;
    if (vl_acl_load(cat, (const char *)data, size, "fuzz.acl", &users, &err) != VL_OK) {
        check_message(&err);
        return;
    }
    VL_FUZZ_CHECK(vl_acl_users_find(&users, "default", 7) != NULL);
    size_t n;
    vl_acl_user **v = vl_acl_users_sorted(&users, &n);
    for (size_t i = 0; i < n; i++) {
        VL_FUZZ_CHECK(i == 0 || by_name(&v[i - 1], &v[i]) < 0);
        check_user(cat, v[i], data, size);
    }
    free(v);
    vl_acl_users_free(&users);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    const vl_acl_catalog *cat = vl_command_acl_catalog();
    uint8_t ctl = data[0];
    data++, size--;
    if (ctl & 2) { /* bit 0 (repair a checksum) means nothing here */
        fuzz_file(cat, data, size);
        return 0;
    }
    vl_acl_user *u = NULL;
    vl_error err;
    vl_status st = vl_acl_parse_line(cat, (const char *)data, size, &u, &err);
    if (st != VL_OK) {
        VL_FUZZ_CHECK(st == VL_ERR_ARG && u == NULL);
        check_message(&err);
    } else if (u) {
        check_user(cat, u, data, size);
        vl_acl_user_free(u);
    }
    return 0;
}
