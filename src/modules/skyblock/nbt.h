/* Named Binary Tag (NBT) reading, as Minecraft writes it and Hypixel ships
 * it inside item_bytes: big-endian, uncompressed here (gzip is undone
 * before), one named root tag.
 *
 * Nothing here allocates or builds a tree: the checker and the skipper walk
 * the bytes in place, and item.c extracts what the item key needs with the
 * cursor helpers below while skipping the rest.  sb_nbt_json() writes the
 * whole document as JSON for tests, /ah detail and debugging.
 *
 * Hostile input is expected: every read is bounds-checked, nesting is
 * limited to SB_NBT_MAX_DEPTH, a list's element count must fit in the bytes
 * left (so no loop runs longer than the input allows), negative lengths
 * and lists of End with elements are refused.  Errors are SOUK_EPARSE
 * (malformed) or SOUK_ETOOBIG (deeper than the limit).
 *
 * Strings are Java's modified UTF-8 (DataOutput.writeUTF): NUL is the two
 * bytes C0 80, and a code point above U+FFFF is a UTF-16 surrogate pair,
 * each half written as a 3-byte sequence.  sb_mutf8_to_utf8() turns that
 * into standard UTF-8 and refuses what Java's readUTF refuses (bytes
 * 0x80-0xBF or 0xF0-0xFF where a sequence starts, truncated sequences). */
#ifndef SKYBLOCK_NBT_H
#define SKYBLOCK_NBT_H

#include "souk/buf.h"
#include "souk/err.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

/** The 13 tag types, numbered as on the wire. */
typedef enum sb_nbt_tag {
  SB_NBT_END = 0,
  SB_NBT_BYTE = 1,
  SB_NBT_SHORT = 2,
  SB_NBT_INT = 3,
  SB_NBT_LONG = 4,
  SB_NBT_FLOAT = 5,
  SB_NBT_DOUBLE = 6,
  SB_NBT_BYTE_ARRAY = 7,
  SB_NBT_STRING = 8,
  SB_NBT_LIST = 9,
  SB_NBT_COMPOUND = 10,
  SB_NBT_INT_ARRAY = 11,
  SB_NBT_LONG_ARRAY = 12,
} sb_nbt_tag_t;

/** Deepest nesting of lists and compounds accepted (the root compound is
 * depth 1).  Minecraft allows 512; real items nest fewer than 10 levels,
 * and 64 keeps the recursive walkers' stack small. */
#define SB_NBT_MAX_DEPTH 64

/** A read position in an NBT buffer; p never passes end. */
typedef struct sb_nbt_cur {
  const uint8_t *p;
  const uint8_t *end;
} sb_nbt_cur_t;

/** Bytes left after the cursor. */
static inline size_t sb_nbt_left(const sb_nbt_cur_t *c) { return (size_t)(c->end - c->p); }

/** Big-endian 16-bit unsigned at p (the caller checked the bounds). */
static inline uint16_t sb_be16(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }
/** Big-endian 32-bit at p, as unsigned. */
static inline uint32_t sb_be32(const uint8_t *p) {
  return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}
/** Big-endian 64-bit at p, as unsigned. */
static inline uint64_t sb_be64(const uint8_t *p) {
  return (uint64_t)sb_be32(p) << 32 | sb_be32(p + 4);
}

/** Read a tag header inside a compound: its type byte and, unless the type
 * is End, its name (pointer into the buffer, not NUL-terminated, still
 * modified UTF-8).  0 or SOUK_EPARSE. */
static inline int sb_nbt_read_head(sb_nbt_cur_t *c, uint8_t *type, const char **name,
                                   size_t *name_len) {
  if (c->p >= c->end) return SOUK_EPARSE;
  *type = *c->p++;
  if (*type == SB_NBT_END) return 0;
  if (sb_nbt_left(c) < 2) return SOUK_EPARSE;
  size_t n = sb_be16(c->p);
  if (sb_nbt_left(c) - 2 < n) return SOUK_EPARSE;
  *name = (const char *)c->p + 2;
  *name_len = n;
  c->p += 2 + n;
  return 0;
}

/** True if the name of n bytes is the C string lit. */
static inline bool sb_nbt_name_is(const char *name, size_t n, const char *lit, size_t lit_len) {
  return n == lit_len && memcmp(name, lit, n) == 0;
}

/** Skip the payload of one tag of the given type at the cursor, checking
 * its whole structure.  depth is the nesting of the enclosing container
 * (0 outside any).  0, SOUK_EPARSE or SOUK_ETOOBIG. */
int sb_nbt_skip(sb_nbt_cur_t *c, uint8_t type, int depth);

/** Read an integer payload of any integer type (Byte, Short, Int, Long) at
 * the cursor into *v, sign-extended.  0, SOUK_EPARSE if the bytes run out,
 * or SOUK_EINVAL if type is not an integer type (nothing is consumed then:
 * the caller skips the payload with sb_nbt_skip). */
int sb_nbt_read_int(sb_nbt_cur_t *c, uint8_t type, int64_t *v);

/** Read a String payload at the cursor: pointer into the buffer and length
 * in bytes (modified UTF-8, not NUL-terminated).  0 or SOUK_EPARSE. */
int sb_nbt_read_str(sb_nbt_cur_t *c, const char **s, size_t *len);

/** Check that buf[0..n) is exactly one named root tag of type Compound
 * (which is what an item stack is), with nothing after it.  0 or
 * SOUK_EPARSE / SOUK_ETOOBIG. */
int sb_nbt_check(const uint8_t *buf, size_t n);

/** Append the document in buf[0..n) to out as JSON: the root tag's name is
 * dropped (its value is written), compounds become objects (keys in wire
 * order), lists and the three array types arrays, integers integers,
 * Float and Double numbers (shortest text that reads back the same value;
 * NaN and infinities, which JSON cannot hold, become null), strings JSON
 * strings in UTF-8 (modified UTF-8 converted).  Tag types are not kept:
 * this is the shape of the Python `NBT` package's output the oracle test
 * compares against.  On error out may hold a partial document.  0,
 * SOUK_EPARSE or SOUK_ETOOBIG. */
int sb_nbt_json(const uint8_t *buf, size_t n, souk_buf_t *out);

/** Convert n bytes of modified UTF-8 to UTF-8 into out (cap bytes, not
 * NUL-terminated).  C0 80 becomes U+0000, a surrogate pair one 4-byte
 * sequence, a lone surrogate U+FFFD, and any other overlong form its
 * shortest encoding.  Returns the output length, SOUK_EPARSE for bytes
 * Java's readUTF would refuse, or SOUK_ETOOBIG if out is too small.  The
 * output is never longer than the input (each form re-encodes in at most
 * as many bytes), so cap >= n always suffices. */
int sb_mutf8_to_utf8(const char *in, size_t n, char *out, size_t cap);

/** Append n bytes of modified UTF-8 to out as standard UTF-8 (see
 * sb_mutf8_to_utf8).  0 or SOUK_EPARSE (out is then unchanged). */
int sb_mutf8_append(souk_buf_t *out, const char *in, size_t n);

#endif
