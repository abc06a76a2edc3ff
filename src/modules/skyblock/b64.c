/* Strict base64 decoding (see b64.h).
 *
 * Four lookup tables, one per position in a 4-character group, hold each
 * character's 6 bits already shifted into place, so a group is four loads
 * and three ORs.  A character outside the alphabet sets bit 24, which no
 * valid group can set: the bits are OR-ed into one accumulator and tested
 * once at the end instead of once per character. */
#include "b64.h"

#include "souk/err.h"

#include <stdbool.h>
#include <string.h>

#define B64V(c)                                                                                    \
  ((c) >= 'A' && (c) <= 'Z'   ? (c) - 'A'                                                          \
   : (c) >= 'a' && (c) <= 'z' ? (c) - 'a' + 26                                                     \
   : (c) >= '0' && (c) <= '9' ? (c) - '0' + 52                                                     \
   : (c) == '+'               ? 62                                                                 \
   : (c) == '/'               ? 63                                                                 \
                              : -1)
#define B64T(c, sh)   (B64V(c) < 0 ? 0x01000000u : (uint32_t)B64V(c) << (sh))
#define B64R4(c, sh)  B64T(c, sh), B64T((c) + 1, sh), B64T((c) + 2, sh), B64T((c) + 3, sh)
#define B64R16(c, sh) B64R4(c, sh), B64R4((c) + 4, sh), B64R4((c) + 8, sh), B64R4((c) + 12, sh)
#define B64R64(c, sh)                                                                              \
  B64R16(c, sh), B64R16((c) + 16, sh), B64R16((c) + 32, sh), B64R16((c) + 48, sh)
#define B64TABLE(sh)                                                                               \
  { B64R64(0, sh), B64R64(64, sh), B64R64(128, sh), B64R64(192, sh) }

static const uint32_t b64_d0[256] = B64TABLE(18);
static const uint32_t b64_d1[256] = B64TABLE(12);
static const uint32_t b64_d2[256] = B64TABLE(6);
static const uint32_t b64_d3[256] = B64TABLE(0);

#define B64_BAD 0x01000000u

static inline uint32_t b64_group(const unsigned char *s) {
  return b64_d0[s[0]] | b64_d1[s[1]] | b64_d2[s[2]] | b64_d3[s[3]];
}

/* Store the 3 bytes of a group.  On a little-endian machine one 4-byte
 * store of the byte-swapped group writes them in order (the 4th byte is
 * overwritten by the next group, or lands in the caller's slack byte). */
static inline void b64_put(uint8_t *o, uint32_t x) {
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
  uint32_t w = __builtin_bswap32(x << 8);
  memcpy(o, &w, 4);
#else
  o[0] = (uint8_t)(x >> 16);
  o[1] = (uint8_t)(x >> 8);
  o[2] = (uint8_t)x;
#endif
}

int sb_b64_decode(const char *in, size_t n, uint8_t *out, size_t *out_len) {
  const unsigned char *s = (const unsigned char *)in;
  if (n % 4) return SOUK_EPARSE;
  if (n == 0) {
    *out_len = 0;
    return 0;
  }
  /* The last group may hold padding: decode all the others in the loop. */
  size_t full = n / 4 - 1;
  uint32_t bad = 0;
  uint8_t *o = out;
  size_t g = 0;
  for (; g + 2 <= full; g += 2, s += 8, o += 6) {
    uint32_t a = b64_group(s), b = b64_group(s + 4);
    bad |= a | b;
    b64_put(o, a);
    b64_put(o + 3, b);
  }
  for (; g < full; g++, s += 4, o += 3) {
    uint32_t a = b64_group(s);
    bad |= a;
    b64_put(o, a);
  }
  /* The last group: "xxxx", "xxx=" or "xx==". */
  size_t pad = s[3] == '=' ? (s[2] == '=' ? 2 : 1) : 0;
  unsigned char last[4] = {s[0], s[1], pad == 2 ? 'A' : s[2], pad ? 'A' : s[3]};
  uint32_t x = b64_group(last);
  bad |= x;
  if (bad & B64_BAD) return SOUK_EPARSE;
  /* Canonical form: the bits the padding drops must be zero. */
  if ((pad == 1 && (x & 0xFF)) || (pad == 2 && (x & 0xFFFF))) return SOUK_EPARSE;
  o[0] = (uint8_t)(x >> 16);
  if (pad < 2) o[1] = (uint8_t)(x >> 8);
  if (pad < 1) o[2] = (uint8_t)x;
  *out_len = (size_t)(o - out) + 3 - pad;
  return 0;
}
