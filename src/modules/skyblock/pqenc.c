/* Thrift compact protocol and the RLE / bit-packed hybrid (see pqenc.h). */
#include "pqenc.h"

#include "souk/err.h"

void pq_uleb(souk_buf_t *b, uint64_t v) {
  unsigned char tmp[10];
  size_t n = 0;
  do {
    unsigned char c = v & 0x7F;
    v >>= 7;
    tmp[n++] = (unsigned char)(c | (v ? 0x80 : 0));
  } while (v);
  souk_buf_append(b, tmp, n);
}

void pq_tw_init(pq_tw_t *w, souk_buf_t *b) {
  w->b = b;
  w->depth = 0;
  w->last[0] = 0;
}

void pq_tw_field(pq_tw_t *w, int16_t id, uint8_t t) {
  int16_t delta = (int16_t)(id - w->last[w->depth]);
  if (delta > 0 && delta <= 15) {
    souk_buf_putc(w->b, (char)(delta << 4 | t));
  } else {
    /* The long form: the type alone, then the id as a zigzag varint. */
    souk_buf_putc(w->b, (char)t);
    pq_uleb(w->b, pq_zigzag(id));
  }
  w->last[w->depth] = id;
}

void pq_tw_i32(pq_tw_t *w, int16_t id, int32_t v) {
  pq_tw_field(w, id, PQ_T_I32);
  pq_uleb(w->b, pq_zigzag(v));
}

void pq_tw_i64(pq_tw_t *w, int16_t id, int64_t v) {
  pq_tw_field(w, id, PQ_T_I64);
  pq_uleb(w->b, pq_zigzag(v));
}

void pq_tw_bool(pq_tw_t *w, int16_t id, bool v) { pq_tw_field(w, id, v ? PQ_T_TRUE : PQ_T_FALSE); }

void pq_tw_bin(pq_tw_t *w, int16_t id, const void *p, size_t n) {
  pq_tw_field(w, id, PQ_T_BINARY);
  pq_uleb(w->b, n);
  souk_buf_append(w->b, p, n);
}

static void tw_push(pq_tw_t *w) {
  SOUK_ASSERT(w->depth + 1 < PQ_TW_DEPTH);
  w->last[++w->depth] = 0;
}

void pq_tw_struct(pq_tw_t *w, int16_t id) {
  pq_tw_field(w, id, PQ_T_STRUCT);
  tw_push(w);
}

void pq_tw_end(pq_tw_t *w) {
  souk_buf_putc(w->b, 0); /* STOP */
  if (w->depth > 0) w->depth--;
}

void pq_tw_list(pq_tw_t *w, int16_t id, uint8_t et, size_t n) {
  pq_tw_field(w, id, PQ_T_LIST);
  if (n < 15) {
    souk_buf_putc(w->b, (char)(n << 4 | et));
  } else {
    souk_buf_putc(w->b, (char)(0xF0 | et));
    pq_uleb(w->b, n);
  }
}

void pq_tw_elem_i32(pq_tw_t *w, int32_t v) { pq_uleb(w->b, pq_zigzag(v)); }

void pq_tw_elem_bin(pq_tw_t *w, const void *p, size_t n) {
  pq_uleb(w->b, n);
  souk_buf_append(w->b, p, n);
}

void pq_tw_elem_struct(pq_tw_t *w) { tw_push(w); }

unsigned pq_bit_width(uint32_t max) {
  unsigned w = 1;
  while (w < 32 && (max >> w) != 0)
    w++;
  return w;
}

/* Length of the run of equal values starting at v[i]. */
static size_t run_len(const uint32_t *v, size_t n, size_t i) {
  size_t j = i + 1;
  while (j < n && v[j] == v[i])
    j++;
  return j - i;
}

/* One bit-packed run of v[0..n), n <= 504; padded with zeros to whole
 * groups of 8 (only ever at the stream's end: callers pass whole groups
 * otherwise).  Values are packed least significant bit first. */
static void bitpack(souk_buf_t *b, const uint32_t *v, size_t n, unsigned width) {
  size_t groups = (n + 7) / 8;
  pq_uleb(b, groups << 1 | 1);
  size_t nbytes = groups * width; /* 8 values of width bits = width bytes */
  souk_buf_reserve(b, nbytes);
  unsigned char *o = (unsigned char *)b->data + b->len;
  uint64_t acc = 0;
  unsigned bits = 0;
  size_t k = 0;
  for (size_t i = 0; i < groups * 8; i++) {
    acc |= (uint64_t)(i < n ? v[i] : 0) << bits;
    bits += width;
    while (bits >= 8) {
      o[k++] = (unsigned char)acc;
      acc >>= 8;
      bits -= 8;
    }
  }
  b->len += nbytes;
  b->data[b->len] = '\0';
}

void pq_rle_hybrid(souk_buf_t *b, const uint32_t *v, size_t n, unsigned width) {
  size_t vbytes = (width + 7) / 8;
  size_t i = 0;
  while (i < n) {
    size_t r = run_len(v, n, i);
    if (r >= 8) {
      pq_uleb(b, (uint64_t)r << 1);
      uint32_t x = v[i];
      for (size_t k = 0; k < vbytes; k++)
        souk_buf_putc(b, (char)(x >> (8 * k)));
      i += r;
      continue;
    }
    /* Literal groups of 8 until a run of 8 or more starts at a group
     * boundary, the run holds 63 groups, or the values end. */
    size_t j = i;
    while (j < n && j - i < 63 * 8) {
      j = j + 8 < n ? j + 8 : n;
      if (j < n && run_len(v, n, j) >= 8) break;
    }
    bitpack(b, v + i, j - i, width);
    i = j;
  }
}
