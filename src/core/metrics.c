/* The metrics registry and the Prometheus text format 0.0.4 writer.
 *
 * Families are kept in an array sorted by name, so rendering needs no sort
 * and the output order is stable across scrapes.  Each family indexes its
 * series with an open-addressing hash table over the label values, so a
 * collector that rebuilds a few thousand route series per scrape stays
 * linear.  Everything here belongs to the loop thread (see metrics.h). */
#include "core/metrics.h"
#include "souk/metrics.h"

#include "souk/alloc.h"
#include "souk/err.h"

#include <math.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct souk_series {
  souk_metric_t *fam;
  char **values; /* nlabels copies */
  uint32_t hash;
  double v;            /* counter or gauge value */
  _Atomic uint64_t av; /* counter part added from other threads */
  double sum;          /* histogram */
  uint64_t count;      /* histogram observations */
  uint64_t *buckets;   /* histogram: nbounds + 1, not cumulative */
};

struct souk_metric {
  char *name;
  char *help;
  souk_metric_type_t type;
  size_t nlabels;
  char *labels[SOUK_METRIC_MAX_LABELS];
  double *bounds;
  size_t nbounds;
  souk_series_t **series; /* creation order */
  size_t nseries, capseries;
  uint32_t *index; /* slots hold series position + 1; 0 is empty */
  size_t nindex;   /* power of two, or 0 */
  souk_series_t *overflow;
};

typedef struct collector {
  souk_metrics_collect_cb fn;
  void *ud;
} collector_t;

static struct {
  souk_metric_t **fams; /* sorted by name */
  size_t nfams, capfams;
  collector_t *colls;
  size_t ncolls, capcolls;
} reg;

const double souk_metric_latency_bounds[] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                                             0.5,   1,    2.5,   5,    10};
const size_t souk_metric_latency_nbounds =
    sizeof souk_metric_latency_bounds / sizeof souk_metric_latency_bounds[0];

/* ---- names ------------------------------------------------------------- */

static bool name_ok(const char *s, bool colon) {
  if (!s || !*s) return false;
  for (size_t i = 0; s[i]; i++) {
    char c = s[i];
    bool alpha =
        (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || (colon && c == ':');
    if (!alpha && !(i > 0 && c >= '0' && c <= '9')) return false;
  }
  return true;
}

/* Binary search: the family's position, or where it would go. */
static size_t fam_pos(const char *name, bool *found) {
  size_t lo = 0, hi = reg.nfams;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    int c = strcmp(reg.fams[mid]->name, name);
    if (c == 0) {
      *found = true;
      return mid;
    }
    if (c < 0)
      lo = mid + 1;
    else
      hi = mid;
  }
  *found = false;
  return lo;
}

souk_metric_t *souk_metric_find(const char *name) {
  bool found;
  size_t i = fam_pos(name, &found);
  return found ? reg.fams[i] : NULL;
}

static const char *const hist_suffixes[] = {"_bucket", "_sum", "_count"};

/* A histogram renders three sample names; no other family may use them,
 * or the output would hold one name under two TYPE lines. */
static bool names_clash(const char *name, souk_metric_type_t type) {
  size_t n = strlen(name);
  for (size_t k = 0; k < 3; k++) {
    size_t sl = strlen(hist_suffixes[k]);
    if (n > sl && !strcmp(name + n - sl, hist_suffixes[k])) {
      char *base = souk_strndup(name, n - sl);
      souk_metric_t *h = souk_metric_find(base);
      souk_free(base);
      if (h && h->type == SOUK_METRIC_HISTOGRAM) return true;
    }
    if (type == SOUK_METRIC_HISTOGRAM) {
      souk_buf_t b = {0};
      souk_buf_printf(&b, "%s%s", name, hist_suffixes[k]);
      bool clash = souk_metric_find(b.data) != NULL;
      souk_buf_free(&b);
      if (clash) return true;
    }
  }
  return false;
}

/* Split "a,b" into label names; returns the count. */
static size_t labels_split(const char *labels, char **out) {
  size_t n = 0;
  if (!labels || !*labels) return 0;
  const char *p = labels;
  for (;;) {
    const char *e = strchr(p, ',');
    size_t len = e ? (size_t)(e - p) : strlen(p);
    while (len && *p == ' ')
      p++, len--;
    while (len && p[len - 1] == ' ')
      len--;
    SOUK_ASSERT(n < SOUK_METRIC_MAX_LABELS);
    out[n++] = souk_strndup(p, len);
    if (!e) break;
    p = e + 1;
  }
  return n;
}

static souk_metric_t *family_new(const char *name, const char *help, souk_metric_type_t type,
                                 const char *labels, const double *bounds, size_t nbounds) {
  SOUK_ASSERT(name_ok(name, true));
  char *ln[SOUK_METRIC_MAX_LABELS] = {0};
  size_t nl = labels_split(labels, ln);
  for (size_t i = 0; i < nl; i++) {
    SOUK_ASSERT(name_ok(ln[i], false));
    SOUK_ASSERT(strncmp(ln[i], "__", 2) != 0);
    SOUK_ASSERT(type != SOUK_METRIC_HISTOGRAM || strcmp(ln[i], "le") != 0);
    for (size_t j = 0; j < i; j++)
      SOUK_ASSERT(strcmp(ln[i], ln[j]) != 0);
  }
  if (type == SOUK_METRIC_HISTOGRAM) {
    SOUK_ASSERT(nbounds <= SOUK_METRIC_MAX_BUCKETS);
    for (size_t i = 0; i < nbounds; i++) {
      SOUK_ASSERT(isfinite(bounds[i]));
      SOUK_ASSERT(i == 0 || bounds[i] > bounds[i - 1]);
    }
  }

  bool found;
  size_t pos = fam_pos(name, &found);
  if (found) {
    /* Same registration again (a module re-initialised): hand back the
     * existing family, provided it really is the same. */
    souk_metric_t *m = reg.fams[pos];
    SOUK_ASSERT(m->type == type && m->nlabels == nl);
    for (size_t i = 0; i < nl; i++) {
      SOUK_ASSERT(!strcmp(m->labels[i], ln[i]));
      souk_free(ln[i]);
    }
    if (type == SOUK_METRIC_HISTOGRAM) {
      SOUK_ASSERT(m->nbounds == nbounds);
      for (size_t i = 0; i < nbounds; i++)
        SOUK_ASSERT(m->bounds[i] == bounds[i]);
    }
    return m;
  }
  SOUK_ASSERT(!names_clash(name, type));

  souk_metric_t *m = souk_calloc(1, sizeof *m);
  m->name = souk_strdup(name);
  m->help = souk_strdup(help ? help : "");
  m->type = type;
  m->nlabels = nl;
  memcpy(m->labels, ln, sizeof ln);
  if (type == SOUK_METRIC_HISTOGRAM && nbounds) {
    m->bounds = souk_calloc(nbounds, sizeof *m->bounds);
    memcpy(m->bounds, bounds, nbounds * sizeof *bounds);
    m->nbounds = nbounds;
  }
  if (reg.nfams == reg.capfams) {
    reg.capfams = reg.capfams ? reg.capfams * 2 : 32;
    reg.fams = souk_reallocarray(reg.fams, reg.capfams, sizeof *reg.fams);
  }
  memmove(reg.fams + pos + 1, reg.fams + pos, (reg.nfams - pos) * sizeof *reg.fams);
  reg.fams[pos] = m;
  reg.nfams++;
  return m;
}

souk_metric_t *souk_counter_new(const char *name, const char *help, const char *labels) {
  return family_new(name, help, SOUK_METRIC_COUNTER, labels, NULL, 0);
}

souk_metric_t *souk_gauge_new(const char *name, const char *help, const char *labels) {
  return family_new(name, help, SOUK_METRIC_GAUGE, labels, NULL, 0);
}

souk_metric_t *souk_histogram_new(const char *name, const char *help, const char *labels,
                                  const double *bounds, size_t n) {
  return family_new(name, help, SOUK_METRIC_HISTOGRAM, labels, bounds, n);
}

/* ---- series ------------------------------------------------------------ */

static uint32_t values_hash(size_t n, const char *const *values) {
  uint32_t h = 2166136261u;
  for (size_t i = 0; i < n; i++) {
    for (const unsigned char *p = (const unsigned char *)(values[i] ? values[i] : ""); *p; p++)
      h = (h ^ *p) * 16777619u;
    h = (h ^ 0xffu) * 16777619u; /* separator: ("ab","") differs from ("a","b") */
  }
  return h;
}

static bool values_eq(const souk_series_t *s, size_t n, const char *const *values) {
  for (size_t i = 0; i < n; i++)
    if (strcmp(s->values[i], values[i] ? values[i] : "")) return false;
  return true;
}

static souk_series_t *series_alloc(souk_metric_t *m, const char *const *values, uint32_t h) {
  souk_series_t *s = souk_calloc(1, sizeof *s);
  s->fam = m;
  s->hash = h;
  if (m->nlabels) {
    s->values = souk_calloc(m->nlabels, sizeof *s->values);
    for (size_t i = 0; i < m->nlabels; i++)
      s->values[i] = souk_strdup(values && values[i] ? values[i] : "");
  }
  if (m->type == SOUK_METRIC_HISTOGRAM) s->buckets = souk_calloc(m->nbounds + 1, sizeof(uint64_t));
  atomic_init(&s->av, 0);
  return s;
}

static void series_free(souk_series_t *s, size_t nlabels) {
  if (!s) return;
  for (size_t i = 0; i < nlabels && s->values; i++)
    souk_free(s->values[i]);
  souk_free(s->values);
  souk_free(s->buckets);
  souk_free(s);
}

static void index_insert(souk_metric_t *m, uint32_t h, uint32_t pos1) {
  size_t mask = m->nindex - 1;
  for (size_t i = h & mask;; i = (i + 1) & mask) {
    if (!m->index[i]) {
      m->index[i] = pos1;
      return;
    }
  }
}

static void index_grow(souk_metric_t *m) {
  souk_free(m->index);
  m->nindex = m->nindex ? m->nindex * 2 : 16;
  m->index = souk_calloc(m->nindex, sizeof *m->index);
  for (size_t i = 0; i < m->nseries; i++)
    index_insert(m, m->series[i]->hash, (uint32_t)(i + 1));
}

souk_series_t *souk_metric_series(souk_metric_t *m, const char *const *values) {
  SOUK_ASSERT(m);
  SOUK_ASSERT(m->nlabels == 0 || values);
  uint32_t h = values_hash(m->nlabels, values);
  if (m->nindex) {
    size_t mask = m->nindex - 1;
    for (size_t i = h & mask; m->index[i]; i = (i + 1) & mask) {
      souk_series_t *s = m->series[m->index[i] - 1];
      if (s->hash == h && values_eq(s, m->nlabels, values)) return s;
    }
  }
  if (m->nseries >= SOUK_METRIC_MAX_SERIES) {
    if (!m->overflow) m->overflow = series_alloc(m, NULL, 0);
    souk_metric_t *d =
        souk_counter_new("souk_metrics_dropped_series_total",
                         "Label sets refused because a family had too many series.", "family");
    if (d != m) souk_counter_inc(souk_metric_series(d, SOUK_LV(m->name)));
    return m->overflow;
  }
  if ((m->nseries + 1) * 2 > m->nindex) index_grow(m);
  souk_series_t *s = series_alloc(m, values, h);
  if (m->nseries == m->capseries) {
    m->capseries = m->capseries ? m->capseries * 2 : 8;
    m->series = souk_reallocarray(m->series, m->capseries, sizeof *m->series);
  }
  m->series[m->nseries++] = s;
  index_insert(m, h, (uint32_t)m->nseries);
  return s;
}

void souk_metric_clear(souk_metric_t *m) {
  for (size_t i = 0; i < m->nseries; i++)
    series_free(m->series[i], m->nlabels);
  m->nseries = 0;
  if (m->index) memset(m->index, 0, m->nindex * sizeof *m->index);
}

void souk_counter_add(souk_series_t *s, double v) {
  if (v > 0) s->v += v;
}

void souk_counter_inc(souk_series_t *s) { s->v += 1; }

void souk_counter_add_atomic(souk_series_t *s, uint64_t n) {
  atomic_fetch_add_explicit(&s->av, n, memory_order_relaxed);
}

void souk_counter_set(souk_series_t *s, double v) {
  s->v = v;
  atomic_store_explicit(&s->av, 0, memory_order_relaxed);
}

void souk_gauge_set(souk_series_t *s, double v) { s->v = v; }

void souk_counter_set_named(const char *name, const char *const *lv, double v) {
  souk_metric_t *m = souk_metric_find(name);
  if (m) souk_counter_set(souk_metric_series(m, lv), v);
}

void souk_gauge_set_named(const char *name, const char *const *lv, double v) {
  souk_metric_t *m = souk_metric_find(name);
  if (m) souk_gauge_set(souk_metric_series(m, lv), v);
}

void souk_gauge_add(souk_series_t *s, double v) { s->v += v; }

void souk_histogram_observe(souk_series_t *s, double v) {
  souk_metric_t *m = s->fam;
  SOUK_ASSERT(m->type == SOUK_METRIC_HISTOGRAM);
  size_t i = 0;
  /* NaN lands in +Inf only, as in the Go client. */
  while (i < m->nbounds && !(v <= m->bounds[i]))
    i++;
  s->buckets[i]++;
  s->count++;
  s->sum += v;
}

double souk_series_value(const souk_series_t *s) {
  if (s->fam->type == SOUK_METRIC_HISTOGRAM) return (double)s->count;
  return s->v + (double)atomic_load_explicit(&s->av, memory_order_relaxed);
}

/* ---- collectors -------------------------------------------------------- */

int souk_metrics_add_collector(souk_metrics_collect_cb fn, void *ud) {
  SOUK_ASSERT(fn);
  for (size_t i = 0; i < reg.ncolls; i++)
    if (reg.colls[i].fn == fn && reg.colls[i].ud == ud) return SOUK_EEXIST;
  if (reg.ncolls == reg.capcolls) {
    reg.capcolls = reg.capcolls ? reg.capcolls * 2 : 8;
    reg.colls = souk_reallocarray(reg.colls, reg.capcolls, sizeof *reg.colls);
  }
  reg.colls[reg.ncolls++] = (collector_t){fn, ud};
  return 0;
}

int souk_metrics_remove_collector(souk_metrics_collect_cb fn, void *ud) {
  for (size_t i = 0; i < reg.ncolls; i++) {
    if (reg.colls[i].fn == fn && reg.colls[i].ud == ud) {
      memmove(reg.colls + i, reg.colls + i + 1, (reg.ncolls - i - 1) * sizeof *reg.colls);
      reg.ncolls--;
      return 0;
    }
  }
  return SOUK_ENOTFOUND;
}

/* ---- rendering --------------------------------------------------------- */

void souk__metrics_fmt_double(souk_buf_t *out, double d) {
  if (isnan(d)) {
    souk_buf_puts(out, "NaN");
  } else if (isinf(d)) {
    souk_buf_puts(out, d > 0 ? "+Inf" : "-Inf");
  } else if (d == 0) {
    souk_buf_putc(out, '0'); /* also for -0 */
  } else if (d == floor(d) && fabs(d) < 1e15) {
    souk_buf_printf(out, "%.0f", d);
  } else {
    /* The shortest of %.15g / %.17g that reads back as the same double. */
    char tmp[40];
    snprintf(tmp, sizeof tmp, "%.15g", d);
    if (strtod(tmp, NULL) != d) snprintf(tmp, sizeof tmp, "%.17g", d);
    souk_buf_puts(out, tmp);
  }
}

static void put_help(souk_buf_t *out, const char *s) {
  for (; *s; s++) {
    if (*s == '\\')
      souk_buf_puts(out, "\\\\");
    else if (*s == '\n')
      souk_buf_puts(out, "\\n");
    else
      souk_buf_putc(out, *s);
  }
}

static void put_label_value(souk_buf_t *out, const char *s) {
  for (; *s; s++) {
    if (*s == '\\')
      souk_buf_puts(out, "\\\\");
    else if (*s == '\n')
      souk_buf_puts(out, "\\n");
    else if (*s == '"')
      souk_buf_puts(out, "\\\"");
    else
      souk_buf_putc(out, *s);
  }
}

/* name{labels[,le="x"]} value\n */
static void put_sample(souk_buf_t *out, const souk_metric_t *m, const souk_series_t *s,
                       const char *suffix, const char *le, double v) {
  souk_buf_puts(out, m->name);
  if (suffix) souk_buf_puts(out, suffix);
  if (m->nlabels || le) {
    souk_buf_putc(out, '{');
    for (size_t i = 0; i < m->nlabels; i++) {
      if (i) souk_buf_putc(out, ',');
      souk_buf_printf(out, "%s=\"", m->labels[i]);
      put_label_value(out, s->values[i]);
      souk_buf_putc(out, '"');
    }
    if (le) souk_buf_printf(out, "%sle=\"%s\"", m->nlabels ? "," : "", le);
    souk_buf_putc(out, '}');
  }
  souk_buf_putc(out, ' ');
  souk__metrics_fmt_double(out, v);
  souk_buf_putc(out, '\n');
}

static const char *type_name(souk_metric_type_t t) {
  switch (t) {
  case SOUK_METRIC_COUNTER:
    return "counter";
  case SOUK_METRIC_GAUGE:
    return "gauge";
  case SOUK_METRIC_HISTOGRAM:
    return "histogram";
  }
  return "untyped";
}

static void render_family(souk_buf_t *out, const souk_metric_t *m) {
  souk_buf_printf(out, "# HELP %s ", m->name);
  put_help(out, m->help);
  souk_buf_printf(out, "\n# TYPE %s %s\n", m->name, type_name(m->type));
  for (size_t i = 0; i < m->nseries; i++) {
    const souk_series_t *s = m->series[i];
    if (m->type != SOUK_METRIC_HISTOGRAM) {
      put_sample(out, m, s, NULL, NULL, souk_series_value(s));
      continue;
    }
    uint64_t cum = 0;
    for (size_t b = 0; b <= m->nbounds; b++) {
      cum += s->buckets[b];
      souk_buf_t le = {0};
      if (b < m->nbounds)
        souk__metrics_fmt_double(&le, m->bounds[b]);
      else
        souk_buf_puts(&le, "+Inf");
      put_sample(out, m, s, "_bucket", le.data, (double)cum);
      souk_buf_free(&le);
    }
    put_sample(out, m, s, "_sum", NULL, s->sum);
    put_sample(out, m, s, "_count", NULL, (double)s->count);
  }
}

void souk__metrics_render(souk_buf_t *out) {
  /* A collector may register families or collectors; index, don't cache. */
  for (size_t i = 0; i < reg.ncolls; i++)
    reg.colls[i].fn(reg.colls[i].ud);
  for (size_t i = 0; i < reg.nfams; i++)
    if (reg.fams[i]->nseries) render_family(out, reg.fams[i]);
}

void souk__metrics_shutdown(void) {
  for (size_t i = 0; i < reg.nfams; i++) {
    souk_metric_t *m = reg.fams[i];
    souk_metric_clear(m);
    series_free(m->overflow, m->nlabels);
    for (size_t j = 0; j < m->nlabels; j++)
      souk_free(m->labels[j]);
    souk_free(m->series);
    souk_free(m->index);
    souk_free(m->bounds);
    souk_free(m->name);
    souk_free(m->help);
    souk_free(m);
  }
  souk_free(reg.fams);
  souk_free(reg.colls);
  memset(&reg, 0, sizeof reg);
}
