/* test_auth.c - access checks in command dispatch, driven with clients
 * that have any peer address: protected mode (non-loopback peers cannot
 * be made on a test machine's loopback), NOAUTH, AUTH / HELLO AUTH and
 * NOPERM.  Only commands that never reach the engine are run. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "commands/commands.h"
#include "server/server.h"

static vl_client *client_at(const char *addr)
{
    vl_client *c = calloc(1, sizeof *c);
    vl_reply_init(&c->out);
    snprintf(c->addr, sizeof c->addr, "%s", addr);
    return c;
}

static void client_free(vl_client *c)
{
    vl_reply_free(&c->out);
    free(c->name);
    free(c);
}

/* Run one request given as words; returns the reply text (owned by c). */
static const char *run(vl_client *c, const char *line)
{
    char buf[512];
    snprintf(buf, sizeof buf, "%s", line);
    const char *argv[16];
    size_t lens[16];
    int argc = 0;
    for (char *t = strtok(buf, " "); t && argc < 16; t = strtok(NULL, " ")) {
        argv[argc] = t;
        lens[argc++] = strlen(t);
    }
    c->out.len = 0;
    vl_command_dispatch(c, argc, argv, lens);
    vl_reply_raw(&c->out, "", 1); /* NUL-terminate for the asserts */
    c->out.len--;
    return c->out.data;
}

static void configure(const char *requirepass, const char *acl_text, int protected_mode)
{
    char path[] = "/tmp/vl-test-acl-XXXXXX";
    if (acl_text) {
        int fd = mkstemp(path);
        assert_true(fd >= 0);
        assert_int_equal(write(fd, acl_text, strlen(acl_text)), (ssize_t)strlen(acl_text));
        close(fd);
    }
    vl_error err;
    assert_int_equal(vl_auth_configure(requirepass, acl_text ? path : NULL, &err), VL_OK);
    if (acl_text)
        unlink(path);
    server.cfg.protected_mode = protected_mode;
}

static void test_protected_mode_refuses_remote_without_password(void **state)
{
    (void)state;
    configure(NULL, NULL, 1);
    const char *remote[] = {"10.1.2.3:5555", "192.168.0.7:1", "::ffff:10.0.0.1:80", "?:0"};
    for (size_t i = 0; i < sizeof remote / sizeof remote[0]; i++) {
        vl_client *c = client_at(remote[i]);
        const char *r = run(c, "PING");
        if (strncmp(r,
                    "-DENIED VexLake is running in protected mode because protected mode is "
                    "enabled and no password is set for the default user.",
                    120) != 0)
            fail_msg("%s got '%s'", remote[i], r);
        assert_true(c->flags & VL_CLIENT_CLOSE_AFTER_REPLY);
        assert_null(c->user);
        client_free(c);
    }
    const char *local[] = {"127.0.0.1:5555", "127.3.4.5:1", "::1:6000", "::ffff:127.0.0.1:9"};
    for (size_t i = 0; i < sizeof local / sizeof local[0]; i++) {
        vl_client *c = client_at(local[i]);
        assert_string_equal(run(c, "PING"), "+PONG\r\n");
        assert_false(c->flags & VL_CLIENT_CLOSE_AFTER_REPLY);
        assert_string_equal(run(c, "ACL WHOAMI"), "$7\r\ndefault\r\n");
        client_free(c);
    }
}

static void test_protected_mode_off_or_password_serves_remote(void **state)
{
    (void)state;
    configure(NULL, NULL, 0);
    vl_client *c = client_at("10.1.2.3:5555");
    assert_string_equal(run(c, "PING"), "+PONG\r\n");
    client_free(c);

    configure("pw", NULL, 1); /* a password: remote clients may log in */
    c = client_at("10.1.2.3:5555");
    assert_string_equal(run(c, "PING"), "-NOAUTH Authentication required.\r\n");
    assert_string_equal(run(c, "AUTH pw"), "+OK\r\n");
    assert_string_equal(run(c, "PING"), "+PONG\r\n");
    client_free(c);

    /* default user with a password in the ACL file, off or not */
    configure(NULL, "user default off >pw ~* +@all\n", 1);
    c = client_at("10.1.2.3:5555");
    assert_string_equal(run(c, "PING"), "-NOAUTH Authentication required.\r\n");
    client_free(c);
}

static void test_noauth_until_auth(void **state)
{
    (void)state;
    configure("s3cret", NULL, 1);
    vl_client *c = client_at("127.0.0.1:1");
    const char *gated[] = {"PING",       "ECHO x",    "VGET k",        "VSET k [1]", "SAVE",
                           "ACL WHOAMI", "CLIENT ID", "COMMAND COUNT", "INFO"};
    for (size_t i = 0; i < sizeof gated / sizeof gated[0]; i++)
        assert_string_equal(run(c, gated[i]), "-NOAUTH Authentication required.\r\n");
    /* unknown commands and arity are reported first, as in Redis */
    assert_non_null(strstr(run(c, "FROB"), "-ERR unknown command 'FROB'"));
    assert_non_null(strstr(run(c, "ECHO"), "wrong number of arguments"));
    const char *wrong = "-WRONGPASS invalid username-password pair or user is disabled.\r\n";
    assert_string_equal(run(c, "AUTH nope"), wrong);
    assert_string_equal(run(c, "AUTH default nope"), wrong);
    assert_string_equal(run(c, "AUTH s3cre"), wrong);
    assert_string_equal(run(c, "AUTH s3cret1"), wrong);
    assert_string_equal(run(c, "AUTH nobody s3cret"), wrong);
    assert_string_equal(run(c, "AUTH a b c"), "-ERR syntax error\r\n");
    assert_null(c->user);
    assert_string_equal(run(c, "AUTH s3cret"), "+OK\r\n");
    assert_string_equal(run(c, "PING"), "+PONG\r\n");
    assert_string_equal(run(c, "AUTH nope"), wrong); /* a failed AUTH keeps the login */
    assert_string_equal(run(c, "PING"), "+PONG\r\n");
    client_free(c);

    c = client_at("127.0.0.1:1");
    assert_string_equal(run(c, "QUIT"), "+OK\r\n");
    client_free(c);
}

static void test_hello_auth(void **state)
{
    (void)state;
    configure("s3cret", NULL, 1);
    vl_client *c = client_at("127.0.0.1:1");
    assert_non_null(strstr(run(c, "HELLO 3"), "-NOAUTH HELLO must be called with the client "
                                              "already authenticated"));
    assert_string_equal(run(c, "HELLO 3 AUTH default wrong"),
                        "-WRONGPASS invalid username-password pair or user is disabled.\r\n");
    assert_int_equal(c->out.proto, 2); /* a failed HELLO does not switch */
    assert_null(c->user);
    const char *r = run(c, "HELLO 3 AUTH default s3cret SETNAME app");
    assert_int_equal(r[0], '%');
    assert_int_equal(c->out.proto, 3);
    assert_string_equal(c->name, "app");
    client_free(c);

    configure(NULL, NULL, 1); /* no password: default accepts any, others do not exist */
    c = client_at("127.0.0.1:1");
    assert_int_equal(run(c, "HELLO 3 AUTH default anything")[0], '%');
    assert_string_equal(run(c, "HELLO 2 AUTH bob anything"),
                        "-WRONGPASS invalid username-password pair or user is disabled.\r\n");
    assert_int_equal(c->out.proto, 3);
    assert_string_equal(run(c, "AUTH x"),
                        "-ERR AUTH <password> called without any password configured for the "
                        "default user. Are you sure your configuration is correct?\r\n");
    client_free(c);
}

static void test_noperm(void **state)
{
    (void)state;
    configure(NULL,
              "user default off\n"
              "user reader on >r ~default +@read\n"
              "user other on >o ~vec* allcommands\n"
              "user writer on >w ~* +@write -clear +acl|list\n"
              "user off_user off >x +@all ~*\n",
              1);
    vl_client *c = client_at("127.0.0.1:1");
    assert_string_equal(run(c, "PING"), "-NOAUTH Authentication required.\r\n");
    assert_string_equal(run(c, "AUTH off_user x"),
                        "-WRONGPASS invalid username-password pair or user is disabled.\r\n");
    assert_string_equal(run(c, "AUTH reader r"), "+OK\r\n");
    assert_string_equal(run(c, "VSET k [1]"),
                        "-NOPERM User reader has no permissions to run the 'vset' command\r\n");
    assert_string_equal(run(c, "SAVE"),
                        "-NOPERM User reader has no permissions to run the 'save' command\r\n");
    assert_string_equal(run(c, "ACL LOAD"),
                        "-NOPERM User reader has no permissions to run the 'acl|load' command\r\n");
    /* connection commands are always allowed */
    assert_string_equal(run(c, "PING"), "+PONG\r\n");
    assert_string_equal(run(c, "ACL WHOAMI"), "$6\r\nreader\r\n");
    assert_int_equal(run(c, "ACL CAT")[0], '*');

    assert_string_equal(run(c, "AUTH other o"), "+OK\r\n");
    assert_string_equal(run(c, "VGET k"), "-NOPERM No permissions to access a key\r\n");
    assert_string_equal(run(c, "DBSIZE"), "-NOPERM No permissions to access a key\r\n");
    assert_string_equal(run(c, "AUTH writer w"), "+OK\r\n");
    assert_string_equal(run(c, "CLEAR"),
                        "-NOPERM User writer has no permissions to run the 'clear' command\r\n");
    assert_string_equal(run(c, "VGET k"),
                        "-NOPERM User writer has no permissions to run the 'vget' command\r\n");
    assert_int_equal(run(c, "ACL LIST")[0], '*');
    assert_non_null(strstr(c->out.data, "user reader on #"));
    assert_null(strstr(c->out.data, ">r"));
    client_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_protected_mode_refuses_remote_without_password),
        cmocka_unit_test(test_protected_mode_off_or_password_serves_remote),
        cmocka_unit_test(test_noauth_until_auth),
        cmocka_unit_test(test_hello_auth),
        cmocka_unit_test(test_noperm),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
