/* Games with controlled message edits: roulette and polls.
 *
 * Every press is acknowledged at once (souk_cmd_ack: Discord's deferred
 * update), and the game's message is then changed only through
 * souk_discord_edit_latest, which keeps the latest state per message and
 * sends at most one edit per interval: a busy poll never runs into
 * Discord's limits, and the last state is always what stays.
 *
 * Roulette: /roulette shows the bet with Spin and Cancel.  Spin draws the
 * pocket first, then takes the stake and records the bet with its outcome
 * in one transaction (keyed by the bet's token, so a double click places
 * one bet), shows the wheel turning for a few edits, and settles it in a
 * second transaction.  If the process dies in between, the recovery task
 * settles the pending bet exactly as it would have been: never refunded
 * as well.
 *
 * Polls: each vote is one transaction that returns the tally with its
 * version (polls.h, the poll row's counter); the coalescer keeps the
 * highest version per message (souk_discord_edit_versioned), so the
 * message never steps back, however many polls run at once. */
#include "economy_int.h"
#include "souk/alloc.h"
#include "souk/discord.h"
#include "souk/err.h"
#include "souk/log.h"
#include "souk/loop.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

/* ---- roulette ------------------------------------------------------------ */

typedef struct spin {
  uint64_t channel, message, user;
  char name[ECONOMY_NAME_MAX + 1];      /* the player's display name, as typed */
  char shown[2 * ECONOMY_NAME_MAX + 1]; /* the name escaped for markdown */
  char token[20];
  roulette_bet_t bet;
  int64_t stake;
  int pocket;
  int64_t ret; /* what the bet returns, stake included */
  economy_bet_t placed;
  bool tos_needed; /* the user has not accepted the current Terms: nothing placed */
  int64_t balance;
  int frame;
  uv_timer_t timer;
  bool timer_on;
  bool busy;    /* a transaction holds s */
  bool stopped; /* the module stopped: drop s when the transaction is back */
  struct spin *prev, *next;
} spin_t;

static spin_t *g_spins; /* running here, for shutdown and double clicks */

static void spin_unlink(spin_t *s) {
  if (s->prev)
    s->prev->next = s->next;
  else if (g_spins == s)
    g_spins = s->next;
  if (s->next) s->next->prev = s->prev;
  s->prev = s->next = NULL;
}

static void spin_close_cb(uv_handle_t *h) { souk_free(h->data); }

static void spin_free(spin_t *s) {
  spin_unlink(s);
  if (s->timer_on) {
    s->timer_on = false;
    uv_close((uv_handle_t *)&s->timer, spin_close_cb);
  } else {
    souk_free(s);
  }
}

static const char *pocket_mark(int n) {
  return n == 0               ? "\xF0\x9F\x9F\xA2" /* green circle */
         : roulette_is_red(n) ? "\xF0\x9F\x94\xB4" /* red circle */
                              : "\xE2\x9A\xAB";    /* black circle */
}

/* Odds of a bet, "35:1". */
static void odds(const roulette_bet_t *b, char *out, size_t cap) {
  snprintf(out, cap, "%d:1", 36 / b->count - 1);
}

/* The Spin / Cancel (or Spin again) buttons for a bet with a new token. */
static int spin_buttons(uint64_t user, const roulette_bet_t *bet, int64_t stake,
                        souk_component_t *c, char (*ids)[SOUK_CMD_CUSTOM_ID_MAX + 1],
                        const char *spin_label) {
  char st[96];
  snprintf(st, sizeof st, "s:%" PRIu64 ":%016" PRIx64 ":%" PRId64 ":%s", user,
           economy_rng(NULL) ^ souk_rand64(), stake, bet->name);
  int rc = souk_cmd_custom_id(ids[0], sizeof ids[0], ECONOMY_SPIN_PREFIX, st);
  snprintf(st, sizeof st, "x:%" PRIu64, user);
  if (rc == 0) rc = souk_cmd_custom_id(ids[1], sizeof ids[1], ECONOMY_SPIN_PREFIX, st);
  c[0] = (souk_component_t){.custom_id = ids[0], .label = spin_label, .style = SOUK_BUTTON_PRIMARY};
  c[1] = (souk_component_t){.custom_id = ids[1], .label = "Cancel", .style = SOUK_BUTTON_SECONDARY};
  return rc;
}

void economy_cmd_roulette(souk_cmd_ctx_t *ctx) {
  roulette_bet_t bet;
  char err[512], a[ECONOMY_FMT_MAX], b[ECONOMY_FMT_MAX];
  if (!roulette_parse(souk_cmd_arg_str(ctx->args, "bet", ""), &bet, err, sizeof err)) {
    souk_cmd_replyf(ctx, "%s", err);
    return;
  }
  int64_t stake = souk_cmd_arg_int(ctx->args, "amount", 0);
  if (stake < economy_conf.min_bet || stake > economy_conf.max_bet) {
    souk_cmd_replyf(ctx, "Stakes are %s to %s coins.", economy_fmt(economy_conf.min_bet, a),
                    economy_fmt(economy_conf.max_bet, b));
    return;
  }
  souk_component_t c[2];
  char ids[2][SOUK_CMD_CUSTOM_ID_MAX + 1];
  if (spin_buttons(ctx->user_id, &bet, stake, c, ids, "Spin")) {
    souk_cmd_errorf(ctx, "That bet cannot be shown.");
    return;
  }
  char desc[384], o[16], nm[2 * ECONOMY_NAME_MAX + 1];
  odds(&bet, o, sizeof o);
  snprintf(desc, sizeof desc, "**%s** stakes **%s** coins on **%s** (pays %s).",
           souk_md_escape(ctx->user_name, nm, sizeof nm), economy_fmt(stake, a), bet.name, o);
  souk_embed_t e = {.title = "Roulette",
                    .description = desc,
                    .color = ECONOMY_COLOR,
                    .footer = "The stake is taken when the wheel spins."};
  souk_msg_t m = {.embeds = &e, .nembeds = 1, .components = c, .ncomponents = 2};
  souk_cmd_reply(ctx, &m);
}

/* Show s's state now (through the coalescer). */
static void spin_show(spin_t *s, const souk_msg_t *m) {
  int rc =
      souk_discord_edit_latest(s->channel, s->message, m, (uint32_t)economy_conf.spin_interval_ms);
  if (rc) SOUK_DEBUG("economy", "spin message not edited: %s", souk_strerror(rc));
}

static void spin_text(spin_t *s, const char *text) {
  souk_msg_t m = {.content = text};
  spin_show(s, &m);
}

static int settle_tx(souk_db_t *db, void *ud) {
  spin_t *s = ud;
  bool paid;
  return economy_bet_settle(db, s->placed.id, (int64_t)souk_unix_ms(), &paid, &s->balance);
}

static void settle_done(void *ud, int status) {
  spin_t *s = ud;
  s->busy = false;
  if (s->stopped) {
    souk_free(s);
    return;
  }
  if (status) {
    /* The bet stays pending: the recovery task settles it. */
    SOUK_WARN("economy", "settling bet %" PRId64 " failed: %s; the recovery will", s->placed.id,
              souk_strerror(status));
    spin_text(s, "The result could not be recorded yet; your bet will be settled within a few "
                 "minutes.");
    spin_free(s);
    return;
  }
  char a[ECONOMY_FMT_MAX], b[ECONOMY_FMT_MAX], c[ECONOMY_FMT_MAX], d[ECONOMY_FMT_MAX];
  char title[64], desc[384];
  bool won = s->ret > 0;
  snprintf(title, sizeof title, "Roulette: %s %d %s", pocket_mark(s->pocket), s->pocket,
           roulette_color(s->pocket));
  if (won)
    snprintf(desc, sizeof desc,
             "**%s** staked **%s** on **%s**. The ball lands on **%d**: **won** %s coins back "
             "(+%s).\nBalance: **%s**",
             s->shown, economy_fmt(s->stake, a), s->bet.name, s->pocket, economy_fmt(s->ret, b),
             economy_fmt(s->ret - s->stake, c), economy_fmt(s->balance, d));
  else
    snprintf(desc, sizeof desc,
             "**%s** staked **%s** on **%s**. The ball lands on **%d**: **lost** %s coins.\n"
             "Balance: **%s**",
             s->shown, economy_fmt(s->stake, a), s->bet.name, s->pocket, economy_fmt(s->stake, b),
             economy_fmt(s->balance, c));
  souk_component_t comp[2];
  char ids[2][SOUK_CMD_CUSTOM_ID_MAX + 1];
  bool again = spin_buttons(s->user, &s->bet, s->stake, comp, ids, "Spin again") == 0;
  souk_embed_t e = {
      .title = title, .description = desc, .color = won ? ECONOMY_COLOR_WIN : ECONOMY_COLOR_LOSS};
  souk_msg_t m = {.embeds = &e, .nembeds = 1, .components = comp, .ncomponents = again ? 2 : 0};
  spin_show(s, &m);
  spin_free(s);
}

static void frame_cb(uv_timer_t *t) {
  spin_t *s = t->data;
  if (s->frame < economy_conf.spin_frames) {
    int shown = roulette_spin(economy_rng, NULL);
    char text[160];
    snprintf(text, sizeof text, "The wheel spins%s %s %d", s->frame % 2 ? "\xE2\x80\xA6" : "...",
             pocket_mark(shown), shown);
    spin_text(s, text);
    s->frame++;
    uv_timer_start(&s->timer, frame_cb, (uint64_t)economy_conf.spin_interval_ms, 0);
    return;
  }
  uv_timer_stop(&s->timer);
  souk_store_t *st = economy_g.store;
  int rc =
      st && economy_g.started ? souk_store_tx_async(st, settle_tx, settle_done, s) : SOUK_ESTOPPED;
  s->busy = rc == 0;
  if (rc) {
    SOUK_WARN("economy", "cannot settle bet %" PRId64 " now (%s); the recovery will", s->placed.id,
              souk_strerror(rc));
    spin_free(s);
  }
}

static int place_tx(souk_db_t *db, void *ud) {
  spin_t *s = ud;
  s->tos_needed = false;
  /* A Spin button outlives the gated /roulette that showed it, and "Spin
   * again" makes new ones: the user must have accepted the current Terms
   * of Service before each stake, as the gate asks of every coin
   * command. */
  int64_t accepted = 0, current = 0;
  int rc = economy_tos_status(db, (int64_t)s->user, &accepted, NULL);
  if (rc == 0) rc = economy_tos_current(db, &current, NULL, NULL);
  if (rc != 0 && rc != SOUK_ENOTFOUND) return rc;
  if (rc == SOUK_ENOTFOUND || accepted < current) {
    s->tos_needed = true;
    return 0;
  }
  char key[48], outcome[8];
  snprintf(key, sizeof key, "roulette:%s", s->token);
  snprintf(outcome, sizeof outcome, "%d", s->pocket);
  economy_bet_req_t r = {.user_id = (int64_t)s->user,
                         .name = s->name,
                         .game = "roulette",
                         .bet = s->bet.name,
                         .stake = s->stake,
                         .outcome = outcome,
                         .payout = s->ret,
                         .key = key,
                         .now_ms = (int64_t)souk_unix_ms()};
  return economy_bet_place(db, &r, &s->placed);
}

static bool spin_running(int64_t bet_id, const spin_t *except) {
  for (spin_t *s = g_spins; s; s = s->next)
    if (s != except && s->placed.id == bet_id) return true;
  return false;
}

static void place_done(void *ud, int status) {
  spin_t *s = ud;
  char a[ECONOMY_FMT_MAX], b[ECONOMY_FMT_MAX], text[256];
  s->busy = false;
  if (s->stopped) {
    souk_free(s);
    return;
  }
  if (status) {
    snprintf(text, sizeof text, "The spin failed (%s); nothing was staked. Try again.",
             souk_strerror(status));
    spin_text(s, text);
    spin_free(s);
    return;
  }
  if (s->tos_needed) {
    snprintf(text, sizeof text,
             "**%s**, please read and accept the current Terms of Service with /tos before you "
             "play again; nothing was staked.",
             s->shown);
    spin_text(s, text);
    spin_free(s);
    return;
  }
  if (s->placed.refusal == ECONOMY_REFUSE_SHORT) {
    snprintf(text, sizeof text, "**%s**, this bet needs **%s** coins and you have **%s**.",
             s->shown, economy_fmt(s->stake, a), economy_fmt(s->placed.balance_after_stake, b));
    spin_text(s, text);
    spin_free(s);
    return;
  }
  if (s->placed.duplicate) {
    /* A second press of the same Spin: the bet and its outcome are the
     * first press's. */
    if (spin_running(s->placed.id, s)) {
      spin_free(s);
      return;
    }
    s->pocket = atoi(s->placed.outcome);
    s->ret = s->placed.payout;
  }
  s->frame = 0;
  uv_timer_init(souk_loop(), &s->timer);
  s->timer.data = s;
  s->timer_on = true;
  frame_cb(&s->timer);
}

/* custom_id state: "s:<user>:<token>:<stake>:<bet>" or "x:<user>". */
void economy_press_spin(souk_cmd_ctx_t *ctx) {
  const char *st = ctx->state ? ctx->state : "";
  unsigned long long user = 0;
  long long stake = 0;
  char token[20] = "";
  int used = 0;
  if (st[0] == 'x' && sscanf(st, "x:%llu%n", &user, &used) == 1 && !st[used]) {
    if (user != ctx->user_id) {
      souk_msg_t m = {.content = "This is someone else's bet.", .ephemeral = true};
      souk_cmd_reply(ctx, &m);
      return;
    }
    souk_msg_t m = {.content = "Bet cancelled; nothing was staked."};
    souk_cmd_update(ctx, &m);
    return;
  }
  roulette_bet_t bet;
  if (sscanf(st, "s:%llu:%16[0-9a-f]:%lld:%n", &user, token, &stake, &used) != 3 ||
      strlen(token) != 16 || !roulette_parse(st + used, &bet, NULL, 0) ||
      strcmp(bet.name, st + used) != 0 || stake < 1) {
    souk_cmd_replyf(ctx, "This button is no longer valid; start a new game with /roulette.");
    return;
  }
  if (user != ctx->user_id) {
    souk_msg_t m = {.content = "This is someone else's bet: start your own with /roulette.",
                    .ephemeral = true};
    souk_cmd_reply(ctx, &m);
    return;
  }
  char a[ECONOMY_FMT_MAX], b[ECONOMY_FMT_MAX];
  if (stake < economy_conf.min_bet || stake > economy_conf.max_bet) {
    souk_cmd_replyf(ctx, "Stakes are %s to %s coins now.", economy_fmt(economy_conf.min_bet, a),
                    economy_fmt(economy_conf.max_bet, b));
    return;
  }
  if (!economy_enabled(ctx->guild_id)) {
    souk_msg_t m = {.content = "The economy is turned off in this server.", .ephemeral = true};
    souk_cmd_reply(ctx, &m);
    return;
  }
  if (!ctx->message_id || !economy_g.started || !economy_g.store) {
    souk_cmd_errorf(ctx, "The wheel cannot spin right now.");
    return;
  }
  spin_t *s = souk_calloc(1, sizeof *s);
  s->channel = ctx->channel_id;
  s->message = ctx->message_id;
  s->user = ctx->user_id;
  snprintf(s->name, sizeof s->name, "%s", ctx->user_name);
  souk_md_escape(s->name, s->shown, sizeof s->shown);
  snprintf(s->token, sizeof s->token, "%s", token);
  s->bet = bet;
  s->stake = stake;
  /* The outcome is fixed before the bet is placed (see the top). */
  s->pocket = roulette_spin(economy_rng, NULL);
  if (roulette_return(&bet, s->pocket, stake, &s->ret) != 0) {
    souk_free(s);
    souk_cmd_errorf(ctx, "That stake is too large.");
    return;
  }
  s->next = g_spins;
  if (g_spins) g_spins->prev = s;
  g_spins = s;
  souk_cmd_ack(ctx); /* ctx is gone from here on */
  int rc = souk_store_tx_async(economy_g.store, place_tx, place_done, s);
  s->busy = rc == 0;
  if (rc) {
    spin_text(s, "The wheel cannot spin right now; nothing was staked.");
    spin_free(s);
  }
}

/* ---- polls ------------------------------------------------------------------- */

/* The poll's message: the tally, a button per option, Close. */
typedef struct poll_msg {
  souk_msg_t m;
  souk_embed_t e;
  souk_buf_t desc;
  char title[2 * ECONOMY_POLL_QUESTION_MAX + 8], footer[128];
  souk_component_t c[ECONOMY_POLL_OPTIONS_MAX + 1];
  char ids[ECONOMY_POLL_OPTIONS_MAX + 1][SOUK_CMD_CUSTOM_ID_MAX + 1];
} poll_msg_t;

static void poll_render(const economy_poll_t *p, poll_msg_t *pm) {
  memset(pm, 0, sizeof *pm);
  souk_buf_init(&pm->desc);
  for (size_t i = 0; i < p->noptions; i++) {
    int64_t pct = p->voters ? (p->votes[i] * 100 + p->voters / 2) / p->voters : 0;
    int bars = (int)((pct + 5) / 10);
    /* The question and options are what the poll's creator typed: they show
     * as typed (a button label is plain text and needs no escape). */
    souk_buf_puts(&pm->desc, "**");
    souk_buf_put_md(&pm->desc, p->options[i], strlen(p->options[i]));
    souk_buf_printf(&pm->desc, "** \xE2\x80\x94 %" PRId64 " vote%s (%" PRId64 "%%)\n", p->votes[i],
                    p->votes[i] == 1 ? "" : "s", pct);
    for (int k = 0; k < 10; k++)
      souk_buf_puts(&pm->desc, k < bars ? "\xE2\x96\xB0" : "\xE2\x96\xB1");
    souk_buf_putc(&pm->desc, '\n');
  }
  char q[2 * ECONOMY_POLL_QUESTION_MAX + 1];
  snprintf(pm->title, sizeof pm->title, "Poll: %s", souk_md_escape(p->question, q, sizeof q));
  snprintf(pm->footer, sizeof pm->footer, "%s%" PRId64 " voter%s%s",
           p->closed ? "Closed \xC2\xB7 " : "", p->voters, p->voters == 1 ? "" : "s",
           p->closed ? "" : " \xC2\xB7 press an option to vote, another to change your vote");
  pm->e = (souk_embed_t){.title = pm->title,
                         .description = pm->desc.data,
                         .color = ECONOMY_COLOR,
                         .footer = pm->footer};
  size_t n = 0;
  char st[64];
  for (size_t i = 0; i < p->noptions; i++) {
    snprintf(st, sizeof st, "v:%" PRId64 ":%zu", p->id, i);
    souk_cmd_custom_id(pm->ids[n], sizeof pm->ids[n], ECONOMY_POLL_PREFIX, st);
    pm->c[n] = (souk_component_t){.custom_id = pm->ids[n],
                                  .label = p->options[i],
                                  .style = SOUK_BUTTON_SECONDARY,
                                  .disabled = p->closed};
    n++;
  }
  if (!p->closed) {
    snprintf(st, sizeof st, "c:%" PRId64 ":%" PRId64, p->id, p->creator_id);
    souk_cmd_custom_id(pm->ids[n], sizeof pm->ids[n], ECONOMY_POLL_PREFIX, st);
    pm->c[n] = (souk_component_t){.custom_id = pm->ids[n],
                                  .label = "Close poll",
                                  .style = SOUK_BUTTON_DANGER,
                                  .new_row = true};
    n++;
  }
  pm->m = (souk_msg_t){.embeds = &pm->e, .nembeds = 1, .components = pm->c, .ncomponents = n};
}

typedef struct poll_job {
  souk_cmd_ctx_t *ctx; /* creating only; votes are acknowledged first */
  uint64_t guild, channel, message, user;
  char question[ECONOMY_POLL_QUESTION_MAX + 1];
  char opts[ECONOMY_POLL_OPTIONS_MAX][ECONOMY_POLL_OPTION_MAX + 1];
  size_t nopts;
  int64_t poll, choice;
  bool close, changed;
  economy_poll_t p;
} poll_job_t;

static int poll_create_tx(souk_db_t *db, void *ud) {
  poll_job_t *j = ud;
  const char *o[ECONOMY_POLL_OPTIONS_MAX];
  for (size_t i = 0; i < j->nopts; i++)
    o[i] = j->opts[i];
  int rc = economy_poll_create(db, (int64_t)j->guild, (int64_t)j->channel, (int64_t)j->user,
                               j->question, o, j->nopts, (int64_t)souk_unix_ms(), &j->poll);
  if (rc == 0) rc = economy_poll_get(db, j->poll, &j->p);
  return rc;
}

static void poll_create_done(void *ud, int status) {
  poll_job_t *j = ud;
  if (status) {
    economy_store_error(j->ctx, status);
  } else {
    poll_msg_t *pm = souk_malloc(sizeof *pm);
    poll_render(&j->p, pm);
    souk_cmd_reply(j->ctx, &pm->m);
    souk_buf_free(&pm->desc);
    souk_free(pm);
  }
  souk_free(j);
}

/* Split "a | b | c" into trimmed options; false when too many or too long
 * (economy_poll_invalid says which). */
static bool split_options(const char *text, poll_job_t *j) {
  j->nopts = 0;
  const char *p = text;
  while (*p) {
    const char *bar = strchr(p, '|');
    size_t n = bar ? (size_t)(bar - p) : strlen(p);
    while (n && (*p == ' ' || *p == '\t'))
      p++, n--;
    while (n && (p[n - 1] == ' ' || p[n - 1] == '\t'))
      n--;
    if (j->nopts == ECONOMY_POLL_OPTIONS_MAX || n > ECONOMY_POLL_OPTION_MAX) return false;
    snprintf(j->opts[j->nopts++], ECONOMY_POLL_OPTION_MAX + 1, "%.*s", (int)n, p);
    if (!bar) break;
    p = bar + 1;
  }
  return true;
}

void economy_cmd_poll(souk_cmd_ctx_t *ctx) {
  poll_job_t *j = souk_calloc(1, sizeof *j);
  j->ctx = ctx;
  j->guild = ctx->guild_id;
  j->channel = ctx->channel_id;
  j->user = ctx->user_id;
  const char *q = souk_cmd_arg_str(ctx->args, "question", "");
  snprintf(j->question, sizeof j->question, "%s", q);
  const char *why = NULL;
  if (strlen(q) > ECONOMY_POLL_QUESTION_MAX)
    why = "The question is too long (200 characters at most).";
  else if (!split_options(souk_cmd_arg_str(ctx->args, "options", ""), j))
    why = "A poll has 2 to 10 options of up to 60 characters, separated by |.";
  if (!why) {
    const char *o[ECONOMY_POLL_OPTIONS_MAX];
    for (size_t i = 0; i < j->nopts; i++)
      o[i] = j->opts[i];
    why = economy_poll_invalid(j->question, o, j->nopts);
  }
  if (why) {
    souk_cmd_replyf(ctx, "%s Example: `/poll question:Lunch? options:Pizza | Sushi`", why);
    souk_free(j);
    return;
  }
  if (economy_run(ctx, poll_create_tx, poll_create_done, j, true)) souk_free(j);
}

static int poll_vote_tx(souk_db_t *db, void *ud) {
  poll_job_t *j = ud;
  if (j->close) return economy_poll_close(db, j->poll, &j->p);
  return economy_poll_vote(db, j->poll, (int64_t)j->user, j->choice, (int64_t)souk_unix_ms(),
                           &j->changed, &j->p);
}

static void poll_vote_done(void *ud, int status) {
  poll_job_t *j = ud;
  if (status) {
    SOUK_WARN("economy", "a vote on poll %" PRId64 " failed: %s", j->poll, souk_strerror(status));
  } else if (j->p.version > 0) {
    /* Votes commit one after another, each with the next version of the
     * poll's row, but their done callbacks may arrive in another order:
     * the coalescer keeps the highest version per message and drops an
     * older tally that arrives late. */
    poll_msg_t *pm = souk_malloc(sizeof *pm);
    poll_render(&j->p, pm);
    int rc = souk_discord_edit_versioned(j->channel, j->message, &pm->m,
                                         (uint32_t)economy_conf.poll_interval_ms,
                                         (uint64_t)j->p.version);
    if (rc) SOUK_DEBUG("economy", "poll message not edited: %s", souk_strerror(rc));
    souk_buf_free(&pm->desc);
    souk_free(pm);
  }
  souk_free(j);
}

/* custom_id state: "v:<poll>:<option>" or "c:<poll>:<creator>". */
void economy_press_poll(souk_cmd_ctx_t *ctx) {
  const char *st = ctx->state ? ctx->state : "";
  long long poll = 0, x = 0;
  int used = 0;
  char kind = st[0];
  if ((kind != 'v' && kind != 'c') || sscanf(st + 1, ":%lld:%lld%n", &poll, &x, &used) != 2 ||
      st[1 + used] || poll < 1 || x < 0) {
    souk_cmd_replyf(ctx, "This poll button is no longer valid.");
    return;
  }
  if (kind == 'c' && (uint64_t)x != ctx->user_id &&
      !(ctx->permissions & (SOUK_PERM_MANAGE_MESSAGES | SOUK_PERM_ADMINISTRATOR))) {
    souk_msg_t m = {.content = "Only the poll's creator, or someone who can manage messages, "
                               "can close it.",
                    .ephemeral = true};
    souk_cmd_reply(ctx, &m);
    return;
  }
  if (!ctx->message_id || !economy_g.started || !economy_g.store) {
    souk_cmd_errorf(ctx, "Votes cannot be counted right now.");
    return;
  }
  poll_job_t *j = souk_calloc(1, sizeof *j);
  j->channel = ctx->channel_id;
  j->message = ctx->message_id;
  j->user = ctx->user_id;
  j->poll = poll;
  j->choice = x;
  j->close = kind == 'c';
  souk_cmd_ack(ctx); /* within Discord's 3 s, whatever the store does */
  if (souk_store_tx_async(economy_g.store, poll_vote_tx, poll_vote_done, j) != 0) {
    SOUK_WARN("economy", "a vote on poll %lld was lost: the store refused it", poll);
    souk_free(j);
  }
}

void economy_games_stop(void) {
  /* Their bets stay as they are in the store: pending ones are settled by
   * the recovery at the next start. */
  while (g_spins) {
    spin_t *s = g_spins;
    if (s->busy) {
      spin_unlink(s);
      if (s->timer_on) {
        s->timer_on = false;
        uv_close((uv_handle_t *)&s->timer, NULL);
      }
      s->stopped = true; /* freed when its transaction is back */
    } else {
      spin_free(s);
    }
  }
}
