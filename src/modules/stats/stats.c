/* The server-stats module: its contact with the core.
 *
 * Config and per-guild settings, the gateway events it counts from,
 * start and stop, the one-second real-time tick (schedules themselves run
 * on the schedule clock, so tests can move them), the store (kv namespace
 * "stats": rename windows, the heartbeat message, the summary's day and
 * counts) and /metrics.  The work is in stats_run.c, the commands in
 * stats_cmds.c, the pure rules in stats_logic.c. */
#include "souk/alloc.h"
#include "souk/discord.h"
#include "souk/err.h"
#include "souk/json.h"
#include "souk/log.h"
#include "souk/loop.h"
#include "souk/metrics.h"
#include "souk/module.h"
#include "souk/settings.h"
#include "souk/store.h"
#include "stats_int.h"

#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define COMP "stats"
#define KV   "stats"

stats_conf_t stats_conf;
stats_state_t stats_g;

static const char *const events_choices[] = {"auto", "on", "off", NULL};
static const char *const presence_types[] = {"playing", "listening", "watching", "competing", NULL};

#define K(field) offsetof(stats_conf_t, field)
static const souk_conf_key_t stats_conf_keys[] = {
    {"poll.min", SOUK_CONF_DURATION, K(poll_min_ms), "1m", 10000, 3600000, NULL, 0,
     "a guild's counts are polled this often right after they changed"},
    {"poll.max", SOUK_CONF_DURATION, K(poll_max_ms), "30m", 10000, 86400000, NULL, 0,
     "... and at most this rarely while they do not change (the period doubles per quiet poll)"},
    {"poll.concurrency", SOUK_CONF_INT, K(poll_concurrency), "4", 1, 64, NULL, 0,
     "count polls in flight at once; guilds are spread over the period"},
    {"members_events", SOUK_CONF_ENUM, K(members_events), "auto", 0, 0, events_choices, 0,
     "member counts from GUILD_MEMBER_ADD/REMOVE: auto when the privileged GUILD_MEMBERS intent "
     "(2) is in discord.intents, else polled with with_counts; on or off forces it"},
    {"ban_events", SOUK_CONF_ENUM, K(ban_events), "auto", 0, 0, events_choices, 0,
     "ban counts kept from GUILD_BAN_ADD/REMOVE: auto when the GUILD_MODERATION intent (4) is in "
     "discord.intents, else bans are paged again every stats.bans_repage; on or off forces it"},
    {"bans_repage", SOUK_CONF_DURATION, K(bans_repage_ms), "6h", 600000, 604800000, NULL, 0,
     "how often bans are counted again when ban events are off"},
    {"rename_margin", SOUK_CONF_DURATION, K(rename_margin_ms), "5s", 0, 120000, NULL, 0,
     "extra wait past Discord's 10-minute window before a third rename, for clock skew"},
    {"heartbeat.period", SOUK_CONF_DURATION, K(heartbeat_period_ms), "5m", 60000, 86400000, NULL, 0,
     "how often the heartbeat message is edited"},
    {"presence.activities", SOUK_CONF_STRING_LIST, K(activities), NULL, 0, 0, NULL, 0,
     "activities shown in turn, with {guilds}, {members} and {uptime}; empty: "
     "discord.presence.activity stays"},
    {"presence.type", SOUK_CONF_ENUM, K(presence_type), "watching", 0, 0, presence_types, 0,
     "how the activity reads: playing, listening, watching or competing"},
    {"presence.period", SOUK_CONF_DURATION, K(presence_period_ms), "5m", 15000, 86400000, NULL, 0,
     "time between two activities (Discord allows 5 presence updates per 60 s)"},
    {"flush", SOUK_CONF_DURATION, K(flush_ms), "5m", 10000, 3600000, NULL, 0,
     "how often the day's counts for the summary are saved"},
    {0},
};
#undef K

static const souk_setting_t stats_settings[] = {
    {.key = "stats.members_channel",
     .scope = SOUK_SETTING_GUILD,
     .type = SOUK_SETTING_CHANNEL,
     .label = "Member count channel",
     .description = "A channel whose name shows the member count.",
     .step = "channels"},
    {.key = "stats.online_channel",
     .scope = SOUK_SETTING_GUILD,
     .type = SOUK_SETTING_CHANNEL,
     .label = "Online count channel",
     .description = "A channel whose name shows how many members are online.",
     .step = "channels"},
    {.key = "stats.bans_channel",
     .scope = SOUK_SETTING_GUILD,
     .type = SOUK_SETTING_CHANNEL,
     .label = "Ban count channel",
     .description = "A channel whose name shows the ban count (the bot needs Ban Members).",
     .step = "channels"},
    {.key = "stats.members_template",
     .scope = SOUK_SETTING_GUILD,
     .type = SOUK_SETTING_STRING,
     .def = "Members: {members}",
     .min = 1,
     .max = 100,
     .label = "Member channel name",
     .description = "The member channel's name; {members} is the count.",
     .step = "stats"},
    {.key = "stats.online_template",
     .scope = SOUK_SETTING_GUILD,
     .type = SOUK_SETTING_STRING,
     .def = "Online: {online}",
     .min = 1,
     .max = 100,
     .label = "Online channel name",
     .description = "The online channel's name; {online} is the count.",
     .step = "stats"},
    {.key = "stats.bans_template",
     .scope = SOUK_SETTING_GUILD,
     .type = SOUK_SETTING_STRING,
     .def = "Bans: {bans}",
     .min = 1,
     .max = 100,
     .label = "Ban channel name",
     .description = "The ban channel's name; {bans} is the count.",
     .step = "stats"},
    {.key = "stats.heartbeat_channel",
     .scope = SOUK_SETTING_GUILD,
     .type = SOUK_SETTING_CHANNEL,
     .label = "Heartbeat channel",
     .description = "One message there is kept up to date with the bot's health.",
     .step = "channels"},
    {.key = "stats.summary_channel",
     .scope = SOUK_SETTING_GUILD,
     .type = SOUK_SETTING_CHANNEL,
     .label = "Daily summary channel",
     .description = "Gets a daily summary: members, messages and top commands.",
     .step = "channels"},
    {.key = "stats.summary_hour",
     .scope = SOUK_SETTING_GUILD,
     .type = SOUK_SETTING_INT,
     .def = "9",
     .min = 0,
     .max = 23,
     .label = "Daily summary hour",
     .description = "The hour (0-23, in the server's time zone) of the daily summary.",
     .step = "stats"},
    {.key = "stats.timezone",
     .scope = SOUK_SETTING_GUILD,
     .type = SOUK_SETTING_TIMEZONE,
     .def = "UTC",
     .label = "Server time zone",
     .description = "The server's time zone (IANA name, e.g. Europe/Paris) for daily posts.",
     .step = "stats"},
    {0},
};

static const char *const ctr_channel_keys[STATS_NCTR] = {
    "stats.members_channel", "stats.online_channel", "stats.bans_channel"};
static const char *const ctr_template_keys[STATS_NCTR] = {
    "stats.members_template", "stats.online_template", "stats.bans_template"};
static const char *const ctr_names[STATS_NCTR] = {"members", "online", "bans"};

const char *stats_ctr_channel_key(stats_ctr_kind_t k) { return ctr_channel_keys[k]; }
const char *stats_ctr_template_key(stats_ctr_kind_t k) { return ctr_template_keys[k]; }
const char *stats_ctr_name(stats_ctr_kind_t k) { return ctr_names[k]; }

/* ---- guilds ------------------------------------------------------------------ */

bool stats_configured(uint64_t id) {
  if (!id) return false;
  for (int k = 0; k < STATS_NCTR; k++)
    if (souk_setting_id(id, ctr_channel_keys[k])) return true;
  return souk_setting_id(id, "stats.heartbeat_channel") ||
         souk_setting_id(id, "stats.summary_channel");
}

stats_guild_t *stats_guild_find(uint64_t id) {
  for (size_t i = 0; i < stats_g.nguilds; i++)
    if (stats_g.guilds[i]->id == id) return stats_g.guilds[i];
  return NULL;
}

stats_guild_t *stats_guild(uint64_t id) {
  stats_guild_t *g = stats_guild_find(id);
  if (g || !id) return g;
  g = souk_calloc(1, sizeof *g);
  g->id = id;
  g->members = g->online = g->bans = -1;
  g->members_start = -1;
  g->last_day = INT64_MIN;
  g->since = souk_sched_unix_ms();
  stats_g.guilds = souk_reallocarray(stats_g.guilds, stats_g.nguilds + 1, sizeof *stats_g.guilds);
  stats_g.guilds[stats_g.nguilds++] = g;
  return g;
}

void stats_ctr_text(char **field, const char *text) {
  souk_free(*field);
  *field = text && text[0] ? souk_strdup(text) : NULL;
}

void stats_ctr_free(stats_ctr_t *c) {
  if (!c) return;
  souk_free(c->shown);
  souk_free(c->error);
  souk_free(c);
}

static void guild_free(stats_guild_t *g) {
  for (int k = 0; k < STATS_NCTR; k++)
    stats_ctr_free(g->ctr[k]);
  souk_tz_free(g->tz);
  souk_free(g);
}

void stats_guild_drop(uint64_t id) {
  for (size_t i = 0; i < stats_g.nguilds; i++) {
    stats_guild_t *g = stats_g.guilds[i];
    if (g->id != id) continue;
    /* Callbacks in flight find it gone by id. */
    guild_free(g);
    stats_g.guilds[i] = stats_g.guilds[--stats_g.nguilds];
    return;
  }
}

/* ---- events ------------------------------------------------------------------ */

static uint64_t id_of(const souk_json_t *j, int t) {
  uint64_t id = 0;
  if (t < 0 || souk_json_u64(j, t, &id)) return 0;
  return id;
}

static uint64_t id_at(const souk_event_t *ev, const char *key) {
  return id_of(ev->json, souk_json_get(ev->json, ev->d, key));
}

static void on_guild_create(const souk_event_t *ev) {
  uint64_t id = id_at(ev, "id");
  int64_t n = -1;
  int t = souk_json_get(ev->json, ev->d, "member_count");
  if (t < 0 || souk_json_i64(ev->json, t, &n) != 0) n = -1;
  stats_members_set(id, n);
  if (!stats_configured(id)) return; /* nothing to count: no state */
  stats_guild_t *g = stats_guild(id);
  if (!g) return;
  if (n >= 0) {
    /* Exact at this moment, whatever the intents; polls refine it. */
    g->members = n;
    if (g->members_start < 0) g->members_start = n;
  }
}

static void on_guild_delete(const souk_event_t *ev) {
  bool unavailable = false;
  int u = souk_json_get(ev->json, ev->d, "unavailable");
  if (u >= 0) souk_json_bool(ev->json, u, &unavailable);
  if (unavailable) return;
  stats_guild_drop(id_at(ev, "id"));
  stats_members_drop(id_at(ev, "id"));
}

/* The events arrive exactly when their intent is in discord.intents: the
 * operator says it once, and a setting only forces it either way. */
static bool events_on(int setting, uint64_t intent) {
  if (setting == STATS_EVENTS_ON) return true;
  if (setting == STATS_EVENTS_OFF) return false;
  return (souk_discord_intents() & intent) != 0;
}

bool stats_members_events(void) {
  return events_on(stats_conf.members_events, SOUK_INTENT_GUILD_MEMBERS);
}

bool stats_ban_events(void) {
  return events_on(stats_conf.ban_events, SOUK_INTENT_GUILD_MODERATION);
}

static void on_member(const souk_event_t *ev, int delta) {
  stats_members_add(id_at(ev, "guild_id"), delta);
  stats_guild_t *g = stats_guild_find(id_at(ev, "guild_id"));
  if (!g) return;
  if (delta > 0)
    g->joined++;
  else
    g->left++;
  g->counts_dirty = true;
  if (stats_members_events() && g->members >= 0) g->members += delta;
}

static void on_member_add(const souk_event_t *ev) { on_member(ev, 1); }
static void on_member_remove(const souk_event_t *ev) { on_member(ev, -1); }

static void on_ban(const souk_event_t *ev, int delta) {
  stats_guild_t *g = stats_guild_find(id_at(ev, "guild_id"));
  if (!g || g->bans_state != STATS_BANS_KNOWN || !stats_ban_events()) return;
  g->bans += delta;
  if (g->bans < 0) g->bans = 0;
}

static void on_ban_add(const souk_event_t *ev) { on_ban(ev, 1); }
static void on_ban_remove(const souk_event_t *ev) { on_ban(ev, -1); }

static void on_message(const souk_event_t *ev) {
  /* Both keys in one pass over the message (it runs for every one). */
  static const char *const keys[] = {"guild_id", "author"};
  int v[2];
  souk_json_get_keys(ev->json, ev->d, keys, 2, v);
  stats_guild_t *g = stats_guild_find(id_of(ev->json, v[0]));
  if (!g) return;
  /* Members' messages: bots (souk's own posts among them) do not count. */
  bool bot = false;
  int b = souk_json_get(ev->json, v[1], "bot");
  if (b >= 0 && souk_json_bool(ev->json, b, &bot) == 0 && bot) return;
  g->messages++;
  g->counts_dirty = true;
}

static const souk_event_handler_t stats_events[] = {
    {"GUILD_CREATE", on_guild_create},   {"GUILD_DELETE", on_guild_delete},
    {"GUILD_MEMBER_ADD", on_member_add}, {"GUILD_MEMBER_REMOVE", on_member_remove},
    {"GUILD_BAN_ADD", on_ban_add},       {"GUILD_BAN_REMOVE", on_ban_remove},
    {"MESSAGE_CREATE", on_message},      {0},
};

/* A guild that sets something from another process (or the console's
 * guild) is seen from its settings.  One that turned everything off is
 * dropped by the next tick: a command may hold its state now. */
static void setting_changed(uint64_t scope_id, const souk_setting_t *s, void *ud) {
  if (stats_configured(scope_id)) stats_guild(scope_id);
}

/* ---- the store ----------------------------------------------------------------- */

typedef struct kv_job {
  uint64_t guild;
  int kind; /* counter kind, or -1 */
  uint64_t channel;
  char key[64];
  char *value; /* to write */
  souk_buf_t read;
  bool found;
} kv_job_t;

static int kv_read_tx(souk_db_t *db, void *ud) {
  kv_job_t *j = ud;
  souk_buf_reset(&j->read);
  int rc = souk_db_kv_get(db, KV, j->key, &j->read, NULL);
  j->found = rc == 0;
  return rc == SOUK_ENOTFOUND ? 0 : rc;
}

static int kv_write_tx(souk_db_t *db, void *ud) {
  kv_job_t *j = ud;
  return souk_db_kv_put(db, KV, j->key, j->value, strlen(j->value));
}

static void job_free(kv_job_t *j) {
  souk_buf_free(&j->read);
  souk_free(j->value);
  souk_free(j);
}

static void write_done(void *ud, int status) {
  kv_job_t *j = ud;
  if (status) SOUK_WARN(COMP, "cannot save %s: %s", j->key, souk_strerror(status));
  job_free(j);
}

static void kv_write(const char *key, const char *value) {
  souk_store_t *st = stats_g.store;
  if (!st) return;
  kv_job_t *j = souk_calloc(1, sizeof *j);
  souk_buf_init(&j->read);
  snprintf(j->key, sizeof j->key, "%s", key);
  j->value = souk_strdup(value);
  if (souk_store_tx_async(st, kv_write_tx, write_done, j)) write_done(j, SOUK_EIO);
}

/* Start a read; done(j, status) runs later, or at once without a store. */
static void kv_read(kv_job_t *j, souk_store_done_cb done) {
  souk_buf_init(&j->read);
  souk_store_t *st = stats_g.store;
  if (!st || souk_store_read_async(st, kv_read_tx, done, j)) done(j, st ? SOUK_EIO : 0);
}

static void ctr_loaded(void *ud, int status) {
  kv_job_t *j = ud;
  stats_guild_t *g = stats_guild_find(j->guild);
  stats_ctr_t *c = g ? g->ctr[j->kind] : NULL;
  if (c && c->channel == j->channel && c->loading) {
    c->loading = false;
    c->loaded = true;
    if (status) SOUK_WARN(COMP, "cannot read %s: %s", j->key, souk_strerror(status));
    if (j->found && j->read.len) {
      /* "t1,t2,blocked|shown name" */
      const char *bar = memchr(j->read.data, '|', j->read.len);
      size_t wl = bar ? (size_t)(bar - j->read.data) : j->read.len;
      if (stats_rename_decode(j->read.data, wl, &c->win) != 0)
        SOUK_WARN(COMP, "%s: unreadable rename window, starting afresh", j->key);
      if (bar) {
        size_t nl = j->read.len - wl - 1;
        if (nl >= STATS_NAME_BUF) nl = STATS_NAME_BUF - 1;
        souk_free(c->shown);
        c->shown = nl ? souk_strndup(bar + 1, nl) : NULL;
      }
    }
  }
  job_free(j);
}

void stats_load_ctr(stats_guild_t *g, stats_ctr_kind_t k) {
  stats_ctr_t *c = g->ctr[k];
  c->loading = true;
  kv_job_t *j = souk_calloc(1, sizeof *j);
  j->guild = g->id;
  j->kind = (int)k;
  j->channel = c->channel;
  snprintf(j->key, sizeof j->key, "rename:%" PRIu64, c->channel);
  kv_read(j, ctr_loaded);
}

void stats_save_ctr(const stats_ctr_t *c) {
  char key[64], val[STATS_NAME_BUF + 96];
  snprintf(key, sizeof key, "rename:%" PRIu64, c->channel);
  int n = stats_rename_encode(&c->win, val, sizeof val);
  snprintf(val + n, sizeof val - (size_t)n, "|%s", c->shown ? c->shown : "");
  kv_write(key, val);
}

static void hb_loaded(void *ud, int status) {
  kv_job_t *j = ud;
  stats_guild_t *g = stats_guild_find(j->guild);
  if (g && g->hb_loading) {
    g->hb_loading = false;
    g->hb_loaded = true;
    if (status) SOUK_WARN(COMP, "cannot read %s: %s", j->key, souk_strerror(status));
    unsigned long long ch = 0, msg = 0;
    if (j->found && j->read.data && sscanf(j->read.data, "%llu:%llu", &ch, &msg) == 2) {
      g->hb_channel = ch;
      g->hb_message = msg;
    }
  }
  job_free(j);
}

void stats_load_heartbeat(stats_guild_t *g) {
  g->hb_loading = true;
  kv_job_t *j = souk_calloc(1, sizeof *j);
  j->guild = g->id;
  snprintf(j->key, sizeof j->key, "heartbeat:%" PRIu64, g->id);
  kv_read(j, hb_loaded);
}

void stats_save_heartbeat(const stats_guild_t *g) {
  char key[64], val[64];
  snprintf(key, sizeof key, "heartbeat:%" PRIu64, g->id);
  snprintf(val, sizeof val, "%" PRIu64 ":%" PRIu64, g->hb_channel, g->hb_message);
  kv_write(key, val);
}

static void day_loaded(void *ud, int status) {
  kv_job_t *j = ud;
  stats_guild_t *g = stats_guild_find(j->guild);
  if (g && g->day_loading) {
    g->day_loading = false;
    g->day_loaded = true;
    if (status) SOUK_WARN(COMP, "cannot read %s: %s", j->key, souk_strerror(status));
    long long day, since, joined, left, msgs, start;
    if (j->found && j->read.data &&
        sscanf(j->read.data, "%lld|%lld|%lld|%lld|%lld|%lld", &day, &since, &joined, &left, &msgs,
               &start) == 6) {
      g->last_day = day;
      g->since = (uint64_t)since;
      /* Counts made before the read (events since start) add up. */
      g->joined += joined;
      g->left += left;
      g->messages += msgs;
      if (start >= 0) g->members_start = start;
    }
  }
  job_free(j);
}

void stats_load_day(stats_guild_t *g) {
  g->day_loading = true;
  kv_job_t *j = souk_calloc(1, sizeof *j);
  j->guild = g->id;
  snprintf(j->key, sizeof j->key, "daily:%" PRIu64, g->id);
  kv_read(j, day_loaded);
}

static void day_text(const stats_guild_t *g, char *key, size_t kcap, char *val, size_t vcap) {
  snprintf(key, kcap, "daily:%" PRIu64, g->id);
  snprintf(val, vcap, "%" PRId64 "|%" PRIu64 "|%" PRId64 "|%" PRId64 "|%" PRId64 "|%" PRId64,
           g->last_day, g->since, g->joined, g->left, g->messages, g->members_start);
}

void stats_save_day(const stats_guild_t *g) {
  char key[64], val[160];
  day_text(g, key, sizeof key, val, sizeof val);
  kv_write(key, val);
}

typedef struct flush_all {
  char (*keys)[64];
  char (*vals)[160];
  size_t n;
} flush_all_t;

static int flush_all_tx(souk_db_t *db, void *ud) {
  flush_all_t *f = ud;
  for (size_t i = 0; i < f->n; i++) {
    int rc = souk_db_kv_put(db, KV, f->keys[i], f->vals[i], strlen(f->vals[i]));
    if (rc) return rc;
  }
  return 0;
}

void stats_flush_sync(void) {
  souk_store_t *st = stats_g.store;
  if (!st) return;
  flush_all_t f = {souk_calloc(stats_g.nguilds + 1, sizeof *f.keys),
                   souk_calloc(stats_g.nguilds + 1, sizeof *f.vals), 0};
  for (size_t i = 0; i < stats_g.nguilds; i++) {
    stats_guild_t *g = stats_g.guilds[i];
    /* Only guilds whose saved row was read: the rest would overwrite it. */
    if (!g->counts_dirty || !g->day_loaded) continue;
    day_text(g, f.keys[f.n], sizeof f.keys[0], f.vals[f.n], sizeof f.vals[0]);
    f.n++;
    g->counts_dirty = false;
  }
  if (f.n) {
    int rc = souk_store_tx(st, flush_all_tx, &f);
    if (rc) SOUK_WARN(COMP, "cannot save the day's counts: %s", souk_strerror(rc));
  }
  souk_free(f.keys);
  souk_free(f.vals);
}

/* ---- metrics ----------------------------------------------------------------- */

static souk_metric_t *m_polls, *m_saved, *m_inflight, *m_renames, *m_deferred, *m_hb, *m_sum,
    *m_guilds, *m_presence;

static void collect(void *ud) {
  souk_counter_set(souk_metric_series(m_polls, SOUK_LV("ok")),
                   (double)(stats_g.polls - stats_g.poll_failures));
  souk_counter_set(souk_metric_series(m_polls, SOUK_LV("failed")), (double)stats_g.poll_failures);
  souk_counter_set(souk_metric_series(m_saved, NULL), (double)stats_g.polls_saved);
  souk_gauge_set(souk_metric_series(m_inflight, NULL), (double)stats_g.polls_inflight);
  souk_counter_set(souk_metric_series(m_renames, SOUK_LV("ok")), (double)stats_g.renames);
  souk_counter_set(souk_metric_series(m_renames, SOUK_LV("refused")),
                   (double)stats_g.renames_refused);
  souk_counter_set(souk_metric_series(m_deferred, NULL), (double)stats_g.renames_deferred);
  souk_counter_set(souk_metric_series(m_hb, SOUK_LV("edit")), (double)stats_g.heartbeats);
  souk_counter_set(souk_metric_series(m_hb, SOUK_LV("repost")), (double)stats_g.heartbeat_reposts);
  souk_counter_set(souk_metric_series(m_sum, NULL), (double)stats_g.summaries);
  souk_gauge_set(souk_metric_series(m_guilds, NULL), (double)stats_g.nguilds);
  souk_counter_set(souk_metric_series(m_presence, NULL), (double)stats_g.presence_sets);
}

static void metrics_init(void) {
  m_polls =
      souk_counter_new("souk_stats_polls_total", "guild count polls (with_counts)", "outcome");
  m_saved = souk_counter_new("souk_stats_polls_saved_total",
                             "polls not made thanks to adaptive polling, compared with polling "
                             "every guild every stats.poll.min",
                             NULL);
  m_inflight = souk_gauge_new("souk_stats_polls_inflight", "count polls in flight", NULL);
  m_renames = souk_counter_new("souk_stats_renames_total", "counter channel renames", "outcome");
  m_deferred = souk_counter_new("souk_stats_renames_deferred_total",
                                "renames held back by the 2-per-10-minutes window", NULL);
  m_hb = souk_counter_new("souk_stats_heartbeats_total", "heartbeat edits and re-posts", "kind");
  m_sum = souk_counter_new("souk_stats_summaries_total", "daily summaries sent", NULL);
  m_guilds = souk_gauge_new("souk_stats_guilds", "guilds the stats module knows", NULL);
  m_presence =
      souk_counter_new("souk_stats_presence_updates_total", "rotating presence updates sent", NULL);
  souk_metrics_add_collector(collect, NULL);
}

/* ---- start and stop ------------------------------------------------------------ */

static uv_timer_t *g_tick;

static void tick_cb(uv_timer_t *t) { stats_tick(); }

static int stats_init(const souk_module_ctx_t *ctx) {
  memset(&stats_g, 0, sizeof stats_g);
  stats_g.store = ctx->store;
  const stats_conf_t *c = &stats_conf;
  if (c->poll_max_ms < c->poll_min_ms) {
    SOUK_ERROR(COMP,
               "stats.poll.max (%" PRId64 " s) is shorter than stats.poll.min (%" PRId64 " s)",
               c->poll_max_ms / 1000, c->poll_min_ms / 1000);
    return SOUK_ECONFIG;
  }
  for (size_t i = 0; i < c->activities.n; i++) {
    char err[200];
    if (stats_template_check(c->activities.v[i], err, sizeof err)) {
      SOUK_ERROR(COMP, "stats.presence.activities[%zu]: %s", i, err);
      return SOUK_ECONFIG;
    }
  }
  for (size_t i = 0; stats_settings[i].key; i++)
    souk_setting_watch(stats_settings[i].key, setting_changed, NULL);
  stats_g.started = true;
  stats_g.started_at = souk_sched_now_ms();
  stats_g.flush_next = stats_g.started_at + (uint64_t)c->flush_ms;
  g_tick = souk_timer_every(1000, tick_cb, NULL, 1);
  metrics_init();
  return 0;
}

static void stats_shutdown(const souk_module_ctx_t *ctx) {
  stats_members_free();
  if (!stats_g.started) return;
  souk_metrics_remove_collector(collect, NULL);
  souk_timer_free(&g_tick);
  stats_flush_sync();
  for (size_t i = 0; i < stats_g.nguilds; i++)
    guild_free(stats_g.guilds[i]);
  souk_free(stats_g.guilds);
  memset(&stats_g, 0, sizeof stats_g);
}

static int stats_check(bool online, souk_buf_t *out) {
  const stats_conf_t *c = &stats_conf;
  souk_buf_printf(out, "stats: counts %s, bans %s, polled every %" PRId64 "-%" PRId64 " s\n",
                  stats_members_events() ? "from member events (GUILD_MEMBERS intent)"
                                         : "polled (with_counts)",
                  stats_ban_events() ? "kept from ban events (GUILD_MODERATION intent)"
                                     : "paged again every stats.bans_repage",
                  c->poll_min_ms / 1000, c->poll_max_ms / 1000);
  int rc = 0;
  if (c->poll_max_ms < c->poll_min_ms) {
    souk_buf_puts(out, "  stats.poll.max is shorter than stats.poll.min\n");
    rc = SOUK_ECONFIG;
  }
  for (size_t i = 0; i < c->activities.n; i++) {
    char err[200];
    if (stats_template_check(c->activities.v[i], err, sizeof err)) {
      souk_buf_printf(out, "  stats.presence.activities[%zu]: %s\n", i, err);
      rc = SOUK_ECONFIG;
    }
  }
  return rc;
}

const souk_module_t souk_stats_module = {
    .abi = SOUK_MODULE_ABI,
    .name = "stats",
    .conf = stats_conf_keys,
    .conf_data = &stats_conf,
    .events = stats_events,
    .commands = stats_commands,
    .init = stats_init,
    .shutdown = stats_shutdown,
    .check = stats_check,
    .settings = stats_settings,
};
