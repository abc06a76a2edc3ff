/* /price and /quote: a symbol's price on the guild's season's source,
 * short or as a full quote; and the symbol autocomplete of /buy, /sell,
 * /price and /quote. */
#include "cmd_int.h"
#include "fmt.h"
#include "money.h"
#include "souk/alloc.h"
#include "souk/err.h"

#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

/* A price or a quote of one symbol. */
typedef struct quote_job {
  market_job_t base;
  char symbol[MARKET_SYMBOL_MAX + 1];
  bool full; /* /quote's embed, not /price's line */
} quote_job_t;

static void quote_free(market_job_t *j) { souk_free(j); }

/* Suggestions for what was typed in a symbol option. */
typedef struct complete_job {
  market_job_t base;
  char typed[MARKET_SYMBOL_MAX + 1];
  char (*held)[MARKET_SYMBOL_MAX + 1]; /* the guild's held symbols */
  size_t nheld;
} complete_job_t;

static void complete_free(market_job_t *base) {
  complete_job_t *j = (complete_job_t *)base;
  souk_free(j->held);
  souk_free(j);
}

static void quote_priced(void *ud, const market_pc_result_t *r) {
  quote_job_t *j = ud;
  if (r->err) {
    if (j->base.set.source == MARKET_SRC_SIM)
      souk_cmd_replyf(j->base.ctx, "Unknown symbol %s: the simulated market does not list it.",
                      j->symbol);
    else if (r->err == SOUK_ECANCELED)
      souk_cmd_errorf(j->base.ctx, "The market is shutting down.");
    else
      souk_cmd_replyf(j->base.ctx, "No price for %s: %s", j->symbol,
                      r->message ? r->message : "no provider answered");
    quote_free(&j->base);
    return;
  }
  const market_quote_t *q = &r->quote;
  char p[MARKET_FMT_MAX], pc[MARKET_FMT_MAX], ch[MARKET_FMT_MAX + 2], chp[MARKET_FMT_MAX], age[40],
      when[40], title[64], status[160];
  /* /price is the short answer, by the rule every list uses; /quote is
   * the detail view, with the exact figures. */
  char *(*fmt)(int64_t, char *, size_t) = j->full ? market_fmt_price_exact : market_fmt_price;
  fmt(q->price_micro, p, sizeof p);
  market_fmt_age(r->age_ms, MARKET_AGE_PLAIN, age, sizeof age);
  market_fmt_utc(q->quote_time_ms ? q->quote_time_ms : r->fetched_ms, when, sizeof when);
  bool sim = j->base.set.source == MARKET_SRC_SIM;
  if (r->fallback)
    snprintf(status, sizeof status,
             "last known price, %s old: the price providers are not "
             "answering (not tradable)",
             age);
  else if (!r->tradable)
    snprintf(status, sizeof status, "%s old: too old to trade at", age);
  else
    snprintf(status, sizeof status, "%s old", age);
  if (!j->full) {
    souk_cmd_replyf(j->base.ctx, "%s: %s (%s; %s)%s", j->symbol, p, market_source_label(q), status,
                    sim ? "\n" MARKET_SIM_FOOTER : "");
    quote_free(&j->base);
    return;
  }
  snprintf(title, sizeof title, "%s quote%s", j->symbol, sim ? " (simulated)" : "");
  souk_embed_field_t f[7];
  size_t n = 0;
  f[n++] = (souk_embed_field_t){"Price", p, true};
  if (q->prev_close_micro > 0) {
    fmt(q->prev_close_micro, pc, sizeof pc);
    int64_t d = q->price_micro - q->prev_close_micro;
    char tmp[MARKET_FMT_MAX];
    fmt(d < 0 ? -d : d, tmp, sizeof tmp);
    snprintf(ch, sizeof ch, "%s%s", d < 0 ? "-" : "+", tmp);
    market_fmt_change(q->price_micro, q->prev_close_micro, chp, sizeof chp);
    f[n++] = (souk_embed_field_t){"Previous close", pc, true};
    f[n++] = (souk_embed_field_t){"Change", ch, true};
    f[n++] = (souk_embed_field_t){"Change %", chp, true};
  }
  f[n++] = (souk_embed_field_t){"Source", market_source_label(q), true};
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
                    .color = MARKET_COLOR_INFO,
                    .fields = f,
                    .nfields = n,
                    .footer = sim ? MARKET_SIM_FOOTER : NULL};
  souk_msg_t m = {.embeds = &e, .nembeds = 1};
  souk_cmd_reply(j->base.ctx, &m);
  quote_free(&j->base);
}

static void quote_settings_done(void *ud, int status) {
  quote_job_t *j = ud;
  if (market_job_failed(&j->base, status)) return;
  market_price_symbol(&j->base.set, j->symbol, quote_priced, j);
}

static void quote_cmd(souk_cmd_ctx_t *ctx, bool full) {
  char symbol[MARKET_SYMBOL_MAX + 1];
  if (!market_symbol_arg(ctx, symbol)) return;
  if (!market_need_store(ctx)) return;
  quote_job_t *j = souk_calloc(1, sizeof *j);
  market_job_init(&j->base, ctx, quote_free);
  j->full = full;
  memcpy(j->symbol, symbol, sizeof symbol);
  market_job_run(&j->base, market_job_settings_tx, quote_settings_done, false);
}

void market_cmd_price(souk_cmd_ctx_t *ctx) { quote_cmd(ctx, false); }
void market_cmd_quote(souk_cmd_ctx_t *ctx) { quote_cmd(ctx, true); }

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
  complete_job_t *j = ud;
  souk_free(j->held);
  j->held = NULL;
  j->nheld = 0;
  int rc = market_settings_get(db, j->base.guild, &j->base.defaults, &j->base.set);
  if (rc == 0) rc = market_symbols_held(db, j->base.guild, &j->held, &j->nheld);
  return rc;
}

static void held_done(void *ud, int status) {
  complete_job_t *j = ud;
  souk_cmd_choice_t out[SOUK_CMD_CHOICES_MAX];
  size_t n = 0;
  market_quote_t cq[SOUK_CMD_CHOICES_MAX];
  size_t ncq = 0;
  if (status == 0)
    for (size_t i = 0; i < j->nheld; i++)
      ac_add(out, &n, j->held[i], j->typed);
  bool sim = status != 0 || j->base.set.source == MARKET_SRC_SIM;
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
  souk_cmd_choices(j->base.ctx, out, n);
  complete_free(&j->base);
}

void market_complete_symbol(souk_cmd_ctx_t *ctx) {
  const souk_cmd_arg_t *f = souk_cmd_focused(ctx->args);
  complete_job_t *j = souk_calloc(1, sizeof *j);
  market_job_init(&j->base, ctx, complete_free);
  const char *t = f && f->text ? f->text : "";
  size_t n = 0;
  for (; *t && n < MARKET_SYMBOL_MAX; t++)
    if (*t != ' ' && *t != '$') j->typed[n++] = (char)toupper((unsigned char)*t);
  j->typed[n] = '\0';
  souk_store_t *st = market_g.store;
  if (!st || ctx->guild_id == 0 || souk_store_read_async(st, held_tx, held_done, j) != 0)
    held_done(j, SOUK_ENOTSUP);
}
