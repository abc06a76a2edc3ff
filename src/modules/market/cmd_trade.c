/* /buy and /sell: read the guild's settings, price the symbol on the
 * season's source, then trade in one transaction under the invocation's
 * idempotency key (market_trade in ledger.c) and reply with the trade or
 * the reason it was refused. */
#include "cmd_int.h"
#include "fmt.h"
#include "money.h"
#include "souk/alloc.h"
#include "souk/err.h"
#include "souk/loop.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

/* One trade: what was asked, the quote, the request and its outcome. */
typedef struct trade_job {
  market_job_t base;
  char symbol[MARKET_SYMBOL_MAX + 1];
  market_side_t side;
  market_mode_t mode;
  int64_t shares, amount_cents;
  char idem[160];
  market_quote_t quote;
  market_trade_req_t req;
  market_trade_t trade;
  bool retried; /* the transaction ran again after a key clash */
} trade_job_t;

static void trade_free(market_job_t *j) { souk_free(j); }

static int trade_tx(souk_db_t *db, void *ud) {
  trade_job_t *j = ud;
  int rc = market_trade(db, &j->req, &j->trade);
  /* The trade made (or touched) a player: keep their name with it. */
  if (rc == 0)
    rc = market_player_name_put(db, j->base.guild, j->base.user, j->base.name, j->req.now_ms);
  return rc;
}

static void trade_reply_refusal(trade_job_t *j) {
  const market_trade_t *t = &j->trade;
  char a[MARKET_FMT_MAX], b[MARKET_FMT_MAX], p[MARKET_FMT_MAX];
  market_fmt_price(j->req.price_micro, p, sizeof p);
  switch (t->refusal) {
  case MARKET_REFUSE_CASH: {
    int64_t cost = 0;
    if (j->mode == MARKET_BY_SHARES &&
        market_buy_cost(j->req.price_micro, j->shares, t->commission_cents, &cost) == 0)
      souk_cmd_replyf(j->base.ctx,
                      "Not enough cash: %" PRId64 " %s at %s costs %s%s, and you have %s.",
                      j->shares, j->symbol, p, market_fmt_cents(cost, a, sizeof a),
                      t->commission_cents ? " with commission" : "",
                      market_fmt_cents(t->cash_before, b, sizeof b));
    else
      souk_cmd_replyf(j->base.ctx, "Not enough cash for that: you have %s.",
                      market_fmt_cents(t->cash_before, b, sizeof b));
    break;
  }
  case MARKET_REFUSE_SHARES:
    if (j->mode == MARKET_BY_SHARES)
      souk_cmd_replyf(j->base.ctx,
                      "You cannot sell %" PRId64 " %s: you hold fewer shares than that "
                      "(see /portfolio).",
                      j->shares, j->symbol);
    else if (j->mode == MARKET_SELL_ALL)
      souk_cmd_replyf(j->base.ctx, "You hold no %s to sell.", j->symbol);
    else
      souk_cmd_replyf(j->base.ctx,
                      "You hold no %s, or less than that amount's worth (see /portfolio).",
                      j->symbol);
    break;
  case MARKET_REFUSE_ZERO:
    /* A buy by amount pays the commission out of the amount; a sale by
     * amount sells the shares worth it, and the commission comes off the
     * proceeds afterwards. */
    souk_cmd_replyf(j->base.ctx, "That amount does not %s a single share of %s at %s%s.",
                    j->side == MARKET_BUY ? "buy" : "sell", j->symbol, p,
                    t->commission_cents && j->side == MARKET_BUY ? " after commission" : "");
    break;
  case MARKET_REFUSE_OVERFLOW:
    souk_cmd_replyf(j->base.ctx,
                    "That trade is too large to compute exactly; try a smaller quantity.");
    break;
  case MARKET_REFUSE_SOURCE:
    souk_cmd_replyf(j->base.ctx, "This server's season changed its price source meanwhile; "
                                 "nothing was traded. Try again.");
    break;
  case MARKET_REFUSE_COMMISSION:
    souk_cmd_replyf(j->base.ctx,
                    "That sale is worth less than the %s commission; nothing was sold.",
                    market_fmt_cents(t->commission_cents, a, sizeof a));
    break;
  default:
    souk_cmd_replyf(j->base.ctx, "The trade was refused: %s.", market_refusal_str(t->refusal));
    break;
  }
}

static void trade_reply_done(trade_job_t *j) {
  const market_trade_t *t = &j->trade;
  bool buy = t->side == MARKET_BUY;
  char title[96], price[MARKET_FMT_MAX], amt[MARKET_FMT_MAX], comm[MARKET_FMT_MAX],
      cash[MARKET_FMT_MAX], hold[64], real[MARKET_FMT_MAX], shares[32], when[40];
  snprintf(title, sizeof title, "%s%s %" PRId64 " %s", t->duplicate ? "Already done: " : "",
           buy ? "Bought" : "Sold", t->shares, t->symbol);
  /* A receipt is the trade's detail view: the exact price traded at, so
   * shares times it gives the cost shown to the cent. */
  market_fmt_price_exact(t->price_micro, price, sizeof price);
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
                    .color = buy ? MARKET_COLOR_BUY : MARKET_COLOR_SELL,
                    .fields = f,
                    .nfields = n,
                    .description = t->duplicate ? "This command was already carried out; "
                                                  "nothing was traded again."
                                                : NULL,
                    .footer = sim ? MARKET_SIM_FOOTER : NULL};
  souk_msg_t m = {.embeds = &e, .nembeds = 1};
  souk_cmd_reply(j->base.ctx, &m);
}

static void trade_done(void *ud, int status) {
  trade_job_t *j = ud;
  if (status == SOUK_EEXIST && !j->retried) {
    /* Another account committed this key first: the rerun finds it. */
    j->retried = true;
    market_job_run(&j->base, trade_tx, trade_done, true);
    return;
  }
  if (status == SOUK_EEXIST) {
    souk_cmd_errorf(j->base.ctx, "This command's id was already used for a different trade, so "
                                 "nothing was traded. Please run the command again.");
    trade_free(&j->base);
    return;
  }
  if (market_job_failed(&j->base, status)) return;
  market_player_noted(j->base.guild, j->base.user, j->base.name);
  if (j->trade.refusal != MARKET_TRADE_OK && !j->trade.duplicate)
    trade_reply_refusal(j);
  else
    trade_reply_done(j);
  trade_free(&j->base);
}

static void trade_priced(void *ud, const market_pc_result_t *r) {
  trade_job_t *j = ud;
  char p[MARKET_FMT_MAX], age[40];
  if (r->err == SOUK_ECANCELED) {
    souk_cmd_errorf(j->base.ctx, "The market is shutting down; nothing was traded.");
    trade_free(&j->base);
    return;
  }
  if (r->err) {
    if (j->base.set.source == MARKET_SRC_SIM)
      souk_cmd_replyf(j->base.ctx,
                      "Unknown symbol %s: the simulated market does not list it "
                      "(try /price and pick from the list).",
                      j->symbol);
    else
      souk_cmd_replyf(j->base.ctx, "No price for %s, so nothing was traded: %s", j->symbol,
                      r->message ? r->message : "no provider answered");
    trade_free(&j->base);
    return;
  }
  if (!r->tradable) {
    market_fmt_price(r->quote.price_micro, p, sizeof p);
    market_fmt_age(r->age_ms, MARKET_AGE_PLAIN, age, sizeof age);
    souk_cmd_replyf(j->base.ctx,
                    "No fresh price for %s, so nothing was traded: the last known "
                    "price is %s from %s, %s old%s. Try again later.",
                    j->symbol, p, r->quote.source, age,
                    r->fallback ? " (the price providers are not answering)" : "");
    trade_free(&j->base);
    return;
  }
  int64_t now = (int64_t)souk_unix_ms();
  if (j->base.set.hours == MARKET_HOURS_OPEN_ONLY && !market_nyse_open(now)) {
    char when[40];
    market_fmt_utc(market_nyse_next_open(now), when, sizeof when);
    souk_cmd_replyf(j->base.ctx,
                    "The US market is closed, and this server trades only while it is "
                    "open. It opens again %s.",
                    when);
    trade_free(&j->base);
    return;
  }
  j->quote = r->quote;
  j->req = (market_trade_req_t){.guild_id = j->base.guild,
                                .user_id = j->base.user,
                                .symbol = j->symbol,
                                .side = j->side,
                                .mode = j->mode,
                                .shares = j->shares,
                                .amount_cents = j->amount_cents,
                                .price_micro = r->quote.price_micro,
                                .source = j->base.set.source,
                                .price_time_ms =
                                    r->quote.quote_time_ms ? r->quote.quote_time_ms : r->fetched_ms,
                                .idem_key = j->idem,
                                .now_ms = now,
                                .defaults = &j->base.defaults};
  market_job_run(&j->base, trade_tx, trade_done, true);
}

static void trade_settings_done(void *ud, int status) {
  trade_job_t *j = ud;
  if (market_job_failed(&j->base, status)) return;
  if (j->base.set.source == MARKET_SRC_LIVE && !market_g.any_provider) {
    souk_cmd_replyf(j->base.ctx,
                    "This server's season trades on live prices, but no price provider "
                    "is configured. An admin can start a simulated season with "
                    "/market season-reset source:sim.");
    trade_free(&j->base);
    return;
  }
  market_price_symbol(&j->base.set, j->symbol, trade_priced, j);
}

static void trade_cmd(souk_cmd_ctx_t *ctx, market_side_t side) {
  const souk_cmd_args_t *a = ctx->args;
  const souk_cmd_arg_t *sh = souk_cmd_arg(a, "shares");
  const char *amount = souk_cmd_arg_str(a, "amount", NULL);
  bool all = side == MARKET_SELL && souk_cmd_arg_bool(a, "all", false);
  char symbol[MARKET_SYMBOL_MAX + 1];
  if (!market_symbol_arg(ctx, symbol)) return;
  int given = (sh != NULL) + (amount != NULL) + all;
  if (given != 1) {
    souk_cmd_replyf(ctx, "Say how much with exactly one of shares:<n>, amount:<dollars>%s.",
                    side == MARKET_SELL ? " or all:true" : "");
    return;
  }
  int64_t cents = 0;
  if (amount &&
      !market_amount_arg(ctx, "amount", amount, 1, INT64_MAX, "1500, $1,500 or 99.95", &cents))
    return;
  if (sh && sh->i <= 0) {
    souk_cmd_replyf(ctx, "Trade at least one share.");
    return;
  }
  if (!market_need_store(ctx)) return;
  trade_job_t *j = souk_calloc(1, sizeof *j);
  market_job_init(&j->base, ctx, trade_free);
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
  market_job_run(&j->base, market_job_settings_tx, trade_settings_done, false);
}

void market_cmd_buy(souk_cmd_ctx_t *ctx) { trade_cmd(ctx, MARKET_BUY); }
void market_cmd_sell(souk_cmd_ctx_t *ctx) { trade_cmd(ctx, MARKET_SELL); }
