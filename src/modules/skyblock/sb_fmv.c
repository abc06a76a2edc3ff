/* Fair market value; see sb_fmv.h. */
#include "sb_fmv.h"

#include "souk/alloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *sb_fmv_method_name(sb_fmv_method_t m) {
  switch (m) {
  case SB_FMV_SALES:
    return "sales";
  case SB_FMV_SALES_CAPPED:
    return "sales (capped by the floor)";
  case SB_FMV_LADDER:
    return "ladder";
  case SB_FMV_HOURS:
    return "hourly floors";
  default:
    return "none";
  }
}

static int cmp_i64(const void *a, const void *b) {
  int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
  return (x > y) - (x < y);
}

int64_t sb_median_sorted(const int64_t *v, size_t n) {
  if (n == 0) return 0;
  if (n % 2) return v[n / 2];
  int64_t a = v[n / 2 - 1], b = v[n / 2];
  return a / 2 + b / 2 + (a % 2 + b % 2) / 2;
}

int64_t sb_iqm_sorted(const int64_t *v, size_t n) {
  if (n == 0) return 0;
  size_t lo = n / 4, hi = n - n / 4;
  __int128 sum = 0;
  for (size_t i = lo; i < hi; i++)
    sum += v[i];
  return (int64_t)(sum / (int64_t)(hi - lo));
}

/* A sale during cleaning: kept or not, and its pair for step 1. */
typedef struct work {
  int64_t unit;
  uint64_t seller, buyer;
  uint64_t lo, hi; /* the pair, ordered */
  bool fwd;        /* seller == lo */
} work_t;

static int cmp_pair(const void *a, const void *b) {
  const work_t *x = a, *y = b;
  if (x->lo != y->lo) return x->lo < y->lo ? -1 : 1;
  if (x->hi != y->hi) return x->hi < y->hi ? -1 : 1;
  return 0;
}

static int cmp_seller(const void *a, const void *b) {
  const work_t *x = a, *y = b;
  if (x->seller != y->seller) return x->seller < y->seller ? -1 : 1;
  return (x->unit > y->unit) - (x->unit < y->unit);
}

static int cmp_buyer(const void *a, const void *b) {
  const work_t *x = a, *y = b;
  if (x->buyer != y->buyer) return x->buyer < y->buyer ? -1 : 1;
  return (x->unit > y->unit) - (x->unit < y->unit);
}

/* Keep one sale per group of equal keys (the group's median), in place;
 * groups are runs after sorting with cmp.  Returns the new count. */
static size_t one_per(work_t *w, size_t n, int (*cmp)(const void *, const void *), bool by_seller) {
  qsort(w, n, sizeof *w, cmp);
  size_t out = 0;
  for (size_t i = 0; i < n;) {
    size_t j = i + 1;
    uint64_t k = by_seller ? w[i].seller : w[i].buyer;
    while (j < n && (by_seller ? w[j].seller : w[j].buyer) == k)
      j++;
    w[out++] = w[i + (j - i - 1) / 2];
    i = j;
  }
  return out;
}

size_t sb_fmv_clean_sales(const sb_sale_t *sales, size_t nsales, int64_t *kept, sb_fmv_t *out) {
  out->sales_total = (uint32_t)nsales;
  out->dropped_pairs = out->dropped_sellers = out->dropped_buyers = out->dropped_outliers = 0;
  if (nsales == 0) return 0;
  work_t *w = souk_calloc(nsales, sizeof *w);
  size_t n = 0;
  for (size_t i = 0; i < nsales; i++) {
    const sb_sale_t *s = &sales[i];
    if (s->seller == s->buyer || s->unit <= 0) {
      out->dropped_pairs++;
      continue;
    }
    work_t *x = &w[n++];
    x->unit = s->unit;
    x->seller = s->seller;
    x->buyer = s->buyer;
    x->fwd = s->seller < s->buyer;
    x->lo = x->fwd ? s->seller : s->buyer;
    x->hi = x->fwd ? s->buyer : s->seller;
  }
  /* 1. Pairs that traded both ways. */
  qsort(w, n, sizeof *w, cmp_pair);
  size_t m = 0;
  for (size_t i = 0; i < n;) {
    size_t j = i + 1;
    bool f = w[i].fwd, b = !w[i].fwd;
    while (j < n && w[j].lo == w[i].lo && w[j].hi == w[i].hi) {
      f |= w[j].fwd;
      b |= !w[j].fwd;
      j++;
    }
    if (f && b) {
      out->dropped_pairs += (uint32_t)(j - i);
    } else {
      memmove(&w[m], &w[i], (j - i) * sizeof *w);
      m += j - i;
    }
    i = j;
  }
  n = m;
  /* 2 and 3. One price per seller, then per buyer. */
  m = one_per(w, n, cmp_seller, true);
  out->dropped_sellers = (uint32_t)(n - m);
  n = m;
  m = one_per(w, n, cmp_buyer, false);
  out->dropped_buyers = (uint32_t)(n - m);
  n = m;
  for (size_t i = 0; i < n; i++)
    kept[i] = w[i].unit;
  souk_free(w);
  qsort(kept, n, sizeof *kept, cmp_i64);
  /* 4. Outliers. */
  size_t lo = 0, hi = n;
  if (n >= 4) {
    int64_t q1 = kept[n / 4], q3 = kept[(3 * n) / 4];
    int64_t iqr = q3 - q1;
    int64_t fence_lo = q1 - iqr - iqr / 2, fence_hi = q3 + iqr + iqr / 2;
    while (lo < hi && kept[lo] < fence_lo)
      lo++;
    while (hi > lo && kept[hi - 1] > fence_hi)
      hi--;
  } else if (n > 0) {
    int64_t med = sb_median_sorted(kept, n);
    while (lo < hi && kept[lo] * 5 < med)
      lo++;
    while (hi > lo && kept[hi - 1] / 5 > med)
      hi--;
  }
  out->dropped_outliers = (uint32_t)(n - (hi - lo));
  if (lo) memmove(kept, kept + lo, (hi - lo) * sizeof *kept);
  return hi - lo;
}

static void money(char *out, size_t cap, int64_t v) {
  /* Short coin amounts for evidence: 1.25M, 830k, 950. */
  if (v >= 1000000000)
    snprintf(out, cap, "%.2fB", (double)v / 1e9);
  else if (v >= 1000000)
    snprintf(out, cap, "%.2fM", (double)v / 1e6);
  else if (v >= 10000)
    snprintf(out, cap, "%.1fk", (double)v / 1e3);
  else
    snprintf(out, cap, "%lld", (long long)v);
}

int64_t sb_fmv_compute(const sb_fmv_in_t *in, sb_fmv_t *out) {
  memset(out, 0, sizeof *out);
  unsigned min_sales = in->min_sales ? in->min_sales : 1;
  out->live = (uint32_t)in->live_total;
  out->thin = in->live_total < in->thin_wall;
  if (in->nlive) {
    out->floor = in->live[0];
    for (size_t i = 0; i < in->nlive; i++)
      if (in->live[i] <= in->live[0] + in->live[0] / 10) out->depth++;
  }
  size_t nk;
  if (in->sales_pre) {
    const sb_fmv_t *p = in->sales_pre;
    out->sales_total = p->sales_total;
    out->dropped_pairs = p->dropped_pairs;
    out->dropped_sellers = p->dropped_sellers;
    out->dropped_buyers = p->dropped_buyers;
    out->dropped_outliers = p->dropped_outliers;
    out->sales_median = p->sales_median;
    out->sales_iqm = p->sales_iqm;
    out->sales_min = p->sales_min;
    out->sales_max = p->sales_max;
    nk = p->sales_clean;
  } else {
    int64_t *kept = in->nsales ? souk_calloc(in->nsales, sizeof *kept) : NULL;
    nk = kept ? sb_fmv_clean_sales(in->sales, in->nsales, kept, out) : 0;
    if (nk) {
      out->sales_median = sb_median_sorted(kept, nk);
      out->sales_iqm = sb_iqm_sorted(kept, nk);
      out->sales_min = kept[0];
      out->sales_max = kept[nk - 1];
    }
    souk_free(kept);
  }
  out->sales_clean = (uint32_t)nk;

  char thin[48] = "";
  if (out->thin)
    snprintf(thin, sizeof thin, ", thin market: %u listing%s", out->live,
             out->live == 1 ? "" : "s");
  char a[24];
  if (nk >= min_sales) {
    out->value = out->sales_median;
    out->method = SB_FMV_SALES;
    if (out->floor && out->floor < out->sales_median) {
      out->value = out->floor;
      out->method = SB_FMV_SALES_CAPPED;
      money(a, sizeof a, out->sales_median);
      snprintf(out->evidence, sizeof out->evidence,
               "%s BIN, under the median %s of %u sales in %u h%s",
               in->judged ? "2nd-lowest" : "lowest", a, out->sales_clean, in->window_hours, thin);
    } else {
      snprintf(out->evidence, sizeof out->evidence, "median of %u sales in %u h%s",
               out->sales_clean, in->window_hours, thin);
    }
  } else if (in->nlive) {
    out->value = out->floor;
    out->method = SB_FMV_LADDER;
    snprintf(out->evidence, sizeof out->evidence, "%s BIN%s%s%s",
             in->judged ? "2nd-lowest" : "lowest", thin, nk ? ", " : "",
             nk ? (nk == 1 ? "1 sale" : "few sales") : "");
  } else if (in->nfloors >= 3) {
    int64_t *f = souk_calloc(in->nfloors, sizeof *f);
    memcpy(f, in->floors, in->nfloors * sizeof *f);
    qsort(f, in->nfloors, sizeof *f, cmp_i64);
    out->value = sb_median_sorted(f, in->nfloors);
    souk_free(f);
    out->method = SB_FMV_HOURS;
    snprintf(out->evidence, sizeof out->evidence, "median of %zu hourly floors, no live listing",
             in->nfloors);
  } else {
    out->method = SB_FMV_NONE;
    snprintf(out->evidence, sizeof out->evidence, "not enough evidence: %u sales, %u listings",
             out->sales_clean, out->live);
  }
  return out->value;
}

void sb_fees_defaults(sb_fees_t *f) {
  f->tier1_below = 10000000;
  f->tier2_upto = 100000000;
  f->tier1_bp = 100;
  f->tier2_bp = 200;
  f->tier3_bp = 250;
  f->tax_above = 1000000;
  f->tax_bp = 100;
}

/* price * bp / 10000, rounded up, without overflow for any coin amount. */
static int64_t bp_up(int64_t price, int32_t bp) {
  if (price <= 0 || bp <= 0) return 0;
  __int128 v = (__int128)price * bp;
  return (int64_t)((v + 9999) / 10000);
}

int64_t sb_fees_on(const sb_fees_t *f, int64_t price) {
  int32_t bp = price < f->tier1_below   ? f->tier1_bp
               : price <= f->tier2_upto ? f->tier2_bp
                                        : f->tier3_bp;
  int64_t fee = bp_up(price, bp);
  if (price > f->tax_above) fee += bp_up(price, f->tax_bp);
  return fee;
}
