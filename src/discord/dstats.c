/* include/souk/stats.h: the figures of the running bot, gathered from the
 * layers that keep them: the command runner's per-command counts and the
 * dispatcher's event count (core), the REST client's queues and limits,
 * and the gateway shards of this process. */
#include "core/cmdrun.h"
#include "core/core.h"
#include "discord/bot.h"
#include "discord/gateway.h"
#include "discord/rest.h"
#include "discord/shards.h"
#include "souk/err.h"
#include "souk/stats.h"

#include <string.h>

/* ---- commands and events ---------------------------------------------------- */

const double souk_stats_latency_bounds[SOUK_STATS_LATENCY_BUCKETS] = {SOUK__CMD_LATENCY_BOUNDS};

size_t souk_stats_commands(void) { return souk__cmd_stats_n(); }

int souk_stats_command_at(size_t i, souk_stats_command_t *out) {
  const souk__cmd_stat_t *s = souk__cmd_stats_at(i);
  if (!s || !out) return SOUK_ERANGE;
  out->path = s->path;
  out->calls = s->calls;
  out->ok = s->ok;
  out->errors = s->errors;
  out->refused = s->refused;
  out->late = s->late;
  out->latency_sum_s = s->latency_sum_s;
  memcpy(out->buckets, s->buckets, sizeof out->buckets);
  return 0;
}

double souk_stats_percentile(const souk_stats_command_t *c, double q) {
  if (!c || !c->calls) return -1;
  double want = q * (double)c->calls;
  for (size_t i = 0; i < SOUK_STATS_LATENCY_BUCKETS; i++)
    if ((double)c->buckets[i] >= want) return souk_stats_latency_bounds[i];
  return -1;
}

uint64_t souk_stats_events(void) { return souk__dispatch_count(); }

/* ---- REST and shards -------------------------------------------------------- */

void souk_stats_rest(souk_stats_rest_t *out) {
  souk__rest_stats_t s;
  souk__rest_stats(&s);
  memset(out, 0, sizeof *out);
  out->queued = s.queued;
  out->inflight = s.inflight;
  out->requests = s.requests;
  out->sent = s.sent;
  out->retries = s.retries;
  out->failed = s.failed;
  out->rejected_full = s.rejected_full;
  out->r429_user = s.r429_user;
  out->r429_shared = s.r429_shared;
  out->r429_global = s.r429_global;
  out->invalid_count = s.invalid_count;
  out->invalid_tripped = s.invalid_tripped;
  out->buckets = s.buckets;
  out->global_wait_ms = souk__rest_global_wait_ms();
  out->global_mode = s.global_mode ? s.global_mode : "local";
  out->global_per_s = s.global_per_s;
  out->global_processes = s.global_processes;
}

void souk_stats_rest_routes(souk_stats_route_cb fn, void *ud) { souk__rest_queue_stats(fn, ud); }

void souk_stats_handoff(souk_stats_handoff_t *out) {
  memset(out, 0, sizeof *out);
  out->owner = "";
  souk__handoff_stats_t s;
  if (!souk__bot_handoff(&s)) return;
  out->on = true;
  out->redis_up = s.redis_up;
  out->claims = s.claims;
  out->resumed = s.claims_found;
  out->writes = s.writes;
  out->write_failures = s.write_failures;
  out->lost = s.lost;
  out->owner = souk__bot_handoff_owner();
}

size_t souk_stats_shards(void) { return souk__shards_running() ? souk__shards_count() : 0; }

int souk_stats_shard_at(size_t i, souk_stats_shard_t *out) {
  souk__shard_stats_t s;
  if (!out || i >= souk_stats_shards() || souk__shards_stats(i, &s) != 0) return SOUK_ERANGE;
  memset(out, 0, sizeof *out);
  out->id = s.id;
  out->state = souk__gw_state_name(s.gw.state);
  out->latency_ms = s.gw.latency_last_ms;
  out->events = s.gw.events;
  out->reconnects = s.gw.reconnects;
  out->resumes = s.gw.resumes;
  out->zombies = s.gw.zombies;
  out->send_queue = s.gw.queued;
  return 0;
}
