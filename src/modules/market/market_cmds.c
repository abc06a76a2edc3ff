/* The Market Sim's commands: /buy, /sell, /portfolio, /history, /price,
 * /quote, /leaderboard and /market ... (settings, season reset, dashboard,
 * and the owners' daily-update and price cache commands).
 *
 * Every handler finishes its ctx exactly once.  Work runs in steps: read
 * the guild's settings on the worker pool, price on the loop (the
 * simulated market directly, the live chain through the price cache),
 * then write or read the ledger on the worker pool and reply from the
 * done callback.  Each step's failure replies and frees the job. */
#include "fmt.h"
#include "market_int.h"
#include "money.h"
#include "souk/alloc.h"
#include "souk/err.h"
#include "souk/log.h"
#include "souk/loop.h"
#include "souk/store.h"

#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LB_PAGE           10
#define HIST_PAGE         10
#define LB_STALE_MS       (15 * 60 * 1000)
#define LB_MAX_PAGE       100000 /* as the page option's maximum */
#define LB_TAG_WINDOW_MIN 1440   /* a button's snapshot minute is within a day of now */
#define COLOR_BUY         0x2ecc71
#define COLOR_SELL        0xe67e22
#define COLOR_INFO        0x3498db
#define SIM_FOOTER        "Simulated market: prices are made up, not real quotes."

typedef enum job_op {
  OP_BUY,
  OP_SELL,
  OP_PRICE,
  OP_QUOTE,
  OP_PORTFOLIO,
  OP_HISTORY,
  OP_LEADERBOARD,
  OP_SETTINGS,
  OP_DASHBOARD,
  OP_RESET_ASK,
  OP_RESET_DO,
  OP_COMPLETE,
} job_op_t;

typedef struct job {
  souk_cmd_ctx_t *ctx;
  job_op_t op;
  int64_t guild, user, target;
  char symbol[MARKET_SYMBOL_MAX + 1];
  market_settings_t defaults, set;
  /* trades */
  market_side_t side;
  market_mode_t mode;
  int64_t shares, amount_cents;
  char idem[160];
  market_quote_t quote;
  market_trade_req_t req;
  market_trade_t trade;
  bool retried;
  /* portfolio */
  market_portfolio_t pf;
  int64_t prev_value, prev_day; /* prev_day: YYYYMMDD */
  bool has_prev;
  int64_t *prices;
  bool *priced;
  int64_t *stale_age; /* -1, or the age of a last-known (fallback) price */
  size_t pending;
  /* history */
  market_trade_t *rows;
  size_t nrows;
  int64_t page;
  /* leaderboard */
  market_snap_t snap;
  market_rank_by_t by;
  market_rank_t *ranks;
  size_t nranks, total;
  int64_t tag_season, tag_min;
  bool stale_note;
  /* settings, reset, dashboard */
  bool flag;
  market_source_t new_source;
  int64_t new_season;
  bool set_cash, set_comm, set_hours;
  int64_t cash, comm;
  market_hours_t hours;
  /* autocomplete */
  char typed[MARKET_SYMBOL_MAX + 1];
  char (*held)[MARKET_SYMBOL_MAX + 1];
  size_t nheld;
} job_t;

static job_t *job_new(souk_cmd_ctx_t *ctx, job_op_t op) {
  job_t *j = souk_calloc(1, sizeof *j);
  j->ctx = ctx;
  j->op = op;
  j->guild = (int64_t)ctx->guild_id;
  j->user = (int64_t)ctx->user_id;
  j->defaults = market_g.defaults;
  j->defaults.guild_id = j->guild;
  return j;
}

static void job_free(job_t *j) {
  market_portfolio_free(&j->pf);
  souk_free(j->prices);
  souk_free(j->priced);
  souk_free(j->stale_age);
  souk_free(j->rows);
  souk_free(j->ranks);
  souk_free(j->held);
  market_snap_free(&j->snap);
  souk_free(j);
}

/* Finish with an error about the store and free the job. */
static void job_store_error(job_t *j, int status) {
  if (status == SOUK_ENOSPC)
    /* Not a moment's wait: someone must free disk space first. */
    souk_cmd_errorf(j->ctx,
                    "That did not happen: the bot's disk is full, so nothing can be saved "
                    "(no trade was made and nothing changed). Please tell the bot's operator.");
  else
    souk_cmd_errorf(j->ctx,
                    "The game's records are not available right now (%s); nothing "
                    "changed. Try again in a moment.",
                    souk_strerror(status));
  job_free(j);
}

static souk_store_t *need_store(souk_cmd_ctx_t *ctx) {
  souk_store_t *st = market_g.store;
  if (!st)
    souk_cmd_errorf(ctx, "The market needs the store, and there is none in this process.");
  else if (!market_g.started)
    souk_cmd_errorf(ctx, "The market is not running.");
  else
    return st;
  return NULL;
}

/* Run fn on the pool and then done; on a refused start, reply and free. */
static void job_run(job_t *j, souk_store_tx_cb fn, souk_store_done_cb done, bool write) {
  souk_store_t *st = market_g.store;
  int rc = !st     ? SOUK_ENOTSUP
           : write ? souk_store_tx_async(st, fn, done, j)
                   : souk_store_read_async(st, fn, done, j);
  if (rc) job_store_error(j, rc);
}

/* Upper-case a typed symbol into out; false if it is not one. */
static bool symbol_norm(const char *in, char *out, size_t cap) {
  size_t n = 0;
  while (*in == ' ' || *in == '$')
    in++;
  for (; *in && *in != ' ' && n + 1 < cap; in++)
    out[n++] = (char)toupper((unsigned char)*in);
  out[n] = '\0';
  while (*in == ' ')
    in++;
  return *in == '\0' && market_symbol_valid(out);
}

/* A change from base to value as a percentage, truncated to basis points
 * but keeping the true sign: a loss too small to show is "-0.00%", never
 * "+0.00%". */
static char *fmt_change(int64_t value, int64_t base, char *buf, size_t n) {
  int64_t bp = 0;
  if (base <= 0 || market_roi_bp(value, base, &bp) != 0) {
    snprintf(buf, n, "n/a");
    return buf;
  }
  market_fmt_bp(bp, buf, n);
  if (bp == 0 && value < base && buf[0] == '+') buf[0] = '-';
  return buf;
}

static const char *source_label(const market_quote_t *q) {
  return strcmp(q->source, "simulated") == 0 ? "simulated market (not a real price)" : q->source;
}

static int settings_read_tx(souk_db_t *db, void *ud) {
  job_t *j = ud;
  return market_settings_get(db, j->guild, &j->defaults, &j->set);
}

/* ---- pricing ------------------------------------------------------------ */

typedef void (*priced_cb)(job_t *j, const market_pc_result_t *r);

typedef struct price_req {
  job_t *j;
  priced_cb fn;
  size_t idx;
} price_req_t;

static void price_cb(const market_pc_result_t *r, void *ud) {
  price_req_t *p = ud;
  job_t *j = p->j;
  priced_cb fn = p->fn;
  souk_free(p);
  fn(j, r);
}

/* Price j->symbol from the guild's source: fn runs exactly once, maybe
 * before this returns. */
static void price_symbol(job_t *j, const char *symbol, priced_cb fn) {
  if (j->set.source == MARKET_SRC_SIM) {
    market_pc_result_t r = {0};
    int64_t now = (int64_t)souk_unix_ms();
    r.err = market_sim_quote(&market_g.sim, symbol, now, &r.quote);
    if (r.err == 0) {
      r.tradable = true;
      r.age_ms = now - r.quote.quote_time_ms;
      r.fetched_ms = now;
    } else {
      r.err = SOUK_ENOTFOUND;
      r.message = "the simulated market does not list it";
    }
    fn(j, &r);
    return;
  }
  if (!market_g.pc) {
    market_pc_result_t r = {.err = SOUK_ENOTFOUND, .message = "the price cache is not running"};
    fn(j, &r);
    return;
  }
  price_req_t *p = souk_calloc(1, sizeof *p);
  p->j = j;
  p->fn = fn;
  if (market_pc_get(market_g.pc, symbol, price_cb, p) != 0) {
    souk_free(p);
    market_pc_result_t r = {.err = SOUK_ENOTFOUND, .message = "not a valid symbol"};
    fn(j, &r);
  }
}

/* ---- /buy and /sell ------------------------------------------------------ */

static int trade_tx(souk_db_t *db, void *ud) {
  job_t *j = ud;
  return market_trade(db, &j->req, &j->trade);
}

static void trade_reply_refusal(job_t *j) {
  const market_trade_t *t = &j->trade;
  char a[MARKET_FMT_MAX], b[MARKET_FMT_MAX], p[MARKET_FMT_MAX];
  market_fmt_price(j->req.price_micro, p, sizeof p);
  switch (t->refusal) {
  case MARKET_REFUSE_CASH: {
    int64_t cost = 0;
    if (j->mode == MARKET_BY_SHARES &&
        market_buy_cost(j->req.price_micro, j->shares, t->commission_cents, &cost) == 0)
      souk_cmd_replyf(j->ctx, "Not enough cash: %" PRId64 " %s at %s costs %s%s, and you have %s.",
                      j->shares, j->symbol, p, market_fmt_cents(cost, a, sizeof a),
                      t->commission_cents ? " with commission" : "",
                      market_fmt_cents(t->cash_before, b, sizeof b));
    else
      souk_cmd_replyf(j->ctx, "Not enough cash for that: you have %s.",
                      market_fmt_cents(t->cash_before, b, sizeof b));
    break;
  }
  case MARKET_REFUSE_SHARES:
    if (j->mode == MARKET_BY_SHARES)
      souk_cmd_replyf(j->ctx,
                      "You cannot sell %" PRId64 " %s: you hold fewer shares than that "
                      "(see /portfolio).",
                      j->shares, j->symbol);
    else if (j->mode == MARKET_SELL_ALL)
      souk_cmd_replyf(j->ctx, "You hold no %s to sell.", j->symbol);
    else
      souk_cmd_replyf(j->ctx, "You hold no %s, or less than that amount's worth (see /portfolio).",
                      j->symbol);
    break;
  case MARKET_REFUSE_ZERO:
    /* A buy by amount pays the commission out of the amount; a sale by
     * amount sells the shares worth it, and the commission comes off the
     * proceeds afterwards. */
    souk_cmd_replyf(j->ctx, "That amount does not %s a single share of %s at %s%s.",
                    j->side == MARKET_BUY ? "buy" : "sell", j->symbol, p,
                    t->commission_cents && j->side == MARKET_BUY ? " after commission" : "");
    break;
  case MARKET_REFUSE_OVERFLOW:
    souk_cmd_replyf(j->ctx, "That trade is too large to compute exactly; try a smaller quantity.");
    break;
  case MARKET_REFUSE_SOURCE:
    souk_cmd_replyf(j->ctx, "This server's season changed its price source meanwhile; "
                            "nothing was traded. Try again.");
    break;
  case MARKET_REFUSE_COMMISSION:
    souk_cmd_replyf(j->ctx, "That sale is worth less than the %s commission; nothing was sold.",
                    market_fmt_cents(t->commission_cents, a, sizeof a));
    break;
  default:
    souk_cmd_replyf(j->ctx, "The trade was refused: %s.", market_refusal_str(t->refusal));
    break;
  }
}

static void trade_reply_done(job_t *j) {
  const market_trade_t *t = &j->trade;
  bool buy = t->side == MARKET_BUY;
  char title[96], price[MARKET_FMT_MAX], amt[MARKET_FMT_MAX], comm[MARKET_FMT_MAX],
      cash[MARKET_FMT_MAX], hold[64], real[MARKET_FMT_MAX], shares[32], when[40];
  snprintf(title, sizeof title, "%s%s %" PRId64 " %s", t->duplicate ? "Already done: " : "",
           buy ? "Bought" : "Sold", t->shares, t->symbol);
  market_fmt_price(t->price_micro, price, sizeof price);
  int64_t total =
      buy ? t->amount_cents + t->commission_cents : t->amount_cents - t->commission_cents;
  market_fmt_cents(total, amt, sizeof amt);
  market_fmt_cents(t->commission_cents, comm, sizeof comm);
  market_fmt_cents(t->cash_after, cash, sizeof cash);
  snprintf(shares, sizeof shares, "%" PRId64, t->shares);
  snprintf(hold, sizeof hold, "%" PRId64 " share%s", t->holding_shares,
           t->holding_shares == 1 ? "" : "s");
  market_fmt_cents(t->realised_cents, real, sizeof real);
  market_fmt_utc(t->price_time_ms, when, sizeof when);
  bool sim = t->source == MARKET_SRC_SIM;
  const char *src = sim ? "simulated market (not a real price)" : j->quote.source;
  if (t->duplicate) src = sim ? "simulated market (not a real price)" : "live";
  souk_embed_field_t f[9];
  size_t n = 0;
  f[n++] = (souk_embed_field_t){"Price", price, true};
  f[n++] = (souk_embed_field_t){"Shares", shares, true};
  f[n++] = (souk_embed_field_t){buy ? "Cost" : "Proceeds", amt, true};
  if (t->commission_cents) f[n++] = (souk_embed_field_t){"Commission", comm, true};
  f[n++] = (souk_embed_field_t){"Cash after", cash, true};
  if (!t->duplicate) f[n++] = (souk_embed_field_t){"Now holding", hold, true};
  if (!buy && !t->duplicate) f[n++] = (souk_embed_field_t){"Realised P/L", real, true};
  f[n++] = (souk_embed_field_t){"Source", src, true};
  f[n++] = (souk_embed_field_t){"Quote time", when, true};
  souk_embed_t e = {.title = title,
                    .color = buy ? COLOR_BUY : COLOR_SELL,
                    .fields = f,
                    .nfields = n,
                    .description = t->duplicate ? "This command was already carried out; "
                                                  "nothing was traded again."
                                                : NULL,
                    .footer = sim ? SIM_FOOTER : NULL};
  souk_msg_t m = {.embeds = &e, .nembeds = 1};
  souk_cmd_reply(j->ctx, &m);
}

static void trade_done(void *ud, int status) {
  job_t *j = ud;
  if (status == SOUK_EEXIST && !j->retried) {
    /* Another account committed this key first: the rerun finds it. */
    j->retried = true;
    job_run(j, trade_tx, trade_done, true);
    return;
  }
  if (status == SOUK_EEXIST) {
    souk_cmd_errorf(j->ctx, "This command's id was already used for a different trade, so "
                            "nothing was traded. Please run the command again.");
    job_free(j);
    return;
  }
  if (status) {
    job_store_error(j, status);
    return;
  }
  if (j->trade.refusal != MARKET_TRADE_OK && !j->trade.duplicate)
    trade_reply_refusal(j);
  else
    trade_reply_done(j);
  job_free(j);
}

static void trade_priced(job_t *j, const market_pc_result_t *r) {
  char p[MARKET_FMT_MAX], age[40];
  if (r->err == SOUK_ECANCELED) {
    souk_cmd_errorf(j->ctx, "The market is shutting down; nothing was traded.");
    job_free(j);
    return;
  }
  if (r->err) {
    if (j->set.source == MARKET_SRC_SIM)
      souk_cmd_replyf(j->ctx,
                      "Unknown symbol %s: the simulated market does not list it "
                      "(try /price and pick from the list).",
                      j->symbol);
    else
      souk_cmd_replyf(j->ctx, "No price for %s, so nothing was traded: %s", j->symbol,
                      r->message ? r->message : "no provider answered");
    job_free(j);
    return;
  }
  if (!r->tradable) {
    market_fmt_price(r->quote.price_micro, p, sizeof p);
    market_fmt_age(r->age_ms, MARKET_AGE_PLAIN, age, sizeof age);
    souk_cmd_replyf(j->ctx,
                    "No fresh price for %s, so nothing was traded: the last known "
                    "price is %s from %s, %s old%s. Try again later.",
                    j->symbol, p, r->quote.source, age,
                    r->fallback ? " (the price providers are not answering)" : "");
    job_free(j);
    return;
  }
  int64_t now = (int64_t)souk_unix_ms();
  if (j->set.hours == MARKET_HOURS_OPEN_ONLY && !market_nyse_open(now)) {
    char when[40];
    market_fmt_utc(market_nyse_next_open(now), when, sizeof when);
    souk_cmd_replyf(j->ctx,
                    "The US market is closed, and this server trades only while it is "
                    "open. It opens again %s.",
                    when);
    job_free(j);
    return;
  }
  j->quote = r->quote;
  j->req = (market_trade_req_t){.guild_id = j->guild,
                                .user_id = j->user,
                                .symbol = j->symbol,
                                .side = j->side,
                                .mode = j->mode,
                                .shares = j->shares,
                                .amount_cents = j->amount_cents,
                                .price_micro = r->quote.price_micro,
                                .source = j->set.source,
                                .price_time_ms =
                                    r->quote.quote_time_ms ? r->quote.quote_time_ms : r->fetched_ms,
                                .idem_key = j->idem,
                                .now_ms = now,
                                .defaults = &j->defaults};
  job_run(j, trade_tx, trade_done, true);
}

static void trade_settings_done(void *ud, int status) {
  job_t *j = ud;
  if (status) {
    job_store_error(j, status);
    return;
  }
  if (j->set.source == MARKET_SRC_LIVE && !market_g.any_provider) {
    souk_cmd_replyf(j->ctx, "This server's season trades on live prices, but no price provider "
                            "is configured. An admin can start a simulated season with "
                            "/market season-reset source:sim.");
    job_free(j);
    return;
  }
  price_symbol(j, j->symbol, trade_priced);
}

static void trade_cmd(souk_cmd_ctx_t *ctx, market_side_t side) {
  const souk_cmd_args_t *a = ctx->args;
  const char *sym = souk_cmd_arg_str(a, "symbol", "");
  const souk_cmd_arg_t *sh = souk_cmd_arg(a, "shares");
  const char *amount = souk_cmd_arg_str(a, "amount", NULL);
  bool all = side == MARKET_SELL && souk_cmd_arg_bool(a, "all", false);
  char symbol[MARKET_SYMBOL_MAX + 1];
  if (!symbol_norm(sym, symbol, sizeof symbol)) {
    souk_cmd_replyf(ctx,
                    "`%.20s` is not a stock symbol (letters, digits, '.' or '-', like AAPL "
                    "or BRK.B).",
                    sym);
    return;
  }
  int given = (sh != NULL) + (amount != NULL) + all;
  if (given != 1) {
    souk_cmd_replyf(ctx, "Say how much with exactly one of shares:<n>, amount:<dollars>%s.",
                    side == MARKET_SELL ? " or all:true" : "");
    return;
  }
  int64_t cents = 0;
  if (amount) {
    int rc = market_parse_cents(amount, &cents);
    if (rc == SOUK_ERANGE) {
      souk_cmd_replyf(ctx, "That amount is too large.");
      return;
    }
    if (rc || cents <= 0) {
      souk_cmd_replyf(ctx, "`%.30s` is not a dollar amount; write it like 1500, $1,500 or 99.95.",
                      amount);
      return;
    }
  }
  if (sh && sh->i <= 0) {
    souk_cmd_replyf(ctx, "Trade at least one share.");
    return;
  }
  if (!need_store(ctx)) return;
  job_t *j = job_new(ctx, side == MARKET_BUY ? OP_BUY : OP_SELL);
  memcpy(j->symbol, symbol, sizeof symbol);
  j->side = side;
  j->mode = all ? MARKET_SELL_ALL : amount ? MARKET_BY_AMOUNT : MARKET_BY_SHARES;
  j->shares = sh ? sh->i : 0;
  j->amount_cents = cents;
  snprintf(j->idem, sizeof j->idem, "market:%s", ctx->idem_key ? ctx->idem_key : "");
  if (!ctx->idem_key || !ctx->idem_key[0]) {
    /* No key from the surface: make one so the trade still applies once. */
    snprintf(j->idem, sizeof j->idem, "market:local:%" PRIu64 ":%p", souk_unix_ms(), (void *)j);
  }
  job_run(j, settings_read_tx, trade_settings_done, false);
}

static void cmd_buy(souk_cmd_ctx_t *ctx) { trade_cmd(ctx, MARKET_BUY); }
static void cmd_sell(souk_cmd_ctx_t *ctx) { trade_cmd(ctx, MARKET_SELL); }

/* ---- /price and /quote ----------------------------------------------------- */

static void quote_priced(job_t *j, const market_pc_result_t *r) {
  if (r->err) {
    if (j->set.source == MARKET_SRC_SIM)
      souk_cmd_replyf(j->ctx, "Unknown symbol %s: the simulated market does not list it.",
                      j->symbol);
    else if (r->err == SOUK_ECANCELED)
      souk_cmd_errorf(j->ctx, "The market is shutting down.");
    else
      souk_cmd_replyf(j->ctx, "No price for %s: %s", j->symbol,
                      r->message ? r->message : "no provider answered");
    job_free(j);
    return;
  }
  const market_quote_t *q = &r->quote;
  char p[MARKET_FMT_MAX], pc[MARKET_FMT_MAX], ch[MARKET_FMT_MAX + 2], chp[MARKET_FMT_MAX], age[40],
      when[40], title[64], status[160];
  market_fmt_price(q->price_micro, p, sizeof p);
  market_fmt_age(r->age_ms, MARKET_AGE_PLAIN, age, sizeof age);
  market_fmt_utc(q->quote_time_ms ? q->quote_time_ms : r->fetched_ms, when, sizeof when);
  bool sim = j->set.source == MARKET_SRC_SIM;
  if (r->fallback)
    snprintf(status, sizeof status,
             "last known price, %s old: the price providers are not "
             "answering (not tradable)",
             age);
  else if (!r->tradable)
    snprintf(status, sizeof status, "%s old: too old to trade at", age);
  else
    snprintf(status, sizeof status, "%s old", age);
  if (j->op == OP_PRICE) {
    souk_cmd_replyf(j->ctx, "%s: %s (%s; %s)%s", j->symbol, p, source_label(q), status,
                    sim ? "\n" SIM_FOOTER : "");
    job_free(j);
    return;
  }
  snprintf(title, sizeof title, "%s quote%s", j->symbol, sim ? " (simulated)" : "");
  souk_embed_field_t f[7];
  size_t n = 0;
  f[n++] = (souk_embed_field_t){"Price", p, true};
  if (q->prev_close_micro > 0) {
    market_fmt_price(q->prev_close_micro, pc, sizeof pc);
    int64_t d = q->price_micro - q->prev_close_micro;
    char tmp[MARKET_FMT_MAX];
    market_fmt_price(d < 0 ? -d : d, tmp, sizeof tmp);
    snprintf(ch, sizeof ch, "%s%s", d < 0 ? "-" : "+", tmp);
    fmt_change(q->price_micro, q->prev_close_micro, chp, sizeof chp);
    f[n++] = (souk_embed_field_t){"Previous close", pc, true};
    f[n++] = (souk_embed_field_t){"Change", ch, true};
    f[n++] = (souk_embed_field_t){"Change %", chp, true};
  }
  f[n++] = (souk_embed_field_t){"Source", source_label(q), true};
  f[n++] = (souk_embed_field_t){"Quote time", when, true};
  f[n++] = (souk_embed_field_t){"Freshness", status, false};
  const char *name = NULL;
  if (sim) {
    for (size_t i = 0, k = market_sim_symbol_count(); i < k; i++) {
      const char *nm;
      const char *s = market_sim_symbol(i, NULL, &nm);
      if (s && strcmp(s, j->symbol) == 0) name = nm;
    }
  }
  souk_embed_t e = {.title = title,
                    .description = name,
                    .color = COLOR_INFO,
                    .fields = f,
                    .nfields = n,
                    .footer = sim ? SIM_FOOTER : NULL};
  souk_msg_t m = {.embeds = &e, .nembeds = 1};
  souk_cmd_reply(j->ctx, &m);
  job_free(j);
}

static void quote_settings_done(void *ud, int status) {
  job_t *j = ud;
  if (status) {
    job_store_error(j, status);
    return;
  }
  price_symbol(j, j->symbol, quote_priced);
}

static void quote_cmd(souk_cmd_ctx_t *ctx, job_op_t op) {
  const char *sym = souk_cmd_arg_str(ctx->args, "symbol", "");
  char symbol[MARKET_SYMBOL_MAX + 1];
  if (!symbol_norm(sym, symbol, sizeof symbol)) {
    souk_cmd_replyf(ctx, "`%.20s` is not a stock symbol (like AAPL or BRK.B).", sym);
    return;
  }
  if (!need_store(ctx)) return;
  job_t *j = job_new(ctx, op);
  memcpy(j->symbol, symbol, sizeof symbol);
  job_run(j, settings_read_tx, quote_settings_done, false);
}

static void cmd_price(souk_cmd_ctx_t *ctx) { quote_cmd(ctx, OP_PRICE); }
static void cmd_quote(souk_cmd_ctx_t *ctx) { quote_cmd(ctx, OP_QUOTE); }

/* Autocomplete: the simulated market's symbols, then the guild's held
 * symbols and the cached ones, matching what was typed. */
static bool ac_add(souk_cmd_choice_t *out, size_t *n, const char *s, const char *typed) {
  if (*n >= SOUK_CMD_CHOICES_MAX) return false;
  if (strncmp(s, typed, strlen(typed)) != 0) return true;
  for (size_t i = 0; i < *n; i++)
    if (strcmp(out[i].value, s) == 0) return true;
  out[*n] = (souk_cmd_choice_t){s, s};
  (*n)++;
  return true;
}

static int held_tx(souk_db_t *db, void *ud) {
  job_t *j = ud;
  souk_free(j->held);
  j->held = NULL;
  j->nheld = 0;
  int rc = market_settings_get(db, j->guild, &j->defaults, &j->set);
  if (rc == 0) rc = market_symbols_held(db, j->guild, &j->held, &j->nheld);
  return rc;
}

static void held_done(void *ud, int status) {
  job_t *j = ud;
  souk_cmd_choice_t out[SOUK_CMD_CHOICES_MAX];
  size_t n = 0;
  market_quote_t cq[SOUK_CMD_CHOICES_MAX];
  size_t ncq = 0;
  if (status == 0)
    for (size_t i = 0; i < j->nheld; i++)
      ac_add(out, &n, j->held[i], j->typed);
  bool sim = status != 0 || j->set.source == MARKET_SRC_SIM;
  if (sim) {
    for (size_t i = 0, k = market_sim_symbol_count(); i < k; i++) {
      const char *s = market_sim_symbol(i, NULL, NULL);
      if (s && !ac_add(out, &n, s, j->typed)) break;
    }
  } else if (market_g.pc) {
    for (size_t i = 0, k = market_pc_count(market_g.pc); i < k && ncq < SOUK_CMD_CHOICES_MAX; i++) {
      if (market_pc_at(market_g.pc, i, &cq[ncq], NULL) == 0 &&
          strncmp(cq[ncq].symbol, j->typed, strlen(j->typed)) == 0) {
        ac_add(out, &n, cq[ncq].symbol, j->typed);
        ncq++;
      }
    }
  }
  souk_cmd_choices(j->ctx, out, n);
  job_free(j);
}

static void complete_symbol(souk_cmd_ctx_t *ctx) {
  const souk_cmd_arg_t *f = souk_cmd_focused(ctx->args);
  job_t *j = job_new(ctx, OP_COMPLETE);
  const char *t = f && f->text ? f->text : "";
  size_t n = 0;
  for (; *t && n < MARKET_SYMBOL_MAX; t++)
    if (*t != ' ' && *t != '$') j->typed[n++] = (char)toupper((unsigned char)*t);
  j->typed[n] = '\0';
  souk_store_t *st = market_g.store;
  if (!st || ctx->guild_id == 0 || souk_store_read_async(st, held_tx, held_done, j) != 0)
    held_done(j, SOUK_ENOTSUP);
}

/* ---- /portfolio --------------------------------------------------------------- */

static int portfolio_tx(souk_db_t *db, void *ud) {
  job_t *j = ud;
  market_portfolio_free(&j->pf);
  j->has_prev = false;
  int rc = market_settings_get(db, j->guild, &j->defaults, &j->set);
  if (rc == 0) rc = market_portfolio_get(db, j->guild, 0, j->target, &j->pf);
  if (rc == 0 && j->pf.exists) {
    int64_t v = 0, d = 0;
    int prc = market_history_prev(db, j->guild, 0, j->target,
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

static void portfolio_reply(job_t *j) {
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
    fmt_change(hv, h->cost_cents, s4, sizeof s4);
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
      init[MARKET_FMT_MAX], title[128], footer[200];
  market_fmt_cents(j->pf.account.cash_cents, cash, sizeof cash);
  market_fmt_cents(value, total, sizeof total);
  market_fmt_cents(j->pf.account.initial_cents, init, sizeof init);
  fmt_change(value, j->pf.account.initial_cents, roi, sizeof roi);
  if (j->has_prev && j->prev_value > 0) {
    char d[MARKET_FMT_MAX], dp[MARKET_FMT_MAX];
    market_fmt_cents(value - j->prev_value, d, sizeof d);
    /* The snapshot compared with: the latest before today (a weekend or a
     * missed day makes it older than yesterday). */
    int64_t pd = j->prev_day;
    snprintf(day, sizeof day, "%s (%s) since the %04d-%02d-%02d snapshot", d,
             fmt_change(value, j->prev_value, dp, sizeof dp), (int)(pd / 10000),
             (int)(pd / 100 % 100), (int)(pd % 100));
  } else {
    snprintf(day, sizeof day, "n/a (no snapshot before today)");
  }
  if (j->target == j->user)
    snprintf(title, sizeof title, "Your portfolio (season %" PRId64 ")", j->pf.account.season);
  else
    snprintf(title, sizeof title, "Portfolio of <@%" PRId64 "> (season %" PRId64 ")", j->target,
             j->pf.account.season);
  bool sim = j->set.source == MARKET_SRC_SIM;
  if (unpriced)
    souk_buf_printf(&b, "(%zu holding%s valued at cost: no current price)\n", unpriced,
                    unpriced == 1 ? "" : "s");
  if (overflow) souk_buf_puts(&b, "(the total is too large to show exactly)\n");
  if (sim)
    snprintf(footer, sizeof footer, "%s", SIM_FOOTER);
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
                    .color = COLOR_INFO,
                    .fields = f,
                    .nfields = 5,
                    .footer = footer};
  souk_msg_t m = {.embeds = &e, .nembeds = 1};
  souk_cmd_reply(j->ctx, &m);
  souk_buf_free(&b);
  job_free(j);
}

static void portfolio_priced(job_t *j, const market_pc_result_t *r);

typedef struct pf_price {
  job_t *j;
  size_t i;
} pf_price_t;

static void pf_price_cb(const market_pc_result_t *r, void *ud) {
  pf_price_t *p = ud;
  job_t *j = p->j;
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

static void portfolio_priced(job_t *j, const market_pc_result_t *r) {
  (void)r;
  if (--j->pending == 0) portfolio_reply(j);
}

static void portfolio_done(void *ud, int status) {
  job_t *j = ud;
  if (status) {
    job_store_error(j, status);
    return;
  }
  if (!j->pf.exists) {
    if (j->target == j->user)
      souk_cmd_replyf(
          j->ctx,
          "You have no account in this season yet: your first /buy opens "
          "one with %s.",
          market_fmt_cents(j->set.start_cash_cents, (char[MARKET_FMT_MAX]){0}, MARKET_FMT_MAX));
    else
      souk_cmd_replyf(j->ctx, "<@%" PRId64 "> has not traded in this season.", j->target);
    job_free(j);
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
    if (j->set.source == MARKET_SRC_SIM) {
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

static void cmd_portfolio(souk_cmd_ctx_t *ctx) {
  if (!need_store(ctx)) return;
  job_t *j = job_new(ctx, OP_PORTFOLIO);
  uint64_t who = souk_cmd_arg_id(ctx->args, "user");
  j->target = who ? (int64_t)who : j->user;
  job_run(j, portfolio_tx, portfolio_done, false);
}

/* ---- /history ----------------------------------------------------------------- */

static int history_tx(souk_db_t *db, void *ud) {
  job_t *j = ud;
  souk_free(j->rows);
  j->rows = NULL;
  j->nrows = 0;
  int rc = market_settings_get(db, j->guild, &j->defaults, &j->set);
  if (rc == 0)
    rc = market_tx_list(db, j->guild, 0, j->user, (j->page - 1) * HIST_PAGE, HIST_PAGE, &j->rows,
                        &j->nrows);
  return rc;
}

static void history_done(void *ud, int status) {
  job_t *j = ud;
  if (status) {
    job_store_error(j, status);
    return;
  }
  if (!j->nrows) {
    if (j->page == 1)
      souk_cmd_replyf(j->ctx, "You have no trades in this season yet.");
    else
      souk_cmd_replyf(j->ctx, "There is no page %" PRId64 " of your trades.", j->page);
    job_free(j);
    return;
  }
  souk_buf_t b;
  souk_buf_init(&b);
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
  char title[64];
  snprintf(title, sizeof title, "Your trades, page %" PRId64, j->page);
  souk_embed_t e = {.title = title,
                    .description = b.data,
                    .color = COLOR_INFO,
                    .footer = "Newest first. /history page:<n> for older trades."};
  souk_msg_t m = {.embeds = &e, .nembeds = 1};
  souk_cmd_reply(j->ctx, &m);
  souk_buf_free(&b);
  job_free(j);
}

static void cmd_history(souk_cmd_ctx_t *ctx) {
  if (!need_store(ctx)) return;
  job_t *j = job_new(ctx, OP_HISTORY);
  j->page = souk_cmd_arg_int(ctx->args, "page", 1);
  if (j->page < 1) j->page = 1;
  job_run(j, history_tx, history_done, false);
}

/* ---- /leaderboard --------------------------------------------------------------- */

#define LB_PREFIX "market:lb:"

static int lb_tx(souk_db_t *db, void *ud) {
  job_t *j = ud;
  souk_free(j->ranks);
  j->ranks = NULL;
  j->nranks = j->total = 0;
  int rc = market_settings_get(db, j->guild, &j->defaults, &j->set);
  if (rc) return rc;
  /* The snapshot was taken on the loop for both sources; use this
   * guild's. */
  j->snap.sim = j->set.source == MARKET_SRC_SIM;
  return market_leaderboard(db, j->guild, 0, j->by, market_snap_price, &j->snap,
                            (j->page - 1) * LB_PAGE, LB_PAGE, &j->ranks, &j->nranks, &j->total);
}

static void lb_done(void *ud, int status) {
  job_t *j = ud;
  if (status) {
    job_store_error(j, status);
    return;
  }
  if (j->tag_season && j->tag_season != j->set.season) {
    souk_cmd_replyf(j->ctx,
                    "This leaderboard is from season %" PRId64 ", which has ended. Run "
                    "/leaderboard again for season %" PRId64 ".",
                    j->tag_season, j->set.season);
    job_free(j);
    return;
  }
  int64_t pages = j->total ? ((int64_t)j->total + LB_PAGE - 1) / LB_PAGE : 1;
  if (!j->total) {
    souk_cmd_replyf(j->ctx, "Nobody has traded in this season yet: be the first with /buy.");
    job_free(j);
    return;
  }
  if (j->page > pages) {
    if (pages == 1)
      souk_cmd_replyf(j->ctx, "There is only 1 page of the leaderboard.");
    else
      souk_cmd_replyf(j->ctx, "There are only %" PRId64 " pages of the leaderboard.", pages);
    job_free(j);
    return;
  }
  souk_buf_t b;
  souk_buf_init(&b);
  if (j->stale_note)
    souk_buf_puts(&b, "(That page was over 15 minutes old; this is the current ranking.)\n");
  for (size_t i = 0; i < j->nranks; i++) {
    const market_rank_t *r = &j->ranks[i];
    char v[MARKET_FMT_MAX], roi[MARKET_FMT_MAX];
    market_fmt_cents(r->value_cents, v, sizeof v);
    if (r->initial_cents > 0)
      fmt_change(r->value_cents, r->initial_cents, roi, sizeof roi);
    else
      market_fmt_bp(r->roi_bp, roi, sizeof roi);
    souk_buf_printf(&b, "%" PRId64 ". <@%" PRId64 "> %s (%s)\n", r->rank, r->user_id, v, roi);
  }
  char title[96], footer[160];
  snprintf(title, sizeof title, "Leaderboard by %s, season %" PRId64,
           j->by == MARKET_RANK_ROI ? "ROI" : "value", j->set.season);
  snprintf(footer, sizeof footer, "Page %" PRId64 " of %" PRId64 " - %zu traders%s", j->page, pages,
           j->total, j->set.source == MARKET_SRC_SIM ? " - simulated market" : "");
  int64_t tag_min = j->tag_min ? j->tag_min : (int64_t)(souk_unix_ms() / 60000);
  char prev_id[SOUK_CMD_CUSTOM_ID_MAX + 1], next_id[SOUK_CMD_CUSTOM_ID_MAX + 1], st[64];
  snprintf(st, sizeof st, "%" PRId64 ":%c:%" PRId64 ":%" PRId64, j->page > 1 ? j->page - 1 : 1,
           j->by == MARKET_RANK_ROI ? 'r' : 'v', j->set.season, tag_min);
  souk_cmd_custom_id(prev_id, sizeof prev_id, LB_PREFIX, st);
  snprintf(st, sizeof st, "%" PRId64 ":%c:%" PRId64 ":%" PRId64,
           j->page < pages ? j->page + 1 : pages, j->by == MARKET_RANK_ROI ? 'r' : 'v',
           j->set.season, tag_min);
  souk_cmd_custom_id(next_id, sizeof next_id, LB_PREFIX, st);
  souk_component_t c[2] = {
      {.custom_id = prev_id,
       .label = "\xe2\x97\x80",
       .style = SOUK_BUTTON_SECONDARY,
       .disabled = j->page <= 1},
      {.custom_id = next_id,
       .label = "\xe2\x96\xb6",
       .style = SOUK_BUTTON_SECONDARY,
       .disabled = j->page >= pages},
  };
  souk_embed_t e = {.title = title, .description = b.data, .color = COLOR_INFO, .footer = footer};
  souk_msg_t m = {.embeds = &e, .nembeds = 1, .components = c, .ncomponents = pages > 1 ? 2 : 0};
  if (j->ctx->kind == SOUK_CMD_KIND_COMPONENT)
    souk_cmd_update(j->ctx, &m);
  else
    souk_cmd_reply(j->ctx, &m);
  souk_buf_free(&b);
  job_free(j);
}

static void lb_start(job_t *j) {
  /* Take the price snapshot on the loop (the cache is the loop's); the
   * transaction picks sim or live by the guild's settings. */
  market_snap_fill(&j->snap, MARKET_SRC_LIVE);
  job_run(j, lb_tx, lb_done, false);
}

static void cmd_leaderboard(souk_cmd_ctx_t *ctx) {
  if (!need_store(ctx)) return;
  job_t *j = job_new(ctx, OP_LEADERBOARD);
  const char *by = souk_cmd_arg_str(ctx->args, "by", "value");
  j->by = strcmp(by, "roi") == 0 ? MARKET_RANK_ROI : MARKET_RANK_VALUE;
  j->page = souk_cmd_arg_int(ctx->args, "page", 1);
  if (j->page < 1) j->page = 1;
  lb_start(j);
}

/* custom_id state: "<page>:<v|r>:<season>:<unix minute of the first page>". */
static void lb_press(souk_cmd_ctx_t *ctx) {
  long long page = 0, season = 0, minute = 0;
  char by = 0;
  int used = 0;
  if (!ctx->state ||
      sscanf(ctx->state, "%lld:%c:%lld:%lld%n", &page, &by, &season, &minute, &used) != 4 ||
      ctx->state[used] != '\0' || page < 1 || (by != 'v' && by != 'r') || ctx->guild_id == 0) {
    souk_cmd_replyf(ctx, "This leaderboard button is no longer valid; run /leaderboard again.");
    return;
  }
  if (!need_store(ctx)) return;
  job_t *j = job_new(ctx, OP_LEADERBOARD);
  j->page = page;
  j->by = by == 'r' ? MARKET_RANK_ROI : MARKET_RANK_VALUE;
  j->tag_season = season;
  j->tag_min = minute;
  /* The button's text comes from the client: a page beyond what the
   * command accepts (so (page - 1) * LB_PAGE cannot overflow) or a minute
   * not within a day of now is an old or forged button, answered like a
   * stale one with the current first page. */
  int64_t now_min = (int64_t)(souk_unix_ms() / 60000);
  if (page > LB_MAX_PAGE || minute < now_min - LB_TAG_WINDOW_MIN ||
      minute > now_min + LB_TAG_WINDOW_MIN) {
    j->page = 1;
    j->stale_note = true;
    j->tag_min = 0;
  } else if (now_min - minute > LB_STALE_MS / 60000) {
    j->stale_note = true;
    j->tag_min = 0; /* the new page starts a new snapshot tag */
  }
  lb_start(j);
}

/* ---- /market ... ------------------------------------------------------------------ */

static void settings_done(void *ud, int status) {
  job_t *j = ud;
  if (status) {
    job_store_error(j, status);
    return;
  }
  char cash[MARKET_FMT_MAX], comm[MARKET_FMT_MAX], since[40], prov[160], season[32];
  market_fmt_cents(j->set.start_cash_cents, cash, sizeof cash);
  market_fmt_cents(j->set.commission_cents, comm, sizeof comm);
  market_fmt_utc(j->set.season_started_at, since, sizeof since);
  snprintf(season, sizeof season, "%" PRId64, j->set.season);
  size_t n = 0;
  prov[0] = '\0';
  for (int p = 0; p < MARKET_PROV_COUNT; p++) {
    if (market_g.chain && market_chain_enabled(market_g.chain, (market_provider_id_t)p))
      n += (size_t)snprintf(prov + n, sizeof prov - n, "%s%s", n ? ", " : "",
                            market_provider_name((market_provider_id_t)p));
  }
  if (!n) snprintf(prov, sizeof prov, "none (simulated market only)");
  const char *src = j->set.source == MARKET_SRC_SIM ? "simulated market" : "live prices";
  souk_embed_field_t f[] = {
      {"Season", season, true},
      {"Since", j->set.stored ? since : "not started yet", true},
      {"Price source", src, true},
      {"Starting cash", cash, true},
      {"Commission", comm, true},
      {"Trading hours",
       j->set.hours == MARKET_HOURS_OPEN_ONLY ? "only while the NYSE is open"
                                              : "any time, at the last price",
       true},
      {"Dashboard", j->set.dashboard_public ? "public" : "private", true},
      {"Providers", prov, false},
  };
  souk_embed_t e = {.title = "Market settings",
                    .color = COLOR_INFO,
                    .fields = f,
                    .nfields = 8,
                    .footer = j->set.source == MARKET_SRC_SIM ? SIM_FOOTER : NULL};
  souk_msg_t m = {.embeds = &e, .nembeds = 1};
  souk_cmd_reply(j->ctx, &m);
  job_free(j);
}

static void cmd_settings(souk_cmd_ctx_t *ctx) {
  if (!need_store(ctx)) return;
  job_run(job_new(ctx, OP_SETTINGS), settings_read_tx, settings_done, false);
}

static int dashboard_tx(souk_db_t *db, void *ud) {
  job_t *j = ud;
  int64_t now = (int64_t)souk_unix_ms();
  int rc = market_settings_ensure(db, j->guild, &j->defaults, now, &j->set);
  if (rc) return rc;
  j->set.dashboard_public = j->flag;
  return market_settings_set(db, &j->set, now);
}

static void dashboard_done(void *ud, int status) {
  job_t *j = ud;
  if (status) {
    job_store_error(j, status);
    return;
  }
  if (j->flag)
    souk_cmd_replyf(j->ctx,
                    "This server's market dashboard is now public: /market/%" PRId64
                    " on the bot's web server.",
                    j->guild);
  else
    souk_cmd_replyf(j->ctx, "This server's market dashboard is now private.");
  job_free(j);
}

static void cmd_dashboard(souk_cmd_ctx_t *ctx) {
  const char *state = souk_cmd_arg_str(ctx->args, "state", "");
  bool on = strcmp(state, "on") == 0;
  if (!on && strcmp(state, "off") != 0) {
    souk_cmd_replyf(ctx, "Say state:on or state:off.");
    return;
  }
  if (!need_store(ctx)) return;
  job_t *j = job_new(ctx, OP_DASHBOARD);
  j->flag = on;
  job_run(j, dashboard_tx, dashboard_done, true);
}

/* /market set: this guild's starting cash, commission and hours policy. */
static int set_tx(souk_db_t *db, void *ud) {
  job_t *j = ud;
  int64_t now = (int64_t)souk_unix_ms();
  int rc = market_settings_ensure(db, j->guild, &j->defaults, now, &j->set);
  if (rc) return rc;
  if (j->set_cash) j->set.start_cash_cents = j->cash;
  if (j->set_comm) j->set.commission_cents = j->comm;
  if (j->set_hours) j->set.hours = j->hours;
  return market_settings_set(db, &j->set, now);
}

/* The settings registry mirrors this guild's starting cash and
 * commission (market_settings_watch), so /settings and /setup show and
 * change them. */
static void settings_mirror(const job_t *j) {
  char v[48], err[160];
  if (j->set_cash) {
    snprintf(v, sizeof v, "%" PRId64 ".%02" PRId64, j->set.start_cash_cents / 100,
             j->set.start_cash_cents % 100);
    souk_setting_set((uint64_t)j->guild, "market.start_cash", v, (uint64_t)j->user, err,
                     sizeof err);
  }
  if (j->set_comm) {
    snprintf(v, sizeof v, "%" PRId64 ".%02" PRId64, j->set.commission_cents / 100,
             j->set.commission_cents % 100);
    souk_setting_set((uint64_t)j->guild, "market.commission", v, (uint64_t)j->user, err,
                     sizeof err);
  }
}

static void set_done(void *ud, int status) {
  job_t *j = ud;
  if (!j->ctx) {
    /* A change made through the settings registry. */
    if (status)
      SOUK_WARN("market", "guild %" PRId64 ": the market settings could not be saved: %s", j->guild,
                souk_strerror(status));
    job_free(j);
    return;
  }
  if (status) {
    job_store_error(j, status);
    return;
  }
  settings_mirror(j);
  char cash[MARKET_FMT_MAX], comm[MARKET_FMT_MAX];
  souk_cmd_replyf(j->ctx,
                  "Market settings saved: starting cash %s (for accounts opened from now on), "
                  "commission %s per trade, trading %s.",
                  market_fmt_cents(j->set.start_cash_cents, cash, sizeof cash),
                  market_fmt_cents(j->set.commission_cents, comm, sizeof comm),
                  j->set.hours == MARKET_HOURS_OPEN_ONLY ? "only while the NYSE is open"
                                                         : "any time at the last price");
  job_free(j);
}

static void cmd_set(souk_cmd_ctx_t *ctx) {
  const char *cash = souk_cmd_arg_str(ctx->args, "start_cash", NULL);
  const char *comm = souk_cmd_arg_str(ctx->args, "commission", NULL);
  const char *hours = souk_cmd_arg_str(ctx->args, "hours", NULL);
  if (!cash && !comm && !hours) {
    souk_cmd_replyf(ctx, "Give at least one of start_cash, commission or hours.");
    return;
  }
  int64_t cash_c = 0, comm_c = 0;
  if (cash && (market_parse_cents(cash, &cash_c) != 0 || cash_c > INT64_C(100000000000000))) {
    souk_cmd_replyf(ctx,
                    "`%.30s` is not a starting cash amount (e.g. $1,000,000, at most "
                    "$1,000,000,000,000).",
                    cash);
    return;
  }
  if (comm && (market_parse_cents(comm, &comm_c) != 0 || comm_c > 100000000)) {
    souk_cmd_replyf(ctx,
                    "`%.30s` is not a commission in dollars (e.g. 1.50, at most "
                    "$1,000,000).",
                    comm);
    return;
  }
  if (hours && strcmp(hours, "open_only") != 0 && strcmp(hours, "last_price") != 0) {
    souk_cmd_replyf(ctx, "hours is open_only or last_price.");
    return;
  }
  if (!need_store(ctx)) return;
  job_t *j = job_new(ctx, OP_SETTINGS);
  j->set_cash = cash != NULL;
  j->cash = cash_c;
  j->set_comm = comm != NULL;
  j->comm = comm_c;
  j->set_hours = hours != NULL;
  j->hours =
      hours && strcmp(hours, "open_only") == 0 ? MARKET_HOURS_OPEN_ONLY : MARKET_HOURS_LAST_PRICE;
  job_run(j, set_tx, set_done, true);
}

#define RESET_PREFIX "market:reset:"

static void reset_ask_done(void *ud, int status) {
  job_t *j = ud;
  if (status) {
    job_store_error(j, status);
    return;
  }
  char st[48], id[SOUK_CMD_CUSTOM_ID_MAX + 1];
  snprintf(st, sizeof st, "%" PRId64 ":%s", j->set.season, market_source_name(j->new_source));
  souk_cmd_custom_id(id, sizeof id, RESET_PREFIX, st);
  char text[400];
  snprintf(text, sizeof text,
           "Start season %" PRId64 " on %s? Every account starts again from the starting cash; "
           "season %" PRId64 "'s trades stay in the history. Press the button to confirm.",
           j->set.season + 1,
           j->new_source == MARKET_SRC_SIM ? "the simulated market" : "live prices", j->set.season);
  souk_component_t c[1] = {
      {.custom_id = id, .label = "Start a new season", .style = SOUK_BUTTON_DANGER}};
  souk_msg_t m = {.content = text, .components = c, .ncomponents = 1, .ephemeral = true};
  souk_cmd_reply(j->ctx, &m);
  job_free(j);
}

static bool parse_source(const char *s, market_source_t *out) {
  if (strcmp(s, "sim") == 0)
    *out = MARKET_SRC_SIM;
  else if (strcmp(s, "live") == 0)
    *out = MARKET_SRC_LIVE;
  else
    return false;
  return true;
}

/* market.start_cash or market.commission changed through /settings or
 * /setup (or in another process): write it to this guild's game, as
 * /market set does.  The values read back equal to what is stored are
 * written again, which changes nothing. */
static void market_setting_changed(uint64_t guild, const souk_setting_t *s, void *ud) {
  (void)ud;
  souk_store_t *st = market_g.store;
  if (!st || !market_g.started || !guild) return;
  job_t *j = souk_calloc(1, sizeof *j);
  j->guild = (int64_t)guild;
  j->defaults = market_g.defaults;
  j->defaults.guild_id = j->guild;
  if (strcmp(s->key, "market.start_cash") == 0) {
    j->set_cash = true;
    j->cash = souk_setting_int(guild, s->key);
  } else {
    j->set_comm = true;
    j->comm = souk_setting_int(guild, s->key);
  }
  if (souk_store_tx_async(st, set_tx, set_done, j) != 0) job_free(j);
}

void market_settings_watch(void) {
  static const char *const keys[] = {"market.start_cash", "market.commission"};
  for (size_t i = 0; i < 2; i++) {
    int rc = souk_setting_watch(keys[i], market_setting_changed, NULL);
    if (rc) SOUK_WARN("market", "cannot watch %s: %s", keys[i], souk_strerror(rc));
  }
}

static const char *const source_setting_choices[] = {"auto", "sim", "live", NULL};

const souk_setting_t market_settings_table[] = {
    {.key = "market.start_cash",
     .scope = SOUK_SETTING_GUILD,
     .type = SOUK_SETTING_MONEY,
     .decimals = 2,
     .min = 0,
     .max = INT64_C(100000000000000),
     .config_key = "market.start_cash",
     .label = "Starting cash",
     .description = "Cash of a Market Sim account opened in this server from now on, in dollars.",
     .step = "market"},
    {.key = "market.commission",
     .scope = SOUK_SETTING_GUILD,
     .type = SOUK_SETTING_MONEY,
     .def = "0",
     .decimals = 2,
     .min = 0,
     .max = 100000000,
     .label = "Commission per trade",
     .description = "Dollars taken from every Market Sim trade in this server.",
     .step = "market"},
    {.key = "market.source",
     .scope = SOUK_SETTING_GUILD,
     .type = SOUK_SETTING_ENUM,
     .choices = source_setting_choices,
     .config_key = "market.source",
     .def = "auto",
     .label = "Price source of the next season",
     .description = "Where prices come from after the next /market season-reset: auto (live when "
                    "a provider is configured), sim or live.",
     .step = "market"},
    {0},
};

static void cmd_reset(souk_cmd_ctx_t *ctx) {
  const char *s = souk_cmd_arg_str(ctx->args, "source", NULL);
  market_source_t src = market_g.defaults.source;
  /* No source given: the guild's market.source setting, if it names one. */
  const char *setting = souk_setting_str(ctx->guild_id, "market.source");
  if (!s && (strcmp(setting, "sim") == 0 || strcmp(setting, "live") == 0)) s = setting;
  if (s && !parse_source(s, &src)) {
    souk_cmd_replyf(ctx, "source is sim or live.");
    return;
  }
  if (src == MARKET_SRC_LIVE && !market_g.any_provider) {
    souk_cmd_replyf(ctx, "A live season needs a price provider, and none is configured; "
                         "use source:sim.");
    return;
  }
  if (!need_store(ctx)) return;
  job_t *j = job_new(ctx, OP_RESET_ASK);
  j->new_source = src;
  job_run(j, settings_read_tx, reset_ask_done, false);
}

static int reset_tx(souk_db_t *db, void *ud) {
  job_t *j = ud;
  j->flag = false;
  int rc = market_settings_get(db, j->guild, &j->defaults, &j->set);
  if (rc) return rc;
  if (j->set.season != j->tag_season) {
    j->flag = true; /* already reset by someone else */
    return 0;
  }
  return market_season_reset(db, j->guild, &j->defaults, j->new_source, (int64_t)souk_unix_ms(),
                             &j->new_season);
}

static void reset_done(void *ud, int status) {
  job_t *j = ud;
  if (status) {
    job_store_error(j, status);
    return;
  }
  if (j->flag)
    souk_cmd_replyf(j->ctx,
                    "Season %" PRId64 " already ended; this server is in season %" PRId64
                    " now. Nothing changed.",
                    j->tag_season, j->set.season);
  else {
    SOUK_INFO("market", "guild %" PRId64 " started season %" PRId64 " (%s) by user %" PRId64,
              j->guild, j->new_season, market_source_name(j->new_source), j->user);
    souk_cmd_replyf(j->ctx,
                    "Season %" PRId64 " has started on %s. Everyone starts again with "
                    "the starting cash at their first trade.",
                    j->new_season,
                    j->new_source == MARKET_SRC_SIM ? "the simulated market" : "live prices");
  }
  job_free(j);
}

static void reset_press(souk_cmd_ctx_t *ctx) {
  if (ctx->guild_id == 0 ||
      !(ctx->permissions & (SOUK_PERM_MANAGE_GUILD | SOUK_PERM_ADMINISTRATOR))) {
    souk_cmd_replyf(ctx, "You need the Manage Server permission to reset the season.");
    return;
  }
  long long season = 0;
  char src[8] = "";
  int used = 0;
  market_source_t s;
  if (!ctx->state || sscanf(ctx->state, "%lld:%7[a-z]%n", &season, src, &used) != 2 ||
      ctx->state[used] != '\0' || season < 1 || !parse_source(src, &s)) {
    souk_cmd_replyf(ctx, "This button is no longer valid; run /market season-reset again.");
    return;
  }
  if (!need_store(ctx)) return;
  job_t *j = job_new(ctx, OP_RESET_DO);
  j->tag_season = season;
  j->new_source = s;
  job_run(j, reset_tx, reset_done, true);
}

/* Owners: the daily update and the price cache. */

static void daily_cmd_done(void *ud, int status, const market_snapshot_stats_t *st) {
  souk_cmd_ctx_t *ctx = ud;
  if (status) {
    souk_cmd_errorf(ctx, "The daily update failed: %s.", souk_strerror(status));
    return;
  }
  souk_cmd_replyf(ctx,
                  "Daily update done: %" PRId64 " accounts valued, %" PRId64
                  " snapshots written, %" PRId64 " already there today, %" PRId64
                  " holdings without a price (valued at cost).",
                  st->accounts, st->inserted, st->existing, st->unpriced);
}

/* The reply waits for the run: it is bounded (at most
 * market.daily_update.max_fetch symbols refreshed, none started after
 * DAILY_WARM_MS in market.c), so it ends within a few minutes at worst,
 * far inside the 15 minutes Discord allows a deferred reply. */
static void cmd_daily(souk_cmd_ctx_t *ctx) {
  if (!need_store(ctx)) return;
  int rc = market_daily_run(daily_cmd_done, ctx);
  if (rc) souk_cmd_errorf(ctx, "The daily update cannot start: %s.", souk_strerror(rc));
}

static void cache_done(void *ud, int status, size_t n) {
  souk_cmd_ctx_t *ctx = ud;
  if (status)
    souk_cmd_errorf(ctx, "The price cache operation failed: %s.", souk_strerror(status));
  else
    souk_cmd_replyf(ctx, "Done: %zu prices.", n);
}

static void cmd_flushcache(souk_cmd_ctx_t *ctx) {
  if (!need_store(ctx)) return;
  int rc = market_pc_flush(market_g.pc, cache_done, ctx);
  if (rc) souk_cmd_errorf(ctx, "Cannot save the price cache: %s.", souk_strerror(rc));
}

static void cmd_reloadcache(souk_cmd_ctx_t *ctx) {
  if (!need_store(ctx)) return;
  int rc = market_pc_reload(market_g.pc, cache_done, ctx);
  if (rc) souk_cmd_errorf(ctx, "Cannot reload the price cache: %s.", souk_strerror(rc));
}

static void cmd_clearcache(souk_cmd_ctx_t *ctx) {
  if (!market_g.pc) {
    souk_cmd_errorf(ctx, "The market is not running.");
    return;
  }
  size_t n = market_pc_count(market_g.pc);
  market_pc_clear(market_g.pc);
  souk_cmd_replyf(ctx,
                  "Cleared %zu prices from memory (the saved copies stay; "
                  "/market reloadcache brings them back).",
                  n);
}

static void cmd_cache(souk_cmd_ctx_t *ctx) {
  if (!market_g.pc) {
    souk_cmd_errorf(ctx, "The market is not running.");
    return;
  }
  market_pc_stats_t s;
  market_pc_stats(market_g.pc, &s);
  souk_cmd_replyf(ctx,
                  "Price cache: %zu entries, %" PRIu64 " hits, %" PRIu64 " misses, %" PRIu64
                  " refreshes, %" PRIu64 " stale answers, %" PRIu64 " coalesced, %" PRIu64
                  " saved.",
                  s.entries, s.hits, s.misses, s.refreshes, s.stale, s.coalesced, s.persisted);
}

/* ---- tables ------------------------------------------------------------------------ */

#define OPT_SYMBOL                                                                                 \
  {                                                                                                \
    .name = "symbol", .description = "Stock symbol, e.g. AAPL", .type = SOUK_OPT_STRING,           \
    .required = true, .autocomplete = true, .min_length = 1, .max_length = MARKET_SYMBOL_MAX       \
  }

static const souk_cmd_option_t opt_buy[] = {
    OPT_SYMBOL,
    {.name = "shares",
     .description = "Whole shares to buy",
     .type = SOUK_OPT_INTEGER,
     SOUK_OPT_INT_RANGE(1, 1000000000000LL)},
    {.name = "amount",
     .description = "Or a dollar amount to spend, e.g. 1500 or $1,500.50",
     .type = SOUK_OPT_STRING,
     .max_length = 32},
    {0},
};
static const souk_cmd_option_t opt_sell[] = {
    OPT_SYMBOL,
    {.name = "shares",
     .description = "Whole shares to sell",
     .type = SOUK_OPT_INTEGER,
     SOUK_OPT_INT_RANGE(1, 1000000000000LL)},
    {.name = "amount",
     .description = "Or a dollar amount's worth to sell",
     .type = SOUK_OPT_STRING,
     .max_length = 32},
    {.name = "all", .description = "Or sell every share", .type = SOUK_OPT_BOOLEAN},
    {0},
};
static const souk_cmd_option_t opt_symbol[] = {OPT_SYMBOL, {0}};
static const souk_cmd_option_t opt_user[] = {
    {.name = "user", .description = "Whose portfolio (default: yours)", .type = SOUK_OPT_USER},
    {0},
};
static const souk_cmd_option_t opt_page[] = {
    {.name = "page",
     .description = "Page (default 1)",
     .type = SOUK_OPT_INTEGER,
     SOUK_OPT_INT_RANGE(1, 100000)},
    {0},
};
static const souk_cmd_choice_t by_choices[] = {{"total value", "value"}, {"ROI", "roi"}, {NULL}};
static const souk_cmd_option_t opt_lb[] = {
    {.name = "by",
     .description = "Rank by total value or ROI",
     .type = SOUK_OPT_STRING,
     .choices = by_choices},
    {.name = "page",
     .description = "Page (default 1)",
     .type = SOUK_OPT_INTEGER,
     SOUK_OPT_INT_RANGE(1, LB_MAX_PAGE)},
    {0},
};
static const souk_cmd_choice_t onoff[] = {{"on", "on"}, {"off", "off"}, {NULL}};
static const souk_cmd_option_t opt_dash[] = {
    {.name = "state",
     .description = "on: public pages; off: private",
     .type = SOUK_OPT_STRING,
     .required = true,
     .choices = onoff},
    {0},
};
static const souk_cmd_choice_t hours_choices[] = {{"only while the NYSE is open", "open_only"},
                                                  {"any time, at the last price", "last_price"},
                                                  {NULL}};
static const souk_cmd_option_t opt_set[] = {
    {.name = "start_cash",
     .description = "Cash of new accounts, e.g. $1,000,000",
     .type = SOUK_OPT_STRING,
     .max_length = 32},
    {.name = "commission",
     .description = "Commission per trade in dollars, e.g. 1.50",
     .type = SOUK_OPT_STRING,
     .max_length = 32},
    {.name = "hours",
     .description = "When trades are allowed",
     .type = SOUK_OPT_STRING,
     .choices = hours_choices},
    {0},
};
static const souk_cmd_choice_t src_choices[] = {
    {"simulated market", "sim"}, {"live prices", "live"}, {NULL}};
static const souk_cmd_option_t opt_reset[] = {
    {.name = "source",
     .description = "Price source of the new season (default: the bot's)",
     .type = SOUK_OPT_STRING,
     .choices = src_choices},
    {0},
};

static const souk_command_t market_subs[] = {
    {.name = "settings", .description = "This server's game settings", .handler = cmd_settings},
    {.name = "set",
     .description = "Change starting cash, commission or trading hours",
     .options = opt_set,
     .permissions = SOUK_PERM_MANAGE_GUILD,
     .handler = cmd_set},
    {.name = "season-reset",
     .description = "Start a new season (asks to confirm)",
     .options = opt_reset,
     .permissions = SOUK_PERM_MANAGE_GUILD,
     .handler = cmd_reset},
    {.name = "dashboard",
     .description = "Make this server's web dashboard public or private",
     .options = opt_dash,
     .permissions = SOUK_PERM_MANAGE_GUILD,
     .handler = cmd_dashboard},
    {.name = "daily-update",
     .description = "Take today's portfolio snapshot now (bot owners)",
     .flags = SOUK_CMD_OWNER_ONLY,
     .handler = cmd_daily},
    {.name = "flushcache",
     .description = "Save the price cache to the store now (bot owners)",
     .flags = SOUK_CMD_OWNER_ONLY,
     .handler = cmd_flushcache},
    {.name = "clearcache",
     .description = "Empty the in-memory price cache (bot owners)",
     .flags = SOUK_CMD_OWNER_ONLY,
     .handler = cmd_clearcache},
    {.name = "reloadcache",
     .description = "Load the saved prices into the cache (bot owners)",
     .flags = SOUK_CMD_OWNER_ONLY,
     .handler = cmd_reloadcache},
    {.name = "cache",
     .description = "Price cache statistics (bot owners)",
     .flags = SOUK_CMD_OWNER_ONLY,
     .handler = cmd_cache},
    {0},
};

static const char *const buy_ex[] = {"/buy symbol:AAPL shares:10", "/buy symbol:MSFT amount:$5,000",
                                     NULL};
static const char *const sell_ex[] = {"/sell symbol:AAPL shares:5", "/sell symbol:AAPL all:true",
                                      NULL};
static const char *const market_ex[] = {"/market settings", "/market season-reset source:sim",
                                        "/market dashboard state:on", NULL};

const souk_command_t market_commands[] = {
    {.name = "buy",
     .description = "Buy shares with your game cash",
     .category = "Market",
     .usage = buy_ex,
     .options = opt_buy,
     .flags = SOUK_CMD_GUILD_ONLY,
     .handler = cmd_buy,
     .autocomplete = complete_symbol},
    {.name = "sell",
     .description = "Sell shares you hold",
     .category = "Market",
     .usage = sell_ex,
     .options = opt_sell,
     .flags = SOUK_CMD_GUILD_ONLY,
     .handler = cmd_sell,
     .autocomplete = complete_symbol},
    {.name = "portfolio",
     .description = "Cash, holdings, value and ROI",
     .category = "Market",
     .options = opt_user,
     .flags = SOUK_CMD_GUILD_ONLY,
     .handler = cmd_portfolio},
    {.name = "history",
     .description = "Your recent trades",
     .category = "Market",
     .options = opt_page,
     .flags = SOUK_CMD_GUILD_ONLY,
     .handler = cmd_history},
    {.name = "price",
     .description = "A stock's current price",
     .category = "Market",
     .options = opt_symbol,
     .flags = SOUK_CMD_GUILD_ONLY,
     .handler = cmd_price,
     .autocomplete = complete_symbol},
    {.name = "quote",
     .description = "A stock's quote: price, change, source and time",
     .category = "Market",
     .options = opt_symbol,
     .flags = SOUK_CMD_GUILD_ONLY,
     .handler = cmd_quote,
     .autocomplete = complete_symbol},
    {.name = "leaderboard",
     .description = "The season's ranking by value or ROI",
     .category = "Market",
     .options = opt_lb,
     .flags = SOUK_CMD_GUILD_ONLY,
     .handler = cmd_leaderboard},
    {.name = "market",
     .description = "The market game's settings and seasons",
     .category = "Market",
     .usage = market_ex,
     .flags = SOUK_CMD_GUILD_ONLY,
     .subcommands = market_subs},
    {0},
};

const souk_cmd_component_t market_components[] = {
    {LB_PREFIX, lb_press},
    {RESET_PREFIX, reset_press},
    {0},
};
