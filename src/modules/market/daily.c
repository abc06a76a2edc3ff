/* The daily update: once a day, after daily_update.hour UTC, every
 * account's value is written to its history (the portfolio's day change
 * and the dashboard's chart), the held live symbols refreshed first; run
 * by the task market.daily_update, by `souk market daily-update` (cron)
 * and by /market daily-update.
 *
 * Once a day across processes: the snapshot's transaction claims the day
 * (souk_db_once on "market:daily:<day>", and the kv key market/daily_day,
 * which outlives the idempotency keys' retention), so of a daemon's task
 * and a cron run the first does the day's work and the other does
 * nothing; a run first reads the claim, so a day already done asks no
 * provider either.  /market daily-update forces a run anyway. */
#include "market_int.h"
#include "souk/alloc.h"
#include "souk/cluster.h"
#include "souk/err.h"
#include "souk/log.h"
#include "souk/loop.h"
#include "souk/store.h"
#include "souk/task.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The warm-up starts no refresh after this long, so a run (the task's, or
 * /market daily-update's reply) ends within about this plus one request's
 * timeout: inside the task's budget and far inside Discord's 15 minutes
 * for a deferred reply. */
#define DAILY_WARM_MS 40000u

typedef struct daily_job {
  market_daily_mode_t mode;
  bool already;           /* today's was done: nothing was written */
  market_snap_t snap;     /* live prices */
  market_snap_t sim_snap; /* the simulated market */
  int64_t day;
  market_snapshot_stats_t st;
  /* Live prices are refreshed first, one symbol at a time, so the
   * snapshot values holdings at current prices rather than at cost. */
  char (*held)[MARKET_SYMBOL_MAX + 1];
  size_t nheld, next;
  uint64_t warm_until;            /* monotonic ms: no new refresh after this */
  bool in_get, answered, stopped; /* a hit answers inside market_pc_get */
  void (*done)(void *ud, int status, const market_snapshot_stats_t *st);
  void *ud;
  int64_t fence; /* the cluster lease's token when the run started (0: none) */
} daily_job_t;

static void daily_job_free(daily_job_t *j) {
  market_snap_free(&j->snap);
  market_snap_free(&j->sim_snap);
  souk_free(j->held);
  souk_free(j);
}

/* Each guild's holdings are valued from its own season's source. */
static int daily_price(void *ud, market_source_t source, const char *symbol, int64_t *price) {
  daily_job_t *j = ud;
  return market_snap_price(source == MARKET_SRC_LIVE ? &j->snap : &j->sim_snap, symbol, price);
}

#define DAILY_KV_NS  "market"
#define DAILY_KV_KEY "daily_day"

/* Whether the kv key says day was done. */
static int daily_claimed(souk_db_t *db, int64_t day, bool *done) {
  souk_buf_t b;
  souk_buf_init(&b);
  int rc = souk_db_kv_get(db, DAILY_KV_NS, DAILY_KV_KEY, &b, NULL);
  *done = false;
  if (rc == 0) {
    char txt[24];
    snprintf(txt, sizeof txt, "%.*s", (int)(b.len < 23 ? b.len : 23), b.data ? b.data : "");
    *done = strtoll(txt, NULL, 10) == day;
  }
  souk_buf_free(&b);
  return rc == SOUK_ENOTFOUND ? 0 : rc;
}

static int daily_tx(souk_db_t *db, void *ud) {
  daily_job_t *j = ud;
  j->already = false;
  memset(&j->st, 0, sizeof j->st);
  /* Run by the cluster's leader: a process that lost the lease meanwhile
   * commits nothing over the new leader's run (a cron run has no lease:
   * token 0 always passes, and the day's claim below keeps it once). */
  int rc = souk_db_fence(db, j->fence);
  if (rc) return rc;
  /* Claim the day in this transaction: of two processes the second finds
   * the claim (on PostgreSQL its insert waits for the first's commit). */
  char key[48];
  snprintf(key, sizeof key, "market:daily:%" PRId64, j->day);
  rc = souk_db_once(db, key);
  bool done = rc == SOUK_EEXIST;
  if (rc && rc != SOUK_EEXIST) return rc;
  if (!done && (rc = daily_claimed(db, j->day, &done)) != 0) return rc;
  if (done && j->mode == MARKET_DAILY_ONCE) {
    j->already = true;
    return 0;
  }
  rc = market_daily_snapshot_by_source(db, j->day, daily_price, j, (int64_t)souk_unix_ms(),
                                        &j->st);
  if (rc) return rc;
  char txt[24];
  int n = snprintf(txt, sizeof txt, "%" PRId64, j->day);
  return souk_db_kv_put(db, DAILY_KV_NS, DAILY_KV_KEY, txt, (size_t)n);
}

static void daily_done(void *ud, int status) {
  daily_job_t *j = ud;
  if (status == 0 && j->already) {
    market_g.last_daily_day = j->day;
    SOUK_INFO("market", "daily snapshot %" PRId64 ": already done today, nothing to do", j->day);
    market_snapshot_stats_t none = {0};
    j->done(j->ud, SOUK_EEXIST, &none);
    daily_job_free(j);
    return;
  }
  if (status == 0) {
    market_g.last_daily_day = j->day;
    SOUK_INFO("market",
              "daily snapshot %" PRId64 ": %" PRId64 " accounts, %" PRId64 " written, %" PRId64
              " already there, %" PRId64 " holdings unpriced",
              j->day, j->st.accounts, j->st.inserted, j->st.existing, j->st.unpriced);
  } else {
    SOUK_WARN("market", "daily snapshot failed: %s", souk_strerror(status));
  }
  j->done(j->ud, status, &j->st);
  daily_job_free(j);
}

static void daily_fail(daily_job_t *j, int status) {
  market_snapshot_stats_t none = {0};
  j->done(j->ud, status, &none);
  daily_job_free(j);
}

static void daily_snapshot_start(daily_job_t *j) {
  souk_store_t *st = market_g.store;
  if (!st || !market_g.started) {
    daily_fail(j, st ? SOUK_ESTOPPED : SOUK_ENOTSUP);
    return;
  }
  market_snap_fill(&j->snap, MARKET_SRC_LIVE);
  market_snap_fill(&j->sim_snap, MARKET_SRC_SIM);
  j->day = market_day_of((int64_t)souk_unix_ms());
  int rc = souk_store_tx_async(st, daily_tx, daily_done, j);
  if (rc) daily_fail(j, rc);
}

static void daily_warm_next(daily_job_t *j);

static void daily_warm_cb(const market_pc_result_t *r, void *ud) {
  daily_job_t *j = ud;
  bool stopped = r->err == SOUK_ECANCELED || !market_g.started;
  if (j->in_get) {
    /* Answered from the cache inside market_pc_get: the loop goes on. */
    j->answered = true;
    j->stopped = stopped;
    return;
  }
  if (stopped) {
    daily_fail(j, SOUK_ESTOPPED);
    return;
  }
  daily_warm_next(j);
}

/* Refresh the held symbols one after another (the chain spaces requests
 * by min_interval), iteratively for the cache's immediate answers. */
static void daily_warm_next(daily_job_t *j) {
  while (j->next < j->nheld && market_g.pc) {
    if (souk_now_ms() >= j->warm_until) {
      SOUK_INFO("market", "daily update: %zu held symbols left unrefreshed (time limit)",
                j->nheld - j->next);
      break;
    }
    const char *sym = j->held[j->next++];
    j->in_get = true;
    j->answered = false;
    int rc = market_pc_get(market_g.pc, sym, daily_warm_cb, j);
    j->in_get = false;
    if (rc != 0) continue;
    if (!j->answered) return; /* daily_warm_cb continues */
    if (j->stopped) {
      daily_fail(j, SOUK_ESTOPPED);
      return;
    }
  }
  daily_snapshot_start(j);
}

/* The symbols held in live seasons: the ones to refresh before valuing
 * (simulated seasons never ask a provider). */
static int daily_held_tx(souk_db_t *db, void *ud) {
  daily_job_t *j = ud;
  souk_free(j->held);
  j->held = NULL;
  j->nheld = 0;
  souk_stmt_t *s;
  int rc = souk_db_prepare(db,
                           "SELECT DISTINCT h.symbol FROM market_holdings h JOIN market_settings g "
                           "ON g.guild_id = h.guild_id AND g.season = h.season "
                           "WHERE g.price_source = 'live' AND h.shares > 0 ORDER BY h.symbol",
                           &s);
  if (rc) return rc;
  size_t cap = 0;
  while ((rc = souk_stmt_step(s)) == 1) {
    size_t n = 0;
    const char *sym = souk_stmt_column_text(s, 0, &n);
    if (!sym || n == 0 || n > MARKET_SYMBOL_MAX) continue;
    if (j->nheld == cap) {
      cap = cap ? cap * 2 : 32;
      j->held = souk_reallocarray(j->held, cap, sizeof *j->held);
    }
    memcpy(j->held[j->nheld], sym, n + 1);
    j->nheld++;
  }
  souk_stmt_finalize(s);
  return rc < 0 ? rc : 0;
}

typedef struct daily_sym {
  int64_t fetched; /* INT64_MIN: not cached */
  size_t i;
} daily_sym_t;

static int daily_sym_cmp(const void *a, const void *b) {
  const daily_sym_t *x = a, *y = b;
  if (x->fetched != y->fetched) return x->fetched < y->fetched ? -1 : 1;
  return x->i < y->i ? -1 : x->i > y->i;
}

/* Choose what to refresh: symbols whose cached quote is still fresh
 * enough to trade are valued as they are; of the others, the stalest
 * first (never fetched before all), at most daily_update.max_fetch of
 * them.  The chain spaces requests by min_interval, so this bounds the
 * run's time and the providers' budget it spends; DAILY_WARM_MS bounds it
 * again when the providers are slow. */
static void daily_warm_pick(daily_job_t *j) {
  size_t cap = (size_t)market_conf.daily_max_fetch;
  if (cap > (size_t)market_conf.cache_max_entries) cap = (size_t)market_conf.cache_max_entries;
  if (!market_g.pc || j->nheld == 0) {
    j->nheld = 0;
    return;
  }
  int64_t now = (int64_t)souk_unix_ms();
  daily_sym_t *v = souk_calloc(j->nheld, sizeof *v);
  size_t nv = 0, fresh = 0;
  for (size_t i = 0; i < j->nheld; i++) {
    market_quote_t q;
    int64_t fetched;
    if (market_pc_peek(market_g.pc, j->held[i], &q, &fetched) == 0) {
      if (market_pc_tradable(market_g.pc, &q, fetched, now)) {
        fresh++;
        continue;
      }
      v[nv++] = (daily_sym_t){fetched, i};
    } else {
      v[nv++] = (daily_sym_t){INT64_MIN, i};
    }
  }
  qsort(v, nv, sizeof *v, daily_sym_cmp);
  size_t take = nv < cap ? nv : cap;
  char(*pick)[MARKET_SYMBOL_MAX + 1] = souk_calloc(take ? take : 1, sizeof *pick);
  for (size_t k = 0; k < take; k++)
    memcpy(pick[k], j->held[v[k].i], sizeof pick[k]);
  SOUK_INFO("market", "daily update: %zu held symbols, %zu still fresh, refreshing %zu%s", j->nheld,
            fresh, take, take < nv ? " (daily_update.max_fetch; the rest at cached prices)" : "");
  souk_free(v);
  souk_free(j->held);
  j->held = pick;
  j->nheld = take;
  j->next = 0;
}

static void daily_held_done(void *ud, int status) {
  daily_job_t *j = ud;
  if (status) {
    /* Value at the cached prices rather than not at all. */
    SOUK_WARN("market", "cannot list held symbols to refresh: %s", souk_strerror(status));
    j->nheld = 0;
  }
  daily_warm_pick(j);
  j->warm_until = souk_now_ms() + DAILY_WARM_MS;
  daily_warm_next(j);
}

/* Start the day's work: refresh the held live symbols first when there
 * are providers, else value at once. */
static void daily_begin(daily_job_t *j) {
  souk_store_t *st = market_g.store;
  int rc = SOUK_ESTOPPED;
  if (st && market_g.started && market_g.chain && market_g.pc) {
    rc = souk_store_read_async(st, daily_held_tx, daily_held_done, j);
  } else if (st && market_g.started) {
    daily_snapshot_start(j);
    return;
  }
  if (rc) daily_fail(j, rc);
}

static int daily_precheck_tx(souk_db_t *db, void *ud) {
  daily_job_t *j = ud;
  return daily_claimed(db, j->day, &j->already);
}

static void daily_precheck_done(void *ud, int status) {
  daily_job_t *j = ud;
  if (status == 0 && j->already) {
    daily_done(j, 0);
    return;
  }
  /* Could not read the claim: the snapshot's transaction checks it again. */
  daily_begin(j);
}

int market_daily_run(market_daily_mode_t mode,
                     void (*done)(void *ud, int status, const market_snapshot_stats_t *st),
                     void *ud) {
  souk_store_t *st = market_g.store;
  if (!st) return SOUK_ENOTSUP;
  daily_job_t *j = souk_calloc(1, sizeof *j);
  j->mode = mode;
  j->done = done;
  j->ud = ud;
  j->fence = souk_cluster_fence();
  j->day = market_day_of((int64_t)souk_unix_ms());
  int rc = 0;
  if (mode == MARKET_DAILY_ONCE) {
    /* A day already done asks no provider for nothing. */
    rc = souk_store_read_async(st, daily_precheck_tx, daily_precheck_done, j);
  } else if (market_g.chain && market_g.pc) {
    rc = souk_store_read_async(st, daily_held_tx, daily_held_done, j);
  } else {
    market_snap_fill(&j->snap, MARKET_SRC_LIVE);
    market_snap_fill(&j->sim_snap, MARKET_SRC_SIM);
    rc = souk_store_tx_async(st, daily_tx, daily_done, j);
  }
  if (rc) daily_job_free(j);
  return rc;
}

static void daily_task_done(void *ud, int status, const market_snapshot_stats_t *st) {
  (void)st;
  souk_task_done(ud, status == SOUK_EEXIST ? 0 : status);
}

void market_daily_task(souk_task_ctx_t *ctx) {
  int64_t now = (int64_t)souk_unix_ms();
  int64_t day = market_day_of(now);
  int hour = (int)((now / 3600000) % 24);
  if (!market_g.started || day == market_g.last_daily_day || hour < market_conf.daily_hour) {
    souk_task_done(ctx, 0);
    return;
  }
  int rc = market_daily_run(MARKET_DAILY_ONCE, daily_task_done, ctx);
  if (rc) souk_task_done(ctx, rc == SOUK_ENOTSUP ? 0 : rc);
}

/* ---- souk market daily-update --------------------------------------------- */

typedef struct cli_run {
  bool done;
  int status;
  market_snapshot_stats_t st;
} cli_run_t;

static void cli_done(void *ud, int status, const market_snapshot_stats_t *st) {
  cli_run_t *r = ud;
  r->done = true;
  r->status = status;
  r->st = *st;
}

int market_cli(const souk_module_ctx_t *ctx, int argc, char **argv) {
  (void)ctx;
  if (argc != 1 || strcmp(argv[0], "daily-update") != 0) {
    fprintf(stderr, "usage: souk market daily-update\n"
                    "  the Market Sim's daily snapshot now, unless today's is done (for cron)\n");
    return 2;
  }
  cli_run_t r = {0};
  int rc = market_daily_run(MARKET_DAILY_ONCE, cli_done, &r);
  if (rc) {
    fprintf(stderr, "souk market daily-update: cannot start: %s\n", souk_strerror(rc));
    return 1;
  }
  while (!r.done)
    uv_run(souk_loop(), UV_RUN_ONCE);
  int64_t day = market_day_of((int64_t)souk_unix_ms());
  if (r.status == SOUK_EEXIST) {
    printf("daily update %04d-%02d-%02d: already done today; nothing to do\n", (int)(day / 10000),
           (int)(day / 100 % 100), (int)(day % 100));
    return 0;
  }
  if (r.status) {
    fprintf(stderr, "souk market daily-update: failed: %s\n", souk_strerror(r.status));
    return 1;
  }
  printf("daily update %04d-%02d-%02d done: %" PRId64 " accounts valued, %" PRId64
         " snapshots written, %" PRId64 " already there, %" PRId64
         " holdings without a price (valued at cost)\n",
         (int)(day / 10000), (int)(day / 100 % 100), (int)(day % 100), r.st.accounts,
         r.st.inserted, r.st.existing, r.st.unpriced);
  return 0;
}
