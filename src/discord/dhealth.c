/* Health checks of the Discord layer (gateway sessions, REST client),
 * registered for `souk run` with the health registry of src/ops, which
 * sits below this layer. */
#include "discord/bot.h"
#include "discord/dconf.h"
#include "discord/dops.h"
#include "discord/rest.h"
#include "discord/shards.h"
#include "ops/opsconf.h"
#include "souk/health.h"
#include "souk/loop.h"

#include <stdio.h>

/* Every shard must have a session; the worst average heartbeat round trip
 * is held against health.gateway.latency_warning / latency_critical. */
static void gateway_health(void *ud, souk_health_result_t *out) {
  size_t n = souk__bot_shards(), ready = souk__bot_shards_ready();
  if (n == 0) {
    souk_health_set(out, SOUK_HEALTH_WARNING, "no shard started yet");
    return;
  }
  int64_t worst = -1;
  uint32_t worst_id = 0;
  for (size_t i = 0; i < n; i++) {
    souk__shard_stats_t st;
    if (souk__shards_stats(i, &st) == 0 && st.gw.latency_avg_ms > worst) {
      worst = st.gw.latency_avg_ms;
      worst_id = st.id;
    }
  }
  int64_t until = 0;
  if (ready < n && souk__shards_identify_waiting(&until)) {
    int64_t mins = (until - (int64_t)souk_unix_ms() + 59999) / 60000;
    if (mins < 0) mins = 0;
    souk_health_set(out, SOUK_HEALTH_CRITICAL,
                    "%zu of %zu shard(s) have a session; the daily IDENTIFY budget is spent, the "
                    "next may identify in %lld min",
                    ready, n, (long long)mins);
    return;
  }
  if (ready < n) {
    souk_health_set(out, SOUK_HEALTH_CRITICAL, "%zu of %zu shard(s) have a session", ready, n);
    return;
  }
  souk_health_t lvl =
      worst < 0 ? SOUK_HEALTH_HEALTHY
                : souk_health_threshold((double)worst, (double)souk__health_conf.gw_latency_warn_ms,
                                        (double)souk__health_conf.gw_latency_crit_ms,
                                        SOUK_HEALTH_HIGHER_IS_WORSE);
  if (worst < 0)
    souk_health_set(out, lvl, "%zu shard(s) ready, no latency measured yet", n);
  else
    souk_health_set(out, lvl, "%zu shard(s) ready, worst latency %lld ms (shard %u)", n,
                    (long long)worst, worst_id);
}

/* Close to Discord's invalid-request ban, or refusing requests, is what
 * matters; the queue filling up comes next. */
static void rest_health(void *ud, souk_health_result_t *out) {
  souk__rest_stats_t st;
  souk__rest_stats(&st);
  int64_t limit = souk__discord_conf.invalid_limit, qmax = souk__discord_conf.rest_queue_max;
  uint64_t r429 = st.r429_user + st.r429_shared + st.r429_global;
  souk_health_t lvl = SOUK_HEALTH_HEALTHY;
  if (st.invalid_tripped)
    lvl = SOUK_HEALTH_CRITICAL;
  else if ((int64_t)st.invalid_count * 2 >= limit || (int64_t)st.queued * 2 >= qmax)
    lvl = SOUK_HEALTH_WARNING;
  souk_health_set(out, lvl,
                  "%llu requests, %llu failed, %llu 429s, %u invalid in 10 min (limit %lld), "
                  "%zu queued",
                  (unsigned long long)st.requests, (unsigned long long)st.failed,
                  (unsigned long long)r429, st.invalid_count, (long long)limit, st.queued);
}

void souk__discord_health(bool on) {
  if (on) {
    souk_health_register("gateway", gateway_health, NULL);
    souk_health_register("rest", rest_health, NULL);
  } else {
    souk_health_unregister("gateway");
    souk_health_unregister("rest");
  }
}
