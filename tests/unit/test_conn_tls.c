/* test_conn_tls.c - the TLS connection against an in-process OpenSSL client
 * over a non-blocking socketpair: the handshake is driven by reads, a write
 * the socket cannot take returns 0 and asks for writability, a retry from a
 * moved buffer goes on where it stopped, bytes left inside a TLS record are
 * reported as pending, close_notify finishes the stream; and bad key files
 * are refused with the file named. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>

#include "network/conn_tls.h"
#include "network/event_loop.h"
#include "testutil.h"

typedef struct {
    char dir[PATH_MAX];
    char cert[PATH_MAX + 16], key[PATH_MAX + 16], other_key[PATH_MAX + 16];
    vl_tls *tls;
    SSL_CTX *client_ctx;
    int sv[2];
    vl_conn *conn;
    SSL *client;
} fx;

static void write_key(const char *path, EVP_PKEY *k)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    assert_int_equal(PEM_write_PrivateKey(f, k, NULL, NULL, 0, NULL, NULL), 1);
    fclose(f);
}

/* A self-signed P-256 certificate for localhost, its key, and an unrelated key. */
static void make_files(fx *f)
{
    EVP_PKEY *key = EVP_EC_gen("P-256"), *other = EVP_EC_gen("P-256");
    assert_non_null(key);
    assert_non_null(other);
    X509 *x = X509_new();
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
    X509_gmtime_adj(X509_getm_notBefore(x), 0);
    X509_gmtime_adj(X509_getm_notAfter(x), 3600);
    X509_set_pubkey(x, key);
    X509_NAME *name = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)"localhost", -1, -1,
                               0);
    X509_set_issuer_name(x, name);
    assert_true(X509_sign(x, key, EVP_sha256()) > 0);
    snprintf(f->cert, sizeof f->cert, "%s/server.crt", f->dir);
    snprintf(f->key, sizeof f->key, "%s/server.key", f->dir);
    snprintf(f->other_key, sizeof f->other_key, "%s/other.key", f->dir);
    FILE *out = fopen(f->cert, "w");
    assert_non_null(out);
    assert_int_equal(PEM_write_X509(out, x), 1);
    fclose(out);
    write_key(f->key, key);
    write_key(f->other_key, other);
    X509_free(x);
    EVP_PKEY_free(key);
    EVP_PKEY_free(other);
}

static int setup(void **state)
{
    fx *f = calloc(1, sizeof *f);
    vl_test_tmpdir(f->dir, sizeof f->dir, "conn_tls");
    make_files(f);
    vl_tls_options o = {f->cert, f->key, NULL, VL_TLS_AUTH_NO};
    char err[512];
    f->tls = vl_tls_new(&o, err, sizeof err);
    assert_non_null(f->tls);
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, f->sv), 0);
    int small = 4096;
    setsockopt(f->sv[0], SOL_SOCKET, SO_SNDBUF, &small, sizeof small);
    setsockopt(f->sv[1], SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
    f->conn = vl_conn_tls_new(f->sv[0], f->tls);
    assert_non_null(f->conn);
    f->client_ctx = SSL_CTX_new(TLS_client_method());
    SSL_CTX_set_verify(f->client_ctx, SSL_VERIFY_NONE, NULL);
    f->client = SSL_new(f->client_ctx);
    SSL_set_fd(f->client, f->sv[1]);
    SSL_set_connect_state(f->client);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx *f = *state;
    if (f->conn)
        vl_conn_close(f->conn);
    SSL_free(f->client);
    SSL_CTX_free(f->client_ctx);
    close(f->sv[1]);
    assert_int_equal(vl_tls_connections(f->tls), 0);
    vl_tls_free(f->tls);
    vl_test_rmtree(f->dir);
    free(f);
    return 0;
}

/* Alternate client and server steps until both finished the handshake. */
static void handshake(fx *f)
{
    char buf[16];
    for (int i = 0; i < 50; i++) {
        int done = SSL_do_handshake(f->client) == 1;
        assert_int_equal(vl_conn_read(f->conn, buf, sizeof buf), 0); /* no data yet */
        if (done && vl_conn_interest(f->conn, VL_EV_WRITE) == VL_EV_WRITE)
            return; /* the server is open: it maps wishes instead of asking to read */
    }
    fail_msg("handshake did not finish");
}

static void test_handshake_is_driven_by_reads(void **state)
{
    fx *f = *state;
    /* Before the handshake every socket event means "read" (to drive it)
     * and the handshake's own wish wins over the client's. */
    assert_int_equal(vl_conn_interest(f->conn, 0), VL_EV_READ);
    assert_int_equal(vl_conn_ready(f->conn, VL_EV_WRITE), VL_EV_READ);
    char buf[16];
    assert_int_equal(vl_conn_write(f->conn, "x", 1), 0); /* nothing goes out before */
    handshake(f);
    assert_int_equal(vl_conn_ready(f->conn, VL_EV_WRITE), VL_EV_WRITE);
    assert_int_equal(SSL_write(f->client, "PING\r\n", 6), 6);
    assert_int_equal(vl_conn_read(f->conn, buf, sizeof buf), 6);
    assert_memory_equal(buf, "PING\r\n", 6);
    assert_int_equal(vl_tls_connections(f->tls), 1);
}

static void test_pending_bytes_are_reported(void **state)
{
    fx *f = *state;
    handshake(f);
    char rec[100], buf[200];
    memset(rec, 'r', sizeof rec);
    assert_int_equal(SSL_write(f->client, rec, sizeof rec), (int)sizeof rec); /* one record */
    assert_int_equal(vl_conn_read(f->conn, buf, 10), 10);
    assert_int_equal(vl_conn_has_pending(f->conn), 1); /* no socket event would say so */
    assert_int_equal(vl_conn_read(f->conn, buf, sizeof buf), 90);
    assert_int_equal(vl_conn_has_pending(f->conn), 0);
    assert_int_equal(vl_conn_read(f->conn, buf, sizeof buf), 0);
}

/* Read what the client can get now; returns the byte count. */
static size_t client_drain(fx *f, unsigned char *dst, size_t cap)
{
    size_t got = 0;
    for (;;) {
        int n = SSL_read(f->client, dst + got, (int)(cap - got));
        if (n <= 0) {
            assert_int_equal(SSL_get_error(f->client, n), SSL_ERROR_WANT_READ);
            return got;
        }
        got += (size_t)n;
    }
}

static void test_blocked_write_waits_for_writable_and_resumes_from_moved_buffer(void **state)
{
    fx *f = *state;
    handshake(f);
    enum { TOTAL = 4 << 20 };
    unsigned char *src = malloc(TOTAL), *dst = malloc(TOTAL);
    for (size_t i = 0; i < TOTAL; i++)
        src[i] = (unsigned char)(i * 2654435761u >> 24);
    size_t sent = 0, got = 0;
    int blocked = 0;
    while (sent < TOTAL) {
        /* Each retry hands over a fresh copy of the unsent bytes (client.c
         * compacts its reply buffer between tries). */
        unsigned char *copy = malloc(TOTAL - sent);
        memcpy(copy, src + sent, TOTAL - sent);
        ssize_t n = vl_conn_write(f->conn, copy, TOTAL - sent);
        free(copy);
        assert_true(n >= 0);
        if (n == 0) {
            blocked++;
            assert_int_equal(vl_conn_interest(f->conn, VL_EV_WRITE), VL_EV_WRITE);
            assert_int_equal(vl_conn_interest(f->conn, VL_EV_READ), VL_EV_READ);
            got += client_drain(f, dst + got, TOTAL - got);
        }
        sent += (size_t)n;
    }
    while (got < TOTAL)
        got += client_drain(f, dst + got, TOTAL - got);
    assert_true(blocked > 0); /* the small socket buffer did make it wait */
    assert_memory_equal(src, dst, TOTAL);
    free(src);
    free(dst);
}

static void test_close_notify_finishes_the_stream(void **state)
{
    fx *f = *state;
    handshake(f);
    SSL_shutdown(f->client);
    char buf[16];
    assert_int_equal(vl_conn_read(f->conn, buf, sizeof buf), -1);
}

static void test_plain_text_fails_the_handshake(void **state)
{
    fx *f = *state;
    assert_int_equal(write(f->sv[1], "PING\r\n", 6), 6);
    char buf[16];
    assert_int_equal(vl_conn_read(f->conn, buf, sizeof buf), -1);
}

static void test_bad_files_are_named(void **state)
{
    fx *f = *state;
    char err[1024], missing[PATH_MAX + 16];
    snprintf(missing, sizeof missing, "%s/missing.pem", f->dir);
    vl_tls_options o = {missing, f->key, NULL, VL_TLS_AUTH_NO};
    assert_null(vl_tls_new(&o, err, sizeof err));
    assert_non_null(strstr(err, missing));
    assert_non_null(strstr(err, "No such file or directory"));
    o = (vl_tls_options){f->cert, f->other_key, NULL, VL_TLS_AUTH_NO};
    assert_null(vl_tls_new(&o, err, sizeof err));
    assert_non_null(strstr(err, "does not match --tls-cert-file"));
    assert_non_null(strstr(err, f->other_key));
    o = (vl_tls_options){f->cert, f->key, f->key, VL_TLS_AUTH_YES}; /* a key is no CA */
    assert_null(vl_tls_new(&o, err, sizeof err));
    assert_non_null(strstr(err, "--tls-ca-cert-file"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_handshake_is_driven_by_reads, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pending_bytes_are_reported, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_blocked_write_waits_for_writable_and_resumes_from_moved_buffer, setup, teardown),
        cmocka_unit_test_setup_teardown(test_close_notify_finishes_the_stream, setup, teardown),
        cmocka_unit_test_setup_teardown(test_plain_text_fails_the_handshake, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_files_are_named, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
