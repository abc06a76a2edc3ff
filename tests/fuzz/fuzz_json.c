/* libFuzzer target for souk's JSON reader and the JSON string writer.
 *
 * Every input is parsed; for a document that parses, every token is walked
 * and every accessor called, the skip links are checked, numbers are
 * cross-checked between accessors, and every string is written back with
 * souk_buf_json_str and parsed again.  Any inconsistency aborts.
 *
 * Run: fuzz_json -dict=tests/fuzz/json.dict tests/fuzz/corpus/json */
#include "souk/alloc.h"
#include "souk/buf.h"
#include "souk/err.h"
#include "souk/json.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CHECK(c)                                                                                   \
  do {                                                                                             \
    if (!(c)) {                                                                                    \
      fprintf(stderr, "fuzz_json: check failed: %s (line %d)\n", #c, __LINE__);                    \
      abort();                                                                                     \
    }                                                                                              \
  } while (0)

/* Reused across inputs, as the gateway reuses one per connection. */
static souk_json_t g_doc;
static souk_json_t g_re;

/* Structural invariants of container t; returns the token after it. */
static int check_tree(const souk_json_t *j, int t) {
  const souk_json_tok_t *k = &j->toks[t];
  CHECK(k->next > (uint32_t)t && k->next <= j->ntoks);
  souk_json_type_t ty = souk_json_type(j, t);
  CHECK(ty >= SOUK_JSON_NULL && ty <= SOUK_JSON_OBJECT);
  if (ty != SOUK_JSON_ARRAY && ty != SOUK_JSON_OBJECT) {
    CHECK(k->next == (uint32_t)t + 1);
    CHECK(k->start + k->len <= j->len);
    return t + 1;
  }
  size_t n = 0;
  int c = t + 1;
  while ((uint32_t)c < k->next) {
    if (ty == SOUK_JSON_OBJECT) {
      CHECK(souk_json_type(j, c) == SOUK_JSON_STRING);
      /* Looking the key up finds this pair or an earlier key that decodes
       * to the same text. */
      size_t cap = (size_t)j->toks[c].len + 1;
      char *key = souk_malloc(cap);
      int kn = souk_json_str(j, c, key, cap);
      CHECK(kn >= 0);
      int v = souk_json_getn(j, t, key, (size_t)kn);
      CHECK(v > t + 1 && v <= c + 1);
      CHECK(souk_json_type(j, v - 1) == SOUK_JSON_STRING);
      if (strlen(key) == (size_t)kn) CHECK(souk_json_get(j, t, key) == v);
      souk_free(key);
      c++;
    }
    CHECK(souk_json_at(j, t, n) == (ty == SOUK_JSON_ARRAY ? c : -1));
    int after = check_tree(j, c);
    CHECK(after == souk_json_skip(j, c));
    c = after;
    n++;
  }
  CHECK((uint32_t)c == k->next);
  CHECK(n == souk_json_count(j, t));
  CHECK(souk_json_first(j, t) == (n ? t + 1 : -1));
  CHECK(souk_json_at(j, t, n) == -1);
  return c;
}

static bool utf8_valid(const char *s, size_t n) {
  const unsigned char *p = (const unsigned char *)s;
  for (size_t i = 0; i < n;) {
    unsigned char c = p[i];
    size_t l = c < 0x80                   ? 1
               : (c >= 0xc2 && c <= 0xdf) ? 2
               : (c >= 0xe0 && c <= 0xef) ? 3
               : (c >= 0xf0 && c <= 0xf4) ? 4
                                          : 0;
    if (l == 0 || i + l > n) return false;
    for (size_t k = 1; k < l; k++)
      if ((p[i + k] & 0xc0) != 0x80) return false;
    if (l == 3 && ((c == 0xe0 && p[i + 1] < 0xa0) || (c == 0xed && p[i + 1] >= 0xa0))) return false;
    if (l == 4 && ((c == 0xf0 && p[i + 1] < 0x90) || (c == 0xf4 && p[i + 1] >= 0x90))) return false;
    i += l;
  }
  return true;
}

/* Write s[0..n) as a JSON string, parse it back and return the decoded
 * copy (free it); *m gets its length. */
static char *round_trip(const char *s, size_t n, size_t *m, souk_buf_t *b) {
  souk_buf_reset(b);
  souk_buf_json_str(b, s, n);
  CHECK(utf8_valid(b->data, b->len));
  CHECK(souk_json_parse(&g_re, b->data, b->len) == 0);
  CHECK(g_re.ntoks == 1 && souk_json_type(&g_re, 0) == SOUK_JSON_STRING);
  char *d = souk_json_strdup(&g_re, 0);
  CHECK(d);
  char tmp[8];
  int rc = souk_json_str(&g_re, 0, tmp, sizeof tmp);
  *m = rc >= 0 ? (size_t)rc : strlen(d); /* d may hold NULs: measure by rc */
  if (rc < 0) {
    CHECK(rc == SOUK_ETOOBIG);
    /* Decode fully to learn the length. */
    size_t cap = (size_t)g_re.toks[0].len + 1;
    char *full = souk_malloc(cap);
    rc = souk_json_str(&g_re, 0, full, cap);
    CHECK(rc >= 0);
    *m = (size_t)rc;
    CHECK(memcmp(full, d, *m) == 0);
    souk_free(full);
  }
  return d;
}

static void check_string(const souk_json_t *j, int t, souk_buf_t *b) {
  size_t raw_len;
  const char *raw = souk_json_raw(j, t, &raw_len);
  CHECK(raw && raw_len == j->toks[t].len);
  char *d = souk_json_strdup(j, t);
  CHECK(d);
  /* Full decode through souk_json_str: decoding never grows the text. */
  size_t cap = raw_len + 1;
  char *full = souk_malloc(cap);
  int n = souk_json_str(j, t, full, cap);
  CHECK(n >= 0 && (size_t)n <= raw_len);
  CHECK(memcmp(full, d, (size_t)n + 1) == 0);
  if (!j->toks[t].escaped) CHECK((size_t)n == raw_len && memcmp(raw, full, raw_len) == 0);
  /* Truncated copies are NUL-terminated prefixes. */
  static const size_t caps[] = {1, 2, 3, 4, 5, 8, 13};
  for (size_t k = 0; k < sizeof caps / sizeof *caps; k++) {
    char out[16];
    memset(out, 0x7e, sizeof out);
    int rc = souk_json_str(j, t, out, caps[k]);
    if ((size_t)n < caps[k]) {
      CHECK(rc == n && memcmp(out, full, (size_t)n + 1) == 0);
    } else {
      CHECK(rc == SOUK_ETOOBIG);
      size_t l = strlen(out);
      CHECK(l < caps[k] && memcmp(out, full, l) == 0);
      /* Cut on a boundary: what follows is not a continuation byte. */
      CHECK(((unsigned char)full[l] & 0xc0) != 0x80 || l == 0);
      CHECK(out[caps[k]] == 0x7e);
    }
  }
  /* streq agrees with the decoded text (when it has no NUL). */
  if (strlen(full) == (size_t)n) {
    CHECK(souk_json_streq(j, t, full));
    if (n > 0) {
      full[n - 1] ^= 1;
      CHECK(!souk_json_streq(j, t, full));
      full[n - 1] ^= 1;
    }
  }
  /* Write it back and read it again: valid UTF-8 survives exactly; any
   * other bytes become U+FFFD, after which the text is stable. */
  size_t m;
  char *back = round_trip(full, (size_t)n, &m, b);
  if (utf8_valid(full, (size_t)n)) {
    CHECK(m == (size_t)n && memcmp(back, full, m) == 0);
  } else {
    size_t m2;
    char *again = round_trip(back, m, &m2, b);
    CHECK(m2 == m && memcmp(again, back, m) == 0);
    souk_free(again);
  }
  souk_free(back);
  souk_free(full);
  souk_free(d);
}

static void check_number(const souk_json_t *j, int t) {
  int64_t i = 0, f0 = 0, f2 = 0, f6 = 0, f18 = 0;
  uint64_t u = 0;
  double d = 0;
  int ri = souk_json_i64(j, t, &i);
  int ru = souk_json_u64(j, t, &u);
  int rd = souk_json_double(j, t, &d);
  int r0 = souk_json_fixed(j, t, 0, &f0);
  int r2 = souk_json_fixed(j, t, 2, &f2);
  int r6 = souk_json_fixed(j, t, 6, &f6);
  int r18 = souk_json_fixed(j, t, 18, &f18);
  CHECK(ri == 0 || ri == SOUK_EINVAL || ri == SOUK_ERANGE);
  CHECK(ru == 0 || ru == SOUK_EINVAL || ru == SOUK_ERANGE);
  CHECK(r0 == 0 || r0 == SOUK_EINVAL || r0 == SOUK_ERANGE);
  /* An integer reads the same through every accessor. */
  if (ri == 0) {
    CHECK(r0 == 0 && f0 == i);
    if (i > 0) CHECK(ru == 0 && u == (uint64_t)i); /* "-0" is not a u64 */
    if (r2 == 0) CHECK(f2 == i * 100);
    if (r6 == 0) CHECK(f6 / 1000000 == i && f6 % 1000000 == 0);
  }
  if (ru == 0 && u <= INT64_MAX) CHECK(ri == 0 && (uint64_t)i == u);
  /* More fraction digits never turn a valid value invalid the other way. */
  if (r6 == 0) CHECK(r2 == 0 && r0 == 0);
  if (r0 == SOUK_EINVAL) CHECK(r2 == SOUK_EINVAL && r6 == SOUK_EINVAL && r18 == SOUK_EINVAL);
  /* Rounding the micro-units to cents agrees with parsing cents directly,
   * up to the double rounding of a value exactly on a half. */
  if (r6 == 0 && r2 == 0) {
    int64_t q = f6 / 10000, rem = f6 % 10000;
    int64_t lo = q - 1, hi = q + 1;
    CHECK(f2 >= lo && f2 <= hi);
    if (rem == 0) CHECK(f2 == q);
  }
  /* The double is close to the fixed-point value where both exist. */
  if (rd == 0 && r6 == 0 && f6 > -(INT64_C(1) << 52) && f6 < (INT64_C(1) << 52)) {
    double fx = (double)f6 / 1e6;
    double diff = fx - d;
    if (diff < 0) diff = -diff;
    CHECK(diff <= 0.5e-6 + 1e-9 * (d < 0 ? -d : d) + 1e-12);
  }
}

static void walk(const souk_json_t *j, souk_buf_t *b) {
  for (uint32_t t = 0; t < j->ntoks; t++) {
    int ti = (int)t;
    souk_json_type_t ty = souk_json_type(j, ti);
    bool bv;
    int rb = souk_json_bool(j, ti, &bv);
    CHECK((rb == 0) == (ty == SOUK_JSON_TRUE || ty == SOUK_JSON_FALSE));
    if (rb == 0) CHECK(bv == (ty == SOUK_JSON_TRUE));
    if (ty == SOUK_JSON_STRING) {
      check_string(j, ti, b);
      check_number(j, ti);
    } else if (ty == SOUK_JSON_NUMBER) {
      size_t n;
      const char *r = souk_json_raw(j, ti, &n);
      CHECK(r && n > 0);
      int64_t v;
      CHECK(souk_json_fixed(j, ti, 0, &v) != SOUK_EINVAL); /* JSON numbers are decimals */
      double d;
      int rd = souk_json_double(j, ti, &d);
      CHECK(rd == 0 || rd == SOUK_EINVAL); /* EINVAL only for overflow to inf */
      check_number(j, ti);
    } else {
      char out[4];
      CHECK(souk_json_str(j, ti, out, sizeof out) == SOUK_EINVAL);
      CHECK(souk_json_strdup(j, ti) == NULL);
      int64_t v;
      CHECK(souk_json_i64(j, ti, &v) == SOUK_EINVAL);
      CHECK(souk_json_fixed(j, ti, 2, &v) == SOUK_EINVAL);
    }
    if (ty != SOUK_JSON_OBJECT) CHECK(souk_json_get(j, ti, "a") == -1);
    if (ty != SOUK_JSON_ARRAY) CHECK(souk_json_at(j, ti, 0) == -1);
  }
  CHECK(souk_json_type(j, (int)j->ntoks) == SOUK_JSON_NONE);
  CHECK(souk_json_type(j, -1) == SOUK_JSON_NONE);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const char *s = (const char *)data;
  souk_buf_t b = {0};
  g_doc.max_depth = 0;
  int rc = souk_json_parse(&g_doc, s, size);
  CHECK(rc == 0 || rc == SOUK_EPARSE || rc == SOUK_ETOOBIG);
  CHECK(g_doc.err_pos <= size);
  if (rc == 0) {
    CHECK(g_doc.ntoks > 0 && g_doc.toks[0].next == g_doc.ntoks);
    CHECK(check_tree(&g_doc, 0) == (int)g_doc.ntoks);
    walk(&g_doc, &b);
    /* A tighter depth limit either still accepts the same tokens or says
     * the document is too deep, never anything else. */
    uint32_t ntoks = g_doc.ntoks;
    g_doc.max_depth = 2;
    rc = souk_json_parse(&g_doc, s, size);
    CHECK(rc == SOUK_ETOOBIG || (rc == 0 && g_doc.ntoks == ntoks));
    g_doc.max_depth = 0;
  } else {
    CHECK(g_doc.ntoks == 0);
    CHECK(souk_json_type(&g_doc, 0) == SOUK_JSON_NONE);
  }

  /* The whole input as one string through the writer and back. */
  size_t m;
  char *back = round_trip(s, size, &m, &b);
  if (utf8_valid(s, size)) CHECK(m == size && memcmp(back, s, size) == 0);
  souk_free(back);

  /* The input as decimal text. */
  int64_t v;
  unsigned scale = size ? (unsigned)data[0] % 20 : 2;
  rc = souk_decimal_parse(s, size, scale, &v);
  CHECK(rc == 0 || rc == SOUK_EINVAL || rc == SOUK_ERANGE);
  souk_buf_free(&b);
  return 0;
}
