/* One-pass JSON tokenizer with skip links; see include/souk/json.h. */
#include "souk/json.h"

#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

#include "souk/alloc.h"
#include "souk/err.h"

enum { S_VALUE, S_VALUE_OR_END, S_KEY, S_KEY_OR_END, S_AFTER_VALUE };

/* Bytes that end a run of plain string characters. */
static const uint8_t str_stop[256] = {
    [0 ... 0x1f] = 1, ['"'] = 1, ['\\'] = 1,
};

static inline bool is_ws(unsigned char c) {
  return c == ' ' || c == '\n' || c == '\r' || c == '\t';
}

static inline int is_hex(unsigned char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

static void toks_grow(souk_json_t *j) {
  uint32_t cap = j->cap ? j->cap * 2 : 64;
  j->toks = souk_reallocarray(j->toks, cap, sizeof *j->toks);
  j->cap = cap;
}

static inline uint32_t tok_push(souk_json_t *j, uint8_t type, size_t start) {
  if (j->ntoks == j->cap) toks_grow(j);
  uint32_t t = j->ntoks++;
  souk_json_tok_t *k = &j->toks[t];
  k->type = type;
  k->start = (uint32_t)start;
  k->len = 0;
  k->next = t + 1;
  k->escaped = 0;
  return t;
}

/* Scan a string starting after its opening quote at i.  Returns the index
 * of the closing quote, or (size_t)-1 on error. */
/* Skip the plain characters of a string from i: the first index holding a
 * quote, a backslash or a control character, or len.  Strings are most of
 * the bytes of a gateway event, so with SSE2 (every x86-64) this looks at
 * 16 bytes per step. */
static inline size_t skip_plain(const unsigned char *p, size_t len, size_t i) {
#ifdef __SSE2__
  const __m128i quote = _mm_set1_epi8('"'), bslash = _mm_set1_epi8('\\');
  const __m128i ctl = _mm_set1_epi8(0x1f);
  while (i + 16 <= len) {
    __m128i v = _mm_loadu_si128((const __m128i *)(p + i));
    /* Bytes <= 0x1f: min(v, 0x1f) == v (unsigned). */
    __m128i stop = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(v, quote), _mm_cmpeq_epi8(v, bslash)),
                                _mm_cmpeq_epi8(_mm_min_epu8(v, ctl), v));
    int m = _mm_movemask_epi8(stop);
    if (m) return i + (size_t)__builtin_ctz((unsigned)m);
    i += 16;
  }
#endif
  while (i < len && !str_stop[p[i]]) i++;
  return i;
}

/* Inlined: it runs for every key and string value of a document. */
static inline __attribute__((always_inline)) size_t scan_string(const char *s, size_t len, size_t i,
                                                               uint8_t *escaped) {
  const unsigned char *p = (const unsigned char *)s;
  for (;;) {
    i = skip_plain(p, len, i);
    if (i >= len) return (size_t)-1;
    if (p[i] == '"') return i;
    if (p[i] < 0x20) return (size_t)-1;
    /* Backslash escape. */
    *escaped = 1;
    if (++i >= len) return (size_t)-1;
    switch (p[i]) {
    case '"': case '\\': case '/': case 'b': case 'f': case 'n': case 'r': case 't':
      i++;
      break;
    case 'u':
      if (i + 4 >= len || !is_hex(p[i + 1]) || !is_hex(p[i + 2]) || !is_hex(p[i + 3]) ||
          !is_hex(p[i + 4]))
        return (size_t)-1;
      i += 5;
      break;
    default:
      return (size_t)-1;
    }
  }
}

/* Scan a number at i per RFC 8259; returns the end index or (size_t)-1. */
static size_t scan_number(const char *s, size_t len, size_t i) {
  if (i < len && s[i] == '-') i++;
  if (i >= len) return (size_t)-1;
  if (s[i] == '0') {
    i++;
  } else if (s[i] >= '1' && s[i] <= '9') {
    while (i < len && s[i] >= '0' && s[i] <= '9') i++;
  } else {
    return (size_t)-1;
  }
  if (i < len && s[i] == '.') {
    i++;
    if (i >= len || s[i] < '0' || s[i] > '9') return (size_t)-1;
    while (i < len && s[i] >= '0' && s[i] <= '9') i++;
  }
  if (i < len && (s[i] == 'e' || s[i] == 'E')) {
    i++;
    if (i < len && (s[i] == '+' || s[i] == '-')) i++;
    if (i >= len || s[i] < '0' || s[i] > '9') return (size_t)-1;
    while (i < len && s[i] >= '0' && s[i] <= '9') i++;
  }
  return i;
}

int souk_json_parse(souk_json_t *j, const char *src, size_t len) {
  j->src = src;
  j->len = len;
  j->ntoks = 0;
  j->err_pos = 0;
  if (len >= UINT32_MAX) return SOUK_ETOOBIG;
  uint32_t maxd = j->max_depth ? j->max_depth : 64;
  if (maxd > 1024) maxd = 1024;
  uint32_t stack[1024];
  uint32_t sp = 0;
  /* The innermost open container (stack[sp - 1]) and its type, kept in
   * locals: every key and value looks at them. */
  uint32_t parent = 0;
  uint8_t ptype = SOUK_JSON_NONE;
  int state = S_VALUE;
  size_t i = 0;
  const unsigned char *p = (const unsigned char *)src;

  for (;;) {
    while (i < len && is_ws(p[i])) i++;
    if (state == S_AFTER_VALUE && sp == 0) {
      if (i != len) goto fail;
      return 0;
    }
    if (i >= len) goto fail;
    unsigned char c = p[i];
    switch (state) {
    case S_KEY_OR_END:
      if (c == '}') goto close;
      /* fall through */
    case S_KEY: {
      if (c != '"') goto fail;
    key:;
      uint32_t t = tok_push(j, SOUK_JSON_STRING, i + 1);
      size_t e = scan_string(src, len, i + 1, &j->toks[t].escaped);
      if (e == (size_t)-1) goto fail;
      j->toks[t].len = (uint32_t)(e - i - 1);
      j->toks[parent].len++;
      i = e + 1;
      /* Compact JSON (what Discord sends) has the colon right there. */
      if (i < len && p[i] == ':') {
        i++;
      } else {
        while (i < len && is_ws(p[i])) i++;
        if (i >= len || p[i] != ':') goto fail;
        i++;
      }
      state = S_VALUE;
      /* The value straight after the colon: no trip round the loop. */
      if (i < len && !is_ws(p[i])) {
        c = p[i];
        goto value;
      }
      continue;
    }
    case S_AFTER_VALUE: {
      if (c == ',') {
        i++;
        state = ptype == SOUK_JSON_OBJECT ? S_KEY : S_VALUE;
        /* The next key straight after the comma, likewise. */
        if (state == S_KEY && i < len && p[i] == '"') goto key;
        continue;
      }
      if ((c == '}' && ptype == SOUK_JSON_OBJECT) || (c == ']' && ptype == SOUK_JSON_ARRAY))
        goto close;
      goto fail;
    }
    case S_VALUE_OR_END:
      if (c == ']') goto close;
      /* fall through */
    case S_VALUE:
      break;
    }

    /* A value starts at i. */
  value:
    if (ptype == SOUK_JSON_ARRAY) j->toks[parent].len++;
    switch (c) {
    case '{':
    case '[': {
      if (sp >= maxd) {
        /* Like a parse error, leave no half-built tokens behind. */
        j->err_pos = (uint32_t)i;
        j->ntoks = 0;
        return SOUK_ETOOBIG;
      }
      uint8_t type = c == '{' ? SOUK_JSON_OBJECT : SOUK_JSON_ARRAY;
      uint32_t t = tok_push(j, type, i);
      stack[sp++] = t;
      parent = t;
      ptype = type;
      i++;
      state = c == '{' ? S_KEY_OR_END : S_VALUE_OR_END;
      continue;
    }
    case '"': {
      uint32_t t = tok_push(j, SOUK_JSON_STRING, i + 1);
      size_t e = scan_string(src, len, i + 1, &j->toks[t].escaped);
      if (e == (size_t)-1) goto fail;
      j->toks[t].len = (uint32_t)(e - i - 1);
      i = e + 1;
      break;
    }
    /* tok_push() may move j->toks, so it is called before j->toks is read:
     * in "j->toks[tok_push(...)]" the order of evaluation is unspecified. */
    case 't': {
      if (len - i < 4 || memcmp(src + i, "true", 4) != 0) goto fail;
      uint32_t t = tok_push(j, SOUK_JSON_TRUE, i);
      j->toks[t].len = 4;
      i += 4;
      break;
    }
    case 'f': {
      if (len - i < 5 || memcmp(src + i, "false", 5) != 0) goto fail;
      uint32_t t = tok_push(j, SOUK_JSON_FALSE, i);
      j->toks[t].len = 5;
      i += 5;
      break;
    }
    case 'n': {
      if (len - i < 4 || memcmp(src + i, "null", 4) != 0) goto fail;
      uint32_t t = tok_push(j, SOUK_JSON_NULL, i);
      j->toks[t].len = 4;
      i += 4;
      break;
    }
    default: {
      size_t e = scan_number(src, len, i);
      if (e == (size_t)-1) goto fail;
      uint32_t t = tok_push(j, SOUK_JSON_NUMBER, i);
      j->toks[t].len = (uint32_t)(e - i);
      i = e;
      break;
    }
    }
    state = S_AFTER_VALUE;
    continue;

  close:
    j->toks[parent].next = j->ntoks;
    sp--;
    if (sp) {
      parent = stack[sp - 1];
      ptype = j->toks[parent].type;
    } else {
      ptype = SOUK_JSON_NONE;
    }
    i++;
    state = S_AFTER_VALUE;
  }

fail:
  j->err_pos = (uint32_t)(i < len ? i : len);
  j->ntoks = 0;
  return SOUK_EPARSE;
}

void souk_json_free(souk_json_t *j) {
  souk_free(j->toks);
  j->toks = NULL;
  j->ntoks = j->cap = 0;
}

souk_json_type_t souk_json_type(const souk_json_t *j, int t) {
  if (t < 0 || (uint32_t)t >= j->ntoks) return SOUK_JSON_NONE;
  return (souk_json_type_t)j->toks[t].type;
}

/* Decode the \uXXXX at s (s points at 'u'). */
static unsigned hex4(const char *s) {
  unsigned v = 0;
  for (int k = 1; k <= 4; k++) {
    char c = s[k];
    v = v * 16 + (unsigned)(c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10);
  }
  return v;
}

static size_t put_utf8(char *o, uint32_t cp) {
  if (cp < 0x80) {
    o[0] = (char)cp;
    return 1;
  }
  if (cp < 0x800) {
    o[0] = (char)(0xc0 | (cp >> 6));
    o[1] = (char)(0x80 | (cp & 0x3f));
    return 2;
  }
  if (cp < 0x10000) {
    o[0] = (char)(0xe0 | (cp >> 12));
    o[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
    o[2] = (char)(0x80 | (cp & 0x3f));
    return 3;
  }
  o[0] = (char)(0xf0 | (cp >> 18));
  o[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
  o[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
  o[3] = (char)(0x80 | (cp & 0x3f));
  return 4;
}

/* Decode escaped string text s[0..n) (already validated by the scanner)
 * into out, which must hold n bytes: decoding never grows the text. */
static size_t unescape(const char *s, size_t n, char *out) {
  size_t o = 0;
  for (size_t i = 0; i < n;) {
    if (s[i] != '\\') {
      out[o++] = s[i++];
      continue;
    }
    char e = s[i + 1];
    i += 2;
    switch (e) {
    case 'b': out[o++] = '\b'; break;
    case 'f': out[o++] = '\f'; break;
    case 'n': out[o++] = '\n'; break;
    case 'r': out[o++] = '\r'; break;
    case 't': out[o++] = '\t'; break;
    case 'u': {
      uint32_t cp = hex4(s + i - 1);
      i += 4;
      /* A high surrogate pairs with an immediately following \uDC00-DFFF;
       * the scanner checked that any "\u" has four hex digits. */
      if (cp >= 0xd800 && cp <= 0xdbff && i + 6 <= n && s[i] == '\\' && s[i + 1] == 'u') {
        uint32_t lo = hex4(s + i + 1);
        if (lo >= 0xdc00 && lo <= 0xdfff) {
          cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
          i += 6;
        } else {
          cp = 0xfffd;
        }
      } else if (cp >= 0xd800 && cp <= 0xdfff) {
        cp = 0xfffd;
      }
      o += put_utf8(out + o, cp);
      break;
    }
    default: out[o++] = e; break; /* " \ / */
    }
  }
  return o;
}

const char *souk_json_raw(const souk_json_t *j, int t, size_t *len) {
  if (souk_json_type(j, t) == SOUK_JSON_NONE) {
    if (len) *len = 0;
    return NULL;
  }
  if (len) *len = j->toks[t].len;
  return j->src + j->toks[t].start;
}

/* Escaped strings are compared decoded: rare (keys almost never have
 * escapes), so kept out of the lookup loop below. */
static bool str_eq_escaped(const souk_json_t *j, const souk_json_tok_t *k, const char *s,
                           size_t n) {
  if (k->len < n) return false;
  char small[256];
  char *buf = k->len <= sizeof small ? small : souk_malloc(k->len);
  size_t m = unescape(j->src + k->start, k->len, buf);
  bool eq = m == n && memcmp(buf, s, n) == 0;
  if (buf != small) souk_free(buf);
  return eq;
}

static inline bool str_eq_n(const souk_json_t *j, int t, const char *s, size_t n) {
  const souk_json_tok_t *k = &j->toks[t];
  if (k->escaped) return str_eq_escaped(j, k, s, n);
  /* Length and first byte settle almost every mismatch without a call. */
  if (k->len != n) return false;
  const char *r = j->src + k->start;
  return n == 0 || (r[0] == s[0] && memcmp(r + 1, s + 1, n - 1) == 0);
}

bool souk_json_streq(const souk_json_t *j, int t, const char *s) {
  if (souk_json_type(j, t) != SOUK_JSON_STRING) return false;
  return str_eq_n(j, t, s, strlen(s));
}

int souk_json_getn(const souk_json_t *j, int obj, const char *key, size_t klen) {
  if (souk_json_type(j, obj) != SOUK_JSON_OBJECT) return -1;
  uint32_t n = j->toks[obj].len;
  uint32_t t = (uint32_t)obj + 1;
  for (uint32_t k = 0; k < n; k++) {
    if (str_eq_n(j, (int)t, key, klen)) return (int)t + 1;
    t = j->toks[t + 1].next;
  }
  return -1;
}

int souk_json_get_keys(const souk_json_t *j, int obj, const char *const *keys, int n, int *out) {
  if (n < 0 || n > 16) return SOUK_EINVAL;
  size_t klen[16];
  for (int k = 0; k < n; k++) {
    out[k] = -1;
    klen[k] = strlen(keys[k]);
  }
  if (souk_json_type(j, obj) != SOUK_JSON_OBJECT) return 0;
  int found = 0;
  uint32_t np = j->toks[obj].len;
  uint32_t t = (uint32_t)obj + 1;
  for (uint32_t p = 0; p < np && found < n; p++) {
    for (int k = 0; k < n; k++) {
      if (out[k] < 0 && str_eq_n(j, (int)t, keys[k], klen[k])) {
        out[k] = (int)t + 1;
        found++;
        break;
      }
    }
    t = j->toks[t + 1].next;
  }
  return found;
}

int souk_json_at(const souk_json_t *j, int arr, size_t i) {
  if (souk_json_type(j, arr) != SOUK_JSON_ARRAY || i >= j->toks[arr].len) return -1;
  uint32_t t = (uint32_t)arr + 1;
  while (i--) t = j->toks[t].next;
  return (int)t;
}

size_t souk_json_count(const souk_json_t *j, int t) {
  souk_json_type_t ty = souk_json_type(j, t);
  return (ty == SOUK_JSON_ARRAY || ty == SOUK_JSON_OBJECT) ? j->toks[t].len : 0;
}

int souk_json_first(const souk_json_t *j, int t) {
  return souk_json_count(j, t) ? t + 1 : -1;
}

int souk_json_path(const souk_json_t *j, int t, ...) {
  va_list ap;
  va_start(ap, t);
  const char *k;
  while (t >= 0 && (k = va_arg(ap, const char *)) != NULL) t = souk_json_get(j, t, k);
  va_end(ap);
  return t;
}

int souk_json_str(const souk_json_t *j, int t, char *out, size_t cap) {
  if (souk_json_type(j, t) != SOUK_JSON_STRING || cap == 0) return SOUK_EINVAL;
  const souk_json_tok_t *k = &j->toks[t];
  char small[512];
  const char *s = j->src + k->start;
  size_t n = k->len;
  char *tmp = NULL;
  if (k->escaped) {
    tmp = n <= sizeof small ? small : souk_malloc(n);
    n = unescape(s, n, tmp);
    s = tmp;
  }
  int rc;
  if (n < cap) {
    memcpy(out, s, n);
    out[n] = '\0';
    rc = n > INT_MAX ? SOUK_ETOOBIG : (int)n;
  } else {
    /* Truncate on a UTF-8 boundary so the prefix stays valid. */
    size_t m = cap - 1;
    while (m > 0 && ((unsigned char)s[m] & 0xc0) == 0x80) m--;
    memcpy(out, s, m);
    out[m] = '\0';
    rc = SOUK_ETOOBIG;
  }
  if (tmp && tmp != small) souk_free(tmp);
  return rc;
}

char *souk_json_strdup(const souk_json_t *j, int t) {
  if (souk_json_type(j, t) != SOUK_JSON_STRING) return NULL;
  const souk_json_tok_t *k = &j->toks[t];
  char *out = souk_malloc((size_t)k->len + 1);
  size_t n = k->escaped ? unescape(j->src + k->start, k->len, out)
                        : (memcpy(out, j->src + k->start, k->len), k->len);
  out[n] = '\0';
  return out;
}

/* Text of a number token, or of an unescaped string token (ids, prices). */
static const char *num_text(const souk_json_t *j, int t, size_t *n) {
  souk_json_type_t ty = souk_json_type(j, t);
  if (ty == SOUK_JSON_NUMBER || (ty == SOUK_JSON_STRING && !j->toks[t].escaped)) {
    *n = j->toks[t].len;
    return j->src + j->toks[t].start;
  }
  return NULL;
}

/* Digits only: anything else (text, a fraction, an exponent) is EINVAL,
 * however long it is; a run of digits too big for 64 bits is ERANGE. */
static int parse_u64(const char *s, size_t n, uint64_t *out) {
  if (n == 0) return SOUK_EINVAL;
  for (size_t i = 0; i < n; i++)
    if (s[i] < '0' || s[i] > '9') return SOUK_EINVAL;
  uint64_t v = 0;
  if (n <= 19) {
    /* At most 19 digits cannot overflow: snowflakes (every id Discord
     * sends, several per event) take this way, with no check per digit. */
    for (size_t i = 0; i < n; i++) v = v * 10 + (uint64_t)(s[i] - '0');
    *out = v;
    return 0;
  }
  for (size_t i = 0; i < n; i++) {
    uint64_t d = (uint64_t)(s[i] - '0');
    if (v > (UINT64_MAX - d) / 10) return SOUK_ERANGE;
    v = v * 10 + d;
  }
  *out = v;
  return 0;
}

int souk_json_u64(const souk_json_t *j, int t, uint64_t *out) {
  size_t n;
  const char *s = num_text(j, t, &n);
  if (!s) return SOUK_EINVAL;
  return parse_u64(s, n, out);
}

int souk_json_i64(const souk_json_t *j, int t, int64_t *out) {
  size_t n;
  const char *s = num_text(j, t, &n);
  if (!s || n == 0) return SOUK_EINVAL;
  bool neg = s[0] == '-';
  uint64_t v;
  int rc = parse_u64(s + neg, n - neg, &v);
  if (rc) return rc;
  if (neg) {
    if (v > (uint64_t)INT64_MAX + 1) return SOUK_ERANGE;
    *out = v == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)v;
  } else {
    if (v > INT64_MAX) return SOUK_ERANGE;
    *out = (int64_t)v;
  }
  return 0;
}

int souk_json_bool(const souk_json_t *j, int t, bool *out) {
  souk_json_type_t ty = souk_json_type(j, t);
  if (ty != SOUK_JSON_TRUE && ty != SOUK_JSON_FALSE) return SOUK_EINVAL;
  *out = ty == SOUK_JSON_TRUE;
  return 0;
}

int souk_json_double(const souk_json_t *j, int t, double *out) {
  size_t n;
  const char *s = num_text(j, t, &n);
  /* A string must hold a JSON number too: strtod alone would also take
   * " 1", "0x10", "inf" and "nan". */
  if (!s || n == 0 || scan_number(s, n, 0) != n) return SOUK_EINVAL;
  char small[64];
  char *buf = n < sizeof small ? small : souk_malloc(n + 1);
  memcpy(buf, s, n);
  buf[n] = '\0';
  char *end;
  double v = strtod(buf, &end);
  bool ok = end == buf + n && isfinite(v);
  if (buf != small) souk_free(buf);
  if (!ok) return SOUK_EINVAL;
  *out = v;
  return 0;
}

int souk_decimal_parse(const char *s, size_t n, unsigned scale, int64_t *out) {
  /* Pass 1: syntax.  [+-] digits [. digits] [e [+-] digits], with at least
   * one digit in the mantissa. */
  size_t i = 0;
  bool neg = false;
  if (i < n && (s[i] == '-' || s[i] == '+')) neg = s[i++] == '-';
  size_t ib = i;
  while (i < n && s[i] >= '0' && s[i] <= '9') i++;
  size_t ie = i, fb = i, fe = i;
  if (i < n && s[i] == '.') {
    fb = ++i;
    while (i < n && s[i] >= '0' && s[i] <= '9') i++;
    fe = i;
  }
  if (ie - ib + fe - fb == 0) return SOUK_EINVAL;
  int64_t x = 0;
  if (i < n && (s[i] == 'e' || s[i] == 'E')) {
    i++;
    bool eneg = false;
    if (i < n && (s[i] == '-' || s[i] == '+')) eneg = s[i++] == '-';
    if (i >= n || s[i] < '0' || s[i] > '9') return SOUK_EINVAL;
    /* Saturate: past a million the result is 0 or out of range anyway. */
    for (; i < n && s[i] >= '0' && s[i] <= '9'; i++)
      if (x < 1000000) x = x * 10 + (s[i] - '0');
    if (eneg) x = -x;
  }
  if (i != n) return SOUK_EINVAL;
  if (scale > 18) return SOUK_ERANGE;

  /* Pass 2: value.  Each mantissa digit has a place in units of
   * 10^-scale: the first integer digit's place is (ie - ib - 1) + x + scale
   * and each following digit is one lower.  Digits at place >= 0 make the
   * integer result, the digit at place -1 decides the rounding (half away
   * from zero needs only that digit), lower digits cannot matter.  The
   * text is used exactly, so all 19 digits of an int64 are available. */
  uint64_t lim = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
  uint64_t v = 0;
  int64_t place = (int64_t)(ie - ib) - 1 + x + (int64_t)scale;
  int round_digit = 0;
  for (size_t k = ib; k < fe; k++) {
    if (k == ie) {
      k = fb; /* skip the point */
      if (k >= fe) break;
    }
    unsigned d = (unsigned)(s[k] - '0');
    if (place >= 0) {
      if (v > (lim - d) / 10) return SOUK_ERANGE;
      v = v * 10 + d;
    } else {
      if (place == -1) round_digit = (int)d;
      break;
    }
    place--;
  }
  /* Digits ran out above place 0: scale up by the remaining places. */
  if (v != 0) {
    for (; place >= 0; place--) {
      if (v > lim / 10) return SOUK_ERANGE;
      v *= 10;
    }
  }
  if (round_digit >= 5) {
    if (v >= lim) return SOUK_ERANGE;
    v++;
  }
  *out = neg ? (int64_t)(0 - v) : (int64_t)v;
  return 0;
}

int souk_json_fixed(const souk_json_t *j, int t, unsigned scale, int64_t *out) {
  size_t n;
  const char *s = num_text(j, t, &n);
  if (!s) return SOUK_EINVAL;
  return souk_decimal_parse(s, n, scale, out);
}
