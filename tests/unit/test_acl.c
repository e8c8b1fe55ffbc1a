/* test_acl.c - the ACL rule parser, glob matching, password hashing and
 * comparison, and the loopback check protected mode relies on. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands/acl.h"

/* ids:                         0       1       2        3            4             5 */
static const vl_acl_command cmds[] = {
    {"vget", VL_ACL_READ},
    {"vset", VL_ACL_WRITE},
    {"save", VL_ACL_ADMIN},
    {"acl", VL_ACL_ADMIN},
    {"acl|whoami", VL_ACL_CONNECTION},
    {"acl|load", VL_ACL_ADMIN},
    {"ping", VL_ACL_CONNECTION},
};
static const vl_acl_catalog cat = {cmds, sizeof cmds / sizeof cmds[0]};

static vl_acl_user *parse(const char *line)
{
    vl_acl_user *u = NULL;
    vl_error err = {{0}};
    if (vl_acl_parse_line(&cat, line, strlen(line), &u, &err) != VL_OK)
        fail_msg("'%s' failed: %s", line, err.msg);
    assert_non_null(u);
    return u;
}

/* The line fails with a message containing want. */
static void parse_fails(const char *line, const char *want)
{
    vl_acl_user *u = (vl_acl_user *)1;
    vl_error err = {{0}};
    assert_int_equal(vl_acl_parse_line(&cat, line, strlen(line), &u, &err), VL_ERR_ARG);
    assert_null(u);
    if (!strstr(err.msg, want))
        fail_msg("'%s': error '%s' lacks '%s'", line, err.msg, want);
}

static int pw_ok(const vl_acl_user *u, const char *pw)
{
    return vl_acl_password_ok(u, pw, strlen(pw));
}

static int coll_ok(const vl_acl_user *u, const char *name)
{
    return vl_acl_collection_allowed(u, name, strlen(name));
}

static void test_new_user_has_nothing(void **state)
{
    (void)state;
    vl_acl_user *u = parse("user alice");
    assert_string_equal(u->name, "alice");
    assert_false(u->enabled);
    assert_false(pw_ok(u, ""));
    assert_false(pw_ok(u, "x"));
    for (size_t id = 0; id < cat.n; id++)
        assert_false(vl_acl_command_allowed(u, id));
    assert_false(coll_ok(u, "default"));
    char *d = vl_acl_user_describe(u);
    assert_string_equal(d, "user alice off -@all");
    free(d);
    vl_acl_user_free(u);
}

static void test_rules_apply_in_order(void **state)
{
    (void)state;
    vl_acl_user *u = parse("user bob on >pw1 >pw2 ~default ~vec:* +@read +@write -vset +acl|load");
    assert_true(u->enabled);
    assert_true(pw_ok(u, "pw1"));
    assert_true(pw_ok(u, "pw2"));
    assert_false(pw_ok(u, "pw3"));
    assert_false(pw_ok(u, "pw"));
    assert_true(vl_acl_command_allowed(u, 0));  /* vget: @read */
    assert_false(vl_acl_command_allowed(u, 1)); /* vset: +@write then -vset */
    assert_false(vl_acl_command_allowed(u, 2)); /* save: @admin */
    assert_false(vl_acl_command_allowed(u, 3)); /* acl itself */
    assert_true(vl_acl_command_allowed(u, 5));  /* acl|load */
    assert_true(coll_ok(u, "default"));
    assert_true(coll_ok(u, "vec:1"));
    assert_false(coll_ok(u, "other"));
    vl_acl_user_free(u);
}

static void test_command_names_and_categories(void **state)
{
    (void)state;
    vl_acl_user *u = parse("user c on nopass allcommands -@admin +SAVE");
    assert_true(vl_acl_command_allowed(u, 0));
    assert_true(vl_acl_command_allowed(u, 1));
    assert_true(vl_acl_command_allowed(u, 2)); /* re-allowed, case-insensitively */
    assert_false(vl_acl_command_allowed(u, 3));
    assert_false(vl_acl_command_allowed(u, 5));
    char *d = vl_acl_user_describe(u);
    assert_string_equal(d, "user c on nopass +@all -@admin +save");
    free(d);
    vl_acl_user_free(u);

    u = parse("user d on +acl"); /* a command names all its subcommands */
    assert_true(vl_acl_command_allowed(u, 3));
    assert_true(vl_acl_command_allowed(u, 5));
    vl_acl_user_free(u);

    u = parse("user e on +@all nocommands +vget");
    for (size_t id = 1; id < cat.n; id++)
        assert_false(vl_acl_command_allowed(u, id));
    assert_true(vl_acl_command_allowed(u, 0));
    d = vl_acl_user_describe(u);
    assert_string_equal(d, "user e on -@all +vget"); /* nocommands restarts the record */
    free(d);
    vl_acl_user_free(u);
}

static void test_passwords(void **state)
{
    (void)state;
    /* #<sha256 of "foo"> opens with "foo", as >foo does; upper-case hex too. */
    vl_acl_user *u =
        parse("user f on #2C26B46B68FFC68FF99B453C1D30413413422D706483BFA0F98A5E886266E7AE");
    assert_true(pw_ok(u, "foo"));
    assert_false(pw_ok(u, "Foo"));
    char *d = vl_acl_user_describe(u);
    assert_string_equal(
        d, "user f on #2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae -@all");
    free(d);
    vl_acl_user_free(u);

    u = parse("user g on >foo >foo"); /* the same password once */
    assert_int_equal(u->nhashes, 1);
    vl_acl_user_free(u);

    u = parse("user h on >foo nopass");
    assert_true(pw_ok(u, "anything"));
    assert_int_equal(u->nhashes, 0);
    vl_acl_user_free(u);

    u = parse("user i on nopass >bar"); /* a password ends nopass */
    assert_false(pw_ok(u, "anything"));
    assert_true(pw_ok(u, "bar"));
    vl_acl_user_free(u);

    u = parse("user j on nopass >bar resetpass"); /* nothing opens it */
    assert_false(pw_ok(u, "bar"));
    assert_false(pw_ok(u, ""));
    vl_acl_user_free(u);
}

static void test_collections(void **state)
{
    (void)state;
    vl_acl_user *u = parse("user k on allkeys ~ignored");
    assert_true(coll_ok(u, "anything"));
    char *d = vl_acl_user_describe(u);
    assert_string_equal(d, "user k on ~* -@all");
    free(d);
    vl_acl_user_free(u);
    u = parse("user l on ~a ~b* ~a");
    assert_int_equal(u->npatterns, 2);
    assert_true(coll_ok(u, "a"));
    assert_true(coll_ok(u, "bee"));
    assert_false(coll_ok(u, "ab"));
    vl_acl_user_free(u);
}

static void test_describe_round_trips(void **state)
{
    (void)state;
    const char *lines[] = {
        "user a on >x ~default +@read -vget +acl|load",
        "user b off nopass ~* +@all -@write",
        "user c on #2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae ~p?",
    };
    for (size_t i = 0; i < sizeof lines / sizeof lines[0]; i++) {
        vl_acl_user *u = parse(lines[i]);
        char *d1 = vl_acl_user_describe(u);
        vl_acl_user *v = parse(d1);
        char *d2 = vl_acl_user_describe(v);
        assert_string_equal(d1, d2);
        assert_int_equal(u->enabled, v->enabled);
        assert_memory_equal(u->allowed, v->allowed, sizeof u->allowed);
        free(d1);
        free(d2);
        vl_acl_user_free(u);
        vl_acl_user_free(v);
    }
}

static void test_blank_and_comment_lines(void **state)
{
    (void)state;
    const char *lines[] = {"", "   ", "\t", "\r", "# a comment", "  #user x on"};
    for (size_t i = 0; i < sizeof lines / sizeof lines[0]; i++) {
        vl_acl_user *u = (vl_acl_user *)1;
        vl_error err;
        assert_int_equal(vl_acl_parse_line(&cat, lines[i], strlen(lines[i]), &u, &err), VL_OK);
        assert_null(u);
    }
    vl_acl_user *u = parse("user crlf on\r");
    assert_true(u->enabled);
    vl_acl_user_free(u);
}

static void test_bad_rules_name_the_token(void **state)
{
    (void)state;
    parse_fails("usr alice on", "must start with 'user', got 'usr'");
    parse_fails("user", "missing user name");
    parse_fails("user a bogus", "rule 'bogus': unknown rule");
    parse_fails("user a +@nosuch", "rule '+@nosuch': unknown category 'nosuch'");
    parse_fails("user a +frob", "rule '+frob': unknown command 'frob'");
    parse_fails("user a +acl|frob", "unknown command 'acl|frob'");
    parse_fails("user a +", "no command or category after '+'");
    parse_fails("user a >", "empty password");
    parse_fails("user a ~", "empty collection pattern");
    parse_fails("user a #abc", "64 hexadecimal digits, got 3");
    parse_fails("user a #zz26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae",
                "64 hexadecimal digits");
    parse_fails("user a -ping", "'ping' is a connection command");
    parse_fails("user a -acl|whoami", "connection command");
    parse_fails("user a -@connection", "always allowed");
    /* +ping is accepted (it changes nothing); -acl denies the admin parts */
    vl_acl_user *u = parse("user a +ping -acl");
    vl_acl_user_free(u);
    /* control bytes, and a NUL inside the line */
    const char nul[] = "user a\0b on";
    vl_acl_user *v = (vl_acl_user *)1;
    vl_error err;
    assert_int_equal(vl_acl_parse_line(&cat, nul, sizeof nul - 1, &v, &err), VL_ERR_ARG);
    assert_non_null(strstr(err.msg, "control character 0x00 at column 7"));
    parse_fails("user a \x1b[31m", "control character 0x1b");
    /* a long bad token is cut short in the message */
    char line[400];
    snprintf(line, sizeof line, "user a +%0300d", 0);
    parse_fails(line, "...");
}

static void test_load_file(void **state)
{
    (void)state;
    const char *text = "# users\n\nuser alice on >a ~* +@read\nuser bob off\n";
    vl_acl_users users;
    vl_error err;
    assert_int_equal(vl_acl_load(&cat, text, strlen(text), "u.acl", &users, &err), VL_OK);
    vl_acl_user *def = vl_acl_users_find(&users, "default", 7);
    assert_non_null(def); /* not in the file: the built-in one */
    assert_true(def->enabled && def->nopass && def->allkeys);
    for (size_t id = 0; id < cat.n; id++)
        assert_true(vl_acl_command_allowed(def, id));
    size_t n;
    vl_acl_user **v = vl_acl_users_sorted(&users, &n);
    assert_int_equal(n, 3);
    assert_string_equal(v[0]->name, "alice");
    assert_string_equal(v[1]->name, "bob");
    assert_string_equal(v[2]->name, "default");
    free(v);
    assert_null(vl_acl_users_find(&users, "alic", 4));
    vl_acl_users_free(&users);

    const char *own_default = "user default on >pw +@all ~*";
    assert_int_equal(vl_acl_load(&cat, own_default, strlen(own_default), "u.acl", &users, &err),
                     VL_OK);
    def = vl_acl_users_find(&users, "default", 7);
    assert_false(def->nopass);
    assert_true(pw_ok(def, "pw"));
    vl_acl_users_free(&users);
}

static void test_load_errors_name_file_and_line(void **state)
{
    (void)state;
    vl_acl_users users = {(vl_acl_user *)1};
    vl_error err;
    const char *bad = "user a on\n# fine\nuser b on +@reed\n";
    assert_int_equal(vl_acl_load(&cat, bad, strlen(bad), "/etc/u.acl", &users, &err), VL_ERR_ARG);
    assert_string_equal(err.msg, "/etc/u.acl:3: rule '+@reed': unknown category 'reed'");
    assert_ptr_equal(users.head, (vl_acl_user *)1); /* untouched on failure */
    const char *dup = "user a on\nuser a off\n";
    assert_int_equal(vl_acl_load(&cat, dup, strlen(dup), "f", &users, &err), VL_ERR_ARG);
    assert_string_equal(err.msg, "f:2: user 'a' is defined twice");
}

static void test_sha256(void **state)
{
    (void)state;
    static const unsigned char empty[32] = {0xe3, 0xb0, 0xc4, 0x42, 0x98, 0xfc, 0x1c, 0x14,
                                            0x9a, 0xfb, 0xf4, 0xc8, 0x99, 0x6f, 0xb9, 0x24,
                                            0x27, 0xae, 0x41, 0xe4, 0x64, 0x9b, 0x93, 0x4c,
                                            0xa4, 0x95, 0x99, 0x1b, 0x78, 0x52, 0xb8, 0x55};
    unsigned char h[32];
    vl_acl_hash("", 0, h);
    assert_memory_equal(h, empty, 32);
    vl_acl_hash("foo", 3, h);
    assert_int_equal(h[0], 0x2c);
    assert_int_equal(h[31], 0xae);
    vl_acl_hash("a\0b", 3, h); /* binary safe: differs from "a" */
    unsigned char a[32];
    vl_acl_hash("a", 1, a);
    assert_false(vl_acl_digest_equal(h, a));
}

static void test_digest_equal(void **state)
{
    (void)state;
    unsigned char a[32], b[32];
    for (int i = 0; i < 32; i++)
        a[i] = b[i] = (unsigned char)(i * 7);
    assert_true(vl_acl_digest_equal(a, b));
    for (int i = 0; i < 32; i++) { /* a difference anywhere is seen */
        b[i] ^= 0x80;
        assert_false(vl_acl_digest_equal(a, b));
        b[i] ^= 0x81;
        assert_false(vl_acl_digest_equal(a, b));
        b[i] ^= 0x01;
        assert_true(vl_acl_digest_equal(a, b));
    }
}

static int glob(const char *p, const char *s)
{
    return vl_acl_glob_match(p, strlen(p), s, strlen(s));
}

static void test_glob(void **state)
{
    (void)state;
    assert_true(glob("*", ""));
    assert_true(glob("*", "abc"));
    assert_true(glob("", ""));
    assert_false(glob("", "a"));
    assert_true(glob("abc", "abc"));
    assert_false(glob("abc", "abcd"));
    assert_false(glob("abc", "ABC")); /* case sensitive, as Redis key patterns */
    assert_true(glob("a?c", "abc"));
    assert_false(glob("a?c", "ac"));
    assert_true(glob("a*c", "ac"));
    assert_true(glob("a*c", "abbbc"));
    assert_false(glob("a*c", "abbbd"));
    assert_true(glob("*a*b*", "xxaxxbxx"));
    assert_true(glob("a**b", "ab"));
    assert_true(glob("[abc]x", "bx"));
    assert_false(glob("[abc]x", "dx"));
    assert_true(glob("[^abc]x", "dx"));
    assert_false(glob("[^abc]x", "ax"));
    assert_true(glob("[a-c]", "b"));
    assert_true(glob("[c-a]", "b")); /* reversed range, as Redis */
    assert_false(glob("[a-c]", "d"));
    assert_true(glob("[\\]]", "]"));
    assert_true(glob("\\*", "*"));
    assert_false(glob("\\*", "a"));
    assert_true(glob("a\\", "a\\")); /* a trailing backslash is literal */
    assert_true(glob("[ab", "a"));   /* an unclosed class runs to the end */
    assert_false(glob("[]a", "a"));  /* an empty class matches nothing */
    assert_true(glob("vec:*:[0-9]", "vec:x:7"));
    /* a pattern that is exponential for naive backtracking */
    char s[201];
    memset(s, 'a', 200);
    s[200] = '\0';
    assert_false(glob("a*a*a*a*a*a*a*a*a*a*a*a*b", s));
    assert_true(glob("a*a*a*a*a*a*a*a*a*a*a*a*", s));
}

static void test_loopback(void **state)
{
    (void)state;
    const char *yes[] = {"127.0.0.1",        "127.1.2.3", "127.255.255.254", "::1",
                         "::ffff:127.0.0.1", "localhost", "LOCALHOST"};
    const char *no[] = {"10.0.0.1",
                        "0.0.0.0",
                        "128.0.0.1",
                        "126.255.255.255",
                        "::",
                        "::ffff:10.0.0.1",
                        "fe80::1",
                        "192.168.1.5",
                        "?",
                        "",
                        "127.0.0.1:6379",
                        "2001:db8::1",
                        "::2"};
    for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++)
        if (!vl_acl_is_loopback(yes[i]))
            fail_msg("%s should be loopback", yes[i]);
    for (size_t i = 0; i < sizeof no / sizeof no[0]; i++)
        if (vl_acl_is_loopback(no[i]))
            fail_msg("%s should not be loopback", no[i]);
}

static void test_categories(void **state)
{
    (void)state;
    assert_int_equal(vl_acl_category_parse("read", 4), VL_ACL_READ);
    assert_int_equal(vl_acl_category_parse("WRITE", 5), VL_ACL_WRITE);
    assert_int_equal(vl_acl_category_parse("admin", 5), VL_ACL_ADMIN);
    assert_int_equal(vl_acl_category_parse("connection", 10), VL_ACL_CONNECTION);
    assert_int_equal(vl_acl_category_parse("all", 3),
                     VL_ACL_READ | VL_ACL_WRITE | VL_ACL_ADMIN | VL_ACL_CONNECTION);
    assert_int_equal(vl_acl_category_parse("rea", 3), 0);
    for (unsigned i = 0; vl_acl_category_names[i]; i++)
        assert_int_equal(
            vl_acl_category_parse(vl_acl_category_names[i], strlen(vl_acl_category_names[i])),
            1u << i);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_new_user_has_nothing),
        cmocka_unit_test(test_rules_apply_in_order),
        cmocka_unit_test(test_command_names_and_categories),
        cmocka_unit_test(test_passwords),
        cmocka_unit_test(test_collections),
        cmocka_unit_test(test_describe_round_trips),
        cmocka_unit_test(test_blank_and_comment_lines),
        cmocka_unit_test(test_bad_rules_name_the_token),
        cmocka_unit_test(test_load_file),
        cmocka_unit_test(test_load_errors_name_file_and_line),
        cmocka_unit_test(test_sha256),
        cmocka_unit_test(test_digest_equal),
        cmocka_unit_test(test_glob),
        cmocka_unit_test(test_loopback),
        cmocka_unit_test(test_categories),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
