/* The Discord layer's metrics: the gateway shards and the REST client.
 *
 * Each collector mirrors the counters the shards and the REST client
 * already keep, so nothing on the gateway's hot path pays for metrics: the
 * work happens once per scrape.  Families that are keyed by something that
 * can go away (a shard, a route) are cleared and rebuilt on every scrape. */
#include "discord/bot.h"
#include "discord/dops.h"
#include "discord/interactions.h"
#include "discord/rest.h"
#include "discord/shards.h"
#include "souk/metrics.h"

#include <stdio.h>
#include <string.h>

/* ---- gateway ----------------------------------------------------------- */

static struct {
  souk_metric_t *shards, *ready, *state, *up, *lat, *lat_avg, *events, *reconnects, *resumes,
      *identifies, *zombies, *invalid, *bytes, *wire;
} gw;

static void collect_gateway(void *ud) {
  souk_metric_t *per_shard[] = {gw.state,   gw.up,         gw.lat,     gw.lat_avg,
                                gw.events,  gw.reconnects, gw.resumes, gw.identifies,
                                gw.zombies, gw.invalid,    gw.bytes,   gw.wire};
  for (size_t i = 0; i < sizeof per_shard / sizeof per_shard[0]; i++)
    souk_metric_clear(per_shard[i]);
  size_t n = souk__shards_count();
  souk_gauge_set(souk_metric_series(gw.shards, NULL), (double)n);
  souk_gauge_set(souk_metric_series(gw.ready, NULL), (double)souk__shards_ready());
  for (size_t i = 0; i < n; i++) {
    souk__shard_stats_t st;
    if (souk__shards_stats(i, &st) != 0) continue;
    char id[16];
    snprintf(id, sizeof id, "%u", st.id);
    const char *const *lv = SOUK_LV(id);
    souk_gauge_set(souk_metric_series(gw.state, SOUK_LV(id, souk__gw_state_name(st.gw.state))), 1);
    souk_gauge_set(souk_metric_series(gw.up, lv), st.gw.state == SOUK_GW_READY);
    /* No latency before the first heartbeat ACK: leave the series out
     * rather than report a made-up 0. */
    if (st.gw.latency_last_ms >= 0)
      souk_gauge_set(souk_metric_series(gw.lat, lv), (double)st.gw.latency_last_ms / 1000.0);
    if (st.gw.latency_avg_ms >= 0)
      souk_gauge_set(souk_metric_series(gw.lat_avg, lv), (double)st.gw.latency_avg_ms / 1000.0);
    souk_counter_set(souk_metric_series(gw.events, lv), (double)st.gw.events);
    souk_counter_set(souk_metric_series(gw.reconnects, lv), (double)st.gw.reconnects);
    souk_counter_set(souk_metric_series(gw.resumes, lv), (double)st.gw.resumes);
    souk_counter_set(souk_metric_series(gw.identifies, lv), (double)st.gw.identifies);
    souk_counter_set(souk_metric_series(gw.zombies, lv), (double)st.gw.zombies);
    souk_counter_set(souk_metric_series(gw.invalid, lv), (double)st.gw.invalid_sessions);
    souk_counter_set(souk_metric_series(gw.bytes, lv), (double)st.gw.bytes_in);
    souk_counter_set(souk_metric_series(gw.wire, lv), (double)st.bytes_compressed);
  }
}

static void gateway_init(void) {
  gw.shards = souk_gauge_new("souk_gateway_shards", "Gateway shards run by this process.", NULL);
  gw.ready =
      souk_gauge_new("souk_gateway_shards_ready", "Gateway shards whose session is ready.", NULL);
  gw.state = souk_gauge_new("souk_gateway_state",
                            "Current state of each shard's session (1 for the state it is in).",
                            "shard,state");
  gw.up =
      souk_gauge_new("souk_gateway_up", "1 when the shard's session is ready, else 0.", "shard");
  gw.lat = souk_gauge_new("souk_gateway_latency_seconds", "Last heartbeat round trip of the shard.",
                          "shard");
  gw.lat_avg = souk_gauge_new("souk_gateway_latency_avg_seconds",
                              "Moving average of the shard's heartbeat round trip.", "shard");
  gw.events = souk_counter_new("souk_gateway_events_received_total",
                               "Gateway dispatches received by the shard.", "shard");
  gw.reconnects = souk_counter_new("souk_gateway_reconnects_total",
                                   "Connection attempts after the first.", "shard");
  gw.resumes = souk_counter_new("souk_gateway_resumes_total", "RESUME payloads sent.", "shard");
  gw.identifies =
      souk_counter_new("souk_gateway_identifies_total", "IDENTIFY payloads sent.", "shard");
  gw.zombies = souk_counter_new("souk_gateway_zombies_total",
                                "Connections closed for a missing heartbeat ACK.", "shard");
  gw.invalid = souk_counter_new("souk_gateway_invalid_sessions_total",
                                "Invalid Session (op 9) payloads received.", "shard");
  gw.bytes = souk_counter_new("souk_gateway_received_bytes_total",
                              "Text bytes received, after decompression.", "shard");
  gw.wire = souk_counter_new("souk_gateway_wire_bytes_total",
                             "Bytes received on the wire, before decompression.", "shard");
  souk_metrics_add_collector(collect_gateway, NULL);
}

/* ---- session hand-off ------------------------------------------------- */

static struct {
  souk_series_t *up, *claims, *found, *writes, *failures, *lost, *others, *g_written, *g_restored;
} ho;

static void collect_handoff(void *ud) {
  souk__handoff_stats_t s;
  if (!souk__bot_handoff(&s)) memset(&s, 0, sizeof s);
  souk_gauge_set(ho.up, s.redis_up);
  souk_counter_set(ho.claims, (double)s.claims);
  souk_counter_set(ho.found, (double)s.claims_found);
  souk_counter_set(ho.writes, (double)s.writes);
  souk_counter_set(ho.failures, (double)s.write_failures);
  souk_counter_set(ho.lost, (double)s.lost);
  souk_gauge_set(ho.others, (double)s.others_guilds);
  souk_counter_set(ho.g_written, (double)s.guilds_written);
  souk_counter_set(ho.g_restored, (double)s.guilds_restored);
}

static souk_series_t *one(souk_metric_t *m);

static void handoff_init(void) {
  ho.up = one(souk_gauge_new("souk_gateway_handoff_redis_up",
                             "1 while shard sessions are written to Redis for the next process.",
                             NULL));
  ho.claims = one(souk_counter_new("souk_gateway_handoff_claims_total",
                                   "Shards this process claimed at their start.", NULL));
  ho.found = one(souk_counter_new("souk_gateway_handoff_resumed_total",
                                  "Claimed shards that found a session handed on to resume.",
                                  NULL));
  ho.writes = one(souk_counter_new("souk_gateway_handoff_writes_total",
                                   "Session writes Redis accepted.", NULL));
  ho.failures = one(souk_counter_new("souk_gateway_handoff_write_failures_total",
                                     "Session writes lost with the connection or refused.", NULL));
  ho.lost = one(souk_counter_new("souk_gateway_handoff_lost_total",
                                 "Shards another process claimed while this one ran them.", NULL));
  ho.others = one(souk_gauge_new("souk_gateway_other_guilds",
                                 "Guilds counted from Redis: of the shards other processes run, and of shards "
                                 "resumed here whose guilds this process has not seen.",
                                 NULL));
  ho.g_written = one(souk_counter_new("souk_gateway_handoff_guild_writes_total",
                                      "Guild records written to Redis (or deleted) with the "
                                      "sessions, for the next process.",
                                      NULL));
  ho.g_restored = one(souk_counter_new("souk_gateway_handoff_guilds_restored_total",
                                       "Guild records handed on with resumed sessions and put "
                                       "back in the guild cache.",
                                       NULL));
  souk_metrics_add_collector(collect_handoff, NULL);
}

/* ---- REST -------------------------------------------------------------- */

static struct {
  souk_series_t *requests, *sent, *retries, *rejected, *failed, *r429_user, *r429_shared,
      *r429_global, *wait, *queued, *inflight, *invalid, *tripped, *buckets, *g_rate, *g_dropped;
  souk_metric_t *routes, *g_mode;
} rest;

static void route_stat(const char *route, int status, uint64_t count, void *ud) {
  char st[16];
  if (status > 0)
    snprintf(st, sizeof st, "%d", status);
  else
    snprintf(st, sizeof st, "none");
  souk_counter_set(souk_metric_series(rest.routes, SOUK_LV(route, st)), (double)count);
}

static void collect_rest(void *ud) {
  souk__rest_stats_t s;
  souk__rest_stats(&s);
  souk_counter_set(rest.requests, (double)s.requests);
  souk_counter_set(rest.sent, (double)s.sent);
  souk_counter_set(rest.retries, (double)s.retries);
  souk_counter_set(rest.rejected, (double)s.rejected_full);
  souk_counter_set(rest.failed, (double)s.failed);
  souk_counter_set(rest.r429_user, (double)s.r429_user);
  souk_counter_set(rest.r429_shared, (double)s.r429_shared);
  souk_counter_set(rest.r429_global, (double)s.r429_global);
  souk_counter_set(rest.wait, (double)s.wait_ms_total / 1000.0);
  souk_gauge_set(rest.queued, (double)s.queued);
  souk_gauge_set(rest.inflight, (double)s.inflight);
  souk_gauge_set(rest.invalid, (double)s.invalid_count);
  souk_gauge_set(rest.tripped, s.invalid_tripped);
  souk_gauge_set(rest.buckets, (double)s.buckets);
  souk_metric_clear(rest.routes);
  souk__rest_route_stats(route_stat, NULL);
  souk_metric_clear(rest.g_mode);
  souk_gauge_set(souk_metric_series(rest.g_mode, SOUK_LV(s.global_mode ? s.global_mode : "local")),
                 1);
  souk_gauge_set(rest.g_rate, s.global_per_s);
  souk_counter_set(rest.g_dropped, (double)s.global_dropped);
}

static souk_series_t *one(souk_metric_t *m) { return souk_metric_series(m, NULL); }

static void rest_init(void) {
  rest.requests =
      one(souk_counter_new("souk_rest_requests_total", "Discord REST requests accepted.", NULL));
  rest.sent = one(souk_counter_new("souk_rest_sent_total",
                                   "HTTP requests sent to Discord, retries included.", NULL));
  rest.retries = one(souk_counter_new("souk_rest_retries_total",
                                      "Re-sends after a 5xx or a connection error.", NULL));
  rest.rejected = one(souk_counter_new("souk_rest_rejected_total",
                                       "Requests refused because the queue was full.", NULL));
  rest.failed =
      one(souk_counter_new("souk_rest_failed_total", "Requests that ended in an error.", NULL));
  souk_metric_t *r429 =
      souk_counter_new("souk_rest_ratelimited_total", "429 responses received, by scope.", "scope");
  rest.r429_user = souk_metric_series(r429, SOUK_LV("user"));
  rest.r429_shared = souk_metric_series(r429, SOUK_LV("shared"));
  rest.r429_global = souk_metric_series(r429, SOUK_LV("global"));
  rest.wait = one(souk_counter_new("souk_rest_wait_seconds_total",
                                   "Time requests spent queued before being sent.", NULL));
  rest.queued = one(souk_gauge_new("souk_rest_queue_length",
                                   "Requests waiting to be sent, back-off included.", NULL));
  rest.inflight =
      one(souk_gauge_new("souk_rest_inflight", "Requests sent and not yet answered.", NULL));
  rest.invalid = one(souk_gauge_new("souk_rest_invalid_requests",
                                    "401, 403 and 429 responses in the last 10 minutes "
                                    "(Discord bans the IP at 10000).",
                                    NULL));
  rest.tripped =
      one(souk_gauge_new("souk_rest_invalid_tripped",
                         "1 while requests are refused for too many invalid ones.", NULL));
  rest.buckets = one(souk_gauge_new("souk_rest_buckets", "Rate-limit buckets known.", NULL));
  rest.g_mode = souk_gauge_new(
      "souk_rest_global_mode",
      "How Discord's global limit is counted (1 for the mode in use): local (this process has "
      "all of it), shared (in Redis, with the other processes), fallback (Redis unreachable: "
      "this process's share), connecting.",
      "mode");
  rest.g_rate = one(souk_gauge_new("souk_rest_global_rate",
                                   "Requests a second this process may send at most now, "
                                   "within Discord's global limit.",
                                   NULL));
  rest.g_dropped = one(souk_counter_new("souk_rest_global_slots_dropped_total",
                                        "Shared global-limit slots reserved in Redis but not used "
                                        "in time (dropped rather than sent late).",
                                        NULL));
  rest.routes =
      souk_counter_new("souk_rest_responses_total",
                       "HTTP attempts by route and status (none: no response).", "route,status");
  souk_metrics_add_collector(collect_rest, NULL);
}

/* ---- HTTP interactions ------------------------------------------------- */

static souk_series_t *ix_retried;

static void collect_ix(void *ud) {
  (void)ud;
  souk_counter_set(ix_retried, (double)souk__ix_retries());
}

static void ix_init(void) {
  ix_retried = one(souk_counter_new(
      "souk_interactions_retried_total",
      "HTTP interactions that reached this process again (a load balancer's retry) and were "
      "answered with the first answer, without running the command twice.",
      NULL));
  souk_metrics_add_collector(collect_ix, NULL);
}

void souk__discord_metrics_init(void) {
  /* Idempotent: after souk__metrics_shutdown() the families are gone and
   * are registered again. */
  if (souk_metric_find("souk_gateway_shards")) return;
  gateway_init();
  handoff_init();
  rest_init();
  ix_init();
}
