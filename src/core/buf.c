/* Growable buffer and JSON writer. */
#include "souk/buf.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "souk/alloc.h"
#include "souk/err.h"

static char empty_str[1];

void souk_buf_init(souk_buf_t *b) { memset(b, 0, sizeof *b); }

void souk_buf_free(souk_buf_t *b) {
  souk_free(b->data);
  memset(b, 0, sizeof *b);
}

void souk_buf_reset(souk_buf_t *b) {
  b->len = 0;
  if (b->data) b->data[0] = '\0';
}

void souk_buf_reserve(souk_buf_t *b, size_t n) {
  if (n > SIZE_MAX / 2 - b->len) souk_oom(SIZE_MAX);
  size_t need = b->len + n + 1;
  if (need <= b->cap) return;
  size_t cap = b->cap ? b->cap : 64;
  while (cap < need) cap *= 2;
  b->data = souk_realloc(b->data, cap);
  b->cap = cap;
}

/* True if p points into b's own allocation, which a reserve may move. */
static bool buf_owns(const souk_buf_t *b, const void *p) {
  uintptr_t a = (uintptr_t)p, lo = (uintptr_t)b->data;
  return b->data && a >= lo && a < lo + b->cap;
}

void souk_buf_append(souk_buf_t *b, const void *p, size_t n) {
  if (buf_owns(b, p)) {
    /* Appending part of the buffer to itself: keep the offset, not the
     * pointer, across the reallocation. */
    size_t off = (size_t)((const char *)p - b->data);
    souk_buf_reserve(b, n);
    p = b->data + off;
  } else {
    souk_buf_reserve(b, n);
  }
  if (n) memmove(b->data + b->len, p, n);
  b->len += n;
  b->data[b->len] = '\0';
}

void souk_buf_puts(souk_buf_t *b, const char *s) { souk_buf_append(b, s, strlen(s)); }

void souk_buf_putc(souk_buf_t *b, char c) {
  souk_buf_reserve(b, 1);
  b->data[b->len++] = c;
  b->data[b->len] = '\0';
}

void souk_buf_printf(souk_buf_t *b, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  char tmp[256];
  va_list ap2;
  va_copy(ap2, ap);
  int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
  va_end(ap);
  if (n < 0) {
    va_end(ap2);
    return;
  }
  if ((size_t)n < sizeof tmp) {
    souk_buf_append(b, tmp, (size_t)n);
  } else {
    /* Format into a separate block: an argument may point into b itself,
     * and growing b first would free it. */
    char *big = souk_malloc((size_t)n + 1);
    vsnprintf(big, (size_t)n + 1, fmt, ap2);
    souk_buf_append(b, big, (size_t)n);
    souk_free(big);
  }
  va_end(ap2);
}

char *souk_buf_steal(souk_buf_t *b) {
  char *p = b->data;
  if (!p) p = souk_strdup(empty_str);
  memset(b, 0, sizeof *b);
  return p;
}

size_t souk_utf8_seq(const unsigned char *s, size_t n) {
  if (n == 0) return 0;
  unsigned char c = s[0];
  if (c < 0x80) return 1;
  size_t len;
  uint32_t cp;
  if ((c & 0xe0) == 0xc0) {
    len = 2;
    cp = c & 0x1f;
  } else if ((c & 0xf0) == 0xe0) {
    len = 3;
    cp = c & 0x0f;
  } else if ((c & 0xf8) == 0xf0) {
    len = 4;
    cp = c & 0x07;
  } else {
    return 0;
  }
  if (n < len) return 0;
  for (size_t i = 1; i < len; i++) {
    if ((s[i] & 0xc0) != 0x80) return 0;
    cp = (cp << 6) | (s[i] & 0x3f);
  }
  /* Reject overlong forms, surrogates and values past U+10FFFF. */
  if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
      (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
    return 0;
  return len;
}

void souk_buf_json_str(souk_buf_t *b, const char *s, size_t n) {
  static const char hex[] = "0123456789abcdef";
  if (n && buf_owns(b, s)) {
    /* s lives in b, which is about to grow: quote a copy. */
    char *copy = souk_memdup0(s, n);
    souk_buf_json_str(b, copy, n);
    souk_free(copy);
    return;
  }
  souk_buf_reserve(b, n + 2);
  b->data[b->len++] = '"';
  const unsigned char *p = (const unsigned char *)s;
  size_t i = 0;
  while (i < n) {
    /* Copy the longest run that needs no escaping in one go. */
    size_t run = i;
    while (run < n && p[run] >= 0x20 && p[run] < 0x80 && p[run] != '"' && p[run] != '\\')
      run++;
    if (run > i) {
      souk_buf_append(b, s + i, run - i);
      i = run;
      continue;
    }
    unsigned char c = p[i];
    if (c == '"' || c == '\\') {
      char e[2] = {'\\', (char)c};
      souk_buf_append(b, e, 2);
      i++;
    } else if (c < 0x20) {
      char e[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
      if (c == '\n') souk_buf_append(b, "\\n", 2);
      else if (c == '\r') souk_buf_append(b, "\\r", 2);
      else if (c == '\t') souk_buf_append(b, "\\t", 2);
      else souk_buf_append(b, e, 6);
      i++;
    } else {
      size_t l = souk_utf8_seq(p + i, n - i);
      if (l == 0) {
        souk_buf_append(b, "\xef\xbf\xbd", 3);
        i++;
      } else {
        souk_buf_append(b, s + i, l);
        i += l;
      }
    }
  }
  souk_buf_putc(b, '"');
}

void souk_jw_init(souk_jw_t *w, souk_buf_t *b) {
  w->b = b;
  w->depth = 0;
  w->first = 1;
  w->arr = 0;
  w->after_key = false;
}

/* Before any value: a comma unless it is the first in its container or it
 * follows a key. */
static void jw_sep(souk_jw_t *w) {
  if (w->after_key) {
    w->after_key = false;
    return;
  }
  uint64_t bit = UINT64_C(1) << w->depth;
  if (w->first & bit) w->first &= ~bit;
  else souk_buf_putc(w->b, ',');
}

static void jw_open(souk_jw_t *w, char c) {
  jw_sep(w);
  souk_buf_putc(w->b, c);
  SOUK_ASSERT(w->depth < 62);
  w->depth++;
  w->first |= UINT64_C(1) << w->depth;
  if (c == '[') w->arr |= UINT64_C(1) << w->depth;
}

void souk_jw_obj(souk_jw_t *w) { jw_open(w, '{'); }
void souk_jw_arr(souk_jw_t *w) { jw_open(w, '['); }

void souk_jw_end(souk_jw_t *w) {
  SOUK_ASSERT(w->depth > 0 && !w->after_key);
  uint64_t bit = UINT64_C(1) << w->depth;
  char close = (w->arr & bit) ? ']' : '}';
  w->first &= ~bit;
  w->arr &= ~bit;
  w->depth--;
  souk_buf_putc(w->b, close);
}

void souk_jw_key(souk_jw_t *w, const char *k) {
  jw_sep(w);
  souk_buf_json_str(w->b, k, strlen(k));
  souk_buf_putc(w->b, ':');
  w->after_key = true;
}

void souk_jw_strn(souk_jw_t *w, const char *s, size_t n) {
  jw_sep(w);
  souk_buf_json_str(w->b, s, n);
}

void souk_jw_str(souk_jw_t *w, const char *s) {
  if (!s) souk_jw_null(w);
  else souk_jw_strn(w, s, strlen(s));
}

void souk_jw_i64(souk_jw_t *w, int64_t v) {
  jw_sep(w);
  souk_buf_printf(w->b, "%" PRId64, v);
}

void souk_jw_u64(souk_jw_t *w, uint64_t v) {
  jw_sep(w);
  souk_buf_printf(w->b, "%" PRIu64, v);
}

void souk_jw_snowflake(souk_jw_t *w, uint64_t id) {
  jw_sep(w);
  souk_buf_printf(w->b, "\"%" PRIu64 "\"", id);
}

void souk_jw_bool(souk_jw_t *w, bool v) {
  jw_sep(w);
  souk_buf_puts(w->b, v ? "true" : "false");
}

void souk_jw_null(souk_jw_t *w) {
  jw_sep(w);
  souk_buf_puts(w->b, "null");
}

void souk_jw_raw(souk_jw_t *w, const char *json, size_t n) {
  jw_sep(w);
  souk_buf_append(w->b, json, n);
}

/* The length of the character at s that is shown as it is, or 0 for one
 * that must be escaped. */
static size_t plain_char(const unsigned char *s, size_t n) {
  if (s[0] < 0x80) return (s[0] >= 0x20 && s[0] != 0x7f) || s[0] == '\n' || s[0] == '\t';
  size_t l = souk_utf8_seq(s, n);
  /* C1 controls: U+0080..U+009F, encoded C2 80..C2 9F. */
  if (l == 2 && s[0] == 0xC2 && s[1] < 0xA0) return 0;
  return l;
}

bool souk_text_needs_escape(const char *str, size_t n) {
  const unsigned char *s = (const unsigned char *)str;
  for (size_t i = 0; i < n;) {
    size_t l = plain_char(s + i, n - i);
    if (!l) return true;
    i += l;
  }
  return false;
}

void souk_buf_put_escaped(souk_buf_t *b, const char *str, size_t n) {
  const unsigned char *s = (const unsigned char *)str;
  size_t i = 0, run = 0;
  while (i < n) {
    size_t l = plain_char(s + i, n - i);
    if (l) {
      i += l;
      continue;
    }
    souk_buf_append(b, s + run, i - run);
    if (s[i] == 0xC2 && i + 1 < n && s[i + 1] >= 0x80 && s[i + 1] < 0xA0) {
      souk_buf_printf(b, "\\u%04x", s[i + 1]);
      i += 2;
    } else {
      souk_buf_printf(b, "\\x%02x", s[i]);
      i++;
    }
    run = i;
  }
  souk_buf_append(b, s + run, n - run);
}

/* ---- Discord markdown ---- */

static bool md_special(const char *s, size_t i) {
  char c = s[i];
  if (c && strchr("\\*_~`|<>[]", c)) return true;
  return i == 0 && (c == '#' || c == '-');
}

void souk_buf_put_md(souk_buf_t *b, const char *s, size_t n) {
  size_t run = 0;
  for (size_t i = 0; i < n; i++) {
    if (!md_special(s, i)) continue;
    souk_buf_append(b, s + run, i - run);
    souk_buf_putc(b, '\\');
    run = i;
  }
  souk_buf_append(b, s + run, n - run);
}

const char *souk_md_escape(const char *s, char *out, size_t cap) {
  if (!cap) return out;
  size_t o = 0, n = s ? strlen(s) : 0;
  for (size_t i = 0; i < n; i++) {
    bool esc = md_special(s, i);
    /* A whole character (with its backslash) or nothing. */
    size_t l = souk_utf8_seq((const unsigned char *)s + i, n - i);
    if (!l) l = 1;
    if (o + esc + l + 1 > cap) break;
    if (esc) out[o++] = '\\';
    memcpy(out + o, s + i, l);
    o += l;
    i += l - 1;
  }
  out[o] = '\0';
  return out;
}
