/* The settings registry (include/souk/settings.h, ops/settings.h).
 *
 * Reads are served from memory: the registry (one entry per declared
 * setting, with its default resolved) and an open-addressing hash table
 * of the values set for some guild or user.  Writes change memory first,
 * so the handler that set a value reads it back at once, then go to the
 * store through a queue that keeps one transaction in flight, so two
 * quick changes of one key commit in the order they were made. */
#include "ops/settings.h"

#include "core/config.h"
#include "souk/alloc.h"
#include "souk/buf.h"
#include "souk/err.h"
#include "souk/json.h"
#include "souk/log.h"
#include "souk/loop.h"
#include "souk/metrics.h"
#include "souk/recovery.h"

#include <ctype.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

#define COMP               "settings"
#define KEY_MAX            64
#define LABEL_MAX          45
#define STRING_MAX_DEFAULT 100
#define WATCHERS_MAX       8
#define MONEY_DECIMALS_MAX 6
#define TZ_NAME_MAX        64
/* Re-reads overlap the previous one by this much, so a row committed late
 * or stamped by a process whose clock is a little behind is not missed
 * (applying a row twice changes nothing). */
#define REFRESH_OVERLAP_MS 120000

typedef struct watcher {
  souk_setting_watch_cb cb;
  void *ud;
} watcher_t;

typedef struct reg {
  const souk_setting_t *s;
  const char *module;
  /* The default in effect: the setting's own, or its config key's. */
  char *def_text; /* canonical text, "" for none */
  int64_t def_i;
  uint64_t def_id;
  souk_setting_source_t def_src;
  watcher_t w[WATCHERS_MAX];
  size_t nw;
} reg_t;

/* A value set for one scope; idx is the registry index + 1 (0: free). */
typedef struct val {
  uint64_t scope;
  uint32_t idx;
  int64_t i;
  uint64_t id;
  char *text; /* canonical */
  uint64_t by;
  int64_t at;
} val_t;

/* A write waiting for, or in, its transaction. */
typedef struct wjob {
  struct wjob *next; /* the queue; after a stop, the writes still to do */
  souk_store_t *st;
  unsigned gen;
  uint64_t scope;
  uint32_t idx;
  char key[KEY_MAX + 1];
  char *value; /* NULL: reset */
  uint64_t by;
  int64_t at;
  /* Who waits for this write (souk_setting_flush). */
  struct waiter *waiters;
  size_t nwaiters;
  /* What memory held before, to put back if the write fails. */
  bool had;
  char *prev;
  uint64_t prev_by;
  int64_t prev_at;
} wjob_t;

typedef struct waiter {
  souk_setting_done_cb done;
  void *ud;
  int status;
  struct waiter *next; /* on the list answered from the loop */
} waiter_t;

/* A row read from the store. */
typedef struct row {
  uint64_t scope;
  char *key;
  char *value; /* NULL: reset */
  uint64_t by;
  int64_t at;
} row_t;

typedef struct rows {
  unsigned gen;
  int64_t since;   /* rows updated after this; INT64_MIN: every set row */
  int64_t started; /* when the read was asked for */
  uint64_t scope;
  char key[KEY_MAX + 1]; /* one row only, when set */
  row_t *v;
  size_t n;
  void (*done)(void *ud, int status);
  void *ud;
} rows_t;

typedef struct touched {
  uint64_t scope;
  uint32_t idx;
} touched_t;

static struct {
  reg_t *regs;
  size_t nregs;
  size_t *by_key; /* registry indices sorted by key */
  val_t *tab;
  size_t cap, n;
  bool running;
  unsigned gen;
  souk_store_t *st;
  const souk_conf_section_t *secs;
  size_t nsecs;
  wjob_t *wq_head, *wq_tail;
  wjob_t *w_cur; /* the write in flight */
  bool w_inflight;
  size_t nwrites;
  bool refreshing;
  int64_t last_refresh; /* start of the last re-read that succeeded */
  touched_t *touched;
  size_t ntouched, touched_cap;
  void (*publish)(uint64_t scope, const char *key, void *ud);
  void *publish_ud;
  uint64_t (*clock)(void);
  waiter_t *later; /* flushes answered from the loop */
  uv_timer_t *later_timer;
} g;

static int64_t unix_ms(void) { return (int64_t)(g.clock ? g.clock() : souk_unix_ms()); }

void souk__settings_set_clock(uint64_t (*fn)(void)) { g.clock = fn; }

/* ---- text ---------------------------------------------------------------------- */

static size_t utf8_chars(const char *s) {
  size_t c = 0;
  for (; *s; s++)
    if (((unsigned char)*s & 0xC0) != 0x80) c++;
  return c;
}

/* text without leading and trailing ASCII white space, copied. */
static char *trimmed(const char *text) {
  const char *a = text ? text : "";
  while (*a && isspace((unsigned char)*a))
    a++;
  size_t n = strlen(a);
  while (n && isspace((unsigned char)a[n - 1]))
    n--;
  return souk_memdup0(a, n);
}

static void put_found(souk_buf_t *err, const char *t) {
  souk_buf_puts(err, ", found ");
  souk__conf_quote(err, t, strlen(t));
}

/* Money: int64 minor units with `dec` decimals, optionally with thousands
 * separators. */
static void fmt_money(souk_buf_t *b, int64_t v, unsigned dec, bool sep) {
  uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
  uint64_t scale = 1;
  for (unsigned i = 0; i < dec; i++)
    scale *= 10;
  uint64_t whole = u / scale, frac = u % scale;
  char digits[32];
  int nd = snprintf(digits, sizeof digits, "%" PRIu64, whole);
  if (v < 0) souk_buf_putc(b, '-');
  for (int i = 0; i < nd; i++) {
    if (sep && i > 0 && (nd - i) % 3 == 0) souk_buf_putc(b, ',');
    souk_buf_putc(b, digits[i]);
  }
  if (dec) souk_buf_printf(b, ".%0*" PRIu64, (int)dec, frac);
}

static void describe_money(const souk_setting_t *s, souk_buf_t *err) {
  int64_t hi = s->max == 0 ? INT64_MAX : s->max;
  souk_buf_puts(err, "expected an amount");
  if (s->decimals)
    souk_buf_printf(err, " with at most %u decimal places", s->decimals);
  else
    souk_buf_puts(err, " in whole units");
  if (hi != INT64_MAX) {
    souk_buf_puts(err, " between ");
    fmt_money(err, s->min, s->decimals, true);
    souk_buf_puts(err, " and ");
    fmt_money(err, hi, s->decimals, true);
  } else if (s->min != INT64_MIN) {
    souk_buf_puts(err, " of at least ");
    fmt_money(err, s->min, s->decimals, true);
  }
}

/* "1,000,000", "$12.50", "-3": a sign, a '$', digits with optional
 * thousands separators (groups of three), at most `decimals` decimals. */
static bool parse_money(const souk_setting_t *s, const char *t, int64_t *out, souk_buf_t *err) {
  char clean[64];
  size_t n = 0;
  const char *p = t;
  bool neg = false;
  if (*p == '-') neg = true, p++;
  if (*p == '$') p++;
  if (!neg && *p == '-') neg = true, p++;
  if (neg) clean[n++] = '-';
  const char *int_start = p;
  size_t group = 0;
  bool commas = false, ok = isdigit((unsigned char)*p) != 0;
  for (; ok && (isdigit((unsigned char)*p) || *p == ','); p++) {
    if (*p == ',') {
      /* The first group has 1-3 digits, every later one exactly 3. */
      if (group == 0 || (commas && group != 3) || (!commas && group > 3)) ok = false;
      commas = true;
      group = 0;
      continue;
    }
    if (n + 1 >= sizeof clean)
      ok = false;
    else
      clean[n++] = *p, group++;
  }
  if (commas && group != 3) ok = false;
  if (ok && *p == '.') {
    clean[n++] = *p++;
    size_t fd = 0;
    while (isdigit((unsigned char)*p) && n + 1 < sizeof clean)
      clean[n++] = *p++, fd++;
    if (fd == 0 || fd > s->decimals) ok = false;
  }
  if (ok && *p) ok = false;
  (void)int_start;
  int64_t v = 0;
  if (ok && souk_decimal_parse(clean, n, s->decimals, &v) != 0) ok = false;
  int64_t hi = s->max == 0 ? INT64_MAX : s->max;
  if (!ok || v < s->min || v > hi) {
    describe_money(s, err);
    put_found(err, t);
    return false;
  }
  *out = v;
  return true;
}

/* An IANA time zone: a file of the tz database ("TZif" data), reached by
 * a plain relative name. */
static bool tz_valid(const char *t) {
  if (!strcmp(t, "UTC")) return true;
  size_t n = strlen(t);
  if (n == 0 || n > TZ_NAME_MAX || t[0] == '/' || t[0] == '-' || t[0] == '.' || strstr(t, "..") ||
      strstr(t, "//"))
    return false;
  for (const char *p = t; *p; p++)
    if (!isalnum((unsigned char)*p) && !strchr("_+-/", *p)) return false;
  const char *dir = getenv("TZDIR");
  char path[512];
  snprintf(path, sizeof path, "%s/%s", dir && *dir ? dir : "/usr/share/zoneinfo", t);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  char magic[4];
  ssize_t r = read(fd, magic, sizeof magic);
  close(fd);
  return r == 4 && memcmp(magic, "TZif", 4) == 0;
}

typedef struct parsed {
  char *text; /* canonical, owned */
  int64_t i;
  uint64_t id;
} parsed_t;

/* Read text as a value of s, with the config file's rules and messages
 * where the kinds are shared.  true, or false with the reason in err. */
static bool parse_value(const souk_setting_t *s, const char *raw, parsed_t *out, souk_buf_t *err) {
  memset(out, 0, sizeof *out);
  char *t = trimmed(raw);
  souk_conf_key_t k = {.name = s->key, .min = s->min, .max = s->max, .choices = s->choices};
  souk_buf_t canon;
  souk_buf_init(&canon);
  bool ok = false;
  switch (s->type) {
  case SOUK_SETTING_BOOL:
    k.type = SOUK_CONF_BOOL;
    ok = souk__conf_check_value(&k, t, &out->i, NULL, err);
    souk_buf_puts(&canon, out->i ? "true" : "false");
    break;
  case SOUK_SETTING_INT:
    k.type = SOUK_CONF_INT;
    ok = souk__conf_check_value(&k, t, &out->i, NULL, err);
    souk_buf_printf(&canon, "%" PRId64, out->i);
    break;
  case SOUK_SETTING_MONEY:
    ok = parse_money(s, t, &out->i, err);
    fmt_money(&canon, out->i, s->decimals, false);
    break;
  case SOUK_SETTING_STRING: {
    k.type = SOUK_CONF_STRING;
    k.min = 0;
    k.max = s->max > 0 ? s->max : STRING_MAX_DEFAULT;
    ok = souk__conf_check_value(&k, t, NULL, NULL, err);
    for (const char *p = t; ok && *p; p++) {
      if ((unsigned char)*p < 0x20 || *p == 0x7f) {
        souk_buf_puts(err, "expected text without control characters (such as line breaks)");
        ok = false;
      }
    }
    if (ok && (int64_t)utf8_chars(t) < s->min) {
      souk_buf_printf(err, "expected text of at least %" PRId64 " characters", s->min);
      put_found(err, t);
      ok = false;
    }
    souk_buf_puts(&canon, t);
    break;
  }
  case SOUK_SETTING_CHANNEL:
  case SOUK_SETTING_ROLE: {
    bool chan = s->type == SOUK_SETTING_CHANNEL;
    const char *open = chan ? "<#" : "<@&";
    size_t ol = strlen(open), n = strlen(t);
    char id[32];
    if (n > ol + 1 && !strncmp(t, open, ol) && t[n - 1] == '>')
      snprintf(id, sizeof id, "%.*s", (int)(n - ol - 1), t + ol);
    else
      snprintf(id, sizeof id, "%s", t);
    k.type = SOUK_CONF_SNOWFLAKE;
    souk_buf_t ignore;
    souk_buf_init(&ignore);
    ok = n < sizeof id && souk__conf_check_value(&k, id, NULL, &out->id, &ignore) && out->id;
    souk_buf_free(&ignore);
    if (!ok) {
      souk_buf_printf(err, "expected a %s: its mention (%s...>) or its id (17-20 digits)",
                      chan ? "channel" : "role", open);
      put_found(err, t);
    }
    souk_buf_printf(&canon, "%" PRIu64, out->id);
    break;
  }
  case SOUK_SETTING_ENUM:
    k.type = SOUK_CONF_ENUM;
    ok = souk__conf_check_value(&k, t, &out->i, NULL, err);
    if (ok) souk_buf_puts(&canon, s->choices[out->i]);
    break;
  case SOUK_SETTING_TIMEZONE:
    ok = tz_valid(t);
    if (!ok) {
      souk_buf_puts(err,
                    "expected an IANA time zone such as Europe/Paris, America/New_York or UTC");
      put_found(err, t);
    }
    souk_buf_puts(&canon, t);
    break;
  }
  souk_free(t);
  if (ok && s->check) {
    char why[256] = "";
    if (!s->check(canon.data ? canon.data : "", why, sizeof why)) {
      souk_buf_puts(err, why[0] ? why : "that value is not allowed here");
      ok = false;
    }
  }
  if (ok) out->text = souk_buf_steal(&canon);
  souk_buf_free(&canon);
  return ok;
}

/* ---- the registry -------------------------------------------------------------- */

static const char *key_of(size_t i) { return g.regs[i].s->key; }

/* The table qsort orders (qsort has no context argument). */
static const reg_t *g_sorting;

static int by_key_cmp(const void *a, const void *b) {
  return strcmp(g_sorting[*(const size_t *)a].s->key, g_sorting[*(const size_t *)b].s->key);
}

static reg_t *reg_find(const char *key, uint32_t *idx) {
  if (!key) return NULL;
  size_t lo = 0, hi = g.nregs;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    int c = strcmp(key_of(g.by_key[mid]), key);
    if (c == 0) {
      if (idx) *idx = (uint32_t)g.by_key[mid];
      return &g.regs[g.by_key[mid]];
    }
    if (c < 0)
      lo = mid + 1;
    else
      hi = mid;
  }
  return NULL;
}

/* Resolve the default of r from the setting alone. */
static void reg_own_default(reg_t *r) {
  souk_free(r->def_text);
  r->def_text = NULL;
  r->def_i = 0;
  r->def_id = 0;
  r->def_src = SOUK_SETTING_DEFAULT;
  parsed_t p;
  souk_buf_t err;
  souk_buf_init(&err);
  if (r->s->def && parse_value(r->s, r->s->def, &p, &err)) {
    r->def_text = p.text;
    r->def_i = p.i;
    r->def_id = p.id;
  } else {
    r->def_text = souk_strdup("");
  }
  souk_buf_free(&err);
}

/* Check one table entry; false with the reason in why. */
static bool entry_ok(const souk_setting_t *s, const char *module, souk_buf_t *why) {
  size_t ml = strlen(module), kl = s->key ? strlen(s->key) : 0;
  if (kl == 0 || kl > KEY_MAX || strncmp(s->key, module, ml) != 0 || s->key[ml] != '.' ||
      kl == ml + 1) {
    souk_buf_printf(why, "key \"%s\" must be \"%s.<name>\", at most %d characters",
                    s->key ? s->key : "", module, KEY_MAX);
    return false;
  }
  for (const char *p = s->key; *p; p++) {
    if (!islower((unsigned char)*p) && !isdigit((unsigned char)*p) && *p != '_' && *p != '.') {
      souk_buf_printf(why, "key \"%s\" may hold only a-z, 0-9, '_' and '.'", s->key);
      return false;
    }
  }
  if (s->scope != SOUK_SETTING_GUILD && s->scope != SOUK_SETTING_USER) {
    souk_buf_printf(why, "%s: scope must be SOUK_SETTING_GUILD or SOUK_SETTING_USER", s->key);
    return false;
  }
  if (s->type < SOUK_SETTING_BOOL || s->type > SOUK_SETTING_TIMEZONE) {
    souk_buf_printf(why, "%s: unknown type", s->key);
    return false;
  }
  if (!s->label || !s->label[0] || utf8_chars(s->label) > LABEL_MAX || !s->description ||
      !s->description[0]) {
    souk_buf_printf(why, "%s: needs a label (1-%d characters) and a description", s->key,
                    LABEL_MAX);
    return false;
  }
  if (s->type == SOUK_SETTING_ENUM && (!s->choices || !s->choices[0])) {
    souk_buf_printf(why, "%s: an enum needs choices", s->key);
    return false;
  }
  if (s->type == SOUK_SETTING_MONEY && s->decimals > MONEY_DECIMALS_MAX) {
    souk_buf_printf(why, "%s: at most %d decimals", s->key, MONEY_DECIMALS_MAX);
    return false;
  }
  if (s->def) {
    parsed_t p;
    souk_buf_t err;
    souk_buf_init(&err);
    bool ok = parse_value(s, s->def, &p, &err);
    if (!ok) souk_buf_printf(why, "%s: default \"%s\": %s", s->key, s->def, err.data);
    souk_buf_free(&err);
    souk_free(p.text);
    if (!ok) return false;
  }
  return true;
}

void souk__settings_clear(void) {
  for (size_t i = 0; i < g.nregs; i++)
    souk_free(g.regs[i].def_text);
  souk_free(g.regs);
  souk_free(g.by_key);
  g.regs = NULL;
  g.by_key = NULL;
  g.nregs = 0;
}

int souk__settings_register(const souk_module_t *const *mods) {
  size_t n = 0;
  for (size_t m = 0; mods && mods[m]; m++)
    for (const souk_setting_t *s = mods[m]->settings; s && s->key; s++)
      n++;
  souk_buf_t why;
  souk_buf_init(&why);
  reg_t *regs = souk_calloc(n ? n : 1, sizeof *regs);
  size_t k = 0;
  for (size_t m = 0; mods && mods[m]; m++) {
    for (const souk_setting_t *s = mods[m]->settings; s && s->key; s++) {
      if (!entry_ok(s, mods[m]->name, &why)) {
        SOUK_ERROR(COMP, "module %s: invalid settings table: %s", mods[m]->name, why.data);
        souk_buf_free(&why);
        souk_free(regs);
        return SOUK_EINVAL;
      }
      regs[k].s = s;
      regs[k].module = mods[m]->name;
      k++;
    }
  }
  souk_buf_free(&why);
  size_t *by_key = souk_calloc(n ? n : 1, sizeof *by_key);
  for (size_t i = 0; i < n; i++)
    by_key[i] = i;
  g_sorting = regs;
  qsort(by_key, n, sizeof *by_key, by_key_cmp);
  g_sorting = NULL;
  for (size_t i = 1; i < n; i++) {
    if (strcmp(regs[by_key[i - 1]].s->key, regs[by_key[i]].s->key) == 0) {
      SOUK_ERROR(COMP, "setting %s is declared twice", regs[by_key[i]].s->key);
      souk_free(by_key);
      souk_free(regs);
      return SOUK_EINVAL;
    }
  }
  souk__settings_clear();
  g.regs = regs;
  g.nregs = n;
  g.by_key = by_key;
  for (size_t i = 0; i < n; i++)
    reg_own_default(&g.regs[i]);
  /* `souk db forget-user` and a guild's purge take its rows too: scope_id
   * is a user's id or a guild's, and the two never collide. */
  return souk_store_register_data("settings", "scope_id", "scope_id");
}

/* The config-supplied defaults.  0, or SOUK_EINVAL for a config key that
 * does not exist (logged); a value that does not read as the setting's
 * type is logged and the setting's own default kept. */
static int resolve_config_defaults(void) {
  int rc = 0;
  souk_buf_t v, err;
  souk_buf_init(&v);
  souk_buf_init(&err);
  for (size_t i = 0; i < g.nregs; i++) {
    reg_t *r = &g.regs[i];
    reg_own_default(r);
    if (!r->s->config_key || !g.secs) continue;
    souk_buf_reset(&v);
    bool from_default = true;
    int x = souk__config_value_text(g.secs, g.nsecs, r->s->config_key, &v, &from_default);
    if (x) {
      SOUK_ERROR(COMP, "setting %s: its config key %s %s", r->s->key, r->s->config_key,
                 x == SOUK_ENOTFOUND ? "does not exist" : "cannot be read");
      rc = SOUK_EINVAL;
      continue;
    }
    if (!v.len) continue; /* unset: the setting's own default */
    parsed_t p;
    souk_buf_reset(&err);
    if (!parse_value(r->s, v.data, &p, &err)) {
      SOUK_WARN(COMP, "setting %s: %s = \"%s\" is not a valid default (%s); using \"%s\"",
                r->s->key, r->s->config_key, v.data, err.data, r->def_text);
      continue;
    }
    souk_free(r->def_text);
    r->def_text = p.text;
    r->def_i = p.i;
    r->def_id = p.id;
    r->def_src = from_default ? SOUK_SETTING_DEFAULT : SOUK_SETTING_CONFIG;
  }
  souk_buf_free(&v);
  souk_buf_free(&err);
  return rc;
}

void souk__settings_reload(void) { resolve_config_defaults(); }

size_t souk_setting_count(void) { return g.nregs; }

const souk_setting_t *souk_setting_at(size_t i, const char **module) {
  if (i >= g.nregs) return NULL;
  if (module) *module = g.regs[i].module;
  return g.regs[i].s;
}

const souk_setting_t *souk_setting_find(const char *key, const char **module) {
  reg_t *r = reg_find(key, NULL);
  if (r && module) *module = r->module;
  return r ? r->s : NULL;
}

int souk_setting_watch(const char *key, souk_setting_watch_cb cb, void *ud) {
  reg_t *r = reg_find(key, NULL);
  if (!r || !cb) return SOUK_ENOTFOUND;
  if (r->nw == WATCHERS_MAX) return SOUK_EFULL;
  r->w[r->nw++] = (watcher_t){cb, ud};
  return 0;
}

static void notify(uint64_t scope, uint32_t idx) {
  reg_t *r = &g.regs[idx];
  for (size_t i = 0; i < r->nw; i++)
    r->w[i].cb(scope, r->s, r->w[i].ud);
}

/* ---- values in memory ---------------------------------------------------------- */

static size_t slot_of(uint64_t scope, uint32_t idx) {
  uint64_t h =
      scope * UINT64_C(0x9E3779B97F4A7C15) ^ ((uint64_t)idx * UINT64_C(0xC2B2AE3D27D4EB4F));
  h ^= h >> 29;
  return (size_t)h & (g.cap - 1);
}

static val_t *val_find(uint64_t scope, uint32_t idx) {
  if (!g.cap) return NULL;
  for (size_t i = slot_of(scope, idx);; i = (i + 1) & (g.cap - 1)) {
    val_t *v = &g.tab[i];
    if (!v->idx) return NULL;
    if (v->scope == scope && v->idx == idx + 1) return v;
  }
}

static void tab_grow(void) {
  size_t oldcap = g.cap;
  val_t *old = g.tab;
  g.cap = oldcap ? oldcap * 2 : 64;
  g.tab = souk_calloc(g.cap, sizeof *g.tab);
  for (size_t i = 0; i < oldcap; i++) {
    if (!old[i].idx) continue;
    size_t j = slot_of(old[i].scope, old[i].idx - 1);
    while (g.tab[j].idx)
      j = (j + 1) & (g.cap - 1);
    g.tab[j] = old[i];
  }
  souk_free(old);
}

/* The slot for (scope, idx), created empty when missing.  Pointers into
 * the table die with the next insert or remove. */
static val_t *val_upsert(uint64_t scope, uint32_t idx) {
  val_t *v = val_find(scope, idx);
  if (v) return v;
  if ((g.n + 1) * 4 > g.cap * 3) tab_grow();
  size_t i = slot_of(scope, idx);
  while (g.tab[i].idx)
    i = (i + 1) & (g.cap - 1);
  v = &g.tab[i];
  memset(v, 0, sizeof *v);
  v->scope = scope;
  v->idx = idx + 1;
  g.n++;
  return v;
}

/* Remove v, shifting back the entries after it so lookups never stop
 * early (no tombstones). */
static void val_remove(val_t *v) {
  souk_free(v->text);
  size_t i = (size_t)(v - g.tab);
  memset(v, 0, sizeof *v);
  g.n--;
  for (size_t j = (i + 1) & (g.cap - 1); g.tab[j].idx; j = (j + 1) & (g.cap - 1)) {
    size_t home = slot_of(g.tab[j].scope, g.tab[j].idx - 1);
    /* Move j back to i when its home is not in (i, j]. */
    bool between = i <= j ? (home > i && home <= j) : (home > i || home <= j);
    if (between) continue;
    g.tab[i] = g.tab[j];
    memset(&g.tab[j], 0, sizeof g.tab[j]);
    i = j;
  }
}

/* Hold p (moved in) as the value of (scope, idx). */
static void val_store(uint64_t scope, uint32_t idx, parsed_t *p, uint64_t by, int64_t at) {
  val_t *v = val_upsert(scope, idx);
  souk_free(v->text);
  v->text = p->text;
  v->i = p->i;
  v->id = p->id;
  v->by = by;
  v->at = at;
  p->text = NULL;
}

static void tab_free(void) {
  for (size_t i = 0; i < g.cap; i++)
    souk_free(g.tab[i].text);
  souk_free(g.tab);
  g.tab = NULL;
  g.cap = g.n = 0;
}

size_t souk__settings_held(void) { return g.n; }

/* ---- reads --------------------------------------------------------------------- */

static reg_t *reg_for_read(const char *key, uint32_t *idx) {
  static unsigned warned;
  reg_t *r = reg_find(key, idx);
  /* A typo in a module: say so, but not once per read. */
  if (!r && warned < 16) {
    warned++;
    SOUK_WARN(COMP, "no setting called %s (the default reads as 0 or \"\")", key ? key : "(null)");
  }
  return r;
}

static int copy_out(const char *s, char *out, size_t cap) {
  if (!out || !cap) return SOUK_ETOOBIG;
  size_t n = strlen(s);
  snprintf(out, cap, "%s", s);
  return n < cap ? 0 : SOUK_ETOOBIG;
}

int souk_setting_get(uint64_t scope_id, const char *key, char *out, size_t cap,
                     souk_setting_source_t *src) {
  uint32_t idx;
  reg_t *r = reg_find(key, &idx);
  if (out && cap) out[0] = '\0';
  if (!r) return SOUK_ENOTFOUND;
  val_t *v = scope_id ? val_find(scope_id, idx) : NULL;
  if (src) *src = v ? SOUK_SETTING_SET : r->def_src;
  return copy_out(v ? v->text : r->def_text, out, cap);
}

int souk_setting_display(uint64_t scope_id, const char *key, char *out, size_t cap) {
  uint32_t idx;
  reg_t *r = reg_find(key, &idx);
  if (out && cap) out[0] = '\0';
  if (!r) return SOUK_ENOTFOUND;
  val_t *v = scope_id ? val_find(scope_id, idx) : NULL;
  const char *text = v ? v->text : r->def_text;
  int64_t i = v ? v->i : r->def_i;
  uint64_t id = v ? v->id : r->def_id;
  souk_buf_t b;
  souk_buf_init(&b);
  const souk_setting_t *s = r->s;
  if (!text[0]) {
    souk_buf_puts(&b, "not set");
  } else if (s->type == SOUK_SETTING_BOOL) {
    souk_buf_puts(&b, i ? "on" : "off");
  } else if (s->type == SOUK_SETTING_MONEY) {
    fmt_money(&b, i, s->decimals, true);
  } else if (s->type == SOUK_SETTING_CHANNEL) {
    souk_buf_printf(&b, "<#%" PRIu64 ">", id);
  } else if (s->type == SOUK_SETTING_ROLE) {
    souk_buf_printf(&b, "<@&%" PRIu64 ">", id);
  } else {
    souk_buf_puts(&b, text);
  }
  int rc = copy_out(b.data, out, cap);
  souk_buf_free(&b);
  return rc;
}

int64_t souk_setting_int(uint64_t scope_id, const char *key) {
  uint32_t idx;
  reg_t *r = reg_for_read(key, &idx);
  if (!r) return 0;
  souk_setting_type_t t = r->s->type;
  if (t != SOUK_SETTING_BOOL && t != SOUK_SETTING_INT && t != SOUK_SETTING_MONEY &&
      t != SOUK_SETTING_ENUM)
    return 0;
  val_t *v = scope_id ? val_find(scope_id, idx) : NULL;
  return v ? v->i : r->def_i;
}

uint64_t souk_setting_id(uint64_t scope_id, const char *key) {
  uint32_t idx;
  reg_t *r = reg_for_read(key, &idx);
  if (!r || (r->s->type != SOUK_SETTING_CHANNEL && r->s->type != SOUK_SETTING_ROLE)) return 0;
  val_t *v = scope_id ? val_find(scope_id, idx) : NULL;
  return v ? v->id : r->def_id;
}

int64_t souk_setting_scopes(const char *key, uint64_t *out, size_t cap) {
  uint32_t idx;
  if (!reg_for_read(key, &idx)) return SOUK_ENOTFOUND;
  int64_t n = 0;
  for (size_t i = 0; i < g.cap; i++) {
    if (g.tab[i].idx != idx + 1) continue;
    if ((size_t)n < cap && out) out[n] = g.tab[i].scope;
    n++;
  }
  return n;
}

const char *souk_setting_str(uint64_t scope_id, const char *key) {
  uint32_t idx;
  reg_t *r = reg_for_read(key, &idx);
  if (!r) return "";
  val_t *v = scope_id ? val_find(scope_id, idx) : NULL;
  return v ? v->text : r->def_text;
}

int souk_setting_check(const char *key, const char *text, char *err, size_t errcap) {
  reg_t *r = reg_find(key, NULL);
  if (err && errcap) err[0] = '\0';
  if (!r) return SOUK_ENOTFOUND;
  parsed_t p;
  souk_buf_t e;
  souk_buf_init(&e);
  bool ok = parse_value(r->s, text ? text : "", &p, &e);
  if (!ok && err && errcap) snprintf(err, errcap, "%s", e.data);
  souk_buf_free(&e);
  souk_free(p.text);
  return ok ? 0 : SOUK_EINVAL;
}

/* ---- writes -------------------------------------------------------------------- */

static const char *scope_name(const reg_t *r) {
  return r->s->scope == SOUK_SETTING_GUILD ? "guild" : "user";
}

static int write_fn(souk_db_t *db, void *ud) {
  wjob_t *j = ud;
  souk_stmt_t *s;
  int rc = souk_db_prepare(db,
                           "INSERT INTO settings (scope_id, key, value, set_by, updated_at) "
                           "VALUES (?, ?, ?, ?, ?) ON CONFLICT (scope_id, key) DO UPDATE SET "
                           "value = excluded.value, set_by = excluded.set_by, "
                           "updated_at = excluded.updated_at",
                           &s);
  if (rc) return rc;
  souk_stmt_bind_int64(s, 1, (int64_t)j->scope);
  souk_stmt_bind_text(s, 2, j->key, SIZE_MAX);
  souk_stmt_bind_text(s, 3, j->value, SIZE_MAX);
  souk_stmt_bind_int64(s, 4, (int64_t)j->by);
  souk_stmt_bind_int64(s, 5, j->at);
  rc = souk_stmt_step(s);
  souk_stmt_finalize(s);
  return rc < 0 ? rc : 0;
}

/* Tell who waits for j how its write ended. */
static void wjob_answer(wjob_t *j, int status) {
  waiter_t *w = j->waiters;
  size_t n = j->nwaiters;
  j->waiters = NULL;
  j->nwaiters = 0;
  for (size_t i = 0; i < n; i++)
    w[i].done(w[i].ud, status);
  souk_free(w);
}

static void wjob_free(wjob_t *j) {
  souk_free(j->waiters);
  souk_free(j->value);
  souk_free(j->prev);
  souk_free(j);
}

static void write_next(void);

/* Is another write queued, or in flight, about (scope, idx)? */
static bool queued_for(uint64_t scope, uint32_t idx) {
  if (g.w_cur && g.w_cur->scope == scope && g.w_cur->idx == idx) return true;
  for (wjob_t *j = g.wq_head; j; j = j->next)
    if (j->scope == scope && j->idx == idx) return true;
  return false;
}

/* A write failed: put back what memory held before, unless a later change
 * of the same value is on its way (it wins either way). */
static void write_failed(wjob_t *j, int status) {
  reg_t *r = &g.regs[j->idx];
  souk_error_record("store", SOUK_SEV_MEDIUM, status, NULL, "setting %s of %s %" PRIu64, j->key,
                    scope_name(r), j->scope);
  SOUK_ERROR(COMP, "%s %" PRIu64 ": could not save %s (%s); the previous value applies again",
             scope_name(r), j->scope, j->key, souk_strerror(status));
  if (queued_for(j->scope, j->idx)) return;
  val_t *v = val_find(j->scope, j->idx);
  if (j->had) {
    parsed_t p;
    souk_buf_t e;
    souk_buf_init(&e);
    if (parse_value(r->s, j->prev, &p, &e)) val_store(j->scope, j->idx, &p, j->prev_by, j->prev_at);
    souk_buf_free(&e);
  } else if (v) {
    val_remove(v);
  }
  notify(j->scope, j->idx);
}

static void detached_start(wjob_t *j);

static void write_done(void *ud, int status) {
  wjob_t *j = ud;
  bool current = j->gen == g.gen && g.running;
  wjob_t *rest = j->next;
  if (current) {
    g.w_inflight = false;
    g.w_cur = NULL;
    g.nwrites--;
    if (status)
      write_failed(j, status);
    else if (g.publish)
      g.publish(j->scope, j->key, g.publish_ud);
    wjob_answer(j, status);
  } else if (status) {
    SOUK_ERROR(COMP, "could not save %s while stopping: %s", j->key, souk_strerror(status));
  }
  wjob_free(j);
  if (current)
    write_next();
  else if (rest)
    detached_start(rest);
}

/* After a stop: write j and the ones after it, in order, on their own
 * (the store outlives the loop's last callbacks). */
static void detached_start(wjob_t *j) {
  while (j) {
    j->gen = 0;
    if (souk_store_tx_async(j->st, write_fn, write_done, j) == 0) return;
    SOUK_ERROR(COMP, "could not save %s while stopping", j->key);
    wjob_t *next = j->next;
    wjob_free(j);
    j = next;
  }
}

static void write_next(void) {
  while (!g.w_inflight && g.wq_head) {
    wjob_t *j = g.wq_head;
    g.wq_head = j->next;
    if (!g.wq_head) g.wq_tail = NULL;
    j->next = NULL;
    int rc = g.st ? souk_store_tx_async(g.st, write_fn, write_done, j) : 0;
    if (rc == 0 && g.st) {
      g.w_inflight = true;
      g.w_cur = j;
      return;
    }
    g.nwrites--;
    if (rc) write_failed(j, rc);
    wjob_answer(j, rc);
    wjob_free(j);
  }
}

static void touch(uint64_t scope, uint32_t idx) {
  if (!g.refreshing) return;
  if (g.ntouched == g.touched_cap) {
    g.touched_cap = g.touched_cap ? g.touched_cap * 2 : 16;
    g.touched = souk_reallocarray(g.touched, g.touched_cap, sizeof *g.touched);
  }
  g.touched[g.ntouched++] = (touched_t){scope, idx};
}

/* Queue the write of (scope, idx) = value (NULL: reset). */
static void write_queue(const reg_t *r, uint64_t scope, uint32_t idx, const char *value,
                        uint64_t by, int64_t at, const val_t *prev) {
  wjob_t *j = souk_calloc(1, sizeof *j);
  j->st = g.st;
  j->gen = g.gen;
  j->scope = scope;
  j->idx = idx;
  snprintf(j->key, sizeof j->key, "%s", r->s->key);
  j->value = value ? souk_strdup(value) : NULL;
  j->by = by;
  j->at = at;
  if (prev) {
    j->had = true;
    j->prev = souk_strdup(prev->text);
    j->prev_by = prev->by;
    j->prev_at = prev->at;
  }
  if (g.wq_tail)
    g.wq_tail->next = j;
  else
    g.wq_head = j;
  g.wq_tail = j;
  g.nwrites++;
  touch(scope, idx);
  write_next();
}

size_t souk__settings_writes_pending(void) { return g.nwrites; }

static void later_cb(uv_timer_t *t) {
  waiter_t *w = g.later;
  g.later = NULL;
  /* Oldest first. */
  waiter_t *rev = NULL;
  while (w) {
    waiter_t *nx = w->next;
    w->next = rev;
    rev = w;
    w = nx;
  }
  while (rev) {
    waiter_t *nx = rev->next;
    rev->done(rev->ud, rev->status);
    souk_free(rev);
    rev = nx;
  }
}

int souk_setting_flush(uint64_t scope_id, const char *key, souk_setting_done_cb done, void *ud) {
  uint32_t idx;
  if (!reg_find(key, &idx) || !done) return SOUK_ENOTFOUND;
  if (!g.running) return SOUK_ESTOPPED;
  /* The last write of this value: the queue's, else the one in flight. */
  wjob_t *last = g.w_cur && g.w_cur->scope == scope_id && g.w_cur->idx == idx ? g.w_cur : NULL;
  for (wjob_t *j = g.wq_head; j; j = j->next)
    if (j->scope == scope_id && j->idx == idx) last = j;
  if (last) {
    last->waiters = souk_reallocarray(last->waiters, last->nwaiters + 1, sizeof *last->waiters);
    last->waiters[last->nwaiters++] = (waiter_t){.done = done, .ud = ud};
    return 0;
  }
  waiter_t *w = souk_calloc(1, sizeof *w);
  w->done = done;
  w->ud = ud;
  w->next = g.later;
  g.later = w;
  if (!g.later_timer) {
    g.later_timer = souk_malloc(sizeof *g.later_timer);
    uv_timer_init(souk_loop(), g.later_timer);
  }
  uv_timer_start(g.later_timer, later_cb, 0, 0);
  return 0;
}

int souk_setting_set(uint64_t scope_id, const char *key, const char *text, uint64_t by_user,
                     char *err, size_t errcap) {
  if (err && errcap) err[0] = '\0';
  uint32_t idx;
  reg_t *r = reg_find(key, &idx);
  if (!r) {
    if (err && errcap) snprintf(err, errcap, "there is no setting called %s", key ? key : "");
    return SOUK_ENOTFOUND;
  }
  if (!g.running) return SOUK_ESTOPPED;
  if (!scope_id) {
    if (err && errcap) snprintf(err, errcap, "%s is set per %s", r->s->label, scope_name(r));
    return SOUK_EINVAL;
  }
  parsed_t p;
  souk_buf_t e;
  souk_buf_init(&e);
  if (!parse_value(r->s, text ? text : "", &p, &e)) {
    if (err && errcap) snprintf(err, errcap, "%s", e.data);
    souk_buf_free(&e);
    return SOUK_EINVAL;
  }
  souk_buf_free(&e);
  val_t *v = val_find(scope_id, idx);
  const char *old = v ? v->text : r->def_text;
  if (strcmp(old, p.text) == 0 && v) {
    souk_free(p.text);
    return 0;
  }
  int64_t at = unix_ms();
  SOUK_INFO(COMP, "%s %" PRIu64 ": %s = \"%s\" (was \"%s\"%s) by user %" PRIu64, scope_name(r),
            scope_id, key, p.text, old, v ? "" : ", the default", by_user);
  val_t prev = v ? *v : (val_t){0};
  if (v) prev.text = souk_strdup(v->text);
  char *canon = souk_strdup(p.text);
  val_store(scope_id, idx, &p, by_user, at);
  write_queue(r, scope_id, idx, canon, by_user, at, v ? &prev : NULL);
  souk_free(canon);
  souk_free(prev.text);
  notify(scope_id, idx);
  return 0;
}

int souk_setting_reset(uint64_t scope_id, const char *key, uint64_t by_user) {
  uint32_t idx;
  reg_t *r = reg_find(key, &idx);
  if (!r) return SOUK_ENOTFOUND;
  if (!g.running) return SOUK_ESTOPPED;
  val_t *v = scope_id ? val_find(scope_id, idx) : NULL;
  if (!v) return 0;
  SOUK_INFO(COMP, "%s %" PRIu64 ": %s reset to the default \"%s\" (was \"%s\") by user %" PRIu64,
            scope_name(r), scope_id, key, r->def_text, v->text, by_user);
  val_t prev = *v;
  prev.text = souk_strdup(v->text);
  val_remove(v);
  write_queue(r, scope_id, idx, NULL, by_user, unix_ms(), &prev);
  souk_free(prev.text);
  notify(scope_id, idx);
  return 0;
}

void souk__settings_set_publish(void (*fn)(uint64_t scope_id, const char *key, void *ud),
                                void *ud) {
  g.publish = fn;
  g.publish_ud = ud;
}

/* ---- reading the store --------------------------------------------------------- */

static void rows_free(rows_t *rs) {
  for (size_t i = 0; i < rs->n; i++) {
    souk_free(rs->v[i].key);
    souk_free(rs->v[i].value);
  }
  souk_free(rs->v);
  souk_free(rs);
}

static int read_fn(souk_db_t *db, void *ud) {
  rows_t *rs = ud;
  /* A retried transaction starts over. */
  for (size_t i = 0; i < rs->n; i++) {
    souk_free(rs->v[i].key);
    souk_free(rs->v[i].value);
  }
  rs->n = 0;
  souk_stmt_t *s;
  int rc;
  if (rs->key[0]) {
    rc = souk_db_prepare(db,
                         "SELECT scope_id, key, value, set_by, updated_at FROM settings "
                         "WHERE scope_id = ? AND key = ?",
                         &s);
    if (rc) return rc;
    souk_stmt_bind_int64(s, 1, (int64_t)rs->scope);
    souk_stmt_bind_text(s, 2, rs->key, SIZE_MAX);
  } else if (rs->since == INT64_MIN) {
    rc = souk_db_prepare(db,
                         "SELECT scope_id, key, value, set_by, updated_at FROM settings "
                         "WHERE value IS NOT NULL",
                         &s);
    if (rc) return rc;
  } else {
    rc = souk_db_prepare(db,
                         "SELECT scope_id, key, value, set_by, updated_at FROM settings "
                         "WHERE updated_at > ? ORDER BY updated_at",
                         &s);
    if (rc) return rc;
    souk_stmt_bind_int64(s, 1, rs->since);
  }
  size_t cap = rs->n;
  while ((rc = souk_stmt_step(s)) == 1) {
    if (rs->n == cap) {
      cap = cap ? cap * 2 : 16;
      rs->v = souk_reallocarray(rs->v, cap, sizeof *rs->v);
    }
    row_t *r = &rs->v[rs->n++];
    r->scope = (uint64_t)souk_stmt_column_int64(s, 0);
    const char *k = souk_stmt_column_text(s, 1, NULL);
    const char *v = souk_stmt_column_text(s, 2, NULL);
    r->key = souk_strdup(k ? k : "");
    r->value = v ? souk_strdup(v) : NULL;
    r->by = (uint64_t)souk_stmt_column_int64(s, 3);
    r->at = souk_stmt_column_int64(s, 4);
  }
  souk_stmt_finalize(s);
  return rc < 0 ? rc : 0;
}

static bool was_touched(uint64_t scope, uint32_t idx) {
  for (size_t i = 0; i < g.ntouched; i++)
    if (g.touched[i].scope == scope && g.touched[i].idx == idx) return true;
  return queued_for(scope, idx);
}

/* Apply rows read from the store; changes made here since the read began
 * are newer and win.  Returns how many values changed. */
static size_t apply_rows(const rows_t *rs, bool check_touched) {
  size_t changed = 0;
  souk_buf_t e;
  souk_buf_init(&e);
  for (size_t i = 0; i < rs->n; i++) {
    const row_t *row = &rs->v[i];
    uint32_t idx;
    reg_t *r = reg_find(row->key, &idx);
    if (!r || !row->scope) continue; /* a setting no module declares any more */
    if (check_touched && was_touched(row->scope, idx)) continue;
    val_t *v = val_find(row->scope, idx);
    if (!row->value) {
      if (!v) continue;
      val_remove(v);
    } else {
      /* The row is the last committed state, whatever its clock said. */
      if (v && strcmp(v->text, row->value) == 0) continue;
      parsed_t p;
      souk_buf_reset(&e);
      if (!parse_value(r->s, row->value, &p, &e)) {
        SOUK_WARN(COMP, "%s %" PRIu64 ": stored %s = \"%s\" is no longer valid (%s); ignored",
                  scope_name(r), row->scope, row->key, row->value, e.data);
        continue;
      }
      val_store(row->scope, idx, &p, row->by, row->at);
    }
    changed++;
    notify(row->scope, idx);
  }
  souk_buf_free(&e);
  return changed;
}

static void refresh_done(void *ud, int status) {
  rows_t *rs = ud;
  if (rs->gen == g.gen && g.running) {
    if (status == 0) {
      size_t n = apply_rows(rs, true);
      if (n) SOUK_INFO(COMP, "%zu setting(s) changed by other processes", n);
      if (!rs->key[0]) g.last_refresh = rs->started;
    } else {
      SOUK_WARN(COMP, "cannot re-read settings: %s", souk_strerror(status));
    }
    if (!rs->key[0]) {
      g.refreshing = false;
      g.ntouched = 0;
    }
  }
  if (rs->done) rs->done(rs->ud, status);
  rows_free(rs);
}

int souk__settings_refresh(void (*done)(void *ud, int status), void *ud) {
  if (!g.running) return SOUK_ESTOPPED;
  if (!g.st) return SOUK_ENOTSUP;
  if (g.refreshing) return SOUK_EBUSY;
  rows_t *rs = souk_calloc(1, sizeof *rs);
  rs->gen = g.gen;
  /* From the start of the last re-read that worked, minus the overlap. */
  rs->started = unix_ms();
  rs->since = (g.last_refresh ? g.last_refresh : rs->started) - REFRESH_OVERLAP_MS;
  rs->done = done;
  rs->ud = ud;
  g.refreshing = true;
  g.ntouched = 0;
  int rc = souk_store_read_async(g.st, read_fn, refresh_done, rs);
  if (rc) {
    g.refreshing = false;
    souk_free(rs);
  }
  return rc;
}

int souk__settings_invalidate(uint64_t scope_id, const char *key) {
  if (!g.running) return SOUK_ESTOPPED;
  if (!reg_find(key, NULL)) return SOUK_ENOTFOUND;
  if (!g.st) return 0;
  rows_t *rs = souk_calloc(1, sizeof *rs);
  rs->gen = g.gen;
  rs->scope = scope_id;
  snprintf(rs->key, sizeof rs->key, "%s", key);
  int rc = souk_store_read_async(g.st, read_fn, refresh_done, rs);
  if (rc) souk_free(rs);
  return rc;
}

static void task_done(void *ud, int status) { souk_task_done(ud, status); }

static void refresh_task(souk_task_ctx_t *ctx) {
  int rc = souk__settings_refresh(task_done, ctx);
  if (rc) souk_task_done(ctx, rc == SOUK_ENOTSUP || rc == SOUK_EBUSY ? 0 : rc);
}

static const souk_task_t g_tasks[] = {
    {.name = "settings.refresh",
     .period_ms = 60000,
     .jitter_ms = 5000,
     .budget_ms = 5000,
     .handler = refresh_task},
    {0},
};

const souk_task_t *souk__settings_tasks(void) { return g_tasks; }

/* ---- metrics ------------------------------------------------------------------- */

static void collect(void *ud) {
  souk_gauge_set_named("souk_settings_values", NULL, (double)g.n);
  souk_gauge_set_named("souk_settings_writes_pending", NULL, (double)g.nwrites);
}

static void metrics_register(void) {
  souk_gauge_new("souk_settings_values",
                 "Per-guild and per-user setting values held in memory (set ones only).", NULL);
  souk_gauge_new("souk_settings_writes_pending",
                 "Setting changes queued for, or being written to, the store.", NULL);
  souk_metrics_add_collector(collect, NULL);
}

/* ---- start and stop ------------------------------------------------------------ */

int souk__settings_start(souk_store_t *st, const souk_conf_section_t *secs, size_t nsecs) {
  if (g.running) return SOUK_EBUSY;
  g.secs = secs;
  g.nsecs = nsecs;
  int rc = resolve_config_defaults();
  if (rc) return rc;
  g.st = st;
  g.gen++;
  g.last_refresh = 0;
  if (st) {
    rows_t *rs = souk_calloc(1, sizeof *rs);
    rs->since = INT64_MIN;
    int64_t t0 = unix_ms();
    rc = souk_store_read(st, read_fn, rs);
    if (rc) {
      SOUK_ERROR(COMP, "cannot load settings: %s", souk_strerror(rc));
      rows_free(rs);
      return rc;
    }
    apply_rows(rs, false);
    g.last_refresh = t0;
    if (g.n) SOUK_INFO(COMP, "%zu setting value(s) loaded", g.n);
    rows_free(rs);
  }
  metrics_register();
  g.running = true;
  return 0;
}

void souk__settings_stop(void) {
  if (!g.running) return;
  /* Whoever waits for a write hears now, while they are still there. */
  if (g.w_cur) wjob_answer(g.w_cur, SOUK_ESTOPPED);
  for (wjob_t *j = g.wq_head; j; j = j->next)
    wjob_answer(j, SOUK_ESTOPPED);
  later_cb(g.later_timer);
  souk_timer_free(&g.later_timer);
  /* Queued writes still go out, in order, after the one in flight: a
   * chain of transactions that needs nothing of the registry. */
  wjob_t *rest = g.wq_head;
  g.wq_head = g.wq_tail = NULL;
  if (g.w_cur)
    g.w_cur->next = rest;
  else
    detached_start(rest);
  g.w_inflight = false;
  g.w_cur = NULL;
  g.nwrites = 0;
  g.running = false;
  souk_metrics_remove_collector(collect, NULL);
  g.refreshing = false;
  g.gen++;
  tab_free();
  souk_free(g.touched);
  g.touched = NULL;
  g.ntouched = g.touched_cap = 0;
  for (size_t i = 0; i < g.nregs; i++)
    g.regs[i].nw = 0;
  g.st = NULL;
  g.secs = NULL;
  g.nsecs = 0;
}
