/* The scanner's score and top-list changes (score.h says the formula). */
#include "score.h"

#include "souk/alloc.h"
#include "souk/err.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *scanner_factor_name(int f) {
  static const char *const names[SCANNER_NFACTORS] = {"turnover", "move", "funding",
                                                      "open interest"};
  return f >= 0 && f < SCANNER_NFACTORS ? names[f] : "?";
}

double scanner_oi_value(const scanner_contract_t *c) {
  if (c->oi_value > 0) return c->oi_value;
  return (double)c->open_interest * ((double)c->multiplier_e9 / 1e9) *
         ((double)c->mark_micro / 1e6);
}

static void factors(const scanner_contract_t *c, double raw[SCANNER_NFACTORS]) {
  raw[SCANNER_F_TURNOVER] = log10(1.0 + (double)c->turnover);
  raw[SCANNER_F_MOVE] = fabs((double)c->change_ppm / 1e6);
  raw[SCANNER_F_FUNDING] = fabs((double)c->funding_e8 / 1e8);
  double oi = scanner_oi_value(c);
  raw[SCANNER_F_OI] = log10(1.0 + (oi > 0 ? oi : 0));
}

static int ranked_cmp(const void *a, const void *b) {
  const scanner_ranked_t *x = a, *y = b;
  if (x->score_e4 != y->score_e4) return x->score_e4 > y->score_e4 ? -1 : 1;
  if (x->c.turnover != y->c.turnover) return x->c.turnover > y->c.turnover ? -1 : 1;
  return strcmp(x->c.symbol, y->c.symbol);
}

int scanner_rank(const scanner_contract_t *in, size_t n, const scanner_weights_t *w,
                 scanner_ranked_t *out) {
  double wsum = 0;
  for (int f = 0; f < SCANNER_NFACTORS; f++) {
    if (!isfinite(w->w[f]) || w->w[f] < 0) return SOUK_EINVAL;
    wsum += w->w[f];
  }
  if (!(wsum > 0)) return SOUK_EINVAL;
  double lo[SCANNER_NFACTORS], hi[SCANNER_NFACTORS];
  for (size_t i = 0; i < n; i++) {
    memset(&out[i], 0, sizeof out[i]);
    out[i].c = in[i];
    factors(&in[i], out[i].raw);
    for (int f = 0; f < SCANNER_NFACTORS; f++) {
      if (i == 0 || out[i].raw[f] < lo[f]) lo[f] = out[i].raw[f];
      if (i == 0 || out[i].raw[f] > hi[f]) hi[f] = out[i].raw[f];
    }
  }
  for (size_t i = 0; i < n; i++) {
    scanner_ranked_t *r = &out[i];
    r->score = 0;
    for (int f = 0; f < SCANNER_NFACTORS; f++) {
      double span = hi[f] - lo[f];
      r->norm[f] = span > 0 ? (r->raw[f] - lo[f]) / span : 0.0;
      r->points[f] = 100.0 * w->w[f] * r->norm[f] / wsum;
      r->score += r->points[f];
    }
    r->score_e4 = llround(r->score * 10000.0);
  }
  qsort(out, n, sizeof *out, ranked_cmp);
  for (size_t i = 0; i < n; i++)
    out[i].rank = (uint32_t)(i + 1);
  return 0;
}

void scanner_explain(const scanner_ranked_t *r, char *out, size_t cap) {
  snprintf(out, cap, "turnover %.2f + move %.2f + funding %.2f + open interest %.2f = %.2f",
           r->points[SCANNER_F_TURNOVER], r->points[SCANNER_F_MOVE], r->points[SCANNER_F_FUNDING],
           r->points[SCANNER_F_OI], (double)r->score_e4 / 10000.0);
}

/* ---- top-list changes --------------------------------------------------- */

static uint32_t rank_of(const scanner_top_t *t, const char *sym) {
  for (size_t i = 0; i < t->n; i++)
    if (strcmp(t->sym[i], sym) == 0) return (uint32_t)(i + 1);
  return 0;
}

size_t scanner_top_diff(const scanner_top_t *old, const scanner_top_t *cur, scanner_change_t *out,
                        size_t cap) {
  size_t k = 0;
  for (size_t i = 0; i < cur->n; i++) {
    uint32_t was = rank_of(old, cur->sym[i]);
    uint32_t now = (uint32_t)(i + 1);
    if (was == now) continue;
    if (k < cap) {
      out[k].kind = was ? SCANNER_MOVED : SCANNER_ENTERED;
      snprintf(out[k].symbol, sizeof out[k].symbol, "%s", cur->sym[i]);
      out[k].from = was;
      out[k].to = now;
    }
    k++;
  }
  for (size_t i = 0; i < old->n; i++) {
    if (rank_of(cur, old->sym[i])) continue;
    if (k < cap) {
      out[k].kind = SCANNER_LEFT;
      snprintf(out[k].symbol, sizeof out[k].symbol, "%s", old->sym[i]);
      out[k].from = (uint32_t)(i + 1);
      out[k].to = 0;
    }
    k++;
  }
  return k < cap ? k : cap;
}

int scanner_top_encode(const scanner_top_t *t, char *out, size_t cap) {
  size_t off = 0;
  if (cap) out[0] = '\0';
  for (size_t i = 0; i < t->n; i++) {
    int n = snprintf(out + off, cap > off ? cap - off : 0, "%s%s", i ? "," : "", t->sym[i]);
    if (n < 0 || off + (size_t)n >= cap) {
      if (cap) out[0] = '\0';
      return SOUK_ETOOBIG;
    }
    off += (size_t)n;
  }
  return (int)off;
}

void scanner_top_decode(const char *s, size_t len, scanner_top_t *t) {
  t->n = 0;
  size_t cap = 1;
  for (size_t i = 0; i < len; i++)
    cap += s[i] == ',';
  t->sym = souk_calloc(cap, sizeof *t->sym);
  size_t i = 0;
  while (i < len) {
    size_t j = i;
    while (j < len && s[j] != ',')
      j++;
    size_t n = j - i;
    bool ok = n > 0 && n <= SCANNER_SYMBOL_MAX;
    for (size_t k = i; ok && k < j; k++)
      ok = (s[k] >= 'A' && s[k] <= 'Z') || (s[k] >= '0' && s[k] <= '9') || s[k] == '-' ||
           s[k] == '_';
    if (ok && t->n < cap) {
      memcpy(t->sym[t->n], s + i, n);
      t->sym[t->n][n] = '\0';
      t->n++;
    }
    i = j + 1;
  }
}
