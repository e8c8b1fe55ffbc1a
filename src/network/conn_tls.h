/*
 * conn_tls.h - TLS connections (OpenSSL) behind the vl_conn interface.
 *
 * A vl_tls is the server's TLS context: certificate, key, the CA that
 * client certificates must chain to, and the policy (TLS 1.2 or newer,
 * forward-secret AEAD ciphers for TLS 1.2, OpenSSL's TLS 1.3 suites).
 * It is built once at start; errors name the file and OpenSSL's reason.
 * Callers never see an OpenSSL type.
 */
#ifndef VL_NETWORK_CONN_TLS_H
#define VL_NETWORK_CONN_TLS_H

#include <stddef.h>
#include <stdint.h>

#include "network/conn.h"

/** --tls-auth-clients: whether a client must present a certificate. */
typedef enum {
    VL_TLS_AUTH_NO,      /* never asked for */
    VL_TLS_AUTH_YES,     /* required, and verified against the CA */
    VL_TLS_AUTH_OPTIONAL /* verified against the CA if presented */
} vl_tls_auth;

typedef struct {
    const char *cert_file; /* PEM certificate chain, server first */
    const char *key_file;  /* PEM private key of that certificate, unencrypted */
    const char *ca_file;   /* PEM CA certificates; required unless auth is NO */
    vl_tls_auth auth;
} vl_tls_options;

typedef struct vl_tls vl_tls;

/** Parse "yes", "no" or "optional"; 0 on success, -1 otherwise. */
int vl_tls_auth_parse(const char *s, vl_tls_auth *out);
const char *vl_tls_auth_name(vl_tls_auth a);

/** Load the files and build the context; NULL with a message in err. */
vl_tls *vl_tls_new(const vl_tls_options *o, char *err, size_t errlen);
/** Free the context; every connection made from it must be closed. */
void vl_tls_free(vl_tls *t);
/** Connections from this context that are open now. */
uint64_t vl_tls_connections(const vl_tls *t);

/** Wrap an accepted socket as a TLS server connection (takes the fd; the
 *  handshake runs inside the first reads).  NULL if OpenSSL cannot make a
 *  session (the fd is closed then). */
vl_conn *vl_conn_tls_new(int fd, vl_tls *t);

#endif
