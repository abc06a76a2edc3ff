/* Where souk's TLS clients (the HTTP client and the WebSocket client) find
 * the CA certificates they trust.
 *
 * Both look certificates up on demand in the system's hashed directory
 * (SSL_CERT_DIR, else OpenSSL's default, /usr/lib/ssl/certs on Debian)
 * rather than parsing the whole bundle file: Debian's bundle of ~140
 * certificates costs about 0.9 MB of RSS per copy (measured with a libcurl
 * client against a local TLS server), and each client (OpenSSL for wss://,
 * libcurl's cached store for https://) would keep its own.  The bundle file
 * is used only when there is no usable directory. */
#ifndef SOUK_NET_TRUST_H
#define SOUK_NET_TRUST_H

/** Also trust the CA certificates in the PEM file at path (NULL: none),
 * e.g. a private CA in tests, beside the system's.  path is copied.  HTTP
 * requests started afterwards (on connections opened afterwards) and the
 * next souk__ws_global_init() use it. */
void souk__trust_set_ca_file(const char *path);

/** The file set by souk__trust_set_ca_file(), or NULL. */
const char *souk__trust_ca_file(void);

/** The hashed CA directory, or ':'-separated directories, to look
 * certificates up in (SSL_CERT_DIR, else OpenSSL's default) when one of
 * them holds hash-named certificate links, else NULL.  Valid until the
 * next call. */
const char *souk__trust_ca_dir(void);

/** The bundle file to load when there is no usable directory
 * (SSL_CERT_FILE, else OpenSSL's default). */
const char *souk__trust_ca_bundle(void);

#endif
