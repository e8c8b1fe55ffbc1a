/*
 * conn_tls.c - the TLS server connection and context (all OpenSSL code).
 *
 * Decisions a reader cannot see from the code:
 *  - The handshake is driven by reads: a new connection's socket events
 *    all count as "readable", and read runs SSL_do_handshake until it is
 *    done, then reads application data at once (the client may have sent
 *    its first request with its last handshake message).  Writes before
 *    the handshake is done send nothing (only the max-clients rejection
 *    tries, and it is best effort).
 *  - Each direction remembers which socket event its last call waited
 *    for: SSL_read may need the socket writable (to send a TLS 1.3 key
 *    update or session ticket) and SSL_write readable.  interest() maps
 *    the client's wishes through these, ready() maps socket events back.
 *  - Partial writes are on and the write buffer may move between retries
 *    (client.c's reply buffer compacts or grows between sends); a retry is
 *    never shorter than the call that got WANT_WRITE, because the client
 *    retries from the same first unsent byte and what may be sent only
 *    grows.
 *  - Renegotiation is refused (a DoS lever and never needed); TLS 1.2 is
 *    the minimum.  No password prompt for keys: an encrypted key fails.
 *  - A failed handshake (plain text on the TLS port, an untrusted client
 *    certificate, an old protocol) is logged with the peer and OpenSSL's
 *    reason, and the connection closes; the server goes on serving.
 */
#include "network/conn_tls.h"

#include <errno.h>
#include <limits.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "network/event_loop.h"
#include "util/alloc.h"
#include "util/log.h"

/* TLS 1.2 suites: ECDHE key exchange (forward secrecy) with AEAD only. */
#define TLS12_CIPHERS                                                                              \
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"                                   \
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"                                   \
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305"

struct vl_tls {
    SSL_CTX *ctx;
    uint64_t live;
};

typedef struct {
    vl_conn base;
    SSL *ssl;
    vl_tls *tls;
    int open;        /* handshake done */
    int failed;      /* a fatal error: no close_notify */
    int hs_wants;    /* socket event the handshake waits for */
    int read_wants;  /* ... the last SSL_read waited for (0: none) */
    int write_wants; /* ... the last SSL_write waited for (0: none) */
} tls_conn;

int vl_tls_auth_parse(const char *s, vl_tls_auth *out)
{
    static const char *const names[] = {"no", "yes", "optional"};
    for (int i = 0; i < 3; i++) {
        if (strcmp(s, names[i]) == 0) {
            *out = (vl_tls_auth)i;
            return 0;
        }
    }
    return -1;
}

const char *vl_tls_auth_name(vl_tls_auth a)
{
    return a == VL_TLS_AUTH_YES ? "yes" : a == VL_TLS_AUTH_OPTIONAL ? "optional" : "no";
}

/* OpenSSL's queued reasons, oldest first, joined; clears the queue.  The
 * generic "... lib" reasons a library adds on top of a specific one, and
 * repeats, are left out. */
static void ssl_reasons(char *buf, size_t len)
{
    size_t used = 0;
    buf[0] = '\0';
    unsigned long e;
    while ((e = ERR_get_error()) != 0) {
        const char *r =
            ERR_SYSTEM_ERROR(e) ? strerror(ERR_GET_REASON(e)) : ERR_reason_error_string(e);
        char code[32];
        if (!r) {
            snprintf(code, sizeof code, "error %lx", e);
            r = code;
        }
        size_t rl = strlen(r);
        if (strstr(buf, r) || (used && rl > 4 && strcmp(r + rl - 4, " lib") == 0))
            continue;
        int n = snprintf(buf + used, len - used, "%s%s", used ? "; " : "", r);
        if (n < 0 || (size_t)n >= len - used)
            break;
        used += (size_t)n;
    }
    if (!buf[0])
        snprintf(buf, len, "unknown OpenSSL error");
}

static int no_password(char *buf, int size, int rwflag, void *u)
{
    (void)buf, (void)size, (void)rwflag, (void)u;
    return 0;
}

static int fail(char *err, size_t errlen, const char *what, const char *file)
{
    char why[256];
    ssl_reasons(why, sizeof why);
    snprintf(err, errlen, "%s %s: %s", what, file, why);
    return -1;
}

static int load_files(SSL_CTX *ctx, const vl_tls_options *o, char *err, size_t errlen)
{
    if (SSL_CTX_use_certificate_chain_file(ctx, o->cert_file) != 1)
        return fail(err, errlen, "cannot load --tls-cert-file", o->cert_file);
    if (SSL_CTX_use_PrivateKey_file(ctx, o->key_file, SSL_FILETYPE_PEM) != 1 ||
        SSL_CTX_check_private_key(ctx) != 1) {
        unsigned long e = ERR_peek_last_error();
        if (ERR_GET_LIB(e) != ERR_LIB_X509 || ERR_GET_REASON(e) != X509_R_KEY_VALUES_MISMATCH)
            return fail(err, errlen, "cannot load --tls-key-file", o->key_file);
        char what[PATH_MAX + 64];
        snprintf(what, sizeof what, "--tls-key-file %s does not match --tls-cert-file",
                 o->key_file);
        return fail(err, errlen, what, o->cert_file);
    }
    if (o->ca_file) {
        if (SSL_CTX_load_verify_locations(ctx, o->ca_file, NULL) != 1)
            return fail(err, errlen, "cannot load --tls-ca-cert-file", o->ca_file);
        STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(o->ca_file);
        if (!names)
            return fail(err, errlen, "no CA certificate in --tls-ca-cert-file", o->ca_file);
        SSL_CTX_set_client_CA_list(ctx, names); /* tells clients which CA we trust */
    }
    return 0;
}

vl_tls *vl_tls_new(const vl_tls_options *o, char *err, size_t errlen)
{
    err[0] = '\0';
    ERR_clear_error();
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (!ctx) {
        fail(err, errlen, "cannot create a TLS context", "");
        return NULL;
    }
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE |
                                 SSL_OP_NO_COMPRESSION);
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
                              SSL_MODE_RELEASE_BUFFERS);
    SSL_CTX_set_default_passwd_cb(ctx, no_password);
    /* Sessions are resumable; the id context must be set when client
     * certificates are verified, or resumption fails. */
    SSL_CTX_set_session_id_context(ctx, (const unsigned char *)"vexlake", 7);
    if (SSL_CTX_set_cipher_list(ctx, TLS12_CIPHERS) != 1 || load_files(ctx, o, err, errlen) != 0) {
        if (!err[0])
            fail(err, errlen, "cannot set the TLS 1.2 ciphers", TLS12_CIPHERS);
        SSL_CTX_free(ctx);
        return NULL;
    }
    int mode = SSL_VERIFY_NONE;
    if (o->auth == VL_TLS_AUTH_YES)
        mode = SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT;
    else if (o->auth == VL_TLS_AUTH_OPTIONAL)
        mode = SSL_VERIFY_PEER;
    SSL_CTX_set_verify(ctx, mode, NULL);
    vl_tls *t = vl_calloc(1, sizeof *t);
    t->ctx = ctx;
    return t;
}

void vl_tls_free(vl_tls *t)
{
    if (!t)
        return;
    SSL_CTX_free(t->ctx);
    free(t);
}

uint64_t vl_tls_connections(const vl_tls *t)
{
    return t ? t->live : 0;
}

/* ---- one connection ---- */

static void log_failure(tls_conn *t, const char *stage, int ssl_err)
{
    int saved_errno = errno;
    char peer[NI_MAXHOST + NI_MAXSERV + 2] = "?";
    struct sockaddr_storage sa;
    socklen_t salen = sizeof sa;
    char host[NI_MAXHOST], serv[NI_MAXSERV];
    if (getpeername(t->base.fd, (struct sockaddr *)&sa, &salen) == 0 &&
        (sa.ss_family == AF_INET || sa.ss_family == AF_INET6) &&
        getnameinfo((struct sockaddr *)&sa, salen, host, sizeof host, serv, sizeof serv,
                    NI_NUMERICHOST | NI_NUMERICSERV) == 0)
        snprintf(peer, sizeof peer, "%s:%s", host, serv);
    char why[256];
    long verify = SSL_get_verify_result(t->ssl);
    if (verify != X509_V_OK) {
        snprintf(why, sizeof why, "client certificate: %s", X509_verify_cert_error_string(verify));
        ERR_clear_error();
    } else if (ssl_err == SSL_ERROR_SSL) {
        ssl_reasons(why, sizeof why);
    } else {
        snprintf(why, sizeof why, "%s",
                 saved_errno ? strerror(saved_errno) : "connection closed by peer");
    }
    vl_log(VL_LOG_INFO, "TLS %s with %s failed: %s", stage, peer, why);
}

/* After a call returned r <= 0: store the socket event it waits for in
 * *wants and return 0, or return -1 when the connection is finished. */
static int outcome(tls_conn *t, int r, int *wants, const char *stage)
{
    int e = SSL_get_error(t->ssl, r);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
        *wants = e == SSL_ERROR_WANT_READ ? VL_EV_READ : VL_EV_WRITE;
        return 0;
    }
    if (e == SSL_ERROR_SYSCALL || e == SSL_ERROR_SSL) {
        t->failed = 1; /* no close_notify after a fatal error */
        if (!t->open)
            log_failure(t, stage, e);
    }
    ERR_clear_error();
    return -1; /* SSL_ERROR_ZERO_RETURN (close_notify) or an error */
}

/* 1 when the handshake is done, 0 while it waits, -1 when it failed. */
static int handshake(tls_conn *t)
{
    ERR_clear_error();
    errno = 0;
    int r = SSL_do_handshake(t->ssl);
    if (r == 1) {
        t->open = 1;
        t->hs_wants = 0;
        return 1;
    }
    return outcome(t, r, &t->hs_wants, "handshake");
}

static ssize_t tls_read(vl_conn *c, void *buf, size_t len)
{
    tls_conn *t = (tls_conn *)c;
    if (!t->open) {
        int h = handshake(t);
        if (h <= 0)
            return h;
    }
    ERR_clear_error();
    errno = 0;
    int n = SSL_read(t->ssl, buf, len > INT32_MAX ? INT32_MAX : (int)len);
    if (n > 0) {
        t->read_wants = 0;
        return n;
    }
    return outcome(t, n, &t->read_wants, "read");
}

static ssize_t tls_write(vl_conn *c, const void *buf, size_t len)
{
    tls_conn *t = (tls_conn *)c;
    if (!t->open)
        return 0;
    ERR_clear_error();
    errno = 0;
    int n = SSL_write(t->ssl, buf, len > INT32_MAX ? INT32_MAX : (int)len);
    if (n > 0) {
        t->write_wants = 0;
        return n;
    }
    return outcome(t, n, &t->write_wants, "write");
}

/* The socket event each wish waits for. */
static int read_event(const tls_conn *t)
{
    return t->read_wants ? t->read_wants : VL_EV_READ;
}

static int write_event(const tls_conn *t)
{
    return t->write_wants ? t->write_wants : VL_EV_WRITE;
}

static int tls_interest(vl_conn *c, int mask)
{
    tls_conn *t = (tls_conn *)c;
    if (!t->open)
        return t->hs_wants ? t->hs_wants : VL_EV_READ;
    return (mask & VL_EV_READ ? read_event(t) : 0) | (mask & VL_EV_WRITE ? write_event(t) : 0);
}

static int tls_ready(vl_conn *c, int events)
{
    tls_conn *t = (tls_conn *)c;
    if (!t->open)
        return events ? VL_EV_READ : 0; /* reads drive the handshake */
    return (events & read_event(t) ? VL_EV_READ : 0) | (events & write_event(t) ? VL_EV_WRITE : 0);
}

static int tls_has_pending(vl_conn *c)
{
    tls_conn *t = (tls_conn *)c;
    return t->open && SSL_pending(t->ssl) > 0;
}

static void tls_close(vl_conn *c)
{
    tls_conn *t = (tls_conn *)c;
    if (t->open && !t->failed)
        SSL_shutdown(t->ssl); /* one try at close_notify; we do not wait for the peer's */
    ERR_clear_error();
    SSL_free(t->ssl);
    close(t->base.fd);
    t->tls->live--;
    free(t);
}

static const vl_conn_ops tls_ops = {tls_read,  tls_write,       tls_interest,
                                    tls_ready, tls_has_pending, tls_close};

vl_conn *vl_conn_tls_new(int fd, vl_tls *tls)
{
    SSL *ssl = SSL_new(tls->ctx);
    if (!ssl || SSL_set_fd(ssl, fd) != 1) {
        char why[256];
        ssl_reasons(why, sizeof why);
        vl_log(VL_LOG_WARNING, "cannot start a TLS session: %s", why);
        SSL_free(ssl);
        close(fd);
        return NULL;
    }
    SSL_set_accept_state(ssl);
    tls_conn *t = vl_calloc(1, sizeof *t);
    t->base.ops = &tls_ops;
    t->base.fd = fd;
    t->ssl = ssl;
    t->tls = tls;
    tls->live++;
    return &t->base;
}
