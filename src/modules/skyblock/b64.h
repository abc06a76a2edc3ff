/* Strict, fast base64 decoding (RFC 4648 section 4, the standard
 * alphabet), for item_bytes.
 *
 * Strict: the length is a multiple of 4, '=' appears only as one or two
 * final padding characters, there is no whitespace or other byte outside
 * the alphabet, and the bits the padding discards are zero (the encoding
 * is canonical, as Java's Base64 encoder writes it).  Anything else is
 * SOUK_EPARSE: an item's bytes are never guessed at. */
#ifndef SKYBLOCK_B64_H
#define SKYBLOCK_B64_H

#include <stddef.h>
#include <stdint.h>

/** Bytes sb_b64_decode() may write for n characters of input: 3 per 4,
 * plus one byte of slack the decoder uses to store 4 bytes at a time. */
static inline size_t sb_b64_out_cap(size_t n) { return n / 4 * 3 + 1; }

/** Decode in[0..n) into out, which has room for sb_b64_out_cap(n) bytes.
 * *out_len gets the decoded length.  0 or SOUK_EPARSE. */
int sb_b64_decode(const char *in, size_t n, uint8_t *out, size_t *out_len);

#endif
