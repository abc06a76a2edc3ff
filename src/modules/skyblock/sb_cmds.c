/* The skyblock module's commands and per-guild settings:
 *   /sniper_status                 the poller, counts, alerts, memory
 *   /ah price item:<name>          an item's fair market value, with
 *                                  autocomplete (the market owns /price)
 *   /ah auction uuid:<id>          one auction from the API (the endpoint
 *                                  that needs SOUK_SKYBLOCK_API_KEY)
 *   /sniper watch|unwatch|list     DM alerts for a user, with filters
 *   /sniper settings               a guild's alert channel and thresholds
 *                                  (Manage Server)
 *   /watchlist                     the most active items
 * Every reply is plain text or an embed, readable in `souk console` too. */
#include "item.h"
#include "sb_mod.h"
#include "souk/alloc.h"
#include "souk/cmd.h"
#include "souk/err.h"
#include "souk/http.h"
#include "souk/json.h"
#include "souk/loop.h"
#include "souk/settings.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#define CATEGORY "SkyBlock"

/* ---- settings --------------------------------------------------------------------- */

const souk_setting_t sb_settings[] = {
    {.key = "skyblock.alert_channel",
     .scope = SOUK_SETTING_GUILD,
     .type = SOUK_SETTING_CHANNEL,
     .label = "Snipe alert channel",
     .description = "Where this server's snipe alerts are posted (none: no alerts here).",
     .step = "channels"},
    {.key = "skyblock.min_profit",
     .scope = SOUK_SETTING_GUILD,
     .type = SOUK_SETTING_MONEY,
     .def = "1000000",
     .min = 0,
     .decimals = 0,
     .label = "Least snipe profit (coins)",
     .description = "Alerts here need at least this profit after fees (the bot's own "
                    "minimum still applies).",
     .config_key = "skyblock.sniper.min_profit"},
    {.key = "skyblock.min_margin",
     .scope = SOUK_SETTING_GUILD,
     .type = SOUK_SETTING_INT,
     .def = "10",
     .min = 0,
     .max = 100000,
     .label = "Least snipe margin (%)",
     .description = "Alerts here need at least this profit as a percentage of the price.",
     .config_key = "skyblock.sniper.min_margin"},
    {.key = "skyblock.alerts",
     .scope = SOUK_SETTING_GUILD,
     .type = SOUK_SETTING_BOOL,
     .def = "true",
     .label = "Snipe alerts",
     .description = "Post snipe alerts in this server's alert channel."},
    {0},
};

/* ---- helpers ------------------------------------------------------------------------- */

static bool running(souk_cmd_ctx_t *ctx) {
  if (sb_g.started) return true;
  souk_cmd_errorf(ctx, "The SkyBlock sniper is not running here.");
  return false;
}

/* The market a user means: "KEY|attrs" from autocomplete, else the best
 * match of their words. */
static uint32_t market_of(const char *text) {
  sb_mkts_t *m = sb_engine_store(sb_g.engine);
  const char *bar = strchr(text, '|');
  if (bar) {
    char key[128];
    snprintf(key, sizeof key, "%.*s", (int)(bar - text), text);
    uint32_t mid = sb_mkts_find(m, key, bar + 1);
    if (mid != UINT32_MAX) return mid;
  }
  uint32_t mid = sb_mkts_find(m, text, "");
  if (mid != UINT32_MAX) return mid;
  uint32_t ids[1];
  return sb_mkts_search(m, text, ids, 1) ? ids[0] : UINT32_MAX;
}

static void label_of(uint32_t mid, char *out, size_t cap) {
  sb_mkts_t *m = sb_engine_store(sb_g.engine);
  const char *name = sb_mkts_name(m, mid), *key = sb_mkts_key(m, mid), *at = sb_mkts_attrs(m, mid);
  snprintf(out, cap, "%s%s%s%s", name && *name ? name : key, *at ? " [" : "", at, *at ? "]" : "");
}

/* ---- /sniper_status --------------------------------------------------------------------- */

static void cmd_status(souk_cmd_ctx_t *ctx) {
  souk_buf_t b = {0};
  sb_status_text(&b);
  size_t subs, paused;
  sb_subs_count(&subs, &paused);
  if (sb_g.started)
    souk_buf_printf(&b, "\nSubscriptions: %zu (%zu paused: DMs closed)", subs, paused);
  souk_cmd_replyf(ctx, "%s", b.data);
  souk_buf_free(&b);
}

/* ---- /ah price ----------------------------------------------------------------------------- */

static void ac_item(souk_cmd_ctx_t *ctx) {
  if (!sb_g.started) {
    souk_cmd_choices(ctx, NULL, 0);
    return;
  }
  const souk_cmd_arg_t *f = souk_cmd_focused(ctx->args);
  uint32_t ids[25];
  size_t n = sb_mkts_search(sb_engine_store(sb_g.engine), f && f->text ? f->text : "", ids, 25);
  char names[25][101], values[25][101];
  souk_cmd_choice_t ch[25];
  sb_mkts_t *m = sb_engine_store(sb_g.engine);
  size_t k = 0;
  for (size_t i = 0; i < n; i++) {
    int v = snprintf(values[k], sizeof values[k], "%s|%s", sb_mkts_key(m, ids[i]),
                     sb_mkts_attrs(m, ids[i]));
    if (v < 0 || v >= (int)sizeof values[k]) continue; /* a value must fit in 100 */
    label_of(ids[i], names[k], sizeof names[k]);
    ch[k] = (souk_cmd_choice_t){names[k], values[k]};
    k++;
  }
  souk_cmd_choices(ctx, ch, k);
}

static void cmd_price(souk_cmd_ctx_t *ctx) {
  if (!running(ctx)) return;
  const char *item = souk_cmd_arg_str(ctx->args, "item", "");
  uint32_t mid = market_of(item);
  if (mid == UINT32_MAX) {
    souk_cmd_errorf(ctx, "No item matches `%s` yet. Start typing its name and pick one.", item);
    return;
  }
  sb_mkts_t *m = sb_engine_store(sb_g.engine);
  sb_fmv_t f;
  sb_mkts_fmv(m, mid, NULL, &f);
  sb_mkt_info_t in;
  sb_mkts_info(m, mid, &in);
  char title[200], v[40], a[40], b[40], c[40], d[40];
  label_of(mid, title, sizeof title);
  souk_buf_t fv[5] = {{0}};
  if (f.value) {
    sb_fmt_coins(v, sizeof v, f.value, false);
    souk_buf_printf(&fv[0], "%s coins: %s", v, f.evidence);
  } else {
    souk_buf_printf(&fv[0], "unknown: %s", f.evidence);
  }
  if (in.nlad) {
    for (size_t i = 0; i < in.nlad && i < 8; i++) {
      sb_fmt_coins(v, sizeof v, in.lad[i], true);
      souk_buf_printf(&fv[1], "%s%s", i ? ", " : "", v);
    }
    if (in.nlad > 8) souk_buf_puts(&fv[1], ", ...");
  } else {
    souk_buf_puts(&fv[1], "no BIN listed");
  }
  souk_buf_printf(&fv[2], "%u BIN listed (%u auctions in all)%s; %u within 10%% of the floor",
                  in.live_bin, in.live_all, f.thin ? ", thin market" : "", f.depth);
  if (f.sales_clean) {
    sb_fmt_coins(a, sizeof a, f.sales_median, false);
    sb_fmt_coins(b, sizeof b, f.sales_iqm, false);
    sb_fmt_coins(c, sizeof c, f.sales_min, true);
    sb_fmt_coins(d, sizeof d, f.sales_max, true);
    souk_buf_printf(&fv[3], "%u in %u h (%u kept): median %s, IQM %s, %s to %s", f.sales_total,
                    sb_g.window_now, f.sales_clean, a, b, c, d);
  } else {
    souk_buf_printf(&fv[3], "%u in %u h, none kept", f.sales_total, sb_g.window_now);
  }
  unsigned dropped = f.dropped_pairs + f.dropped_sellers + f.dropped_buyers + f.dropped_outliers;
  souk_buf_printf(&fv[4], "%u back-and-forth, %u repeat sellers, %u repeat buyers, %u outliers",
                  f.dropped_pairs, f.dropped_sellers, f.dropped_buyers, f.dropped_outliers);
  souk_embed_field_t fields[5] = {
      {"Fair value", fv[0].data, false},
      {"Lowest BIN (per unit)", fv[1].data, false},
      {"Depth", fv[2].data, false},
      {"Sales", fv[3].data, false},
      {"Left out (manipulation guard)", fv[4].data, false},
  };
  char foot[200];
  snprintf(foot, sizeof foot, "%s%s%s - method: %s", sb_mkts_key(m, mid),
           *sb_mkts_attrs(m, mid) ? " " : "", sb_mkts_attrs(m, mid), sb_fmv_method_name(f.method));
  souk_embed_t e = {.title = title,
                    .color = 0x3498db,
                    .fields = fields,
                    .nfields = dropped ? 5 : 4,
                    .footer = foot};
  souk_msg_t msg = {.embeds = &e, .nembeds = 1};
  souk_cmd_reply(ctx, &msg);
  for (int i = 0; i < 5; i++)
    souk_buf_free(&fv[i]);
}

/* ---- /ah auction: one auction from the API (the endpoint that needs the key) ---------------- */

typedef struct auc_job {
  souk_cmd_ctx_t *ctx;
  char uuid[33];
} auc_job_t;

static void auction_reply(souk_cmd_ctx_t *ctx, const souk_json_t *j, int a, const char *uuid) {
  sb_decoder_t *d = sb_decoder_new();
  sb_item_t it;
  int rc = sb_item_decode_json(d, j, souk_json_get(j, a, "item_bytes"), &it);
  sb_decoder_free(d);
  if (rc) {
    souk_cmd_errorf(ctx, "Auction `%s` holds an item I cannot read (%s).", uuid, souk_strerror(rc));
    return;
  }
  int64_t bid = 0, high = 0, end = 0;
  bool bin = false;
  souk_json_i64(j, souk_json_get(j, a, "starting_bid"), &bid);
  souk_json_i64(j, souk_json_get(j, a, "highest_bid_amount"), &high);
  souk_json_i64(j, souk_json_get(j, a, "end"), &end);
  souk_json_bool(j, souk_json_get(j, a, "bin"), &bin);
  char seller[64] = "?";
  souk_json_str(j, souk_json_get(j, a, "auctioneer"), seller, sizeof seller);
  int64_t price = !bin && high > bid ? high : bid;
  uint32_t count = it.count ? it.count : 1;
  char p[40], u[40], v[40], title[160];
  sb_fmt_coins(p, sizeof p, price, false);
  sb_fmt_coins(u, sizeof u, price / count + (price % count != 0), false);
  snprintf(title, sizeof title, "%s", it.name[0] ? it.name : it.key);
  souk_buf_t fv[4] = {{0}};
  if (count > 1)
    souk_buf_printf(&fv[0], "%s coins for %u (%s each)%s", p, count, u,
                    bin ? ", BIN" : ", auction");
  else
    souk_buf_printf(&fv[0], "%s coins%s", p, bin ? ", BIN" : " (highest bid or start)");
  souk_buf_printf(&fv[1], "`%s`%s%s", it.key, it.attrs[0] ? " " : "", it.attrs);
  sb_mkts_t *m = sb_engine_store(sb_g.engine);
  uint32_t mid = sb_mkts_find(m, it.key, it.attrs);
  sb_fmv_t f;
  if (mid != UINT32_MAX && sb_mkts_fmv(m, mid, NULL, &f)) {
    sb_fmt_coins(v, sizeof v, f.value, false);
    souk_buf_printf(&fv[2], "%s coins each: %s", v, f.evidence);
  } else {
    souk_buf_puts(&fv[2], "not known yet");
  }
  souk_buf_printf(&fv[3], "`%s`, ends <t:%" PRId64 ":R>", seller, end / 1000);
  souk_embed_field_t fields[4] = {{"Price", fv[0].data, true},
                                  {"Item", fv[1].data, true},
                                  {"Fair value", fv[2].data, false},
                                  {"Seller", fv[3].data, false}};
  char desc[80];
  snprintf(desc, sizeof desc, "`/viewauction %s`", uuid);
  souk_embed_t e = {
      .title = title, .description = desc, .color = 0x3498db, .fields = fields, .nfields = 4};
  souk_msg_t msg = {.embeds = &e, .nembeds = 1};
  souk_cmd_reply(ctx, &msg);
  for (int i = 0; i < 4; i++)
    souk_buf_free(&fv[i]);
}

static void auction_cb(const souk_http_resp_t *resp, void *ud) {
  auc_job_t *job = ud;
  souk_cmd_ctx_t *ctx = job->ctx;
  souk_json_t j = {0};
  if (resp->err) {
    souk_cmd_errorf(ctx, "The Hypixel API did not answer (%s); try again later.",
                    souk_strerror(resp->err));
  } else if (resp->status == 403) {
    souk_cmd_errorf(ctx, "The Hypixel API refused the key (403): check SOUK_SKYBLOCK_API_KEY.");
  } else if (resp->status == 429) {
    souk_cmd_errorf(ctx, "The Hypixel API asks to slow down (429); try again in a minute.");
  } else if (resp->status != 200 || souk_json_parse(&j, resp->body, resp->body_len) != 0) {
    souk_cmd_errorf(ctx, "The Hypixel API answered HTTP %d; try again later.", resp->status);
  } else {
    int arr = souk_json_get(&j, 0, "auctions");
    int a = souk_json_at(&j, arr, 0);
    if (souk_json_type(&j, a) != SOUK_JSON_OBJECT)
      souk_cmd_replyf(ctx, "No active auction `%s` (it may have sold or ended).", job->uuid);
    else
      auction_reply(ctx, &j, a, job->uuid);
  }
  souk_json_free(&j);
  souk_free(job);
}

static void cmd_auction(souk_cmd_ctx_t *ctx) {
  if (!running(ctx)) return;
  const char *text = souk_cmd_arg_str(ctx->args, "uuid", "");
  sb_uuid_t u;
  if (sb_uuid_parse(text, strlen(text), &u) != 0) {
    souk_cmd_errorf(
        ctx, "`%s` is not an auction id (32 hexadecimal digits, as /viewauction takes).", text);
    return;
  }
  if (!sb_g.live || !sb_conf.api_key) {
    souk_cmd_errorf(ctx, "/ah auction asks the Hypixel API, which needs skyblock.source: live and "
                         "SOUK_SKYBLOCK_API_KEY.");
    return;
  }
  auc_job_t *job = souk_calloc(1, sizeof *job);
  job->ctx = ctx;
  sb_uuid_hex(&u, job->uuid);
  char url[512], key[200];
  snprintf(url, sizeof url, "%s/v2/skyblock/auction?uuid=%s", sb_conf.api_url, job->uuid);
  snprintf(key, sizeof key, "API-Key: %s", sb_conf.api_key);
  const char *headers[] = {key, "User-Agent: souk/" SOUK_VERSION " (skyblock)"};
  souk_http_opts_t o = {.url = url, .headers = headers, .nheaders = 2, .timeout_ms = 10000};
  int rc = souk_http_request(&o, auction_cb, job, NULL);
  if (rc) {
    souk_free(job);
    souk_cmd_errorf(ctx, "Cannot ask the Hypixel API now (%s).", souk_strerror(rc));
  }
}

/* ---- /sniper ------------------------------------------------------------------------------ */

static void cmd_watch(souk_cmd_ctx_t *ctx) {
  if (!running(ctx)) return;
  sb_sub_t s = {.user_id = ctx->user_id, .guild_id = ctx->guild_id, .channel_id = ctx->channel_id};
  const char *item = souk_cmd_arg_str(ctx->args, "item", "");
  /* An autocompleted value names the key: watch by it. */
  const char *bar = strchr(item, '|');
  snprintf(s.query, sizeof s.query, "%.*s", bar ? (int)(bar - item) : (int)strlen(item), item);
  s.min_profit = souk_cmd_arg_int(ctx->args, "min_profit", 0);
  s.max_price = souk_cmd_arg_int(ctx->args, "max_price", 0);
  if (sb_subs_set(&s) == SOUK_EFULL) {
    souk_cmd_errorf(ctx, "You watch 10 items already: /sniper unwatch one first.");
    return;
  }
  souk_buf_t b = {0};
  char v[40];
  souk_buf_puts(&b, "You will get a DM for every snipe");
  if (*s.query) souk_buf_printf(&b, " of `%s`", s.query);
  if (s.min_profit) {
    sb_fmt_coins(v, sizeof v, s.min_profit, false);
    souk_buf_printf(&b, " with at least %s coins profit", v);
  }
  if (s.max_price) {
    sb_fmt_coins(v, sizeof v, s.max_price, false);
    souk_buf_printf(&b, " costing at most %s coins", v);
  }
  souk_buf_puts(&b, ". Keep your DMs open: if Discord refuses one, your alerts pause and I say "
                    "so here.");
  souk_msg_t msg = {.ephemeral = true, .content = b.data};
  souk_cmd_reply(ctx, &msg);
  souk_buf_free(&b);
}

static void cmd_unwatch(souk_cmd_ctx_t *ctx) {
  if (!running(ctx)) return;
  const char *item = souk_cmd_arg_str(ctx->args, "item", NULL);
  char q[101];
  if (item) {
    const char *bar = strchr(item, '|');
    snprintf(q, sizeof q, "%.*s", bar ? (int)(bar - item) : (int)strlen(item), item);
  }
  int n = sb_subs_remove(ctx->user_id, item ? q : NULL);
  if (!n)
    souk_cmd_replyf(ctx, "You had no %s%s%s alerts to stop.", item ? "`" : "", item ? q : "",
                    item ? "`" : "");
  else
    souk_cmd_replyf(ctx, "Stopped %d alert subscription%s.", n, n == 1 ? "" : "s");
}

static void cmd_list(souk_cmd_ctx_t *ctx) {
  if (!running(ctx)) return;
  const sb_sub_t *v[16];
  size_t n = sb_subs_of(ctx->user_id, v, 16);
  if (!n) {
    souk_cmd_replyf(ctx, "You watch nothing. /sniper watch sends you snipes by DM.");
    return;
  }
  souk_buf_t b = {0};
  souk_buf_puts(&b, "Your snipe alerts:\n");
  for (size_t i = 0; i < n; i++) {
    char p[40], q[40];
    sb_fmt_coins(p, sizeof p, v[i]->min_profit, true);
    sb_fmt_coins(q, sizeof q, v[i]->max_price, true);
    souk_buf_printf(&b, "%zu. %s%s%s%s%s%s%s%s\n", i + 1, *v[i]->query ? "`" : "",
                    *v[i]->query ? v[i]->query : "any item", *v[i]->query ? "`" : "",
                    v[i]->min_profit ? ", profit >= " : "", v[i]->min_profit ? p : "",
                    v[i]->max_price ? ", price <= " : "", v[i]->max_price ? q : "",
                    v[i]->paused ? " - PAUSED (your DMs were closed; /sniper watch resumes)" : "");
  }
  souk_cmd_replyf(ctx, "%s", b.data);
  souk_buf_free(&b);
}

static void cmd_settings(souk_cmd_ctx_t *ctx) {
  if (!running(ctx)) return;
  uint64_t g = ctx->guild_id;
  char err[256] = "", text[64];
  int changed = 0;
  const souk_cmd_arg_t *a;
  if ((a = souk_cmd_arg(ctx->args, "channel"))) {
    snprintf(text, sizeof text, "%" PRIu64, a->id);
    if (souk_setting_set(g, "skyblock.alert_channel", text, ctx->user_id, err, sizeof err))
      goto bad;
    changed++;
  }
  if ((a = souk_cmd_arg(ctx->args, "min_profit"))) {
    snprintf(text, sizeof text, "%" PRId64, a->i);
    if (souk_setting_set(g, "skyblock.min_profit", text, ctx->user_id, err, sizeof err)) goto bad;
    changed++;
  }
  if ((a = souk_cmd_arg(ctx->args, "min_margin"))) {
    snprintf(text, sizeof text, "%" PRId64, a->i);
    if (souk_setting_set(g, "skyblock.min_margin", text, ctx->user_id, err, sizeof err)) goto bad;
    changed++;
  }
  if ((a = souk_cmd_arg(ctx->args, "alerts"))) {
    if (souk_setting_set(g, "skyblock.alerts", a->b ? "true" : "false", ctx->user_id, err,
                         sizeof err))
      goto bad;
    changed++;
  }
  if (changed) sb_alerts_guild_set(g);
  {
    char ch[64], pr[64], mg[64], on[16];
    souk_setting_display(g, "skyblock.alert_channel", ch, sizeof ch);
    souk_setting_display(g, "skyblock.min_profit", pr, sizeof pr);
    souk_setting_display(g, "skyblock.min_margin", mg, sizeof mg);
    souk_setting_display(g, "skyblock.alerts", on, sizeof on);
    souk_cmd_replyf(ctx,
                    "%sSniper settings of this server:\nAlert channel: %s\nAlerts: %s\n"
                    "Least profit: %s coins (the bot's own minimum: %" PRId64 ")\n"
                    "Least margin: %s%%",
                    changed ? "Saved. " : "", ch, on, pr, sb_conf.min_profit, mg);
  }
  return;
bad:
  souk_cmd_errorf(ctx, "Not changed: %s", err);
}

/* ---- /watchlist -------------------------------------------------------------------------- */

static void cmd_watchlist(souk_cmd_ctx_t *ctx) {
  if (!running(ctx)) return;
  if (!sb_g.nwatch) {
    sb_g.nwatch = sb_mkts_most_active(sb_engine_store(sb_g.engine), sb_g.watch, 25);
    sb_g.watch_at_ms = souk_unix_ms();
  }
  if (!sb_g.nwatch) {
    souk_cmd_replyf(ctx, "Nothing is known about the auction house yet: the first sweep is "
                         "still running.");
    return;
  }
  sb_mkts_t *m = sb_engine_store(sb_g.engine);
  souk_buf_t b = {0};
  souk_buf_printf(&b, "**Most active items** (every %" PRId64 " s; %" PRIu64 " s ago)\n",
                  sb_conf.intel_interval_seconds, (souk_unix_ms() - sb_g.watch_at_ms) / 1000);
  size_t shown = 0;
  for (size_t i = 0; i < sb_g.nwatch && shown < 15; i++) {
    if (!sb_mkts_used(m, sb_g.watch[i])) continue;
    char label[200], v[40];
    label_of(sb_g.watch[i], label, sizeof label);
    sb_fmv_t f;
    sb_mkts_fmv(m, sb_g.watch[i], NULL, &f);
    sb_mkt_info_t in;
    sb_mkts_info(m, sb_g.watch[i], &in);
    sb_fmt_coins(v, sizeof v, f.value, true);
    souk_buf_printf(&b, "%zu. %s: %s (%s); %u sales, %u listed\n", ++shown, label,
                    f.value ? v : "no value", f.evidence, in.sales, in.live_bin);
  }
  souk_cmd_replyf(ctx, "%s", b.data);
  souk_buf_free(&b);
}

/* ---- the tables ------------------------------------------------------------------------------ */

static const souk_cmd_option_t price_opts[] = {
    {.name = "item",
     .description = "The item: start typing its name",
     .type = SOUK_OPT_STRING,
     .required = true,
     .autocomplete = true,
     .max_length = 100},
    {0},
};

static const souk_cmd_option_t auction_opts[] = {
    {.name = "uuid",
     .description = "The auction's id, as /viewauction takes it",
     .type = SOUK_OPT_STRING,
     .required = true,
     .min_length = 32,
     .max_length = 36},
    {0},
};

static const souk_command_t ah_subs[] = {
    {.name = "price",
     .description = "An item's fair market value, ladder, sales and depth",
     .options = price_opts,
     .handler = cmd_price,
     .autocomplete = ac_item},
    {.name = "auction",
     .description = "One auction's item, price and value, from the Hypixel API",
     .options = auction_opts,
     .cooldown_ms = 2000,
     .handler = cmd_auction},
    {0},
};

static const souk_cmd_option_t watch_opts[] = {
    {.name = "item",
     .description = "Only this item (empty: every snipe)",
     .type = SOUK_OPT_STRING,
     .autocomplete = true,
     .max_length = 100},
    {.name = "min_profit",
     .description = "Least profit after fees, in coins",
     .type = SOUK_OPT_INTEGER,
     SOUK_OPT_INT_RANGE(0, 100000000000LL)},
    {.name = "max_price",
     .description = "Most you would pay, in coins",
     .type = SOUK_OPT_INTEGER,
     SOUK_OPT_INT_RANGE(0, 100000000000LL)},
    {0},
};

static const souk_cmd_option_t unwatch_opts[] = {
    {.name = "item",
     .description = "The item to stop (empty: all your alerts)",
     .type = SOUK_OPT_STRING,
     .autocomplete = true,
     .max_length = 100},
    {0},
};

static const souk_cmd_option_t settings_opts[] = {
    {.name = "channel", .description = "Where snipe alerts are posted", .type = SOUK_OPT_CHANNEL},
    {.name = "min_profit",
     .description = "Least profit after fees, in coins",
     .type = SOUK_OPT_INTEGER,
     SOUK_OPT_INT_RANGE(0, 100000000000LL)},
    {.name = "min_margin",
     .description = "Least profit as a percentage of the price",
     .type = SOUK_OPT_INTEGER,
     SOUK_OPT_INT_RANGE(0, 100000)},
    {.name = "alerts", .description = "Post alerts here at all", .type = SOUK_OPT_BOOLEAN},
    {0},
};

static const souk_command_t sniper_subs[] = {
    {.name = "watch",
     .description = "Get snipe alerts by DM, for one item or all",
     .options = watch_opts,
     .handler = cmd_watch,
     .autocomplete = ac_item},
    {.name = "unwatch",
     .description = "Stop snipe alerts by DM",
     .options = unwatch_opts,
     .handler = cmd_unwatch,
     .autocomplete = ac_item},
    {.name = "list", .description = "Your snipe alert subscriptions", .handler = cmd_list},
    {.name = "settings",
     .description = "This server's alert channel and thresholds",
     .options = settings_opts,
     .flags = SOUK_CMD_GUILD_ONLY,
     .permissions = SOUK_PERM_MANAGE_GUILD,
     .handler = cmd_settings},
    {0},
};

static const char *const status_usage[] = {"/sniper_status", NULL};
static const char *const ah_usage[] = {"/ah price item:hyperion", NULL};
static const char *const sniper_usage[] = {"/sniper watch item:hyperion min_profit:5000000",
                                           "/sniper list", "/sniper settings channel:#snipes",
                                           NULL};

const souk_command_t sb_commands[] = {
    {.name = "sniper_status",
     .description = "SkyBlock sniper: poller, auctions seen, alerts, memory",
     .category = CATEGORY,
     .usage = status_usage,
     .handler = cmd_status},
    {.name = "ah",
     .description = "SkyBlock auction house",
     .category = CATEGORY,
     .usage = ah_usage,
     .subcommands = ah_subs},
    {.name = "sniper",
     .description = "SkyBlock snipe alerts",
     .category = CATEGORY,
     .usage = sniper_usage,
     .subcommands = sniper_subs},
    {.name = "watchlist",
     .description = "SkyBlock: the most active items and their values",
     .category = CATEGORY,
     .handler = cmd_watchlist},
    {0},
};
