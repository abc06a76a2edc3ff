/* The /scan commands and the posts of top-list changes. */
#include "scanner_int.h"
#include "souk/alloc.h"
#include "souk/buf.h"
#include "souk/cluster.h"
#include "souk/discord.h"
#include "souk/err.h"
#include "souk/log.h"
#include "souk/loop.h"
#include "souk/settings.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#define COMP       "scanner"
#define DISCLAIMER "Signals only: no orders are placed; not financial advice."

static const char *off_text(void) {
  return "The futures scanner is off (the bot's operator can turn it on with "
         "scanner.enabled).";
}

/* ---- formatting ------------------------------------------------------------ */

static void fmt_pct(int64_t ppm, char *out, size_t cap) {
  /* parts per million -> percent with two decimals, rounded half away. */
  int64_t hundredths = (ppm >= 0 ? ppm + 50 : ppm - 50) / 100;
  int64_t a = hundredths < 0 ? -hundredths : hundredths;
  snprintf(out, cap, "%s%" PRId64 ".%02" PRId64 "%%", hundredths < 0 ? "-" : "+", a / 100, a % 100);
}

static void fmt_funding(int64_t e8, char *out, size_t cap) {
  /* 1e-8 -> percent with four decimals. */
  int64_t a = e8 < 0 ? -e8 : e8;
  snprintf(out, cap, "%s%" PRId64 ".%04" PRId64 "%%", e8 < 0 ? "-" : "", a / 1000000,
           a / 100 % 10000);
}

/* One contract on one line, and with why, its score's parts on a second:
 * "T" turnover, "M" move, "F" funding, "OI" open interest (the legend is
 * under the list). */
static void line_of(const scanner_ranked_t *r, souk_buf_t *b, bool why) {
  char px[32], chg[24], fund[24], oi[24], turn[24];
  scanner_fmt_price(&r->c, px, sizeof px);
  fmt_pct(r->c.change_ppm, chg, sizeof chg);
  fmt_funding(r->c.funding_e8, fund, sizeof fund);
  scanner_fmt_amount(scanner_oi_value(&r->c), oi, sizeof oi);
  scanner_fmt_amount((double)r->c.turnover, turn, sizeof turn);
  souk_buf_printf(b, "#%" PRIu32 " %s %s %s fund %s OI %s vol %s score %.2f\n", r->rank,
                  r->c.symbol, px, chg, fund, oi, turn, (double)r->score_e4 / 10000.0);
  if (why)
    souk_buf_printf(b, "   = T %.2f + M %.2f + F %.2f + OI %.2f\n", r->points[SCANNER_F_TURNOVER],
                    r->points[SCANNER_F_MOVE], r->points[SCANNER_F_FUNDING],
                    r->points[SCANNER_F_OI]);
}

static void age_of(uint64_t at, char *out, size_t cap) {
  uint64_t now = souk_sched_unix_ms();
  uint64_t s = now > at ? (now - at) / 1000 : 0;
  if (s < 120)
    snprintf(out, cap, "%" PRIu64 " s ago", s);
  else
    snprintf(out, cap, "%" PRIu64 " min ago", s / 60);
}

/* ---- /scan top, /scan contract ---------------------------------------------- */

static void cmd_top(souk_cmd_ctx_t *ctx) {
  if (!scanner_g.scan) {
    souk_cmd_replyf(ctx, "%s", off_text());
    return;
  }
  size_t n = 0;
  uint64_t at = 0;
  const scanner_ranked_t *r = scan_ranked(scanner_g.scan, &n, &at);
  if (!r || n == 0) {
    souk_cmd_replyf(ctx, "No scan has finished yet; try again in a minute.");
    return;
  }
  size_t want = (size_t)souk_cmd_arg_int(ctx->args, "n", 5);
  if (want > n) want = n;
  souk_buf_t b;
  souk_buf_init(&b);
  char age[32], title[96], footer[160];
  age_of(at, age, sizeof age);
  snprintf(title, sizeof title, "KuCoin Futures: top %zu of %zu", want, n);
  snprintf(footer, sizeof footer, "scanned %s (%s) · %s", age,
           scanner_source_name(scan_source(scanner_g.scan)), DISCLAIMER);
  /* An embed's description holds 4,096 characters: 25 contracts with
   * their reasons fit in one message. */
  souk_buf_puts(&b, "```\n");
  for (size_t i = 0; i < want; i++)
    line_of(&r[i], &b, true);
  souk_buf_puts(&b, "```\nScore 0-100 = T (24 h turnover) + M (24 h move) + F (funding) + OI "
                    "(open interest's value), each normalised over this scan and weighted; "
                    "`/scan contract` shows one in full.");
  souk_embed_t e = {.title = title, .description = b.data, .footer = footer, .color = 0xf1c40f};
  souk_msg_t m = {.embeds = &e, .nembeds = 1};
  souk_cmd_reply(ctx, &m);
  souk_buf_free(&b);
}

static void cmd_contract(souk_cmd_ctx_t *ctx) {
  if (!scanner_g.scan) {
    souk_cmd_replyf(ctx, "%s", off_text());
    return;
  }
  const char *want = souk_cmd_arg_str(ctx->args, "symbol", "");
  size_t n = 0;
  const scanner_ranked_t *r = scan_ranked(scanner_g.scan, &n, NULL);
  for (size_t i = 0; i < n; i++) {
    if (strcasecmp(r[i].c.symbol, want) != 0) continue;
    const scanner_ranked_t *x = &r[i];
    souk_buf_t b;
    souk_buf_init(&b);
    souk_buf_printf(&b, "**%s** ranks #%" PRIu32 " of %zu\n```\n", x->c.symbol, x->rank, n);
    line_of(x, &b, false);
    char expl[200];
    scanner_explain(x, expl, sizeof expl);
    souk_buf_printf(&b, "%s\n", expl);
    static const char *const how[SCANNER_NFACTORS] = {"log10(1 + turnover)", "|24 h change|",
                                                      "|funding rate|", "log10(1 + OI value)"};
    scanner_weights_t w = scanner_weights();
    for (int f = 0; f < SCANNER_NFACTORS; f++)
      souk_buf_printf(&b, "%-14s %-20s = %.6f  normalised %.4f  x weight %.2f -> %.2f points\n",
                      scanner_factor_name(f), how[f], x->raw[f], x->norm[f], w.w[f], x->points[f]);
    char fin[32];
    if (x->c.funding_in_ms >= 0)
      snprintf(fin, sizeof fin, "%" PRId64 " min", x->c.funding_in_ms / 60000);
    else
      snprintf(fin, sizeof fin, "unknown");
    souk_buf_printf(&b, "score %.2f; next funding in %s\n```\n%s", (double)x->score_e4 / 10000.0,
                    fin, DISCLAIMER);
    souk_msg_t m = {.content = b.data};
    souk_cmd_reply(ctx, &m);
    souk_buf_free(&b);
    return;
  }
  souk_cmd_replyf(ctx, "`%.*s` is not among the %zu contracts of the last scan.", 24, want, n);
}

/* ---- /scan status ------------------------------------------------------------ */

static void cmd_status(souk_cmd_ctx_t *ctx) {
  if (!scanner_g.scan) {
    souk_cmd_replyf(ctx, "%s", off_text());
    return;
  }
  scan_stats_t st;
  scan_get_stats(scanner_g.scan, &st);
  souk_health_result_t h = {0};
  scan_health(scanner_g.scan, &h);
  souk_buf_t b;
  souk_buf_init(&b);
  souk_buf_printf(&b, "**Futures scanner: %s** — %s\n", souk_health_name(h.status), h.detail);
  souk_buf_printf(&b, "source: %s · scans: %" PRIu64 " · requests: %" PRIu64 "\n",
                  scanner_source_name(st.source), st.scans_ok, st.requests);
  souk_buf_printf(&b,
                  "errors: %" PRIu64 " rate limited, %" PRIu64 " network, %" PRIu64
                  " API · %" PRIu32 " in the last 15 min\n",
                  st.rate_limited, st.network, st.api, st.errors_15m);
  if (st.pool_remaining >= 0)
    souk_buf_printf(&b, "KuCoin public pool: %" PRId64 " of %" PRId64 " weight left\n",
                    st.pool_remaining, st.pool_limit);
  if (st.backoff_left_ms)
    souk_buf_printf(&b, "backing off after 429: %" PRIu64 " s left\n", st.backoff_left_ms / 1000);
  if (st.running)
    souk_buf_printf(&b, "breaker: %s · a scan is running\n", souk_breaker_state_name(st.breaker));
  else
    souk_buf_printf(&b, "breaker: %s · next scan in %" PRIu64 " s\n",
                    souk_breaker_state_name(st.breaker), (st.next_in_ms + 999) / 1000);
  if (st.last_error[0]) souk_buf_printf(&b, "last error: %s\n", st.last_error);
  uint64_t ch = ctx->guild_id ? souk_setting_id(ctx->guild_id, "scanner.channel") : 0;
  if (ch)
    souk_buf_printf(&b, "changes of the top %" PRId64 " are posted to <#%" PRIu64 ">\n",
                    scanner_conf.top, ch);
  else
    souk_buf_printf(&b, "no signal channel here (`/scan channel set`)\n");
  souk_buf_puts(&b, DISCLAIMER);
  souk_msg_t m = {.content = b.data};
  souk_cmd_reply(ctx, &m);
  souk_buf_free(&b);
}

/* ---- /scan now, /scan channel ------------------------------------------------- */

static void cmd_now(souk_cmd_ctx_t *ctx) {
  if (!scanner_g.scan) {
    souk_cmd_replyf(ctx, "%s", off_text());
    return;
  }
  uint64_t wait = 0;
  int rc = scan_now(scanner_g.scan, &wait);
  if (rc == 0)
    souk_cmd_replyf(ctx, "Scan started.");
  else if (rc == SOUK_EBUSY)
    souk_cmd_replyf(ctx, "A scan is already running.");
  else
    souk_cmd_replyf(ctx, "Not now: KuCoin's limits say wait %" PRIu64 " s (see /scan status).",
                    (wait + 999) / 1000);
}

static void cmd_channel_set(souk_cmd_ctx_t *ctx) {
  uint64_t ch = souk_cmd_arg_id(ctx->args, "channel");
  char text[32], err[200] = "";
  snprintf(text, sizeof text, "%" PRIu64, ch ? ch : ctx->channel_id);
  int rc = souk_setting_set(ctx->guild_id, "scanner.channel", text, ctx->user_id, err, sizeof err);
  if (rc) {
    souk_cmd_errorf(ctx, "Cannot set the channel: %s", err[0] ? err : souk_strerror(rc));
    return;
  }
  scanner_guild_seen(ctx->guild_id);
  if (!souk_discord_bot_can(ctx->guild_id, ch ? ch : ctx->channel_id,
                            SOUK_PERM_VIEW_CHANNEL | SOUK_PERM_SEND_MESSAGES))
    souk_cmd_replyf(ctx,
                    "Changes of the scanner's top list will be posted to <#%s>, but I cannot "
                    "send messages there yet: give me View Channel and Send Messages.",
                    text);
  else
    souk_cmd_replyf(ctx, "Changes of the scanner's top list will be posted to <#%s>.%s", text,
                    scanner_g.scan ? "" : " (The scanner is off for now.)");
}

static void cmd_channel_clear(souk_cmd_ctx_t *ctx) {
  int rc = souk_setting_reset(ctx->guild_id, "scanner.channel", ctx->user_id);
  if (rc) {
    souk_cmd_errorf(ctx, "Cannot clear the channel: %s", souk_strerror(rc));
    return;
  }
  souk_cmd_replyf(ctx, "The scanner will not post here any more.");
}

/* ---- posts ------------------------------------------------------------------- */

static void post_cb(const souk_discord_result_t *res, void *ud) {
  if (res->err) {
    scanner_g.post_failures++;
    SOUK_WARN(COMP, "cannot post the top-list changes to channel %" PRIu64 ": %s (code %d)",
              res->channel_id, souk_strerror(res->err), res->code);
  } else {
    scanner_g.posts++;
  }
}

static size_t targets(uint64_t *out, size_t cap) {
  size_t n = 0;
  if (scanner_conf.channel) out[n++] = scanner_conf.channel;
  for (size_t i = 0; i < scanner_g.nguilds && n < cap; i++) {
    uint64_t ch = souk_setting_id(scanner_g.guilds[i], "scanner.channel");
    bool dup = ch == 0;
    for (size_t k = 0; k < n && !dup; k++)
      dup = out[k] == ch;
    if (!dup) out[n++] = ch;
  }
  return n;
}

void scanner_maybe_post(const scanner_ranked_t *r, size_t n) {
  /* The top list is posted once for the bot: by the lease's holder. */
  if (!scanner_g.posted_loaded || !souk_cluster_leader()) return;
  size_t top = (size_t)scanner_conf.top < n ? (size_t)scanner_conf.top : n;
  scanner_top_t cur = {souk_calloc(top ? top : 1, sizeof *cur.sym), top};
  for (size_t i = 0; i < top; i++)
    snprintf(cur.sym[i], sizeof cur.sym[i], "%s", r[i].c.symbol);
  scanner_change_t ch[64];
  size_t nch = scanner_top_diff(&scanner_g.posted, &cur, ch, 64);
  uint64_t now = souk_sched_unix_ms();
  uint64_t dest[64];
  size_t nd = nch ? targets(dest, 64) : 0;
  if (nch == 0 || nd == 0 ||
      (scanner_g.posted_at && now - scanner_g.posted_at < (uint64_t)scanner_conf.post_every_ms)) {
    souk_free(cur.sym);
    return;
  }
  souk_buf_t b;
  souk_buf_init(&b);
  souk_buf_printf(&b, "**Futures scanner: the top %zu changed**\n", top);
  for (size_t i = 0; i < nch; i++) {
    const scanner_change_t *c = &ch[i];
    const scanner_ranked_t *x = NULL;
    for (size_t k = 0; k < top && !x; k++)
      if (strcmp(r[k].c.symbol, c->symbol) == 0) x = &r[k];
    char score[32] = "";
    if (x) snprintf(score, sizeof score, " (score %.2f)", (double)x->score_e4 / 10000.0);
    switch (c->kind) {
    case SCANNER_ENTERED:
      souk_buf_printf(&b, "▲ %s entered at #%" PRIu32 "%s\n", c->symbol, c->to, score);
      break;
    case SCANNER_LEFT:
      souk_buf_printf(&b, "▼ %s left (was #%" PRIu32 ")\n", c->symbol, c->from);
      break;
    case SCANNER_MOVED:
      souk_buf_printf(&b, "%s %s #%" PRIu32 " → #%" PRIu32 "%s\n", c->to < c->from ? "↑" : "↓",
                      c->symbol, c->from, c->to, score);
      break;
    }
  }
  souk_buf_printf(&b, "`/scan top` for the list and why. %s", DISCLAIMER);
  souk_msg_t m = {.content = b.data};
  for (size_t i = 0; i < nd; i++) {
    int rc = souk_discord_send(dest[i], &m, post_cb, NULL);
    if (rc) {
      scanner_g.post_failures++;
      SOUK_WARN(COMP, "cannot post to channel %" PRIu64 ": %s", dest[i], souk_strerror(rc));
    }
  }
  souk_buf_free(&b);
  souk_free(scanner_g.posted.sym);
  scanner_g.posted = cur;
  scanner_g.posted_at = now;
  scanner_save_posted();
}

/* ---- the table --------------------------------------------------------------- */

static const souk_cmd_option_t opt_top[] = {
    {.name = "n",
     .description = "How many (default 5)",
     .type = SOUK_OPT_INTEGER,
     SOUK_OPT_INT_RANGE(1, 25)},
    {0},
};
static const souk_cmd_option_t opt_contract[] = {
    {.name = "symbol",
     .description = "A KuCoin Futures contract, e.g. XBTUSDTM",
     .type = SOUK_OPT_STRING,
     .required = true,
     .min_length = 2,
     .max_length = 23},
    {0},
};
static const souk_cmd_option_t opt_channel[] = {
    {.name = "channel",
     .description = "Where to post (default: this channel)",
     .type = SOUK_OPT_CHANNEL},
    {0},
};

static const souk_command_t channel_subs[] = {
    {.name = "set",
     .description = "Post changes of the top list to a channel",
     .options = opt_channel,
     .handler = cmd_channel_set},
    {.name = "clear",
     .description = "Stop posting changes of the top list here",
     .handler = cmd_channel_clear},
    {0},
};

static const souk_command_t scan_subs[] = {
    {.name = "top",
     .description = "The best-scoring futures contracts of the last scan, and why",
     .options = opt_top,
     .handler = cmd_top},
    {.name = "contract",
     .description = "One contract's figures and how its score is made",
     .options = opt_contract,
     .handler = cmd_contract},
    {.name = "status",
     .description = "The scanner's health, limits and last errors",
     .handler = cmd_status},
    {.name = "now",
     .description = "Scan now (bot owners)",
     .flags = SOUK_CMD_OWNER_ONLY,
     .handler = cmd_now},
    {.name = "channel",
     .description = "Where changes of the top list are posted",
     .subcommands = channel_subs,
     .flags = SOUK_CMD_GUILD_ONLY,
     .permissions = SOUK_PERM_MANAGE_GUILD},
    {0},
};

static const char *const scan_usage[] = {"/scan top n:5", "/scan contract symbol:XBTUSDTM",
                                         "/scan channel set channel:#signals", NULL};

const souk_command_t scanner_commands[] = {
    {.name = "scan",
     .description = "Crypto-futures scanner (KuCoin; signals only, no trading)",
     .category = "Scanner",
     .usage = scan_usage,
     .subcommands = scan_subs},
    {0},
};
