/* What the market's command files share; see cmd_int.h. */
#include "cmd_int.h"
#include "money.h"
#include "souk/alloc.h"
#include "souk/buf.h"
#include "souk/err.h"
#include "souk/loop.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

/* ---- the job ---------------------------------------------------------- */

void market_job_init(market_job_t *j, souk_cmd_ctx_t *ctx, void (*free)(market_job_t *j)) {
  j->ctx = ctx;
  j->guild = (int64_t)ctx->guild_id;
  j->user = (int64_t)ctx->user_id;
  market_name_clean(ctx->user_name, j->name);
  market_player_seen(ctx, market_g.store);
  j->defaults = market_g.defaults;
  j->defaults.guild_id = j->guild;
  j->free = free;
}

/* Finish with an error about the store and free the job. */
static void store_error(market_job_t *j, int status) {
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
  j->free(j);
}

bool market_job_failed(market_job_t *j, int status) {
  if (!status) return false;
  store_error(j, status);
  return true;
}

void market_job_run(market_job_t *j, souk_store_tx_cb fn, souk_store_done_cb done, bool write) {
  souk_store_t *st = market_g.store;
  int rc = !st     ? SOUK_ENOTSUP
           : write ? souk_store_tx_async(st, fn, done, j)
                   : souk_store_read_async(st, fn, done, j);
  if (rc) store_error(j, rc);
}

int market_job_settings_tx(souk_db_t *db, void *ud) {
  market_job_t *j = ud;
  return market_settings_get(db, j->guild, &j->defaults, &j->set);
}

souk_store_t *market_need_store(souk_cmd_ctx_t *ctx) {
  souk_store_t *st = market_g.store;
  if (!st)
    souk_cmd_errorf(ctx, "The market needs the store, and there is none in this process.");
  else if (!market_g.started)
    souk_cmd_errorf(ctx, "The market is not running.");
  else
    return st;
  return NULL;
}

/* ---- pricing ------------------------------------------------------------ */

typedef struct price_req {
  void (*fn)(void *ud, const market_pc_result_t *r);
  void *ud;
} price_req_t;

static void price_cb(const market_pc_result_t *r, void *ud) {
  price_req_t p = *(price_req_t *)ud;
  souk_free(ud);
  p.fn(p.ud, r);
}

void market_price_symbol(const market_settings_t *set, const char *symbol,
                         void (*fn)(void *ud, const market_pc_result_t *r), void *ud) {
  if (set->source == MARKET_SRC_SIM) {
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
    fn(ud, &r);
    return;
  }
  if (!market_g.pc) {
    market_pc_result_t r = {.err = SOUK_ENOTFOUND, .message = "the price cache is not running"};
    fn(ud, &r);
    return;
  }
  price_req_t *p = souk_calloc(1, sizeof *p);
  p->fn = fn;
  p->ud = ud;
  if (market_pc_get(market_g.pc, symbol, price_cb, p) != 0) {
    souk_free(p);
    market_pc_result_t r = {.err = SOUK_ENOTFOUND, .message = "not a valid symbol"};
    fn(ud, &r);
  }
}

/* ---- text ------------------------------------------------------------- */

bool market_symbol_norm(const char *in, char *out, size_t cap) {
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

bool market_symbol_arg(souk_cmd_ctx_t *ctx, char *out) {
  const char *sym = souk_cmd_arg_str(ctx->args, "symbol", "");
  if (market_symbol_norm(sym, out, MARKET_SYMBOL_MAX + 1)) return true;
  char q[128];
  souk_cmd_replyf(ctx,
                  "`%s` is not a stock symbol: a symbol starts with a letter and has up to %d "
                  "letters, digits, '.' or '-', like AAPL or BRK.B.",
                  souk_cmd_quote(q, sizeof q, sym, strlen(sym)), MARKET_SYMBOL_MAX);
  return false;
}

bool market_amount_arg(souk_cmd_ctx_t *ctx, const char *opt, const char *text, int64_t min_cents,
                       int64_t max_cents, const char *examples, int64_t *cents) {
  char q[128], lo[MARKET_FMT_MAX], hi[MARKET_FMT_MAX], range[120];
  souk_cmd_quote(q, sizeof q, text, strlen(text));
  market_fmt_cents(min_cents > 0 ? min_cents - 1 : 0, lo, sizeof lo);
  market_fmt_cents(max_cents, hi, sizeof hi);
  /* What the option accepts, in words: "more than $0.00", "from $0.00 to
   * $1,000,000.00". */
  if (min_cents > 0)
    snprintf(range, sizeof range, "more than %s%s%s", lo,
             max_cents < INT64_MAX ? " and at most " : "", max_cents < INT64_MAX ? hi : "");
  else
    snprintf(range, sizeof range, "from %s to %s", lo, hi);
  int64_t v = 0;
  int rc = market_parse_cents(text, &v);
  while (*text == ' ')
    text++;
  if (rc == SOUK_EPARSE && (text[0] == '-' || (text[0] == '$' && text[1] == '-')))
    souk_cmd_replyf(ctx, "`%s` is negative: `%s` must be %s, such as %s.", q, opt, range, examples);
  else if (rc == SOUK_ERANGE || (rc == 0 && v > max_cents))
    souk_cmd_replyf(ctx, "`%s` is too large: `%s` must be at most %s.", q, opt, hi);
  else if (rc)
    souk_cmd_replyf(ctx,
                    "`%s` is not a dollar amount: `%s` takes digits with at most two decimals, "
                    "a $ and commas between thousands if you like, such as %s.",
                    q, opt, examples);
  else if (v < min_cents)
    souk_cmd_replyf(ctx, "`%s` is too small: `%s` must be %s, such as %s.", q, opt, range,
                    examples);
  else {
    *cents = v;
    return true;
  }
  return false;
}

char *market_fmt_change(int64_t value, int64_t base, char *buf, size_t n) {
  int64_t bp = 0;
  if (base <= 0 || market_roi_bp(value, base, &bp) != 0) {
    snprintf(buf, n, "n/a");
    return buf;
  }
  return market_fmt_bp(bp, buf, n);
}

const char *market_source_label(const market_quote_t *q) {
  return strcmp(q->source, "simulated") == 0 ? "simulated market (not a real price)" : q->source;
}
