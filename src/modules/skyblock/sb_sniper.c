/* The sniper and its dedupe; see sb_sniper.h. */
#include "sb_sniper.h"

#include "souk/alloc.h"

#include <string.h>

void sb_sniper_conf_defaults(sb_sniper_conf_t *c) {
  memset(c, 0, sizeof *c);
  c->min_profit = 1000000;
  c->min_margin_bp = 1000;
  c->min_sales = 3;
  c->allow_thin = false;
  c->max_listing_age_ms = 5 * 60000;
  c->improve_bp = 1000;
  c->dedupe_max = 50000;
  c->dedupe_ttl_ms = 48LL * 3600000;
  sb_fees_defaults(&c->fees);
}

const char *sb_verdict_name(sb_verdict_t v) {
  static const char *const names[SB_V__COUNT] = {
      "alert",    "not_bin",    "old",        "no_value",  "thin",
      "illiquid", "low_profit", "low_margin", "duplicate", "same_seller"};
  return (unsigned)v < SB_V__COUNT ? names[v] : "unknown";
}

uint64_t sb_market_hash(const char *key, const char *attrs) {
  uint64_t h = 0xcbf29ce484222325ULL;
  for (const char *s = key; *s; s++)
    h = (h ^ (unsigned char)*s) * 0x100000001b3ULL;
  h = (h ^ 0x1f) * 0x100000001b3ULL;
  for (const char *s = attrs ? attrs : ""; *s; s++)
    h = (h ^ (unsigned char)*s) * 0x100000001b3ULL;
  return h;
}

/* ---- a bounded map: key -> (value, time), oldest dropped first ------------- */

typedef struct bent {
  uint64_t key; /* 0 empty, 1 deleted */
  int64_t val, at;
} bent_t;

typedef struct bring {
  uint64_t key;
  int64_t at;
} bring_t;

typedef struct bmap {
  bent_t *t;
  size_t cap, used, n;
  bring_t *ring; /* insertion order */
  size_t rcap, head, rn;
  size_t max;
} bmap_t;

static inline uint64_t fixkey(uint64_t k) { return k > 1 ? k : k + 2; }

static inline uint64_t mix(uint64_t x) {
  x ^= x >> 31;
  x *= 0x9e3779b97f4a7c15ULL;
  x ^= x >> 29;
  return x;
}

static bent_t *bm_find(const bmap_t *b, uint64_t key) {
  if (!b->cap) return NULL;
  size_t mask = b->cap - 1, i = (size_t)mix(key) & mask;
  for (size_t p = 0; p < b->cap && b->t[i].key; p++) {
    if (b->t[i].key == key) return &b->t[i];
    i = (i + 1) & mask;
  }
  return NULL;
}

static void bm_put_raw(bmap_t *b, uint64_t key, int64_t val, int64_t at);

static void bm_rehash(bmap_t *b, size_t cap) {
  bent_t *old = b->t;
  size_t oc = b->cap;
  b->t = souk_calloc(cap, sizeof *b->t);
  b->cap = cap;
  b->used = b->n = 0;
  for (size_t i = 0; i < oc; i++)
    if (old[i].key > 1) bm_put_raw(b, old[i].key, old[i].val, old[i].at);
  souk_free(old);
}

static void bm_put_raw(bmap_t *b, uint64_t key, int64_t val, int64_t at) {
  if ((b->used + 1) * 10 > b->cap * 7) {
    size_t cap = b->cap ? b->cap : 256;
    if ((b->n + 1) * 10 > cap * 5) cap *= 2;
    bm_rehash(b, cap);
  }
  bent_t *e = bm_find(b, key);
  if (e) {
    e->val = val;
    e->at = at;
    return;
  }
  size_t mask = b->cap - 1, i = (size_t)mix(key) & mask;
  while (b->t[i].key > 1)
    i = (i + 1) & mask;
  if (b->t[i].key == 0) b->used++;
  b->t[i] = (bent_t){key, val, at};
  b->n++;
}

static void bm_del(bmap_t *b, bent_t *e) {
  e->key = 1;
  b->n--;
}

/* Pop ring entries whose time is before cut or beyond max. */
static void bm_trim(bmap_t *b, int64_t cut) {
  while (b->rn) {
    bring_t *r = &b->ring[b->head];
    bent_t *e = bm_find(b, r->key);
    bool stale = !e || e->at != r->at; /* a newer record of the key is later */
    if (!stale && r->at >= cut && b->n <= b->max) break;
    if (!stale) bm_del(b, e);
    b->head = (b->head + 1) % b->rcap;
    b->rn--;
  }
}

static void bm_put(bmap_t *b, uint64_t key, int64_t val, int64_t at) {
  key = fixkey(key);
  bm_put_raw(b, key, val, at);
  if (b->rn == b->rcap) {
    size_t nc = b->rcap ? b->rcap * 2 : 256;
    bring_t *r = souk_calloc(nc, sizeof *r);
    for (size_t i = 0; i < b->rn; i++)
      r[i] = b->ring[(b->head + i) % b->rcap];
    souk_free(b->ring);
    b->ring = r;
    b->rcap = nc;
    b->head = 0;
  }
  b->ring[(b->head + b->rn) % b->rcap] = (bring_t){key, at};
  b->rn++;
  bm_trim(b, INT64_MIN);
  /* Stale ring entries (keys recorded again) are dropped as they reach
   * the head; bound them too. */
  if (b->rn > 4 * (b->max + 64)) {
    bring_t *r = souk_calloc(b->rcap, sizeof *r);
    size_t keep = 0;
    for (size_t i = 0; i < b->rn; i++) {
      bring_t x = b->ring[(b->head + i) % b->rcap];
      bent_t *e = bm_find(b, x.key);
      if (e && e->at == x.at) r[keep++] = x;
    }
    souk_free(b->ring);
    b->ring = r;
    b->head = 0;
    b->rn = keep;
  }
}

static void bm_free(bmap_t *b) {
  souk_free(b->t);
  souk_free(b->ring);
}

struct sb_dedupe {
  bmap_t uuids; /* uuid hash -> at */
  bmap_t pairs; /* market x seller -> lowest unit alerted */
  int64_t ttl;
};

sb_dedupe_t *sb_dedupe_new(size_t max, int64_t ttl_ms) {
  sb_dedupe_t *d = souk_calloc(1, sizeof *d);
  d->uuids.max = d->pairs.max = max ? max : 1;
  d->ttl = ttl_ms;
  return d;
}

void sb_dedupe_free(sb_dedupe_t *d) {
  if (!d) return;
  bm_free(&d->uuids);
  bm_free(&d->pairs);
  souk_free(d);
}

static uint64_t uuid_key(const sb_uuid_t *u) {
  uint64_t a, b;
  memcpy(&a, u->b, 8);
  memcpy(&b, u->b + 8, 8);
  return fixkey(mix(a) ^ b);
}

static uint64_t pair_key(uint64_t market_hash, const sb_uuid_t *seller) {
  return fixkey(mix(market_hash ^ uuid_key(seller)));
}

bool sb_dedupe_has_uuid(const sb_dedupe_t *d, const sb_uuid_t *uuid) {
  return bm_find(&d->uuids, uuid_key(uuid)) != NULL;
}

int64_t sb_dedupe_seller_unit(const sb_dedupe_t *d, uint64_t market_hash, const sb_uuid_t *seller) {
  const bent_t *e = bm_find(&d->pairs, pair_key(market_hash, seller));
  return e ? e->val : 0;
}

void sb_dedupe_record(sb_dedupe_t *d, const sb_uuid_t *uuid, uint64_t market_hash,
                      const sb_uuid_t *seller, int64_t unit, int64_t at_ms) {
  bm_put(&d->uuids, uuid_key(uuid), 0, at_ms);
  uint64_t pk = pair_key(market_hash, seller);
  const bent_t *e = bm_find(&d->pairs, pk);
  int64_t low = e && e->val < unit ? e->val : unit;
  bm_put(&d->pairs, pk, low, at_ms);
}

void sb_dedupe_prune(sb_dedupe_t *d, int64_t now_ms) {
  bm_trim(&d->uuids, now_ms - d->ttl);
  bm_trim(&d->pairs, now_ms - d->ttl);
}

void sb_dedupe_size(const sb_dedupe_t *d, size_t *uuids, size_t *pairs) {
  if (uuids) *uuids = d->uuids.n;
  if (pairs) *pairs = d->pairs.n;
}

/* ---- judging ----------------------------------------------------------------- */

sb_verdict_t sb_snipe_judge(const sb_sniper_conf_t *c, sb_mkts_t *m, const sb_dedupe_t *d,
                            const sb_live_t *l, int64_t now_ms, sb_judgement_t *out) {
  memset(out, 0, sizeof *out);
  out->price = l->price;
  out->unit = l->unit;
  out->count = l->count;
  if (!l->bin) return out->verdict = SB_V_NOT_BIN;
  if (l->start_ms < now_ms - c->max_listing_age_ms) return out->verdict = SB_V_OLD;
  int64_t v = sb_mkts_fmv(m, l->mid, l, &out->fmv);
  if (v <= 0) return out->verdict = SB_V_NO_VALUE;
  out->resale =
      v > INT64_MAX / (int64_t)(l->count ? l->count : 1) ? INT64_MAX : v * (int64_t)l->count;
  out->fees = sb_fees_on(&c->fees, out->resale);
  out->profit = out->resale - out->fees - l->price;
  __int128 margin = l->price > 0 ? (__int128)out->profit * 10000 / l->price : 0;
  out->margin_bp = margin > INT32_MAX   ? INT32_MAX
                   : margin < INT32_MIN ? INT32_MIN
                                        : (int32_t)margin;
  if (out->fmv.thin && !c->allow_thin) return out->verdict = SB_V_THIN;
  if (out->fmv.sales_clean < c->min_sales) return out->verdict = SB_V_ILLIQUID;
  if (out->profit < c->min_profit) return out->verdict = SB_V_LOW_PROFIT;
  if (out->margin_bp < c->min_margin_bp) return out->verdict = SB_V_LOW_MARGIN;
  if (sb_dedupe_has_uuid(d, &l->uuid)) return out->verdict = SB_V_DUPLICATE;
  const char *key = sb_mkts_key(m, l->mid), *attrs = sb_mkts_attrs(m, l->mid);
  int64_t prev = sb_dedupe_seller_unit(d, sb_market_hash(key, attrs), &l->seller);
  /* Again only when the price per unit dropped by improve_bp or more. */
  if (prev && (__int128)l->unit * 10000 > (__int128)prev * (10000 - c->improve_bp))
    return out->verdict = SB_V_SAME_SELLER;
  return out->verdict = SB_V_ALERT;
}
