/* The configuration system: defaults < YAML file < environment < run-time
 * admin changes.
 *
 * A load builds a staged value for every key of every section (the default
 * first, then the file's value, then the environment's), collecting every
 * problem on the way instead of stopping at the first, because an operator
 * fixing a config file wants the whole list in one run.  Only when nothing
 * is wrong are the staged values moved into the sections' structs, so a bad
 * file never leaves a half-applied configuration behind.
 *
 * The YAML file is read with libyaml's event parser into a small tree that
 * keeps each node's line, because every message must name FILE:LINE.
 * Aliases are refused: a config file has no need for them and expanding
 * them is the classic way to make a YAML reader blow up ("billion laughs"). */
#include "core/config.h"

#include "souk/alloc.h"
#include "souk/err.h"
#include "souk/log.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml.h>

/* A config file is a few kilobytes; anything this large is a mistake (or a
 * fuzzer), and refusing it keeps memory use bounded. */
#define CONF_MAX_FILE (4u << 20)
/* Deeper nesting than this cannot match any key table. */
#define CONF_MAX_DEPTH 64
/* After this many diagnostics the rest are counted but not kept: a binary
 * file passed with -c would otherwise produce thousands of lines.  It is
 * well above the number of keys (about 215), so a file that gets every key
 * wrong still has every key named. */
#define CONF_MAX_DIAGS 1000
/* How much of a bad value a message quotes. */
#define CONF_FOUND_MAX 60
/* Key names longer than this are never close to a real key. */
#define CONF_SUGGEST_MAX 64

/* Where a value in effect came from. */
enum { SRC_DEFAULT, SRC_FILE, SRC_ENV, SRC_ADMIN };

/* --------------------------------------------------------------------------
 * Reports */

static char *xvasprintf(const char *fmt, va_list ap) {
  va_list ap2;
  va_copy(ap2, ap);
  int n = vsnprintf(NULL, 0, fmt, ap2);
  va_end(ap2);
  SOUK_ASSERT(n >= 0);
  char *s = souk_malloc((size_t)n + 1);
  vsnprintf(s, (size_t)n + 1, fmt, ap);
  return s;
}

static void rep_push(souk__conf_report_t *rep, bool warning, const char *file, int line,
                     const char *key, char *msg) {
  if (!warning) rep->nerr++;
  if (rep->n > CONF_MAX_DIAGS) {
    souk_free(msg);
    return;
  }
  if (rep->n == CONF_MAX_DIAGS) {
    souk_free(msg);
    msg = souk_strdup("too many problems; the rest are not shown");
    file = NULL;
    line = 0;
    key = NULL;
  }
  /* The capacity is implicit: at least 8, doubled whenever n reaches a
   * power of two, so the report needs no capacity field. */
  size_t n = rep->n;
  if (n == 0 || (n >= 8 && (n & (n - 1)) == 0))
    rep->v = souk_reallocarray(rep->v, n ? n * 2 : 8, sizeof *rep->v);
  souk__conf_diag_t *d = &rep->v[rep->n++];
  d->file = souk_strdup(file);
  d->line = line;
  d->key = souk_strdup(key);
  d->msg = msg;
  d->warning = warning;
}

/* The config's own problems go through the same function as main's. */
#define rep_add souk__conf_report_add

void souk__conf_report_add(souk__conf_report_t *rep, bool warning, const char *file, int line,
                           const char *key, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  char *msg = xvasprintf(fmt, ap);
  va_end(ap);
  rep_push(rep, warning, file, line, key, msg);
}

void souk__conf_diag_format(const souk__conf_diag_t *d, souk_buf_t *out) {
  if (d->file) {
    souk_buf_puts(out, d->file);
    if (d->line > 0) souk_buf_printf(out, ":%d", d->line);
    souk_buf_puts(out, ": ");
  }
  if (d->warning) souk_buf_puts(out, "warning: ");
  if (d->key) souk_buf_printf(out, "%s: ", d->key);
  souk_buf_puts(out, d->msg ? d->msg : "");
}

void souk__conf_report_print(const souk__conf_report_t *rep, FILE *f) {
  souk_buf_t b;
  souk_buf_init(&b);
  for (size_t i = 0; rep && i < rep->n; i++) {
    souk_buf_reset(&b);
    souk__conf_diag_format(&rep->v[i], &b);
    souk_buf_putc(&b, '\n');
    fwrite(b.data, 1, b.len, f);
  }
  souk_buf_free(&b);
}

void souk__conf_report_log(const souk__conf_report_t *rep) {
  souk_buf_t b;
  souk_buf_init(&b);
  for (size_t i = 0; rep && i < rep->n; i++) {
    souk_buf_reset(&b);
    souk__conf_diag_format(&rep->v[i], &b);
    souk_log(rep->v[i].warning ? SOUK_LOG_WARN : SOUK_LOG_ERROR, "config", "%s", b.data);
  }
  souk_buf_free(&b);
}

void souk__conf_report_free(souk__conf_report_t *rep) {
  if (!rep) return;
  for (size_t i = 0; i < rep->n; i++) {
    souk_free(rep->v[i].file);
    souk_free(rep->v[i].key);
    souk_free(rep->v[i].msg);
  }
  souk_free(rep->v);
  rep->v = NULL;
  rep->n = 0;
  rep->nerr = 0;
}

/* --------------------------------------------------------------------------
 * Text helpers */

static bool utf8_valid(const char *str, size_t n) {
  const unsigned char *s = (const unsigned char *)str;
  size_t i = 0;
  while (i < n) {
    unsigned c = s[i];
    if (c < 0x80) {
      i++;
      continue;
    }
    size_t need;
    uint32_t cp;
    if (c >= 0xC2 && c <= 0xDF) {
      need = 1;
      cp = c & 0x1F;
    } else if (c >= 0xE0 && c <= 0xEF) {
      need = 2;
      cp = c & 0x0F;
    } else if (c >= 0xF0 && c <= 0xF4) {
      need = 3;
      cp = c & 0x07;
    } else {
      return false;
    }
    if (n - i - 1 < need) return false;
    for (size_t j = 1; j <= need; j++) {
      if ((s[i + j] & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (s[i + j] & 0x3F);
    }
    if ((need == 2 && cp < 0x800) || (need == 3 && (cp < 0x10000 || cp > 0x10FFFF)) ||
        (cp >= 0xD800 && cp <= 0xDFFF))
      return false;
    i += need + 1;
  }
  return true;
}

static size_t utf8_chars(const char *s, size_t n) {
  size_t c = 0;
  for (size_t i = 0; i < n; i++)
    if (((unsigned char)s[i] & 0xC0) != 0x80) c++;
  return c;
}

/* The password of the first URL in s[0..n) at or after from, as in
 * scheme://user:PASSWORD@host: [*ps, *pe).  Userinfo ends at the last '@'
 * before the path, so a password holding '@' is hidden whole. */
static bool url_password_at(const char *s, size_t n, size_t from, size_t *ps, size_t *pe) {
  for (size_t i = from; i + 3 <= n; i++) {
    if (memcmp(s + i, "://", 3) != 0) continue;
    size_t a = i + 3, end = a, at = 0, colon = 0;
    while (end < n && !strchr("/?# \t\n,]", s[end]))
      end++;
    for (size_t p = a; p < end; p++) {
      if (s[p] == '@') at = p;
      if (s[p] == ':' && !colon) colon = p;
    }
    if (at && colon && colon < at) {
      *ps = colon + 1;
      *pe = at;
      return true;
    }
    i = end ? end - 1 : i;
  }
  return false;
}

/* Whether s[0..n) holds a URL with a password. */
static bool has_url_password(const char *s, size_t n) {
  size_t a, e;
  return url_password_at(s, n, 0, &a, &e);
}

/* Append s[0..n) with every URL password replaced by "***": what any
 * output of a value shows, since store.url and the price providers' URLs
 * may carry one. */
static void put_masked(souk_buf_t *b, const char *s, size_t n) {
  size_t from = 0, a, e;
  while (url_password_at(s, n, from, &a, &e)) {
    souk_buf_append(b, s + from, a - from);
    souk_buf_puts(b, "***");
    from = e;
  }
  souk_buf_append(b, s + from, n - from);
}

/* Append s[0..n) for a message: quoted, cut short, control characters
 * escaped, so a value can never break the one-line-per-problem format, and
 * URL passwords hidden. */
void souk__conf_quote(souk_buf_t *b, const char *str, size_t len) {
  souk_buf_t m;
  souk_buf_init(&m);
  put_masked(&m, str, len);
  const char *s = m.data ? m.data : "";
  size_t n = m.len;
  size_t lim = n;
  bool cut = false;
  if (lim > CONF_FOUND_MAX) {
    lim = CONF_FOUND_MAX;
    /* Never cut a UTF-8 sequence in half. */
    while (lim > 0 && ((unsigned char)s[lim] & 0xC0) == 0x80)
      lim--;
    cut = true;
  }
  souk_buf_putc(b, '\'');
  for (size_t i = 0; i < lim; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c == '\n')
      souk_buf_puts(b, "\\n");
    else if (c == '\t')
      souk_buf_puts(b, "\\t");
    else if (c < 0x20 || c == 0x7f)
      souk_buf_printf(b, "\\x%02x", c);
    else
      souk_buf_putc(b, (char)c);
  }
  if (cut) souk_buf_puts(b, "...");
  souk_buf_putc(b, '\'');
  souk_buf_free(&m);
}

/* Optimal string alignment distance (Levenshtein plus transpositions),
 * for "did you mean" suggestions. */
static size_t edit_distance(const char *a, const char *b) {
  size_t la = strlen(a), lb = strlen(b);
  if (la > CONF_SUGGEST_MAX || lb > CONF_SUGGEST_MAX) return SIZE_MAX;
  size_t d[CONF_SUGGEST_MAX + 1][CONF_SUGGEST_MAX + 1];
  for (size_t i = 0; i <= la; i++)
    d[i][0] = i;
  for (size_t j = 0; j <= lb; j++)
    d[0][j] = j;
  for (size_t i = 1; i <= la; i++) {
    for (size_t j = 1; j <= lb; j++) {
      size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
      size_t v = d[i - 1][j] + 1;
      if (d[i][j - 1] + 1 < v) v = d[i][j - 1] + 1;
      if (d[i - 1][j - 1] + cost < v) v = d[i - 1][j - 1] + cost;
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] && d[i - 2][j - 2] + 1 < v)
        v = d[i - 2][j - 2] + 1;
      d[i][j] = v;
    }
  }
  return d[la][lb];
}

/* How far a typo may be from the real name and still be suggested. */
static size_t suggest_limit(const char *s) {
  size_t n = strlen(s);
  return n <= 4 ? 1 : n <= 9 ? 2 : 3;
}

static const char *last_part(const char *s) {
  const char *d = strrchr(s, '.');
  return d ? d + 1 : s;
}

/* SOUK_<SECTION>_<KEY>: upper case, dots and dashes as underscores. */
static void env_name(souk_buf_t *b, const char *sec, const char *key) {
  souk_buf_puts(b, "SOUK_");
  for (int part = 0; part < 2; part++) {
    for (const char *s = part ? key : sec; *s; s++) {
      char c = *s;
      souk_buf_putc(b, (c == '.' || c == '-') ? '_' : (char)toupper((unsigned char)c));
    }
    if (!part) souk_buf_putc(b, '_');
  }
}

/* --------------------------------------------------------------------------
 * Values */

typedef union cval {
  char *s;
  int64_t i;
  bool b;
  int e;
  uint64_t id;
  souk_conf_ids_t ids;
  souk_conf_strs_t strs;
  double d;
} cval_t;

static bool type_is_str(souk_conf_type_t t) {
  return t == SOUK_CONF_STRING || t == SOUK_CONF_URL || t == SOUK_CONF_TOKEN;
}

static bool type_is_list(souk_conf_type_t t) {
  return t == SOUK_CONF_SNOWFLAKE_LIST || t == SOUK_CONF_STRING_LIST;
}

/* Whether the field holds memory the config allocates and frees. */
static bool type_owns(souk_conf_type_t t) { return type_is_str(t) || type_is_list(t); }

static void val_free(const souk_conf_key_t *k, cval_t *v) {
  if (type_is_str(k->type)) {
    souk_free(v->s);
  } else if (k->type == SOUK_CONF_SNOWFLAKE_LIST) {
    souk_free(v->ids.ids);
  } else if (k->type == SOUK_CONF_STRING_LIST) {
    for (size_t i = 0; i < v->strs.n; i++)
      souk_free(v->strs.v[i]);
    souk_free(v->strs.v);
  }
  memset(v, 0, sizeof *v);
}

static void *field(const souk_conf_section_t *sec, const souk_conf_key_t *k) {
  return (char *)sec->data + k->offset;
}

/* A shallow view of the field's current value (nothing is copied). */
static void val_read(const souk_conf_section_t *sec, const souk_conf_key_t *k, cval_t *v) {
  void *p = field(sec, k);
  memset(v, 0, sizeof *v);
  switch (k->type) {
  case SOUK_CONF_STRING:
  case SOUK_CONF_URL:
  case SOUK_CONF_TOKEN:
    memcpy(&v->s, p, sizeof v->s);
    break;
  case SOUK_CONF_INT:
  case SOUK_CONF_DURATION:
  case SOUK_CONF_SIZE:
    memcpy(&v->i, p, sizeof v->i);
    break;
  case SOUK_CONF_BOOL:
    memcpy(&v->b, p, sizeof v->b);
    break;
  case SOUK_CONF_ENUM:
    memcpy(&v->e, p, sizeof v->e);
    break;
  case SOUK_CONF_SNOWFLAKE:
    memcpy(&v->id, p, sizeof v->id);
    break;
  case SOUK_CONF_SNOWFLAKE_LIST:
    memcpy(&v->ids, p, sizeof v->ids);
    break;
  case SOUK_CONF_STRING_LIST:
    memcpy(&v->strs, p, sizeof v->strs);
    break;
  case SOUK_CONF_DOUBLE:
    memcpy(&v->d, p, sizeof v->d);
    break;
  }
}

/* Store v in the field (ownership moves to the field; the caller has
 * already released what the field held). */
static void val_write(const souk_conf_section_t *sec, const souk_conf_key_t *k, const cval_t *v) {
  void *p = field(sec, k);
  switch (k->type) {
  case SOUK_CONF_STRING:
  case SOUK_CONF_URL:
  case SOUK_CONF_TOKEN:
    memcpy(p, &v->s, sizeof v->s);
    break;
  case SOUK_CONF_INT:
  case SOUK_CONF_DURATION:
  case SOUK_CONF_SIZE:
    memcpy(p, &v->i, sizeof v->i);
    break;
  case SOUK_CONF_BOOL:
    memcpy(p, &v->b, sizeof v->b);
    break;
  case SOUK_CONF_ENUM:
    memcpy(p, &v->e, sizeof v->e);
    break;
  case SOUK_CONF_SNOWFLAKE:
    memcpy(p, &v->id, sizeof v->id);
    break;
  case SOUK_CONF_SNOWFLAKE_LIST:
    memcpy(p, &v->ids, sizeof v->ids);
    break;
  case SOUK_CONF_STRING_LIST:
    memcpy(p, &v->strs, sizeof v->strs);
    break;
  case SOUK_CONF_DOUBLE:
    memcpy(p, &v->d, sizeof v->d);
    break;
  }
}

static bool val_eq(const souk_conf_key_t *k, const cval_t *a, const cval_t *b) {
  switch (k->type) {
  case SOUK_CONF_STRING:
  case SOUK_CONF_URL:
  case SOUK_CONF_TOKEN:
    if (!a->s || !b->s) return a->s == b->s;
    return strcmp(a->s, b->s) == 0;
  case SOUK_CONF_INT:
  case SOUK_CONF_DURATION:
  case SOUK_CONF_SIZE:
    return a->i == b->i;
  case SOUK_CONF_BOOL:
    return a->b == b->b;
  case SOUK_CONF_ENUM:
    return a->e == b->e;
  case SOUK_CONF_SNOWFLAKE:
    return a->id == b->id;
  case SOUK_CONF_SNOWFLAKE_LIST:
    if (a->ids.n != b->ids.n) return false;
    for (size_t i = 0; i < a->ids.n; i++)
      if (a->ids.ids[i] != b->ids.ids[i]) return false;
    return true;
  case SOUK_CONF_STRING_LIST:
    if (a->strs.n != b->strs.n) return false;
    for (size_t i = 0; i < a->strs.n; i++)
      if (strcmp(a->strs.v[i], b->strs.v[i]) != 0) return false;
    return true;
  case SOUK_CONF_DOUBLE:
    return a->d == b->d;
  }
  return false;
}

/* Whether a value counts as set (for secrets and required keys). */
static bool val_isset(const souk_conf_key_t *k, const cval_t *v) {
  switch (k->type) {
  case SOUK_CONF_STRING:
  case SOUK_CONF_URL:
  case SOUK_CONF_TOKEN:
    return v->s != NULL;
  case SOUK_CONF_ENUM:
    return v->e >= 0;
  case SOUK_CONF_SNOWFLAKE:
    return v->id != 0;
  case SOUK_CONF_SNOWFLAKE_LIST:
    return v->ids.n > 0;
  case SOUK_CONF_STRING_LIST:
    return v->strs.n > 0;
  default:
    return true;
  }
}

static void fmt_duration(souk_buf_t *b, int64_t ms) {
  static const struct {
    int64_t ms;
    const char *unit;
  } units[] = {{86400000, "d"}, {3600000, "h"}, {60000, "m"}, {1000, "s"}, {1, "ms"}};
  if (ms == 0) {
    souk_buf_puts(b, "0s");
    return;
  }
  for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
    if (ms >= units[i].ms) {
      souk_buf_printf(b, "%" PRId64 "%s", ms / units[i].ms, units[i].unit);
      ms %= units[i].ms;
    }
  }
}

static void fmt_size(souk_buf_t *b, int64_t n) {
  static const char *const units[] = {"TB", "GB", "MB", "KB"};
  for (int i = 0; i < 4; i++) {
    int64_t u = (int64_t)1 << (10 * (4 - i));
    if (n != 0 && n % u == 0) {
      souk_buf_printf(b, "%" PRId64 "%s", n / u, units[i]);
      return;
    }
  }
  souk_buf_printf(b, "%" PRId64, n);
}

static void fmt_double(souk_buf_t *b, double d) {
  /* The shortest of %.15g and %.17g that reads back exactly. */
  char tmp[64];
  snprintf(tmp, sizeof tmp, "%.15g", d);
  if (strtod(tmp, NULL) != d) snprintf(tmp, sizeof tmp, "%.17g", d);
  souk_buf_puts(b, tmp);
}

static void fmt_string(souk_buf_t *b, const char *str) {
  souk_buf_t m;
  souk_buf_init(&m);
  put_masked(&m, str, strlen(str));
  const char *s = m.data ? m.data : "";
  souk_buf_putc(b, '"');
  for (; *s; s++) {
    unsigned char c = (unsigned char)*s;
    if (c == '"' || c == '\\')
      souk_buf_printf(b, "\\%c", c);
    else if (c == '\n')
      souk_buf_puts(b, "\\n");
    else if (c < 0x20 || c == 0x7f)
      souk_buf_printf(b, "\\x%02x", c);
    else
      souk_buf_putc(b, (char)c);
  }
  souk_buf_putc(b, '"');
  souk_buf_free(&m);
}

/* The value as text; a secret shows only whether it is set. */
static void val_format(const souk_conf_key_t *k, const cval_t *v, souk_buf_t *b) {
  if (!val_isset(k, v) &&
      (type_is_str(k->type) || k->type == SOUK_CONF_SNOWFLAKE || k->type == SOUK_CONF_ENUM)) {
    souk_buf_puts(b, "unset");
    return;
  }
  if (k->flags & SOUK_CONF_SECRET) {
    souk_buf_puts(b, val_isset(k, v) ? "set" : "unset");
    return;
  }
  switch (k->type) {
  case SOUK_CONF_STRING:
  case SOUK_CONF_URL:
  case SOUK_CONF_TOKEN:
    fmt_string(b, v->s);
    break;
  case SOUK_CONF_INT:
    souk_buf_printf(b, "%" PRId64, v->i);
    break;
  case SOUK_CONF_DURATION:
    fmt_duration(b, v->i);
    break;
  case SOUK_CONF_SIZE:
    fmt_size(b, v->i);
    break;
  case SOUK_CONF_BOOL:
    souk_buf_puts(b, v->b ? "true" : "false");
    break;
  case SOUK_CONF_ENUM:
    souk_buf_puts(b, k->choices[v->e]);
    break;
  case SOUK_CONF_SNOWFLAKE:
    souk_buf_printf(b, "%" PRIu64, v->id);
    break;
  case SOUK_CONF_SNOWFLAKE_LIST:
    souk_buf_putc(b, '[');
    for (size_t i = 0; i < v->ids.n; i++)
      souk_buf_printf(b, "%s%" PRIu64, i ? ", " : "", v->ids.ids[i]);
    souk_buf_putc(b, ']');
    break;
  case SOUK_CONF_STRING_LIST:
    souk_buf_putc(b, '[');
    for (size_t i = 0; i < v->strs.n; i++) {
      if (i) souk_buf_puts(b, ", ");
      fmt_string(b, v->strs.v[i]);
    }
    souk_buf_putc(b, ']');
    break;
  case SOUK_CONF_DOUBLE:
    fmt_double(b, v->d);
    break;
  }
}

/* --------------------------------------------------------------------------
 * Parsing one value */

/* Bounds of a key: min always applies and max 0 means no upper bound
 * (conf.h), so a key with neither is a count of at least 0. */
static void int_bounds(const souk_conf_key_t *k, int64_t *lo, int64_t *hi) {
  *lo = k->min;
  *hi = k->max == 0 ? INT64_MAX : k->max;
}

/* What a key expects, for "expected <what>, found ...".  range asks for
 * the bounds rather than the syntax of durations and sizes. */
static void describe(const souk_conf_key_t *k, bool range, souk_buf_t *b) {
  int64_t lo, hi;
  int_bounds(k, &lo, &hi);
  switch (k->type) {
  case SOUK_CONF_STRING:
    if (k->max > 0)
      souk_buf_printf(b, "text of at most %" PRId64 " characters", k->max);
    else
      souk_buf_puts(b, "text");
    break;
  case SOUK_CONF_INT:
  case SOUK_CONF_DOUBLE: {
    const char *what = k->type == SOUK_CONF_INT ? "an integer" : "a number";
    if (lo == INT64_MIN && hi == INT64_MAX)
      souk_buf_puts(b, what);
    else if (lo == INT64_MIN)
      souk_buf_printf(b, "%s of at most %" PRId64, what, hi);
    else if (hi == INT64_MAX)
      souk_buf_printf(b, "%s of at least %" PRId64, what, lo);
    else
      souk_buf_printf(b, "%s between %" PRId64 " and %" PRId64, what, lo, hi);
    break;
  }
  case SOUK_CONF_BOOL:
    souk_buf_puts(b, "true or false (or yes/no, on/off, 1/0)");
    break;
  case SOUK_CONF_ENUM:
    souk_buf_puts(b, "one of ");
    for (size_t i = 0; k->choices[i]; i++)
      souk_buf_printf(b, "%s%s", i ? ", " : "", k->choices[i]);
    break;
  case SOUK_CONF_DURATION:
  case SOUK_CONF_SIZE: {
    bool dur = k->type == SOUK_CONF_DURATION;
    void (*fmt)(souk_buf_t *, int64_t) = dur ? fmt_duration : fmt_size;
    const char *what = dur ? "a duration" : "a size";
    if (!range) {
      souk_buf_puts(b, dur ? "a duration like 30s, 5m, 2h" : "a size like 512, 64KB, 10MB, 2GB");
    } else if (hi == INT64_MAX) {
      souk_buf_printf(b, "%s of at least ", what);
      fmt(b, lo);
    } else {
      souk_buf_printf(b, "%s between ", what);
      fmt(b, lo);
      souk_buf_puts(b, " and ");
      fmt(b, hi);
    }
    break;
  }
  case SOUK_CONF_SNOWFLAKE:
    souk_buf_puts(b, "a Discord snowflake id (17-20 digits)");
    break;
  case SOUK_CONF_SNOWFLAKE_LIST:
    souk_buf_puts(b, "a list of Discord snowflake ids (17-20 digits each)");
    break;
  case SOUK_CONF_STRING_LIST:
    souk_buf_puts(b, "a list of strings");
    break;
  case SOUK_CONF_URL:
    souk_buf_puts(b, "a URL like https://host[:port]/path (http, https, ws, wss, postgres, "
                     "postgresql, redis, rediss or unix)");
    break;
  case SOUK_CONF_TOKEN:
    souk_buf_puts(b, "a Discord bot token (three dot-separated base64url parts)");
    break;
  }
}

/* msg = "expected <what>, found <value>", never quoting a secret. */
static void expect_found(souk_buf_t *msg, const souk_conf_key_t *k, bool range, const char *s,
                         size_t n) {
  souk_buf_puts(msg, "expected ");
  describe(k, range, msg);
  souk_buf_puts(msg, ", found ");
  if (k->flags & SOUK_CONF_SECRET) {
    souk_buf_puts(msg, "a malformed value");
  } else {
    souk__conf_quote(msg, s, n);
  }
}

static bool parse_i64(const char *s, int64_t *out) {
  const char *p = s;
  bool neg = false;
  if (*p == '+' || *p == '-') neg = *p++ == '-';
  if (!isdigit((unsigned char)*p)) return false;
  uint64_t lim = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX, acc = 0;
  for (; isdigit((unsigned char)*p); p++) {
    unsigned d = (unsigned)(*p - '0');
    if (acc > (lim - d) / 10) return false;
    acc = acc * 10 + d;
  }
  if (*p) return false;
  *out = neg ? (acc == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)acc) : (int64_t)acc;
  return true;
}

/* Digits at *pp into *out (at most INT64_MAX); advances *pp. */
static bool parse_digits(const char **pp, uint64_t *out) {
  const char *p = *pp;
  if (!isdigit((unsigned char)*p)) return false;
  uint64_t acc = 0;
  for (; isdigit((unsigned char)*p); p++) {
    unsigned d = (unsigned)(*p - '0');
    if (acc > ((uint64_t)INT64_MAX - d) / 10) return false;
    acc = acc * 10 + d;
  }
  *pp = p;
  *out = acc;
  return true;
}

/* "250ms", "30s", "5m", "4h", "1d", combinations such as "1h30m", or a bare
 * integer, which means seconds. */
static bool parse_duration(const char *s, int64_t *out) {
  const char *p = s;
  uint64_t n, total = 0;
  if (!parse_digits(&p, &n)) return false;
  if (!*p) {
    if (n > (uint64_t)INT64_MAX / 1000) return false;
    *out = (int64_t)(n * 1000);
    return true;
  }
  p = s;
  while (*p) {
    if (!parse_digits(&p, &n)) return false;
    uint64_t mult;
    if (p[0] == 'm' && p[1] == 's') {
      mult = 1;
      p += 2;
    } else if (*p == 's') {
      mult = 1000, p++;
    } else if (*p == 'm') {
      mult = 60000, p++;
    } else if (*p == 'h') {
      mult = 3600000, p++;
    } else if (*p == 'd') {
      mult = 86400000, p++;
    } else {
      return false;
    }
    if (n > ((uint64_t)INT64_MAX - total) / mult) return false;
    total += n * mult;
  }
  *out = (int64_t)total;
  return true;
}

/* "512", "64K", "64KB", "64KiB", "10MB", "2GB", "1TB"; 1024-based. */
static bool parse_size(const char *s, int64_t *out) {
  const char *p = s;
  uint64_t n;
  if (!parse_digits(&p, &n)) return false;
  while (*p == ' ')
    p++;
  unsigned shift = 0;
  int c = tolower((unsigned char)*p);
  if (c == 'k' || c == 'm' || c == 'g' || c == 't') {
    shift = c == 'k' ? 10 : c == 'm' ? 20 : c == 'g' ? 30 : 40;
    p++;
    if (tolower((unsigned char)*p) == 'i') p++;
    if (tolower((unsigned char)*p) == 'b') p++;
  } else if (c == 'b') {
    p++;
  }
  if (*p) return false;
  if (n > ((uint64_t)INT64_MAX >> shift)) return false;
  *out = (int64_t)(n << shift);
  return true;
}

static bool parse_bool(const char *s, bool *out) {
  static const char *const yes[] = {"true", "yes", "on", "1"};
  static const char *const no[] = {"false", "no", "off", "0"};
  for (int i = 0; i < 4; i++) {
    if (!strcasecmp(s, yes[i]) || !strcasecmp(s, no[i])) {
      *out = !strcasecmp(s, yes[i]);
      return true;
    }
  }
  return false;
}

/* A snowflake: 17-20 digits, no leading zero, fits in 64 bits. */
static bool parse_snowflake(const char *s, size_t n, uint64_t *out) {
  if (n < 17 || n > 20 || s[0] == '0') return false;
  uint64_t acc = 0;
  for (size_t i = 0; i < n; i++) {
    if (!isdigit((unsigned char)s[i])) return false;
    unsigned d = (unsigned)(s[i] - '0');
    if (acc > (UINT64_MAX - d) / 10) return false;
    acc = acc * 10 + d;
  }
  *out = acc;
  return true;
}

static bool parse_double(const char *s, double *out) {
  /* Only plain decimal notation: strtod alone would also take "nan",
   * "inf" and hexadecimal floats. */
  if (!*s) return false;
  for (const char *p = s; *p; p++)
    if (!isdigit((unsigned char)*p) && !strchr("+-.eE", *p)) return false;
  char *end;
  errno = 0;
  double d = strtod(s, &end);
  if (*end || errno == ERANGE || !isfinite(d)) return false;
  *out = d;
  return true;
}

static int b64_value(int c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '-' || c == '+') return 62;
  if (c == '_' || c == '/') return 63;
  return -1;
}

static bool is_b64url(int c) { return isalnum(c) || c == '-' || c == '_'; }

/* A bot token is base64(user id) "." timestamp "." HMAC, each part
 * base64url; the first part must decode (padding optional) to the bot's
 * snowflake id. */
static bool token_valid(const char *s) {
  const char *d1 = strchr(s, '.');
  if (!d1) return false;
  const char *d2 = strchr(d1 + 1, '.');
  if (!d2 || strchr(d2 + 1, '.')) return false;
  size_t l1 = (size_t)(d1 - s), l2 = (size_t)(d2 - d1 - 1), l3 = strlen(d2 + 1);
  while (l1 > 0 && s[l1 - 1] == '=')
    l1--;
  if (l1 == 0 || l1 > 40 || l1 % 4 == 1 || l2 < 4 || l3 < 20) return false;
  for (size_t i = 0; i < l1; i++)
    if (!is_b64url((unsigned char)s[i])) return false;
  for (const char *p = d1 + 1; *p; p++)
    if (p != d2 && !is_b64url((unsigned char)*p)) return false;
  char dec[32];
  size_t nd = 0;
  uint32_t acc = 0;
  int bits = 0;
  for (size_t i = 0; i < l1; i++) {
    acc = (acc << 6) | (uint32_t)b64_value((unsigned char)s[i]);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      dec[nd++] = (char)((acc >> bits) & 0xff);
    }
  }
  uint64_t id;
  return parse_snowflake(dec, nd, &id);
}

/* scheme://[user[:pass]@]host[:port][/path][?query] with a scheme from the
 * allow-list; unix:///path has no host.  Stricter than souk_url_parse()
 * (src/net/url.c, which the core library cannot link), so any URL this
 * accepts also splits there. */
static bool url_valid(const char *s) {
  static const char *const schemes[] = {"http",       "https", "ws",     "wss",  "postgres",
                                        "postgresql", "redis", "rediss", "unix", NULL};
  for (const char *p = s; *p; p++)
    if ((unsigned char)*p <= 0x20 || *p == 0x7f) return false;
  const char *sep = strstr(s, "://");
  if (!sep || sep == s) return false;
  size_t sl = (size_t)(sep - s);
  bool ok = false, unix_sock = false;
  for (size_t i = 0; schemes[i]; i++) {
    if (strlen(schemes[i]) == sl && !strncasecmp(s, schemes[i], sl)) {
      ok = true;
      unix_sock = !strcmp(schemes[i], "unix");
    }
  }
  if (!ok) return false;
  const char *a = sep + 3;
  const char *end = a + strcspn(a, "/?");
  if (unix_sock) return a == end && *end == '/' && end[1];
  const char *at = NULL;
  for (const char *p = a; p < end; p++) {
    if (*p == '@') {
      if (at) return false; /* a second '@' must be written %40 */
      at = p;
    }
  }
  const char *h = at ? at + 1 : a, *he, *port = NULL;
  if (*h == '[') {
    const char *rb = memchr(h, ']', (size_t)(end - h));
    if (!rb || rb == h + 1) return false;
    for (const char *p = h + 1; p < rb; p++)
      if (!isxdigit((unsigned char)*p) && *p != ':' && *p != '.') return false;
    he = rb + 1;
    if (he < end) {
      if (*he != ':') return false;
      port = he + 1;
    }
  } else {
    he = memchr(h, ':', (size_t)(end - h));
    if (he)
      port = he + 1;
    else
      he = end;
    if (he == h) return false;
    for (const char *p = h; p < he; p++)
      if (!isalnum((unsigned char)*p) && *p != '-' && *p != '.' && *p != '_' && *p != '%')
        return false;
  }
  if (port) {
    if (port == end || end - port > 5) return false;
    long v = 0;
    for (const char *p = port; p < end; p++) {
      if (!isdigit((unsigned char)*p)) return false;
      v = v * 10 + (*p - '0');
    }
    if (v < 1 || v > 65535) return false;
  }
  return true;
}

/* Split a comma list into trimmed, non-empty items. */
static size_t split_list(const char *s, char ***out) {
  size_t n = 0, cap = 0;
  char **v = NULL;
  const char *p = s;
  for (;;) {
    const char *e = p + strcspn(p, ",");
    const char *a = p, *b = e;
    while (a < b && isspace((unsigned char)*a))
      a++;
    while (b > a && isspace((unsigned char)b[-1]))
      b--;
    if (b > a) {
      if (n == cap) {
        cap = cap ? cap * 2 : 4;
        v = souk_reallocarray(v, cap, sizeof *v);
      }
      v[n++] = souk_strndup(a, (size_t)(b - a));
    }
    if (!*e) break;
    p = e + 1;
  }
  *out = v;
  return n;
}

static void strs_push(souk_conf_strs_t *l, char *s) {
  l->v = souk_reallocarray(l->v, l->n + 1, sizeof *l->v);
  l->v[l->n++] = s;
}

static void ids_push(souk_conf_ids_t *l, uint64_t id) {
  l->ids = souk_reallocarray(l->ids, l->n + 1, sizeof *l->ids);
  l->ids[l->n++] = id;
}

/* Check that s[0..n) is text at all: UTF-8 without NUL bytes. */
static bool text_ok(const souk_conf_key_t *k, const char *s, size_t n, souk_buf_t *msg) {
  if (memchr(s, 0, n)) {
    souk_buf_puts(msg, "expected text without NUL characters, found a NUL character");
    return false;
  }
  if (!utf8_valid(s, n)) {
    souk_buf_puts(msg, "expected UTF-8 text, found invalid bytes");
    return false;
  }
  (void)k;
  return true;
}

/* Parse the text s (n bytes, NUL-terminated at n) for key k's type into
 * out.  A list takes comma-separated items.  Returns true, or false with
 * "expected ..., found ..." in msg. */
static bool parse_type(const souk_conf_key_t *k, const char *s, size_t n, cval_t *out,
                       souk_buf_t *msg) {
  memset(out, 0, sizeof *out);
  if (!text_ok(k, s, n, msg)) return false;
  int64_t lo, hi;
  int_bounds(k, &lo, &hi);
  switch (k->type) {
  case SOUK_CONF_STRING:
    if (k->max > 0 && utf8_chars(s, n) > (size_t)k->max) {
      souk_buf_printf(msg, "expected text of at most %" PRId64 " characters, found %zu characters",
                      k->max, utf8_chars(s, n));
      return false;
    }
    /* An empty string unsets: consumers test for NULL, not for "". */
    out->s = n ? souk_memdup0(s, n) : NULL;
    return true;
  case SOUK_CONF_URL:
  case SOUK_CONF_TOKEN:
    if (n == 0) return true;
    if (k->type == SOUK_CONF_URL ? !url_valid(s) : !token_valid(s)) {
      expect_found(msg, k, false, s, n);
      if (k->type == SOUK_CONF_TOKEN && !strncasecmp(s, "Bot ", 4))
        souk_buf_puts(msg, " (leave out the 'Bot ' prefix)");
      return false;
    }
    out->s = souk_memdup0(s, n);
    return true;
  case SOUK_CONF_INT:
    if (!parse_i64(s, &out->i) || out->i < lo || out->i > hi) {
      expect_found(msg, k, true, s, n);
      return false;
    }
    return true;
  case SOUK_CONF_DURATION:
  case SOUK_CONF_SIZE: {
    bool ok = k->type == SOUK_CONF_DURATION ? parse_duration(s, &out->i) : parse_size(s, &out->i);
    if (!ok || out->i < lo || out->i > hi) {
      expect_found(msg, k, ok, s, n);
      return false;
    }
    return true;
  }
  case SOUK_CONF_DOUBLE:
    if (!parse_double(s, &out->d) || out->d < (double)lo || out->d > (double)hi) {
      expect_found(msg, k, true, s, n);
      return false;
    }
    return true;
  case SOUK_CONF_BOOL:
    if (!parse_bool(s, &out->b)) {
      expect_found(msg, k, false, s, n);
      return false;
    }
    return true;
  case SOUK_CONF_ENUM:
    for (int i = 0; k->choices[i]; i++) {
      if (!strcasecmp(s, k->choices[i])) {
        out->e = i;
        return true;
      }
    }
    expect_found(msg, k, false, s, n);
    return false;
  case SOUK_CONF_SNOWFLAKE:
    if (n == 0) return true;
    if (!parse_snowflake(s, n, &out->id)) {
      expect_found(msg, k, false, s, n);
      return false;
    }
    return true;
  case SOUK_CONF_SNOWFLAKE_LIST:
  case SOUK_CONF_STRING_LIST: {
    char **items;
    size_t ni = split_list(s, &items);
    bool ok = true;
    for (size_t i = 0; i < ni; i++) {
      if (!ok) {
        souk_free(items[i]);
        continue;
      }
      if (k->type == SOUK_CONF_STRING_LIST) {
        strs_push(&out->strs, items[i]);
        continue;
      }
      uint64_t id;
      if (parse_snowflake(items[i], strlen(items[i]), &id)) {
        ids_push(&out->ids, id);
      } else {
        expect_found(msg, k, false, items[i], strlen(items[i]));
        ok = false;
      }
      souk_free(items[i]);
    }
    souk_free(items);
    if (!ok) val_free(k, out);
    return ok;
  }
  }
  return false;
}

/* The key's own check (conf.h) of one value s[0..n) (a list's item), so a
 * value that has the right type but cannot work ("not an address" for
 * http.bind) is refused with the file and line like any other.  Returns
 * true, or false with "expected ..., found ..." in msg. */
static bool value_check(const souk_conf_section_t *sec, const souk_conf_key_t *k, const char *s,
                        size_t n, souk_buf_t *msg) {
  souk_conf_check_cb check = NULL;
  for (const souk_conf_check_t *c = sec->checks; c && c->key && !check; c++)
    if (!strcmp(c->key, k->name)) check = c->fn;
  if (!check || n == 0) return true;
  souk_buf_t want;
  souk_buf_init(&want);
  bool ok = check(s, &want);
  if (!ok) {
    souk_buf_printf(msg, "expected %s, found ", want.len ? want.data : "a valid value");
    if (k->flags & SOUK_CONF_SECRET)
      souk_buf_puts(msg, "a value that does not fit");
    else
      souk__conf_quote(msg, s, n);
  }
  souk_buf_free(&want);
  return ok;
}

/* parse_type(), then the key's own check of the value or of each item. */
static bool parse_text(const souk_conf_section_t *sec, const souk_conf_key_t *k, const char *s,
                       size_t n, cval_t *out, souk_buf_t *msg) {
  if (!parse_type(k, s, n, out, msg)) return false;
  bool ok = true;
  if (k->type == SOUK_CONF_STRING_LIST) {
    for (size_t i = 0; i < out->strs.n && ok; i++)
      ok = value_check(sec, k, out->strs.v[i], strlen(out->strs.v[i]), msg);
  } else if (!type_is_list(k->type)) {
    ok = value_check(sec, k, s, n, msg);
  }
  if (!ok) val_free(k, out);
  return ok;
}

/* --------------------------------------------------------------------------
 * Key tables */

static size_t nkeys(const souk_conf_section_t *sec) {
  size_t n = 0;
  while (sec->keys && sec->keys[n].name)
    n++;
  return n;
}

/* True if key name a is a dotted prefix of b ("presence" of
 * "presence.status"). */
static bool is_prefix(const char *a, size_t la, const char *b) {
  return strncmp(a, b, la) == 0 && b[la] == '.';
}

/* Broken tables are programming errors: assert, naming the key. */
static void tables_check(const souk_conf_section_t *secs, size_t nsecs) {
  souk_buf_t a, b;
  souk_buf_init(&a);
  souk_buf_init(&b);
  for (size_t i = 0; i < nsecs; i++) {
    const souk_conf_section_t *s = &secs[i];
    SOUK_ASSERT(s->name && *s->name && !strchr(s->name, '.'));
    for (size_t j = 0; j < i; j++)
      SOUK_ASSERT(strcmp(secs[j].name, s->name) != 0);
    size_t n = nkeys(s);
    SOUK_ASSERT(n == 0 || s->data);
    /* A check of a key that does not exist would never run. */
    for (const souk_conf_check_t *c = s->checks; c && c->key; c++) {
      bool found = false;
      for (size_t x = 0; x < n && !found; x++)
        found = !strcmp(s->keys[x].name, c->key);
      SOUK_ASSERT(found && c->fn);
    }
    for (size_t x = 0; x < n; x++) {
      const souk_conf_key_t *k = &s->keys[x];
      SOUK_ASSERT(*k->name && k->type <= SOUK_CONF_DOUBLE);
      SOUK_ASSERT(k->type != SOUK_CONF_ENUM || (k->choices && k->choices[0]));
      for (size_t y = 0; y < x; y++) {
        const char *o = s->keys[y].name;
        SOUK_ASSERT(strcmp(o, k->name) != 0);
        SOUK_ASSERT(!is_prefix(o, strlen(o), k->name) && !is_prefix(k->name, strlen(k->name), o));
      }
      /* Two keys with one environment name could never be told apart. */
      souk_buf_reset(&a);
      env_name(&a, s->name, k->name);
      for (size_t j = 0; j <= i; j++) {
        size_t m = j == i ? x : nkeys(&secs[j]);
        for (size_t y = 0; y < m; y++) {
          souk_buf_reset(&b);
          env_name(&b, secs[j].name, secs[j].keys[y].name);
          SOUK_ASSERT(strcmp(a.data, b.data) != 0);
        }
      }
    }
  }
  souk_buf_free(&a);
  souk_buf_free(&b);
}

/* --------------------------------------------------------------------------
 * What is in effect: one record per key, kept across loads. */

typedef struct kstate {
  const void *data;
  const souk_conf_key_t *key;
  int src;
  char *where; /* "FILE:LINE" for the file, the variable's name for env */
  bool owned;  /* the field holds memory the config allocated */
} kstate_t;

static kstate_t *g_state;
static size_t g_nstate;
/* Names of the variables the .env files put into the environment, so a
 * reload may replace them (and only them). */
static char **g_dotenv;
static size_t g_ndotenv;

static kstate_t *state_find(const souk_conf_section_t *sec, const souk_conf_key_t *k, bool create) {
  for (size_t i = 0; i < g_nstate; i++)
    if (g_state[i].data == sec->data && g_state[i].key == k) return &g_state[i];
  if (!create) return NULL;
  g_state = souk_reallocarray(g_state, g_nstate + 1, sizeof *g_state);
  kstate_t *s = &g_state[g_nstate++];
  memset(s, 0, sizeof *s);
  s->data = sec->data;
  s->key = k;
  return s;
}

/* --------------------------------------------------------------------------
 * Staging: a candidate value for every key */

typedef struct stage {
  const souk_conf_section_t *sec;
  const souk_conf_key_t *key;
  cval_t v;
  int src;
  char *where;
  int file_line; /* line that set it in this file, to name duplicates */
} stage_t;

typedef struct ctx {
  const souk_conf_section_t *secs;
  size_t nsecs;
  stage_t *st;
  size_t nst;
  size_t *first; /* first[i]: index in st of section i's first key */
  souk__conf_report_t *rep;
  const char *file;
} ctx_t;

static void ctx_init(ctx_t *c, const souk_conf_section_t *secs, size_t nsecs,
                     souk__conf_report_t *rep) {
  memset(c, 0, sizeof *c);
  c->secs = secs;
  c->nsecs = nsecs;
  c->rep = rep;
  c->first = souk_calloc(nsecs + 1, sizeof *c->first);
  for (size_t i = 0; i < nsecs; i++) {
    c->first[i] = c->nst;
    c->nst += nkeys(&secs[i]);
  }
  c->first[nsecs] = c->nst;
  c->st = souk_calloc(c->nst ? c->nst : 1, sizeof *c->st);
  souk_buf_t msg;
  souk_buf_init(&msg);
  for (size_t i = 0; i < nsecs; i++) {
    for (size_t x = 0; x < nkeys(&secs[i]); x++) {
      stage_t *s = &c->st[c->first[i] + x];
      const souk_conf_key_t *k = &secs[i].keys[x];
      s->sec = &secs[i];
      s->key = k;
      s->src = SRC_DEFAULT;
      if (!k->def) {
        /* An enum without a default is -1 ("unset") until configured. */
        if (k->type == SOUK_CONF_ENUM) s->v.e = -1;
        continue;
      }
      souk_buf_reset(&msg);
      if (!parse_text(&secs[i], k, k->def, strlen(k->def), &s->v, &msg)) {
        fprintf(stderr, "souk: bad default for %s.%s: %s\n", secs[i].name, k->name, msg.data);
        SOUK_ASSERT(!"a key's default must parse");
      }
    }
  }
  souk_buf_free(&msg);
}

static void ctx_free(ctx_t *c) {
  for (size_t i = 0; i < c->nst; i++) {
    val_free(c->st[i].key, &c->st[i].v);
    souk_free(c->st[i].where);
  }
  souk_free(c->st);
  souk_free(c->first);
}

static void stage_set(stage_t *s, cval_t *v, int src, char *where) {
  val_free(s->key, &s->v);
  s->v = *v;
  memset(v, 0, sizeof *v);
  s->src = src;
  souk_free(s->where);
  s->where = where;
}

static stage_t *stage_find(ctx_t *c, size_t si, const char *name, size_t len) {
  for (size_t i = c->first[si]; i < c->first[si + 1]; i++) {
    const char *kn = c->st[i].key->name;
    if (strlen(kn) == len && !memcmp(kn, name, len)) return &c->st[i];
  }
  return NULL;
}

static bool section_has_prefix(ctx_t *c, size_t si, const char *p, size_t len) {
  for (size_t i = c->first[si]; i < c->first[si + 1]; i++)
    if (is_prefix(p, len, c->st[i].key->name)) return true;
  return false;
}

static int section_find(const souk_conf_section_t *secs, size_t nsecs, const char *name,
                        size_t len) {
  for (size_t i = 0; i < nsecs; i++)
    if (strlen(secs[i].name) == len && !memcmp(secs[i].name, name, len)) return (int)i;
  return -1;
}

/* " did you mean 'sec.key'?" for an unknown key full in section si, or
 * nothing.  Candidates are the keys and the map names above them; failing
 * a close spelling, a key elsewhere with the same last part (a key put at
 * the wrong level) or the same key in another section. */
static void suggest_key(const souk_conf_section_t *secs, size_t nsecs, size_t si, const char *full,
                        souk_buf_t *out) {
  const souk_conf_section_t *sec = &secs[si];
  size_t best = SIZE_MAX;
  char cand[CONF_SUGGEST_MAX + 1], found[CONF_SUGGEST_MAX + 1] = "";
  for (size_t x = 0; x < nkeys(sec); x++) {
    const char *kn = sec->keys[x].name;
    for (const char *d = kn;; d++) {
      if (*d != '.' && *d) continue;
      size_t l = (size_t)(d - kn);
      if (l <= CONF_SUGGEST_MAX) {
        memcpy(cand, kn, l);
        cand[l] = 0;
        size_t dist = edit_distance(full, cand);
        if (dist < best) {
          best = dist;
          memcpy(found, cand, l + 1);
        }
      }
      if (!*d) break;
    }
  }
  if (best <= suggest_limit(full)) {
    souk_buf_printf(out, "; did you mean '%s.%s'?", sec->name, found);
    return;
  }
  for (size_t x = 0; x < nkeys(sec); x++) {
    if (!strcmp(last_part(sec->keys[x].name), last_part(full))) {
      souk_buf_printf(out, "; did you mean '%s.%s'?", sec->name, sec->keys[x].name);
      return;
    }
  }
  for (size_t i = 0; i < nsecs; i++) {
    for (size_t x = 0; i != si && x < nkeys(&secs[i]); x++) {
      if (!strcmp(secs[i].keys[x].name, full)) {
        souk_buf_printf(out, "; did you mean '%s.%s'?", secs[i].name, full);
        return;
      }
    }
  }
}

static void suggest_section(const souk_conf_section_t *secs, size_t nsecs, const char *name,
                            souk_buf_t *out) {
  size_t best = SIZE_MAX, bi = 0;
  for (size_t i = 0; i < nsecs; i++) {
    size_t d = edit_distance(name, secs[i].name);
    if (d < best) best = d, bi = i;
  }
  if (nsecs && best <= suggest_limit(name)) {
    souk_buf_printf(out, "; did you mean '%s'?", secs[bi].name);
    return;
  }
  for (size_t i = 0; i < nsecs; i++) {
    for (size_t x = 0; x < nkeys(&secs[i]); x++) {
      if (!strcmp(secs[i].keys[x].name, name)) {
        souk_buf_printf(out, "; did you mean '%s.%s'?", secs[i].name, name);
        return;
      }
    }
  }
  souk_buf_puts(out, " (known sections: ");
  for (size_t i = 0; i < nsecs; i++)
    souk_buf_printf(out, "%s%s", i ? ", " : "", secs[i].name);
  souk_buf_putc(out, ')');
}

/* --------------------------------------------------------------------------
 * The YAML file */

enum { YN_SCALAR, YN_MAP, YN_SEQ };

typedef struct ynode {
  int type;
  int line;
  bool null; /* a plain empty, "~" or "null" scalar */
  char *s;   /* scalar text, NUL-terminated; may hold NUL bytes */
  size_t len;
  struct ynode **kid; /* maps: key, value, key, value...; sequences: items */
  size_t n, cap;
} ynode_t;

static void ynode_free(ynode_t *n) {
  if (!n) return;
  for (size_t i = 0; i < n->n; i++)
    ynode_free(n->kid[i]);
  souk_free(n->kid);
  souk_free(n->s);
  souk_free(n);
}

static ynode_t *ynode_new(int type, const yaml_mark_t *m) {
  ynode_t *n = souk_calloc(1, sizeof *n);
  n->type = type;
  n->line = (int)m->line + 1;
  return n;
}

static void ynode_add(ynode_t *parent, ynode_t *kid) {
  if (parent->n == parent->cap) {
    parent->cap = parent->cap ? parent->cap * 2 : 8;
    parent->kid = souk_reallocarray(parent->kid, parent->cap, sizeof *parent->kid);
  }
  parent->kid[parent->n++] = kid;
}

static const char *found_kind(const ynode_t *n) {
  return n->type == YN_MAP ? "a map" : n->type == YN_SEQ ? "a list" : "a value";
}

/* libyaml's reader reports a byte offset, not a line. */
static int line_at(const char *text, size_t len, size_t off) {
  int line = 1;
  for (size_t i = 0; i < off && i < len; i++)
    if (text[i] == '\n') line++;
  return line;
}

static void yaml_syntax_error(ctx_t *c, yaml_parser_t *p, const char *text, size_t len) {
  const char *problem = p->problem ? p->problem : "cannot parse";
  if (p->error == YAML_READER_ERROR) {
    rep_add(c->rep, false, c->file, line_at(text, len, p->problem_offset), NULL,
            "not valid YAML text: %s (the file must be UTF-8)", problem);
  } else if (p->context) {
    rep_add(c->rep, false, c->file, (int)p->problem_mark.line + 1, NULL,
            "YAML syntax error: %s (%s at line %d)", problem, p->context,
            (int)p->context_mark.line + 1);
  } else {
    rep_add(c->rep, false, c->file, (int)p->problem_mark.line + 1, NULL, "YAML syntax error: %s",
            problem);
  }
}

/* Read the document into a tree.  Returns the root (NULL for an empty
 * file), and false in *ok after a syntax error (already reported). */
static ynode_t *yaml_tree(ctx_t *c, const char *text, size_t len, bool *ok) {
  yaml_parser_t p;
  SOUK_ASSERT(yaml_parser_initialize(&p));
  yaml_parser_set_input_string(&p, (const unsigned char *)text, len);
  ynode_t *root = NULL, *stack[CONF_MAX_DEPTH];
  size_t depth = 0;
  int docs = 0;
  bool done = false;
  *ok = true;
  while (!done) {
    yaml_event_t ev;
    if (!yaml_parser_parse(&p, &ev)) {
      yaml_syntax_error(c, &p, text, len);
      *ok = false;
      break;
    }
    ynode_t *n = NULL;
    switch (ev.type) {
    case YAML_DOCUMENT_START_EVENT:
      if (++docs > 1) {
        rep_add(c->rep, false, c->file, (int)ev.start_mark.line + 1, NULL,
                "only one YAML document is allowed in a config file");
        done = true;
      }
      break;
    case YAML_STREAM_END_EVENT:
      done = true;
      break;
    case YAML_ALIAS_EVENT:
      rep_add(c->rep, false, c->file, (int)ev.start_mark.line + 1, NULL,
              "YAML aliases (*%s) are not supported in the config file; write the value out",
              (const char *)ev.data.alias.anchor);
      /* A null placeholder keeps the map's keys and values paired. */
      n = ynode_new(YN_SCALAR, &ev.start_mark);
      n->null = true;
      n->s = souk_strdup("");
      break;
    case YAML_SCALAR_EVENT: {
      const char *v = (const char *)ev.data.scalar.value;
      size_t vl = ev.data.scalar.length;
      n = ynode_new(YN_SCALAR, &ev.start_mark);
      n->s = souk_memdup0(v, vl);
      n->len = vl;
      n->null = ev.data.scalar.style == YAML_PLAIN_SCALAR_STYLE &&
                (vl == 0 || !strcmp(n->s, "~") || !strcmp(n->s, "null") || !strcmp(n->s, "Null") ||
                 !strcmp(n->s, "NULL"));
      break;
    }
    case YAML_SEQUENCE_START_EVENT:
    case YAML_MAPPING_START_EVENT:
      n = ynode_new(ev.type == YAML_SEQUENCE_START_EVENT ? YN_SEQ : YN_MAP, &ev.start_mark);
      break;
    case YAML_SEQUENCE_END_EVENT:
    case YAML_MAPPING_END_EVENT:
      SOUK_ASSERT(depth > 0);
      depth--;
      break;
    default:
      break;
    }
    if (n) {
      if (depth == 0) {
        SOUK_ASSERT(!root);
        root = n;
      } else {
        ynode_add(stack[depth - 1], n);
      }
      if (n->type != YN_SCALAR) {
        if (depth == CONF_MAX_DEPTH) {
          rep_add(c->rep, false, c->file, n->line, NULL, "nested too deeply (more than %d levels)",
                  CONF_MAX_DEPTH);
          *ok = false;
          done = true;
        } else {
          stack[depth++] = n;
        }
      }
    }
    yaml_event_delete(&ev);
  }
  yaml_parser_delete(&p);
  return root;
}

typedef struct keyref {
  const ynode_t *k;
  size_t idx;
} keyref_t;

static int keyref_cmp(const void *a, const void *b) {
  const keyref_t *x = a, *y = b;
  if (x->k->len != y->k->len) return x->k->len < y->k->len ? -1 : 1;
  int r = memcmp(x->k->s, y->k->s, x->k->len);
  if (r) return r;
  return x->idx < y->idx ? -1 : x->idx > y->idx;
}

/* For each key of map m: 0 if it is the first of its name, else the line
 * of the first.  Sorting keeps this O(n log n) for huge maps.  Non-scalar
 * keys get -1. */
static int *map_dups(const ynode_t *m) {
  size_t np = m->n / 2;
  int *first = souk_calloc(np ? np : 1, sizeof *first);
  keyref_t *r = souk_calloc(np ? np : 1, sizeof *r);
  size_t nr = 0;
  for (size_t i = 0; i < np; i++) {
    if (m->kid[2 * i]->type != YN_SCALAR) {
      first[i] = -1;
      continue;
    }
    r[nr].k = m->kid[2 * i];
    r[nr].idx = i;
    nr++;
  }
  qsort(r, nr, sizeof *r, keyref_cmp);
  for (size_t i = 1; i < nr; i++) {
    size_t j = i;
    while (j > 0 && r[j - 1].k->len == r[i].k->len &&
           !memcmp(r[j - 1].k->s, r[i].k->s, r[i].k->len))
      j--;
    if (j != i) first[r[i].idx] = r[j].k->line;
  }
  souk_free(r);
  return first;
}

/* Assign a value node to key s. */
static void assign_leaf(ctx_t *c, stage_t *s, const ynode_t *v, const char *dotted) {
  const souk_conf_key_t *k = s->key;
  if (v->type == YN_SCALAR && v->null) return;
  if (s->file_line) {
    rep_add(c->rep, false, c->file, v->line, dotted, "duplicate key; first set at line %d",
            s->file_line);
    return;
  }
  s->file_line = v->line;
  souk_buf_t msg;
  souk_buf_init(&msg);
  if (k->flags & SOUK_CONF_SECRET) {
    env_name(&msg, s->sec->name, k->name);
    rep_add(c->rep, true, c->file, v->line, dotted,
            "a secret in the config file; set %s in the environment (or .env) instead", msg.data);
    souk_buf_reset(&msg);
  } else if (v->type == YN_SCALAR && has_url_password(v->s, v->len)) {
    /* A password inside a URL is as secret as a token, whatever the key. */
    env_name(&msg, s->sec->name, k->name);
    rep_add(c->rep, true, c->file, v->line, dotted,
            "a password in the config file; set %s in the environment (or .env) instead", msg.data);
    souk_buf_reset(&msg);
  }
  cval_t val;
  memset(&val, 0, sizeof val);
  bool ok = true;
  if (v->type == YN_SEQ && type_is_list(k->type)) {
    for (size_t i = 0; i < v->n; i++) {
      const ynode_t *it = v->kid[i];
      souk_buf_reset(&msg);
      if (it->type != YN_SCALAR || it->null) {
        souk_buf_puts(&msg, "expected ");
        describe(k, false, &msg);
        souk_buf_printf(&msg, ", found %s item", it->type == YN_SCALAR ? "an empty" : "a nested");
        ok = false;
      } else if (!text_ok(k, it->s, it->len, &msg)) {
        ok = false;
      } else if (k->type == SOUK_CONF_STRING_LIST) {
        if (value_check(s->sec, k, it->s, it->len, &msg)) {
          strs_push(&val.strs, souk_memdup0(it->s, it->len));
          continue;
        }
        ok = false;
      } else {
        uint64_t id;
        if (parse_snowflake(it->s, it->len, &id)) {
          ids_push(&val.ids, id);
          continue;
        }
        expect_found(&msg, k, false, it->s, it->len);
        ok = false;
      }
      rep_add(c->rep, false, c->file, it->line, dotted, "%s", msg.data);
    }
  } else if (v->type != YN_SCALAR) {
    souk_buf_puts(&msg, "expected ");
    describe(k, false, &msg);
    souk_buf_printf(&msg, ", found %s", found_kind(v));
    rep_add(c->rep, false, c->file, v->line, dotted, "%s", msg.data);
    ok = false;
  } else if (!parse_text(s->sec, k, v->s, v->len, &val, &msg)) {
    rep_add(c->rep, false, c->file, v->line, dotted, "%s", msg.data);
    ok = false;
  }
  if (ok) {
    souk_buf_reset(&msg);
    souk_buf_printf(&msg, "%s:%d", c->file, v->line);
    stage_set(s, &val, SRC_FILE, souk_buf_steal(&msg));
  } else {
    val_free(k, &val);
  }
  souk_buf_free(&msg);
}

static void walk_map(ctx_t *c, size_t si, const char *prefix, const ynode_t *m);

/* One key/value pair of a section's map (or of a map inside it). */
static void walk_pair(ctx_t *c, size_t si, const char *prefix, const ynode_t *k, const ynode_t *v,
                      int dup_line) {
  const char *sname = c->secs[si].name;
  souk_buf_t full, dotted, msg;
  souk_buf_init(&full);
  souk_buf_init(&dotted);
  souk_buf_init(&msg);
  if (*prefix) souk_buf_printf(&full, "%s.", prefix);
  if (k->type != YN_SCALAR) {
    rep_add(c->rep, false, c->file, k->line, *prefix ? prefix : sname,
            "expected a key name, found %s", found_kind(k));
    goto out;
  }
  bool text = !memchr(k->s, 0, k->len) && utf8_valid(k->s, k->len);
  if (text) {
    souk_buf_append(&full, k->s, k->len);
  } else {
    souk_buf_puts(&full, "?");
  }
  souk_buf_printf(&dotted, "%s.%s", sname, full.data);
  if (!text) {
    rep_add(c->rep, false, c->file, k->line, dotted.data,
            "expected a key name, found invalid text");
    goto out;
  }
  if (dup_line > 0) {
    rep_add(c->rep, false, c->file, k->line, dotted.data, "duplicate key; first set at line %d",
            dup_line);
    goto out;
  }
  stage_t *s = stage_find(c, si, full.data, full.len);
  if (s) {
    assign_leaf(c, s, v, dotted.data);
  } else if (section_has_prefix(c, si, full.data, full.len)) {
    walk_map(c, si, full.data, v);
  } else {
    souk_buf_puts(&msg, "unknown key");
    suggest_key(c->secs, c->nsecs, si, full.data, &msg);
    rep_add(c->rep, false, c->file, k->line, dotted.data, "%s", msg.data);
  }
out:
  souk_buf_free(&full);
  souk_buf_free(&dotted);
  souk_buf_free(&msg);
}

static void walk_map(ctx_t *c, size_t si, const char *prefix, const ynode_t *m) {
  if (m->type == YN_SCALAR && m->null) return;
  if (m->type != YN_MAP) {
    souk_buf_t key, msg;
    souk_buf_init(&key);
    souk_buf_init(&msg);
    souk_buf_puts(&key, c->secs[si].name);
    if (*prefix) souk_buf_printf(&key, ".%s", prefix);
    souk_buf_puts(&msg, "expected a map of settings (");
    size_t pl = strlen(prefix), shown = 0;
    const souk_conf_section_t *sec = &c->secs[si];
    for (size_t x = 0; x < nkeys(sec) && shown < 6; x++) {
      const char *kn = sec->keys[x].name;
      if (pl && !is_prefix(prefix, pl, kn)) continue;
      souk_buf_printf(&msg, "%s%s", shown++ ? ", " : "", pl ? kn + pl + 1 : kn);
    }
    souk_buf_puts(&msg, shown >= 6 ? ", ...), found " : "), found ");
    if (m->type == YN_SCALAR && (memchr(m->s, 0, m->len) || !utf8_valid(m->s, m->len)))
      souk_buf_puts(&msg, "invalid text");
    else if (m->type == YN_SCALAR)
      souk__conf_quote(&msg, m->s, m->len);
    else
      souk_buf_puts(&msg, found_kind(m));
    rep_add(c->rep, false, c->file, m->line, key.data, "%s", msg.data);
    souk_buf_free(&key);
    souk_buf_free(&msg);
    return;
  }
  int *dups = map_dups(m);
  for (size_t i = 0; i + 1 < m->n; i += 2)
    walk_pair(c, si, prefix, m->kid[i], m->kid[i + 1], dups[i / 2]);
  souk_free(dups);
}

static void walk_root(ctx_t *c, const ynode_t *root) {
  if (!root || (root->type == YN_SCALAR && root->null)) return;
  if (root->type != YN_MAP) {
    rep_add(c->rep, false, c->file, root->line, NULL,
            "expected a map of sections (such as 'discord:') at the top level, found %s",
            found_kind(root));
    return;
  }
  int *dups = map_dups(root);
  souk_buf_t msg;
  souk_buf_init(&msg);
  for (size_t i = 0; i + 1 < root->n; i += 2) {
    const ynode_t *k = root->kid[i], *v = root->kid[i + 1];
    souk_buf_reset(&msg);
    if (k->type != YN_SCALAR) {
      rep_add(c->rep, false, c->file, k->line, NULL, "expected a section name, found %s",
              found_kind(k));
      continue;
    }
    bool text = !memchr(k->s, 0, k->len) && utf8_valid(k->s, k->len);
    const char *name = text ? k->s : "?";
    if (!text) {
      rep_add(c->rep, false, c->file, k->line, NULL, "expected a section name, found invalid text");
    } else if (dups[i / 2] > 0) {
      rep_add(c->rep, false, c->file, k->line, name, "duplicate section; first at line %d",
              dups[i / 2]);
    } else {
      int si = section_find(c->secs, c->nsecs, k->s, k->len);
      if (si >= 0) {
        walk_map(c, (size_t)si, "", v);
      } else {
        souk_buf_puts(&msg, "unknown section");
        suggest_section(c->secs, c->nsecs, name, &msg);
        rep_add(c->rep, false, c->file, k->line, name, "%s", msg.data);
      }
    }
  }
  souk_buf_free(&msg);
  souk_free(dups);
}

static void yaml_apply(ctx_t *c, const char *name, const char *text, size_t len) {
  c->file = name;
  bool ok;
  ynode_t *root = yaml_tree(c, text, len, &ok);
  /* After a syntax error the tree is cut short at an arbitrary point, and
   * walking it would add complaints about keys that are merely missing. */
  if (ok) walk_root(c, root);
  ynode_free(root);
  c->file = NULL;
}

/* Read a whole file.  Returns 0 or an errno value. */
static int read_file(const char *path, char **text, size_t *len) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return errno;
  struct stat st;
  int rc = 0;
  if (fstat(fd, &st) != 0) {
    rc = errno;
  } else if (S_ISDIR(st.st_mode)) {
    rc = EISDIR;
  } else {
    souk_buf_t b;
    souk_buf_init(&b);
    char chunk[8192];
    for (;;) {
      ssize_t n = read(fd, chunk, sizeof chunk);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) {
        rc = errno;
        break;
      }
      if (n == 0) break;
      if (b.len + (size_t)n > CONF_MAX_FILE) {
        rc = EFBIG;
        break;
      }
      souk_buf_append(&b, chunk, (size_t)n);
    }
    if (rc) {
      souk_buf_free(&b);
    } else {
      *len = b.len;
      *text = souk_buf_steal(&b);
    }
  }
  close(fd);
  return rc;
}

/* --------------------------------------------------------------------------
 * The environment */

static void env_apply(ctx_t *c) {
  souk_buf_t name, msg;
  souk_buf_init(&name);
  souk_buf_init(&msg);
  for (size_t i = 0; i < c->nst; i++) {
    stage_t *s = &c->st[i];
    souk_buf_reset(&name);
    env_name(&name, s->sec->name, s->key->name);
    const char *v = getenv(name.data);
    /* An empty variable counts as unset: compose files and shells produce
     * them for variables that were never meant to be set. */
    if (!v || !*v) continue;
    cval_t val;
    souk_buf_reset(&msg);
    if (parse_text(s->sec, s->key, v, strlen(v), &val, &msg)) {
      stage_set(s, &val, SRC_ENV, souk_strdup(name.data));
    } else {
      souk_buf_t file, key;
      souk_buf_init(&file);
      souk_buf_init(&key);
      souk_buf_printf(&file, "env %s", name.data);
      souk_buf_printf(&key, "%s.%s", s->sec->name, s->key->name);
      rep_add(c->rep, false, file.data, 0, key.data, "%s", msg.data);
      souk_buf_free(&file);
      souk_buf_free(&key);
    }
  }
  souk_buf_free(&name);
  souk_buf_free(&msg);
}

/* A SOUK_<SECTION>_ variable that names no key is most likely a typo that
 * would silently leave the setting at its default, so it gets a warning
 * (not an error: other tools may share the prefix). */
static void env_unknown(ctx_t *c) {
  souk_buf_t pre, name, msg, best_name;
  souk_buf_init(&pre);
  souk_buf_init(&name);
  souk_buf_init(&msg);
  souk_buf_init(&best_name);
  for (char **e = environ; e && *e; e++) {
    const char *eq = strchr(*e, '=');
    if (strncmp(*e, "SOUK_", 5) != 0 || !eq) continue;
    size_t nl = (size_t)(eq - *e);
    bool known = false;
    for (size_t i = 0; i < c->nst && !known; i++) {
      souk_buf_reset(&name);
      env_name(&name, c->st[i].sec->name, c->st[i].key->name);
      known = name.len == nl && !memcmp(name.data, *e, nl);
    }
    for (size_t si = 0; si < c->nsecs && !known; si++) {
      souk_buf_reset(&pre);
      env_name(&pre, c->secs[si].name, "");
      if (nl <= pre.len || strncmp(*e, pre.data, pre.len) != 0) continue;
      char *var = souk_strndup(*e, nl);
      souk_buf_reset(&msg);
      souk_buf_printf(&msg, "not a setting of section '%s'", c->secs[si].name);
      size_t best = SIZE_MAX;
      for (size_t i = c->first[si]; i < c->first[si + 1]; i++) {
        souk_buf_reset(&name);
        env_name(&name, c->secs[si].name, c->st[i].key->name);
        size_t d = edit_distance(var, name.data);
        if (d < best && d <= suggest_limit(var + pre.len)) {
          best = d;
          souk_buf_reset(&best_name);
          souk_buf_puts(&best_name, name.data);
        }
      }
      if (best != SIZE_MAX) souk_buf_printf(&msg, "; did you mean %s?", best_name.data);
      souk_buf_reset(&name);
      souk_buf_printf(&name, "env %s", var);
      rep_add(c->rep, true, name.data, 0, NULL, "%s", msg.data);
      souk_free(var);
      break;
    }
  }
  souk_buf_free(&pre);
  souk_buf_free(&name);
  souk_buf_free(&msg);
  souk_buf_free(&best_name);
}

/* --------------------------------------------------------------------------
 * .env files */

typedef struct kvs {
  char **k, **v;
  size_t n;
} kvs_t;

static void kvs_put(kvs_t *l, const char *k, char *v, bool replace) {
  for (size_t i = 0; i < l->n; i++) {
    if (!strcmp(l->k[i], k)) {
      if (replace) {
        souk_free(l->v[i]);
        l->v[i] = v;
      } else {
        souk_free(v);
      }
      return;
    }
  }
  l->k = souk_reallocarray(l->k, l->n + 1, sizeof *l->k);
  l->v = souk_reallocarray(l->v, l->n + 1, sizeof *l->v);
  l->k[l->n] = souk_strdup(k);
  l->v[l->n++] = v;
}

static void kvs_free(kvs_t *l) {
  for (size_t i = 0; i < l->n; i++) {
    souk_free(l->k[i]);
    souk_free(l->v[i]);
  }
  souk_free(l->k);
  souk_free(l->v);
  memset(l, 0, sizeof *l);
}

/* Parse one line of a .env file; returns NULL (and the value in *val, or
 * no value for a blank or comment line) or the problem.  Values are never
 * quoted in a problem: .env files hold secrets. */
static const char *dotenv_line(const char *p, const char *end, char **key, char **val) {
  *key = *val = NULL;
  while (p < end && (*p == ' ' || *p == '\t'))
    p++;
  if (p == end || *p == '#') return NULL;
  if (end - p > 7 && !memcmp(p, "export", 6) && (p[6] == ' ' || p[6] == '\t')) {
    p += 6;
    while (p < end && (*p == ' ' || *p == '\t'))
      p++;
  }
  const char *ks = p;
  if (p == end || !(isalpha((unsigned char)*p) || *p == '_'))
    return "expected KEY=VALUE, export KEY=VALUE or a # comment";
  while (p < end && (isalnum((unsigned char)*p) || *p == '_'))
    p++;
  const char *ke = p;
  while (p < end && (*p == ' ' || *p == '\t'))
    p++;
  if (p == end || *p != '=') return "expected KEY=VALUE, export KEY=VALUE or a # comment";
  p++;
  while (p < end && (*p == ' ' || *p == '\t'))
    p++;
  souk_buf_t v;
  souk_buf_init(&v);
  const char *err = NULL;
  if (p < end && (*p == '"' || *p == '\'')) {
    char q = *p++;
    for (;;) {
      if (p == end) {
        err = q == '"' ? "unterminated double-quoted value" : "unterminated single-quoted value";
        break;
      }
      char ch = *p++;
      if (ch == q) break;
      if (q == '"' && ch == '\\') {
        if (p == end) {
          err = "unterminated double-quoted value";
          break;
        }
        ch = *p++;
        if (ch == 'n') {
          ch = '\n';
        } else if (ch != '"' && ch != '\\') {
          err = "unknown escape in a double-quoted value (use \\n, \\\" or \\\\)";
          break;
        }
      }
      souk_buf_putc(&v, ch);
    }
    while (!err && p < end && (*p == ' ' || *p == '\t'))
      p++;
    if (!err && p < end && *p != '#') err = "unexpected text after the closing quote";
  } else {
    /* Unquoted: a '#' after whitespace starts a comment. */
    const char *e = p;
    for (; e < end; e++)
      if (*e == '#' && e > p && (e[-1] == ' ' || e[-1] == '\t')) break;
    while (e > p && (e[-1] == ' ' || e[-1] == '\t'))
      e--;
    souk_buf_append(&v, p, (size_t)(e - p));
  }
  if (err) {
    souk_buf_free(&v);
    return err;
  }
  *key = souk_strndup(ks, (size_t)(ke - ks));
  *val = souk_buf_steal(&v);
  return NULL;
}

static void dotenv_parse(const char *path, const char *text, size_t len, kvs_t *out,
                         souk__conf_report_t *rep) {
  kvs_t file = {0};
  int lineno = 0;
  size_t pos = 0;
  while (pos < len) {
    const char *p = text + pos, *nl = memchr(p, '\n', len - pos);
    size_t n = nl ? (size_t)(nl - p) : len - pos;
    pos += n + 1;
    lineno++;
    if (n > 0 && p[n - 1] == '\r') n--;
    const char *end = p + n;
    if (memchr(p, 0, n)) {
      rep_add(rep, false, path, lineno, NULL, "malformed line: contains a NUL byte");
      continue;
    }
    char *k, *v;
    const char *err = dotenv_line(p, end, &k, &v);
    if (err) {
      rep_add(rep, false, path, lineno, NULL, "malformed line: %s", err);
    } else if (k) {
      /* Within one file the last line wins, as in a shell script. */
      kvs_put(&file, k, v, true);
      souk_free(k);
    }
  }
  /* Between files the first one read wins. */
  for (size_t i = 0; i < file.n; i++) {
    kvs_put(out, file.k[i], file.v[i], false);
    file.v[i] = NULL;
  }
  kvs_free(&file);
}

static void dotenv_read(const char *path, kvs_t *out, souk__conf_report_t *rep) {
  char *text;
  size_t len;
  int rc = read_file(path, &text, &len);
  if (rc == ENOENT) return;
  if (rc) {
    rep_add(rep, false, path, 0, NULL, "cannot read: %s", strerror(rc));
    return;
  }
  dotenv_parse(path, text, len, out, rep);
  souk_free(text);
}

static bool was_dotenv(const char *name) {
  for (size_t i = 0; i < g_ndotenv; i++)
    if (!strcmp(g_dotenv[i], name)) return true;
  return false;
}

/* Load ./.env and, if it is another file, the one beside the config file,
 * into the environment.  Variables set outside the .env files win; those
 * an earlier load took from a .env file may be replaced or removed, so a
 * reload sees the files as they are now. */
static void dotenv_load(const char *cfg_path, souk__conf_report_t *rep) {
  kvs_t kv = {0};
  dotenv_read(".env", &kv, rep);
  const char *slash = cfg_path ? strrchr(cfg_path, '/') : NULL;
  if (slash) {
    souk_buf_t p;
    souk_buf_init(&p);
    souk_buf_append(&p, cfg_path, (size_t)(slash - cfg_path) + 1);
    souk_buf_puts(&p, ".env");
    struct stat a, b;
    bool same = stat(".env", &a) == 0 && stat(p.data, &b) == 0 && a.st_dev == b.st_dev &&
                a.st_ino == b.st_ino;
    if (!same) dotenv_read(p.data, &kv, rep);
    souk_buf_free(&p);
  }
  for (size_t i = 0; i < g_ndotenv; i++) {
    bool still = false;
    for (size_t j = 0; j < kv.n && !still; j++)
      still = !strcmp(kv.k[j], g_dotenv[i]);
    if (!still) unsetenv(g_dotenv[i]);
  }
  char **names = souk_calloc(kv.n ? kv.n : 1, sizeof *names);
  size_t nn = 0;
  for (size_t i = 0; i < kv.n; i++) {
    if (getenv(kv.k[i]) && !was_dotenv(kv.k[i])) continue;
    setenv(kv.k[i], kv.v[i], 1);
    names[nn++] = souk_strdup(kv.k[i]);
  }
  for (size_t i = 0; i < g_ndotenv; i++)
    souk_free(g_dotenv[i]);
  souk_free(g_dotenv);
  g_dotenv = names;
  g_ndotenv = nn;
  kvs_free(&kv);
}

/* --------------------------------------------------------------------------
 * Applying staged values */

static void secret_register(const souk_conf_key_t *k, const cval_t *v) {
  if (!type_is_str(k->type) || !v->s) return;
  if (k->flags & SOUK_CONF_SECRET) souk_log_add_secret(v->s);
  /* A URL's password too, so no log line can show it in any shape. */
  size_t a, e, from = 0, n = strlen(v->s);
  while (url_password_at(v->s, n, from, &a, &e)) {
    char *pw = souk_strndup(v->s + a, e - a);
    souk_log_add_secret(pw);
    souk_free(pw);
    from = e;
  }
}

/* Move s's value into the field, freeing what the config owned there. */
static void stage_commit(stage_t *s) {
  kstate_t *ks = state_find(s->sec, s->key, true);
  if (ks->owned) {
    cval_t old;
    val_read(s->sec, s->key, &old);
    val_free(s->key, &old);
  }
  val_write(s->sec, s->key, &s->v);
  secret_register(s->key, &s->v);
  memset(&s->v, 0, sizeof s->v);
  ks->owned = type_owns(s->key->type);
  ks->src = s->src;
  souk_free(ks->where);
  ks->where = s->where;
  s->where = NULL;
}

static void commit_all(ctx_t *c) {
  for (size_t i = 0; i < c->nst; i++)
    stage_commit(&c->st[i]);
}

static void change_note(souk_buf_t *changes, const stage_t *s, const cval_t *old, bool restart) {
  if (!changes) return;
  if (changes->len) souk_buf_puts(changes, "; ");
  souk_buf_printf(changes, "%s.%s: ", s->sec->name, s->key->name);
  if (s->key->flags & SOUK_CONF_SECRET) {
    souk_buf_puts(changes, "changed");
  } else {
    val_format(s->key, old, changes);
    souk_buf_puts(changes, " -> ");
    val_format(s->key, &s->v, changes);
  }
  if (restart) souk_buf_puts(changes, " (needs a restart)");
}

static void commit_reload(ctx_t *c, souk_buf_t *changes) {
  for (size_t i = 0; i < c->nst; i++) {
    stage_t *s = &c->st[i];
    kstate_t *ks = state_find(s->sec, s->key, false);
    if (ks && ks->src == SRC_ADMIN) continue; /* an admin's change lasts until restart */
    cval_t cur;
    val_read(s->sec, s->key, &cur);
    if (val_eq(s->key, &cur, &s->v)) {
      /* Same value, perhaps from another line or source now. */
      if (ks) {
        ks->src = s->src;
        souk_free(ks->where);
        ks->where = s->where;
        s->where = NULL;
      }
    } else if (s->key->flags & SOUK_CONF_RUNTIME) {
      change_note(changes, s, &cur, false);
      stage_commit(s);
    } else {
      change_note(changes, s, &cur, true);
    }
  }
}

/* A key's stage by "section.key", or NULL. */
static stage_t *stage_dotted(ctx_t *c, const char *dotted) {
  const char *dot = strchr(dotted, '.');
  if (!dot) return NULL;
  int si = section_find(c->secs, c->nsecs, dotted, (size_t)(dot - dotted));
  return si < 0 ? NULL : stage_find(c, (size_t)si, dot + 1, strlen(dot + 1));
}

/* Aliases: a set alias sets the key it names (x its scale); both set is
 * an error, reported at the alias's line. */
static void aliases_resolve(ctx_t *c) {
  for (size_t i = 0; i < c->nst; i++) {
    stage_t *a = &c->st[i];
    const souk_conf_key_t *k = a->key;
    if (!(k->flags & SOUK_CONF_ALIAS)) continue;
    const char *target = k->choices ? k->choices[0] : NULL;
    int64_t scale = 0;
    SOUK_ASSERT(target && k->choices[1] && parse_i64(k->choices[1], &scale) && scale > 0);
    stage_t *t = stage_dotted(c, target);
    SOUK_ASSERT(t && k->type == SOUK_CONF_INT &&
                (t->key->type == SOUK_CONF_INT || t->key->type == SOUK_CONF_SIZE ||
                 t->key->type == SOUK_CONF_DURATION));
    if (a->src == SRC_DEFAULT) continue;
    char key[160];
    snprintf(key, sizeof key, "%s.%s", a->sec->name, k->name);
    if (t->src != SRC_DEFAULT) {
      rep_add(c->rep, false, NULL, 0, key,
              "is another name for %s, which is set too (%s): set only one of them", target,
              t->where ? t->where : "?");
      continue;
    }
    int64_t v = a->v.i;
    if (v < 0 || (v > 0 && scale > INT64_MAX / v)) {
      rep_add(c->rep, false, NULL, 0, key, "too large for %s", target);
      continue;
    }
    cval_t nv = {.i = v * scale};
    souk_buf_t where;
    souk_buf_init(&where);
    souk_buf_printf(&where, "%s as %s", a->where ? a->where : "?", key);
    stage_set(t, &nv, a->src, souk_buf_steal(&where));
  }
}

static int config_run(const char *path, bool explicit_path, const char *memname,
                      const char *memtext, size_t memlen, const souk_conf_section_t *secs,
                      size_t nsecs, souk__conf_report_t *rep_in, bool reload, souk_buf_t *changes) {
  tables_check(secs, nsecs);
  souk__conf_report_t local = {0};
  souk__conf_report_t *rep = rep_in ? rep_in : &local;
  size_t nerr0 = rep->nerr;
  if (!memtext) dotenv_load(path, rep);
  ctx_t c;
  ctx_init(&c, secs, nsecs, rep);
  if (memtext) {
    yaml_apply(&c, memname ? memname : "<config>", memtext, memlen);
  } else if (path) {
    char *text = NULL;
    size_t len = 0;
    int err = read_file(path, &text, &len);
    if (err == 0) {
      yaml_apply(&c, path, text, len);
      souk_free(text);
    } else if (err == EFBIG) {
      rep_add(rep, false, path, 0, NULL, "the config file is larger than %u bytes", CONF_MAX_FILE);
    } else if (err != ENOENT || explicit_path) {
      rep_add(rep, false, path, 0, NULL, "cannot read the config file: %s", strerror(err));
    }
  }
  env_apply(&c);
  env_unknown(&c);
  aliases_resolve(&c);
  int rc = 0;
  if (rep->nerr > nerr0) {
    rc = SOUK_ECONFIG;
  } else if (reload) {
    commit_reload(&c, changes);
  } else {
    commit_all(&c);
  }
  ctx_free(&c);
  souk__conf_report_free(&local);
  return rc;
}

int souk__config_load(const char *path, bool path_explicit, const souk_conf_section_t *secs,
                      size_t nsecs, souk__conf_report_t *rep) {
  return config_run(path, path_explicit, NULL, NULL, 0, secs, nsecs, rep, false, NULL);
}

int souk__config_load_mem(const char *name, const char *text, size_t len,
                          const souk_conf_section_t *secs, size_t nsecs, souk__conf_report_t *rep) {
  return config_run(NULL, false, name, text ? text : "", text ? len : 0, secs, nsecs, rep, false,
                    NULL);
}

int souk__config_reload(const char *path, bool path_explicit, const souk_conf_section_t *secs,
                        size_t nsecs, souk__conf_report_t *rep, souk_buf_t *changes) {
  return config_run(path, path_explicit, NULL, NULL, 0, secs, nsecs, rep, true, changes);
}

/* --------------------------------------------------------------------------
 * Run-time access */

/* Find "section.key"; returns false with *si < 0 if the section is
 * unknown. */
static bool key_lookup(const souk_conf_section_t *secs, size_t nsecs, const char *dotted, int *si,
                       const souk_conf_key_t **k) {
  *k = NULL;
  const char *dot = dotted ? strchr(dotted, '.') : NULL;
  *si = dot ? section_find(secs, nsecs, dotted, (size_t)(dot - dotted)) : -1;
  if (*si < 0) return false;
  const souk_conf_section_t *sec = &secs[*si];
  for (size_t x = 0; x < nkeys(sec); x++) {
    if (!strcmp(sec->keys[x].name, dot + 1)) {
      *k = &sec->keys[x];
      return true;
    }
  }
  return false;
}

int souk__config_set(const souk_conf_section_t *secs, size_t nsecs, const char *dotted_key,
                     const char *value, char *err, size_t errlen) {
  souk_buf_t msg;
  souk_buf_init(&msg);
  int si, rc = 0;
  const souk_conf_key_t *k;
  if (!key_lookup(secs, nsecs, dotted_key, &si, &k)) {
    souk_buf_printf(&msg, "unknown setting '%s'", dotted_key ? dotted_key : "");
    if (si >= 0) {
      suggest_key(secs, nsecs, (size_t)si, strchr(dotted_key, '.') + 1, &msg);
    } else if (dotted_key) {
      const char *dot = strchr(dotted_key, '.');
      char *sec =
          dot ? souk_strndup(dotted_key, (size_t)(dot - dotted_key)) : souk_strdup(dotted_key);
      suggest_section(secs, nsecs, sec, &msg);
      souk_free(sec);
    }
    rc = SOUK_ENOTFOUND;
    goto out;
  }
  const souk_conf_section_t *sec = &secs[si];
  if (!(k->flags & SOUK_CONF_RUNTIME)) {
    souk_buf_printf(&msg,
                    "%s cannot be changed at run time; change it in the config file or the "
                    "environment and restart",
                    dotted_key);
    rc = SOUK_EFORBIDDEN;
    goto out;
  }
  cval_t v, old;
  if (!value) value = "";
  souk_buf_printf(&msg, "%s: ", dotted_key);
  if (!parse_text(sec, k, value, strlen(value), &v, &msg)) {
    rc = SOUK_EINVAL;
    goto out;
  }
  souk_buf_reset(&msg);
  val_read(sec, k, &old);
  souk_buf_t a, b;
  souk_buf_init(&a);
  souk_buf_init(&b);
  val_format(k, &old, &a);
  val_format(k, &v, &b);
  if (k->flags & SOUK_CONF_SECRET)
    SOUK_INFO("config", "%s changed at run time", dotted_key);
  else
    SOUK_INFO("config", "%s changed at run time: %s -> %s", dotted_key, a.data, b.data);
  souk_buf_free(&a);
  souk_buf_free(&b);
  stage_t s = {.sec = sec, .key = k, .v = v, .src = SRC_ADMIN};
  stage_commit(&s);
out:
  if (err && errlen) snprintf(err, errlen, "%s", rc ? msg.data : "");
  souk_buf_free(&msg);
  return rc;
}

int souk__config_get_text(const souk_conf_section_t *secs, size_t nsecs, const char *dotted_key,
                          souk_buf_t *out) {
  int si;
  const souk_conf_key_t *k;
  if (!key_lookup(secs, nsecs, dotted_key, &si, &k)) return SOUK_ENOTFOUND;
  cval_t v;
  val_read(&secs[si], k, &v);
  val_format(k, &v, out);
  return 0;
}

/* The value as text parse_text() reads back: strings and URLs raw,
 * lists comma-separated, the rest as the dump shows them. */
static void val_text(const souk_conf_key_t *k, const cval_t *v, souk_buf_t *out) {
  switch (k->type) {
  case SOUK_CONF_STRING:
  case SOUK_CONF_URL:
  case SOUK_CONF_TOKEN:
    if (v->s) souk_buf_puts(out, v->s);
    return;
  case SOUK_CONF_SNOWFLAKE:
    if (v->id) souk_buf_printf(out, "%" PRIu64, v->id);
    return;
  case SOUK_CONF_ENUM:
    if (v->e >= 0) souk_buf_puts(out, k->choices[v->e]);
    return;
  case SOUK_CONF_SNOWFLAKE_LIST:
    for (size_t i = 0; i < v->ids.n; i++)
      souk_buf_printf(out, "%s%" PRIu64, i ? "," : "", v->ids.ids[i]);
    return;
  case SOUK_CONF_STRING_LIST:
    for (size_t i = 0; i < v->strs.n; i++)
      souk_buf_printf(out, "%s%s", i ? "," : "", v->strs.v[i]);
    return;
  default:
    val_format(k, v, out);
    return;
  }
}

int souk__config_value_text(const souk_conf_section_t *secs, size_t nsecs, const char *dotted_key,
                            souk_buf_t *out, bool *from_default) {
  int si;
  const souk_conf_key_t *k;
  if (!key_lookup(secs, nsecs, dotted_key, &si, &k)) return SOUK_ENOTFOUND;
  if (k->flags & SOUK_CONF_SECRET) return SOUK_EFORBIDDEN;
  cval_t v;
  val_read(&secs[si], k, &v);
  val_text(k, &v, out);
  if (from_default) {
    const kstate_t *ks = state_find(&secs[si], k, false);
    *from_default = !ks || ks->src == SRC_DEFAULT;
  }
  return 0;
}

bool souk__conf_check_value(const souk_conf_key_t *k, const char *text, int64_t *i, uint64_t *id,
                            souk_buf_t *msg) {
  cval_t v;
  size_t n = strlen(text);
  if (!parse_type(k, text, n, &v, msg)) return false;
  switch (k->type) {
  case SOUK_CONF_INT:
  case SOUK_CONF_DURATION:
  case SOUK_CONF_SIZE:
    if (i) *i = v.i;
    break;
  case SOUK_CONF_BOOL:
    if (i) *i = v.b;
    break;
  case SOUK_CONF_ENUM:
    if (i) *i = v.e;
    break;
  case SOUK_CONF_SNOWFLAKE:
    if (id) *id = v.id;
    break;
  default:
    break;
  }
  val_free(k, &v);
  return true;
}

static void source_format(const kstate_t *ks, souk_buf_t *out) {
  int src = ks ? ks->src : SRC_DEFAULT;
  switch (src) {
  case SRC_FILE:
    souk_buf_puts(out, ks->where);
    break;
  case SRC_ENV:
    souk_buf_printf(out, "env %s", ks->where);
    break;
  case SRC_ADMIN:
    souk_buf_puts(out, "admin");
    break;
  default:
    souk_buf_puts(out, "default");
    break;
  }
}

int souk__config_source(const souk_conf_section_t *secs, size_t nsecs, const char *dotted_key,
                        souk_buf_t *file) {
  int si;
  const souk_conf_key_t *k;
  if (!key_lookup(secs, nsecs, dotted_key, &si, &k)) return SOUK_ENOTFOUND;
  const kstate_t *ks = state_find(&secs[si], k, false);
  if (ks && (ks->src == SRC_FILE || ks->src == SRC_ENV)) source_format(ks, file);
  return 0;
}

void souk__config_dump(const souk_conf_section_t *secs, size_t nsecs, souk_buf_t *out) {
  for (size_t i = 0; i < nsecs; i++) {
    const souk_conf_section_t *sec = &secs[i];
    for (size_t x = 0; x < nkeys(sec); x++) {
      const souk_conf_key_t *k = &sec->keys[x];
      const kstate_t *ks = state_find(sec, k, false);
      cval_t v;
      val_read(sec, k, &v);
      souk_buf_printf(out, "%s.%s = ", sec->name, k->name);
      if (k->flags & SOUK_CONF_ALIAS) {
        /* One value: the one of the key it names, wherever it was set. */
        souk_buf_printf(out, "alias of %s", k->choices[0]);
        if (ks && ks->src != SRC_DEFAULT) {
          souk_buf_printf(out, ", set here to ");
          val_format(k, &v, out);
          souk_buf_puts(out, " (");
          source_format(ks, out);
          souk_buf_puts(out, ")");
        }
        souk_buf_puts(out, "\n");
        continue;
      }
      if ((k->flags & SOUK_CONF_SECRET) && val_isset(k, &v)) {
        /* "set (from SOUK_DISCORD_TOKEN)": where it came from, never what. */
        if (ks && ks->src == SRC_ENV) {
          souk_buf_printf(out, "set (from %s)\n", ks->where);
        } else {
          souk_buf_puts(out, "set (from ");
          source_format(ks, out);
          souk_buf_puts(out, ")\n");
        }
        continue;
      }
      val_format(k, &v, out);
      souk_buf_puts(out, " (");
      source_format(ks, out);
      souk_buf_puts(out, ")\n");
    }
  }
}

int souk__config_require(const souk_conf_section_t *secs, size_t nsecs, souk__conf_report_t *rep) {
  int rc = 0;
  souk_buf_t name, key;
  souk_buf_init(&name);
  souk_buf_init(&key);
  for (size_t i = 0; i < nsecs; i++) {
    for (size_t x = 0; x < nkeys(&secs[i]); x++) {
      const souk_conf_key_t *k = &secs[i].keys[x];
      cval_t v;
      val_read(&secs[i], k, &v);
      if (!(k->flags & SOUK_CONF_REQUIRED) || val_isset(k, &v)) continue;
      souk_buf_reset(&name);
      souk_buf_reset(&key);
      env_name(&name, secs[i].name, k->name);
      souk_buf_printf(&key, "%s.%s", secs[i].name, k->name);
      if (k->flags & SOUK_CONF_SECRET)
        rep_add(rep, false, NULL, 0, key.data,
                "required but not set; set %s in the environment or .env", name.data);
      else
        rep_add(rep, false, NULL, 0, key.data,
                "required but not set; set it in the config file or with %s", name.data);
      rc = SOUK_ECONFIG;
    }
  }
  souk_buf_free(&name);
  souk_buf_free(&key);
  return rc;
}

void souk__config_free(const souk_conf_section_t *secs, size_t nsecs) {
  for (size_t i = 0; i < nsecs; i++) {
    for (size_t x = 0; x < nkeys(&secs[i]); x++) {
      const souk_conf_key_t *k = &secs[i].keys[x];
      kstate_t *ks = state_find(&secs[i], k, false);
      if (!ks) continue;
      if (ks->owned) {
        cval_t v;
        val_read(&secs[i], k, &v);
        val_free(k, &v);
        val_write(&secs[i], k, &v);
      }
      souk_free(ks->where);
      *ks = g_state[--g_nstate];
    }
  }
  if (g_nstate == 0) {
    souk_free(g_state);
    g_state = NULL;
    for (size_t i = 0; i < g_ndotenv; i++)
      souk_free(g_dotenv[i]);
    souk_free(g_dotenv);
    g_dotenv = NULL;
    g_ndotenv = 0;
  }
}
