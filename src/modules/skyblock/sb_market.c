/* The SkyBlock feature store; see sb_market.h. */
#include "sb_market.h"

#include "souk/alloc.h"
#include "souk/err.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

/* An entry of the open hour's ladder. */
typedef struct hl_ent {
  int64_t unit;
  sb_uuid_t uuid, seller;
} hl_ent_t;

struct sb_mkt {
  char *key, *attrs, *name;
  uint64_t hash;
  bool used;
  uint8_t nlad, nhl, caphl;
  uint32_t live_bin, live_all;
  uint32_t lad[SB_LADDER_MAX]; /* live slots, ascending by unit price */
  hl_ent_t *hl;                /* open hour's ladder, ascending */
  uint32_t h_listings, h_new;
  sb_sale_t *sales; /* the window's sales, ascending by time */
  uint32_t nsales, capsales;
  uint32_t refs; /* rows of closed hours */
  /* The sales part of the value, computed once per change of sales. */
  bool cache_ok;
  sb_fmv_t cache;
};

/* A closed hour's row: as sb_sumrow_t, with the market's id. */
typedef struct hrow {
  uint32_t mid;
  uint32_t listings, new_listings, sales;
  int64_t volume, smin, smed, siqm, smax;
  uint32_t lad_off;
  uint8_t nlad;
} hrow_t;

typedef struct hour {
  int64_t hour;
  hrow_t *rows; /* ascending by mid */
  size_t n;
  int64_t *lad;
  size_t nlad;
} hour_t;

/* A recent sale's auction id, so overlapping auctions_ended answers add
 * each sale once. */
typedef struct seen_sale {
  uint64_t h; /* 0: empty slot; 1: deleted */
  int64_t ts;
} seen_sale_t;

#define TAB_EMPTY 0u
#define TAB_TOMB  UINT32_MAX

struct sb_mkts {
  sb_mkts_conf_t c;
  sb_mkt_t *mk;
  uint32_t nmk, capmk;
  uint32_t *free_mk;
  uint32_t nfree_mk, capfree_mk;
  uint32_t *mtab; /* market id + 1 by hash */
  size_t mtab_cap, mtab_used;
  sb_live_t *live;
  size_t nlive_slots, caplive;
  uint32_t *free_live;
  size_t nfree_live, capfree_live;
  uint32_t *ltab; /* live slot + 1 by uuid */
  size_t ltab_cap, ltab_used;
  size_t live_n, live_bin;
  hour_t *hours; /* closed hours, oldest first */
  size_t nhours;
  int64_t open_hour, data_now;
  seen_sale_t *ss;
  size_t ss_cap, ss_used;
  size_t nsales;
  sb_mkts_stats_t st;
};

/* ---- hashing -------------------------------------------------------------- */

static uint64_t fnv(uint64_t h, const char *s) {
  for (; *s; s++) {
    h ^= (unsigned char)*s;
    h *= 0x100000001b3ULL;
  }
  return h;
}

static uint64_t mkt_hash(const char *key, const char *attrs) {
  uint64_t h = fnv(0xcbf29ce484222325ULL, key);
  h ^= 0x1f;
  h *= 0x100000001b3ULL;
  return fnv(h, attrs ? attrs : "");
}

static inline uint64_t mix64(uint64_t x) {
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdULL;
  x ^= x >> 33;
  return x;
}

/* ---- markets ---------------------------------------------------------------- */

static void mtab_insert(sb_mkts_t *m, uint32_t mid);

static void mtab_rehash(sb_mkts_t *m, size_t cap) {
  souk_free(m->mtab);
  m->mtab = souk_calloc(cap, sizeof *m->mtab);
  m->mtab_cap = cap;
  m->mtab_used = 0;
  for (uint32_t i = 0; i < m->nmk; i++)
    if (m->mk[i].used) mtab_insert(m, i);
}

static void mtab_insert(sb_mkts_t *m, uint32_t mid) {
  if ((m->mtab_used + 1) * 10 > m->mtab_cap * 7) {
    /* Grow when the markets in use need it, or just clear tombstones. */
    size_t cap = m->mtab_cap ? m->mtab_cap : 1024;
    if ((size_t)(m->nmk - m->nfree_mk + 1) * 10 > cap * 5) cap *= 2;
    mtab_rehash(m, cap);
    /* The rehash inserted every used market, this one included. */
    return;
  }
  size_t mask = m->mtab_cap - 1, i = (size_t)m->mk[mid].hash & mask;
  while (m->mtab[i] != TAB_EMPTY && m->mtab[i] != TAB_TOMB)
    i = (i + 1) & mask;
  m->mtab[i] = mid + 1;
  m->mtab_used++;
}

uint32_t sb_mkts_find(const sb_mkts_t *m, const char *key, const char *attrs) {
  if (!m->mtab_cap) return UINT32_MAX;
  if (!attrs) attrs = "";
  uint64_t h = mkt_hash(key, attrs);
  size_t mask = m->mtab_cap - 1, i = (size_t)h & mask;
  for (size_t probes = 0; probes < m->mtab_cap && m->mtab[i] != TAB_EMPTY; probes++) {
    uint32_t v = m->mtab[i];
    if (v != TAB_TOMB) {
      const sb_mkt_t *k = &m->mk[v - 1];
      if (k->hash == h && strcmp(k->key, key) == 0 && strcmp(k->attrs, attrs) == 0) return v - 1;
    }
    i = (i + 1) & mask;
  }
  return UINT32_MAX;
}

static void mtab_remove(sb_mkts_t *m, uint32_t mid) {
  size_t mask = m->mtab_cap - 1, i = (size_t)m->mk[mid].hash & mask;
  while (m->mtab[i] != TAB_EMPTY) {
    if (m->mtab[i] == mid + 1) {
      m->mtab[i] = TAB_TOMB;
      return;
    }
    i = (i + 1) & mask;
  }
}

uint32_t sb_mkts_intern(sb_mkts_t *m, const char *key, const char *attrs, const char *name) {
  if (!attrs) attrs = "";
  uint32_t mid = sb_mkts_find(m, key, attrs);
  if (mid != UINT32_MAX) {
    sb_mkt_t *k = &m->mk[mid];
    if (name && *name && (!k->name || !*k->name)) {
      souk_free(k->name);
      k->name = souk_strdup(name);
    }
    return mid;
  }
  if (m->nfree_mk) {
    mid = m->free_mk[--m->nfree_mk];
  } else {
    if (m->nmk == m->capmk) {
      m->capmk = m->capmk ? m->capmk * 2 : 256;
      m->mk = souk_reallocarray(m->mk, m->capmk, sizeof *m->mk);
    }
    mid = m->nmk++;
  }
  sb_mkt_t *k = &m->mk[mid];
  memset(k, 0, sizeof *k);
  k->key = souk_strdup(key);
  k->attrs = souk_strdup(attrs);
  k->name = souk_strdup(name ? name : "");
  k->hash = mkt_hash(key, attrs);
  k->used = true;
  mtab_insert(m, mid);
  return mid;
}

static void push_free(uint32_t **v, uint32_t *n, uint32_t *cap, uint32_t x) {
  if (*n == *cap) {
    *cap = *cap ? *cap * 2 : 64;
    *v = souk_reallocarray(*v, *cap, sizeof **v);
  }
  (*v)[(*n)++] = x;
}

static void mkt_forget(sb_mkts_t *m, uint32_t mid) {
  sb_mkt_t *k = &m->mk[mid];
  mtab_remove(m, mid);
  souk_free(k->key);
  souk_free(k->attrs);
  souk_free(k->name);
  souk_free(k->hl);
  souk_free(k->sales);
  memset(k, 0, sizeof *k);
  push_free(&m->free_mk, &m->nfree_mk, &m->capfree_mk, mid);
  m->st.markets_forgotten++;
}

bool sb_mkts_used(const sb_mkts_t *m, uint32_t mid) { return mid < m->nmk && m->mk[mid].used; }
const char *sb_mkts_key(const sb_mkts_t *m, uint32_t mid) {
  return sb_mkts_used(m, mid) ? m->mk[mid].key : NULL;
}
const char *sb_mkts_attrs(const sb_mkts_t *m, uint32_t mid) {
  return sb_mkts_used(m, mid) ? m->mk[mid].attrs : NULL;
}
const char *sb_mkts_name(const sb_mkts_t *m, uint32_t mid) {
  return sb_mkts_used(m, mid) ? m->mk[mid].name : NULL;
}
uint32_t sb_mkts_count(const sb_mkts_t *m) { return m->nmk; }

/* ---- the store ------------------------------------------------------------------ */

sb_mkts_t *sb_mkts_new(const sb_mkts_conf_t *conf) {
  sb_mkts_t *m = souk_calloc(1, sizeof *m);
  m->c = *conf;
  if (m->c.ladder_size < 1) m->c.ladder_size = 1;
  if (m->c.ladder_size > SB_LADDER_MAX) m->c.ladder_size = SB_LADDER_MAX;
  if (m->c.window_hours < 1) m->c.window_hours = 1;
  if (m->c.min_sales < 1) m->c.min_sales = 1;
  if (!m->c.live_cap) m->c.live_cap = 200000;
  return m;
}

static void hour_free(hour_t *h) {
  souk_free(h->rows);
  souk_free(h->lad);
}

void sb_mkts_free(sb_mkts_t *m) {
  if (!m) return;
  for (uint32_t i = 0; i < m->nmk; i++) {
    sb_mkt_t *k = &m->mk[i];
    if (!k->used) continue;
    souk_free(k->key);
    souk_free(k->attrs);
    souk_free(k->name);
    souk_free(k->hl);
    souk_free(k->sales);
  }
  for (size_t i = 0; i < m->nhours; i++)
    hour_free(&m->hours[i]);
  souk_free(m->hours);
  souk_free(m->mk);
  souk_free(m->free_mk);
  souk_free(m->mtab);
  souk_free(m->live);
  souk_free(m->free_live);
  souk_free(m->ltab);
  souk_free(m->ss);
  souk_free(m);
}

const sb_mkts_conf_t *sb_mkts_conf(const sb_mkts_t *m) { return &m->c; }

void sb_mkts_stats(const sb_mkts_t *m, sb_mkts_stats_t *out) {
  *out = m->st;
  size_t markets = 0, bytes = sizeof *m;
  for (uint32_t i = 0; i < m->nmk; i++) {
    const sb_mkt_t *k = &m->mk[i];
    if (!k->used) continue;
    markets++;
    bytes += strlen(k->key) + strlen(k->attrs) + strlen(k->name) + 3 * 16;
    bytes += (size_t)k->caphl * sizeof(hl_ent_t) + (size_t)k->capsales * sizeof(sb_sale_t);
  }
  bytes += (size_t)m->capmk * sizeof(sb_mkt_t) + m->mtab_cap * 4;
  bytes += m->caplive * sizeof(sb_live_t) + m->ltab_cap * 4 + m->ss_cap * sizeof(seen_sale_t);
  for (size_t i = 0; i < m->nhours; i++)
    bytes += m->hours[i].n * sizeof(hrow_t) + m->hours[i].nlad * 8;
  out->markets = markets;
  out->live = m->live_n;
  out->live_bin = m->live_bin;
  out->sales = m->nsales;
  out->hours = m->nhours;
  out->open_hour = m->open_hour;
  out->data_now = m->data_now;
  out->window_hours = m->c.window_hours;
  out->approx_bytes = bytes;
}

/* ---- live listings -------------------------------------------------------------- */

static void ltab_insert(sb_mkts_t *m, uint32_t slot);

static void ltab_rehash(sb_mkts_t *m, size_t cap) {
  souk_free(m->ltab);
  m->ltab = souk_calloc(cap, sizeof *m->ltab);
  m->ltab_cap = cap;
  m->ltab_used = 0;
  for (size_t i = 0; i < m->nlive_slots; i++)
    if (m->live[i].used) ltab_insert(m, (uint32_t)i);
}

static void ltab_insert(sb_mkts_t *m, uint32_t slot) {
  if ((m->ltab_used + 1) * 10 > m->ltab_cap * 7) {
    /* Grow when the live set is large, or just clear tombstones. */
    size_t cap = m->ltab_cap ? m->ltab_cap : 4096;
    if ((m->live_n + 1) * 10 > cap * 5) cap *= 2;
    ltab_rehash(m, cap);
    return;
  }
  size_t mask = m->ltab_cap - 1;
  size_t i = (size_t)mix64(sb_uuid_h64(&m->live[slot].uuid)) & mask;
  while (m->ltab[i] != TAB_EMPTY && m->ltab[i] != TAB_TOMB)
    i = (i + 1) & mask;
  m->ltab[i] = slot + 1;
  m->ltab_used++;
}

/* The table index holding uuid, or SIZE_MAX. */
static size_t ltab_find(const sb_mkts_t *m, const sb_uuid_t *uuid) {
  if (!m->ltab_cap) return SIZE_MAX;
  size_t mask = m->ltab_cap - 1, i = (size_t)mix64(sb_uuid_h64(uuid)) & mask;
  for (size_t probes = 0; probes < m->ltab_cap && m->ltab[i] != TAB_EMPTY; probes++) {
    uint32_t v = m->ltab[i];
    if (v != TAB_TOMB && sb_uuid_eq(&m->live[v - 1].uuid, uuid)) return i;
    i = (i + 1) & mask;
  }
  return SIZE_MAX;
}

const sb_live_t *sb_mkts_live_find(const sb_mkts_t *m, const sb_uuid_t *uuid) {
  size_t i = ltab_find(m, uuid);
  return i == SIZE_MAX ? NULL : &m->live[m->ltab[i] - 1];
}

static inline uint32_t slot_of(const sb_mkts_t *m, const sb_live_t *l) {
  return (uint32_t)(l - m->live);
}

/* Insert live slot s into its market's ladder, if it belongs there. */
static void lad_insert(sb_mkts_t *m, sb_mkt_t *k, uint32_t s) {
  int64_t unit = m->live[s].unit;
  unsigned size = m->c.ladder_size;
  unsigned n = k->nlad;
  if (n == size && m->live[k->lad[n - 1]].unit <= unit) return;
  unsigned at = n;
  while (at > 0 && m->live[k->lad[at - 1]].unit > unit)
    at--;
  unsigned last = n < size ? n : size - 1;
  memmove(&k->lad[at + 1], &k->lad[at], (last - at) * sizeof *k->lad);
  k->lad[at] = s;
  if (n < size) k->nlad++;
}

static void lad_remove(sb_mkt_t *k, uint32_t s) {
  for (unsigned i = 0; i < k->nlad; i++) {
    if (k->lad[i] == s) {
      memmove(&k->lad[i], &k->lad[i + 1], (k->nlad - i - 1) * sizeof *k->lad);
      k->nlad--;
      return;
    }
  }
}

/* The open hour's ladder: distinct auctions, the lowest ladder_size. */
static void hl_insert(sb_mkts_t *m, sb_mkt_t *k, const sb_live_t *l) {
  unsigned size = m->c.ladder_size;
  unsigned n = k->nhl;
  if (n == size && k->hl[n - 1].unit <= l->unit) return;
  if (n == k->caphl && n < size) {
    k->caphl = (uint8_t)(k->caphl ? (k->caphl * 2 > size ? size : k->caphl * 2) : 2);
    k->hl = souk_reallocarray(k->hl, k->caphl, sizeof *k->hl);
  }
  unsigned at = n;
  while (at > 0 && k->hl[at - 1].unit > l->unit)
    at--;
  unsigned last = n < size ? n : size - 1;
  memmove(&k->hl[at + 1], &k->hl[at], (last - at) * sizeof *k->hl);
  k->hl[at] = (hl_ent_t){l->unit, l->uuid, l->seller};
  if (n < size) k->nhl++;
}

static void count_for_hour(sb_mkts_t *m, sb_live_t *l) {
  if (!l->bin || l->hour == (int32_t)m->open_hour) return;
  l->hour = (int32_t)m->open_hour;
  sb_mkt_t *k = &m->mk[l->mid];
  k->h_listings++;
  hl_insert(m, k, l);
}

static int64_t unit_of(int64_t price, uint32_t count) {
  if (count <= 1) return price;
  return price / count + (price % count != 0);
}

void sb_mkts_live_touch(sb_mkts_t *m, const sb_live_t *cl, uint32_t gen, int64_t price) {
  sb_live_t *l = &m->live[slot_of(m, cl)];
  l->gen = gen;
  if (price != l->price && price > 0) {
    l->price = price;
    l->unit = unit_of(price, l->count);
    if (l->bin) {
      /* A BIN's price never changes on Hypixel; keep the ladder ordered
       * anyway if it ever does. */
      sb_mkt_t *k = &m->mk[l->mid];
      lad_remove(k, slot_of(m, l));
      lad_insert(m, k, slot_of(m, l));
    }
  }
  count_for_hour(m, l);
}

const sb_live_t *sb_mkts_live_add(sb_mkts_t *m, const sb_listing_t *in, uint32_t mid,
                                  uint32_t count, uint32_t gen) {
  if (m->live_n >= m->c.live_cap || !sb_mkts_used(m, mid)) {
    m->st.listings_refused++;
    return NULL;
  }
  uint32_t s;
  if (m->nfree_live) {
    s = m->free_live[--m->nfree_live];
  } else {
    if (m->nlive_slots == m->caplive) {
      m->caplive = m->caplive ? m->caplive * 2 : 4096;
      m->live = souk_reallocarray(m->live, m->caplive, sizeof *m->live);
    }
    s = (uint32_t)m->nlive_slots++;
  }
  sb_live_t *l = &m->live[s];
  memset(l, 0, sizeof *l);
  l->uuid = in->uuid;
  l->seller = in->seller;
  l->price = in->price;
  l->count = count ? count : 1;
  l->unit = unit_of(in->price, l->count);
  l->start_ms = in->start_ms;
  l->end_ms = in->end_ms;
  l->mid = mid;
  l->gen = gen;
  l->hour = -1;
  l->bin = in->bin;
  l->used = true;
  ltab_insert(m, s);
  m->live_n++;
  sb_mkt_t *k = &m->mk[mid];
  k->live_all++;
  if (l->bin) {
    m->live_bin++;
    k->live_bin++;
    k->h_new++;
    lad_insert(m, k, s);
  }
  count_for_hour(m, l);
  m->st.listings_added++;
  return l;
}

static void live_free_slot(sb_mkts_t *m, uint32_t s) {
  sb_live_t *l = &m->live[s];
  sb_mkt_t *k = &m->mk[l->mid];
  k->live_all--;
  if (l->bin) {
    k->live_bin--;
    m->live_bin--;
    lad_remove(k, s);
  }
  l->used = false;
  m->live_n--;
  if (m->nfree_live == m->capfree_live) {
    m->capfree_live = m->capfree_live ? m->capfree_live * 2 : 1024;
    m->free_live = souk_reallocarray(m->free_live, m->capfree_live, sizeof *m->free_live);
  }
  m->free_live[m->nfree_live++] = s;
  m->st.listings_removed++;
}

bool sb_mkts_live_remove(sb_mkts_t *m, const sb_uuid_t *uuid) {
  size_t i = ltab_find(m, uuid);
  if (i == SIZE_MAX) return false;
  uint32_t s = m->ltab[i] - 1;
  m->ltab[i] = TAB_TOMB;
  live_free_slot(m, s);
  return true;
}

size_t sb_mkts_sweep_done(sb_mkts_t *m, uint32_t gen) {
  size_t removed = 0;
  for (size_t s = 0; s < m->nlive_slots; s++) {
    sb_live_t *l = &m->live[s];
    if (!l->used || l->gen == gen) continue;
    size_t i = ltab_find(m, &l->uuid);
    if (i != SIZE_MAX) m->ltab[i] = TAB_TOMB;
    live_free_slot(m, (uint32_t)s);
    removed++;
  }
  /* Removing refills nothing: rebuild every ladder from the live set. */
  for (uint32_t i = 0; i < m->nmk; i++)
    m->mk[i].nlad = 0;
  for (size_t s = 0; s < m->nlive_slots; s++) {
    const sb_live_t *l = &m->live[s];
    if (l->used && l->bin) lad_insert(m, &m->mk[l->mid], (uint32_t)s);
  }
  /* Many tombstones after a big removal: rebuild the table. */
  if (m->ltab_cap && m->ltab_used > m->live_n * 2 + 1024) ltab_rehash(m, m->ltab_cap);
  return removed;
}

const sb_live_t *sb_mkts_live_next(const sb_mkts_t *m, size_t *pos) {
  while (*pos < m->nlive_slots) {
    const sb_live_t *l = &m->live[(*pos)++];
    if (l->used) return l;
  }
  return NULL;
}

/* ---- sales ---------------------------------------------------------------------- */

static void ss_put(sb_mkts_t *m, uint64_t h, int64_t ts);

static void ss_rehash(sb_mkts_t *m, size_t cap, int64_t older_than) {
  seen_sale_t *old = m->ss;
  size_t oldcap = m->ss_cap;
  m->ss = souk_calloc(cap, sizeof *m->ss);
  m->ss_cap = cap;
  m->ss_used = 0;
  for (size_t i = 0; i < oldcap; i++)
    if (old[i].h > 1 && old[i].ts >= older_than) ss_put(m, old[i].h, old[i].ts);
  souk_free(old);
}

static inline uint64_t ss_key(const sb_uuid_t *u) {
  uint64_t h = sb_uuid_h64(u);
  return h > 1 ? h : h + 2;
}

static void ss_put(sb_mkts_t *m, uint64_t h, int64_t ts) {
  if ((m->ss_used + 1) * 10 > m->ss_cap * 7) {
    ss_rehash(m, m->ss_cap ? m->ss_cap * 2 : 1024, INT64_MIN);
  }
  size_t mask = m->ss_cap - 1, i = (size_t)mix64(h) & mask;
  while (m->ss[i].h > 1)
    i = (i + 1) & mask;
  m->ss[i] = (seen_sale_t){h, ts};
  m->ss_used++;
}

static bool ss_has(const sb_mkts_t *m, uint64_t h) {
  if (!m->ss_cap) return false;
  size_t mask = m->ss_cap - 1, i = (size_t)mix64(h) & mask;
  for (size_t probes = 0; probes < m->ss_cap && m->ss[i].h != 0; probes++) {
    if (m->ss[i].h == h) return true;
    i = (i + 1) & mask;
  }
  return false;
}

bool sb_mkts_sale_known(const sb_mkts_t *m, const sb_uuid_t *auction) {
  return ss_has(m, ss_key(auction));
}

bool sb_mkts_sale_add(sb_mkts_t *m, uint32_t mid, const sb_uuid_t *auction, int64_t ts_ms,
                      int64_t price, uint32_t count, uint64_t seller, uint64_t buyer) {
  uint64_t h = ss_key(auction);
  if (ss_has(m, h)) {
    m->st.sales_duplicate++;
    return false;
  }
  if (!sb_mkts_used(m, mid) || price <= 0) return false;
  ss_put(m, h, ts_ms);
  sb_mkt_t *k = &m->mk[mid];
  if (k->nsales == k->capsales) {
    k->capsales = k->capsales ? k->capsales * 2 : 4;
    k->sales = souk_reallocarray(k->sales, k->capsales, sizeof *k->sales);
  }
  /* Keep ascending by time: sales nearly always arrive in order. */
  uint32_t at = k->nsales;
  while (at > 0 && k->sales[at - 1].ts_ms > ts_ms)
    at--;
  memmove(&k->sales[at + 1], &k->sales[at], (k->nsales - at) * sizeof *k->sales);
  k->sales[at] = (sb_sale_t){ts_ms, unit_of(price, count), price, seller, buyer};
  k->nsales++;
  k->cache_ok = false;
  m->nsales++;
  m->st.sales_added++;
  return true;
}

/* ---- hours ---------------------------------------------------------------------- */

static int mk_cmp_i64(const void *a, const void *b) {
  int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
  return (x > y) - (x < y);
}

/* Sales statistics of market k between [from, to) ms into row r. */
static void sales_stats(const sb_mkt_t *k, int64_t from, int64_t to, hrow_t *r, int64_t **scratch,
                        size_t *scap) {
  uint32_t lo = 0, hi = k->nsales;
  while (lo < hi) {
    uint32_t mid = lo + (hi - lo) / 2;
    if (k->sales[mid].ts_ms < from)
      lo = mid + 1;
    else
      hi = mid;
  }
  uint32_t n = 0;
  for (uint32_t i = lo; i < k->nsales && k->sales[i].ts_ms < to; i++) {
    if (n == *scap) {
      *scap = *scap ? *scap * 2 : 64;
      *scratch = souk_reallocarray(*scratch, *scap, sizeof **scratch);
    }
    (*scratch)[n++] = k->sales[i].unit;
    /* Saturating: an hour's volume is a statistic, not money moved. */
    r->volume =
        k->sales[i].price > INT64_MAX - r->volume ? INT64_MAX : r->volume + k->sales[i].price;
  }
  r->sales = n;
  if (!n) return;
  qsort(*scratch, n, sizeof **scratch, mk_cmp_i64);
  r->smin = (*scratch)[0];
  r->smax = (*scratch)[n - 1];
  r->smed = sb_median_sorted(*scratch, n);
  r->siqm = sb_iqm_sorted(*scratch, n);
}

/* Build the rows of hour h from the open-hour state of every market. */
static void build_hour(sb_mkts_t *m, int64_t h, hour_t *out, bool reset) {
  memset(out, 0, sizeof *out);
  out->hour = h;
  int64_t from = h * SB_HOUR_MS, to = from + SB_HOUR_MS;
  int64_t *scratch = NULL;
  size_t scap = 0, rcap = 0, lcap = 0;
  for (uint32_t i = 0; i < m->nmk; i++) {
    sb_mkt_t *k = &m->mk[i];
    if (!k->used) continue;
    hrow_t r = {.mid = i, .listings = k->h_listings, .new_listings = k->h_new};
    sales_stats(k, from, to, &r, &scratch, &scap);
    if (!r.listings && !r.sales && !k->nhl) continue;
    r.nlad = k->nhl;
    r.lad_off = (uint32_t)out->nlad;
    if (out->nlad + k->nhl > lcap) {
      lcap = (out->nlad + k->nhl) * 2;
      out->lad = souk_reallocarray(out->lad, lcap, sizeof *out->lad);
    }
    for (unsigned j = 0; j < k->nhl; j++)
      out->lad[out->nlad++] = k->hl[j].unit;
    if (out->n == rcap) {
      rcap = rcap ? rcap * 2 : 256;
      out->rows = souk_reallocarray(out->rows, rcap, sizeof *out->rows);
    }
    out->rows[out->n++] = r;
    if (reset) {
      k->refs++;
      k->nhl = 0;
      k->h_listings = k->h_new = 0;
    }
  }
  souk_free(scratch);
}

static sb_summary_t *export_hour(const sb_mkts_t *m, const hour_t *h) {
  sb_summary_t *s = souk_calloc(1, sizeof *s);
  s->hour = h->hour;
  s->n = h->n;
  s->rows = souk_calloc(h->n ? h->n : 1, sizeof *s->rows);
  size_t bytes = 0;
  for (size_t i = 0; i < h->n; i++) {
    const sb_mkt_t *k = &m->mk[h->rows[i].mid];
    bytes += strlen(k->key) + strlen(k->attrs) + strlen(k->name) + 3;
  }
  s->arena = souk_malloc(bytes ? bytes : 1);
  char *p = s->arena;
  for (size_t i = 0; i < h->n; i++) {
    const hrow_t *r = &h->rows[i];
    const sb_mkt_t *k = &m->mk[r->mid];
    sb_sumrow_t *o = &s->rows[i];
    const char *src[3] = {k->key, k->attrs, k->name};
    const char **dst[3] = {&o->key, &o->attrs, &o->name};
    for (int f = 0; f < 3; f++) {
      size_t n = strlen(src[f]) + 1;
      memcpy(p, src[f], n);
      *dst[f] = p;
      p += n;
    }
    o->listings = r->listings;
    o->new_listings = r->new_listings;
    o->sales = r->sales;
    o->volume = r->volume;
    o->smin = r->smin;
    o->smed = r->smed;
    o->siqm = r->siqm;
    o->smax = r->smax;
    o->nlad = r->nlad;
    if (r->nlad) memcpy(o->lad, h->lad + r->lad_off, r->nlad * sizeof *o->lad);
  }
  return s;
}

void sb_summary_free(sb_summary_t *s) {
  if (!s) return;
  souk_free(s->rows);
  souk_free(s->arena);
  souk_free(s);
}

sb_summary_t *sb_mkts_open_summary(const sb_mkts_t *m) {
  hour_t h;
  build_hour((sb_mkts_t *)m, m->open_hour, &h, false);
  sb_summary_t *s = export_hour(m, &h);
  hour_free(&h);
  return s;
}

/* Drop closed hours and sales older than the window; forget markets with
 * nothing left. */
static void prune(sb_mkts_t *m) {
  int64_t oldest = m->open_hour - (int64_t)m->c.window_hours;
  size_t drop = 0;
  while (drop < m->nhours && m->hours[drop].hour < oldest) {
    hour_t *h = &m->hours[drop];
    for (size_t i = 0; i < h->n; i++)
      m->mk[h->rows[i].mid].refs--;
    hour_free(h);
    drop++;
  }
  if (drop) {
    memmove(m->hours, m->hours + drop, (m->nhours - drop) * sizeof *m->hours);
    m->nhours -= drop;
  }
  int64_t cut = oldest * SB_HOUR_MS;
  for (uint32_t i = 0; i < m->nmk; i++) {
    sb_mkt_t *k = &m->mk[i];
    if (!k->used) continue;
    uint32_t n = 0;
    while (n < k->nsales && k->sales[n].ts_ms < cut)
      n++;
    if (n) {
      memmove(k->sales, k->sales + n, (k->nsales - n) * sizeof *k->sales);
      k->nsales -= n;
      m->nsales -= n;
      k->cache_ok = false;
      if (k->capsales > 16 && k->nsales < k->capsales / 4) {
        k->capsales /= 2;
        k->sales = souk_reallocarray(k->sales, k->capsales, sizeof *k->sales);
      }
    }
    if (!k->live_all && !k->nsales && !k->refs && !k->h_listings && !k->nhl) mkt_forget(m, i);
  }
  /* Recent sale ids older than the window of auctions_ended (plus margin). */
  if (m->ss_cap) ss_rehash(m, m->ss_cap, m->data_now - 10 * 60000);
}

size_t sb_mkts_advance(sb_mkts_t *m, int64_t now_ms, sb_hour_closed_cb closed, void *ud) {
  if (now_ms <= m->data_now) return 0;
  m->data_now = now_ms;
  int64_t h = now_ms / SB_HOUR_MS;
  if (m->open_hour == 0) {
    m->open_hour = h;
    return 0;
  }
  size_t n = 0;
  if (now_ms >= (m->open_hour + 1) * SB_HOUR_MS + m->c.hour_grace_ms) {
    hour_t hr;
    build_hour(m, m->open_hour, &hr, true);
    m->hours = souk_reallocarray(m->hours, m->nhours + 1, sizeof *m->hours);
    m->hours[m->nhours++] = hr;
    m->st.hours_closed++;
    n++;
    if (closed) closed(ud, export_hour(m, &hr));
    m->open_hour = h;
    prune(m);
  }
  return n;
}

void sb_mkts_set_window(sb_mkts_t *m, unsigned window_hours) {
  if (window_hours < 1) window_hours = 1;
  m->c.window_hours = window_hours;
  if (m->open_hour) prune(m);
}

/* ---- value ---------------------------------------------------------------------- */

/* The row of market mid in closed hour h, or NULL. */
static const hrow_t *hour_row(const hour_t *h, uint32_t mid) {
  size_t lo = 0, hi = h->n;
  while (lo < hi) {
    size_t md = lo + (hi - lo) / 2;
    if (h->rows[md].mid < mid)
      lo = md + 1;
    else
      hi = md;
  }
  return lo < h->n && h->rows[lo].mid == mid ? &h->rows[lo] : NULL;
}

int64_t sb_mkts_fmv(sb_mkts_t *m, uint32_t mid, const sb_live_t *exclude, sb_fmv_t *out) {
  if (!sb_mkts_used(m, mid)) {
    memset(out, 0, sizeof *out);
    return 0;
  }
  sb_mkt_t *k = &m->mk[mid];
  int64_t live[SB_LADDER_MAX];
  size_t nlive = 0;
  for (unsigned i = 0; i < k->nlad; i++) {
    const sb_live_t *l = &m->live[k->lad[i]];
    if (l != exclude) live[nlive++] = l->unit;
  }
  size_t total = k->live_bin;
  if (exclude && exclude->bin && exclude->mid == mid && total) total--;
  int64_t floors[800];
  size_t nf = 0;
  for (size_t i = 0; i < m->nhours && nf < 799; i++) {
    const hrow_t *r = hour_row(&m->hours[i], mid);
    if (r && r->nlad) floors[nf++] = m->hours[i].lad[r->lad_off];
  }
  if (k->nhl) floors[nf++] = k->hl[0].unit;
  sb_fmv_in_t in = {.sales = k->sales,
                    .nsales = k->nsales,
                    .live = live,
                    .nlive = nlive,
                    .live_total = total,
                    .floors = floors,
                    .nfloors = nf,
                    .sales_pre = k->cache_ok ? &k->cache : NULL,
                    .judged = exclude != NULL,
                    .window_hours = m->c.window_hours,
                    .min_sales = m->c.min_sales,
                    .thin_wall = m->c.thin_wall};
  int64_t v = sb_fmv_compute(&in, out);
  if (!k->cache_ok) {
    k->cache = *out;
    k->cache_ok = true;
  }
  return v;
}

int sb_mkts_info(const sb_mkts_t *m, uint32_t mid, sb_mkt_info_t *out) {
  memset(out, 0, sizeof *out);
  if (!sb_mkts_used(m, mid)) return SOUK_ENOTFOUND;
  const sb_mkt_t *k = &m->mk[mid];
  out->live_bin = k->live_bin;
  out->live_all = k->live_all;
  out->sales = k->nsales;
  out->h_listings = k->h_listings;
  out->h_new = k->h_new;
  out->nlad = k->nlad;
  for (unsigned i = 0; i < k->nlad; i++)
    out->lad[i] = m->live[k->lad[i]].unit;
  for (size_t i = 0; i < m->nhours; i++)
    if (hour_row(&m->hours[i], mid)) out->hours++;
  return 0;
}

typedef struct act {
  uint32_t mid;
  uint64_t score;
} act_t;

static int cmp_act(const void *a, const void *b) {
  const act_t *x = a, *y = b;
  if (x->score != y->score) return x->score > y->score ? -1 : 1;
  return x->mid < y->mid ? -1 : x->mid > y->mid;
}

static uint64_t activity(const sb_mkt_t *k) {
  return (uint64_t)k->nsales << 32 | (uint64_t)(k->h_new & 0xffff) << 16 | (k->live_bin & 0xffff);
}

static size_t rank(const sb_mkts_t *m, bool (*keep)(const sb_mkt_t *, const void *),
                   const void *arg, uint32_t *ids, size_t n) {
  act_t *v = souk_calloc(m->nmk ? m->nmk : 1, sizeof *v);
  size_t nv = 0;
  for (uint32_t i = 0; i < m->nmk; i++) {
    const sb_mkt_t *k = &m->mk[i];
    if (k->used && keep(k, arg)) v[nv++] = (act_t){i, activity(k)};
  }
  qsort(v, nv, sizeof *v, cmp_act);
  size_t out = nv < n ? nv : n;
  for (size_t i = 0; i < out; i++)
    ids[i] = v[i].mid;
  souk_free(v);
  return out;
}

static bool keep_active(const sb_mkt_t *k, const void *arg) {
  (void)arg;
  return k->nsales || k->h_new || k->live_bin;
}

size_t sb_mkts_most_active(const sb_mkts_t *m, uint32_t *ids, size_t n) {
  return rank(m, keep_active, NULL, ids, n);
}

static bool icontains(const char *hay, const char *w, size_t wl) {
  if (!hay) return false;
  for (; *hay; hay++) {
    size_t i = 0;
    while (i < wl && hay[i] && tolower((unsigned char)hay[i]) == tolower((unsigned char)w[i]))
      i++;
    if (i == wl) return true;
  }
  return false;
}

bool sb_words_match(const char *query, const char *const *texts, size_t n) {
  const char *q = query ? query : "";
  while (*q) {
    while (*q == ' ' || *q == '_' || *q == ':')
      q++;
    size_t wl = strcspn(q, " _:");
    if (!wl) break;
    bool found = false;
    for (size_t i = 0; i < n && !found; i++)
      found = icontains(texts[i], q, wl);
    if (!found) return false;
    q += wl;
  }
  return true;
}

static bool keep_query(const sb_mkt_t *k, const void *arg) {
  const char *const texts[] = {k->name, k->key, k->attrs};
  return sb_words_match(arg, texts, 3);
}

size_t sb_mkts_search(const sb_mkts_t *m, const char *query, uint32_t *ids, size_t n) {
  return rank(m, keep_query, query ? query : "", ids, n);
}

/* ---- checkpoint ----------------------------------------------------------------- */

#define CK_MAGIC   "SBCK"
#define CK_VERSION 1u

static void put32(souk_buf_t *b, uint32_t v) { souk_buf_append(b, &v, 4); }
static void put64(souk_buf_t *b, int64_t v) { souk_buf_append(b, &v, 8); }
static void putstr(souk_buf_t *b, const char *s) {
  uint32_t n = (uint32_t)strlen(s);
  put32(b, n);
  souk_buf_append(b, s, n);
}

void sb_mkts_save(const sb_mkts_t *m, souk_buf_t *b) {
  souk_buf_append(b, CK_MAGIC, 4);
  put32(b, CK_VERSION);
  put32(b, 0x01020304); /* byte order: the file is read back here only */
  put64(b, m->open_hour);
  put64(b, m->data_now);
  put32(b, m->nmk);
  for (uint32_t i = 0; i < m->nmk; i++) {
    const sb_mkt_t *k = &m->mk[i];
    souk_buf_putc(b, k->used);
    if (!k->used) continue;
    putstr(b, k->key);
    putstr(b, k->attrs);
    putstr(b, k->name);
    put32(b, k->h_listings);
    put32(b, k->h_new);
    souk_buf_putc(b, (char)k->nhl);
    souk_buf_append(b, k->hl, (size_t)k->nhl * sizeof *k->hl);
    put32(b, k->nsales);
    souk_buf_append(b, k->sales, (size_t)k->nsales * sizeof *k->sales);
  }
  put32(b, (uint32_t)m->nhours);
  for (size_t i = 0; i < m->nhours; i++) {
    const hour_t *h = &m->hours[i];
    put64(b, h->hour);
    put32(b, (uint32_t)h->n);
    souk_buf_append(b, h->rows, h->n * sizeof *h->rows);
    put32(b, (uint32_t)h->nlad);
    souk_buf_append(b, h->lad, h->nlad * sizeof *h->lad);
  }
  uint32_t nss = 0;
  for (size_t i = 0; i < m->ss_cap; i++)
    nss += m->ss[i].h > 1;
  put32(b, nss);
  for (size_t i = 0; i < m->ss_cap; i++)
    if (m->ss[i].h > 1) souk_buf_append(b, &m->ss[i], sizeof m->ss[i]);
}

typedef struct rd {
  const uint8_t *p, *end;
  bool bad;
} rd_t;

static bool rd_take(rd_t *r, void *out, size_t n) {
  if (r->bad || (size_t)(r->end - r->p) < n) {
    r->bad = true;
    return false;
  }
  memcpy(out, r->p, n);
  r->p += n;
  return true;
}
static uint32_t rd32(rd_t *r) {
  uint32_t v = 0;
  rd_take(r, &v, 4);
  return v;
}
static int64_t rd64(rd_t *r) {
  int64_t v = 0;
  rd_take(r, &v, 8);
  return v;
}
static uint8_t rd8(rd_t *r) {
  uint8_t v = 0;
  rd_take(r, &v, 1);
  return v;
}
static char *rdstr(rd_t *r) {
  uint32_t n = rd32(r);
  if (r->bad || n > 4096 || (size_t)(r->end - r->p) < n) {
    r->bad = true;
    return NULL;
  }
  char *s = souk_memdup0(r->p, n);
  r->p += n;
  return s;
}
/* A count of items of size sz that must fit in what is left. */
static uint32_t rdcount(rd_t *r, size_t sz) {
  uint32_t n = rd32(r);
  if (!r->bad && (uint64_t)n * sz > (uint64_t)(r->end - r->p)) r->bad = true;
  return r->bad ? 0 : n;
}

static void reset_store(sb_mkts_t *m) {
  sb_mkts_conf_t c = m->c;
  sb_mkts_t *fresh = sb_mkts_new(&c);
  /* Free the contents, keep the handle. */
  sb_mkts_t tmp = *m;
  *m = *fresh;
  souk_free(fresh);
  sb_mkts_t *old = souk_malloc(sizeof *old);
  *old = tmp;
  sb_mkts_free(old);
}

void sb_mkts_reset(sb_mkts_t *m) { reset_store(m); }

int sb_mkts_load(sb_mkts_t *m, const void *data, size_t len) {
  rd_t r = {data, (const uint8_t *)data + len, false};
  char magic[4];
  if (!rd_take(&r, magic, 4) || memcmp(magic, CK_MAGIC, 4) != 0) return SOUK_EPARSE;
  uint32_t ver = rd32(&r), order = rd32(&r);
  if (r.bad) return SOUK_EPARSE;
  if (ver != CK_VERSION || order != 0x01020304) return SOUK_ENOTSUP;
  m->open_hour = rd64(&r);
  m->data_now = rd64(&r);
  uint32_t nmk = rdcount(&r, 1);
  for (uint32_t i = 0; i < nmk && !r.bad; i++) {
    bool used = rd8(&r) != 0;
    if (!used) {
      /* Keep ids as they were: closed hours refer to them. */
      if (m->nmk == m->capmk) {
        m->capmk = m->capmk ? m->capmk * 2 : 256;
        m->mk = souk_reallocarray(m->mk, m->capmk, sizeof *m->mk);
      }
      memset(&m->mk[m->nmk], 0, sizeof *m->mk);
      push_free(&m->free_mk, &m->nfree_mk, &m->capfree_mk, m->nmk++);
      continue;
    }
    char *key = rdstr(&r), *attrs = rdstr(&r), *name = rdstr(&r);
    if (r.bad || sb_mkts_find(m, key, attrs) != UINT32_MAX) {
      r.bad = true;
      souk_free(key);
      souk_free(attrs);
      souk_free(name);
      break;
    }
    /* Interning appends when no id is free, so ids are kept. */
    uint32_t saved_free = m->nfree_mk;
    m->nfree_mk = 0;
    uint32_t mid = sb_mkts_intern(m, key, attrs, name);
    m->nfree_mk = saved_free;
    souk_free(key);
    souk_free(attrs);
    souk_free(name);
    sb_mkt_t *k = &m->mk[mid];
    k->h_listings = rd32(&r);
    k->h_new = rd32(&r);
    uint8_t nhl = rd8(&r);
    if (nhl > m->c.ladder_size) {
      r.bad = true;
      break;
    }
    if (nhl) {
      k->hl = souk_calloc(m->c.ladder_size, sizeof *k->hl);
      k->caphl = (uint8_t)m->c.ladder_size;
      k->nhl = nhl;
      rd_take(&r, k->hl, (size_t)nhl * sizeof *k->hl);
    }
    uint32_t ns = rdcount(&r, sizeof(sb_sale_t));
    if (ns) {
      k->sales = souk_calloc(ns, sizeof *k->sales);
      k->capsales = k->nsales = ns;
      rd_take(&r, k->sales, (size_t)ns * sizeof *k->sales);
      m->nsales += ns;
    }
  }
  uint32_t nh = rdcount(&r, 16);
  for (uint32_t i = 0; i < nh && !r.bad; i++) {
    hour_t h = {0};
    h.hour = rd64(&r);
    h.n = rdcount(&r, sizeof(hrow_t));
    h.rows = souk_calloc(h.n ? h.n : 1, sizeof *h.rows);
    rd_take(&r, h.rows, h.n * sizeof *h.rows);
    h.nlad = rdcount(&r, 8);
    h.lad = souk_calloc(h.nlad ? h.nlad : 1, sizeof *h.lad);
    rd_take(&r, h.lad, h.nlad * sizeof *h.lad);
    for (size_t j = 0; j < h.n && !r.bad; j++) {
      const hrow_t *row = &h.rows[j];
      if (!sb_mkts_used(m, row->mid) || row->nlad > SB_LADDER_MAX ||
          (size_t)row->lad_off + row->nlad > h.nlad)
        r.bad = true;
      else
        m->mk[row->mid].refs++;
    }
    m->hours = souk_reallocarray(m->hours, m->nhours + 1, sizeof *m->hours);
    m->hours[m->nhours++] = h;
  }
  uint32_t nss = rdcount(&r, sizeof(seen_sale_t));
  for (uint32_t i = 0; i < nss && !r.bad; i++) {
    seen_sale_t s;
    rd_take(&r, &s, sizeof s);
    if (s.h > 1) ss_put(m, s.h, s.ts);
  }
  if (r.bad || r.p != r.end) {
    reset_store(m);
    return SOUK_EPARSE;
  }
  /* The window may have shrunk since the checkpoint was made. */
  prune(m);
  return 0;
}
