/* NBT reading: the structural skipper, the checker, the JSON writer and
 * modified UTF-8 (see nbt.h). */
#include "nbt.h"

#include "souk/alloc.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

/* Payload sizes of the fixed-size types, indexed by tag type; 0 for the
 * variable ones. */
static const uint8_t nbt_fixed[13] = {0, 1, 2, 4, 8, 4, 8, 0, 0, 0, 0, 0, 0};

/* The fewest bytes one list element of each type can take, so a list's
 * count can be checked against the bytes left before any loop runs: a
 * count that cannot fit is refused at once instead of after two billion
 * iterations.  End has no payload; lists of End with elements are refused
 * separately. */
static const uint8_t nbt_min[13] = {0, 1, 2, 4, 8, 4, 8, 4, 2, 5, 1, 4, 4};

/* Element sizes of the three array types. */
static size_t nbt_array_elem(uint8_t type) {
  return type == SB_NBT_BYTE_ARRAY ? 1 : type == SB_NBT_INT_ARRAY ? 4 : 8;
}

/* Read a big-endian int32 length that must not be negative. */
static int nbt_read_len(sb_nbt_cur_t *c, size_t *n) {
  if (sb_nbt_left(c) < 4) return SOUK_EPARSE;
  int32_t v = (int32_t)sb_be32(c->p);
  if (v < 0) return SOUK_EPARSE;
  c->p += 4;
  *n = (size_t)v;
  return 0;
}

int sb_nbt_skip(sb_nbt_cur_t *c, uint8_t type, int depth) {
  size_t n;
  int rc;
  switch (type) {
  case SB_NBT_BYTE:
  case SB_NBT_SHORT:
  case SB_NBT_INT:
  case SB_NBT_LONG:
  case SB_NBT_FLOAT:
  case SB_NBT_DOUBLE:
    if (sb_nbt_left(c) < nbt_fixed[type]) return SOUK_EPARSE;
    c->p += nbt_fixed[type];
    return 0;
  case SB_NBT_BYTE_ARRAY:
  case SB_NBT_INT_ARRAY:
  case SB_NBT_LONG_ARRAY: {
    size_t elem = nbt_array_elem(type);
    if ((rc = nbt_read_len(c, &n))) return rc;
    if (n > sb_nbt_left(c) / elem) return SOUK_EPARSE;
    c->p += n * elem;
    return 0;
  }
  case SB_NBT_STRING:
    if (sb_nbt_left(c) < 2) return SOUK_EPARSE;
    n = sb_be16(c->p);
    if (sb_nbt_left(c) - 2 < n) return SOUK_EPARSE;
    c->p += 2 + n;
    return 0;
  case SB_NBT_LIST: {
    if (depth >= SB_NBT_MAX_DEPTH) return SOUK_ETOOBIG;
    if (sb_nbt_left(c) < 1) return SOUK_EPARSE;
    uint8_t et = *c->p++;
    if (et > SB_NBT_LONG_ARRAY) return SOUK_EPARSE;
    if ((rc = nbt_read_len(c, &n))) return rc;
    if (et == SB_NBT_END) return n == 0 ? 0 : SOUK_EPARSE;
    if (n > sb_nbt_left(c) / nbt_min[et]) return SOUK_EPARSE;
    if (nbt_fixed[et]) {
      c->p += n * nbt_fixed[et];
      return 0;
    }
    for (size_t i = 0; i < n; i++)
      if ((rc = sb_nbt_skip(c, et, depth + 1))) return rc;
    return 0;
  }
  case SB_NBT_COMPOUND: {
    if (depth >= SB_NBT_MAX_DEPTH) return SOUK_ETOOBIG;
    for (;;) {
      uint8_t t;
      const char *name;
      size_t nl;
      if ((rc = sb_nbt_read_head(c, &t, &name, &nl))) return rc;
      if (t == SB_NBT_END) return 0;
      if (t > SB_NBT_LONG_ARRAY) return SOUK_EPARSE;
      if ((rc = sb_nbt_skip(c, t, depth + 1))) return rc;
    }
  }
  default:
    return SOUK_EPARSE;
  }
}

int sb_nbt_read_int(sb_nbt_cur_t *c, uint8_t type, int64_t *v) {
  if (type < SB_NBT_BYTE || type > SB_NBT_LONG) return SOUK_EINVAL;
  if (sb_nbt_left(c) < nbt_fixed[type]) return SOUK_EPARSE;
  const uint8_t *p = c->p;
  switch (type) {
  case SB_NBT_BYTE:
    *v = (int8_t)p[0];
    break;
  case SB_NBT_SHORT:
    *v = (int16_t)sb_be16(p);
    break;
  case SB_NBT_INT:
    *v = (int32_t)sb_be32(p);
    break;
  default:
    *v = (int64_t)sb_be64(p);
    break;
  }
  c->p += nbt_fixed[type];
  return 0;
}

int sb_nbt_read_str(sb_nbt_cur_t *c, const char **s, size_t *len) {
  if (sb_nbt_left(c) < 2) return SOUK_EPARSE;
  size_t n = sb_be16(c->p);
  if (sb_nbt_left(c) - 2 < n) return SOUK_EPARSE;
  *s = (const char *)c->p + 2;
  *len = n;
  c->p += 2 + n;
  return 0;
}

int sb_nbt_check(const uint8_t *buf, size_t n) {
  sb_nbt_cur_t c = {buf, buf + n};
  uint8_t t;
  const char *name;
  size_t nl;
  int rc = sb_nbt_read_head(&c, &t, &name, &nl);
  if (rc) return rc;
  if (t != SB_NBT_COMPOUND) return SOUK_EPARSE;
  if ((rc = sb_nbt_skip(&c, t, 0))) return rc;
  return c.p == c.end ? 0 : SOUK_EPARSE;
}

/* ---- modified UTF-8 ---------------------------------------------------- */

/* Decode one UTF-16 code unit of modified UTF-8 at in[*i] (Java's readUTF
 * rules: overlong forms are accepted, 4-byte forms and stray continuation
 * bytes are not).  -1 on malformed input. */
static int32_t mutf8_unit(const unsigned char *in, size_t n, size_t *i) {
  unsigned c = in[*i];
  if (c < 0x80) {
    *i += 1;
    return (int32_t)c;
  }
  if ((c & 0xE0) == 0xC0) {
    if (n - *i < 2 || (in[*i + 1] & 0xC0) != 0x80) return -1;
    int32_t u = (int32_t)((c & 0x1F) << 6 | (in[*i + 1] & 0x3F));
    *i += 2;
    return u;
  }
  if ((c & 0xF0) == 0xE0) {
    if (n - *i < 3 || (in[*i + 1] & 0xC0) != 0x80 || (in[*i + 2] & 0xC0) != 0x80) return -1;
    int32_t u = (int32_t)((c & 0x0F) << 12 | (in[*i + 1] & 0x3F) << 6 | (in[*i + 2] & 0x3F));
    *i += 3;
    return u;
  }
  return -1;
}

static size_t utf8_put(char *o, uint32_t cp) {
  if (cp < 0x80) {
    o[0] = (char)cp;
    return 1;
  }
  if (cp < 0x800) {
    o[0] = (char)(0xC0 | cp >> 6);
    o[1] = (char)(0x80 | (cp & 0x3F));
    return 2;
  }
  if (cp < 0x10000) {
    o[0] = (char)(0xE0 | cp >> 12);
    o[1] = (char)(0x80 | (cp >> 6 & 0x3F));
    o[2] = (char)(0x80 | (cp & 0x3F));
    return 3;
  }
  o[0] = (char)(0xF0 | cp >> 18);
  o[1] = (char)(0x80 | (cp >> 12 & 0x3F));
  o[2] = (char)(0x80 | (cp >> 6 & 0x3F));
  o[3] = (char)(0x80 | (cp & 0x3F));
  return 4;
}

int sb_mutf8_to_utf8(const char *in, size_t n, char *out, size_t cap) {
  const unsigned char *s = (const unsigned char *)in;
  size_t i = 0, o = 0;
  while (i < n) {
    /* Runs of ASCII, the common case, are copied as they are. */
    if (s[i] < 0x80) {
      if (o >= cap) return SOUK_ETOOBIG;
      out[o++] = (char)s[i++];
      continue;
    }
    int32_t u = mutf8_unit(s, n, &i);
    if (u < 0) return SOUK_EPARSE;
    uint32_t cp = (uint32_t)u;
    if (cp >= 0xD800 && cp <= 0xDBFF) {
      /* A high surrogate: with a low one after it, the pair is one code
       * point; alone it cannot be UTF-8 and becomes U+FFFD. */
      size_t j = i;
      int32_t lo = j < n ? mutf8_unit(s, n, &j) : -1;
      if (lo >= 0xDC00 && lo <= 0xDFFF) {
        cp = 0x10000 + ((cp - 0xD800) << 10) + ((uint32_t)lo - 0xDC00);
        i = j;
      } else {
        cp = 0xFFFD;
      }
    } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
      cp = 0xFFFD;
    }
    char tmp[4];
    size_t l = utf8_put(tmp, cp);
    if (cap - o < l) return SOUK_ETOOBIG;
    memcpy(out + o, tmp, l);
    o += l;
  }
  if (o > INT32_MAX) return SOUK_ETOOBIG;
  return (int)o;
}

int sb_mutf8_append(souk_buf_t *out, const char *in, size_t n) {
  souk_buf_reserve(out, n);
  int rc = sb_mutf8_to_utf8(in, n, out->data + out->len, out->cap - out->len);
  if (rc < 0) return rc;
  out->len += (size_t)rc;
  out->data[out->len] = '\0';
  return 0;
}

/* ---- JSON -------------------------------------------------------------- */

typedef struct nbt_json {
  sb_nbt_cur_t c;
  souk_buf_t *out;
  souk_buf_t tmp; /* a converted string before quoting */
} nbt_json_t;

/* True when s[0..n) is already standard UTF-8 that modified UTF-8 would
 * decode to itself: no NUL, no overlong form, no surrogate, no 4-byte
 * sequence.  Almost every string is, and is then quoted directly. */
static bool mutf8_is_plain(const unsigned char *s, size_t n) {
  size_t i = 0;
  while (i < n) {
    if (s[i] < 0x80) {
      if (s[i] == 0) return false;
      i++;
      continue;
    }
    size_t l = souk_utf8_seq(s + i, n - i);
    if (l == 0 || l == 4) return false;
    i += l;
  }
  return true;
}

static int json_str(nbt_json_t *j, const char *s, size_t n) {
  if (mutf8_is_plain((const unsigned char *)s, n)) {
    souk_buf_json_str(j->out, s, n);
    return 0;
  }
  souk_buf_reset(&j->tmp);
  int rc = sb_mutf8_append(&j->tmp, s, n);
  if (rc) return rc;
  souk_buf_json_str(j->out, j->tmp.data, j->tmp.len);
  return 0;
}

/* The shortest %g text that reads back as the same value. */
static void json_real(souk_buf_t *out, double v, bool is_float) {
  if (!isfinite(v)) {
    souk_buf_puts(out, "null");
    return;
  }
  char b[40];
  for (int prec = is_float ? 6 : 15; prec <= 17; prec++) {
    snprintf(b, sizeof b, "%.*g", prec, v);
    if (is_float ? strtof(b, NULL) == (float)v : strtod(b, NULL) == v) break;
  }
  souk_buf_puts(out, b);
}

static int json_value(nbt_json_t *j, uint8_t type, int depth);

static int json_array(nbt_json_t *j, uint8_t type) {
  size_t n, elem = nbt_array_elem(type);
  int rc = nbt_read_len(&j->c, &n);
  if (rc) return rc;
  if (n > sb_nbt_left(&j->c) / elem) return SOUK_EPARSE;
  souk_buf_putc(j->out, '[');
  for (size_t i = 0; i < n; i++) {
    const uint8_t *p = j->c.p + i * elem;
    int64_t v = elem == 1 ? (int8_t)p[0] : elem == 4 ? (int32_t)sb_be32(p) : (int64_t)sb_be64(p);
    souk_buf_printf(j->out, i ? ",%" PRId64 : "%" PRId64, v);
  }
  souk_buf_putc(j->out, ']');
  j->c.p += n * elem;
  return 0;
}

static int json_value(nbt_json_t *j, uint8_t type, int depth) {
  int rc;
  switch (type) {
  case SB_NBT_BYTE:
  case SB_NBT_SHORT:
  case SB_NBT_INT:
  case SB_NBT_LONG: {
    int64_t v;
    if ((rc = sb_nbt_read_int(&j->c, type, &v))) return rc;
    souk_buf_printf(j->out, "%" PRId64, v);
    return 0;
  }
  case SB_NBT_FLOAT: {
    if (sb_nbt_left(&j->c) < 4) return SOUK_EPARSE;
    uint32_t bits = sb_be32(j->c.p);
    float f;
    memcpy(&f, &bits, 4);
    j->c.p += 4;
    json_real(j->out, f, true);
    return 0;
  }
  case SB_NBT_DOUBLE: {
    if (sb_nbt_left(&j->c) < 8) return SOUK_EPARSE;
    uint64_t bits = sb_be64(j->c.p);
    double d;
    memcpy(&d, &bits, 8);
    j->c.p += 8;
    json_real(j->out, d, false);
    return 0;
  }
  case SB_NBT_BYTE_ARRAY:
  case SB_NBT_INT_ARRAY:
  case SB_NBT_LONG_ARRAY:
    return json_array(j, type);
  case SB_NBT_STRING: {
    const char *s;
    size_t n;
    if ((rc = sb_nbt_read_str(&j->c, &s, &n))) return rc;
    return json_str(j, s, n);
  }
  case SB_NBT_LIST: {
    if (depth >= SB_NBT_MAX_DEPTH) return SOUK_ETOOBIG;
    if (sb_nbt_left(&j->c) < 1) return SOUK_EPARSE;
    uint8_t et = *j->c.p++;
    size_t n;
    if (et > SB_NBT_LONG_ARRAY) return SOUK_EPARSE;
    if ((rc = nbt_read_len(&j->c, &n))) return rc;
    if (et == SB_NBT_END ? n != 0 : n > sb_nbt_left(&j->c) / nbt_min[et]) return SOUK_EPARSE;
    souk_buf_putc(j->out, '[');
    for (size_t i = 0; i < n; i++) {
      if (i) souk_buf_putc(j->out, ',');
      if ((rc = json_value(j, et, depth + 1))) return rc;
    }
    souk_buf_putc(j->out, ']');
    return 0;
  }
  case SB_NBT_COMPOUND: {
    if (depth >= SB_NBT_MAX_DEPTH) return SOUK_ETOOBIG;
    souk_buf_putc(j->out, '{');
    for (bool first = true;; first = false) {
      uint8_t t;
      const char *name;
      size_t nl;
      if ((rc = sb_nbt_read_head(&j->c, &t, &name, &nl))) return rc;
      if (t == SB_NBT_END) break;
      if (t > SB_NBT_LONG_ARRAY) return SOUK_EPARSE;
      if (!first) souk_buf_putc(j->out, ',');
      if ((rc = json_str(j, name, nl))) return rc;
      souk_buf_putc(j->out, ':');
      if ((rc = json_value(j, t, depth + 1))) return rc;
    }
    souk_buf_putc(j->out, '}');
    return 0;
  }
  default:
    return SOUK_EPARSE;
  }
}

int sb_nbt_json(const uint8_t *buf, size_t n, souk_buf_t *out) {
  nbt_json_t j = {.c = {buf, buf + n}, .out = out};
  uint8_t t;
  const char *name;
  size_t nl;
  int rc = sb_nbt_read_head(&j.c, &t, &name, &nl);
  if (!rc && t != SB_NBT_COMPOUND) rc = SOUK_EPARSE;
  if (!rc) rc = json_value(&j, t, 0);
  if (!rc && j.c.p != j.c.end) rc = SOUK_EPARSE;
  souk_buf_free(&j.tmp);
  return rc;
}
