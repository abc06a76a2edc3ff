/* The simulated market: a seeded random walk per symbol, so a guild can
 * play (and `souk console` works) with no provider key and no network.
 *
 * The walk is in log-price, one step per step_ms.  Computing the price at
 * an arbitrary time by summing every step since an epoch would cost
 * millions of steps, so the walk is built by midpoint displacement (a
 * Brownian bridge over 2^36 steps): the sum over a block of 2^L steps is
 * split into its two halves by a hashed normal draw, and the sum of the
 * steps before index n is found by walking down the 36 levels.  The result
 * is a true random walk (every block has the right variance, and
 * neighbouring times share almost all their levels, so consecutive prices
 * differ by one step's move) computed with a hash, integer adds and one
 * division: the same seed, symbol and time give the same price on every
 * machine.  Only the per-level standard deviations use sqrt(), which IEEE
 * 754 rounds exactly, so they too are the same everywhere. */
#include "price.h"
#include "souk/err.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

/* Start prices: approximate closes of the first trading days of 2024, the
 * walk's epoch.  Sorted by symbol for binary search. */
static const struct {
  const char *sym;
  int64_t start; /* micro-dollars */
  const char *name;
} market_sim_symbols[] = {
    {"AAPL", 185640000, "Apple Inc."},
    {"ABBV", 154970000, "AbbVie Inc."},
    {"ADBE", 580070000, "Adobe Inc."},
    {"AMD", 138580000, "Advanced Micro Devices, Inc."},
    {"AMZN", 149930000, "Amazon.com, Inc."},
    {"BA", 251760000, "The Boeing Company"},
    {"BAC", 33670000, "Bank of America Corporation"},
    {"BRK.B", 356660000, "Berkshire Hathaway Inc. Class B"},
    {"COST", 660080000, "Costco Wholesale Corporation"},
    {"CRM", 263140000, "Salesforce, Inc."},
    {"CSCO", 50520000, "Cisco Systems, Inc."},
    {"CVX", 149160000, "Chevron Corporation"},
    {"DIS", 90290000, "The Walt Disney Company"},
    {"GOOGL", 138170000, "Alphabet Inc. Class A"},
    {"GS", 385770000, "The Goldman Sachs Group, Inc."},
    {"HD", 346550000, "The Home Depot, Inc."},
    {"IBM", 163550000, "International Business Machines Corporation"},
    {"INTC", 50250000, "Intel Corporation"},
    {"JNJ", 156740000, "Johnson & Johnson"},
    {"JPM", 170100000, "JPMorgan Chase & Co."},
    {"KO", 58930000, "The Coca-Cola Company"},
    {"MA", 426510000, "Mastercard Incorporated"},
    {"MCD", 296510000, "McDonald's Corporation"},
    {"META", 346290000, "Meta Platforms, Inc."},
    {"MSFT", 370870000, "Microsoft Corporation"},
    {"NFLX", 468500000, "Netflix, Inc."},
    {"NKE", 108570000, "NIKE, Inc."},
    {"NVDA", 481680000, "NVIDIA Corporation"},
    {"ORCL", 105430000, "Oracle Corporation"},
    {"PEP", 169840000, "PepsiCo, Inc."},
    {"PFE", 28790000, "Pfizer Inc."},
    {"PG", 146540000, "The Procter & Gamble Company"},
    {"QQQ", 402590000, "Invesco QQQ Trust"},
    {"SPY", 472650000, "SPDR S&P 500 ETF Trust"},
    {"T", 16780000, "AT&T Inc."},
    {"TSLA", 248420000, "Tesla, Inc."},
    {"UBER", 61570000, "Uber Technologies, Inc."},
    {"UNH", 526470000, "UnitedHealth Group Incorporated"},
    {"V", 260350000, "Visa Inc."},
    {"VZ", 37700000, "Verizon Communications Inc."},
    {"WFC", 49220000, "Wells Fargo & Company"},
    {"WMT", 157650000, "Walmart Inc."},
    {"XOM", 99980000, "Exxon Mobil Corporation"},
};

#define NSYM     (sizeof market_sim_symbols / sizeof market_sim_symbols[0])
#define LEVELS   36
#define EPOCH_MS 1704067200000LL /* 2024-01-01T00:00:00Z */
#define SQUASH   1500000LL       /* prices stay within exp(+-1.5)-ish of the start */

void market_sim_defaults(market_sim_conf_t *c) {
  memset(c, 0, sizeof *c);
  c->step_ms = 60000;
  c->daily_vol_bp = 130;
}

size_t market_sim_symbol_count(void) { return NSYM; }

const char *market_sim_symbol(size_t i, int64_t *start_micro, const char **name) {
  if (i >= NSYM) return NULL;
  if (start_micro) *start_micro = market_sim_symbols[i].start;
  if (name) *name = market_sim_symbols[i].name;
  return market_sim_symbols[i].sym;
}

static int find(const char *symbol) {
  if (!symbol) return -1;
  size_t lo = 0, hi = NSYM;
  while (lo < hi) {
    size_t mid = (lo + hi) / 2;
    int c = strcmp(symbol, market_sim_symbols[mid].sym);
    if (c == 0) return (int)mid;
    if (c < 0)
      hi = mid;
    else
      lo = mid + 1;
  }
  return -1;
}

bool market_sim_known(const char *symbol) { return find(symbol) >= 0; }

static uint64_t mix64(uint64_t x) {
  /* splitmix64's finaliser. */
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

static uint64_t fnv1a(const char *s) {
  uint64_t h = 0xcbf29ce484222325ULL;
  for (; *s; s++)
    h = (h ^ (unsigned char)*s) * 0x100000001b3ULL;
  return h;
}

/* An approximately normal draw with standard deviation sd for (key, level,
 * index): the sum of four uniform 32-bit values (Irwin-Hall), centred. */
static int64_t noise(uint64_t key, int level, uint64_t index, int64_t sd) {
  uint64_t a = mix64(key ^ mix64(((uint64_t)level << 56) ^ index));
  uint64_t b = mix64(a ^ 0x5851f42d4c957f2dULL);
  int64_t s = (int64_t)(a & 0xffffffffu) + (int64_t)(a >> 32) + (int64_t)(b & 0xffffffffu) +
              (int64_t)(b >> 32) - ((int64_t)1 << 33);
  /* The sum's standard deviation is 2^32 * sqrt(1/3) = 2479700525; shift
   * both down by 8 bits so s * sd cannot overflow for the allowed sd. */
  return (s >> 8) * sd / (2479700525LL >> 8);
}

typedef struct walk {
  uint64_t key;
  int64_t sd_top;               /* sd of the sum of all 2^LEVELS steps */
  int64_t sd_split[LEVELS + 1]; /* sd of the displacement when splitting level L */
} walk_t;

static void walk_init(walk_t *w, const market_sim_conf_t *c, const char *symbol) {
  w->key = mix64(c->seed ^ fnv1a(symbol));
  double vol = (double)c->daily_vol_bp * 100.0; /* micro-log per day */
  double var = vol * vol * (double)c->step_ms / 86400000.0;
  w->sd_top = (int64_t)(sqrt(var * ldexp(1.0, LEVELS)) + 0.5);
  /* Given the sum S of 2m steps, each half is S/2 plus a draw of variance
   * m * var / 2 (a Brownian bridge's midpoint). */
  w->sd_split[0] = 0;
  for (int l = 1; l <= LEVELS; l++)
    w->sd_split[l] = (int64_t)(sqrt(var * ldexp(1.0, l - 2)) + 0.5);
}

/* Sum of the steps before index n (0 <= n < 2^LEVELS). */
static int64_t walk_prefix(const walk_t *w, uint64_t n) {
  int64_t s = noise(w->key, LEVELS + 1, 0, w->sd_top), acc = 0;
  for (int l = LEVELS; l >= 1; l--) {
    int64_t left = s / 2 + noise(w->key, l, n >> l, w->sd_split[l]);
    if ((n >> (l - 1)) & 1) {
      acc += left;
      s -= left;
    } else {
      s = left;
    }
  }
  return acc;
}

static int64_t floor_div64(int64_t a, int64_t b) {
  int64_t q = a / b;
  return (a % b != 0 && ((a < 0) != (b < 0))) ? q - 1 : q;
}

/* Price at step index idx (already offset so the epoch is 2^(LEVELS-1)). */
static int64_t price_at_index(const walk_t *w, int64_t start, uint64_t idx) {
  int64_t d = walk_prefix(w, idx) - walk_prefix(w, (uint64_t)1 << (LEVELS - 1));
  /* Squash the log deviation into (-SQUASH, SQUASH): near 0 it is the walk
   * itself, far out it flattens, so no symbol drifts to 0 or to the moon
   * over a long season. */
  if (d > 1000000000000LL) d = 1000000000000LL;
  if (d < -1000000000000LL) d = -1000000000000LL;
  int64_t ad = d < 0 ? -d : d;
  d = d * SQUASH / (SQUASH + ad);
  /* exp(d) by its (1,1) Pade approximant (1 + d/2) / (1 - d/2): positive,
   * increasing and exactly reciprocal for +-d.  Rounded half up once. */
  int64_t num = start * (2000000 + d), den = 2000000 - d;
  int64_t p = (2 * num + den) / (2 * den);
  return p > 0 ? p : 1;
}

static int index_of(const market_sim_conf_t *c, int64_t t_ms, uint64_t *idx) {
  int64_t k = floor_div64(t_ms - EPOCH_MS, (int64_t)c->step_ms) + ((int64_t)1 << (LEVELS - 1));
  if (k < 0 || k >= ((int64_t)1 << LEVELS)) return SOUK_ERANGE;
  *idx = (uint64_t)k;
  return 0;
}

int market_sim_quote(const market_sim_conf_t *c, const char *symbol, int64_t t_ms,
                     market_quote_t *out) {
  if (!c || c->step_ms == 0 || c->step_ms > 86400000 || c->daily_vol_bp > 2000) return SOUK_EINVAL;
  int i = find(symbol);
  if (i < 0) return SOUK_ENOTFOUND;
  walk_t w;
  walk_init(&w, c, symbol);
  uint64_t idx, pidx;
  int64_t day_start = floor_div64(t_ms, 86400000) * 86400000;
  if (index_of(c, t_ms, &idx) != 0 || index_of(c, day_start - 1, &pidx) != 0) return SOUK_ERANGE;
  memset(out, 0, sizeof *out);
  snprintf(out->symbol, sizeof out->symbol, "%s", symbol);
  out->price_micro = price_at_index(&w, market_sim_symbols[i].start, idx);
  out->prev_close_micro = price_at_index(&w, market_sim_symbols[i].start, pidx);
  out->quote_time_ms = t_ms - (t_ms - EPOCH_MS) % (int64_t)c->step_ms;
  if ((t_ms - EPOCH_MS) % (int64_t)c->step_ms < 0) out->quote_time_ms -= (int64_t)c->step_ms;
  out->source = "simulated";
  return 0;
}
