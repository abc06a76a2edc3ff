/* How long the Market Sim dashboard takes to build a page from SQLite with
 * 10,000 players: the read (one read-only transaction: settings, price
 * snapshot, the page's rows) and the HTML rendering, measured apart, for
 * each page kind, on a live-priced guild and on a simulated one.
 *
 *   build/bench/dashboard_bench [players] [iterations]
 *
 * Prints a table of median and p95 milliseconds per page and writes the
 * figures as JSON to bench/out/dashboard_bench.json.  The database is a
 * fresh SQLite file in a temp dir (WAL, the default store settings). */
#include "../src/modules/market/dashboard.c"
#include "../src/modules/market/dashboard_html.c"
#include "../src/modules/market/fmt.c"
#include "../src/modules/market/ledger.c"
#include "../src/modules/market/money.c"
#include "../src/modules/market/players.c"
#include "../src/modules/market/price_sim.c"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifndef SOUK_BENCH_OUT_DIR
#define SOUK_BENCH_OUT_DIR "bench/out"
#endif

#define LIVE_GUILD INT64_C(100000000000000001)
#define SIM_GUILD  INT64_C(100000000000000002)
#define BENCH_NSYM 40

static souk_store_t *g_store;
market_state_t market_g; /* the dashboard reads its store there */

static int64_t g_players = 10000;
static int g_iters = 50;
static int64_t g_now;

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static const char *sym_of(size_t i) {
  const char *s = market_sim_symbol(i % market_sim_symbol_count(), NULL, NULL);
  return s ? s : "AAPL";
}

typedef struct seed {
  int64_t guild;
  market_source_t source;
} seed_t;

static int step_ok(souk_stmt_t *s) { return souk_stmt_step(s) < 0 ? SOUK_EIO : 0; }

/* Players 1..g_players, each with cash and three holdings; player 1 also
 * has a year of history and twenty trades. */
static int seed_fn(souk_db_t *db, void *ud) {
  const seed_t *sd = ud;
  market_settings_t set;
  market_settings_defaults(&set, sd->guild, sd->source);
  set.dashboard_public = true;
  int rc = market_settings_set(db, &set, g_now);
  if (rc) return rc;
  souk_stmt_t *a, *h, *hist, *tx;
  if ((rc = souk_db_prepare(db,
                            "INSERT INTO market_accounts (guild_id, season, user_id, cash_cents, "
                            "initial_cents, last_value_cents, created_at) VALUES (?, 1, ?, ?, "
                            "100000000, 100000000, ?)",
                            &a)))
    return rc;
  if ((rc = souk_db_prepare(db,
                            "INSERT INTO market_holdings (guild_id, season, user_id, symbol, "
                            "shares, cost_cents) VALUES (?, 1, ?, ?, ?, ?)",
                            &h)))
    return rc;
  for (int64_t u = 1; rc == 0 && u <= g_players; u++) {
    souk_stmt_reset(a);
    souk_stmt_bind_int64(a, 1, sd->guild);
    souk_stmt_bind_int64(a, 2, u);
    souk_stmt_bind_int64(a, 3, 50000000 + (u * 7919) % 40000000);
    souk_stmt_bind_int64(a, 4, g_now);
    rc = step_ok(a);
    /* Every player has a display name, which each page reads. */
    char name[32];
    snprintf(name, sizeof name, "Player %" PRId64, u);
    if (rc == 0) rc = market_player_name_put(db, sd->guild, u, name, g_now);
    for (int k = 0; rc == 0 && k < 3; k++) {
      souk_stmt_reset(h);
      souk_stmt_bind_int64(h, 1, sd->guild);
      souk_stmt_bind_int64(h, 2, u);
      souk_stmt_bind_text(h, 3, sym_of((size_t)(u * 3 + k) % BENCH_NSYM), SIZE_MAX);
      souk_stmt_bind_int64(h, 4, 10 + (u + k) % 90);
      souk_stmt_bind_int64(h, 5, 100000 * (10 + (u + k) % 90));
      rc = step_ok(h);
    }
  }
  souk_stmt_finalize(a);
  souk_stmt_finalize(h);
  if (rc) return rc;
  if ((rc = souk_db_prepare(db,
                            "INSERT INTO market_history (guild_id, season, user_id, day, "
                            "value_cents, created_at) VALUES (?, 1, 1, ?, ?, ?)",
                            &hist)))
    return rc;
  for (int d = 0; rc == 0 && d < 365; d++) {
    souk_stmt_reset(hist);
    souk_stmt_bind_int64(hist, 1, sd->guild);
    souk_stmt_bind_int64(hist, 2, market_day_of(g_now - (int64_t)(365 - d) * 86400000));
    souk_stmt_bind_int64(hist, 3, 100000000 + (d * 104729) % 9000000 - 4500000);
    souk_stmt_bind_int64(hist, 4, g_now);
    rc = step_ok(hist);
  }
  souk_stmt_finalize(hist);
  if (rc) return rc;
  if ((rc = souk_db_prepare(db,
                            "INSERT INTO market_transactions (guild_id, season, user_id, side, "
                            "symbol, shares, price_micro, amount_cents, commission_cents, "
                            "cash_before, cash_after, realised_cents, price_source, "
                            "price_time_ms, created_at, idem_key) VALUES (?, 1, 1, 'buy', ?, "
                            "10, 100000000, 100000, 0, 100000000, 99900000, 0, ?, ?, ?, ?)",
                            &tx)))
    return rc;
  for (int i = 0; rc == 0 && i < 20; i++) {
    char key[64];
    snprintf(key, sizeof key, "bench-%" PRId64 "-%d", sd->guild, i);
    souk_stmt_reset(tx);
    souk_stmt_bind_int64(tx, 1, sd->guild);
    souk_stmt_bind_text(tx, 2, sym_of((size_t)i), SIZE_MAX);
    souk_stmt_bind_text(tx, 3, sd->source == MARKET_SRC_SIM ? "sim" : "live", SIZE_MAX);
    souk_stmt_bind_int64(tx, 4, g_now - 3600000);
    souk_stmt_bind_int64(tx, 5, g_now - 3600000 + i);
    souk_stmt_bind_text(tx, 6, key, SIZE_MAX);
    rc = step_ok(tx);
  }
  souk_stmt_finalize(tx);
  return rc;
}

static int prices_fn(souk_db_t *db, void *ud) {
  (void)ud;
  market_last_price_t p[BENCH_NSYM];
  memset(p, 0, sizeof p);
  for (size_t i = 0; i < BENCH_NSYM; i++) {
    snprintf(p[i].symbol, sizeof p[i].symbol, "%s", sym_of(i));
    p[i].price_micro = 50000000 + (int64_t)i * 1234567;
    p[i].prev_close_micro = p[i].price_micro - 100000;
    snprintf(p[i].source, sizeof p[i].source, "finnhub");
    p[i].quote_time_ms = g_now - 60000;
    p[i].fetched_ms = g_now - 30000;
  }
  return market_last_price_save(db, p, BENCH_NSYM);
}

static int dcmp(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

typedef struct figure {
  const char *name;
  double read_med, read_p95, render_med, total_med, total_p95;
  size_t bytes;
} figure_t;

static const market_dash_board_t *g_board; /* a cached ranking to cut pages from, or NULL */

static figure_t measure(const char *name, market_dash_kind_t kind, int64_t guild, int64_t user,
                        int64_t pg, market_rank_by_t by) {
  double *rd = calloc((size_t)g_iters, sizeof *rd), *rn = calloc((size_t)g_iters, sizeof *rn),
         *tt = calloc((size_t)g_iters, sizeof *tt);
  size_t bytes = 0;
  for (int i = 0; i < g_iters; i++) {
    market_dash_data_t d;
    memset(&d, 0, sizeof d);
    d.path.kind = kind;
    d.path.guild_id = guild;
    d.path.user_id = user;
    d.page = pg;
    d.by = by;
    d.now_ms = g_now;
    d.sim = market_g.sim;
    d.board = g_board;
    double t0 = now_ms();
    int rc = souk_store_read(g_store, dash_read, &d);
    double t1 = now_ms();
    if (rc || d.status != 200) {
      fprintf(stderr, "%s: read failed: %s (status %d)\n", name, souk_strerror(rc), d.status);
      exit(1);
    }
    souk_buf_t b;
    souk_buf_init(&b);
    market_dash_render(&b, &d);
    double t2 = now_ms();
    bytes = b.len;
    souk_buf_free(&b);
    dash_data_reset(&d);
    rd[i] = t1 - t0;
    rn[i] = t2 - t1;
    tt[i] = t2 - t0;
  }
  qsort(rd, (size_t)g_iters, sizeof *rd, dcmp);
  qsort(rn, (size_t)g_iters, sizeof *rn, dcmp);
  qsort(tt, (size_t)g_iters, sizeof *tt, dcmp);
  size_t p95 = (size_t)((g_iters - 1) * 95 / 100);
  figure_t f = {name, rd[g_iters / 2], rd[p95], rn[g_iters / 2], tt[g_iters / 2], tt[p95], bytes};
  printf("%-34s %9.2f %9.2f %9.3f %9.2f %9.2f %8zu\n", name, f.read_med, f.read_p95, f.render_med,
         f.total_med, f.total_p95, f.bytes);
  free(rd);
  free(rn);
  free(tt);
  return f;
}

/* A page cut from a ranking the dashboard keeps (as its cache does for
 * MARKET_DASH_BOARD_TTL_MS): the read is then only the guild's settings. */
static figure_t measure_cached(const char *name, int64_t guild, int64_t pg, market_rank_by_t by) {
  market_dash_data_t d;
  memset(&d, 0, sizeof d);
  d.path.kind = MARKET_DASH_BOARD;
  d.path.guild_id = guild;
  d.page = 1;
  d.by = by;
  d.now_ms = g_now;
  d.sim = market_g.sim;
  if (souk_store_read(g_store, dash_read, &d) != 0 || !d.fresh) exit(1);
  market_dash_board_t *b = d.fresh;
  d.fresh = NULL;
  dash_data_reset(&d);
  g_board = b;
  figure_t f = measure(name, MARKET_DASH_BOARD, guild, 0, pg, by);
  g_board = NULL;
  dash_board_free(b);
  return f;
}

int main(int argc, char **argv) {
  if (argc > 1) g_players = atoll(argv[1]);
  if (argc > 2) g_iters = atoi(argv[2]);
  if (g_players < 1 || g_iters < 1) {
    fprintf(stderr, "usage: %s [players] [iterations]\n", argv[0]);
    return 2;
  }
  souk_log_set_level(SOUK_LOG_WARN);
  g_now = (int64_t)souk_unix_ms();
  market_sim_defaults(&market_g.sim);
  market_g.sim.seed = 1;
  char dir[] = "/tmp/souk-dash-bench-XXXXXX";
  if (!mkdtemp(dir)) return 1;
  souk_store_conf_t c;
  souk_store_conf_defaults(&c);
  c.backup_before_migrate = false;
  if (souk_store_open(&c, dir, &g_store) != 0 ||
      souk_store_migrate_module(g_store, "market", market_migrations, NULL) != 0)
    return 1;
  market_g.store = g_store;
  double t0 = now_ms();
  seed_t live = {LIVE_GUILD, MARKET_SRC_LIVE}, sim = {SIM_GUILD, MARKET_SRC_SIM};
  if (souk_store_tx(g_store, seed_fn, &live) || souk_store_tx(g_store, seed_fn, &sim) ||
      souk_store_tx(g_store, prices_fn, NULL)) {
    fprintf(stderr, "seeding failed\n");
    return 1;
  }
  printf("dashboard_bench: %" PRId64 " players x 3 holdings per guild, %d iterations, SQLite "
         "(seeded in %.0f ms)\n",
         g_players, g_iters, now_ms() - t0);
  printf("%-34s %9s %9s %9s %9s %9s %8s\n", "page", "read med", "read p95", "render", "total med",
         "total p95", "bytes");
  int64_t mid = (g_players / MARKET_DASH_PAGE_SIZE) / 2 + 1;
  figure_t f[] = {
      measure("live leaderboard p1 (value)", MARKET_DASH_BOARD, LIVE_GUILD, 0, 1,
              MARKET_RANK_VALUE),
      measure("live leaderboard middle (roi)", MARKET_DASH_BOARD, LIVE_GUILD, 0, mid,
              MARKET_RANK_ROI),
      measure("live portfolio (365-day chart)", MARKET_DASH_USER, LIVE_GUILD, 1, 1,
              MARKET_RANK_VALUE),
      measure_cached("live leaderboard p1, cached ranking", LIVE_GUILD, 1, MARKET_RANK_VALUE),
      measure_cached("live leaderboard middle, cached", LIVE_GUILD, mid, MARKET_RANK_ROI),
      measure_cached("sim leaderboard p1, cached ranking", SIM_GUILD, 1, MARKET_RANK_VALUE),
      measure("live guild prices", MARKET_DASH_GPRICES, LIVE_GUILD, 0, 1, MARKET_RANK_VALUE),
      measure("sim leaderboard p1 (value)", MARKET_DASH_BOARD, SIM_GUILD, 0, 1, MARKET_RANK_VALUE),
      measure("sim portfolio (365-day chart)", MARKET_DASH_USER, SIM_GUILD, 1, 1,
              MARKET_RANK_VALUE),
      measure("price cache (all symbols)", MARKET_DASH_PRICES, 0, 0, 1, MARKET_RANK_VALUE),
  };
  printf("(milliseconds; read = one read-only transaction on the calling thread, render = HTML "
         "on the loop thread)\n");
  char path[512];
  snprintf(path, sizeof path, "%s/dashboard_bench.json", SOUK_BENCH_OUT_DIR);
  FILE *out = fopen(path, "w");
  if (out) {
    fprintf(out, "{\"players\": %" PRId64 ", \"iterations\": %d, \"pages\": [", g_players, g_iters);
    for (size_t i = 0; i < sizeof f / sizeof *f; i++)
      fprintf(out,
              "%s{\"page\": \"%s\", \"read_median_ms\": %.3f, \"read_p95_ms\": %.3f, "
              "\"render_median_ms\": %.3f, \"total_median_ms\": %.3f, \"total_p95_ms\": %.3f, "
              "\"bytes\": %zu}",
              i ? ", " : "", f[i].name, f[i].read_med, f[i].read_p95, f[i].render_med,
              f[i].total_med, f[i].total_p95, f[i].bytes);
    fprintf(out, "]}\n");
    fclose(out);
  }
  souk_store_close(g_store);
  char cmd[128];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  return system(cmd) == 0 ? 0 : 1;
}
