/* SHA-1, for the one place souk needs it: the WebSocket opening handshake
 * (RFC 6455 section 4.2.2: Sec-WebSocket-Accept is the base64 of the SHA-1
 * of the key and a fixed GUID).
 *
 * Not OpenSSL's EVP_Digest: its first use fetches the digest from the
 * default provider, which builds OpenSSL's library context, method stores
 * and provider tables, about 40 KB of heap and many more pages of
 * libcrypto's code kept for good, for a connection (ws://) that uses
 * OpenSSL for nothing else.  SHA-1 is broken for signatures; here it only
 * proves that the server speaks WebSocket, as the RFC asks. */
#ifndef SOUK_NET_SHA1_H
#define SOUK_NET_SHA1_H

#include <stddef.h>
#include <stdint.h>

/** The 20-byte SHA-1 digest of the n bytes at p into out. */
void souk__sha1(const void *p, size_t n, uint8_t out[20]);

#endif
