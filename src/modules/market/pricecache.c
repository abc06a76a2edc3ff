/* The Market Sim's price cache (see pricecache.h). */
#include "pricecache.h"

#include "ledger.h"
#include "souk/alloc.h"
#include "souk/err.h"
#include "souk/log.h"

#include <stdio.h>
#include <string.h>

#define PC_DEF_TTL     (24 * 3600 * 1000ULL)
#define PC_DEF_FRESH   (15 * 60 * 1000ULL)
#define PC_DEF_REFRESH (30 * 1000ULL)
#define PC_DEF_MAX     1000

typedef struct pc_entry {
  market_quote_t q;
  int64_t fetched_ms;
  uint64_t used; /* LRU stamp: larger is more recent */
  bool dirty;    /* changed since the last write to the store */
} pc_entry_t;

typedef struct pc_waiter {
  struct pc_waiter *next;
  market_pc_cb cb;
  void *ud;
} pc_waiter_t;

typedef struct pc_flight {
  struct pc_flight *next;
  market_pc_t *pc; /* NULL once the cache is gone */
  char symbol[MARKET_SYMBOL_MAX + 1];
  pc_waiter_t *waiters, *tail;
} pc_flight_t;

typedef struct pc_job {
  struct pc_job *next;
  market_pc_t *pc; /* NULL once the cache is gone */
  bool reload;
  market_last_price_t *rows;
  size_t n;
  market_pc_done_cb done;
  void *ud;
} pc_job_t;

struct market_pc {
  market_pc_conf_t c;
  pc_entry_t *e; /* grown as symbols arrive, up to c.max_entries */
  size_t n, cap;
  uint64_t tick;
  pc_flight_t *flights;
  pc_job_t *jobs;
  bool autosave_running, autosave_again;
  market_pc_stats_t st;
};

static int64_t pc_now(const market_pc_t *pc) {
  return pc->c.wall ? (int64_t)pc->c.wall->now_ms(pc->c.wall->ud) : (int64_t)souk_unix_ms();
}

market_pc_t *market_pc_new(const market_pc_conf_t *conf) {
  market_pc_t *pc = souk_calloc(1, sizeof *pc);
  pc->c = *conf;
  if (!pc->c.ttl_ms) pc->c.ttl_ms = PC_DEF_TTL;
  if (!pc->c.fresh_ms) pc->c.fresh_ms = PC_DEF_FRESH;
  if (!pc->c.refresh_ms) pc->c.refresh_ms = PC_DEF_REFRESH;
  if (!pc->c.max_entries) pc->c.max_entries = PC_DEF_MAX;
  return pc;
}

/* A new entry at the end (pc->n < max_entries).  The array grows as
 * symbols arrive rather than being sized for max_entries at start: a bot
 * that quotes 30 symbols holds 30 entries, not 1,000 (72 KB). */
static pc_entry_t *pc_append(market_pc_t *pc) {
  if (pc->n == pc->cap) {
    size_t cap = pc->cap ? pc->cap * 2 : 16;
    if (cap > pc->c.max_entries) cap = pc->c.max_entries;
    pc->e = souk_reallocarray(pc->e, cap, sizeof *pc->e);
    pc->cap = cap;
  }
  pc_entry_t *e = &pc->e[pc->n++];
  memset(e, 0, sizeof *e);
  return e;
}

void market_pc_free(market_pc_t *pc) {
  if (!pc) return;
  /* Waiters are answered now; the fetcher's later callback finds the
   * flight detached and only frees it. */
  for (pc_flight_t *f = pc->flights; f; f = f->next) {
    f->pc = NULL;
    market_pc_result_t r = {.err = SOUK_ECANCELED, .message = "the price cache stopped"};
    pc_waiter_t *w = f->waiters;
    f->waiters = f->tail = NULL;
    while (w) {
      pc_waiter_t *nx = w->next;
      w->cb(&r, w->ud);
      souk_free(w);
      w = nx;
    }
  }
  for (pc_job_t *j = pc->jobs; j; j = j->next)
    j->pc = NULL;
  souk_free(pc->e);
  souk_free(pc);
}

static pc_entry_t *pc_find(market_pc_t *pc, const char *symbol) {
  for (size_t i = 0; i < pc->n; i++)
    if (strcmp(pc->e[i].q.symbol, symbol) == 0) return &pc->e[i];
  return NULL;
}

static int64_t pc_quote_time(const market_quote_t *q, int64_t fetched_ms) {
  return q->quote_time_ms > 0 ? q->quote_time_ms : fetched_ms;
}

bool market_pc_tradable(const market_pc_t *pc, const market_quote_t *q, int64_t fetched_ms,
                        int64_t now_ms) {
  int64_t t = pc_quote_time(q, fetched_ms);
  if (t > now_ms) t = now_ms; /* a provider clock ahead of ours */
  if (now_ms - t <= (int64_t)pc->c.fresh_ms) return true;
  /* A closed market's last price stays the price until the next session
   * opens, but only while the fetch itself is recent. */
  if (now_ms - fetched_ms > (int64_t)pc->c.fresh_ms) return false;
  return !market_nyse_open(now_ms) && market_nyse_next_open(t) > now_ms;
}

static void pc_autosave(market_pc_t *pc);

/* Put q, fetched at fetched_ms (0: now). */
static void pc_put_at(market_pc_t *pc, const market_quote_t *q, int64_t fetched_ms) {
  if (!q || q->price_micro <= 0 || !market_symbol_valid(q->symbol)) return;
  pc_entry_t *e = pc_find(pc, q->symbol);
  if (!e) {
    if (pc->n < pc->c.max_entries) {
      e = pc_append(pc);
    } else {
      e = &pc->e[0];
      for (size_t i = 1; i < pc->n; i++)
        if (pc->e[i].used < e->used) e = &pc->e[i];
      pc->st.evictions++;
    }
  }
  e->q = *q;
  int64_t now = pc_now(pc);
  e->fetched_ms = fetched_ms > 0 && fetched_ms < now ? fetched_ms : now;
  e->used = ++pc->tick;
  e->dirty = true;
  pc_autosave(pc);
}

void market_pc_put(market_pc_t *pc, const market_quote_t *q) { pc_put_at(pc, q, 0); }

int market_pc_peek(market_pc_t *pc, const char *symbol, market_quote_t *out, int64_t *fetched_ms) {
  pc_entry_t *e = symbol ? pc_find(pc, symbol) : NULL;
  if (!e || pc_now(pc) - e->fetched_ms > (int64_t)pc->c.ttl_ms) return SOUK_ENOTFOUND;
  if (out) *out = e->q;
  if (fetched_ms) *fetched_ms = e->fetched_ms;
  return 0;
}

static void pc_answer_entry(market_pc_t *pc, const pc_entry_t *e, bool cached, bool fallback,
                            const char *msg, market_pc_cb cb, void *ud) {
  int64_t now = pc_now(pc);
  market_pc_result_t r = {.quote = e->q,
                          .cached = cached,
                          .fallback = fallback,
                          .fetched_ms = e->fetched_ms,
                          .message = msg};
  r.age_ms = now - pc_quote_time(&e->q, e->fetched_ms);
  if (r.age_ms < 0) r.age_ms = 0;
  r.tradable = !fallback && market_pc_tradable(pc, &e->q, e->fetched_ms, now);
  cb(&r, ud);
}

static void pc_fetched(const market_chain_result_t *cr, void *ud) {
  pc_flight_t *f = ud;
  market_pc_t *pc = f->pc;
  if (pc) {
    pc_flight_t **pp = &pc->flights;
    while (*pp && *pp != f)
      pp = &(*pp)->next;
    if (*pp) *pp = f->next;
    char msg[512];
    snprintf(msg, sizeof msg, "%s", cr->message ? cr->message : "no provider answered");
    if (cr->err == 0)
      pc_put_at(pc, &cr->quote, cr->fetched_ms);
    else
      pc->st.fetch_errors++;
    pc_waiter_t *w = f->waiters;
    f->waiters = f->tail = NULL;
    while (w) {
      pc_waiter_t *nx = w->next;
      /* A waiter's callback may change the cache (another put), so look the
       * entry up again for each. */
      pc_entry_t *e = pc_find(pc, f->symbol);
      bool usable = e && pc_now(pc) - e->fetched_ms <= (int64_t)pc->c.ttl_ms;
      if (cr->err == 0 && e) {
        pc_answer_entry(pc, e, false, false, NULL, w->cb, w->ud);
      } else if (usable) {
        pc->st.stale++;
        pc_answer_entry(pc, e, false, true, msg, w->cb, w->ud);
      } else {
        market_pc_result_t r = {.err = cr->err == SOUK_ECANCELED ? SOUK_ECANCELED : SOUK_ENOTFOUND,
                                .message = msg};
        w->cb(&r, w->ud);
      }
      souk_free(w);
      w = nx;
    }
  }
  souk_free(f);
}

int market_pc_get(market_pc_t *pc, const char *symbol, market_pc_cb cb, void *ud) {
  if (!symbol || !market_symbol_valid(symbol) || !cb) return SOUK_EINVAL;
  int64_t now = pc_now(pc);
  pc_entry_t *e = pc_find(pc, symbol);
  if (e && now - e->fetched_ms < (int64_t)pc->c.refresh_ms && now >= e->fetched_ms) {
    pc->st.hits++;
    e->used = ++pc->tick;
    pc_answer_entry(pc, e, true, false, NULL, cb, ud);
    return 0;
  }
  pc_waiter_t *w = souk_calloc(1, sizeof *w);
  w->cb = cb;
  w->ud = ud;
  for (pc_flight_t *f = pc->flights; f; f = f->next) {
    if (strcmp(f->symbol, symbol) == 0) {
      pc->st.coalesced++;
      f->tail->next = w;
      f->tail = w;
      return 0;
    }
  }
  if (e)
    pc->st.refreshes++;
  else
    pc->st.misses++;
  pc_flight_t *f = souk_calloc(1, sizeof *f);
  f->pc = pc;
  snprintf(f->symbol, sizeof f->symbol, "%s", symbol);
  f->waiters = f->tail = w;
  int rc = pc->c.fetch ? pc->c.fetch(pc->c.fetch_ud, symbol, pc_fetched, f) : SOUK_ENOTSUP;
  if (rc != 0) {
    /* No request went out: answer now from what we have. */
    market_chain_result_t cr = {.err = SOUK_ENOTFOUND,
                                .symbol = symbol,
                                .message = rc == SOUK_ENOTSUP ? "no price provider is configured"
                                                              : "the price providers refused"};
    f->next = pc->flights; /* pc_fetched unlinks it */
    pc->flights = f;
    pc_fetched(&cr, f);
    return 0;
  }
  f->next = pc->flights;
  pc->flights = f;
  return 0;
}

size_t market_pc_count(const market_pc_t *pc) { return pc->n; }

int market_pc_at(const market_pc_t *pc, size_t i, market_quote_t *q, int64_t *fetched_ms) {
  if (i >= pc->n) return SOUK_ERANGE;
  if (q) *q = pc->e[i].q;
  if (fetched_ms) *fetched_ms = pc->e[i].fetched_ms;
  return 0;
}

bool market_pc_within_ttl(const market_pc_t *pc, int64_t fetched_ms) {
  return pc_now(pc) - fetched_ms <= (int64_t)pc->c.ttl_ms;
}

void market_pc_stats(const market_pc_t *pc, market_pc_stats_t *out) {
  *out = pc->st;
  out->entries = pc->n;
  out->inflight = 0;
  for (pc_flight_t *f = pc->flights; f; f = f->next)
    out->inflight++;
}

void market_pc_clear(market_pc_t *pc) { pc->n = 0; }

void market_pc_detach_fetch(market_pc_t *pc) {
  pc->c.fetch = NULL;
  pc->c.fetch_ud = NULL;
}

/* ---- persistence ---- */

static void pc_row(const pc_entry_t *e, market_last_price_t *r) {
  memset(r, 0, sizeof *r);
  snprintf(r->symbol, sizeof r->symbol, "%s", e->q.symbol);
  r->price_micro = e->q.price_micro;
  r->prev_close_micro = e->q.prev_close_micro;
  snprintf(r->source, sizeof r->source, "%s", e->q.source ? e->q.source : "?");
  r->quote_time_ms = e->q.quote_time_ms;
  r->fetched_ms = e->fetched_ms;
}

/* Provider names as static strings, so a reloaded quote's source outlives
 * the row it came from. */
static const char *pc_source(const char *s) {
  static const char *const known[] = {"finnhub", "polygon", "alpaca", "yahoo", "simulated"};
  for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
    if (strcmp(s, known[i]) == 0) return known[i];
  return "stored";
}

static int pc_save_tx(souk_db_t *db, void *ud) {
  pc_job_t *j = ud;
  return j->n ? market_last_price_save(db, j->rows, j->n) : 0;
}

static int pc_load_tx(souk_db_t *db, void *ud) {
  pc_job_t *j = ud;
  souk_free(j->rows);
  j->rows = NULL;
  j->n = 0;
  return market_last_price_load_all(db, &j->rows, &j->n);
}

/* Merge the store's rows into memory.  A reload runs in the background,
 * so a quote that arrived meanwhile may be newer than the stored row: an
 * entry is replaced only by a row fetched later than it, entries the store
 * does not have stay, and a kept entry keeps its dirty flag (it still has
 * to be written).  A replaced entry is clean: the store holds it.  Rows
 * that do not fit the bound are left in the store. */
static void pc_apply_rows(market_pc_t *pc, const market_last_price_t *rows, size_t n) {
  int64_t now = pc_now(pc);
  for (size_t i = 0; i < n; i++) {
    const market_last_price_t *r = &rows[i];
    if (now - r->fetched_ms > (int64_t)pc->c.ttl_ms || r->price_micro <= 0 ||
        !market_symbol_valid(r->symbol))
      continue;
    pc_entry_t *e = pc_find(pc, r->symbol);
    if (e) {
      if (e->fetched_ms >= r->fetched_ms) continue;
    } else {
      if (pc->n >= pc->c.max_entries) continue;
      e = pc_append(pc);
      e->used = ++pc->tick;
    }
    memset(&e->q, 0, sizeof e->q);
    snprintf(e->q.symbol, sizeof e->q.symbol, "%s", r->symbol);
    e->q.price_micro = r->price_micro;
    e->q.prev_close_micro = r->prev_close_micro;
    e->q.quote_time_ms = r->quote_time_ms;
    e->q.source = pc_source(r->source);
    e->fetched_ms = r->fetched_ms;
    e->dirty = false;
  }
}

static void pc_job_unlink(pc_job_t *j) {
  if (!j->pc) return;
  pc_job_t **pp = &j->pc->jobs;
  while (*pp && *pp != j)
    pp = &(*pp)->next;
  if (*pp) *pp = j->next;
}

/* A write that did not happen: its rows are changed entries again, so the
 * next change or flush retries them (unless a newer quote replaced one,
 * which is dirty anyway). */
static void pc_job_redirty(market_pc_t *pc, const pc_job_t *j) {
  for (size_t i = 0; i < j->n; i++) {
    pc_entry_t *e = pc_find(pc, j->rows[i].symbol);
    if (e && e->fetched_ms == j->rows[i].fetched_ms) e->dirty = true;
  }
}

static void pc_job_done(void *ud, int status) {
  pc_job_t *j = ud;
  pc_job_unlink(j);
  market_pc_t *pc = j->pc;
  if (pc) {
    if (j->reload) {
      if (status == 0) pc_apply_rows(pc, j->rows, j->n);
    } else if (status == 0) {
      pc->st.persisted += j->n;
    } else {
      pc->st.persist_errors++;
      SOUK_WARN("market", "saving %zu prices failed: %s", j->n, souk_strerror(status));
      pc_job_redirty(pc, j);
    }
  }
  if (j->done)
    j->done(j->ud, status, status == 0 ? j->n : 0);
  else if (pc && !j->reload) {
    /* The background writer: run again if more changed meanwhile. */
    pc->autosave_running = false;
    if (status == 0 && pc->autosave_again) {
      pc->autosave_again = false;
      pc_autosave(pc);
    }
  }
  souk_free(j->rows);
  souk_free(j);
}

static pc_job_t *pc_job_new(market_pc_t *pc, bool only_dirty) {
  pc_job_t *j = souk_calloc(1, sizeof *j);
  j->pc = pc;
  j->rows = souk_calloc(pc->n ? pc->n : 1, sizeof *j->rows);
  for (size_t i = 0; i < pc->n; i++) {
    if (only_dirty && !pc->e[i].dirty) continue;
    pc_row(&pc->e[i], &j->rows[j->n++]);
    pc->e[i].dirty = false;
  }
  return j;
}

static int pc_job_start(market_pc_t *pc, pc_job_t *j) {
  int rc = j->reload ? souk_store_read_async(pc->c.store, pc_load_tx, pc_job_done, j)
                     : souk_store_tx_async(pc->c.store, pc_save_tx, pc_job_done, j);
  if (rc) {
    /* pc_job_new took the rows' dirty flags: give them back. */
    if (!j->reload) pc_job_redirty(pc, j);
    souk_free(j->rows);
    souk_free(j);
    return rc;
  }
  j->next = pc->jobs;
  pc->jobs = j;
  return 0;
}

static void pc_autosave(market_pc_t *pc) {
  if (!pc->c.store) return;
  if (pc->autosave_running) {
    pc->autosave_again = true;
    return;
  }
  pc_job_t *j = pc_job_new(pc, true);
  if (!j->n) {
    souk_free(j->rows);
    souk_free(j);
    return;
  }
  if (pc_job_start(pc, j) == 0) pc->autosave_running = true;
}

int market_pc_flush(market_pc_t *pc, market_pc_done_cb done, void *ud) {
  if (!pc->c.store) return SOUK_ENOTSUP;
  pc_job_t *j = pc_job_new(pc, false);
  j->done = done;
  j->ud = ud;
  return pc_job_start(pc, j);
}

int market_pc_reload(market_pc_t *pc, market_pc_done_cb done, void *ud) {
  if (!pc->c.store) return SOUK_ENOTSUP;
  pc_job_t *j = souk_calloc(1, sizeof *j);
  j->pc = pc;
  j->reload = true;
  j->done = done;
  j->ud = ud;
  return pc_job_start(pc, j);
}

int market_pc_flush_sync(market_pc_t *pc) {
  if (!pc->c.store) return 0;
  /* Every entry, not only the changed ones: a background write still
   * queued when the loop stops is cancelled, and its rows are no longer
   * marked dirty.  The store keeps the newer row of each symbol. */
  pc_job_t *j = pc_job_new(pc, false);
  int rc = j->n ? souk_store_tx(pc->c.store, pc_save_tx, j) : 0;
  if (rc == 0)
    pc->st.persisted += j->n;
  else
    pc_job_redirty(pc, j);
  souk_free(j->rows);
  souk_free(j);
  return rc;
}
