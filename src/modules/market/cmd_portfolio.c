/* /portfolio and /history: an account's cash, holdings valued on the
 * season's source, value, ROI and day change; and its trades, a page at a
 * time. */
#include "cmd_int.h"
#include "fmt.h"
#include "money.h"
#include "souk/alloc.h"
#include "souk/buf.h"
#include "souk/err.h"
#include "souk/loop.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

/* A portfolio: the account read, then every holding priced. */
typedef struct pf_job {
  market_job_t base;
  int64_t target; /* whose portfolio */
  char target_name[MARKET_NAME_MAX + 1]; /* the option's resolved name, else the kept one */
  market_portfolio_t pf;
  int64_t prev_value, prev_day; /* prev_day: YYYYMMDD */
  bool has_prev;
  int64_t *prices;
  bool *priced;
  int64_t *stale_age; /* -1, or the age of a last-known (fallback) price */
  size_t pending;     /* price lookups still out */
} pf_job_t;

static void pf_free(market_job_t *base) {
  pf_job_t *j = (pf_job_t *)base;
  market_portfolio_free(&j->pf);
  souk_free(j->prices);
  souk_free(j->priced);
  souk_free(j->stale_age);
  souk_free(j);
}

/* One page of a user's trades, and on the first page the daily values
 * the dashboard charts. */
typedef struct hist_job {
  market_job_t base;
  int64_t page;
  market_trade_t *rows;
  size_t nrows;
  market_history_point_t *days; /* oldest first */
  size_t ndays;
} hist_job_t;

static void hist_free(market_job_t *base) {
  hist_job_t *j = (hist_job_t *)base;
  souk_free(j->rows);
  souk_free(j->days);
  souk_free(j);
}

static int portfolio_tx(souk_db_t *db, void *ud) {
  pf_job_t *j = ud;
  market_portfolio_free(&j->pf);
  j->has_prev = false;
  int rc = market_settings_get(db, j->base.guild, &j->base.defaults, &j->base.set);
  if (rc == 0) rc = market_portfolio_get(db, j->base.guild, 0, j->target, &j->pf);
  /* Someone else's: the name Discord resolved for the option, else the
   * one kept for them. */
  if (rc == 0 && j->target != j->base.user && !j->target_name[0])
    rc = market_player_names(db, j->base.guild, &j->target, 1, &j->target_name);
  if (rc == 0 && j->pf.exists) {
    int64_t v = 0, d = 0;
    int prc = market_history_prev(db, j->base.guild, 0, j->target,
                                  market_day_of((int64_t)souk_unix_ms()), &v, &d);
    if (prc == 0) {
      j->prev_value = v;
      j->prev_day = d;
      j->has_prev = true;
    } else if (prc != SOUK_ENOTFOUND) {
      rc = prc;
    }
  }
  return rc;
}

static void portfolio_reply(pf_job_t *j) {
  souk_buf_t b;
  souk_buf_init(&b);
  int64_t value = j->pf.account.cash_cents;
  size_t unpriced = 0, stale = 0;
  bool overflow = false;
  char s1[MARKET_FMT_MAX], s2[MARKET_FMT_MAX], s3[MARKET_FMT_MAX], s4[MARKET_FMT_MAX];
  for (size_t i = 0; i < j->pf.n; i++) {
    const market_holding_t *h = &j->pf.holdings[i];
    int64_t hv = 0;
    bool have = j->priced[i] && market_gross_down(j->prices[i], h->shares, &hv) == 0;
    if (!have) {
      hv = h->cost_cents;
      unpriced++;
    }
    if (market_add(value, hv, &value)) overflow = true;
    market_fmt_price(market_avg_cost_micro(h->cost_cents, h->shares), s1, sizeof s1);
    if (have)
      market_fmt_price(j->prices[i], s2, sizeof s2);
    else
      snprintf(s2, sizeof s2, "no price");
    market_fmt_cents(hv, s3, sizeof s3);
    market_fmt_change(hv, h->cost_cents, s4, sizeof s4);
    char mark[64] = "";
    if (!have) {
      snprintf(mark, sizeof mark, " [at cost]");
    } else if (j->stale_age[i] >= 0) {
      char age[40];
      market_fmt_age(j->stale_age[i], MARKET_AGE_PLAIN, age, sizeof age);
      snprintf(mark, sizeof mark, " (last known, %s old)", age);
      stale++;
    }
    souk_buf_printf(&b, "%s: %" PRId64 " @ avg %s, now %s = %s (%s)%s\n", h->symbol, h->shares, s1,
                    s2, s3, s4, mark);
  }
  if (!j->pf.n) souk_buf_puts(&b, "No holdings yet: try /buy.\n");
  char cash[MARKET_FMT_MAX], total[MARKET_FMT_MAX], roi[MARKET_FMT_MAX], day[128],
      init[MARKET_FMT_MAX], title[MARKET_NAME_MD_MAX + 64], footer[200];
  market_fmt_cents(j->pf.account.cash_cents, cash, sizeof cash);
  market_fmt_cents(value, total, sizeof total);
  market_fmt_cents(j->pf.account.initial_cents, init, sizeof init);
  market_fmt_change(value, j->pf.account.initial_cents, roi, sizeof roi);
  if (j->has_prev && j->prev_value > 0) {
    char d[MARKET_FMT_MAX], dp[MARKET_FMT_MAX];
    market_fmt_cents(value - j->prev_value, d, sizeof d);
    /* The snapshot compared with: the latest before today (a weekend or a
     * missed day makes it older than yesterday). */
    int64_t pd = j->prev_day;
    snprintf(day, sizeof day, "%s (%s) since the %04d-%02d-%02d snapshot", d,
             market_fmt_change(value, j->prev_value, dp, sizeof dp), (int)(pd / 10000),
             (int)(pd / 100 % 100), (int)(pd % 100));
  } else {
    snprintf(day, sizeof day, "n/a (no snapshot before today)");
  }
  if (j->target == j->base.user)
    snprintf(title, sizeof title, "Your portfolio (season %" PRId64 ")", j->pf.account.season);
  else
    snprintf(title, sizeof title, "Portfolio of %s (season %" PRId64 ")",
             market_name_md(j->target_name, j->target, (char[MARKET_NAME_MD_MAX]){0},
                            MARKET_NAME_MD_MAX),
             j->pf.account.season);
  bool sim = j->base.set.source == MARKET_SRC_SIM;
  if (unpriced)
    souk_buf_printf(&b, "(%zu holding%s valued at cost: no current price)\n", unpriced,
                    unpriced == 1 ? "" : "s");
  if (overflow) souk_buf_puts(&b, "(the total is too large to show exactly)\n");
  if (sim)
    snprintf(footer, sizeof footer, "%s", MARKET_SIM_FOOTER);
  else if (stale)
    snprintf(footer, sizeof footer,
             "Valued at live prices, except %zu holding%s at the last known price (the price "
             "providers are not answering).",
             stale, stale == 1 ? "" : "s");
  else
    snprintf(footer, sizeof footer, "Valued at live prices.");
  souk_embed_field_t f[] = {{"Cash", cash, true},
                            {"Total value", total, true},
                            {"Started with", init, true},
                            {"ROI", roi, true},
                            {"Day change", day, true}};
  souk_embed_t e = {.title = title,
                    .description = b.data,
                    .color = MARKET_COLOR_INFO,
                    .fields = f,
                    .nfields = 5,
                    .footer = footer};
  souk_msg_t m = {.embeds = &e, .nembeds = 1};
  souk_cmd_reply(j->base.ctx, &m);
  souk_buf_free(&b);
  pf_free(&j->base);
}

static void portfolio_priced(pf_job_t *j, const market_pc_result_t *r);

typedef struct pf_price {
  pf_job_t *j;
  size_t i;
} pf_price_t;

static void pf_price_cb(const market_pc_result_t *r, void *ud) {
  pf_price_t *p = ud;
  pf_job_t *j = p->j;
  if (r->err == 0) {
    j->prices[p->i] = r->quote.price_micro;
    j->priced[p->i] = true;
    /* The providers did not answer: a last-known price, up to the cache's
     * TTL old, shown as such. */
    if (r->fallback) j->stale_age[p->i] = r->age_ms;
  }
  souk_free(p);
  portfolio_priced(j, r);
}

static void portfolio_priced(pf_job_t *j, const market_pc_result_t *r) {
  (void)r;
  if (--j->pending == 0) portfolio_reply(j);
}

static void portfolio_done(void *ud, int status) {
  pf_job_t *j = ud;
  if (market_job_failed(&j->base, status)) return;
  if (!j->pf.exists) {
    if (j->target == j->base.user)
      souk_cmd_replyf(j->base.ctx,
                      "You have no account in this season yet: your first /buy opens "
                      "one with %s.",
                      market_fmt_cents(j->base.set.start_cash_cents, (char[MARKET_FMT_MAX]){0},
                                       MARKET_FMT_MAX));
    else
      souk_cmd_replyf(j->base.ctx, "%s has not traded in this season.",
                      market_name_md(j->target_name, j->target, (char[MARKET_NAME_MD_MAX]){0},
                                     MARKET_NAME_MD_MAX));
    pf_free(&j->base);
    return;
  }
  size_t n = j->pf.n;
  j->prices = souk_calloc(n ? n : 1, sizeof *j->prices);
  j->priced = souk_calloc(n ? n : 1, sizeof *j->priced);
  j->stale_age = souk_calloc(n ? n : 1, sizeof *j->stale_age);
  for (size_t i = 0; i < n; i++)
    j->stale_age[i] = -1;
  int64_t now = (int64_t)souk_unix_ms();
  j->pending = 1; /* held until every lookup is started */
  for (size_t i = 0; i < n; i++) {
    const char *s = j->pf.holdings[i].symbol;
    if (j->base.set.source == MARKET_SRC_SIM) {
      market_quote_t q;
      if (market_sim_quote(&market_g.sim, s, now, &q) == 0) {
        j->prices[i] = q.price_micro;
        j->priced[i] = true;
      }
    } else if (market_g.pc) {
      pf_price_t *p = souk_calloc(1, sizeof *p);
      p->j = j;
      p->i = i;
      j->pending++;
      if (market_pc_get(market_g.pc, s, pf_price_cb, p) != 0) {
        souk_free(p);
        j->pending--;
      }
    }
  }
  portfolio_priced(j, NULL);
}

void market_cmd_portfolio(souk_cmd_ctx_t *ctx) {
  if (!market_need_store(ctx)) return;
  pf_job_t *j = souk_calloc(1, sizeof *j);
  market_job_init(&j->base, ctx, pf_free);
  uint64_t who = souk_cmd_arg_id(ctx->args, "user");
  j->target = who ? (int64_t)who : j->base.user;
  const souk_cmd_arg_t *u = souk_cmd_arg(ctx->args, "user");
  if (u && u->text && j->target != j->base.user) market_name_clean(u->text, j->target_name);
  market_job_run(&j->base, portfolio_tx, portfolio_done, false);
}

/* ---- /history ---------------------------------------------------------- */

static int history_tx(souk_db_t *db, void *ud) {
  hist_job_t *j = ud;
  souk_free(j->rows);
  souk_free(j->days);
  j->rows = NULL;
  j->days = NULL;
  j->nrows = j->ndays = 0;
  int rc = market_settings_get(db, j->base.guild, &j->base.defaults, &j->base.set);
  if (rc == 0)
    rc = market_tx_list(db, j->base.guild, 0, j->base.user, (j->page - 1) * MARKET_HIST_PAGE,
                        MARKET_HIST_PAGE, &j->rows, &j->nrows);
  /* The dashboard chart's data: the first page shows it as text. */
  if (rc == 0 && j->page == 1)
    rc = market_history_list(db, j->base.guild, j->base.set.season, j->base.user,
                             MARKET_HISTORY_CHART_DAYS, &j->days, &j->ndays);
  return rc;
}

/* "2026-11-22" for a YYYYMMDD day. */
static void hist_day(int64_t day, char *buf, size_t n) {
  snprintf(buf, n, "%04d-%02d-%02d", (int)(day / 10000), (int)(day / 100 % 100), (int)(day % 100));
}

/* The daily values as text, the dashboard chart's data: the latest
 * MARKET_HIST_DAYS, newest first, each with its change from the one
 * before, into b; the span, high and low of every point into footer. */
static void hist_days_text(const hist_job_t *j, souk_buf_t *b, char *footer, size_t fcap) {
  size_t n = j->ndays, shown = n < MARKET_HIST_DAYS ? n : MARKET_HIST_DAYS;
  for (size_t k = 0; k < shown; k++) {
    size_t i = n - 1 - k;
    char d[16], v[MARKET_FMT_MAX], c[MARKET_FMT_MAX];
    hist_day(j->days[i].day, d, sizeof d);
    market_fmt_cents(j->days[i].value_cents, v, sizeof v);
    if (i > 0)
      souk_buf_printf(
          b, "%s  %s  (%s)\n", d, v,
          market_fmt_change(j->days[i].value_cents, j->days[i - 1].value_cents, c, sizeof c));
    else
      souk_buf_printf(b, "%s  %s\n", d, v);
  }
  size_t hi = 0, lo = 0;
  for (size_t i = 1; i < n; i++) {
    if (j->days[i].value_cents > j->days[hi].value_cents) hi = i;
    if (j->days[i].value_cents < j->days[lo].value_cents) lo = i;
  }
  char first[16], last[16], dh[16], dl[16], vh[MARKET_FMT_MAX], vl[MARKET_FMT_MAX];
  hist_day(j->days[0].day, first, sizeof first);
  hist_day(j->days[n - 1].day, last, sizeof last);
  hist_day(j->days[hi].day, dh, sizeof dh);
  hist_day(j->days[lo].day, dl, sizeof dl);
  snprintf(footer, fcap,
           "%zu daily snapshot%s from %s to %s%s; high %s on %s, low %s on %s. The dashboard "
           "charts them.",
           n, n == 1 ? "" : "s", first, last, shown < n ? " (the latest shown)" : "",
           market_fmt_cents(j->days[hi].value_cents, vh, sizeof vh), dh,
           market_fmt_cents(j->days[lo].value_cents, vl, sizeof vl), dl);
}

static void history_done(void *ud, int status) {
  hist_job_t *j = ud;
  if (market_job_failed(&j->base, status)) return;
  if (!j->nrows && !j->ndays) {
    if (j->page == 1)
      souk_cmd_replyf(j->base.ctx, "You have no trades in this season yet.");
    else
      souk_cmd_replyf(j->base.ctx, "There is no page %" PRId64 " of your trades.", j->page);
    hist_free(&j->base);
    return;
  }
  souk_buf_t b, days;
  souk_buf_init(&b);
  souk_buf_init(&days);
  for (size_t i = 0; i < j->nrows; i++) {
    const market_trade_t *t = &j->rows[i];
    char when[40], p[MARKET_FMT_MAX], a[MARKET_FMT_MAX];
    market_fmt_utc(t->created_at, when, sizeof when);
    market_fmt_price(t->price_micro, p, sizeof p);
    market_fmt_cents(t->amount_cents, a, sizeof a);
    souk_buf_printf(&b, "%s  %s %" PRId64 " %s @ %s = %s%s\n", when,
                    t->side == MARKET_BUY ? "BUY " : "SELL", t->shares, t->symbol, p, a,
                    t->source == MARKET_SRC_SIM ? " (sim)" : "");
  }
  if (!j->nrows) souk_buf_puts(&b, "No trades in this season yet.\n");
  char title[64], dtitle[64], dfooter[300] = "";
  snprintf(title, sizeof title, "Your trades, page %" PRId64, j->page);
  snprintf(dtitle, sizeof dtitle, "Your daily value, season %" PRId64, j->base.set.season);
  souk_embed_t e[2] = {{.title = title,
                        .description = b.data,
                        .color = MARKET_COLOR_INFO,
                        .footer = "Newest first. /history page:<n> for older trades."}};
  size_t ne = 1;
  if (j->ndays) {
    hist_days_text(j, &days, dfooter, sizeof dfooter);
    e[ne++] = (souk_embed_t){
        .title = dtitle, .description = days.data, .color = MARKET_COLOR_INFO, .footer = dfooter};
  }
  souk_msg_t m = {.embeds = e, .nembeds = ne};
  souk_cmd_reply(j->base.ctx, &m);
  souk_buf_free(&b);
  souk_buf_free(&days);
  hist_free(&j->base);
}

void market_cmd_history(souk_cmd_ctx_t *ctx) {
  if (!market_need_store(ctx)) return;
  hist_job_t *j = souk_calloc(1, sizeof *j);
  market_job_init(&j->base, ctx, hist_free);
  j->page = souk_cmd_arg_int(ctx->args, "page", 1);
  if (j->page < 1) j->page = 1;
  market_job_run(&j->base, history_tx, history_done, false);
}
