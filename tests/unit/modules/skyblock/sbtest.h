/* Helpers shared by the SkyBlock unit tests: reading fixtures, a tiny NBT
 * builder, and gzip + base64 encoding done independently of the decoder
 * under test (zlib's deflate, a plain base64 encoder), so a test's input
 * never comes from the code it checks. */
#ifndef SOUK_TEST_SBTEST_H
#define SOUK_TEST_SBTEST_H

#include "souk/alloc.h"
#include "souk/buf.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

/* A whole file (gunzipped when it ends in .gz), NUL-terminated; aborts the
 * test run when it cannot be read. */
static inline char *sbt_read_file(const char *path, size_t *len) {
  souk_buf_t b = {0};
  gzFile f = gzopen(path, "rb");
  if (!f) {
    fprintf(stderr, "cannot open %s\n", path);
    abort();
  }
  char chunk[65536];
  int n;
  while ((n = gzread(f, chunk, sizeof chunk)) > 0)
    souk_buf_append(&b, chunk, (size_t)n);
  gzclose(f);
  if (len) *len = b.len;
  return souk_buf_steal(&b);
}

/* gzip (RFC 1952) of p[0..n) with zlib's deflate. */
static inline void sbt_gzip(const void *p, size_t n, souk_buf_t *out) {
  z_stream z = {0};
  if (deflateInit2(&z, 6, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY) != Z_OK) abort();
  size_t cap = deflateBound(&z, (uLong)n) + 32;
  souk_buf_reset(out);
  souk_buf_reserve(out, cap);
  z.next_in = (Bytef *)p;
  z.avail_in = (uInt)n;
  z.next_out = (Bytef *)out->data;
  z.avail_out = (uInt)cap;
  if (deflate(&z, Z_FINISH) != Z_STREAM_END) abort();
  out->len = z.total_out;
  deflateEnd(&z);
}

/* Standard base64 with padding. */
static inline void sbt_b64(const void *p, size_t n, souk_buf_t *out) {
  static const char a[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  const unsigned char *s = p;
  souk_buf_reset(out);
  for (size_t i = 0; i < n; i += 3) {
    uint32_t v = (uint32_t)s[i] << 16 | (i + 1 < n ? (uint32_t)s[i + 1] << 8 : 0) |
                 (i + 2 < n ? s[i + 2] : 0);
    char q[4] = {a[v >> 18], a[v >> 12 & 63], i + 1 < n ? a[v >> 6 & 63] : '=',
                 i + 2 < n ? a[v & 63] : '='};
    souk_buf_append(out, q, 4);
  }
}

/* item_bytes for an NBT document: base64 of gzip. */
static inline void sbt_item_bytes(const souk_buf_t *nbt, souk_buf_t *out) {
  souk_buf_t gz = {0};
  sbt_gzip(nbt->data, nbt->len, &gz);
  sbt_b64(gz.data, gz.len, out);
  souk_buf_free(&gz);
}

/* ---- an NBT writer: big-endian, names as given (plain ASCII in tests) --- */

static inline void nb_u8(souk_buf_t *b, unsigned v) { souk_buf_putc(b, (char)(v & 0xFF)); }
static inline void nb_u16(souk_buf_t *b, unsigned v) {
  nb_u8(b, v >> 8);
  nb_u8(b, v);
}
static inline void nb_u32(souk_buf_t *b, uint32_t v) {
  nb_u16(b, v >> 16);
  nb_u16(b, v & 0xFFFF);
}
static inline void nb_u64(souk_buf_t *b, uint64_t v) {
  nb_u32(b, (uint32_t)(v >> 32));
  nb_u32(b, (uint32_t)v);
}
/* A tag header: type and name. */
static inline void nb_head(souk_buf_t *b, unsigned type, const char *name) {
  nb_u8(b, type);
  nb_u16(b, (unsigned)strlen(name));
  souk_buf_puts(b, name);
}
/* A string payload of n raw bytes. */
static inline void nb_strn(souk_buf_t *b, const char *s, size_t n) {
  nb_u16(b, (unsigned)n);
  souk_buf_append(b, s, n);
}
static inline void nb_str(souk_buf_t *b, const char *s) { nb_strn(b, s, strlen(s)); }
/* Named string and int fields inside a compound. */
static inline void nb_field_str(souk_buf_t *b, const char *name, const char *v) {
  nb_head(b, 8, name);
  nb_str(b, v);
}
static inline void nb_field_int(souk_buf_t *b, const char *name, int32_t v) {
  nb_head(b, 3, name);
  nb_u32(b, (uint32_t)v);
}
static inline void nb_field_byte(souk_buf_t *b, const char *name, int8_t v) {
  nb_head(b, 1, name);
  nb_u8(b, (uint8_t)v);
}
static inline void nb_end(souk_buf_t *b) { nb_u8(b, 0); }

/* The start of an item document, up to inside ExtraAttributes:
 *   {"": {i: [{id: 1s, Count: count, tag: {display: {Name, Lore: [lore]},
 *   ExtraAttributes: {id: sbid, ...
 * Finish with nb_item_end(). */
static inline void nb_item_begin(souk_buf_t *b, int8_t count, const char *name, const char *lore,
                                 const char *sbid) {
  nb_head(b, 10, "");
  nb_head(b, 9, "i");
  nb_u8(b, 10);
  nb_u32(b, 1);
  nb_head(b, 2, "id");
  nb_u16(b, 1);
  nb_field_byte(b, "Count", count);
  nb_head(b, 10, "tag");
  nb_head(b, 10, "display");
  nb_field_str(b, "Name", name);
  nb_head(b, 9, "Lore");
  nb_u8(b, 8);
  nb_u32(b, 2);
  nb_str(b, "\xc2\xa7"
            "7Some text");
  nb_str(b, lore);
  nb_end(b); /* display */
  nb_head(b, 10, "ExtraAttributes");
  nb_field_str(b, "id", sbid);
}
static inline void nb_item_end(souk_buf_t *b) {
  nb_end(b); /* ExtraAttributes */
  nb_end(b); /* tag */
  nb_head(b, 2, "Damage");
  nb_u16(b, 0);
  nb_end(b); /* the stack */
  nb_end(b); /* root */
}

#endif
