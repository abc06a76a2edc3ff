/* The Market Sim's web dashboard: path and query parsing, HTML escaping of
 * every value that comes from data, the SVG value chart for 0, 1 and many
 * points, private guilds answering exactly like unknown ones, leaderboard
 * pagination bounds, and the pages served over HTTP with their security
 * headers.  The data comes from a real SQLite store in a temp dir. */
/* cmocka.h needs these headers included before it. */
/* clang-format off */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
/* clang-format on */

#include "../../net/httptest.h"
#include "core/metrics.h"
#include "modules/market/dashboard.c"
#include "modules/market/dashboard_html.c"
#include "modules/market/fmt.c"
#include "modules/market/ledger.c"
#include "modules/market/money.c"
#include "modules/market/players.h"
#include "modules/market/price_sim.c"
#include "net/httpd.h"
#include "souk/http.h"
#include "souk/log.h"

#define PUB_GUILD    INT64_C(111111111111111111)
#define PRIV_GUILD   INT64_C(222222222222222222)
#define NOGAME_GUILD INT64_C(333333333333333333)
#define NOW_MS       INT64_C(1763800000000) /* 2025-11-22 */

/* The module's state (market.c): the dashboard reads its store and its
 * sim settings there; each test hands it a throwaway store. */
static souk_store_t *g_store;
market_state_t market_g;

static char g_dir[128];

/* ---- seeding -------------------------------------------------------------- */

typedef struct seed {
  int64_t guild;
  bool pub;
  int64_t accounts; /* users 1..accounts, cash decreasing with the id */
  bool settings;    /* write a settings row */
  market_source_t source;
} seed_t;

static int exec_i(souk_db_t *db, const char *sql, const int64_t *v, int nv) {
  souk_stmt_t *s;
  int rc = souk_db_prepare(db, sql, &s);
  if (rc) return rc;
  for (int i = 0; i < nv; i++)
    souk_stmt_bind_int64(s, i + 1, v[i]);
  rc = souk_stmt_step(s);
  souk_stmt_finalize(s);
  return rc < 0 ? rc : 0;
}

static int seed_fn(souk_db_t *db, void *ud) {
  const seed_t *sd = ud;
  if (sd->settings) {
    market_settings_t s;
    market_settings_defaults(&s, sd->guild, sd->source);
    s.dashboard_public = sd->pub;
    int rc = market_settings_set(db, &s, NOW_MS);
    if (rc) return rc;
  }
  souk_stmt_t *s;
  int rc = souk_db_prepare(db,
                           "INSERT INTO market_accounts (guild_id, season, user_id, cash_cents, "
                           "initial_cents, last_value_cents, created_at) VALUES (?, 1, ?, ?, "
                           "100000000, ?, ?)",
                           &s);
  if (rc) return rc;
  for (int64_t u = 1; rc == 0 && u <= sd->accounts; u++) {
    int64_t cash = 100000000 + (sd->accounts - u) * 100; /* user 1 richest */
    souk_stmt_reset(s);
    souk_stmt_bind_int64(s, 1, sd->guild);
    souk_stmt_bind_int64(s, 2, u);
    souk_stmt_bind_int64(s, 3, cash);
    souk_stmt_bind_int64(s, 4, cash);
    souk_stmt_bind_int64(s, 5, NOW_MS);
    rc = souk_stmt_step(s) < 0 ? SOUK_EIO : 0;
  }
  souk_stmt_finalize(s);
  return rc;
}

static void seed_src(int64_t guild, bool pub, int64_t accounts, market_source_t src) {
  seed_t sd = {guild, pub, accounts, true, src};
  assert_int_equal(souk_store_tx(g_store, seed_fn, &sd), 0);
}

/* A guild on live prices (valued at the persisted last prices). */
static void seed(int64_t guild, bool pub, int64_t accounts) {
  seed_t sd = {guild, pub, accounts, true, MARKET_SRC_LIVE};
  assert_int_equal(souk_store_tx(g_store, seed_fn, &sd), 0);
}

typedef struct price_seed {
  const market_last_price_t *p;
  size_t n;
} price_seed_t;

static int prices_fn(souk_db_t *db, void *ud) {
  const price_seed_t *ps = ud;
  return market_last_price_save(db, ps->p, ps->n);
}

static void save_price(const char *sym, int64_t micro, const char *source, int64_t t) {
  market_last_price_t p;
  memset(&p, 0, sizeof p);
  snprintf(p.symbol, sizeof p.symbol, "%s", sym);
  p.price_micro = micro;
  snprintf(p.source, sizeof p.source, "%s", source);
  p.quote_time_ms = t;
  p.fetched_ms = t;
  price_seed_t ps = {&p, 1};
  assert_int_equal(souk_store_tx(g_store, prices_fn, &ps), 0);
}

static void buy_src(int64_t guild, int64_t user, const char *sym, int64_t shares, int64_t price,
                    const char *key, market_source_t src) {
  market_settings_t defs;
  market_settings_defaults(&defs, 0, MARKET_SRC_SIM);
  market_trade_req_t r = {.guild_id = guild,
                          .user_id = user,
                          .symbol = sym,
                          .side = MARKET_BUY,
                          .mode = MARKET_BY_SHARES,
                          .shares = shares,
                          .price_micro = price,
                          .source = src,
                          .price_time_ms = NOW_MS - 1000,
                          .idem_key = key,
                          .now_ms = NOW_MS - 1000,
                          .defaults = &defs};
  market_trade_t t;
  assert_int_equal(market_trade_tx(g_store, &r, &t), 0);
  assert_int_equal(t.refusal, MARKET_TRADE_OK);
}

static void buy(int64_t guild, int64_t user, const char *sym, int64_t shares, int64_t price,
                const char *key) {
  buy_src(guild, user, sym, shares, price, key, MARKET_SRC_LIVE);
}

static int history_fn(souk_db_t *db, void *ud) {
  return exec_i(db,
                "INSERT INTO market_history (guild_id, season, user_id, day, value_cents, "
                "created_at) VALUES (?, 1, ?, ?, ?, ?)",
                ud, 5);
}

static void history(int64_t guild, int64_t user, int64_t day, int64_t value) {
  int64_t v[] = {guild, user, day, value, NOW_MS};
  assert_int_equal(souk_store_tx(g_store, history_fn, v), 0);
}

/* Read and render a page as the route would; returns the status. */
static int page(market_dash_kind_t kind, int64_t guild, int64_t user, int64_t pg,
                market_rank_by_t by, souk_buf_t *out) {
  market_dash_data_t d;
  memset(&d, 0, sizeof d);
  d.path.kind = kind;
  d.path.guild_id = guild;
  d.path.user_id = user;
  d.page = pg;
  d.by = by;
  d.now_ms = NOW_MS;
  d.sim = market_g.sim;
  assert_int_equal(souk_store_read(g_store, dash_read, &d), 0);
  souk_buf_init(out);
  int code = market_dash_render(out, &d);
  dash_data_reset(&d);
  return code;
}

static size_t count(const char *hay, const char *needle) {
  size_t n = 0;
  for (const char *p = hay; (p = strstr(p, needle)) != NULL; p += strlen(needle))
    n++;
  return n;
}

/* ---- fixtures ------------------------------------------------------------- */

static int setup(void **state) {
  (void)state;
  snprintf(g_dir, sizeof g_dir, "/tmp/souk-dash-XXXXXX");
  assert_non_null(mkdtemp(g_dir));
  souk_store_conf_t c;
  souk_store_conf_defaults(&c);
  c.backup_before_migrate = false;
  assert_int_equal(souk_store_open(&c, g_dir, &g_store), 0);
  assert_int_equal(souk_store_migrate_module(g_store, "market", market_migrations, NULL), 0);
  market_g.store = g_store;
  market_sim_defaults(&market_g.sim);
  market_g.sim.seed = 1;
  market_g.started = true;
  return 0;
}

static int teardown(void **state) {
  (void)state;
  souk_store_close(g_store);
  g_store = NULL;
  market_g.store = NULL;
  char cmd[200];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_dir);
  assert_int_equal(system(cmd), 0);
  return 0;
}

/* ---- parsing --------------------------------------------------------------- */

static void test_paths(void **state) {
  (void)state;
  market_dash_path_t p;
  const char *what;
  assert_int_equal(dash_parse_path("/market", &p, &what), 0);
  assert_int_equal(p.kind, MARKET_DASH_INDEX);
  assert_int_equal(dash_parse_path("/market/", &p, &what), 0);
  assert_int_equal(p.kind, MARKET_DASH_INDEX);
  assert_int_equal(dash_parse_path("/market/static/style.css", &p, &what), 0);
  assert_int_equal(p.kind, MARKET_DASH_CSS);
  assert_int_equal(dash_parse_path("/market/prices", &p, &what), 0);
  assert_int_equal(p.kind, MARKET_DASH_PRICES);
  assert_int_equal(dash_parse_path("/market/123", &p, &what), 0);
  assert_int_equal(p.kind, MARKET_DASH_BOARD);
  assert_int_equal(p.guild_id, 123);
  assert_int_equal(dash_parse_path("/market/123/", &p, &what), 0);
  assert_int_equal(p.kind, MARKET_DASH_BOARD);
  assert_int_equal(dash_parse_path("/market/9223372036854775807/user/42", &p, &what), 0);
  assert_int_equal(p.kind, MARKET_DASH_USER);
  assert_true(p.guild_id == INT64_MAX);
  assert_int_equal(p.user_id, 42);
  assert_int_equal(dash_parse_path("/market/5/prices", &p, &what), 0);
  assert_int_equal(p.kind, MARKET_DASH_GPRICES);
  /* Not ids: 400 with a message that says so. */
  const char *bad_ids[] = {"/market/abc",
                           "/market/0",
                           "/market/-5",
                           "/market/9223372036854775808",
                           "/market/99999999999999999999",
                           "/market/12a",
                           "/market/<script>",
                           "/market/ 1",
                           "/market/1/user/x",
                           "/market/1/user/0",
                           "/market/1/user/18446744073709551616"};
  for (size_t i = 0; i < sizeof bad_ids / sizeof *bad_ids; i++) {
    assert_int_equal(dash_parse_path(bad_ids[i], &p, &what), 400);
    assert_non_null(strstr(what, "not a"));
  }
  /* Shapes that are no page at all: 404. */
  const char *nopage[] = {"/marketx",          "/market//1",           "/market/1//",
                          "/market/1/user",    "/market/1/user/2/x",   "/market/1/users/2",
                          "/market/1/x",       "/market/1/user/2/3/4", "/market/static/x.css",
                          "/market/1/prices/x"};
  for (size_t i = 0; i < sizeof nopage / sizeof *nopage; i++)
    assert_int_equal(dash_parse_path(nopage[i], &p, &what), 404);
}

static void test_queries(void **state) {
  (void)state;
  int64_t pg;
  assert_int_equal(dash_parse_page(NULL, &pg), 0);
  assert_int_equal(pg, 1);
  assert_int_equal(dash_parse_page("7", &pg), 0);
  assert_int_equal(pg, 7);
  assert_int_equal(dash_parse_page("1000000", &pg), 0);
  const char *bad[] = {"", "0", "-1", "+2", "abc", "1e3", "2.0", " 1", "1000001", "99999999999"};
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
    assert_int_equal(dash_parse_page(bad[i], &pg), -1);
  market_rank_by_t by;
  assert_int_equal(dash_parse_by(NULL, &by), 0);
  assert_int_equal(by, MARKET_RANK_VALUE);
  assert_int_equal(dash_parse_by("roi", &by), 0);
  assert_int_equal(by, MARKET_RANK_ROI);
  assert_int_equal(dash_parse_by("ROI", &by), -1);
  assert_int_equal(dash_parse_by("", &by), -1);
}

/* ---- escaping --------------------------------------------------------------- */

static void test_escape(void **state) {
  (void)state;
  souk_buf_t b;
  souk_buf_init(&b);
  dash_esc(&b, "<script>alert('x')&\"y\"</script>");
  assert_string_equal(b.data, "&lt;script&gt;alert(&#39;x&#39;)&amp;&quot;y&quot;&lt;/script&gt;");
  souk_buf_reset(&b);
  /* Control characters go, invalid UTF-8 becomes U+FFFD, valid stays. */
  dash_esc(&b, "a\x01"
               "b\x7f"
               "c\xff"
               "d\xc3\xa9");
  assert_string_equal(b.data, "abc\xEF\xBF\xBD"
                              "d\xc3\xa9");
  souk_buf_free(&b);
}

/* A symbol and a price source with markup in them reach the pages only
 * escaped. */
static void test_escape_in_pages(void **state) {
  (void)state;
  seed(PUB_GUILD, true, 0);
  buy(PUB_GUILD, 7, "<script>", 3, 10000000, "k1");
  buy(PUB_GUILD, 7, "A&B\"'", 1, 5000000, "k2");
  save_price("<script>", 12000000, "<img src=x>", NOW_MS - 60000);
  save_price("A&B\"'", 4000000, "sim", NOW_MS - 120000);
  souk_buf_t b;
  assert_int_equal(page(MARKET_DASH_USER, PUB_GUILD, 7, 1, MARKET_RANK_VALUE, &b), 200);
  assert_null(strstr(b.data, "<script"));
  assert_null(strstr(b.data, "<img"));
  assert_non_null(strstr(b.data, "&lt;script&gt;"));
  assert_non_null(strstr(b.data, "&lt;img src=x&gt;"));
  assert_non_null(strstr(b.data, "A&amp;B&quot;&#39;"));
  /* Valued at the snapshot: 3 x $12 + 1 x $4 = $40 on top of the cash. */
  assert_non_null(strstr(b.data, "id=\"holdings-value\">$40.00<"));
  /* Cash: $1,000,000 - $30 - $5. */
  assert_non_null(strstr(b.data, "id=\"cash\">$999,965.00<"));
  assert_non_null(strstr(b.data, "id=\"total\">$1,000,005.00<"));
  assert_non_null(strstr(b.data, "id=\"roi\" class=\"zero\">0.00% <small>(+$5.00)</small>"));
  souk_buf_free(&b);
  assert_int_equal(page(MARKET_DASH_GPRICES, PUB_GUILD, 0, 1, MARKET_RANK_VALUE, &b), 200);
  assert_null(strstr(b.data, "<script"));
  assert_null(strstr(b.data, "<img"));
  assert_non_null(strstr(b.data, "&lt;script&gt;"));
  souk_buf_free(&b);
  assert_int_equal(page(MARKET_DASH_PRICES, 0, 0, 1, MARKET_RANK_VALUE, &b), 200);
  assert_null(strstr(b.data, "<script"));
  assert_non_null(strstr(b.data, "$12.00"));
  souk_buf_free(&b);
}

/* ---- the chart -------------------------------------------------------------- */

/* Parse the polyline's points into xs/ys; returns how many. */
static size_t polyline(const char *svg, double *xs, double *ys, size_t cap) {
  const char *p = strstr(svg, "<polyline class=\"line\" points=\"");
  if (!p) return 0;
  p += strlen("<polyline class=\"line\" points=\"");
  size_t n = 0;
  while (*p && *p != '"') {
    char *e;
    double x = strtod(p, &e);
    assert_true(*e == ',');
    double y = strtod(e + 1, &e);
    assert_true(n < cap);
    xs[n] = x;
    ys[n++] = y;
    p = e;
    while (*p == ' ')
      p++;
  }
  return n;
}

typedef struct name_seed {
  int64_t guild, user;
  const char *name;
} name_seed_t;

static int name_fn(souk_db_t *db, void *ud) {
  const name_seed_t *n = ud;
  return market_player_name_put(db, n->guild, n->user, n->name, NOW_MS);
}

/* Players show by their display names, HTML-escaped; one with no name
 * kept yet shows by id. */
static void test_player_names(void **state) {
  (void)state;
  seed(PUB_GUILD, true, 3);
  name_seed_t n = {PUB_GUILD, 1, "<b>Bob</b> & \"co\""};
  assert_int_equal(souk_store_tx(g_store, name_fn, &n), 0);
  name_seed_t other = {PRIV_GUILD, 2, "Elsewhere"};
  assert_int_equal(souk_store_tx(g_store, name_fn, &other), 0);
  souk_buf_t b;
  assert_int_equal(page(MARKET_DASH_BOARD, PUB_GUILD, 0, 1, MARKET_RANK_VALUE, &b), 200);
  assert_non_null(strstr(b.data, "/user/1\"><span class=\"player\">&lt;b&gt;Bob&lt;/b&gt; &amp; "
                                 "&quot;co&quot;</span></a>"));
  assert_null(strstr(b.data, "<b>Bob"));
  /* A name is per guild: user 2 has none here. */
  assert_non_null(strstr(b.data, "/user/2\"><code>2</code></a>"));
  assert_null(strstr(b.data, "Elsewhere"));
  souk_buf_free(&b);
  assert_int_equal(page(MARKET_DASH_USER, PUB_GUILD, 1, 1, MARKET_RANK_VALUE, &b), 200);
  assert_non_null(
      strstr(b.data, "<title>Portfolio of &lt;b&gt;Bob&lt;/b&gt; &amp; &quot;co&quot; "));
  assert_non_null(strstr(b.data, "<h1>Portfolio of <span class=\"player\">&lt;b&gt;Bob"));
  souk_buf_free(&b);
  assert_int_equal(page(MARKET_DASH_USER, PUB_GUILD, 3, 1, MARKET_RANK_VALUE, &b), 200);
  assert_non_null(strstr(b.data, "<h1>Portfolio of <code>3</code></h1>"));
  souk_buf_free(&b);
}

/* Prices follow the one rule (two decimals from $1 up, rounded half away
 * from zero); the exact figure is the hover text. */
static void test_price_rule(void **state) {
  (void)state;
  seed(PUB_GUILD, true, 0);
  buy(PUB_GUILD, 7, "AVG", 2, 244938000, "k1");
  save_price("AVG", 549905555, "finnhub", NOW_MS - 60000);
  buy(PUB_GUILD, 7, "PENNY", 1000, 123400, "k2");
  save_price("PENNY", 123400, "finnhub", NOW_MS - 60000);
  souk_buf_t b;
  assert_int_equal(page(MARKET_DASH_USER, PUB_GUILD, 7, 1, MARKET_RANK_VALUE, &b), 200);
  /* Average cost $244.938 and price $549.905555. */
  assert_non_null(strstr(b.data, "<span class=\"exact\" title=\"$244.938\">$244.94</span>"));
  assert_non_null(strstr(b.data, "<span class=\"exact\" title=\"$549.905555\">$549.91</span>"));
  assert_null(strstr(b.data, ">$244.938<"));
  assert_null(strstr(b.data, ">$549.905555<"));
  /* Below $1 every decimal is shown, so there is nothing to hover. */
  assert_non_null(strstr(b.data, ">$0.1234<"));
  souk_buf_free(&b);
}

static void test_chart(void **state) {
  (void)state;
  souk_buf_t b;
  souk_buf_init(&b);
  /* No points: axes and a note, no line, no dot. */
  dash_svg_chart(&b, NULL, 0);
  assert_non_null(strstr(b.data, "<svg class=\"chart\""));
  assert_non_null(strstr(b.data, "No daily snapshots yet"));
  assert_int_equal(count(b.data, "class=\"axis\""), 2);
  assert_null(strstr(b.data, "<polyline"));
  assert_null(strstr(b.data, "<circle"));
  assert_non_null(strstr(b.data, "</svg>"));
  souk_buf_reset(&b);

  /* One point: a dot in the middle, its day and a value range around it. */
  market_history_point_t one = {20251121, 100000000};
  dash_svg_chart(&b, &one, 1);
  assert_null(strstr(b.data, "<polyline"));
  assert_int_equal(count(b.data, "<circle"), 1);
  assert_non_null(strstr(b.data, "cx=\"402.0\"")); /* 104 + 596 / 2 */
  assert_non_null(strstr(b.data, "cy=\"128.0\"")); /* middle of 16..240 */
  assert_non_null(strstr(b.data, ">2025-11-21</text>"));
  assert_non_null(strstr(b.data, ">$1,000,000.00</text>")); /* the middle grid line */
  assert_non_null(strstr(b.data, "Daily value, 1 day: 2025-11-21 $1,000,000.00</title>"));
  souk_buf_reset(&b);

  /* Many points: one vertex each, left to right, inside the plot; the
   * highest value is the highest point (smallest y). */
  market_history_point_t pts[30];
  for (int i = 0; i < 30; i++) {
    pts[i].day = 20251101 + i;
    pts[i].value_cents = 100000000 + (i == 17 ? 5000000 : i * 10000) - (i == 3 ? 2000000 : 0);
  }
  dash_svg_chart(&b, pts, 30);
  double xs[64], ys[64];
  assert_int_equal(polyline(b.data, xs, ys, 64), 30);
  size_t top = 0, bottom = 0;
  for (size_t i = 0; i < 30; i++) {
    if (i) assert_true(xs[i] > xs[i - 1]);
    assert_true(xs[i] >= 104 && xs[i] <= 700.0001);
    assert_true(ys[i] >= 16 && ys[i] <= 240);
    if (ys[i] < ys[top]) top = i;
    if (ys[i] > ys[bottom]) bottom = i;
  }
  assert_int_equal(top, 17);
  assert_int_equal(bottom, 3);
  assert_true(xs[0] == 104.0 && xs[29] == 700.0);
  assert_non_null(strstr(b.data, ">2025-11-01</text>"));
  assert_non_null(strstr(b.data, ">2025-11-16</text>"));
  assert_non_null(strstr(b.data, ">2025-11-30</text>"));
  assert_int_equal(count(b.data, "class=\"ylabel\""), 3);
  assert_non_null(strstr(b.data, "Daily value, 30 days: 2025-11-01"));
  souk_buf_reset(&b);

  /* Two equal points: a flat line through the middle. */
  market_history_point_t two[2] = {{20251120, 5000}, {20251121, 5000}};
  dash_svg_chart(&b, two, 2);
  assert_int_equal(polyline(b.data, xs, ys, 64), 2);
  assert_true(ys[0] == 128.0 && ys[1] == 128.0);
  souk_buf_free(&b);
}

/* The portfolio page carries the chart of the stored history. */
static void test_user_chart(void **state) {
  (void)state;
  seed(PUB_GUILD, true, 3);
  history(PUB_GUILD, 2, 20251119, 99000000);
  history(PUB_GUILD, 2, 20251120, 101000000);
  history(PUB_GUILD, 2, 20251121, 100500000);
  souk_buf_t b;
  assert_int_equal(page(MARKET_DASH_USER, PUB_GUILD, 2, 1, MARKET_RANK_VALUE, &b), 200);
  double xs[8], ys[8];
  assert_int_equal(polyline(b.data, xs, ys, 8), 3);
  assert_non_null(strstr(b.data, "id=\"no-holdings\""));
  assert_non_null(strstr(b.data, "id=\"no-trades\""));
  /* Cash 100,000,100 cents; last close 100,500,000: -$4,999.00. */
  assert_non_null(strstr(b.data, "id=\"day-change\" class=\"neg\">-$4,999.00<"));
  souk_buf_free(&b);
  /* A player without an account: 404. */
  assert_int_equal(page(MARKET_DASH_USER, PUB_GUILD, 99, 1, MARKET_RANK_VALUE, &b), 404);
  souk_buf_free(&b);
}

/* A simulated season is valued with the simulated market at the page's
 * instant, like the bot's own commands, not with persisted prices. */
static void test_sim_valuation(void **state) {
  (void)state;
  seed_src(PUB_GUILD, true, 0, MARKET_SRC_SIM);
  buy_src(PUB_GUILD, 9, "AAPL", 10, 100000000, "s1", MARKET_SRC_SIM);
  save_price("AAPL", 1, "finnhub", NOW_MS); /* must be ignored */
  market_quote_t q;
  assert_int_equal(market_sim_quote(&market_g.sim, "AAPL", NOW_MS, &q), 0);
  int64_t value = 0;
  assert_int_equal(market_gross_down(q.price_micro, 10, &value), 0);
  char want[128], money[MARKET_FMT_MAX];
  snprintf(want, sizeof want, "id=\"holdings-value\">%s<",
           market_fmt_cents(value, money, sizeof money));
  souk_buf_t b;
  assert_int_equal(page(MARKET_DASH_USER, PUB_GUILD, 9, 1, MARKET_RANK_VALUE, &b), 200);
  assert_non_null(strstr(b.data, want));
  assert_non_null(strstr(b.data, "Valued with the simulated market at"));
  assert_non_null(strstr(b.data, "simulated market</span>"));
  souk_buf_free(&b);
  /* The leaderboard agrees. */
  assert_int_equal(page(MARKET_DASH_BOARD, PUB_GUILD, 0, 1, MARKET_RANK_VALUE, &b), 200);
  int64_t total = 100000000 - 100000 + value;
  snprintf(want, sizeof want, "<td class=\"num\">%s</td>",
           market_fmt_cents(total, money, sizeof money));
  assert_non_null(strstr(b.data, want));
  souk_buf_free(&b);
  assert_int_equal(page(MARKET_DASH_GPRICES, PUB_GUILD, 0, 1, MARKET_RANK_VALUE, &b), 200);
  assert_non_null(strstr(b.data, "<span class=\"tag\">simulated</span>"));
  souk_buf_free(&b);
}

/* ---- privacy and pagination ------------------------------------------------ */

static void test_private_is_unknown(void **state) {
  (void)state;
  seed(PUB_GUILD, true, 3);
  seed(PRIV_GUILD, false, 3);
  souk_buf_t pub, priv, none, priv_user, none_user, priv_prices;
  assert_int_equal(page(MARKET_DASH_BOARD, PUB_GUILD, 0, 1, MARKET_RANK_VALUE, &pub), 200);
  assert_int_equal(page(MARKET_DASH_BOARD, PRIV_GUILD, 0, 1, MARKET_RANK_VALUE, &priv), 404);
  assert_int_equal(page(MARKET_DASH_BOARD, NOGAME_GUILD, 0, 1, MARKET_RANK_VALUE, &none), 404);
  assert_int_equal(page(MARKET_DASH_USER, PRIV_GUILD, 1, 1, MARKET_RANK_VALUE, &priv_user), 404);
  assert_int_equal(page(MARKET_DASH_USER, NOGAME_GUILD, 1, 1, MARKET_RANK_VALUE, &none_user), 404);
  assert_int_equal(page(MARKET_DASH_GPRICES, PRIV_GUILD, 0, 1, MARKET_RANK_VALUE, &priv_prices),
                   404);
  /* Byte for byte the same answer: nothing tells the guilds apart. */
  assert_string_equal(priv.data, none.data);
  assert_string_equal(priv_user.data, none.data);
  assert_string_equal(none_user.data, none.data);
  assert_string_equal(priv_prices.data, none.data);
  assert_null(strstr(none.data, "222222222222222222"));
  assert_non_null(strstr(pub.data, "id=\"leaderboard\""));
  souk_buf_t *all[] = {&pub, &priv, &none, &priv_user, &none_user, &priv_prices};
  for (size_t i = 0; i < 6; i++)
    souk_buf_free(all[i]);
}

static void test_pagination(void **state) {
  (void)state;
  seed(PUB_GUILD, true, 120);
  souk_buf_t b;
  assert_int_equal(page(MARKET_DASH_BOARD, PUB_GUILD, 0, 1, MARKET_RANK_VALUE, &b), 200);
  assert_int_equal(count(b.data, "<tr><td class=\"num\">"), 50);
  assert_non_null(strstr(b.data, "Page 1 of 3"));
  assert_non_null(strstr(b.data, "120 players"));
  assert_non_null(strstr(b.data, "rel=\"next\" href=\"/market/111111111111111111?page=2\""));
  assert_null(strstr(b.data, "rel=\"prev\""));
  /* User 1 is the richest. */
  assert_non_null(strstr(b.data, "<tr><td class=\"num\">1</td><td><a href=\"/market/"
                                 "111111111111111111/user/1\">"));
  souk_buf_free(&b);
  assert_int_equal(page(MARKET_DASH_BOARD, PUB_GUILD, 0, 3, MARKET_RANK_ROI, &b), 200);
  assert_int_equal(count(b.data, "<tr><td class=\"num\">"), 20);
  assert_non_null(strstr(b.data, "Page 3 of 3"));
  assert_non_null(strstr(b.data, "<tr><td class=\"num\">101</td>"));
  assert_non_null(strstr(b.data, "<tr><td class=\"num\">120</td>"));
  assert_non_null(strstr(b.data, "rel=\"prev\" href=\"/market/111111111111111111?by=roi&page=2\""));
  assert_null(strstr(b.data, "rel=\"next\""));
  souk_buf_free(&b);
  /* Past the end. */
  assert_int_equal(page(MARKET_DASH_BOARD, PUB_GUILD, 0, 4, MARKET_RANK_VALUE, &b), 404);
  assert_non_null(strstr(b.data, "no such page"));
  souk_buf_free(&b);
  assert_int_equal(page(MARKET_DASH_BOARD, PUB_GUILD, 0, 1000000, MARKET_RANK_VALUE, &b), 404);
  souk_buf_free(&b);
  /* A public guild with nobody playing has a first page, and only that. */
  seed(NOGAME_GUILD, true, 0);
  assert_int_equal(page(MARKET_DASH_BOARD, NOGAME_GUILD, 0, 1, MARKET_RANK_VALUE, &b), 200);
  assert_non_null(strstr(b.data, "id=\"empty\""));
  assert_non_null(strstr(b.data, "Page 1 of 1"));
  souk_buf_free(&b);
  assert_int_equal(page(MARKET_DASH_BOARD, NOGAME_GUILD, 0, 2, MARKET_RANK_VALUE, &b), 404);
  souk_buf_free(&b);
}

/* The dashboard's own ranking (kept whole for its cache) is the ledger's:
 * same order, ties included, same values, for both orders. */
typedef struct lbjob {
  market_dash_data_t *d;
  market_rank_by_t by;
  market_rank_t *rows;
  size_t n, total;
} lbjob_t;

static int lb_fn(souk_db_t *db, void *ud) {
  lbjob_t *j = ud;
  souk_free(j->rows);
  j->rows = NULL;
  return market_leaderboard(db, PUB_GUILD, 0, j->by, dash_price_fn, j->d, 0, 1000, &j->rows, &j->n,
                            &j->total);
}

static void test_ranking_matches_ledger(void **state) {
  (void)state;
  seed(PUB_GUILD, true, 90);
  /* Holdings that reorder the field, and ties (same value, same ROI). */
  for (int u = 1; u <= 90; u += 4) {
    char key[32];
    snprintf(key, sizeof key, "r%d", u);
    buy(PUB_GUILD, u, u % 8 == 1 ? "AAA" : "BBB", 1 + u % 5, 3000000 + u * 100, key);
  }
  save_price("AAA", 9000000, "finnhub", NOW_MS - 1000);
  save_price("BBB", 1000000, "finnhub", NOW_MS - 1000);
  for (int by = 0; by <= 1; by++) {
    market_dash_data_t d;
    memset(&d, 0, sizeof d);
    d.path.kind = MARKET_DASH_BOARD;
    d.path.guild_id = PUB_GUILD;
    d.page = 1;
    d.by = (market_rank_by_t)by;
    d.now_ms = NOW_MS;
    assert_int_equal(souk_store_read(g_store, dash_read, &d), 0);
    assert_non_null(d.fresh);
    assert_int_equal(d.fresh->n, 90);
    lbjob_t j = {&d, d.by, NULL, 0, 0};
    assert_int_equal(souk_store_read(g_store, lb_fn, &j), 0);
    assert_int_equal(j.n, 90);
    for (size_t i = 0; i < 90; i++) {
      assert_int_equal(d.fresh->rows[i].rank, j.rows[i].rank);
      assert_int_equal(d.fresh->rows[i].user_id, j.rows[i].user_id);
      assert_int_equal(d.fresh->rows[i].value_cents, j.rows[i].value_cents);
      assert_int_equal(d.fresh->rows[i].roi_bp, j.rows[i].roi_bp);
    }
    /* The page is the first 50 of them. */
    assert_int_equal(d.nranks, 50);
    assert_memory_equal(d.ranks, j.rows, 50 * sizeof *d.ranks);
    souk_free(j.rows);
    dash_data_reset(&d);
  }
}

/* Users 1..n of an existing guild: an upsert that leaves others alone. */
static int seed_more_fn(souk_db_t *db, void *ud) {
  const seed_t *sd = ud;
  for (int64_t u = 1; u <= sd->accounts; u++) {
    int64_t v[] = {sd->guild, u, NOW_MS};
    int rc = exec_i(db,
                    "INSERT INTO market_accounts (guild_id, season, user_id, cash_cents, "
                    "initial_cents, last_value_cents, created_at) VALUES (?, 1, ?, 100000000, "
                    "100000000, 100000000, ?) ON CONFLICT DO NOTHING",
                    v, 3);
    if (rc) return rc;
  }
  return 0;
}

static int set_public_fn(souk_db_t *db, void *ud) {
  const int64_t *v = ud;
  int64_t args[] = {v[1], v[0]};
  return exec_i(db, "UPDATE market_settings SET dashboard_public = ? WHERE guild_id = ?", args, 2);
}

static int new_season_fn(souk_db_t *db, void *ud) {
  market_settings_t defs;
  market_settings_defaults(&defs, 0, MARKET_SRC_LIVE);
  return market_season_reset(db, *(const int64_t *)ud, &defs, MARKET_SRC_LIVE, NOW_MS, NULL);
}

/* ---- over HTTP ---------------------------------------------------------------- */

static char base[64];

static void get(got_t *g, const char *path) {
  memset(g, 0, sizeof *g);
  char u[512];
  snprintf(u, sizeof u, "%s%s", base, path);
  souk_http_opts_t o = {.method = "GET", .url = u, .timeout_ms = 5000};
  assert_int_equal(souk_http_request(&o, got_cb, g, NULL), 0);
  assert_true(run_until(&g->done, 6000));
  assert_int_equal(g->err, 0);
}

static void test_http(void **state) {
  (void)state;
  seed(PUB_GUILD, true, 5);
  seed(PRIV_GUILD, false, 5);
  souk_log_set_level(SOUK_LOG_WARN);
  assert_int_equal(souk_http_init(), 0);
  souk__httpd_conf_t c = {.enabled = true,
                         .bind = "127.0.0.1",
                         .port = 0,
                         .max_body = 1024,
                         .timeout_ms = 5000,
                         .max_connections = 16};
  assert_int_equal(souk_httpd_mount(market_dashboard_routes, NULL), 0);
  assert_int_equal(souk__httpd_start(&c), 0);
  snprintf(base, sizeof base, "http://127.0.0.1:%d", souk__httpd_port());

  got_t g;
  char path[128];
  snprintf(path, sizeof path, "/market/%" PRId64, PUB_GUILD);
  get(&g, path);
  assert_int_equal(g.status, 200);
  assert_string_equal(g.ctype, "text/html; charset=utf-8");
  assert_string_equal(g.csp, MARKET_DASH_CSP);
  assert_non_null(strstr(g.csp, "default-src 'none'"));
  assert_non_null(strstr(g.csp, "frame-ancestors 'none'"));
  assert_null(strstr(g.csp, "script-src"));
  assert_string_equal(g.nosniff, "nosniff");
  assert_non_null(strstr(g.body.data, "5 players"));
  got_free(&g);

  const struct {
    const char *path;
    int status;
  } cases[] = {
      {"/market/222222222222222222", 404},
      {"/market/333333333333333333", 404},
      {"/market/222222222222222222/user/1", 404},
      {"/market/abc", 400},
      {"/market/111111111111111111?page=0", 400},
      {"/market/111111111111111111?page=x", 400},
      {"/market/111111111111111111?page=2", 404},
      {"/market/111111111111111111?by=cash", 400},
      {"/market/111111111111111111/user/x", 400},
      {"/market/111111111111111111/nope", 404},
      {"/market/111111111111111111/user/3", 200},
      {"/market/111111111111111111/prices", 200},
      {"/market", 200},
      {"/market/prices", 200},
  };
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    get(&g, cases[i].path);
    if (g.status != cases[i].status) fail_msg("%s: %d", cases[i].path, g.status);
    assert_string_equal(g.csp, MARKET_DASH_CSP);
    assert_string_equal(g.ctype, "text/html; charset=utf-8");
    assert_non_null(strstr(g.body.data, "</html>"));
    got_free(&g);
  }
  get(&g, "/market/static/style.css");
  assert_int_equal(g.status, 200);
  assert_string_equal(g.ctype, "text/css; charset=utf-8");
  assert_string_equal(g.csp, "default-src 'none'");
  assert_non_null(strstr(g.body.data, "svg.chart"));
  got_free(&g);
  /* The operator's price list is not for remote peers. */
  souk__httpd_force_remote = true;
  get(&g, "/market/prices");
  assert_int_equal(g.status, 403);
  got_free(&g);
  get(&g, path);
  assert_int_equal(g.status, 200);
  got_free(&g);
  souk__httpd_force_remote = false;
  /* Too many pages being read at once: a clear 503, not a queue. */
  dash_inflight = MARKET_DASH_MAX_INFLIGHT;
  get(&g, path);
  assert_int_equal(g.status, 503);
  assert_non_null(strstr(g.body.data, "busy"));
  got_free(&g);
  dash_inflight = 0;

  /* The ranking is kept: a new player shows only once it expires... */
  seed_t more = {PUB_GUILD, true, 7, false, MARKET_SRC_LIVE};
  assert_int_equal(souk_store_tx(g_store, seed_more_fn, &more), 0);
  get(&g, path);
  assert_non_null(strstr(g.body.data, "5 players"));
  got_free(&g);
  /* ...and then the expired ranking is still served once, at once, while a
   * new one is built in the background (stale-while-revalidate)... */
  uint64_t now = souk_now_ms();
  for (size_t i = 0; i < MARKET_DASH_BOARDS; i++)
    if (dash_boards[i]) dash_boards[i]->expires_ms = now - 1;
  get(&g, path);
  assert_non_null(strstr(g.body.data, "5 players"));
  got_free(&g);
  while (souk_work_pending()) uv_run(souk_loop(), UV_RUN_ONCE);
  get(&g, path);
  assert_non_null(strstr(g.body.data, "7 players"));
  got_free(&g);
  /* ...unless it is older than the stale limit: then the visitor waits
   * for a new one. */
  seed_t evenmore = {PUB_GUILD, true, 9, false, MARKET_SRC_LIVE};
  assert_int_equal(souk_store_tx(g_store, seed_more_fn, &evenmore), 0);
  for (size_t i = 0; i < MARKET_DASH_BOARDS; i++)
    if (dash_boards[i]) {
      dash_boards[i]->built_ms = now - MARKET_DASH_BOARD_STALE_MS - 1;
      dash_boards[i]->expires_ms = now - MARKET_DASH_BOARD_STALE_MS - 1 + 10000;
    }
  get(&g, path);
  assert_non_null(strstr(g.body.data, "9 players"));
  got_free(&g);
  /* ...but turning the dashboard off takes effect at once, */
  assert_int_equal(souk_store_tx(g_store, set_public_fn, &(int64_t[]){PUB_GUILD, 0}), 0);
  get(&g, path);
  assert_int_equal(g.status, 404);
  got_free(&g);
  assert_int_equal(souk_store_tx(g_store, set_public_fn, &(int64_t[]){PUB_GUILD, 1}), 0);
  /* and so does a new season (nobody has played in it yet). */
  assert_int_equal(souk_store_tx(g_store, new_season_fn, &(int64_t){PUB_GUILD}), 0);
  get(&g, path);
  assert_int_equal(g.status, 200);
  assert_non_null(strstr(g.body.data, "0 players"));
  assert_non_null(strstr(g.body.data, "season 2"));
  got_free(&g);
  market_dashboard_flush();
  for (size_t i = 0; i < MARKET_DASH_BOARDS; i++)
    assert_null(dash_boards[i]);
  /* Once the module stopped (its shutdown flushed them), a page read that
   * finishes keeps no ranking: nothing would free it. */
  market_g.started = false;
  get(&g, path);
  assert_int_equal(g.status, 200);
  got_free(&g);
  for (size_t i = 0; i < MARKET_DASH_BOARDS; i++)
    assert_null(dash_boards[i]);
  market_g.started = true;

  souk__httpd_stop();
  souk_httpd_unmount(market_dashboard_routes);
  souk_http_shutdown();
  uv_run(souk_loop(), UV_RUN_DEFAULT);
  souk__metrics_shutdown();
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_paths),
      cmocka_unit_test(test_queries),
      cmocka_unit_test(test_escape),
      cmocka_unit_test(test_chart),
      cmocka_unit_test_setup_teardown(test_escape_in_pages, setup, teardown),
      cmocka_unit_test_setup_teardown(test_price_rule, setup, teardown),
      cmocka_unit_test_setup_teardown(test_player_names, setup, teardown),
      cmocka_unit_test_setup_teardown(test_user_chart, setup, teardown),
      cmocka_unit_test_setup_teardown(test_sim_valuation, setup, teardown),
      cmocka_unit_test_setup_teardown(test_private_is_unknown, setup, teardown),
      cmocka_unit_test_setup_teardown(test_ranking_matches_ledger, setup, teardown),
      cmocka_unit_test_setup_teardown(test_pagination, setup, teardown),
      cmocka_unit_test_setup_teardown(test_http, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
