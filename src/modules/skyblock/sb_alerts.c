/* Snipe alerts out of the process: the embed, the channels it goes to,
 * the subscribers it is DMed to, and what the store keeps across restarts
 * (the alerted auctions for the dedupe, the subscriptions, the guilds that
 * set an alert channel).
 *
 * This file is the module's one contact with Discord (souk/discord.h) and
 * the per-guild settings (souk/settings.h).
 *
 * A DM that Discord refuses with 50007 (the user closed DMs) is never
 * retried: every refused request counts against Discord's invalid-request
 * limit.  The user's subscriptions are paused (in memory and in the
 * store) and they are told in the channel where they subscribed, once. */
#include "sb_db.h"
#include "sb_mod.h"
#include "souk/alloc.h"
#include "souk/cluster.h"
#include "souk/discord.h"
#include "souk/err.h"
#include "souk/log.h"
#include "souk/loop.h"
#include "souk/store.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#define SUBS_MAX   10000
#define GUILDS_MAX 10000

static struct {
  bool on;
  sb_sub_t *subs;
  size_t nsubs, capsubs;
  uint64_t *guilds; /* that set sniper settings */
  size_t nguilds, capguilds;
  unsigned writes; /* store writes in flight */
} g;

/* ---- the alert message ------------------------------------------------------------ */

void sb_alert_msg_build(const sb_alert_t *a, sb_alert_msg_t *m) {
  memset(m, 0, sizeof *m);
  const sb_judgement_t *j = &a->j;
  char hex[33], seller[33], p[40], u[40], v[40], pr[40], fee[40], fl[40];
  sb_uuid_hex(&a->uuid, hex);
  sb_uuid_hex(&a->seller, seller);
  sb_fmt_coins(p, sizeof p, j->price, false);
  sb_fmt_coins(u, sizeof u, j->unit, false);
  sb_fmt_coins(v, sizeof v, j->fmv.value, false);
  sb_fmt_coins(pr, sizeof pr, j->profit, false);
  sb_fmt_coins(fee, sizeof fee, j->fees, false);
  sb_fmt_coins(fl, sizeof fl, j->fmv.floor, false);
  const char *name = a->item_name && *a->item_name ? a->item_name : a->name;
  souk_buf_printf(&m->title, "Snipe: %s", name && *name ? name : a->key);
  souk_buf_printf(&m->desc, "Copy this in game to open the auction:\n`/viewauction %s`", hex);
  int nf = 0;
  if (j->count > 1)
    souk_buf_printf(&m->fv[nf], "%s coins for %u (%s each)", p, j->count, u);
  else
    souk_buf_printf(&m->fv[nf], "%s coins", p);
  m->fields[nf] = (souk_embed_field_t){"Price", m->fv[nf].data, true};
  nf++;
  souk_buf_printf(&m->fv[nf], "%s coins each: %s", v, j->fmv.evidence);
  m->fields[nf] = (souk_embed_field_t){"Fair value", m->fv[nf].data, false};
  nf++;
  souk_buf_printf(&m->fv[nf], "%s coins (%d.%d%%) after %s in fees", pr, j->margin_bp / 100,
                  (j->margin_bp % 100) / 10, fee);
  m->fields[nf] = (souk_embed_field_t){"Profit", m->fv[nf].data, true};
  nf++;
  if (j->fmv.floor)
    souk_buf_printf(&m->fv[nf], "next BIN %s; %u within 10%% of it; %u listed%s", fl, j->fmv.depth,
                    j->fmv.live, j->fmv.thin ? " (thin market)" : "");
  else
    souk_buf_printf(&m->fv[nf], "no other BIN listed%s", j->fmv.thin ? " (thin market)" : "");
  m->fields[nf] = (souk_embed_field_t){"Floor", m->fv[nf].data, false};
  nf++;
  souk_buf_printf(&m->fv[nf], "`%s`", seller);
  m->fields[nf] = (souk_embed_field_t){"Seller", m->fv[nf].data, true};
  nf++;
  souk_buf_printf(&m->fv[nf], "`%s`%s%s", a->key, *a->attrs ? " " : "", a->attrs);
  m->fields[nf] = (souk_embed_field_t){"Item", m->fv[nf].data, true};
  nf++;
  souk_buf_printf(&m->foot, "%u sales in the window (%u clean); prices per unit",
                  j->fmv.sales_total, j->fmv.sales_clean);
  m->embed = (souk_embed_t){.title = m->title.data,
                            .description = m->desc.data,
                            .color = 0x2ecc71,
                            .footer = m->foot.data,
                            .fields = m->fields,
                            .nfields = (size_t)nf};
  m->msg = (souk_msg_t){.embeds = &m->embed, .nembeds = 1};
}

void sb_alert_msg_free(sb_alert_msg_t *m) {
  souk_buf_free(&m->title);
  souk_buf_free(&m->desc);
  souk_buf_free(&m->foot);
  for (int i = 0; i < 6; i++)
    souk_buf_free(&m->fv[i]);
}

/* ---- store writes ------------------------------------------------------------------ */

typedef struct wjob {
  int kind; /* 0 alert row, 1 sub upsert, 2 sub delete, 3 pause user, 4 guild */
  sb_db_alert_t alert;
  sb_sub_t sub;
  char query[101];
  bool all;
  int64_t at;
} wjob_t;

static int wjob_tx(souk_db_t *db, void *ud) {
  wjob_t *w = ud;
  switch (w->kind) {
  case 0:
    return sb_db_alert_put(db, &w->alert);
  case 1:
    return sb_db_watch_put(db, &w->sub, w->at);
  case 2:
    return sb_db_watch_del(db, w->sub.user_id, w->all ? NULL : w->query);
  case 3:
    return sb_db_watch_pause(db, w->sub.user_id);
  default:
    return sb_db_guild_put(db, w->sub.guild_id, w->at);
  }
}

static void wjob_done(void *ud, int status) {
  wjob_t *w = ud;
  g.writes--;
  if (status)
    SOUK_WARN("skyblock", "saving sniper state (%d) failed: %s", w->kind, souk_strerror(status));
  souk_free(w);
}

static void write_async(wjob_t *w) {
  souk_store_t *st = sb_g.store;
  if (!st) {
    souk_free(w);
    return;
  }
  w->at = w->at ? w->at : (int64_t)souk_unix_ms();
  if (souk_store_tx_async(st, wjob_tx, wjob_done, w) != 0) {
    SOUK_WARN("skyblock", "cannot save sniper state: the store refused the write");
    souk_free(w);
    return;
  }
  g.writes++;
}

/* ---- loading at start ------------------------------------------------------------------ */

typedef struct load {
  sb_dedupe_t *d;
  int64_t since;
  size_t max;
  size_t rows, subs, guilds;
} load_t;

static void load_alert(void *ud, const sb_db_alert_t *a) {
  load_t *L = ud;
  sb_uuid_t u, sel;
  if (sb_uuid_parse(a->uuid, strlen(a->uuid), &u) ||
      sb_uuid_parse(a->seller, strlen(a->seller), &sel))
    return;
  sb_dedupe_record(L->d, &u, sb_market_hash(a->key, a->attrs), &sel, a->unit, a->at);
  L->rows++;
}

static void load_sub(void *ud, const sb_sub_t *x) {
  load_t *L = ud;
  if (g.nsubs >= SUBS_MAX) return;
  if (g.nsubs == g.capsubs) {
    g.capsubs = g.capsubs ? g.capsubs * 2 : 16;
    g.subs = souk_reallocarray(g.subs, g.capsubs, sizeof *g.subs);
  }
  g.subs[g.nsubs++] = *x;
  L->subs++;
}

static void load_guild(void *ud, uint64_t guild_id) {
  load_t *L = ud;
  if (g.nguilds >= GUILDS_MAX) return;
  if (g.nguilds == g.capguilds) {
    g.capguilds = g.capguilds ? g.capguilds * 2 : 16;
    g.guilds = souk_reallocarray(g.guilds, g.capguilds, sizeof *g.guilds);
  }
  g.guilds[g.nguilds++] = guild_id;
  L->guilds++;
}

static int load_tx(souk_db_t *db, void *ud) {
  load_t *L = ud;
  /* A transaction may run again: start from nothing each time. */
  L->rows = L->subs = L->guilds = 0;
  g.nsubs = g.nguilds = 0;
  int rc = sb_db_alerts_load(db, L->since, L->max, load_alert, L);
  if (!rc) rc = sb_db_watch_load(db, load_sub, L);
  if (!rc) rc = sb_db_guilds_load(db, load_guild, L);
  return rc;
}

static void remember_guild(uint64_t guild_id) {
  if (!guild_id) return;
  for (size_t i = 0; i < g.nguilds; i++)
    if (g.guilds[i] == guild_id) return;
  if (g.nguilds >= GUILDS_MAX) return;
  if (g.nguilds == g.capguilds) {
    g.capguilds = g.capguilds ? g.capguilds * 2 : 16;
    g.guilds = souk_reallocarray(g.guilds, g.capguilds, sizeof *g.guilds);
  }
  g.guilds[g.nguilds++] = guild_id;
  wjob_t *w = souk_calloc(1, sizeof *w);
  w->kind = 4;
  w->sub.guild_id = guild_id;
  write_async(w);
}

static void on_setting(uint64_t scope_id, const souk_setting_t *s, void *ud) {
  (void)s;
  (void)ud;
  remember_guild(scope_id);
}

int sb_alerts_start(void) {
  memset(&g, 0, sizeof g);
  g.on = true;
  static const char *const keys[] = {"skyblock.alert_channel", "skyblock.min_profit",
                                     "skyblock.min_margin", "skyblock.alerts"};
  for (size_t i = 0; i < sizeof keys / sizeof *keys; i++)
    souk_setting_watch(keys[i], on_setting, NULL);
  sb_db_register_data();
  souk_store_t *st = sb_g.store;
  if (!st) return 0;
  load_t L = {.d = sb_engine_dedupe(sb_g.engine),
              .since = (int64_t)souk_unix_ms() - sb_conf.dedupe_ttl_ms,
              .max = (size_t)sb_conf.dedupe_max};
  /* Once, at start, before anything is judged: a blocking read. */
  int rc = souk_store_read(st, load_tx, &L);
  if (rc) {
    SOUK_WARN("skyblock", "cannot load the sniper's state: %s (alerts may repeat once)",
              souk_strerror(rc));
    return rc;
  }
  SOUK_INFO("skyblock", "sniper state: %zu alerted auctions, %zu subscriptions, %zu guilds", L.rows,
            L.subs, L.guilds);
  return 0;
}

/* ---- taking over from another leader --------------------------------------------- */

/* One alert row read back, parsed on the thread pool. */
typedef struct seen {
  sb_uuid_t uuid, seller;
  uint64_t market;
  int64_t unit, at;
} seen_t;

typedef struct reload {
  int64_t since;
  size_t max, n, cap;
  seen_t *v;
} reload_t;

static void reload_row(void *ud, const sb_db_alert_t *a) {
  reload_t *R = ud;
  seen_t x;
  if (sb_uuid_parse(a->uuid, strlen(a->uuid), &x.uuid) ||
      sb_uuid_parse(a->seller, strlen(a->seller), &x.seller))
    return;
  x.market = sb_market_hash(a->key, a->attrs);
  x.unit = a->unit;
  x.at = a->at;
  if (R->n == R->cap) {
    R->cap = R->cap ? R->cap * 2 : 256;
    R->v = souk_reallocarray(R->v, R->cap, sizeof *R->v);
  }
  R->v[R->n++] = x;
}

static int reload_tx(souk_db_t *db, void *ud) {
  reload_t *R = ud;
  R->n = 0; /* a transaction may run again */
  return sb_db_alerts_load(db, R->since, R->max, reload_row, R);
}

static void reload_done(void *ud, int status) {
  reload_t *R = ud;
  g.writes--;
  if (status) {
    SOUK_WARN("skyblock", "cannot re-read the alerts already posted: %s (some may repeat once)",
              souk_strerror(status));
  } else if (g.on && sb_g.engine) {
    /* Judging runs on the loop thread, like this: the dedupe is not
     * shared with the pool. */
    sb_dedupe_t *d = sb_engine_dedupe(sb_g.engine);
    for (size_t i = 0; i < R->n; i++)
      sb_dedupe_record(d, &R->v[i].uuid, R->v[i].market, &R->v[i].seller, R->v[i].unit,
                       R->v[i].at);
    SOUK_INFO("skyblock", "leading now: %zu alerted auctions re-read from the store", R->n);
  }
  souk_free(R->v);
  souk_free(R);
}

void sb_alerts_take_over(void) {
  souk_store_t *st = sb_g.store;
  if (!st || !g.on) return;
  reload_t *R = souk_calloc(1, sizeof *R);
  R->since = (int64_t)souk_unix_ms() - sb_conf.dedupe_ttl_ms;
  R->max = (size_t)sb_conf.dedupe_max;
  g.writes++; /* waited for by sb_alerts_stop like a write */
  if (souk_store_read_async(st, reload_tx, reload_done, R)) reload_done(R, SOUK_EIO);
}

void sb_alerts_stop(void) {
  g.on = false;
  /* Writes still out complete on their own; their jobs free themselves. */
  for (int i = 0; i < 10000 && g.writes; i++)
    uv_run(souk_loop(), UV_RUN_ONCE);
  souk_free(g.subs);
  souk_free(g.guilds);
  memset(&g, 0, sizeof g);
}

typedef struct prune_job {
  int64_t before;
  int64_t keep;
  void (*done)(void *ud, int status);
  void *ud;
} prune_job_t;

static int prune_tx(souk_db_t *db, void *ud) {
  prune_job_t *p = ud;
  return sb_db_alerts_prune(db, p->before, p->keep, NULL);
}

static void prune_done(void *ud, int status) {
  prune_job_t *p = ud;
  p->done(p->ud, status);
  souk_free(p);
}

void sb_alerts_prune(void (*done)(void *ud, int status), void *ud) {
  souk_store_t *st = sb_g.store;
  if (!st) {
    done(ud, 0);
    return;
  }
  prune_job_t *p = souk_calloc(1, sizeof *p);
  p->before = (int64_t)souk_unix_ms() - sb_conf.dedupe_ttl_ms;
  p->keep = sb_conf.dedupe_max;
  p->done = done;
  p->ud = ud;
  int rc = souk_store_tx_async(st, prune_tx, prune_done, p);
  if (rc) {
    souk_free(p);
    done(ud, rc);
  }
}

/* ---- subscriptions ----------------------------------------------------------------------- */

int sb_subs_set(const sb_sub_t *s) {
  sb_sub_t *x = NULL;
  for (size_t i = 0; i < g.nsubs; i++)
    if (g.subs[i].user_id == s->user_id && !strcmp(g.subs[i].query, s->query)) x = &g.subs[i];
  if (!x) {
    size_t mine = 0;
    for (size_t i = 0; i < g.nsubs; i++)
      mine += g.subs[i].user_id == s->user_id;
    if (mine >= 10 || g.nsubs >= SUBS_MAX) return SOUK_EFULL;
    if (g.nsubs == g.capsubs) {
      g.capsubs = g.capsubs ? g.capsubs * 2 : 16;
      g.subs = souk_reallocarray(g.subs, g.capsubs, sizeof *g.subs);
    }
    x = &g.subs[g.nsubs++];
  }
  *x = *s;
  /* A new /sniper watch resumes everything the user had paused. */
  for (size_t i = 0; i < g.nsubs; i++)
    if (g.subs[i].user_id == s->user_id && g.subs[i].paused) {
      g.subs[i].paused = false;
      wjob_t *w = souk_calloc(1, sizeof *w);
      w->kind = 1;
      w->sub = g.subs[i];
      write_async(w);
    }
  wjob_t *w = souk_calloc(1, sizeof *w);
  w->kind = 1;
  w->sub = *x;
  write_async(w);
  return 0;
}

int sb_subs_remove(uint64_t user_id, const char *query) {
  int n = 0;
  for (size_t i = 0; i < g.nsubs;) {
    if (g.subs[i].user_id == user_id && (!query || !strcmp(g.subs[i].query, query))) {
      g.subs[i] = g.subs[--g.nsubs];
      n++;
    } else {
      i++;
    }
  }
  if (n) {
    wjob_t *w = souk_calloc(1, sizeof *w);
    w->kind = 2;
    w->sub.user_id = user_id;
    w->all = !query;
    if (query) snprintf(w->query, sizeof w->query, "%s", query);
    write_async(w);
  }
  return n;
}

size_t sb_subs_of(uint64_t user_id, const sb_sub_t **out, size_t max) {
  size_t n = 0;
  for (size_t i = 0; i < g.nsubs && n < max; i++)
    if (g.subs[i].user_id == user_id) out[n++] = &g.subs[i];
  return n;
}

void sb_subs_count(size_t *all, size_t *paused) {
  size_t p = 0;
  for (size_t i = 0; i < g.nsubs; i++)
    p += g.subs[i].paused;
  if (all) *all = g.nsubs;
  if (paused) *paused = p;
}

/* Does a subscription want this alert?  Its words must all appear in the
 * item's names, key or attributes (the same rule as /ah price's search). */
static bool sub_matches(const sb_sub_t *s, const sb_alert_t *a) {
  if (s->paused) return false;
  if (s->min_profit && a->j.profit < s->min_profit) return false;
  if (s->max_price && a->j.price > s->max_price) return false;
  const char *const texts[] = {a->item_name, a->name, a->key, a->attrs};
  return sb_words_match(s->query, texts, 4);
}

/* ---- delivery ------------------------------------------------------------------------------ */

static void send_cb(const souk_discord_result_t *res, void *ud) {
  (void)ud;
  if (res->err == 0) return;
  sb_g.alerts_failed++;
  SOUK_WARN("skyblock", "alert to channel %" PRIu64 " failed: %s (HTTP %d, code %d)",
            res->channel_id, souk_strerror(res->err), res->status, res->code);
}

typedef struct dm_job {
  uint64_t user_id;
} dm_job_t;

/* Pause every subscription of a user whose DMs are closed, and say so in
 * the channel they subscribed in (once: the subscriptions are paused, so
 * no further alert reaches this path until they subscribe again). */
static void pause_user(uint64_t user_id) {
  uint64_t channel = 0;
  bool any = false;
  for (size_t i = 0; i < g.nsubs; i++) {
    sb_sub_t *s = &g.subs[i];
    if (s->user_id != user_id || s->paused) continue;
    s->paused = true;
    any = true;
    if (!channel) channel = s->channel_id;
  }
  if (!any) return;
  sb_g.subs_paused++;
  wjob_t *w = souk_calloc(1, sizeof *w);
  w->kind = 3;
  w->sub.user_id = user_id;
  write_async(w);
  if (!channel) return;
  char text[400];
  snprintf(text, sizeof text,
           "<@%" PRIu64 "> I could not send you a snipe alert: Discord says your DMs are closed "
           "to me. Your /sniper watch alerts are paused. Allow direct messages from this server's "
           "members, then run /sniper watch again to resume them.",
           user_id);
  souk_msg_t msg = {.content = text};
  souk_discord_send(channel, &msg, send_cb, NULL);
}

static void dm_cb(const souk_discord_result_t *res, void *ud) {
  dm_job_t *d = ud;
  if (res->err == 0) {
    sb_g.dms_sent++;
  } else if (res->err == SOUK_EFORBIDDEN && res->code == SOUK_DISCORD_CANNOT_DM) {
    sb_g.dms_refused++;
    SOUK_INFO("skyblock", "user %" PRIu64 " does not take DMs: their alerts are paused",
              d->user_id);
    if (g.on) pause_user(d->user_id);
  } else {
    sb_g.alerts_failed++;
    SOUK_WARN("skyblock", "alert DM to %" PRIu64 " failed: %s (HTTP %d, code %d)", d->user_id,
              souk_strerror(res->err), res->status, res->code);
  }
  souk_free(d);
}

static bool guild_wants(uint64_t guild, const sb_alert_t *a) {
  if (!souk_setting_int(guild, "skyblock.alerts")) return false;
  if (a->j.profit < souk_setting_int(guild, "skyblock.min_profit")) return false;
  return a->j.margin_bp >= souk_setting_int(guild, "skyblock.min_margin") * 100;
}

void sb_alerts_on_alert(void *ud, const sb_alert_t *a) {
  (void)ud;
  /* Alerts are posted once for the bot: by the cluster lease's holder (a
   * process that lost the lease meanwhile posts nothing more). */
  if (!g.on || !souk_cluster_leader()) return;
  /* Kept first: the dedupe must hold even if the process dies now. */
  wjob_t *w = souk_calloc(1, sizeof *w);
  w->kind = 0;
  sb_uuid_hex(&a->uuid, w->alert.uuid);
  sb_uuid_hex(&a->seller, w->alert.seller);
  snprintf(w->alert.key, sizeof w->alert.key, "%s", a->key);
  snprintf(w->alert.attrs, sizeof w->alert.attrs, "%s", a->attrs);
  w->alert.unit = a->j.unit;
  w->alert.at = a->last_updated;
  write_async(w);

  sb_alert_msg_t m;
  sb_alert_msg_build(a, &m);
  size_t posted = 0;
  uint64_t sent_to[64];
  size_t nsent = 0;
  for (size_t i = 0; i < sb_conf.channels.n && nsent < 64; i++) {
    if (souk_discord_send(sb_conf.channels.ids[i], &m.msg, send_cb, NULL) == 0) posted++;
    sent_to[nsent++] = sb_conf.channels.ids[i];
  }
  for (size_t i = 0; i < g.nguilds; i++) {
    uint64_t ch = souk_setting_id(g.guilds[i], "skyblock.alert_channel");
    if (!ch || !guild_wants(g.guilds[i], a)) continue;
    bool dup = false;
    for (size_t k = 0; k < nsent; k++)
      dup |= sent_to[k] == ch;
    if (dup) continue;
    if (souk_discord_send(ch, &m.msg, send_cb, NULL) == 0) posted++;
    if (nsent < 64) sent_to[nsent++] = ch;
  }
  /* DMs: one per user, whatever number of their subscriptions match. */
  uint64_t dmed[64];
  size_t ndm = 0;
  for (size_t i = 0; i < g.nsubs && ndm < (size_t)sb_conf.dm_per_alert && ndm < 64; i++) {
    const sb_sub_t *s = &g.subs[i];
    if (!sub_matches(s, a)) continue;
    bool dup = false;
    for (size_t k = 0; k < ndm; k++)
      dup |= dmed[k] == s->user_id;
    if (dup) continue;
    dmed[ndm++] = s->user_id;
    dm_job_t *d = souk_calloc(1, sizeof *d);
    d->user_id = s->user_id;
    if (souk_discord_dm(s->user_id, &m.msg, dm_cb, d) != 0) souk_free(d);
  }
  sb_alert_msg_free(&m);
  sb_g.alerts_sent++;
  char hex[33];
  sb_uuid_hex(&a->uuid, hex);
  SOUK_INFO("skyblock",
            "snipe alert %s: %s [%s] at %" PRId64 " (value %" PRId64 " by %s), profit %" PRId64
            "; %zu channels, %zu DMs",
            hex, a->key, a->attrs, a->j.price, a->j.fmv.value, sb_fmv_method_name(a->j.fmv.method),
            a->j.profit, posted, ndm);
}

void sb_alerts_guild_set(uint64_t guild_id) { remember_guild(guild_id); }
