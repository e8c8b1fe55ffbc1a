/*
 * acl.c - the ACL rule language, password hashing and glob matching; see
 * acl.h for the rules.
 *
 * Decisions a reader cannot see from the code:
 * - Passwords are kept only as SHA-256 digests (OpenSSL's libcrypto), as
 *   Redis does; ACL LIST prints the digests.  A check hashes the offered
 *   password and compares digests with CRYPTO_memcmp, so the time taken
 *   says nothing about how much of a password was right, nor its length.
 * - The glob matcher is iterative with one backtracking point (the last
 *   '*'), so a hostile pattern costs at most len(pattern) * len(name)
 *   steps and no stack; semantics follow Redis' stringmatchlen, case
 *   sensitive.
 * - Command rules are recorded as normalized text for ACL LIST, in the
 *   order applied; +@all / -@all override everything before them, so they
 *   restart the record.  A new user's record is "-@all".
 * - Every byte of a line is checked: control characters are refused, so a
 *   name or pattern can never carry a NUL, CR or escape sequence into a
 *   reply or the log.
 */
#include "commands/acl.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <netinet/in.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "util/alloc.h"

#define ALL_CATEGORIES (VL_ACL_READ | VL_ACL_WRITE | VL_ACL_ADMIN | VL_ACL_CONNECTION)
#define MAX_NAME 256

const char *const vl_acl_category_names[] = {"read", "write", "admin", "connection", NULL};
static const unsigned category_bits[] = {VL_ACL_READ, VL_ACL_WRITE, VL_ACL_ADMIN,
                                         VL_ACL_CONNECTION};

static int word_is(const char *s, size_t len, const char *w)
{
    return strlen(w) == len && strncasecmp(s, w, len) == 0;
}

unsigned vl_acl_category_parse(const char *name, size_t len)
{
    if (word_is(name, len, "all"))
        return ALL_CATEGORIES;
    for (size_t i = 0; vl_acl_category_names[i]; i++)
        if (word_is(name, len, vl_acl_category_names[i]))
            return category_bits[i];
    return 0;
}

/* Printable excerpt of a token for messages. */
static void excerpt(const char *s, size_t len, char *out, size_t cap)
{
    size_t n = 0;
    for (size_t i = 0; i < len && n + 4 < cap; i++)
        out[n++] = (s[i] > ' ' && s[i] < 127) ? s[i] : '?';
    if (n < len && n + 3 < cap)
        out[n++] = '.', out[n++] = '.', out[n++] = '.';
    out[n] = '\0';
}

/* ---- users ---- */

vl_acl_user *vl_acl_user_new(const char *name, size_t len)
{
    vl_acl_user *u = vl_calloc(1, sizeof *u);
    u->name = vl_strndup(name, len);
    u->rules = vl_strndup("-@all", 5);
    return u;
}

static void clear_patterns(vl_acl_user *u)
{
    for (size_t i = 0; i < u->npatterns; i++)
        free(u->patterns[i]);
    free(u->patterns);
    u->patterns = NULL;
    u->npatterns = 0;
}

static void clear_hashes(vl_acl_user *u)
{
    if (u->hashes)
        OPENSSL_cleanse(u->hashes, u->nhashes * sizeof *u->hashes);
    free(u->hashes);
    u->hashes = NULL;
    u->nhashes = 0;
}

void vl_acl_user_free(vl_acl_user *u)
{
    if (!u)
        return;
    clear_hashes(u);
    clear_patterns(u);
    free(u->name);
    free(u->rules);
    free(u);
}

static void rules_set(vl_acl_user *u, const char *rule, size_t len)
{
    free(u->rules);
    u->rules = vl_strndup(rule, len);
    for (size_t i = 0; i < len; i++)
        u->rules[i] = (char)tolower((unsigned char)u->rules[i]);
}

static void rules_add(vl_acl_user *u, const char *rule, size_t len)
{
    size_t have = strlen(u->rules);
    u->rules = vl_realloc(u->rules, have + 1 + len + 1);
    u->rules[have] = ' ';
    for (size_t i = 0; i < len; i++)
        u->rules[have + 1 + i] = (char)tolower((unsigned char)rule[i]);
    u->rules[have + 1 + len] = '\0';
}

static void set_allowed(vl_acl_user *u, size_t id, int allow)
{
    unsigned char bit = (unsigned char)(1u << (id % 8));
    if (allow)
        u->allowed[id / 8] |= bit;
    else
        u->allowed[id / 8] &= (unsigned char)~bit;
}

int vl_acl_command_allowed(const vl_acl_user *u, size_t id)
{
    return id < VL_ACL_MAX_COMMANDS && ((u->allowed[id / 8] >> (id % 8)) & 1);
}

static void add_hash(vl_acl_user *u, const unsigned char *h)
{
    u->nopass = 0;
    for (size_t i = 0; i < u->nhashes; i++)
        if (memcmp(u->hashes[i], h, VL_ACL_DIGEST_LEN) == 0)
            return;
    u->hashes = vl_realloc(u->hashes, (u->nhashes + 1) * sizeof *u->hashes);
    memcpy(u->hashes[u->nhashes++], h, VL_ACL_DIGEST_LEN);
}

static void add_pattern(vl_acl_user *u, const char *p, size_t len)
{
    if (u->allkeys)
        return; /* ~* already covers it */
    if (len == 1 && p[0] == '*') {
        clear_patterns(u);
        u->allkeys = 1;
        return;
    }
    for (size_t i = 0; i < u->npatterns; i++)
        if (strlen(u->patterns[i]) == len && memcmp(u->patterns[i], p, len) == 0)
            return;
    u->patterns = vl_realloc(u->patterns, (u->npatterns + 1) * sizeof *u->patterns);
    u->patterns[u->npatterns++] = vl_strndup(p, len);
}

static int hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = (char)tolower((unsigned char)c);
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

static vl_status hash_rule(vl_acl_user *u, const char *hex, size_t len, vl_error *err)
{
    unsigned char h[VL_ACL_DIGEST_LEN];
    if (len != 2 * VL_ACL_DIGEST_LEN)
        return vl_fail(err, VL_ERR_ARG, "a password hash must be 64 hexadecimal digits, got %zu",
                       len);
    for (size_t i = 0; i < VL_ACL_DIGEST_LEN; i++) {
        int hi = hex_value(hex[2 * i]), lo = hex_value(hex[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return vl_fail(err, VL_ERR_ARG, "a password hash must be 64 hexadecimal digits");
        h[i] = (unsigned char)(hi << 4 | lo);
    }
    add_hash(u, h);
    return VL_OK;
}

/* Does catalog entry `entry` fall under rule name `name` (the command
 * itself, or a subcommand of it)? */
static int names_entry(const char *name, size_t len, const char *entry)
{
    size_t el = strlen(entry);
    if (el < len || strncasecmp(entry, name, len) != 0)
        return 0;
    return el == len || entry[len] == '|';
}

static vl_status command_rule(const vl_acl_catalog *cat, vl_acl_user *u, const char *rule,
                              size_t len, vl_error *err)
{
    int allow = rule[0] == '+';
    const char *name = rule + 1;
    size_t n = len - 1;
    char what[80];
    excerpt(name, n, what, sizeof what);
    if (n == 0)
        return vl_fail(err, VL_ERR_ARG, "no command or category after '%c'", rule[0]);
    if (name[0] == '@') {
        unsigned bits = vl_acl_category_parse(name + 1, n - 1);
        if (!bits)
            return vl_fail(err, VL_ERR_ARG, "unknown category '%s'", what + 1);
        if (!allow && bits == VL_ACL_CONNECTION)
            return vl_fail(err, VL_ERR_ARG,
                           "connection commands are always allowed to an authenticated user");
        for (size_t id = 0; id < cat->n; id++)
            if (cat->cmds[id].categories & bits)
                set_allowed(u, id, allow);
        if (bits == ALL_CATEGORIES)
            rules_set(u, rule, len);
        else
            rules_add(u, rule, len);
        return VL_OK;
    }
    size_t matched = 0, connection = 0;
    for (size_t id = 0; id < cat->n; id++) {
        if (!names_entry(name, n, cat->cmds[id].name))
            continue;
        set_allowed(u, id, allow);
        matched++;
        connection += (cat->cmds[id].categories & VL_ACL_CONNECTION) != 0;
    }
    if (!matched)
        return vl_fail(err, VL_ERR_ARG, "unknown command '%s'", what);
    if (!allow && connection == matched)
        return vl_fail(err, VL_ERR_ARG,
                       "'%s' is a connection command, always allowed to an authenticated user",
                       what);
    rules_add(u, rule, len);
    return VL_OK;
}

static void allow_categories(const vl_acl_catalog *cat, vl_acl_user *u, int allow)
{
    for (size_t id = 0; id < cat->n; id++)
        set_allowed(u, id, allow);
    rules_set(u, allow ? "+@all" : "-@all", 5);
}

vl_status vl_acl_user_apply(const vl_acl_catalog *cat, vl_acl_user *u, const char *rule, size_t len,
                            vl_error *err)
{
    if (len == 0)
        return vl_fail(err, VL_ERR_ARG, "empty rule");
    if (word_is(rule, len, "on") || word_is(rule, len, "off")) {
        u->enabled = word_is(rule, len, "on");
    } else if (word_is(rule, len, "nopass") || word_is(rule, len, "resetpass")) {
        clear_hashes(u);
        u->nopass = word_is(rule, len, "nopass");
    } else if (word_is(rule, len, "allkeys")) {
        add_pattern(u, "*", 1);
    } else if (word_is(rule, len, "allcommands") || word_is(rule, len, "nocommands")) {
        allow_categories(cat, u, word_is(rule, len, "allcommands"));
    } else if (rule[0] == '>') {
        if (len == 1)
            return vl_fail(err, VL_ERR_ARG, "empty password after '>'");
        unsigned char h[VL_ACL_DIGEST_LEN];
        vl_acl_hash(rule + 1, len - 1, h);
        add_hash(u, h);
        OPENSSL_cleanse(h, sizeof h);
    } else if (rule[0] == '#') {
        return hash_rule(u, rule + 1, len - 1, err);
    } else if (rule[0] == '~') {
        if (len == 1)
            return vl_fail(err, VL_ERR_ARG, "empty collection pattern after '~'");
        add_pattern(u, rule + 1, len - 1);
    } else if (rule[0] == '+' || rule[0] == '-') {
        return command_rule(cat, u, rule, len, err);
    } else {
        return vl_fail(err, VL_ERR_ARG, "unknown rule");
    }
    return VL_OK;
}

/* ---- lines and files ---- */

static int blank(char c)
{
    return c == ' ' || c == '\t';
}

/* Next blank-separated token at or after *pos; 0 at the end. */
static int next_token(const char *s, size_t len, size_t *pos, const char **tok, size_t *tlen)
{
    size_t i = *pos;
    while (i < len && blank(s[i]))
        i++;
    if (i == len)
        return 0;
    size_t start = i;
    while (i < len && !blank(s[i]))
        i++;
    *tok = s + start;
    *tlen = i - start;
    *pos = i;
    return 1;
}

vl_status vl_acl_parse_line(const vl_acl_catalog *cat, const char *line, size_t len,
                            vl_acl_user **out, vl_error *err)
{
    *out = NULL;
    if (len && line[len - 1] == '\r')
        len--;
    for (size_t i = 0; i < len; i++) {
        unsigned char b = (unsigned char)line[i];
        if ((b < ' ' && b != '\t') || b == 127)
            return vl_fail(err, VL_ERR_ARG, "control character 0x%02x at column %zu", b, i + 1);
    }
    size_t pos = 0, tlen;
    const char *tok;
    if (!next_token(line, len, &pos, &tok, &tlen) || tok[0] == '#')
        return VL_OK; /* blank line or comment */
    char what[80];
    excerpt(tok, tlen, what, sizeof what);
    if (!(tlen == 4 && memcmp(tok, "user", 4) == 0))
        return vl_fail(err, VL_ERR_ARG, "a line must start with 'user', got '%s'", what);
    if (!next_token(line, len, &pos, &tok, &tlen))
        return vl_fail(err, VL_ERR_ARG, "missing user name after 'user'");
    if (tlen > MAX_NAME)
        return vl_fail(err, VL_ERR_ARG, "user name longer than %d bytes", MAX_NAME);
    vl_acl_user *u = vl_acl_user_new(tok, tlen);
    while (next_token(line, len, &pos, &tok, &tlen)) {
        vl_error why;
        if (vl_acl_user_apply(cat, u, tok, tlen, &why) != VL_OK) {
            excerpt(tok, tlen, what, sizeof what);
            vl_acl_user_free(u);
            return vl_fail(err, VL_ERR_ARG, "rule '%s': %s", what, why.msg);
        }
    }
    *out = u;
    return VL_OK;
}

static void users_push(vl_acl_users *users, vl_acl_user *u)
{
    u->next = users->head;
    users->head = u;
}

static vl_acl_user *builtin_default(const vl_acl_catalog *cat)
{
    vl_acl_user *u = vl_acl_user_new("default", 7);
    u->enabled = 1;
    u->nopass = 1;
    add_pattern(u, "*", 1);
    allow_categories(cat, u, 1);
    return u;
}

void vl_acl_users_builtin(const vl_acl_catalog *cat, vl_acl_users *out)
{
    out->head = NULL;
    users_push(out, builtin_default(cat));
}

vl_status vl_acl_load(const vl_acl_catalog *cat, const char *text, size_t len, const char *fname,
                      vl_acl_users *out, vl_error *err)
{
    vl_acl_users users = {NULL};
    size_t pos = 0, lineno = 0;
    while (pos < len) {
        const char *nl = memchr(text + pos, '\n', len - pos);
        size_t end = nl ? (size_t)(nl - text) : len;
        lineno++;
        vl_acl_user *u;
        vl_error why;
        if (vl_acl_parse_line(cat, text + pos, end - pos, &u, &why) != VL_OK) {
            vl_acl_users_free(&users);
            return vl_fail(err, VL_ERR_ARG, "%s:%zu: %s", fname, lineno, why.msg);
        }
        if (u && vl_acl_users_find(&users, u->name, strlen(u->name))) {
            char what[80];
            excerpt(u->name, strlen(u->name), what, sizeof what);
            vl_acl_user_free(u);
            vl_acl_users_free(&users);
            return vl_fail(err, VL_ERR_ARG, "%s:%zu: user '%s' is defined twice", fname, lineno,
                           what);
        }
        if (u)
            users_push(&users, u);
        pos = end + 1;
    }
    if (!vl_acl_users_find(&users, "default", 7))
        users_push(&users, builtin_default(cat));
    *out = users;
    return VL_OK;
}

void vl_acl_users_free(vl_acl_users *users)
{
    while (users->head) {
        vl_acl_user *u = users->head;
        users->head = u->next;
        vl_acl_user_free(u);
    }
}

vl_acl_user *vl_acl_users_find(const vl_acl_users *users, const char *name, size_t len)
{
    for (vl_acl_user *u = users->head; u; u = u->next)
        if (strlen(u->name) == len && memcmp(u->name, name, len) == 0)
            return u;
    return NULL;
}

static int by_name(const void *a, const void *b)
{
    return strcmp((*(vl_acl_user *const *)a)->name, (*(vl_acl_user *const *)b)->name);
}

vl_acl_user **vl_acl_users_sorted(const vl_acl_users *users, size_t *n)
{
    size_t count = 0;
    for (vl_acl_user *u = users->head; u; u = u->next)
        count++;
    vl_acl_user **v = vl_malloc(count * sizeof *v);
    count = 0;
    for (vl_acl_user *u = users->head; u; u = u->next)
        v[count++] = u;
    qsort(v, count, sizeof *v, by_name);
    *n = count;
    return v;
}

char *vl_acl_user_describe(const vl_acl_user *u)
{
    size_t cap = strlen(u->name) + strlen(u->rules) + 32 + u->nhashes * (2 + 2 * VL_ACL_DIGEST_LEN);
    for (size_t i = 0; i < u->npatterns; i++)
        cap += strlen(u->patterns[i]) + 2;
    char *s = vl_malloc(cap);
    size_t n = (size_t)snprintf(s, cap, "user %s %s%s", u->name, u->enabled ? "on" : "off",
                                u->nopass ? " nopass" : "");
    for (size_t i = 0; i < u->nhashes; i++) {
        n += (size_t)snprintf(s + n, cap - n, " #");
        for (size_t b = 0; b < VL_ACL_DIGEST_LEN; b++)
            n += (size_t)snprintf(s + n, cap - n, "%02x", u->hashes[i][b]);
    }
    if (u->allkeys)
        n += (size_t)snprintf(s + n, cap - n, " ~*");
    for (size_t i = 0; i < u->npatterns; i++)
        n += (size_t)snprintf(s + n, cap - n, " ~%s", u->patterns[i]);
    snprintf(s + n, cap - n, " %s", u->rules);
    return s;
}

/* ---- passwords ---- */

void vl_acl_hash(const void *password, size_t len, unsigned char out[VL_ACL_DIGEST_LEN])
{
    unsigned int n = 0;
    if (EVP_Digest(password, len, out, &n, EVP_sha256(), NULL) != 1 || n != VL_ACL_DIGEST_LEN) {
        /* Carrying on would make every password hash alike. */
        fprintf(stderr, "vexlake: SHA-256 from libcrypto failed\n");
        abort();
    }
}

int vl_acl_digest_equal(const unsigned char *a, const unsigned char *b)
{
    return CRYPTO_memcmp(a, b, VL_ACL_DIGEST_LEN) == 0;
}

int vl_acl_password_ok(const vl_acl_user *u, const char *password, size_t len)
{
    if (u->nopass)
        return 1;
    unsigned char h[VL_ACL_DIGEST_LEN];
    vl_acl_hash(password, len, h);
    int ok = 0;
    for (size_t i = 0; i < u->nhashes; i++)
        ok |= vl_acl_digest_equal(h, u->hashes[i]);
    OPENSSL_cleanse(h, sizeof h);
    return ok;
}

/* ---- collections ---- */

/* Does the one-character element of pat at p (not '*') match c?  *w is
 * its width in the pattern. */
static int element_matches(const char *pat, size_t plen, size_t p, char c, size_t *w)
{
    if (pat[p] == '?') {
        *w = 1;
        return 1;
    }
    if (pat[p] == '\\' && p + 1 < plen) {
        *w = 2;
        return pat[p + 1] == c;
    }
    if (pat[p] != '[') {
        *w = 1;
        return pat[p] == c;
    }
    size_t i = p + 1;
    int negate = i < plen && pat[i] == '^';
    i += negate;
    int match = 0;
    while (i < plen && pat[i] != ']') {
        if (pat[i] == '\\' && i + 1 < plen) {
            match |= pat[i + 1] == c;
            i += 2;
        } else if (i + 2 < plen && pat[i + 1] == '-') {
            unsigned char lo = (unsigned char)pat[i], hi = (unsigned char)pat[i + 2];
            if (lo > hi) {
                unsigned char t = lo;
                lo = hi;
                hi = t;
            }
            match |= (unsigned char)c >= lo && (unsigned char)c <= hi;
            i += 3;
        } else {
            match |= pat[i] == c;
            i++;
        }
    }
    *w = (i < plen ? i + 1 : plen) - p; /* an unclosed class runs to the end */
    return negate ? !match : match;
}

int vl_acl_glob_match(const char *pat, size_t plen, const char *s, size_t slen)
{
    size_t p = 0, i = 0, star_p = SIZE_MAX, star_i = 0;
    while (i < slen) {
        if (p < plen && pat[p] == '*') {
            while (p < plen && pat[p] == '*')
                p++;
            if (p == plen)
                return 1;
            star_p = p;
            star_i = i;
            continue;
        }
        size_t w;
        if (p < plen && element_matches(pat, plen, p, s[i], &w)) {
            p += w;
            i++;
            continue;
        }
        if (star_p == SIZE_MAX)
            return 0;
        p = star_p; /* let the last '*' swallow one more character */
        i = ++star_i;
    }
    while (p < plen && pat[p] == '*')
        p++;
    return p == plen;
}

int vl_acl_collection_allowed(const vl_acl_user *u, const char *name, size_t len)
{
    if (u->allkeys)
        return 1;
    for (size_t i = 0; i < u->npatterns; i++)
        if (vl_acl_glob_match(u->patterns[i], strlen(u->patterns[i]), name, len))
            return 1;
    return 0;
}

/* ---- addresses ---- */

int vl_acl_is_loopback(const char *ip)
{
    struct in_addr a4;
    struct in6_addr a6;
    if (strcasecmp(ip, "localhost") == 0)
        return 1;
    if (inet_pton(AF_INET, ip, &a4) == 1)
        return (ntohl(a4.s_addr) >> 24) == 127;
    if (inet_pton(AF_INET6, ip, &a6) == 1)
        return IN6_IS_ADDR_LOOPBACK(&a6) || (IN6_IS_ADDR_V4MAPPED(&a6) && a6.s6_addr[12] == 127);
    return 0;
}
