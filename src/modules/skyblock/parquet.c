/* The Parquet writer (see parquet.h for the subset and the spec sections
 * it follows). */
#include "parquet.h"

#include "pqenc.h"
#include "souk/alloc.h"
#include "souk/buf.h"
#include "souk/err.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zstd.h>

/* parquet.thrift enum values used here. */
enum { PT_BOOLEAN = 0, PT_INT32 = 1, PT_INT64 = 2, PT_DOUBLE = 5, PT_BYTE_ARRAY = 6 };
enum { ENC_PLAIN = 0, ENC_RLE = 3, ENC_RLE_DICTIONARY = 8 };
enum { PAGE_DATA = 0, PAGE_DICTIONARY = 2 };
enum { CODEC_UNCOMPRESSED = 0, CODEC_ZSTD = 6 };
enum { CT_UTF8 = 0, CT_DATE = 6, CT_TIMESTAMP_MILLIS = 9 };
enum { REP_REQUIRED = 0, REP_OPTIONAL = 1 };

#define PQ_MAGIC "PAR1"
/* Buffered file output is written out past this size. */
#define PQ_WBUF_FLUSH (256u << 10)

typedef struct pq_col {
  char *name;
  sb_pq_type_t type;
  sb_pq_logical_t logical;
  bool optional;
  bool want_dict;
  /* The current row group's values, PLAIN encoded (booleans one byte
   * each, packed when a page is written); strings keep the offset of each
   * value (its 4-byte length prefix) in offs, with one more slot for the
   * end. */
  souk_buf_t vals;
  uint32_t *offs;
  size_t offs_cap;
  uint8_t *defs; /* OPTIONAL columns: per row, 1 for a value, 0 for null */
  size_t defs_cap;
  size_t nrows; /* rows with a value or a null in this row group */
  size_t nvals; /* non-null values */
  /* The chunk's dictionary while it lasts: entry k is dict.data +
   * doffs[k] (PLAIN, strings with their prefix), idx the entry of each
   * value, ht an open-addressing table of entry + 1. */
  bool dict_on;
  souk_buf_t dict;
  uint32_t *doffs, *idx, *ht;
  size_t ndict, doffs_cap, idx_cap, ht_cap;
} pq_col_t;

/* A row group already written: its ColumnChunk structs serialised. */
typedef struct pq_rg {
  souk_buf_t chunks;
  int64_t rows, bytes;
} pq_rg_t;

struct sb_pq_writer {
  char *final_path, *tmp_path;
  int fd;
  bool failed;
  uint64_t off; /* file offset of the next byte written */
  souk_buf_t wbuf;
  sb_pq_opts_t opts;
  sb_pq_kv_t *meta;
  pq_col_t *cols;
  size_t ncols;
  size_t rg_rows;
  uint64_t total_rows;
  pq_rg_t *rgs;
  size_t nrgs, rgs_cap;
  ZSTD_CCtx *zc;
  /* Scratch reused page after page. */
  souk_buf_t page, zpage, hdr, levels;
  uint32_t *u32;
  size_t u32_cap;
};

/* ---- small helpers ----------------------------------------------------- */

static void put_le(souk_buf_t *b, uint64_t v, size_t n) {
  unsigned char t[8];
  for (size_t i = 0; i < n; i++)
    t[i] = (unsigned char)(v >> (8 * i));
  souk_buf_append(b, t, n);
}

static uint64_t get_le(const void *p, size_t n) {
  const unsigned char *s = p;
  uint64_t v = 0;
  for (size_t i = 0; i < n; i++)
    v |= (uint64_t)s[i] << (8 * i);
  return v;
}

/* Grow an array to hold at least n elements. */
static void *grow_arr(void *p, size_t *cap, size_t n, size_t size) {
  if (n <= *cap) return p;
  size_t c = *cap ? *cap : 64;
  while (c < n)
    c *= 2;
  *cap = c;
  return souk_reallocarray(p, c, size);
}

/* Bytes of one PLAIN value of a fixed-size type (booleans buffered as one
 * byte); 0 for strings. */
static size_t fixed_size(sb_pq_type_t t) {
  switch (t) {
  case SB_PQ_INT32:
    return 4;
  case SB_PQ_INT64:
  case SB_PQ_DOUBLE:
    return 8;
  case SB_PQ_BOOL:
    return 1;
  default:
    return 0;
  }
}

static int physical(sb_pq_type_t t) {
  switch (t) {
  case SB_PQ_INT32:
    return PT_INT32;
  case SB_PQ_INT64:
    return PT_INT64;
  case SB_PQ_DOUBLE:
    return PT_DOUBLE;
  case SB_PQ_BOOL:
    return PT_BOOLEAN;
  default:
    return PT_BYTE_ARRAY;
  }
}

static uint64_t fnv1a(const void *p, size_t n) {
  const unsigned char *s = p;
  uint64_t h = 1469598103934665603ull;
  for (size_t i = 0; i < n; i++)
    h = (h ^ s[i]) * 1099511628211ull;
  return h ^ (h >> 29);
}

/* ---- file output ------------------------------------------------------- */

static int wflush(sb_pq_writer_t *w) {
  size_t done = 0;
  while (done < w->wbuf.len) {
    ssize_t n = write(w->fd, w->wbuf.data + done, w->wbuf.len - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      w->failed = true;
      return SOUK_EIO;
    }
    done += (size_t)n;
  }
  souk_buf_reset(&w->wbuf);
  return 0;
}

static int wput(sb_pq_writer_t *w, const void *p, size_t n) {
  souk_buf_append(&w->wbuf, p, n);
  w->off += n;
  return w->wbuf.len >= PQ_WBUF_FLUSH ? wflush(w) : 0;
}

/* ---- dictionary -------------------------------------------------------- */

static void dict_drop(pq_col_t *c) {
  c->dict_on = false;
  souk_buf_free(&c->dict);
  souk_free(c->doffs);
  souk_free(c->idx);
  souk_free(c->ht);
  c->doffs = c->idx = c->ht = NULL;
  c->ndict = c->doffs_cap = c->idx_cap = c->ht_cap = 0;
}

static size_t dict_entry_len(const pq_col_t *c, size_t k) {
  size_t end = k + 1 < c->ndict ? c->doffs[k + 1] : c->dict.len;
  return end - c->doffs[k];
}

static void dict_rehash(pq_col_t *c, size_t cap) {
  souk_free(c->ht);
  c->ht = souk_calloc(cap, sizeof *c->ht);
  c->ht_cap = cap;
  for (size_t k = 0; k < c->ndict; k++) {
    size_t h = fnv1a(c->dict.data + c->doffs[k], dict_entry_len(c, k)) & (cap - 1);
    while (c->ht[h])
      h = (h + 1) & (cap - 1);
    c->ht[h] = (uint32_t)(k + 1);
  }
}

/* Add one value (its PLAIN bytes p[0..n)) to the chunk's dictionary and
 * record its index; drops the dictionary when it outgrows the limit. */
static void dict_add(sb_pq_writer_t *w, pq_col_t *c, const void *p, size_t n) {
  if (c->ht_cap == 0) dict_rehash(c, 1024);
  size_t mask = c->ht_cap - 1, h = fnv1a(p, n) & mask;
  uint32_t k;
  for (;;) {
    k = c->ht[h];
    if (k == 0) break;
    if (dict_entry_len(c, k - 1) == n && memcmp(c->dict.data + c->doffs[k - 1], p, n) == 0) break;
    h = (h + 1) & mask;
  }
  if (k == 0) {
    if (c->dict.len + n > w->opts.dict_max_bytes || c->ndict >= UINT32_MAX - 1) {
      dict_drop(c);
      return;
    }
    c->doffs = grow_arr(c->doffs, &c->doffs_cap, c->ndict + 1, sizeof *c->doffs);
    c->doffs[c->ndict] = (uint32_t)c->dict.len;
    souk_buf_append(&c->dict, p, n);
    k = (uint32_t)++c->ndict;
    c->ht[h] = k;
    if (c->ndict * 2 > c->ht_cap) dict_rehash(c, c->ht_cap * 2);
  }
  c->idx = grow_arr(c->idx, &c->idx_cap, c->nvals + 1, sizeof *c->idx);
  c->idx[c->nvals] = k - 1;
}

/* ---- values ------------------------------------------------------------ */

static int put_begin(sb_pq_writer_t *w, size_t col, sb_pq_type_t type, pq_col_t **out) {
  if (w->failed) return SOUK_EIO;
  if (col >= w->ncols) return SOUK_EINVAL;
  pq_col_t *c = &w->cols[col];
  if (c->type != type || c->nrows != w->rg_rows) return SOUK_EINVAL;
  *out = c;
  return 0;
}

static void put_def(pq_col_t *c, uint8_t d) {
  if (!c->optional) return;
  c->defs = grow_arr(c->defs, &c->defs_cap, c->nrows + 1, 1);
  c->defs[c->nrows] = d;
}

/* Store a non-null value whose PLAIN bytes are p[0..n), after a 4-byte
 * little-endian length prefix for strings. */
static void put_plain(sb_pq_writer_t *w, pq_col_t *c, const void *p, size_t n) {
  put_def(c, 1);
  size_t at = c->vals.len;
  if (c->type == SB_PQ_STRING) {
    c->offs = grow_arr(c->offs, &c->offs_cap, c->nvals + 2, sizeof *c->offs);
    c->offs[c->nvals] = (uint32_t)at;
    put_le(&c->vals, n, 4);
  }
  souk_buf_append(&c->vals, p, n);
  if (c->dict_on) dict_add(w, c, c->vals.data + at, c->vals.len - at);
  c->nvals++;
  c->nrows++;
}

/* A fixed-size value: the low fixed_size(type) bytes of bits, PLAIN
 * (little-endian). */
static int put_fixed(sb_pq_writer_t *w, size_t col, sb_pq_type_t type, uint64_t bits) {
  pq_col_t *c;
  int rc = put_begin(w, col, type, &c);
  if (rc) return rc;
  unsigned char b[8];
  size_t n = fixed_size(type);
  for (size_t i = 0; i < n; i++)
    b[i] = (unsigned char)(bits >> (8 * i));
  put_plain(w, c, b, n);
  return 0;
}

int sb_pq_put_i32(sb_pq_writer_t *w, size_t col, int32_t v) {
  return put_fixed(w, col, SB_PQ_INT32, (uint32_t)v);
}

int sb_pq_put_i64(sb_pq_writer_t *w, size_t col, int64_t v) {
  return put_fixed(w, col, SB_PQ_INT64, (uint64_t)v);
}

int sb_pq_put_f64(sb_pq_writer_t *w, size_t col, double v) {
  uint64_t bits;
  memcpy(&bits, &v, 8);
  return put_fixed(w, col, SB_PQ_DOUBLE, bits);
}

int sb_pq_put_bool(sb_pq_writer_t *w, size_t col, bool v) {
  return put_fixed(w, col, SB_PQ_BOOL, v ? 1 : 0);
}

int sb_pq_put_str(sb_pq_writer_t *w, size_t col, const char *s, size_t len) {
  pq_col_t *c;
  int rc = put_begin(w, col, SB_PQ_STRING, &c);
  if (rc) return rc;
  if (len > UINT32_MAX / 2) return SOUK_EINVAL;
  /* The STRING annotation promises UTF-8 to every reader. */
  const unsigned char *u = (const unsigned char *)s;
  for (size_t i = 0; i < len;) {
    size_t l = souk_utf8_seq(u + i, len - i);
    if (l == 0) return SOUK_EINVAL;
    i += l;
  }
  if (c->vals.len + 4 + len > UINT32_MAX) return SOUK_ETOOBIG;
  put_plain(w, c, s, len);
  return 0;
}

int sb_pq_put_null(sb_pq_writer_t *w, size_t col) {
  if (w->failed) return SOUK_EIO;
  if (col >= w->ncols) return SOUK_EINVAL;
  pq_col_t *c = &w->cols[col];
  if (!c->optional || c->nrows != w->rg_rows) return SOUK_EINVAL;
  put_def(c, 0);
  c->nrows++;
  return 0;
}

/* Take back the value (or null) a column got in an incomplete row. */
static void unput(pq_col_t *c) {
  c->nrows--;
  if (c->optional && c->defs[c->nrows] == 0) return;
  c->nvals--;
  if (c->type == SB_PQ_STRING)
    c->vals.len = c->offs[c->nvals];
  else
    c->vals.len -= fixed_size(c->type);
  /* A dictionary entry the value added stays: unused entries are valid. */
}

/* ---- statistics -------------------------------------------------------- */

typedef struct pq_stat {
  int64_t nulls;
  bool has; /* min and max are set */
  int64_t imin, imax;
  double dmin, dmax;
  const char *smin, *smax; /* strings: into the column's buffer */
  size_t smin_n, smax_n;
} pq_stat_t;

static int str_cmp(const char *a, size_t an, const char *b, size_t bn) {
  int c = memcmp(a, b, an < bn ? an : bn);
  if (c) return c;
  return an < bn ? -1 : an > bn;
}

/* Fold value k of column c into s. */
static void stat_add(pq_stat_t *s, const pq_col_t *c, size_t k) {
  switch (c->type) {
  case SB_PQ_STRING: {
    const char *p = c->vals.data + c->offs[k] + 4;
    size_t n = c->offs[k + 1] - c->offs[k] - 4;
    if (!s->has || str_cmp(p, n, s->smin, s->smin_n) < 0) s->smin = p, s->smin_n = n;
    if (!s->has || str_cmp(p, n, s->smax, s->smax_n) > 0) s->smax = p, s->smax_n = n;
    break;
  }
  case SB_PQ_DOUBLE: {
    uint64_t bits = get_le(c->vals.data + k * 8, 8);
    double d;
    memcpy(&d, &bits, 8);
    if (isnan(d)) return;
    if (!s->has || d < s->dmin) s->dmin = d;
    if (!s->has || d > s->dmax) s->dmax = d;
    break;
  }
  default: {
    size_t sz = fixed_size(c->type);
    uint64_t u = get_le(c->vals.data + k * sz, sz);
    int64_t v = sz == 4 ? (int32_t)(uint32_t)u : sz == 8 ? (int64_t)u : (int64_t)u;
    if (!s->has || v < s->imin) s->imin = v;
    if (!s->has || v > s->imax) s->imax = v;
    break;
  }
  }
  s->has = true;
}

static void stat_merge(pq_stat_t *into, const pq_stat_t *s, sb_pq_type_t t) {
  into->nulls += s->nulls;
  if (!s->has) return;
  if (!into->has) {
    int64_t nulls = into->nulls;
    *into = *s;
    into->nulls = nulls;
    return;
  }
  if (t == SB_PQ_STRING) {
    if (str_cmp(s->smin, s->smin_n, into->smin, into->smin_n) < 0)
      into->smin = s->smin, into->smin_n = s->smin_n;
    if (str_cmp(s->smax, s->smax_n, into->smax, into->smax_n) > 0)
      into->smax = s->smax, into->smax_n = s->smax_n;
  } else if (t == SB_PQ_DOUBLE) {
    if (s->dmin < into->dmin) into->dmin = s->dmin;
    if (s->dmax > into->dmax) into->dmax = s->dmax;
  } else {
    if (s->imin < into->imin) into->imin = s->imin;
    if (s->imax > into->imax) into->imax = s->imax;
  }
}

/* One bound's PLAIN bytes (strings without their length prefix). */
static void stat_bound(souk_buf_t *b, const pq_stat_t *s, sb_pq_type_t t, bool max) {
  souk_buf_reset(b);
  switch (t) {
  case SB_PQ_STRING:
    souk_buf_append(b, max ? s->smax : s->smin, max ? s->smax_n : s->smin_n);
    break;
  case SB_PQ_DOUBLE: {
    double d = max ? s->dmax : s->dmin;
    /* parquet.thrift ColumnOrder: a zero bound may stand for either
     * zero, so write -0.0 as a minimum and +0.0 as a maximum. */
    if (d == 0) d = max ? 0.0 : -0.0;
    uint64_t bits;
    memcpy(&bits, &d, 8);
    put_le(b, bits, 8);
    break;
  }
  default:
    put_le(b, (uint64_t)(max ? s->imax : s->imin), fixed_size(t));
    break;
  }
}

/* Statistics struct field id in the enclosing struct. */
static void stat_write(pq_tw_t *tw, int16_t id, const pq_stat_t *s, sb_pq_type_t t) {
  souk_buf_t mn = {0}, mx = {0};
  pq_tw_struct(tw, id);
  if (s->has) {
    stat_bound(&mn, s, t, false);
    stat_bound(&mx, s, t, true);
    /* The deprecated min/max are defined as signed comparisons: valid for
     * every type here but strings, whose order is unsigned. */
    if (t != SB_PQ_STRING) {
      pq_tw_bin(tw, 1, mx.data, mx.len);
      pq_tw_bin(tw, 2, mn.data, mn.len);
    }
  }
  pq_tw_i64(tw, 3, s->nulls);
  if (s->has) {
    pq_tw_bin(tw, 5, mx.data, mx.len);
    pq_tw_bin(tw, 6, mn.data, mn.len);
  }
  pq_tw_end(tw);
  souk_buf_free(&mn);
  souk_buf_free(&mx);
}

/* ---- pages and column chunks ------------------------------------------- */

/* What a page header says besides its sizes. */
typedef struct pq_page {
  int type; /* PAGE_DATA or PAGE_DICTIONARY */
  int64_t num_values;
  int encoding;
  const pq_stat_t *stat; /* data pages */
  sb_pq_type_t vtype;
} pq_page_t;

/* Compress the body in w->page (unless the file is uncompressed), then
 * write the page header (parquet.thrift PageHeader) and the payload.
 * Adds both sizes, header included, to *uncomp and *comp. */
static int emit_page(sb_pq_writer_t *w, const pq_page_t *pg, int64_t *uncomp, int64_t *comp) {
  const char *payload = w->page.data;
  size_t plen = w->page.len;
  if (!w->opts.uncompressed) {
    size_t bound = ZSTD_compressBound(w->page.len);
    souk_buf_reset(&w->zpage);
    souk_buf_reserve(&w->zpage, bound);
    size_t z = ZSTD_compressCCtx(w->zc, w->zpage.data, bound, w->page.data, w->page.len,
                                 w->opts.zstd_level);
    if (ZSTD_isError(z)) return SOUK_EIO;
    payload = w->zpage.data;
    plen = z;
  }
  if (w->page.len > INT32_MAX || plen > INT32_MAX || pg->num_values > INT32_MAX)
    return SOUK_ETOOBIG;
  souk_buf_reset(&w->hdr);
  pq_tw_t tw;
  pq_tw_init(&tw, &w->hdr);
  pq_tw_i32(&tw, 1, pg->type);
  pq_tw_i32(&tw, 2, (int32_t)w->page.len);
  pq_tw_i32(&tw, 3, (int32_t)plen);
  if (pg->type == PAGE_DATA) {
    pq_tw_struct(&tw, 5); /* DataPageHeader */
    pq_tw_i32(&tw, 1, (int32_t)pg->num_values);
    pq_tw_i32(&tw, 2, pg->encoding);
    pq_tw_i32(&tw, 3, ENC_RLE); /* definition levels */
    pq_tw_i32(&tw, 4, ENC_RLE); /* repetition levels (none: flat schema) */
    stat_write(&tw, 5, pg->stat, pg->vtype);
    pq_tw_end(&tw);
  } else {
    pq_tw_struct(&tw, 7); /* DictionaryPageHeader */
    pq_tw_i32(&tw, 1, (int32_t)pg->num_values);
    pq_tw_i32(&tw, 2, ENC_PLAIN);
    pq_tw_end(&tw);
  }
  pq_tw_end(&tw);
  int rc = wput(w, w->hdr.data, w->hdr.len);
  if (!rc) rc = wput(w, payload, plen);
  *uncomp += (int64_t)(w->hdr.len + w->page.len);
  *comp += (int64_t)(w->hdr.len + plen);
  return rc;
}

/* The body of the data page holding rows [r0, r) and values [v0, v). */
static void page_body(sb_pq_writer_t *w, const pq_col_t *c, size_t r0, size_t r, size_t v0,
                      size_t v, bool use_dict) {
  souk_buf_reset(&w->page);
  if (c->optional) {
    /* Definition levels, max level 1: a length, then the hybrid. */
    w->u32 = grow_arr(w->u32, &w->u32_cap, r - r0, sizeof *w->u32);
    for (size_t i = r0; i < r; i++)
      w->u32[i - r0] = c->defs[i];
    souk_buf_reset(&w->levels);
    pq_rle_hybrid(&w->levels, w->u32, r - r0, 1);
    put_le(&w->page, w->levels.len, 4);
    souk_buf_append(&w->page, w->levels.data, w->levels.len);
  }
  if (use_dict) {
    unsigned width = pq_bit_width((uint32_t)(c->ndict - 1));
    souk_buf_putc(&w->page, (char)width);
    pq_rle_hybrid(&w->page, c->idx + v0, v - v0, width);
  } else if (c->type == SB_PQ_BOOL) {
    /* PLAIN booleans: one bit each, least significant bit first. */
    size_t n = v - v0, nbytes = (n + 7) / 8;
    souk_buf_reserve(&w->page, nbytes);
    unsigned char *o = (unsigned char *)w->page.data + w->page.len;
    memset(o, 0, nbytes);
    for (size_t i = 0; i < n; i++)
      if (c->vals.data[v0 + i]) o[i / 8] |= (unsigned char)(1u << (i % 8));
    w->page.len += nbytes;
  } else if (c->type == SB_PQ_STRING) {
    souk_buf_append(&w->page, c->vals.data + c->offs[v0], c->offs[v] - c->offs[v0]);
  } else {
    size_t sz = fixed_size(c->type);
    souk_buf_append(&w->page, c->vals.data + v0 * sz, (v - v0) * sz);
  }
}

/* Write column c's chunk of the current row group: a dictionary page if
 * the dictionary lasted, then data pages cut at page_rows rows or once
 * page_bytes of values are in; then serialise its ColumnChunk (with the
 * offsets now known) into rg->chunks. */
static int write_chunk(sb_pq_writer_t *w, pq_col_t *c, pq_rg_t *rg) {
  int64_t start = (int64_t)w->off, uncomp = 0, comp = 0;
  bool use_dict = c->dict_on && c->ndict > 0;
  int rc;
  if (c->type == SB_PQ_STRING) {
    c->offs = grow_arr(c->offs, &c->offs_cap, c->nvals + 1, sizeof *c->offs);
    c->offs[c->nvals] = (uint32_t)c->vals.len;
  }
  if (use_dict) {
    souk_buf_reset(&w->page);
    souk_buf_append(&w->page, c->dict.data, c->dict.len);
    pq_page_t pg = {.type = PAGE_DICTIONARY, .num_values = (int64_t)c->ndict};
    if ((rc = emit_page(w, &pg, &uncomp, &comp))) return rc;
  }
  int64_t data_off = (int64_t)w->off;
  pq_stat_t chunk = {0};
  size_t r0 = 0, v0 = 0, sz = fixed_size(c->type), npages = 0;
  while (r0 < c->nrows) {
    size_t r = r0, v = v0, bytes = 0;
    while (r < c->nrows && r - r0 < w->opts.page_rows && bytes < w->opts.page_bytes) {
      if (!c->optional || c->defs[r]) {
        bytes += sz ? sz : c->offs[v + 1] - c->offs[v];
        v++;
      }
      r++;
    }
    pq_stat_t ps = {.nulls = (int64_t)((r - r0) - (v - v0))};
    for (size_t k = v0; k < v; k++)
      stat_add(&ps, c, k);
    page_body(w, c, r0, r, v0, v, use_dict);
    pq_page_t pg = {.type = PAGE_DATA,
                    .num_values = (int64_t)(r - r0),
                    .encoding = use_dict ? ENC_RLE_DICTIONARY : ENC_PLAIN,
                    .stat = &ps,
                    .vtype = c->type};
    if ((rc = emit_page(w, &pg, &uncomp, &comp))) return rc;
    stat_merge(&chunk, &ps, c->type);
    npages++;
    r0 = r;
    v0 = v;
  }

  pq_tw_t tw;
  pq_tw_init(&tw, &rg->chunks);
  /* ColumnChunk.file_offset: where the chunk starts, as writers set it. */
  pq_tw_i64(&tw, 2, start);
  pq_tw_struct(&tw, 3); /* ColumnMetaData */
  pq_tw_i32(&tw, 1, physical(c->type));
  pq_tw_list(&tw, 2, PQ_T_I32, use_dict ? 3 : 2);
  pq_tw_elem_i32(&tw, ENC_PLAIN);
  pq_tw_elem_i32(&tw, ENC_RLE);
  if (use_dict) pq_tw_elem_i32(&tw, ENC_RLE_DICTIONARY);
  pq_tw_list(&tw, 3, PQ_T_BINARY, 1);
  pq_tw_elem_bin(&tw, c->name, strlen(c->name));
  pq_tw_i32(&tw, 4, w->opts.uncompressed ? CODEC_UNCOMPRESSED : CODEC_ZSTD);
  pq_tw_i64(&tw, 5, (int64_t)c->nrows);
  pq_tw_i64(&tw, 6, uncomp);
  pq_tw_i64(&tw, 7, comp);
  pq_tw_i64(&tw, 9, data_off);
  if (use_dict) pq_tw_i64(&tw, 11, start);
  stat_write(&tw, 12, &chunk, c->type);
  /* encoding_stats: lets a reader see that every data page is
   * dictionary encoded without reading them. */
  pq_tw_list(&tw, 13, PQ_T_STRUCT, use_dict ? 2 : 1);
  if (use_dict) {
    pq_tw_elem_struct(&tw);
    pq_tw_i32(&tw, 1, PAGE_DICTIONARY);
    pq_tw_i32(&tw, 2, ENC_PLAIN);
    pq_tw_i32(&tw, 3, 1);
    pq_tw_end(&tw);
  }
  pq_tw_elem_struct(&tw);
  pq_tw_i32(&tw, 1, PAGE_DATA);
  pq_tw_i32(&tw, 2, use_dict ? ENC_RLE_DICTIONARY : ENC_PLAIN);
  pq_tw_i32(&tw, 3, (int32_t)npages);
  pq_tw_end(&tw);
  pq_tw_end(&tw); /* ColumnMetaData */
  pq_tw_end(&tw); /* ColumnChunk */
  rg->bytes += uncomp;
  return 0;
}

static void col_reset(pq_col_t *c) {
  souk_buf_reset(&c->vals);
  c->nrows = c->nvals = 0;
  dict_drop(c);
  c->dict_on = c->want_dict;
}

/* Write the buffered rows as one row group. */
static int flush_rg(sb_pq_writer_t *w) {
  if (w->rg_rows == 0) return 0;
  w->rgs = grow_arr(w->rgs, &w->rgs_cap, w->nrgs + 1, sizeof *w->rgs);
  pq_rg_t *rg = &w->rgs[w->nrgs++];
  *rg = (pq_rg_t){.rows = (int64_t)w->rg_rows};
  for (size_t i = 0; i < w->ncols; i++) {
    int rc = write_chunk(w, &w->cols[i], rg);
    if (rc) {
      w->failed = true;
      return SOUK_EIO;
    }
    col_reset(&w->cols[i]);
  }
  w->rg_rows = 0;
  return 0;
}

int sb_pq_row_end(sb_pq_writer_t *w) {
  if (w->failed) return SOUK_EIO;
  bool complete = true;
  for (size_t i = 0; i < w->ncols; i++)
    complete &= w->cols[i].nrows == w->rg_rows + 1;
  if (!complete) {
    for (size_t i = 0; i < w->ncols; i++)
      if (w->cols[i].nrows == w->rg_rows + 1) unput(&w->cols[i]);
    return SOUK_EINVAL;
  }
  w->rg_rows++;
  w->total_rows++;
  return w->rg_rows >= w->opts.row_group_rows ? flush_rg(w) : 0;
}

uint64_t sb_pq_rows(const sb_pq_writer_t *w) { return w->total_rows; }

/* ---- the footer -------------------------------------------------------- */

static void schema_leaf(pq_tw_t *tw, const pq_col_t *c) {
  pq_tw_elem_struct(tw);
  pq_tw_i32(tw, 1, physical(c->type));
  pq_tw_i32(tw, 3, c->optional ? REP_OPTIONAL : REP_REQUIRED);
  pq_tw_bin(tw, 4, c->name, strlen(c->name));
  /* LogicalType, with the ConvertedType older readers know it by. */
  if (c->type == SB_PQ_STRING) {
    pq_tw_i32(tw, 6, CT_UTF8);
    pq_tw_struct(tw, 10);
    pq_tw_struct(tw, 1); /* StringType */
    pq_tw_end(tw);
    pq_tw_end(tw);
  } else if (c->logical == SB_PQ_LT_TIMESTAMP_MS) {
    pq_tw_i32(tw, 6, CT_TIMESTAMP_MILLIS);
    pq_tw_struct(tw, 10);
    pq_tw_struct(tw, 8); /* TimestampType */
    pq_tw_bool(tw, 1, true);
    pq_tw_struct(tw, 2); /* TimeUnit */
    pq_tw_struct(tw, 1); /* MilliSeconds */
    pq_tw_end(tw);
    pq_tw_end(tw);
    pq_tw_end(tw);
    pq_tw_end(tw);
  } else if (c->logical == SB_PQ_LT_DATE) {
    pq_tw_i32(tw, 6, CT_DATE);
    pq_tw_struct(tw, 10);
    pq_tw_struct(tw, 6); /* DateType */
    pq_tw_end(tw);
    pq_tw_end(tw);
  }
  pq_tw_end(tw);
}

static void footer(sb_pq_writer_t *w, souk_buf_t *f) {
  pq_tw_t tw;
  pq_tw_init(&tw, f);
  pq_tw_i32(&tw, 1, 1); /* version */
  pq_tw_list(&tw, 2, PQ_T_STRUCT, w->ncols + 1);
  pq_tw_elem_struct(&tw);
  pq_tw_bin(&tw, 4, "schema", 6);
  pq_tw_i32(&tw, 5, (int32_t)w->ncols);
  pq_tw_end(&tw);
  for (size_t i = 0; i < w->ncols; i++)
    schema_leaf(&tw, &w->cols[i]);
  pq_tw_i64(&tw, 3, (int64_t)w->total_rows);
  pq_tw_list(&tw, 4, PQ_T_STRUCT, w->nrgs);
  for (size_t i = 0; i < w->nrgs; i++) {
    pq_tw_elem_struct(&tw);
    pq_tw_list(&tw, 1, PQ_T_STRUCT, w->ncols);
    /* Each ColumnChunk was serialised as a struct of its own, which is
     * byte for byte what it is as a list element. */
    souk_buf_append(f, w->rgs[i].chunks.data, w->rgs[i].chunks.len);
    pq_tw_i64(&tw, 2, w->rgs[i].bytes);
    pq_tw_i64(&tw, 3, w->rgs[i].rows);
    pq_tw_end(&tw);
  }
  if (w->opts.nmeta) {
    pq_tw_list(&tw, 5, PQ_T_STRUCT, w->opts.nmeta);
    for (size_t i = 0; i < w->opts.nmeta; i++) {
      pq_tw_elem_struct(&tw);
      pq_tw_bin(&tw, 1, w->meta[i].key, strlen(w->meta[i].key));
      pq_tw_bin(&tw, 2, w->meta[i].value, strlen(w->meta[i].value));
      pq_tw_end(&tw);
    }
  }
  const char *by = "souk version " SOUK_VERSION;
  pq_tw_bin(&tw, 6, by, strlen(by));
  /* column_orders: must accompany min_value / max_value; TypeDefinedOrder
   * for every column. */
  pq_tw_list(&tw, 7, PQ_T_STRUCT, w->ncols);
  for (size_t i = 0; i < w->ncols; i++) {
    pq_tw_elem_struct(&tw);
    pq_tw_struct(&tw, 1);
    pq_tw_end(&tw);
    pq_tw_end(&tw);
  }
  pq_tw_end(&tw);
}

/* ---- open, close, abort ------------------------------------------------ */

static void writer_free(sb_pq_writer_t *w) {
  for (size_t i = 0; i < w->ncols; i++) {
    pq_col_t *c = &w->cols[i];
    souk_free(c->name);
    souk_buf_free(&c->vals);
    souk_free(c->offs);
    souk_free(c->defs);
    dict_drop(c);
  }
  for (size_t i = 0; i < w->nrgs; i++)
    souk_buf_free(&w->rgs[i].chunks);
  for (size_t i = 0; i < w->opts.nmeta; i++) {
    souk_free((char *)w->meta[i].key);
    souk_free((char *)w->meta[i].value);
  }
  souk_free(w->meta);
  souk_free(w->rgs);
  souk_free(w->cols);
  if (w->zc) ZSTD_freeCCtx(w->zc);
  souk_buf_free(&w->wbuf);
  souk_buf_free(&w->page);
  souk_buf_free(&w->zpage);
  souk_buf_free(&w->hdr);
  souk_buf_free(&w->levels);
  souk_free(w->u32);
  souk_free(w->final_path);
  souk_free(w->tmp_path);
  souk_free(w);
}

static int fsync_dir(const char *dir) {
  int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return SOUK_EIO;
  int rc = fsync(fd) == 0 ? 0 : SOUK_EIO;
  close(fd);
  return rc;
}

/* The directory part of path ("." when there is none); the caller frees. */
static char *dir_of(const char *path) {
  const char *slash = strrchr(path, '/');
  if (!slash) return souk_strdup(".");
  if (slash == path) return souk_strdup("/");
  return souk_strndup(path, (size_t)(slash - path));
}

/* mkdir -p of path's parent directories; a directory made here is made
 * durable by fsync'ing its own parent. */
static int make_parents(const char *path) {
  char *p = souk_strdup(path);
  int rc = 0;
  for (char *s = strchr(p + 1, '/'); s; s = strchr(s + 1, '/')) {
    *s = '\0';
    if (mkdir(p, 0755) == 0) {
      char *parent = dir_of(p);
      fsync_dir(parent);
      souk_free(parent);
    } else if (errno != EEXIST) {
      rc = SOUK_EIO;
    }
    *s = '/';
    if (rc) break;
  }
  souk_free(p);
  return rc;
}

int sb_pq_open(sb_pq_writer_t **out, const char *final_path, const sb_pq_col_t *cols, size_t ncols,
               const sb_pq_opts_t *opts) {
  *out = NULL;
  if (!final_path || !*final_path || !cols || ncols == 0 || ncols > INT32_MAX) return SOUK_EINVAL;
  for (size_t i = 0; i < ncols; i++) {
    const sb_pq_col_t *c = &cols[i];
    if (!c->name || !*c->name || (unsigned)c->type > SB_PQ_STRING) return SOUK_EINVAL;
    if ((c->logical == SB_PQ_LT_TIMESTAMP_MS && c->type != SB_PQ_INT64) ||
        (c->logical == SB_PQ_LT_DATE && c->type != SB_PQ_INT32) ||
        (unsigned)c->logical > SB_PQ_LT_DATE)
      return SOUK_EINVAL;
    for (size_t j = 0; j < i; j++)
      if (strcmp(cols[j].name, c->name) == 0) return SOUK_EINVAL;
  }
  sb_pq_opts_t o = opts ? *opts : (sb_pq_opts_t){0};
  if (!o.row_group_rows) o.row_group_rows = 1000000;
  if (!o.page_rows) o.page_rows = 20000;
  if (!o.page_bytes) o.page_bytes = 1u << 20;
  if (!o.dict_max_bytes) o.dict_max_bytes = 1u << 20;
  if (!o.zstd_level) o.zstd_level = 3;
  for (size_t i = 0; i < o.nmeta; i++)
    if (!o.meta[i].key || !o.meta[i].value) return SOUK_EINVAL;

  if (make_parents(final_path)) return SOUK_EIO;
  sb_pq_writer_t *w = souk_calloc(1, sizeof *w);
  w->fd = -1;
  w->opts = o;
  w->final_path = souk_strdup(final_path);
  if (o.nmeta) {
    w->meta = souk_calloc(o.nmeta, sizeof *w->meta);
    for (size_t i = 0; i < o.nmeta; i++)
      w->meta[i] = (sb_pq_kv_t){souk_strdup(o.meta[i].key), souk_strdup(o.meta[i].value)};
  }
  w->opts.meta = w->meta;
  w->ncols = ncols;
  w->cols = souk_calloc(ncols, sizeof *w->cols);
  for (size_t i = 0; i < ncols; i++) {
    pq_col_t *c = &w->cols[i];
    c->name = souk_strdup(cols[i].name);
    c->type = cols[i].type;
    c->logical = cols[i].logical;
    c->optional = cols[i].optional;
    c->want_dict = cols[i].dictionary && cols[i].type != SB_PQ_BOOL;
    c->dict_on = c->want_dict;
  }
  if (!o.uncompressed) {
    w->zc = ZSTD_createCCtx();
    if (!w->zc) souk_oom(0);
  }

  /* The temporary file: beside the final one (so the rename stays in one
   * file system), hidden, and unique to this process and writer. */
  static atomic_uint seq;
  char *dir = dir_of(final_path);
  const char *base = strrchr(final_path, '/');
  base = base ? base + 1 : final_path;
  souk_buf_t t = {0};
  souk_buf_printf(&t, "%s/.%s.tmp-%ld-%u", dir, base, (long)getpid(), atomic_fetch_add(&seq, 1));
  souk_free(dir);
  w->tmp_path = souk_buf_steal(&t);
  w->fd = open(w->tmp_path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (w->fd < 0) {
    writer_free(w);
    return SOUK_EIO;
  }
  if (wput(w, PQ_MAGIC, 4)) {
    sb_pq_abort(w);
    return SOUK_EIO;
  }
  *out = w;
  return 0;
}

void sb_pq_abort(sb_pq_writer_t *w) {
  if (!w) return;
  if (w->fd >= 0) close(w->fd);
  unlink(w->tmp_path);
  writer_free(w);
}

int sb_pq_close(sb_pq_writer_t *w) {
  /* A row begun and not ended is dropped, as promised. */
  for (size_t i = 0; i < w->ncols; i++)
    if (w->cols[i].nrows > w->rg_rows) unput(&w->cols[i]);
  int rc = w->failed ? SOUK_EIO : flush_rg(w);
  if (!rc) {
    souk_buf_t f = {0};
    footer(w, &f);
    unsigned char len[4];
    for (int i = 0; i < 4; i++)
      len[i] = (unsigned char)(f.len >> (8 * i));
    rc = wput(w, f.data, f.len);
    if (!rc) rc = wput(w, len, 4);
    if (!rc) rc = wput(w, PQ_MAGIC, 4);
    souk_buf_free(&f);
  }
  if (!rc) rc = wflush(w);
  /* Durable before visible: the data reaches the disk, then the name. */
  if (!rc && fsync(w->fd) != 0) rc = SOUK_EIO;
  if (close(w->fd) != 0 && !rc) rc = SOUK_EIO;
  w->fd = -1;
  if (!rc && rename(w->tmp_path, w->final_path) != 0) rc = SOUK_EIO;
  if (rc) {
    unlink(w->tmp_path);
    writer_free(w);
    return rc;
  }
  char *dir = dir_of(w->final_path);
  rc = fsync_dir(dir);
  souk_free(dir);
  writer_free(w);
  return rc;
}

int sb_pq_hive_path(char *out, size_t cap, const char *root, int64_t unix_ms, const char *part) {
  if (cap) out[0] = '\0';
  if (unix_ms < 0 || !part || strchr(part, '/')) return SOUK_EINVAL;
  time_t t = (time_t)(unix_ms / 1000);
  struct tm tm;
  if (!gmtime_r(&t, &tm)) return SOUK_EINVAL;
  int n = snprintf(out, cap, "%s/date=%04d-%02d-%02d/hour=%02d/part-%s.parquet", root,
                   tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, part);
  if (n < 0 || (size_t)n >= cap) {
    if (cap) out[0] = '\0';
    return SOUK_ETOOBIG;
  }
  return n;
}
