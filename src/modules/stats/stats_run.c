/* The server-stats module's work, one tick at a time: count polls, ban
 * paging, counter renames, the heartbeat, the daily summary and the
 * rotating presence.  Every schedule is read from the schedule clock
 * (souk_sched_*), so an integration test can move an hour in a second. */
#include "souk/alloc.h"
#include "souk/buf.h"
#include "souk/discord.h"
#include "souk/err.h"
#include "souk/health.h"
#include "souk/json.h"
#include "souk/log.h"
#include "souk/loop.h"
#include "souk/memguard.h"
#include "souk/module.h"
#include "souk/recovery.h"
#include "souk/settings.h"
#include "souk/usage.h"
#include "stats_int.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#define COMP      "stats"
#define RETRY_MS  (10u * 60u * 1000u) /* after a refusal (403/404) */
#define BANS_PAGE 1000

uint64_t stats_uptime_ms(void) { return souk_sched_now_ms() - stats_g.started_at; }

int64_t stats_ctr_value(const stats_guild_t *g, stats_ctr_kind_t k) {
  return k == STATS_MEMBERS ? g->members : k == STATS_ONLINE ? g->online : g->bans;
}

void stats_values_of(const stats_guild_t *g, stats_values_t *v) {
  v->members = g ? g->members : stats_members_total();
  v->online = g ? g->online : -1;
  v->bans = g ? g->bans : -1;
  uint64_t guilds = souk_cmd_guilds();
  v->guilds = (int64_t)(guilds ? guilds : stats_g.nguilds);
  v->uptime_ms = stats_uptime_ms();
}

const souk_tz_t *stats_guild_tz(stats_guild_t *g) {
  const char *name = souk_setting_str(g->id, "stats.timezone");
  if (!name[0]) name = "UTC";
  if (g->tz && strcmp(souk_tz_name(g->tz), name) == 0) return g->tz;
  souk_tz_t *tz = NULL;
  int rc = souk_tz_load(name, &tz);
  if (rc) {
    SOUK_WARN(COMP, "guild %" PRIu64 ": time zone %s cannot be read (%s); using UTC", g->id, name,
              souk_strerror(rc));
    if (souk_tz_load("UTC", &tz)) return g->tz;
  }
  souk_tz_free(g->tz);
  g->tz = tz;
  return tz;
}

/* ---- count polls ------------------------------------------------------------- */

/* What the counters of this guild need polled: online always (only
 * with_counts has it), members unless events keep it. */
static bool needs_poll(const stats_guild_t *g) {
  if (souk_setting_id(g->id, "stats.online_channel")) return true;
  /* Set up after its GUILD_CREATE: events keep the count, once known. */
  if (g->members < 0 && (souk_setting_id(g->id, "stats.members_channel") ||
                         souk_setting_id(g->id, "stats.summary_channel")))
    return true;
  if (!stats_members_events() && souk_setting_id(g->id, "stats.members_channel")) return true;
  /* The summary's net change needs the count when events do not keep it. */
  return !stats_members_events() && souk_setting_id(g->id, "stats.summary_channel");
}

static stats_poll_conf_t poll_conf(void) {
  return (stats_poll_conf_t){(uint64_t)stats_conf.poll_min_ms, (uint64_t)stats_conf.poll_max_ms};
}

static void poll_cb(const souk_discord_result_t *res, const souk_json_t *j, int root, void *ud) {
  uint64_t id = (uint64_t)(uintptr_t)ud;
  if (!stats_g.started) return; /* completed at shutdown */
  stats_g.polls_inflight--;
  stats_guild_t *g = stats_guild_find(id);
  if (!g) return;
  g->poll_inflight = false;
  stats_poll_conf_t pc = poll_conf();
  uint64_t now = souk_sched_now_ms();
  if (res->err || !j) {
    stats_g.poll_failures++;
    SOUK_DEBUG(COMP, "guild %" PRIu64 ": count poll failed: %s", id, souk_strerror(res->err));
    stats_poll_done(&g->poll, &pc, false, now);
    return;
  }
  int64_t members = -1, online = -1;
  souk_json_i64(j, souk_json_get(j, root, "approximate_member_count"), &members);
  souk_json_i64(j, souk_json_get(j, root, "approximate_presence_count"), &online);
  bool changed = online != g->online;
  if ((!stats_members_events() || g->members < 0) && members >= 0) {
    changed |= members != g->members;
    g->members = members;
    if (g->members_start < 0) g->members_start = members;
    stats_members_set(g->id, members);
  }
  g->online = online;
  stats_g.polls_saved += stats_poll_done(&g->poll, &pc, changed, now);
}

static void poll_guild(stats_guild_t *g, uint64_t now) {
  stats_poll_conf_t pc = poll_conf();
  if (!g->poll_started) {
    stats_poll_start(&g->poll, &pc, g->id, now);
    g->poll_started = true;
    /* Set up after its GUILD_CREATE, the guild has no count to show: ask
     * at once rather than at its place in the spread. */
    if (g->members < 0) g->poll.next_at = now;
  }
  if (g->poll_inflight || now < g->poll.next_at) return;
  if (stats_g.polls_inflight >= (size_t)stats_conf.poll_concurrency) return;
  char path[96];
  snprintf(path, sizeof path, "/guilds/%" PRIu64 "?with_counts=true", g->id);
  int rc = souk_discord_get(path, poll_cb, (void *)(uintptr_t)g->id);
  stats_g.polls++;
  if (rc) {
    stats_g.poll_failures++;
    stats_poll_done(&g->poll, &pc, false, now);
    return;
  }
  g->poll_inflight = true;
  stats_g.polls_inflight++;
}

/* ---- bans -------------------------------------------------------------------- */

static void bans_page(stats_guild_t *g);

static void bans_cb(const souk_discord_result_t *res, const souk_json_t *j, int root, void *ud) {
  stats_guild_t *g = stats_guild_find((uint64_t)(uintptr_t)ud);
  if (!g || g->bans_state != STATS_BANS_PAGING) return;
  uint64_t now = souk_sched_unix_ms();
  if (res->err == SOUK_EFORBIDDEN) {
    /* The cache said yes, Discord says no: do not ask again until the
     * permissions change (or much later). */
    g->bans_state = STATS_BANS_NO_PERM;
    g->bans_retry_at = now + (uint64_t)stats_conf.bans_repage_ms;
    SOUK_WARN(COMP, "guild %" PRIu64 ": Discord refused the ban list (code %d): no Ban Members",
              g->id, res->code);
    return;
  }
  if (res->err || !j || souk_json_type(j, root) != SOUK_JSON_ARRAY) {
    g->bans_state = g->bans >= 0 ? STATS_BANS_KNOWN : STATS_BANS_UNKNOWN;
    g->bans_retry_at = now + RETRY_MS;
    SOUK_WARN(COMP, "guild %" PRIu64 ": cannot page the bans: %s", g->id,
              souk_strerror(res->err ? res->err : SOUK_EPARSE));
    return;
  }
  size_t n = souk_json_count(j, root);
  g->bans_paged += (int64_t)n;
  if (n > 0) {
    uint64_t last = 0;
    souk_json_u64(j, souk_json_path(j, souk_json_at(j, root, n - 1), "user", "id", NULL), &last);
    g->bans_after = last;
  }
  if (n == BANS_PAGE && g->bans_after) {
    bans_page(g);
    return;
  }
  g->bans = g->bans_paged;
  g->bans_state = STATS_BANS_KNOWN;
  g->bans_at = now;
}

static void bans_page(stats_guild_t *g) {
  char path[128];
  snprintf(path, sizeof path, "/guilds/%" PRIu64 "/bans?limit=%d&after=%" PRIu64, g->id, BANS_PAGE,
           g->bans_after);
  if (souk_discord_get(path, bans_cb, (void *)(uintptr_t)g->id) != 0) {
    g->bans_state = g->bans >= 0 ? STATS_BANS_KNOWN : STATS_BANS_UNKNOWN;
    g->bans_retry_at = souk_sched_unix_ms() + RETRY_MS;
  }
}

static void bans_work(stats_guild_t *g, uint64_t now) {
  if (!souk_setting_id(g->id, "stats.bans_channel")) return;
  bool can = souk_discord_bot_can(g->id, 0, SOUK_PERM_BAN_MEMBERS);
  if (g->bans_state == STATS_BANS_NO_PERM) {
    /* Never blindly: only when the permission cache says it changed, or
     * after a long pause when Discord refused what the cache allowed. */
    if (!can || now < g->bans_retry_at) return;
    g->bans_state = STATS_BANS_UNKNOWN;
  }
  if (!can) {
    g->bans_state = STATS_BANS_NO_PERM;
    g->bans_retry_at = 0;
    if (!g->bans_told)
      SOUK_WARN(COMP,
                "guild %" PRIu64 ": the ban counter needs the Ban Members permission; "
                "bans are not counted until it is given",
                g->id);
    g->bans_told = true;
    return;
  }
  g->bans_told = false;
  bool due = g->bans_state == STATS_BANS_UNKNOWN && now >= g->bans_retry_at;
  if (g->bans_state == STATS_BANS_KNOWN && !stats_ban_events() &&
      now >= g->bans_at + (uint64_t)stats_conf.bans_repage_ms)
    due = true;
  if (!due) return;
  g->bans_state = STATS_BANS_PAGING;
  g->bans_after = 0;
  g->bans_paged = 0;
  bans_page(g);
}

/* ---- renames -------------------------------------------------------------- */

typedef struct rename_op {
  uint64_t guild, channel;
  int kind;
  char name[STATS_NAME_BUF];
} rename_op_t;

static void rename_cb(const souk_discord_result_t *res, void *ud) {
  rename_op_t *op = ud;
  stats_guild_t *g = stats_guild_find(op->guild);
  stats_ctr_t *c = g ? g->ctr[op->kind] : NULL;
  if (c && c->channel == op->channel) {
    c->inflight = false;
    uint64_t now = souk_sched_unix_ms();
    if (res->err == 0) {
      stats_ctr_text(&c->shown, op->name);
      stats_ctr_text(&c->error, NULL);
      c->renames++;
      stats_g.renames++;
      stats_save_ctr(c);
    } else if (res->err == SOUK_ERATELIMIT) {
      /* Discord's own 429 (another process renamed it): wait it out. */
      stats_rename_blocked(&c->win, now, res->retry_after_ms ? res->retry_after_ms : RETRY_MS);
      stats_g.renames_refused++;
      stats_save_ctr(c);
    } else {
      stats_g.renames_refused++;
      c->retry_at = now + RETRY_MS;
      char why[160];
      snprintf(why, sizeof why, "%s (code %d)%s", souk_strerror(res->err), res->code,
               res->err == SOUK_EFORBIDDEN ? ": the bot needs Manage Channels there" : "");
      stats_ctr_text(&c->error, why);
      SOUK_WARN(COMP, "guild %" PRIu64 ": cannot rename the %s channel %" PRIu64 ": %s", op->guild,
                stats_ctr_name((stats_ctr_kind_t)op->kind), op->channel, c->error);
    }
  }
  souk_free(op);
}

static void ctr_work(stats_guild_t *g, stats_ctr_kind_t k, uint64_t now) {
  uint64_t ch = souk_setting_id(g->id, stats_ctr_channel_key(k));
  stats_ctr_t *c = g->ctr[k];
  if (!ch) {
    /* No counter: no state (a rename in flight finds none, by design). */
    stats_ctr_free(c);
    g->ctr[k] = NULL;
    return;
  }
  if (!c) c = g->ctr[k] = souk_calloc(1, sizeof *c);
  if (ch != c->channel) {
    /* Another channel: its own window, loaded from the store. */
    stats_ctr_text(&c->shown, NULL);
    stats_ctr_text(&c->error, NULL);
    memset(c, 0, sizeof *c);
    c->channel = ch;
  }
  if (!c->loaded) {
    if (!c->loading) stats_load_ctr(g, k);
    return;
  }
  if (c->inflight || now < c->retry_at || stats_ctr_value(g, k) < 0) return;
  stats_values_t v;
  stats_values_of(g, &v);
  char name[STATS_NAME_BUF];
  if (stats_template_render(souk_setting_str(g->id, stats_ctr_template_key(k)), &v, name,
                            sizeof name) != 0)
    return;
  /* Only a changed value is worth one of the two renames. */
  if (c->shown && strcmp(name, c->shown) == 0) return;
  uint64_t wait = stats_rename_wait(&c->win, now, (uint64_t)stats_conf.rename_margin_ms);
  uint64_t core_wait = souk_discord_rename_wait_ms(ch);
  if (wait || core_wait) {
    c->deferred++;
    if (c->deferred == 1 || c->deferred % 60 == 0) stats_g.renames_deferred++;
    return;
  }
  rename_op_t *op = souk_calloc(1, sizeof *op);
  op->guild = g->id;
  op->channel = ch;
  op->kind = (int)k;
  snprintf(op->name, sizeof op->name, "%s", name);
  /* Counted before it is sent and saved at once: a restart, or an answer
   * that never comes, must not make room for a third. */
  stats_rename_sent(&c->win, now);
  stats_save_ctr(c);
  c->deferred = 0;
  int rc = souk_discord_rename_channel(ch, name, rename_cb, op);
  if (rc) {
    souk_free(op);
    stats_g.renames_refused++;
    c->retry_at = now + (rc == SOUK_ERATELIMIT ? souk_discord_rename_wait_ms(ch) : RETRY_MS);
    stats_ctr_text(&c->error, souk_strerror(rc));
    return;
  }
  c->inflight = true;
}

/* ---- the heartbeat ------------------------------------------------------------ */

static void heartbeat_text(char *out, size_t cap) {
  stats_heartbeat_t h = {0};
  h.uptime_ms = stats_uptime_ms();
  int64_t last = -1, avg = -1;
  h.latency_ms = souk_gateway_latency(0, &last, &avg) == 0 ? avg : -1;
  souk_memguard_stats_t ms;
  souk_memguard_stats(&ms);
  h.rss_bytes = ms.rss;
  h.health = souk_health_name(souk_health_check_all(NULL));
  h.now_unix_ms = souk_sched_unix_ms();
  h.guilds = souk_cmd_guilds();
  h.commands = souk_cmd_served();
  /* The last three errors, newest first. */
  char errs[600] = "";
  size_t n = souk_error_history_len(), off = 0;
  for (size_t i = 0; i < 3 && i < n; i++) {
    souk_error_entry_t e;
    if (souk_error_history_get(n - 1 - i, &e)) break;
    int w = snprintf(errs + off, sizeof errs - off, "%s• `%s` (%s): %.120s", off ? "\n" : "",
                     e.type, souk_severity_name(e.severity), e.context ? e.context : "");
    if (w < 0 || (size_t)w >= sizeof errs - off) break;
    off += (size_t)w;
  }
  h.errors = errs;
  stats_heartbeat_text(&h, out, cap);
}

/* One heartbeat request: an edit of message, or (message 0) a new post. */
typedef struct hb_op {
  uint64_t guild, channel, message;
} hb_op_t;

static void hb_cb(const souk_discord_result_t *res, void *ud);

static void hb_send(stats_guild_t *g, uint64_t ch, uint64_t now) {
  char text[2000];
  heartbeat_text(text, sizeof text);
  souk_msg_t m = {.content = text};
  hb_op_t *op = souk_calloc(1, sizeof *op);
  op->guild = g->id;
  op->channel = ch;
  op->message = g->hb_message && g->hb_channel == ch ? g->hb_message : 0;
  int rc = op->message ? souk_discord_edit(ch, op->message, &m, hb_cb, op)
                       : souk_discord_send(ch, &m, hb_cb, op);
  if (rc) {
    souk_free(op);
    g->hb_next = now + (uint64_t)stats_conf.heartbeat_period_ms;
    SOUK_WARN(COMP, "guild %" PRIu64 ": cannot send the heartbeat: %s", g->id, souk_strerror(rc));
    return;
  }
  g->hb_inflight = true;
}

static void hb_cb(const souk_discord_result_t *res, void *ud) {
  hb_op_t *op = ud;
  stats_guild_t *g = stats_guild_find(op->guild);
  if (!g) {
    souk_free(op);
    return;
  }
  g->hb_inflight = false;
  uint64_t now = souk_sched_now_ms();
  uint64_t ch = souk_setting_id(g->id, "stats.heartbeat_channel");
  if (res->err == SOUK_ENOTFOUND && op->message && op->channel == ch) {
    /* Deleted: post a new one now, and remember it. */
    SOUK_INFO(COMP, "guild %" PRIu64 ": the heartbeat message was deleted; posting a new one",
              g->id);
    souk_free(op);
    g->hb_message = 0;
    stats_g.heartbeat_reposts++;
    hb_send(g, ch, now);
    return;
  }
  g->hb_next = now + (uint64_t)stats_conf.heartbeat_period_ms;
  if (res->err) {
    SOUK_WARN(COMP, "guild %" PRIu64 ": heartbeat in channel %" PRIu64 " failed: %s (code %d)",
              g->id, op->channel, souk_strerror(res->err), res->code);
  } else if (!op->message) {
    g->hb_channel = op->channel;
    g->hb_message = res->message_id;
    g->hb_posts++;
    stats_save_heartbeat(g);
    stats_g.heartbeats++;
  } else {
    g->hb_edits++;
    stats_g.heartbeats++;
  }
  souk_free(op);
}

static void hb_work(stats_guild_t *g, uint64_t now) {
  uint64_t ch = souk_setting_id(g->id, "stats.heartbeat_channel");
  if (!ch) return;
  if (!g->hb_loaded) {
    if (!g->hb_loading) stats_load_heartbeat(g);
    return;
  }
  if (g->hb_inflight || now < g->hb_next) return;
  hb_send(g, ch, now);
}

/* ---- the daily summary ---------------------------------------------------------- */

typedef struct summary_job {
  uint64_t guild, channel, since, until;
  int64_t joined, left, messages, members, members_start;
  int64_t day; /* the local day it is for; INT64_MIN for one asked by hand */
} summary_job_t;

/* The first retry of a failed summary, doubled per failure up to the cap:
 * a channel that refuses for a while is not asked every tick. */
/* splitmix64's finaliser: a guild and a day to a short key. */
static uint64_t mix64(uint64_t x) {
  x = (x ^ (x >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
  x = (x ^ (x >> 27)) * UINT64_C(0x94D049BB133111EB);
  return x ^ (x >> 31);
}

#define SUMMARY_RETRY_MS     60000
#define SUMMARY_RETRY_MAX_MS 3600000

/* A day's summary went out (err 0) or did not.  The day is done only once
 * Discord took the post: a failure is retried later the same day (and the
 * next day's summary covers both when the day ends first).  The counts
 * made while it was on its way stay for the next one. */
static void summary_finish(summary_job_t *j, int err) {
  stats_guild_t *g = j->day == INT64_MIN ? NULL : stats_guild_find(j->guild);
  if (g && g->summary_inflight) {
    g->summary_inflight = false;
    if (err) {
      uint64_t wait = SUMMARY_RETRY_MS << (g->summary_fails < 6 ? g->summary_fails : 6);
      if (wait > SUMMARY_RETRY_MAX_MS) wait = SUMMARY_RETRY_MAX_MS;
      g->summary_fails++;
      g->summary_retry_at = souk_sched_unix_ms() + wait;
    } else if (j->day > g->last_day) {
      g->summary_fails = 0;
      g->summary_retry_at = 0;
      g->last_day = j->day;
      g->since = j->until;
      g->joined = g->joined > j->joined ? g->joined - j->joined : 0;
      g->left = g->left > j->left ? g->left - j->left : 0;
      g->messages = g->messages > j->messages ? g->messages - j->messages : 0;
      g->members_start = j->members;
      g->counts_dirty = false;
      stats_save_day(g);
    }
  }
  souk_free(j);
}

static void summary_sent(const souk_discord_result_t *res, void *ud) {
  summary_job_t *j = ud;
  if (res->err)
    SOUK_WARN(COMP, "guild %" PRIu64 ": the daily summary could not be posted: %s (code %d)",
              j->guild, souk_strerror(res->err), res->code);
  else
    stats_g.summaries++;
  summary_finish(j, res->err);
}

static void summary_usage(void *ud, int status, const souk_usage_guild_t *u) {
  summary_job_t *j = ud;
  char members[160], msgs[64], cmds[160], top[700] = "", date[64];
  char a[32], b[32], c[32];
  stats_fmt_count(j->members, a, sizeof a);
  if (j->members < 0) snprintf(a, sizeof a, "?");
  if (stats_members_events()) {
    stats_fmt_count(j->joined, b, sizeof b);
    stats_fmt_count(j->left, c, sizeof c);
    snprintf(members, sizeof members, "%s (%s joined, %s left)", a, b, c);
  } else if (j->members >= 0 && j->members_start >= 0) {
    int64_t net = j->members - j->members_start;
    stats_fmt_count(net < 0 ? -net : net, b, sizeof b);
    snprintf(members, sizeof members, "%s (net %s%s)", a, net < 0 ? "-" : "+", b);
  } else {
    snprintf(members, sizeof members, "%s", a);
  }
  stats_fmt_count(j->messages, msgs, sizeof msgs);
  if (status == 0 && u) {
    stats_fmt_count((int64_t)u->calls, a, sizeof a);
    stats_fmt_count((int64_t)u->users, b, sizeof b);
    snprintf(cmds, sizeof cmds, "%s commands by %s members", a, b);
    size_t off = 0;
    for (size_t i = 0; i < u->ntop && i < 5; i++) {
      int w = snprintf(top + off, sizeof top - off, "%s`/%s` × %" PRIu64, off ? "\n" : "",
                       u->top[i].command, u->top[i].calls);
      if (w < 0 || (size_t)w >= sizeof top - off) break;
      off += (size_t)w;
    }
    if (!off) snprintf(top, sizeof top, "none");
  } else {
    snprintf(cmds, sizeof cmds, "unavailable (%s)", souk_strerror(status));
    snprintf(top, sizeof top, "unavailable");
  }
  snprintf(date, sizeof date, "since <t:%" PRIu64 ":f>", j->since / 1000);
  souk_embed_field_t f[4] = {
      {.name = "Members", .value = members, .inline_field = true},
      {.name = "Messages seen", .value = msgs, .inline_field = true},
      {.name = "Commands", .value = cmds, .inline_field = false},
      {.name = "Top commands", .value = top, .inline_field = false},
  };
  souk_embed_t e = {.title = "Daily server stats",
                    .description = date,
                    .color = 0x3498db,
                    .fields = f,
                    .nfields = 4,
                    .footer = "souk · stats"};
  /* A day's summary is named by its guild and day: a post of it again (a
   * failure that was not one, a restart before the day was saved done) is
   * the same nonce, which Discord drops. */
  char key[24] = "";
  if (j->day != INT64_MIN)
    snprintf(key, sizeof key, "sum%016" PRIx64,
             mix64(j->guild ^ ((uint64_t)j->day * UINT64_C(0x9E3779B97F4A7C15))));
  souk_msg_t m = {.embeds = &e, .nembeds = 1, .key = key[0] ? key : NULL};
  int rc = souk_discord_send(j->channel, &m, summary_sent, j);
  if (rc != 0) {
    SOUK_WARN(COMP, "guild %" PRIu64 ": cannot queue the daily summary", j->guild);
    summary_finish(j, rc);
  }
}

static int summary_start(stats_guild_t *g, uint64_t ch, int64_t day) {
  summary_job_t *j = souk_calloc(1, sizeof *j);
  j->guild = g->id;
  j->channel = ch;
  j->since = g->since;
  j->until = souk_sched_unix_ms();
  j->joined = g->joined;
  j->left = g->left;
  j->messages = g->messages;
  j->members = g->members;
  j->members_start = g->members_start;
  j->day = day;
  /* Usage rows carry the real clock's time: ask for the same span back
   * from the real now (the same instant, unless a test moved the
   * schedule clock). */
  uint64_t span = j->until > j->since ? j->until - j->since : 0, real = souk_unix_ms();
  int rc = souk_usage_guild(g->id, real > span ? real - span : 0, summary_usage, j);
  if (rc) summary_usage(j, rc, NULL); /* no store: the summary without usage */
  return 0;
}

int stats_summary_now(stats_guild_t *g) {
  uint64_t ch = souk_setting_id(g->id, "stats.summary_channel");
  if (!ch) return SOUK_ENOTFOUND;
  return summary_start(g, ch, INT64_MIN);
}

uint64_t stats_summary_next(stats_guild_t *g) {
  if (!souk_setting_id(g->id, "stats.summary_channel") || !g->day_loaded) return 0;
  const souk_tz_t *tz = stats_guild_tz(g);
  if (!tz) return 0;
  return stats_daily_next(tz, (int)souk_setting_int(g->id, "stats.summary_hour"), g->last_day,
                          souk_sched_unix_ms());
}

static void summary_work(stats_guild_t *g, uint64_t now_unix) {
  uint64_t ch = souk_setting_id(g->id, "stats.summary_channel");
  if (!ch) return;
  if (!g->day_loaded) {
    if (!g->day_loading) stats_load_day(g);
    return;
  }
  const souk_tz_t *tz = stats_guild_tz(g);
  if (!tz) return;
  int hour = (int)souk_setting_int(g->id, "stats.summary_hour");
  if (g->last_day == INT64_MIN) {
    /* First time for this guild: the first summary is at the next hour,
     * not now with nothing to say. */
    int64_t due = stats_daily_due(tz, hour, INT64_MIN, now_unix);
    g->last_day = due >= 0 ? due : stats_local_day(tz, now_unix) - 1;
    g->since = now_unix;
    if (g->members_start < 0) g->members_start = g->members;
    stats_save_day(g);
    return;
  }
  int64_t due = stats_daily_due(tz, hour, g->last_day, now_unix);
  if (due < 0 || g->summary_inflight || now_unix < g->summary_retry_at) return;
  /* The day is marked done when Discord has the post (summary_finish), so
   * a failed post is retried; the post's key keeps it to one per day. */
  g->summary_inflight = true;
  summary_start(g, ch, due);
}

/* ---- presence -------------------------------------------------------------------- */

static void presence_work(uint64_t now) {
  const souk_conf_strs_t *a = &stats_conf.activities;
  if (a->n == 0 || now < stats_g.presence_next) return;
  stats_g.presence_next = now + (uint64_t)stats_conf.presence_period_ms;
  const char *tmpl = a->v[stats_g.presence_idx++ % a->n];
  stats_values_t v;
  stats_values_of(NULL, &v);
  char text[STATS_NAME_BUF];
  if (stats_template_render(tmpl, &v, text, sizeof text)) return;
  /* Discord's activity types: 0 playing, 2 listening, 3 watching, 5 competing. */
  static const int types[] = {0, 2, 3, 5};
  int rc = souk_discord_set_presence(text, types[stats_conf.presence_type]);
  if (rc == 0)
    stats_g.presence_sets++;
  else
    SOUK_DEBUG(COMP, "presence not set: %s", souk_strerror(rc));
}

/* ---- the tick ------------------------------------------------------------------- */

void stats_tick(void) {
  if (!stats_g.started) return;
  uint64_t now = souk_sched_now_ms(), unix_now = souk_sched_unix_ms();
  /* A guild that no longer sets anything keeps nothing; its callbacks in
   * flight find it gone by id. */
  for (size_t i = stats_g.nguilds; i-- > 0;)
    if (!stats_configured(stats_g.guilds[i]->id)) stats_guild_drop(stats_g.guilds[i]->id);
  for (size_t i = 0; i < stats_g.nguilds; i++) {
    stats_guild_t *g = stats_g.guilds[i];
    if (needs_poll(g)) poll_guild(g, now);
    bans_work(g, unix_now);
    for (int k = 0; k < STATS_NCTR; k++)
      ctr_work(g, (stats_ctr_kind_t)k, unix_now);
    hb_work(g, now);
    summary_work(g, unix_now);
  }
  presence_work(now);
  if (now >= stats_g.flush_next) {
    stats_g.flush_next = now + (uint64_t)stats_conf.flush_ms;
    for (size_t i = 0; i < stats_g.nguilds; i++) {
      stats_guild_t *g = stats_g.guilds[i];
      if (g->counts_dirty && g->day_loaded && g->last_day != INT64_MIN) {
        stats_save_day(g);
        g->counts_dirty = false;
      }
    }
  }
}
