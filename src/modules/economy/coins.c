/* Coin commands: /balance, /daily, /pay, /coins leaderboard, and the
 * owners' /coins grant, take and audit.  Each runs one transaction on the
 * pool (ledger.h) keyed by the interaction that caused it, and answers
 * from its done callback on the loop. */
#include "economy_int.h"
#include "souk/alloc.h"
#include "souk/discord.h"
#include "souk/err.h"
#include "souk/log.h"
#include "souk/loop.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#define LB_PAGE 10

typedef struct coin_job {
  souk_cmd_ctx_t *ctx;
  int64_t user, other, amount;
  int64_t cooldown_ms; /* /daily: economy.daily.cooldown when the command came */
  char name[ECONOMY_NAME_MAX + 1], other_name[ECONOMY_NAME_MAX + 1];
  char reason[256];
  economy_kind_t kind;
  economy_change_t ch;
  int64_t balance;
  /* leaderboard */
  int64_t page, total;
  economy_rank_t rows[LB_PAGE];
  size_t n;
  economy_totals_t totals;
} coin_job_t;

static coin_job_t *job_new(souk_cmd_ctx_t *ctx) {
  coin_job_t *j = souk_calloc(1, sizeof *j);
  j->ctx = ctx;
  j->user = (int64_t)ctx->user_id;
  snprintf(j->name, sizeof j->name, "%s", ctx->user_name);
  return j;
}

/* Room for who(): a name every character of which is escaped, in bold. */
#define WHO_MAX (2 * ECONOMY_NAME_MAX + 8)

/* "**Name**" when the name is known, else a mention (which Discord shows
 * as the name without pinging: replies never parse mentions).  The name is
 * what the user chose: it is escaped, so "**x** ||y||" shows as typed and
 * cannot end the bold or hide the rest of the line. */
static void who(char *out, size_t cap, int64_t id, const char *name) {
  char esc[2 * ECONOMY_NAME_MAX + 1];
  if (name && name[0])
    snprintf(out, cap, "**%s**", souk_md_escape(name, esc, sizeof esc));
  else
    snprintf(out, cap, "<@%" PRId64 ">", id);
}

/* ---- /balance ------------------------------------------------------------- */

static int balance_tx(souk_db_t *db, void *ud) {
  coin_job_t *j = ud;
  return economy_balance(db, j->other, &j->balance);
}

static void balance_done(void *ud, int status) {
  coin_job_t *j = ud;
  char n[ECONOMY_FMT_MAX], w[WHO_MAX];
  if (status) {
    economy_store_error(j->ctx, status);
  } else if (j->other == j->user) {
    souk_cmd_replyf(j->ctx, "You have **%s** coins.", economy_fmt(j->balance, n));
  } else {
    who(w, sizeof w, j->other, j->other_name);
    souk_cmd_replyf(j->ctx, "%s has **%s** coins.", w, economy_fmt(j->balance, n));
  }
  souk_free(j);
}

void economy_cmd_balance(souk_cmd_ctx_t *ctx) {
  coin_job_t *j = job_new(ctx);
  const souk_cmd_arg_t *u = souk_cmd_arg(ctx->args, "user");
  j->other = u ? (int64_t)u->id : j->user;
  if (u && u->text) snprintf(j->other_name, sizeof j->other_name, "%s", u->text);
  if (economy_run(ctx, balance_tx, balance_done, j, false)) souk_free(j);
}

/* ---- /daily --------------------------------------------------------------- */

static int daily_tx(souk_db_t *db, void *ud) {
  coin_job_t *j = ud;
  return economy_daily(db, j->user, j->name, j->amount, j->cooldown_ms, j->ctx->idem_key,
                       (int64_t)souk_unix_ms(), &j->ch);
}

static void daily_done(void *ud, int status) {
  coin_job_t *j = ud;
  char a[ECONOMY_FMT_MAX], b[ECONOMY_FMT_MAX], w[48];
  if (status) {
    economy_store_error(j->ctx, status);
  } else if (j->ch.refusal == ECONOMY_REFUSE_COOLDOWN) {
    economy_fmt_wait(j->ch.wait_ms, w, sizeof w);
    souk_cmd_replyf(j->ctx, "You already claimed your daily coins. The next claim is in %s.", w);
  } else if (j->ch.refusal == ECONOMY_REFUSE_OVERFLOW) {
    souk_cmd_replyf(j->ctx, "Your balance cannot hold any more coins.");
  } else if (j->ch.refusal != ECONOMY_OK) {
    souk_cmd_errorf(j->ctx, "The daily reward is not available.");
  } else {
    char streak[48] = "";
    if (j->ch.streak > 1)
      snprintf(streak, sizeof streak, " That is %" PRId64 " days in a row.", j->ch.streak);
    souk_cmd_replyf(j->ctx, "You claimed **%s** coins.%s Your balance: **%s**.",
                    economy_fmt(j->ch.amount, a), streak, economy_fmt(j->ch.after, b));
  }
  souk_free(j);
}

void economy_cmd_daily(souk_cmd_ctx_t *ctx) {
  coin_job_t *j = job_new(ctx);
  /* Both may change at run time (/admin config set, SIGHUP), on this
   * thread: the pool thread reads the job's copies, never the config. */
  j->amount = economy_conf.daily_amount;
  j->cooldown_ms = economy_conf.daily_cooldown_ms;
  if (economy_run(ctx, daily_tx, daily_done, j, true)) souk_free(j);
}

/* ---- /pay ------------------------------------------------------------------ */

static int pay_tx(souk_db_t *db, void *ud) {
  coin_job_t *j = ud;
  return economy_pay(db, j->user, j->other, j->amount, j->name, j->other_name, j->ctx->idem_key,
                     (int64_t)souk_unix_ms(), &j->ch);
}

static void pay_done(void *ud, int status) {
  coin_job_t *j = ud;
  char a[ECONOMY_FMT_MAX], b[ECONOMY_FMT_MAX], w[WHO_MAX];
  who(w, sizeof w, j->other, j->other_name);
  if (status) {
    economy_store_error(j->ctx, status);
  } else if (j->ch.refusal == ECONOMY_REFUSE_SHORT) {
    souk_cmd_replyf(j->ctx, "You cannot pay %s coins: you have **%s**.", economy_fmt(j->amount, a),
                    economy_fmt(j->ch.before, b));
  } else if (j->ch.refusal == ECONOMY_REFUSE_OVERFLOW) {
    souk_cmd_replyf(j->ctx, "%s cannot hold that many more coins.", w);
  } else if (j->ch.refusal != ECONOMY_OK) {
    souk_cmd_replyf(j->ctx, "That payment is not possible.");
  } else {
    SOUK_INFO("economy", "user %" PRId64 " paid %" PRId64 " coins to %" PRId64 " (%s)", j->user,
              j->ch.amount, j->other, j->ctx->idem_key);
    souk_cmd_replyf(j->ctx, "You paid **%s** coins to %s. Your balance: **%s**.",
                    economy_fmt(j->ch.amount, a), w, economy_fmt(j->ch.after, b));
  }
  souk_free(j);
}

/* A payee typed as a plain id (a prefix command, the console, a command
 * kept until the Terms were accepted) comes with nothing that says whether
 * it is a bot: ask Discord who it is before any coin moves. */
static void pay_user_cb(const souk_discord_result_t *res, const souk_json_t *js, int root,
                        void *ud) {
  coin_job_t *j = ud;
  bool bot = false;
  if (!res->err && js) souk_json_bool(js, souk_json_get(js, root, "bot"), &bot);
  if (res->err == SOUK_ENOTFOUND) {
    souk_cmd_replyf(j->ctx, "There is no Discord user with the id %" PRId64 ".", j->other);
  } else if (res->err || !js) {
    souk_cmd_errorf(j->ctx,
                    "Discord cannot tell who %" PRId64 " is right now (%s); nothing was paid. "
                    "Try again in a moment.",
                    j->other, souk_strerror(res->err ? res->err : SOUK_EPARSE));
  } else if (bot) {
    souk_cmd_replyf(j->ctx, "Bots cannot hold coins.");
  } else {
    if (economy_run(j->ctx, pay_tx, pay_done, j, true) == 0) return;
  }
  souk_free(j);
}

void economy_cmd_pay(souk_cmd_ctx_t *ctx) {
  const souk_cmd_arg_t *u = souk_cmd_arg(ctx->args, "user");
  int64_t amount = souk_cmd_arg_int(ctx->args, "amount", 0);
  if (!u) {
    souk_cmd_replyf(ctx, "Say who to pay, e.g. `/pay user:@someone amount:50`.");
    return;
  }
  if (u->id == ctx->user_id) {
    souk_cmd_replyf(ctx, "You cannot pay yourself.");
    return;
  }
  if (u->bot || (souk_discord_bot_user_id() && u->id == souk_discord_bot_user_id())) {
    souk_cmd_replyf(ctx, "Bots cannot hold coins.");
    return;
  }
  if (amount <= 0) {
    souk_cmd_replyf(ctx, "Pay at least 1 coin.");
    return;
  }
  coin_job_t *j = job_new(ctx);
  j->other = (int64_t)u->id;
  j->amount = amount;
  if (u->text) snprintf(j->other_name, sizeof j->other_name, "%s", u->text);
  if (!u->resolved) {
    char path[48];
    snprintf(path, sizeof path, "/users/%" PRIu64, u->id);
    int rc = souk_discord_get(path, pay_user_cb, j);
    if (rc) {
      souk_cmd_errorf(ctx,
                      "Discord cannot tell who %" PRIu64 " is right now (%s); nothing was paid.",
                      u->id, souk_strerror(rc));
      souk_free(j);
    }
    return;
  }
  if (economy_run(ctx, pay_tx, pay_done, j, true)) souk_free(j);
}

/* ---- /coins leaderboard ------------------------------------------------------ */

static int lb_tx(souk_db_t *db, void *ud) {
  coin_job_t *j = ud;
  return economy_leaderboard(db, (j->page - 1) * LB_PAGE, LB_PAGE, j->rows, &j->n, &j->total);
}

static void lb_done(void *ud, int status) {
  coin_job_t *j = ud;
  souk_cmd_ctx_t *ctx = j->ctx;
  if (status) {
    economy_store_error(ctx, status);
    souk_free(j);
    return;
  }
  int64_t pages = j->total ? (j->total + LB_PAGE - 1) / LB_PAGE : 1;
  if (!j->total) {
    souk_cmd_replyf(ctx, "Nobody has coins yet: claim yours with /daily.");
    souk_free(j);
    return;
  }
  if (j->page > pages) {
    souk_cmd_replyf(ctx, "There %s only %" PRId64 " page%s of the leaderboard.",
                    pages == 1 ? "is" : "are", pages, pages == 1 ? "" : "s");
    souk_free(j);
    return;
  }
  souk_buf_t b;
  souk_buf_init(&b);
  for (size_t i = 0; i < j->n; i++) {
    char n[ECONOMY_FMT_MAX], w[WHO_MAX];
    who(w, sizeof w, j->rows[i].user_id, j->rows[i].name);
    souk_buf_printf(&b, "%" PRId64 ". %s \xE2\x80\x94 %s coins\n", j->rows[i].rank, w,
                    economy_fmt(j->rows[i].balance, n));
  }
  char footer[96], prev[48], next[48], st[32];
  snprintf(footer, sizeof footer, "Page %" PRId64 " of %" PRId64 " \xC2\xB7 %" PRId64 " users",
           j->page, pages, j->total);
  snprintf(st, sizeof st, "%" PRId64, j->page > 1 ? j->page - 1 : 1);
  souk_cmd_custom_id(prev, sizeof prev, ECONOMY_LB_PREFIX, st);
  snprintf(st, sizeof st, "%" PRId64, j->page < pages ? j->page + 1 : pages);
  souk_cmd_custom_id(next, sizeof next, ECONOMY_LB_PREFIX, st);
  souk_component_t c[2] = {
      {.custom_id = prev,
       .label = "\xE2\x97\x80 Previous",
       .style = SOUK_BUTTON_SECONDARY,
       .disabled = j->page <= 1},
      {.custom_id = next,
       .label = "Next \xE2\x96\xB6",
       .style = SOUK_BUTTON_SECONDARY,
       .disabled = j->page >= pages},
  };
  souk_embed_t e = {
      .title = "Coin leaderboard", .description = b.data, .color = ECONOMY_COLOR, .footer = footer};
  souk_msg_t m = {.embeds = &e, .nembeds = 1, .components = c, .ncomponents = pages > 1 ? 2 : 0};
  if (ctx->kind == SOUK_CMD_KIND_COMPONENT)
    souk_cmd_update(ctx, &m);
  else
    souk_cmd_reply(ctx, &m);
  souk_buf_free(&b);
  souk_free(j);
}

void economy_cmd_leaderboard(souk_cmd_ctx_t *ctx) {
  coin_job_t *j = job_new(ctx);
  j->page = souk_cmd_arg_int(ctx->args, "page", 1);
  if (economy_run(ctx, lb_tx, lb_done, j, false)) souk_free(j);
}

/* custom_id state: the page to show. */
void economy_press_leaderboard(souk_cmd_ctx_t *ctx) {
  long long page = 0;
  int used = 0;
  if (!ctx->state || sscanf(ctx->state, "%lld%n", &page, &used) != 1 || ctx->state[used] ||
      page < 1 || page > 100000) {
    souk_cmd_replyf(ctx, "This button is no longer valid; run /coins leaderboard again.");
    return;
  }
  coin_job_t *j = job_new(ctx);
  j->page = page;
  if (economy_run(ctx, lb_tx, lb_done, j, false)) souk_free(j);
}

/* ---- /coins grant, take, audit (owners) ------------------------------------------ */

static int adjust_tx(souk_db_t *db, void *ud) {
  coin_job_t *j = ud;
  return economy_adjust(db, j->kind, j->other, j->user, j->amount, j->reason, j->ctx->idem_key,
                        (int64_t)souk_unix_ms(), &j->ch);
}

static void adjust_done(void *ud, int status) {
  coin_job_t *j = ud;
  char a[ECONOMY_FMT_MAX], b[ECONOMY_FMT_MAX], w[WHO_MAX];
  who(w, sizeof w, j->other, j->other_name);
  bool grant = j->kind == ECONOMY_GRANT;
  if (status) {
    economy_store_error(j->ctx, status);
  } else if (j->ch.refusal == ECONOMY_REFUSE_SHORT) {
    souk_cmd_replyf(j->ctx, "%s has only **%s** coins; nothing was taken.", w,
                    economy_fmt(j->ch.before, a));
  } else if (j->ch.refusal == ECONOMY_REFUSE_OVERFLOW) {
    souk_cmd_replyf(j->ctx, "%s cannot hold that many more coins; nothing was granted.", w);
  } else if (j->ch.refusal != ECONOMY_OK) {
    souk_cmd_replyf(j->ctx, "That amount is not possible.");
  } else {
    SOUK_INFO("economy", "owner %" PRId64 " %s %" PRId64 " coins %s user %" PRId64 ": %s", j->user,
              grant ? "granted" : "took", j->ch.amount, grant ? "to" : "from", j->other, j->reason);
    souk_cmd_replyf(j->ctx, "%s **%s** coins %s %s (%s). Their balance: **%s**.",
                    grant ? "Granted" : "Took", economy_fmt(j->ch.amount, a), grant ? "to" : "from",
                    w, j->reason, economy_fmt(j->ch.after, b));
  }
  souk_free(j);
}

static void adjust(souk_cmd_ctx_t *ctx, economy_kind_t kind) {
  const souk_cmd_arg_t *u = souk_cmd_arg(ctx->args, "user");
  const char *reason = souk_cmd_arg_str(ctx->args, "reason", "");
  if (!u || !reason[0]) {
    souk_cmd_replyf(ctx, "Say whose coins, how many and why.");
    return;
  }
  coin_job_t *j = job_new(ctx);
  j->kind = kind;
  j->other = (int64_t)u->id;
  j->amount = souk_cmd_arg_int(ctx->args, "amount", 0);
  snprintf(j->reason, sizeof j->reason, "%s", reason);
  if (u->text) snprintf(j->other_name, sizeof j->other_name, "%s", u->text);
  if (economy_run(ctx, adjust_tx, adjust_done, j, true)) souk_free(j);
}

void economy_cmd_grant(souk_cmd_ctx_t *ctx) { adjust(ctx, ECONOMY_GRANT); }
void economy_cmd_take(souk_cmd_ctx_t *ctx) { adjust(ctx, ECONOMY_TAKE); }

static int audit_tx(souk_db_t *db, void *ud) {
  coin_job_t *j = ud;
  return economy_totals(db, &j->totals);
}

static void audit_done(void *ud, int status) {
  coin_job_t *j = ud;
  if (status) {
    economy_store_error(j->ctx, status);
    souk_free(j);
    return;
  }
  const economy_totals_t *t = &j->totals;
  const int64_t *k = t->by_kind;
  char v[8][ECONOMY_FMT_MAX], stuck[200] = "";
  bool ok = t->balances == t->audit && k[ECONOMY_PAY] == 0;
  if (t->stuck_bets)
    snprintf(stuck, sizeof stuck,
             "\n%" PRId64 " pending bet(s) cannot be settled: the payout would overflow the "
             "balance. Take coins from the user and the recovery settles them.",
             t->stuck_bets);
  souk_cmd_replyf(j->ctx,
                  "**Coin audit: %s**\n```\n"
                  "balances   %s (%" PRId64 " users)\n"
                  "audit sum  %s\n"
                  "  grants   %s\n  takes    %s\n  bonuses  %s\n  daily    %s\n"
                  "  stakes   %s\n  wins     %s\n"
                  "pending bets %" PRId64 "\n```%s",
                  ok ? "consistent" : "MISMATCH", economy_fmt(t->balances, v[0]), t->users,
                  economy_fmt(t->audit, v[1]), economy_fmt(k[ECONOMY_GRANT], v[2]),
                  economy_fmt(k[ECONOMY_TAKE], v[3]), economy_fmt(k[ECONOMY_BONUS], v[4]),
                  economy_fmt(k[ECONOMY_DAILY], v[5]), economy_fmt(k[ECONOMY_BET], v[6]),
                  economy_fmt(k[ECONOMY_WIN], v[7]), t->pending_bets, stuck);
  if (!ok)
    SOUK_ERROR("economy", "coin audit mismatch: balances %" PRId64 ", audit %" PRId64, t->balances,
               t->audit);
  souk_free(j);
}

void economy_cmd_audit(souk_cmd_ctx_t *ctx) {
  coin_job_t *j = job_new(ctx);
  if (economy_run(ctx, audit_tx, audit_done, j, false)) souk_free(j);
}
