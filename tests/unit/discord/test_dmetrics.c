/* The Discord layer's metrics: the REST families, and the gateway
 * collector against a minimal fake gateway, checked by the strict Python
 * parser (tests/fakes/promparse.py) when /usr/bin/python3 has
 * prometheus_client. */
/* cmocka.h needs these headers included before it. */
/* clang-format off */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
/* clang-format on */
#include "../net/pyspawn.h"
#include "discord/dops.h"
#include "discord/shards.h"
#include "net/ws.h"
#include "souk/alloc.h"
#include "souk/buf.h"
#include "souk/err.h"
#include "souk/log.h"
#include "souk/loop.h"
#include "../metricstest.h"
#include "core/metrics.h"

#include <signal.h>
#include <sys/wait.h>

static void test_families(void **state) {
  souk__discord_metrics_init();
  souk__discord_metrics_init(); /* idempotent */
  char *out = render();
  assert_non_null(strstr(out, "\nsouk_gateway_shards 0\n"));
  assert_non_null(strstr(out, "\nsouk_rest_requests_total 0\n"));
  assert_non_null(strstr(out, "souk_rest_ratelimited_total{scope=\"global\"} 0\n"));
  /* Per-shard families have no series without shards: not rendered. */
  assert_null(strstr(out, "souk_gateway_up"));
  int rc = promparse(out);
  if (rc >= 0) assert_int_equal(rc, 0);
  souk_free(out);
  /* After a shutdown of the registry they are registered again. */
  souk__metrics_shutdown();
  souk__discord_metrics_init();
  out = render();
  assert_non_null(strstr(out, "\nsouk_rest_requests_total 0\n"));
  souk_free(out);
}

/* ---- the gateway collector against a minimal fake gateway -------------- */

static const char *const GATEWAY_PY =
    "import asyncio, json, websockets\n"
    "async def handler(ws, path):\n"
    "    async def send(o): await ws.send(json.dumps(o))\n"
    "    await send({'op': 10, 'd': {'heartbeat_interval': 150}, 's': None, 't': None})\n"
    "    try:\n"
    "        async for m in ws:\n"
    "            p = json.loads(m)\n"
    "            if p['op'] == 1:\n"
    "                await send({'op': 11})\n"
    "            elif p['op'] == 2:\n"
    "                await send({'op': 0, 't': 'READY', 's': 1, 'd': {'v': 10,\n"
    "                    'session_id': 's', 'user': {'id': '1'}, 'shard': p['d'].get('shard', [0, "
    "1]),\n"
    "                    'resume_gateway_url': 'ws://127.0.0.1:1/', 'guilds': []}})\n"
    "                await send({'op': 0, 't': 'MESSAGE_CREATE', 's': 2, 'd': {'id': '5'}})\n"
    "    except websockets.ConnectionClosed:\n"
    "        pass\n"
    "async def main():\n"
    "    async with websockets.serve(handler, '127.0.0.1', 0, ping_interval=None) as srv:\n"
    "        print(srv.sockets[0].getsockname()[1], flush=True)\n"
    "        await asyncio.Future()\n"
    "asyncio.run(main())\n";

static void gw_dispatch(uint32_t shard, const char *name, uint64_t seq, const souk_json_t *j,
                        int d) {}
static int gw_stopped;
static void gw_done(void) { gw_stopped = 1; }

static bool gw_measured(void) {
  souk__shard_stats_t st;
  return souk__shards_ready() == 1 && souk__shards_stats(0, &st) == 0 &&
         st.gw.latency_last_ms >= 0 && st.gw.events >= 2;
}

static void test_gateway_collector(void **state) {
  pyserver_t srv;
  if (!pyspawn_available() || pyserver_start(&srv, GATEWAY_PY) != 0) skip();
  char url[128];
  snprintf(url, sizeof url, "ws://127.0.0.1:%d/", srv.port);
  souk__shards_conf_t c = {.gateway_url = url,
                          .shard_count = 1,
                          .first = 0,
                          .last = 0,
                          .max_concurrency = 1,
                          .token = "MTIz.abc.def",
                          .intents = 513,
                          .compress = -1,
                          .large_threshold = 50,
                          .identify_lock = "",
                          .identify_interval_ms = 100};
  static const souk__gateway_handlers_t h = {gw_dispatch, NULL, NULL, NULL};
  assert_int_equal(souk__shards_start(&c, &h), 0);
  uint64_t until = souk_now_ms() + 10000;
  while (!gw_measured() && souk_now_ms() < until)
    uv_run(souk_loop(), UV_RUN_ONCE);
  assert_true(gw_measured());
  souk__discord_metrics_init();
  char *out = render();
  assert_non_null(strstr(out, "\nsouk_gateway_shards 1\n"));
  assert_non_null(strstr(out, "\nsouk_gateway_shards_ready 1\n"));
  assert_non_null(strstr(out, "souk_gateway_state{shard=\"0\",state=\"ready\"} 1\n"));
  assert_non_null(strstr(out, "souk_gateway_up{shard=\"0\"} 1\n"));
  assert_non_null(strstr(out, "souk_gateway_identifies_total{shard=\"0\"} 1\n"));
  assert_non_null(strstr(out, "souk_gateway_events_received_total{shard=\"0\"} 2\n"));
  assert_non_null(strstr(out, "souk_gateway_latency_seconds{shard=\"0\"} "));
  assert_non_null(strstr(out, "souk_gateway_latency_avg_seconds{shard=\"0\"} "));
  int rc = promparse(out);
  if (rc >= 0) assert_int_equal(rc, 0);
  souk_free(out);
  gw_stopped = 0;
  souk__shards_stop(gw_done);
  until = souk_now_ms() + 5000;
  while (!gw_stopped && souk_now_ms() < until)
    uv_run(souk_loop(), UV_RUN_ONCE);
  assert_true(gw_stopped);
  /* Without shards the per-shard series are gone again. */
  out = render();
  assert_null(strstr(out, "souk_gateway_up{"));
  assert_non_null(strstr(out, "\nsouk_gateway_shards 0\n"));
  souk_free(out);
  pyserver_stop(&srv);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_teardown(test_families, teardown),
      cmocka_unit_test_teardown(test_gateway_collector, teardown),
  };
  signal(SIGPIPE, SIG_IGN);
  souk_alloc_init();
  souk_log_set_level(SOUK_LOG_ERROR);
  int rc = cmocka_run_group_tests(tests, NULL, NULL);
  souk__ws_global_shutdown();
  uv_run(souk_loop(), UV_RUN_DEFAULT);
  souk_loop_close();
  return rc;
}
