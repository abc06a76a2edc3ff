/* Where souk's TLS clients (the HTTP client and the WebSocket client) find
 * the CA certificates they trust.
 *
 * Both look certificates up on demand in the system's hashed directory
 * (SSL_CERT_DIR, else OpenSSL's default, /usr/lib/ssl/certs on Debian)
 * rather than parsing the whole bundle file at start-up: Debian's bundle of
 * ~140 certificates costs about 1.3 MB of heap per copy, and each client
 * (OpenSSL for wss://, libcurl's cached store for https://) would keep its
 * own.  The bundle file is used only when there is no usable directory. */
#ifndef SOUK_NET_TRUST_H
#define SOUK_NET_TRUST_H

/** Also trust the CA certificates in the PEM file at path (NULL: none),
 * e.g. a private CA in tests.  path is copied.  HTTP requests started
 * afterwards and the next souk_ws_global_init() use it. */
void souk_trust_set_ca_file(const char *path);

/** The file set by souk_trust_set_ca_file(), or NULL. */
const char *souk_trust_ca_file(void);

/** The hashed CA directory to look certificates up in (SSL_CERT_DIR, else
 * OpenSSL's default) when it can be read, else NULL. */
const char *souk_trust_ca_dir(void);

/** The bundle file to load when there is no usable directory
 * (SSL_CERT_FILE, else OpenSSL's default). */
const char *souk_trust_ca_bundle(void);

#endif
