/* DEFLATE and gzip decoding for small whole buffers (see inflate.h).
 *
 * Decode tables.  A Huffman code is decoded with one lookup in a root
 * table indexed by the next bits of input (DEFLATE sends codes starting
 * from their first bit, so the index is the code with its bits reversed;
 * a code shorter than the index fills every entry its bits begin).  The
 * root is as wide as the longest code, at most LITLEN_BITS, DIST_BITS or
 * PRECODE_BITS bits: building a table costs a write per entry (a copy of
 * the table onto its end per bit of width, and one write per code), and a
 * 1 KB item's literal/length code has 8 to 11 bits.  A code longer than
 * the root goes through a subtable, which its root entry points to.  11
 * bits, as in libdeflate, measured faster on real items than 9 or 10: a
 * subtable lookup costs a mispredicted branch, which is more than the
 * entries a narrower root saves.
 *
 * An entry is 32 bits:
 *   bits 0-7    bits to remove from the input: the code's length at this
 *               level, plus the extra bits of a length or distance
 *   bits 8-11   the code's length at this level (so the extra bits are
 *               the ones above it)
 *   bit 13      end of block
 *   bit 14      subtable pointer: bits 8-11 are the subtable's index bits,
 *               bits 16-30 its position in the table
 *   bit 15      anything but a literal, length or distance: a subtable
 *               pointer, the end of block, or an invalid code
 *   bits 16-30  the literal, the base length or distance, or for the
 *               precode a repeat count and a code length (see
 *               precode_results)
 *   bit 31      a literal (so a literal is a negative int32_t)
 * A length's extra bits are then (bits & mask(entry & 0xff)) >> its code
 * length, with no second lookup.
 *
 * Bit buffer.  64 bits, refilled to at least 56 with one unaligned 8-byte
 * load while 8 bytes of input remain (a gzip member's 8-byte trailer keeps
 * it that way to the end of its DEFLATE stream), a byte at a time after
 * that, with zero bytes past the end of the input counted as read too far
 * and an error once one of them is used.  After a refill there are bits
 * for three literals or one length and distance, so each needs no check.
 *
 * Output.  The caller's buffer has SB_INFLATE_SLACK bytes past the end:
 * up to three literals are written before the output's end is checked,
 * and a match is copied 8 bytes at a time after checking that its length
 * fits, so writes reach at most 7 bytes past the end.
 *
 * The decoding loop is one chain of dependent instructions per symbol
 * (mask the bits, load the entry, shift the bits out), so its speed is
 * that chain's latency and the branches it mispredicts: 3 µs of a real
 * item's 4, the rest being the block header (0.8) and the tables (0.35).
 * On x86 it is compiled twice, the second time for BMI2 (shifts by a
 * register in one instruction), and the CPU picks. */
#include "inflate.h"

#include "souk/alloc.h"
#include "souk/err.h"

#include <libdeflate.h>
#include <stdbool.h>
#include <string.h>

#define LITLEN_BITS  11
#define DIST_BITS    8
#define PRECODE_BITS 7

#define LITLEN_SYMS  288
#define DIST_SYMS    32
#define PRECODE_SYMS 19
#define MAX_CODE_LEN 15

/* Table sizes.  A subtable 2^k entries wide holds codes up to k bits past
 * the root, and since every code with subtables is complete, the codes of
 * its prefix fill it: a full binary tree of depth k has at least k + 1
 * leaves.  2^k / (k + 1) grows with k, so the subtables of syms symbols
 * take at most syms * 2^k / (k + 1) entries, with k = 15 - root bits. */
#define ENOUGH(syms, bits)                                                                         \
  ((1u << (bits)) + (syms) * (1u << (MAX_CODE_LEN - (bits))) / (MAX_CODE_LEN + 1 - (bits)) + 1)
#define LITLEN_ENOUGH ENOUGH(LITLEN_SYMS, LITLEN_BITS)
#define DIST_ENOUGH   ENOUGH(DIST_SYMS, DIST_BITS)

#define E_LIT 0x80000000u
#define E_EXC 0x00008000u
#define E_SUB 0x00004000u
#define E_EOB 0x00002000u

#define likely(x)   __builtin_expect(!!(x), 1)
#define unlikely(x) __builtin_expect(!!(x), 0)

struct sb_inflate {
  uint32_t litlen[LITLEN_ENOUGH];
  uint32_t dist[DIST_ENOUGH];
  uint32_t precode[1u << PRECODE_BITS];
  /* A dynamic block's symbols listed by code length, as they are read. */
  uint16_t by_len[MAX_CODE_LEN + 1][LITLEN_SYMS + DIST_SYMS];
  /* The fixed codes of block type 1, built on the first such block. */
  uint32_t fixed_litlen[1u << 9];
  uint32_t fixed_dist[1u << 5];
  bool fixed_ready;
  bool bmi2; /* the CPU has BMI2: use inflate_bmi2 */
};

/* ---- what each symbol decodes to ---------------------------------------- */

#define LIT(c)         (E_LIT | (uint32_t)(c) << 16)
#define LIT4(c)        LIT(c), LIT((c) + 1), LIT((c) + 2), LIT((c) + 3)
#define LIT16(c)       LIT4(c), LIT4((c) + 4), LIT4((c) + 8), LIT4((c) + 12)
#define LIT64(c)       LIT16(c), LIT16((c) + 16), LIT16((c) + 32), LIT16((c) + 48)
#define BASE(b, extra) ((uint32_t)(b) << 16 | (extra))

/* Literal/length symbols 0-287: literals, the end of block, the 29 length
 * codes (base length and extra bits, RFC 1951 section 3.2.5), and 286 and
 * 287, which only the fixed code has and which are invalid. */
static const uint32_t litlen_results[LITLEN_SYMS] = {
    LIT64(0),     LIT64(64),    LIT64(128),   LIT64(192),   E_EXC | E_EOB, BASE(3, 0),
    BASE(4, 0),   BASE(5, 0),   BASE(6, 0),   BASE(7, 0),   BASE(8, 0),    BASE(9, 0),
    BASE(10, 0),  BASE(11, 1),  BASE(13, 1),  BASE(15, 1),  BASE(17, 1),   BASE(19, 2),
    BASE(23, 2),  BASE(27, 2),  BASE(31, 2),  BASE(35, 3),  BASE(43, 3),   BASE(51, 3),
    BASE(59, 3),  BASE(67, 4),  BASE(83, 4),  BASE(99, 4),  BASE(115, 4),  BASE(131, 5),
    BASE(163, 5), BASE(195, 5), BASE(227, 5), BASE(258, 0), E_EXC,         E_EXC,
};

/* Distance symbols 0-31: 30 codes, and 30 and 31, which only the fixed
 * code has and which are invalid. */
static const uint32_t dist_results[DIST_SYMS] = {
    BASE(1, 0),     BASE(2, 0),     BASE(3, 0),      BASE(4, 0),      BASE(5, 1),
    BASE(7, 1),     BASE(9, 2),     BASE(13, 2),     BASE(17, 3),     BASE(25, 3),
    BASE(33, 4),    BASE(49, 4),    BASE(65, 5),     BASE(97, 5),     BASE(129, 6),
    BASE(193, 6),   BASE(257, 7),   BASE(385, 7),    BASE(513, 8),    BASE(769, 8),
    BASE(1025, 9),  BASE(1537, 9),  BASE(2049, 10),  BASE(3073, 10),  BASE(4097, 11),
    BASE(6145, 11), BASE(8193, 12), BASE(12289, 12), BASE(16385, 13), BASE(24577, 13),
    E_EXC,          E_EXC,
};

/* Code length symbols 0-18: lengths 0-15, then "repeat the previous length
 * 3-6 times" (2 extra bits), "3-10 zeros" (3), "11-138 zeros" (7).  The
 * payload is a repeat count (its extra bits added like a length's) plus
 * 256 times the length to repeat: 1 and the length for 0-15, 3 or 11 and
 * zero for 17 and 18, and for 16 a flag, E_PREV, for the length before. */
#define E_PREV  E_EOB
#define LEN1(l) BASE((l) << 8 | 1, 0)
#define LEN4(l) LEN1(l), LEN1((l) + 1), LEN1((l) + 2), LEN1((l) + 3)
static const uint32_t precode_results[PRECODE_SYMS] = {
    LEN4(0), LEN4(4), LEN4(8), LEN4(12), BASE(3, 2) | E_PREV, BASE(3, 3), BASE(11, 7),
};

/* The order in which a dynamic block sends the precode's lengths. */
static const uint8_t precode_order[PRECODE_SYMS] = {16, 17, 18, 0, 8,  7, 9,  6, 10, 5,
                                                    11, 4,  12, 3, 13, 2, 14, 1, 15};

/* ---- building decode tables ---------------------------------------------- */

/* Copy a table's first size entries onto its end.  Inline, 32 bytes at a
 * time: the size changes at every call, which costs a library memcpy
 * mispredicted branches. */
static inline void double_table(uint32_t *t, unsigned size) {
  if (size >= 8) {
    for (unsigned i = 0; i < size; i += 8)
      memcpy(t + size + i, t + i, 32);
  } else {
    for (unsigned i = 0; i < size; i++)
      t[size + i] = t[i];
  }
}

/* Bits reversed in a byte (DEFLATE sends a code's first bit first, so a
 * table's index is the code backwards). */
#define R2(n) n, n + 2 * 64, n + 1 * 64, n + 3 * 64
#define R4(n) R2(n), R2(n + 2 * 16), R2(n + 1 * 16), R2(n + 3 * 16)
#define R6(n) R4(n), R4(n + 2 * 4), R4(n + 1 * 4), R4(n + 3 * 4)
static const uint8_t rev8[256] = {R6(0), R6(2), R6(1), R6(3)};

/* The len-bit code c with its bits reversed (len <= 15). */
static inline unsigned reverse(unsigned c, unsigned len) {
  return ((unsigned)rev8[c & 0xff] << 8 | rev8[c >> 8]) >> (16 - len);
}

/* A code to build a table for: its symbols of each length, each list in
 * increasing order (canonical order, RFC 1951 section 3.2.2). */
typedef struct code {
  unsigned count[MAX_CODE_LEN + 1];
  const uint16_t *syms[MAX_CODE_LEN + 1];
} code_t;

/* Sort a small code's symbols by length (a counting sort), into code and
 * store[0..n). */
static void code_sort(code_t *c, const uint8_t *lens, unsigned n, uint16_t *store) {
  memset(c->count, 0, sizeof c->count);
  for (unsigned s = 0; s < n; s++)
    c->count[lens[s]]++;
  unsigned pos[MAX_CODE_LEN + 1], at = 0;
  for (unsigned len = 0; len <= MAX_CODE_LEN; len++) {
    pos[len] = at;
    c->syms[len] = store + at;
    at += c->count[len];
  }
  for (unsigned s = 0; s < n; s++)
    store[pos[lens[s]]++] = (uint16_t)s;
}

/* Build the decode table for code c into table, with a root of at most
 * max_bits bits; *bits gets the root's width.  false for a code DEFLATE
 * forbids: over-subscribed, or incomplete unless single_ok and it is one
 * code of one bit (RFC 1951 allows that for a block that uses one
 * distance; zlib allows it for lengths too).  An empty code is accepted
 * with a table of invalid entries, so that using it is the error, as in
 * zlib. */
static bool build_table(uint32_t *table, const code_t *c, const uint32_t *results,
                        unsigned max_bits, bool single_ok, unsigned *bits) {
  const unsigned *count = c->count;
  unsigned max_len = MAX_CODE_LEN;
  while (max_len > 0 && count[max_len] == 0)
    max_len--;

  /* Kraft's sum: codespace left after each length, in units of that
   * length's codes; and the first code of each length. */
  int left = 1;
  unsigned first[MAX_CODE_LEN + 1], code = 0;
  for (unsigned len = 1; len <= MAX_CODE_LEN; len++) {
    left = (left << 1) - (int)count[len];
    if (left < 0) return false; /* over-subscribed */
    first[len] = code;
    code = (code + count[len]) << 1;
  }
  if (left > 0) {
    if (max_len == 0) { /* no codes at all */
      table[0] = table[1] = E_EXC;
      *bits = 1;
      return true;
    }
    if (!single_ok || max_len != 1) return false; /* incomplete */
    /* One code, of one bit: "0" decodes, "1" is invalid. */
    table[0] = results[c->syms[1][0]] + (1u << 8) + 1;
    table[1] = E_EXC;
    *bits = 1;
    return true;
  }

  unsigned root = max_len < max_bits ? max_len : max_bits;
  *bits = root;

  /* Fill the root table one code length at a time.  At length len the
   * table holds its first 2^len entries and each code of that length
   * takes the entry its bits name; going to the next length copies the
   * table onto its own end, which repeats every shorter code for the bit
   * that follows it.  Each code is computed from its length's first code,
   * so that the entries do not wait for each other.  The shortest code
   * fits in the root: a complete code with none shorter than b + 1 bits
   * has at least 2^(b + 1) symbols, more than any of DEFLATE's codes has
   * for the root widths used here. */
  unsigned len = 1;
  while (count[len] == 0)
    len++;
  SOUK_ASSERT(len <= root);
  for (unsigned size = 1u << len;; size <<= 1, len++) {
    const uint16_t *sym = c->syms[len];
    uint32_t add = (len << 8) + len;
    for (unsigned k = 0; k < count[len]; k++)
      table[reverse(first[len] + k, len)] = results[sym[k]] + add;
    if (len == root) break;
    double_table(table, size);
  }

  /* Codes longer than the root: each group sharing its first root bits
   * gets a subtable as wide as its longest code needs, placed after the
   * root table (codes in canonical order share their first bits in
   * consecutive groups).  The subtable's width is found by counting
   * codespace: from the first code's length, widen until the codes left
   * at each length fill it. */
  unsigned root_mask = (1u << root) - 1;
  unsigned prefix = ~0u, sub_bits = 0, sub_start = 0;
  unsigned end = 1u << root; /* first free entry */
  unsigned remaining[MAX_CODE_LEN + 1];
  memcpy(remaining, count, sizeof remaining);
  for (len = root + 1; len <= max_len; len++) {
    unsigned sub_len = len - root;
    uint32_t add = (sub_len << 8) + sub_len;
    for (unsigned k = 0; k < count[len]; k++) {
      unsigned cw = reverse(first[len] + k, len);
      if ((cw & root_mask) != prefix) {
        prefix = cw & root_mask;
        sub_bits = sub_len;
        int space = 1 << sub_bits;
        while (root + sub_bits < max_len) {
          space -= (int)remaining[root + sub_bits];
          if (space <= 0) break;
          sub_bits++;
          space <<= 1;
        }
        sub_start = end;
        end += 1u << sub_bits;
        table[prefix] = E_EXC | E_SUB | sub_start << 16 | sub_bits << 8 | root;
      }
      uint32_t e = results[c->syms[len][k]] + add;
      for (unsigned i = cw >> root; i < (1u << sub_bits); i += 1u << sub_len)
        table[sub_start + i] = e;
      remaining[len]--;
    }
  }
  return true;
}

/* The fixed codes (RFC 1951 section 3.2.6), with all 288 literal/length
 * and 32 distance symbols so that the invalid ones decode as invalid. */
static void build_fixed(sb_inflate_t *z) {
  uint8_t lens[LITLEN_SYMS];
  uint16_t store[LITLEN_SYMS];
  code_t c;
  unsigned bits;
  memset(lens, 8, 144);
  memset(lens + 144, 9, 112);
  memset(lens + 256, 7, 24);
  memset(lens + 280, 8, 8);
  code_sort(&c, lens, LITLEN_SYMS, store);
  build_table(z->fixed_litlen, &c, litlen_results, 9, false, &bits);
  memset(lens, 5, DIST_SYMS);
  code_sort(&c, lens, DIST_SYMS, store);
  build_table(z->fixed_dist, &c, dist_results, 5, false, &bits);
  z->fixed_ready = true;
}

/* ---- decoding ------------------------------------------------------------ */

static inline uint64_t load64le(const uint8_t *p) {
  uint64_t v;
  memcpy(&v, p, sizeof v);
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
  v = __builtin_bswap64(v);
#endif
  return v;
}

static inline void copy8(uint8_t *dst, const uint8_t *src) { memcpy(dst, src, 8); }

/* The bit reader, as local variables of inflate_body so that they stay
 * in registers. */
#define BITMASK(n) (((uint64_t)1 << (n)) - 1)
#define CONSUME(n)                                                                                 \
  do {                                                                                             \
    bitbuf >>= (n);                                                                                \
    bitsleft -= (n);                                                                               \
  } while (0)
/* At least 56 bits in bitbuf.  The fast path loads 8 bytes and keeps the
 * whole bytes that fit; the bits above bitsleft are then the input's next
 * bits (or zeros), so OR-ing the same bytes in again changes nothing. */
#define REFILL()                                                                                   \
  do {                                                                                             \
    if (likely(in_end - in_next >= 8)) {                                                           \
      bitbuf |= load64le(in_next) << bitsleft;                                                     \
      in_next += (63 - bitsleft) >> 3;                                                             \
      bitsleft |= 56;                                                                              \
    } else {                                                                                       \
      while (bitsleft < 56) {                                                                      \
        if (in_next < in_end)                                                                      \
          bitbuf |= (uint64_t)*in_next++ << bitsleft;                                              \
        else if (++overread > 8)                                                                   \
          return SOUK_EPARSE; /* a zero byte past the end was used */                              \
        bitsleft += 8;                                                                             \
      }                                                                                            \
    }                                                                                              \
  } while (0)
/* The value of a length or distance entry, from the bits before it was
 * consumed. */
#define VALUE(e, saved) (((e) >> 16) + (unsigned)(((saved)&BITMASK((e)&0xff)) >> (((e) >> 8) & 15)))

/* sb_inflate_raw's work, inlined into one function per instruction set
 * (see the end of this section). */
static inline __attribute__((always_inline)) int inflate_body(sb_inflate_t *z, const uint8_t *in,
                                                              size_t in_len, uint8_t *out,
                                                              size_t out_cap, size_t *out_len,
                                                              size_t *in_used) {
  const uint8_t *in_next = in, *const in_end = in + in_len;
  uint8_t *out_next = out, *const out_end = out + out_cap;
  uint64_t bitbuf = 0;
  unsigned bitsleft = 0, overread = 0;
  bool final;

  do {
    REFILL();
    final = bitbuf & 1;
    unsigned type = (bitbuf >> 1) & 3;
    CONSUME(3);
    const uint32_t *ll, *dt;
    unsigned ll_bits, dt_bits;

    if (type == 0) {
      /* Stored: to the byte boundary, LEN and its complement NLEN, then
       * LEN bytes as they are, read from the input directly. */
      CONSUME(bitsleft & 7);
      REFILL();
      unsigned len = bitbuf & 0xffff, nlen = (bitbuf >> 16) & 0xffff;
      CONSUME(32);
      if (len != (~nlen & 0xffff)) return SOUK_EPARSE;
      unsigned buffered = bitsleft / 8;
      if (overread > buffered) return SOUK_EPARSE;
      in_next -= buffered - overread;
      bitbuf = 0;
      bitsleft = 0;
      overread = 0;
      if (len > (size_t)(in_end - in_next) || len > (size_t)(out_end - out_next))
        return SOUK_EPARSE;
      memcpy(out_next, in_next, len);
      in_next += len;
      out_next += len;
      continue;
    } else if (type == 1) {
      if (!z->fixed_ready) build_fixed(z);
      ll = z->fixed_litlen;
      ll_bits = 9;
      dt = z->fixed_dist;
      dt_bits = 5;
    } else if (type == 2) {
      /* Dynamic: the counts, the precode's lengths, then the lengths of
       * both codes, sent with the precode as one sequence (a repeat may
       * run from one code into the other). */
      unsigned hlit = (bitbuf & 31) + 257, hdist = ((bitbuf >> 5) & 31) + 1;
      unsigned hclen = ((bitbuf >> 10) & 15) + 4;
      CONSUME(14);
      if (hlit > 286 || hdist > 30) return SOUK_EPARSE;
      uint8_t lens[LITLEN_SYMS + DIST_SYMS + 16];
      uint16_t store[LITLEN_SYMS];
      code_t c;
      memset(lens, 0, PRECODE_SYMS);
      REFILL();
      for (unsigned i = 0; i < hclen; i++) {
        if (i == 16) REFILL();
        lens[precode_order[i]] = bitbuf & 7;
        CONSUME(3);
      }
      unsigned pre_bits;
      code_sort(&c, lens, PRECODE_SYMS, store);
      if (!build_table(z->precode, &c, precode_results, PRECODE_BITS, false, &pre_bits))
        return SOUK_EPARSE;

      /* Each length is also listed, as it is read, under its value
       * (z->by_len): the literal/length code's canonical order without a
       * sort.  The lookups here are one chain of dependent instructions,
       * which leaves the processor room for the lists.  Zeros are listed
       * only when sent one by one, and that list is never read; each
       * list's distances come after all its literal/length symbols. */
      const uint32_t *pre = z->precode;
      uint64_t pre_mask = BITMASK(pre_bits);
      unsigned n = hlit + hdist;
      unsigned listed[MAX_CODE_LEN + 1] = {0};
      for (unsigned i = 0; i < n;) {
        REFILL();
        uint32_t e = pre[bitbuf & pre_mask];
        if (e & E_EXC) return SOUK_EPARSE; /* the empty precode */
        uint64_t saved = bitbuf;
        CONSUME(e & 0xff);
        unsigned x = VALUE(e, saved), rep = x & 0xff, value = x >> 8;
        if (rep == 1) { /* a length (a repeat is at least 3) */
          z->by_len[value][listed[value]++] = (uint16_t)i;
          lens[i++] = (uint8_t)value;
          continue;
        }
        if (e & E_PREV) {
          if (i == 0) return SOUK_EPARSE; /* nothing to repeat */
          value = lens[i - 1];
        }
        if (rep > n - i) return SOUK_EPARSE;
        /* 16 at a time, into lens' slack past the end: what lands past
         * the run is overwritten by the lengths that follow it. */
        uint64_t v = value * 0x0101010101010101ull;
        for (unsigned j = 0; j < rep; j += 16) {
          memcpy(lens + i + j, &v, 8);
          memcpy(lens + i + j + 8, &v, 8);
        }
        if (value)
          for (unsigned j = 0; j < rep; j++)
            z->by_len[value][listed[value]++] = (uint16_t)(i + j);
        i += rep;
      }
      if (lens[256] == 0) return SOUK_EPARSE; /* no end of block */

      /* The distance code from its lengths; the literal/length code is
       * each list but its last entries, the distances. */
      code_sort(&c, lens + hlit, hdist, store);
      if (!build_table(z->dist, &c, dist_results, DIST_BITS, true, &dt_bits)) return SOUK_EPARSE;
      for (unsigned len = 1; len <= MAX_CODE_LEN; len++) {
        c.count[len] = listed[len] - c.count[len];
        c.syms[len] = z->by_len[len];
      }
      c.count[0] = 0;
      if (!build_table(z->litlen, &c, litlen_results, LITLEN_BITS, true, &ll_bits))
        return SOUK_EPARSE;
      ll = z->litlen;
      dt = z->dist;
    } else {
      return SOUK_EPARSE; /* block type 3 */
    }

    /* The block's symbols.  The loop keeps the next entry looked up
     * ahead (e), and consumes an entry's bits before testing what it is,
     * so that the lookup of the next symbol, which is the one chain of
     * dependent instructions here, never waits for a branch.  Each pass
     * starts with at least 56 bits: three literals (15 bits each at most)
     * and the look-up after them, or a length (15 + 5) and a distance
     * (15 + 13). */
    const uint64_t ll_mask = BITMASK(ll_bits), dt_mask = BITMASK(dt_bits);
    REFILL();
    uint32_t e = ll[bitbuf & ll_mask];
    for (;;) {
      uint64_t saved = bitbuf;
      CONSUME(e & 0xff);
      if (e & E_LIT) {
        uint8_t lit = (uint8_t)(e >> 16);
        e = ll[bitbuf & ll_mask];
        *out_next++ = lit;
        if (e & E_LIT) {
          CONSUME(e & 0xff);
          lit = (uint8_t)(e >> 16);
          e = ll[bitbuf & ll_mask];
          *out_next++ = lit;
          if (e & E_LIT) {
            CONSUME(e & 0xff);
            lit = (uint8_t)(e >> 16);
            e = ll[bitbuf & ll_mask];
            *out_next++ = lit;
          }
        }
        /* e came from bits that a refill leaves in place. */
        REFILL();
        if (unlikely(out_next > out_end)) return SOUK_EPARSE;
        continue;
      }
      if (unlikely(e & E_EXC)) {
        if (e & E_SUB) {
          e = ll[(e >> 16) + (bitbuf & BITMASK((e >> 8) & 15))];
          saved = bitbuf;
          CONSUME(e & 0xff);
          if (e & E_LIT) {
            *out_next++ = (uint8_t)(e >> 16);
            if (unlikely(out_next > out_end)) return SOUK_EPARSE;
            REFILL();
            e = ll[bitbuf & ll_mask];
            continue;
          }
        }
        if (e & E_EXC) {
          if (!(e & E_EOB)) return SOUK_EPARSE; /* an invalid code */
          break;
        }
      }
      /* A length, then its distance. */
      unsigned len = VALUE(e, saved);
      uint32_t d = dt[bitbuf & dt_mask];
      if (unlikely(d & E_EXC)) {
        if (!(d & E_SUB)) return SOUK_EPARSE;
        CONSUME(d & 0xff);
        d = dt[(d >> 16) + (bitbuf & BITMASK((d >> 8) & 15))];
        if (d & E_EXC) return SOUK_EPARSE;
      }
      saved = bitbuf;
      CONSUME(d & 0xff);
      size_t dist = VALUE(d, saved);
      REFILL();
      e = ll[bitbuf & ll_mask];
      if (unlikely(dist > (size_t)(out_next - out) || len > (size_t)(out_end - out_next)))
        return SOUK_EPARSE;
      const uint8_t *src = out_next - dist;
      uint8_t *dst = out_next;
      out_next += len;
      if (dist >= 8) {
        /* Each load reads bytes already final: src + 8 <= dst. */
        do {
          copy8(dst, src);
          src += 8;
          dst += 8;
        } while (dst < out_next);
      } else if (dist == 1) {
        uint64_t v = src[0] * 0x0101010101010101ull;
        do {
          memcpy(dst, &v, 8);
          dst += 8;
        } while (dst < out_next);
      } else {
        do
          *dst++ = *src++;
        while (dst < out_next);
      }
    }
  } while (!final);

  unsigned buffered = bitsleft / 8;
  if (overread > buffered) return SOUK_EPARSE;
  *in_used = (size_t)(in_next - in) - (buffered - overread);
  *out_len = (size_t)(out_next - out);
  return 0;
}

/* The body compiled for the baseline instruction set, and on x86 once
 * more for BMI2, chosen by what the CPU has.  (A build for a CPU with BMI2,
 * -march=native, needs no second copy.) */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__BMI2__)
#define INFLATE_BMI2 1
__attribute__((target("bmi2"))) static int inflate_bmi2(sb_inflate_t *z, const uint8_t *in,
                                                        size_t in_len, uint8_t *out, size_t out_cap,
                                                        size_t *out_len, size_t *in_used) {
  return inflate_body(z, in, in_len, out, out_cap, out_len, in_used);
}
#endif

int sb_inflate_raw(sb_inflate_t *z, const uint8_t *in, size_t in_len, uint8_t *out, size_t out_cap,
                   size_t *out_len, size_t *in_used) {
#ifdef INFLATE_BMI2
  if (z->bmi2) return inflate_bmi2(z, in, in_len, out, out_cap, out_len, in_used);
#endif
  return inflate_body(z, in, in_len, out, out_cap, out_len, in_used);
}

/* ---- gzip ---------------------------------------------------------------- */

#define GZ_FHCRC    0x02
#define GZ_FEXTRA   0x04
#define GZ_FNAME    0x08
#define GZ_FCOMMENT 0x10

static inline uint32_t load32le(const uint8_t *p) {
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

int sb_gunzip(sb_inflate_t *z, const uint8_t *in, size_t in_len, uint8_t *out, size_t out_len) {
  /* The header (RFC 1952 section 2.3), as zlib reads it: method 8
   * (deflate), no reserved flag set, the optional fields skipped and the
   * header's own CRC-16 checked when there is one. */
  if (in_len < 18 || in[0] != 0x1f || in[1] != 0x8b || in[2] != 8 || (in[3] & 0xe0))
    return SOUK_EPARSE;
  const uint8_t *p = in + 10, *end = in + in_len;
  unsigned flags = in[3];
  if (flags & GZ_FEXTRA) {
    if (end - p < 2) return SOUK_EPARSE;
    size_t xlen = (size_t)p[0] | (size_t)p[1] << 8;
    p += 2;
    if ((size_t)(end - p) < xlen) return SOUK_EPARSE;
    p += xlen;
  }
  for (unsigned f = GZ_FNAME; f <= GZ_FCOMMENT; f <<= 1) {
    if (!(flags & f)) continue;
    const uint8_t *nul = memchr(p, 0, (size_t)(end - p));
    if (!nul) return SOUK_EPARSE;
    p = nul + 1;
  }
  if (flags & GZ_FHCRC) {
    if (end - p < 2) return SOUK_EPARSE;
    uint32_t crc = libdeflate_crc32(0, in, (size_t)(p - in));
    if ((crc & 0xffff) != ((uint32_t)p[0] | (uint32_t)p[1] << 8)) return SOUK_EPARSE;
    p += 2;
  }
  if (end - p < 8) return SOUK_EPARSE;

  /* The stream sees the trailer as input too, so that its bit buffer
   * refills a word at a time to the end; the stream must then end exactly
   * 8 bytes before the end. */
  size_t n, used;
  int rc = sb_inflate_raw(z, p, (size_t)(end - p), out, out_len, &n, &used);
  if (rc) return rc;
  if (n != out_len || used != (size_t)(end - p) - 8) return SOUK_EPARSE;
  const uint8_t *t = end - 8;
  if (libdeflate_crc32(0, out, n) != load32le(t) || (uint32_t)n != load32le(t + 4))
    return SOUK_EPARSE;
  return 0;
}

/* ---- state --------------------------------------------------------------- */

sb_inflate_t *sb_inflate_new(void) {
  sb_inflate_t *z = souk_malloc(sizeof *z);
  z->fixed_ready = false;
  z->bmi2 = false;
#ifdef INFLATE_BMI2
  z->bmi2 = __builtin_cpu_supports("bmi2");
#endif
  return z;
}

void sb_inflate_free(sb_inflate_t *z) { souk_free(z); }

void sb_inflate_use_baseline(sb_inflate_t *z) { z->bmi2 = false; }
