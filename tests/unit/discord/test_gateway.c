/* The gateway state machine with a fake clock, fake randomness and fake
 * ops: heartbeats and their jitter, ACKs and zombies, IDENTIFY and RESUME
 * payloads, READY, op 7 / op 9, the close-code policy, backoff, the send
 * limiter and the payload size limit. */
/* cmocka.h needs these headers included before it. */
/* clang-format off */
#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>
/* clang-format on */

#include "discord/gateway.h"
#include "souk/alloc.h"
#include "souk/buf.h"
#include "souk/err.h"
#include "souk/json.h"
#include "souk/log.h"

#include "../logcap.h"

/* ---- fake world --------------------------------------------------------- */

#define MAXREC 4096

typedef struct world {
  uint64_t now;
  double rnd;
  bool timer_armed;
  uint64_t timer_at;
  int64_t last_delay;
  char *sent[MAXREC];
  uint64_t sent_at[MAXREC];
  int nsent;
  int closes[64];
  int nclose;
  char *connects[64];
  int nconnect;
  int identify_requests;
  char events[MAXREC][32];
  uint64_t event_seq[MAXREC];
  int nevents;
  int ready, resumed, stopped;
  int fatal_code;
  char fatal_msg[256];
  int nfatal;
  bool grant_at_once; /* grant identify slots synchronously */
  souk__gateway_t *gw;
  int send_from_dispatch; /* payloads to send from the next dispatch */
} world_t;

static world_t W;

static int op_send(void *ud, const char *text, size_t len) {
  assert_true(len <= SOUK_GATEWAY_PAYLOAD_MAX);
  assert_true(W.nsent < MAXREC);
  W.sent[W.nsent] = souk_memdup0(text, len);
  W.sent_at[W.nsent] = W.now;
  W.nsent++;
  return 0;
}
static void op_close(void *ud, int code) { W.closes[W.nclose++] = code; }
static void op_connect(void *ud, const char *url) { W.connects[W.nconnect++] = souk_strdup(url); }
static void op_timer(void *ud, int64_t delay) {
  W.last_delay = delay;
  W.timer_armed = delay >= 0;
  W.timer_at = delay >= 0 ? W.now + (uint64_t)delay : 0;
}
static void op_request_identify(void *ud) {
  W.identify_requests++;
  if (W.grant_at_once) souk__gateway_identify_granted(W.gw);
}
static void op_dispatch(void *ud, const char *name, uint64_t seq, const souk_json_t *j, int d) {
  snprintf(W.events[W.nevents], sizeof W.events[0], "%s", name);
  W.event_seq[W.nevents] = seq;
  W.nevents++;
  assert_true(d >= 0);
  while (W.send_from_dispatch > 0) {
    W.send_from_dispatch--;
    assert_int_equal(souk__gateway_send(W.gw, "{\"op\":8,\"d\":{}}", 15), 0);
  }
}
static void op_ready(void *ud) { W.ready++; }
static void op_resumed(void *ud) { W.resumed++; }
static void op_fatal(void *ud, int code, const char *msg) {
  W.nfatal++;
  W.fatal_code = code;
  snprintf(W.fatal_msg, sizeof W.fatal_msg, "%s", msg);
}
static void op_stopped(void *ud) { W.stopped++; }
static uint64_t op_now(void *ud) { return W.now; }
static double op_rand(void *ud) { return W.rnd; }

static const souk__gateway_ops_t OPS = {
    .send = op_send,
    .close = op_close,
    .connect = op_connect,
    .timer = op_timer,
    .request_identify = op_request_identify,
    .dispatch = op_dispatch,
    .ready = op_ready,
    .resumed = op_resumed,
    .fatal = op_fatal,
    .stopped = op_stopped,
    .now_ms = op_now,
    .rand01 = op_rand,
};

static void world_clear(void) {
  for (int i = 0; i < W.nsent; i++)
    souk_free(W.sent[i]);
  for (int i = 0; i < W.nconnect; i++)
    souk_free(W.connects[i]);
  if (W.gw) souk__gateway_free(W.gw);
  memset(&W, 0, sizeof W);
}

static int teardown(void **state) {
  world_clear();
  return 0;
}

static souk__gateway_conf_t base_conf(void) {
  souk__gateway_conf_t c = {
      .shard_id = 3,
      .shard_count = 10,
      .token = "MTIzNDU2Nzg5MDEyMzQ1Njc4.GaBcDe.abcdefghijklmnopqrstuvwxyz0123456789AB",
      .gateway_url = "wss://gateway.discord.gg",
      .intents = 33281,
      .compress = true,
      .large_threshold = 100,
      .presence = {.status = "idle", .activity = "the markets", .activity_type = 3},
  };
  return c;
}

static void make(const souk__gateway_conf_t *c) {
  world_clear();
  W.now = 1000000;
  W.rnd = 0.5;
  W.gw = souk__gateway_new(c, &OPS, NULL);
  assert_non_null(W.gw);
}

/* Move the clock forward by ms, firing the timer whenever it is due. */
static void advance(uint64_t ms) {
  uint64_t target = W.now + ms;
  while (W.timer_armed && W.timer_at <= target) {
    W.now = W.timer_at;
    W.timer_armed = false;
    souk__gateway_on_timer(W.gw);
  }
  W.now = target;
}

static void msg(const char *text) { souk__gateway_on_message(W.gw, text, strlen(text)); }

static void hello(uint64_t interval) {
  char b[96];
  snprintf(b, sizeof b,
           "{\"op\":10,\"d\":{\"heartbeat_interval\":%" PRIu64 "},\"s\":null,\"t\":null}",
           interval);
  msg(b);
}

static const char *last_sent(void) { return W.nsent ? W.sent[W.nsent - 1] : ""; }

static int count_op(int op) {
  char pat[16];
  snprintf(pat, sizeof pat, "{\"op\":%d,", op);
  int n = 0;
  for (int i = 0; i < W.nsent; i++)
    if (!strncmp(W.sent[i], pat, strlen(pat))) n++;
  return n;
}

static const char READY[] =
    "{\"t\":\"READY\",\"s\":1,\"op\":0,\"d\":{\"v\":10,\"user\":{\"id\":\"42\",\"username\":"
    "\"souk\"},"
    "\"guilds\":[],\"session_id\":\"sess-abc\",\"resume_gateway_url\":"
    "\"wss://gateway-us-east1-b.discord.gg\",\"shard\":[3,10],\"application\":{\"id\":\"42\"}}}";

/* Start, open, HELLO, IDENTIFY (slot granted at once), READY. */
static void to_ready(uint64_t interval) {
  W.grant_at_once = true;
  souk__gateway_start(W.gw);
  assert_int_equal(W.nconnect, 1);
  souk__gateway_on_open(W.gw);
  hello(interval);
  assert_int_equal(count_op(2), 1);
  msg(READY);
  assert_int_equal(souk__gateway_state(W.gw), SOUK_GW_READY);
}

/* ---- tests -------------------------------------------------------------- */

static void test_url_and_first_heartbeat_jitter(void **state) {
  const double rs[] = {0.0, 0.25, 0.5, 0.999999};
  for (size_t k = 0; k < 4; k++) {
    souk__gateway_conf_t c = base_conf();
    make(&c);
    W.rnd = rs[k];
    souk__gateway_start(W.gw);
    assert_int_equal(W.nconnect, 1);
    assert_string_equal(W.connects[0],
                        "wss://gateway.discord.gg/?v=10&encoding=json&compress=zlib-stream");
    souk__gateway_on_open(W.gw);
    uint64_t t0 = W.now;
    hello(41250);
    assert_true(W.timer_armed);
    /* The first beat is at interval x random, within [0, interval). */
    uint64_t first = W.timer_at - t0;
    assert_true(first < 41250);
    assert_int_equal(first, (uint64_t)(41250 * rs[k]));
    advance(first);
    assert_int_equal(count_op(1), 1);
    assert_string_equal(last_sent(), "{\"op\":1,\"d\":null}");
  }
}

static void test_heartbeat_ack_latency(void **state) {
  souk__gateway_conf_t c = base_conf();
  make(&c);
  W.rnd = 0.1;
  to_ready(40000);
  advance(4000); /* first beat at 4000 */
  assert_int_equal(count_op(1), 1);
  assert_string_equal(last_sent(), "{\"op\":1,\"d\":1}");
  W.now += 50;
  msg("{\"op\":11}");
  souk__gateway_stats_t st;
  souk__gateway_stats(W.gw, &st);
  assert_int_equal(st.latency_last_ms, 50);
  assert_int_equal(st.latency_avg_ms, 50);
  /* Every interval after that, as long as ACKs come. */
  for (int i = 0; i < 5; i++) {
    advance(40000 - (i == 0 ? 50 : 130));
    assert_int_equal(count_op(1), 2 + i);
    W.now += 130; /* the timer is 40 s away: no need to fire it */
    msg("{\"op\":11,\"d\":null}");
  }
  souk__gateway_stats(W.gw, &st);
  assert_int_equal(st.latency_last_ms, 130);
  assert_true(st.latency_avg_ms > 50 && st.latency_avg_ms < 130);
  assert_int_equal(st.zombies, 0);
  assert_int_equal(W.nclose, 0);
}

static void test_zombie_closes_non_1000_and_resumes(void **state) {
  souk__gateway_conf_t c = base_conf();
  make(&c);
  W.rnd = 0;
  to_ready(30000);
  msg("{\"t\":\"GUILD_CREATE\",\"s\":7,\"op\":0,\"d\":{\"id\":\"1\"}}");
  advance(0); /* first beat at once (random 0) */
  assert_int_equal(count_op(1), 1);
  /* No ACK: at the next beat the connection is a zombie. */
  advance(30000);
  assert_int_equal(W.nclose, 1);
  assert_int_not_equal(W.closes[0], 1000);
  assert_int_not_equal(W.closes[0], 1001);
  assert_int_equal(count_op(1), 1); /* no second beat on a zombie */
  souk__gateway_stats_t st;
  souk__gateway_stats(W.gw, &st);
  assert_int_equal(st.zombies, 1);
  /* Once closed: reconnect to the resume URL and RESUME with the last seq. */
  souk__gateway_on_close(W.gw, W.closes[0]);
  assert_int_equal(W.nconnect, 2);
  assert_string_equal(W.connects[1], "wss://gateway-us-east1-b.discord.gg/?v=10&encoding=json&"
                                     "compress=zlib-stream");
  souk__gateway_on_open(W.gw);
  hello(30000);
  souk_json_t j = {0};
  assert_int_equal(souk_json_parse(&j, last_sent(), strlen(last_sent())), 0);
  int64_t op = 0, seq = 0;
  souk_json_i64(&j, souk_json_get(&j, 0, "op"), &op);
  assert_int_equal(op, 6);
  assert_true(souk_json_streq(&j, souk_json_path(&j, 0, "d", "session_id", NULL), "sess-abc"));
  assert_true(souk_json_streq(&j, souk_json_path(&j, 0, "d", "token", NULL), c.token));
  souk_json_i64(&j, souk_json_path(&j, 0, "d", "seq", NULL), &seq);
  assert_int_equal(seq, 7);
  souk_json_free(&j);
  msg("{\"t\":\"RESUMED\",\"s\":8,\"op\":0,\"d\":{}}");
  assert_int_equal(souk__gateway_state(W.gw), SOUK_GW_READY);
  assert_int_equal(W.resumed, 1);
  assert_int_equal(count_op(2), 1); /* never identified again */
}

static void test_identify_payload_and_slot(void **state) {
  souk__gateway_conf_t c = base_conf();
  make(&c);
  souk__gateway_start(W.gw);
  souk__gateway_on_open(W.gw);
  hello(41250);
  /* No IDENTIFY until the shard manager grants a slot. */
  assert_int_equal(W.identify_requests, 1);
  assert_int_equal(count_op(2), 0);
  advance(21000); /* heartbeats go on while waiting */
  assert_int_equal(count_op(1), 1);
  assert_int_equal(count_op(2), 0);
  assert_int_equal(W.identify_requests, 1);
  assert_true(souk__gateway_identify_granted(W.gw));
  assert_int_equal(count_op(2), 1);
  /* A second grant is not used. */
  assert_false(souk__gateway_identify_granted(W.gw));
  assert_int_equal(count_op(2), 1);

  const char *p = last_sent();
  souk_json_t j = {0};
  assert_int_equal(souk_json_parse(&j, p, strlen(p)), 0);
  int64_t v = 0;
  souk_json_i64(&j, souk_json_get(&j, 0, "op"), &v);
  assert_int_equal(v, 2);
  int d = souk_json_get(&j, 0, "d");
  assert_true(souk_json_streq(&j, souk_json_get(&j, d, "token"), c.token));
  souk_json_i64(&j, souk_json_get(&j, d, "intents"), &v);
  assert_int_equal(v, 33281);
  assert_true(souk_json_streq(&j, souk_json_path(&j, d, "properties", "os", NULL), "souk"));
  assert_true(souk_json_streq(&j, souk_json_path(&j, d, "properties", "browser", NULL), "souk"));
  assert_true(souk_json_streq(&j, souk_json_path(&j, d, "properties", "device", NULL), "souk"));
  int shard = souk_json_get(&j, d, "shard");
  assert_int_equal(souk_json_count(&j, shard), 2);
  souk_json_i64(&j, souk_json_at(&j, shard, 0), &v);
  assert_int_equal(v, 3);
  souk_json_i64(&j, souk_json_at(&j, shard, 1), &v);
  assert_int_equal(v, 10);
  bool b = true;
  assert_int_equal(souk_json_bool(&j, souk_json_get(&j, d, "compress"), &b), 0);
  assert_false(b);
  souk_json_i64(&j, souk_json_get(&j, d, "large_threshold"), &v);
  assert_int_equal(v, 100);
  int pr = souk_json_get(&j, d, "presence");
  assert_true(souk_json_streq(&j, souk_json_get(&j, pr, "status"), "idle"));
  assert_int_equal(souk_json_bool(&j, souk_json_get(&j, pr, "afk"), &b), 0);
  int acts = souk_json_get(&j, pr, "activities");
  assert_int_equal(souk_json_count(&j, acts), 1);
  assert_true(
      souk_json_streq(&j, souk_json_get(&j, souk_json_at(&j, acts, 0), "name"), "the markets"));
  souk_json_i64(&j, souk_json_get(&j, souk_json_at(&j, acts, 0), "type"), &v);
  assert_int_equal(v, 3);
  assert_int_equal(souk_json_type(&j, souk_json_get(&j, pr, "since")), SOUK_JSON_NULL);
  souk_json_free(&j);
  souk__gateway_stats_t st;
  souk__gateway_stats(W.gw, &st);
  assert_int_equal(st.identifies, 1);
}

static void test_ready_stores_session_and_seq(void **state) {
  souk__gateway_conf_t c = base_conf();
  c.compress = false;
  make(&c);
  to_ready(41250);
  assert_int_equal(W.ready, 1);
  assert_int_equal(W.nevents, 1);
  assert_string_equal(W.events[0], "READY");
  const char *sid, *rurl;
  uint64_t seq;
  assert_true(souk__gateway_session(W.gw, &sid, &rurl, &seq));
  assert_string_equal(sid, "sess-abc");
  assert_string_equal(rurl, "wss://gateway-us-east1-b.discord.gg");
  assert_int_equal(seq, 1);
  /* Every op 0 moves seq; dispatches go out in order with their seq. */
  msg("{\"t\":\"GUILD_CREATE\",\"s\":2,\"op\":0,\"d\":{\"id\":\"1\"}}");
  msg("{\"t\":\"MESSAGE_CREATE\",\"s\":3,\"op\":0,\"d\":{\"id\":\"2\"}}");
  msg("{\"t\":\"MESSAGE_CREATE\",\"s\":4,\"op\":0,\"d\":{\"id\":\"3\"}}");
  assert_int_equal(W.nevents, 4);
  assert_string_equal(W.events[1], "GUILD_CREATE");
  assert_int_equal(W.event_seq[1], 2);
  assert_string_equal(W.events[3], "MESSAGE_CREATE");
  assert_int_equal(W.event_seq[3], 4);
  assert_int_equal(souk__gateway_event_count(W.gw, "MESSAGE_CREATE"), 2);
  assert_int_equal(souk__gateway_event_count(W.gw, "READY"), 1);
  assert_int_equal(souk__gateway_event_count(W.gw, "TYPING_START"), 0);
  souk__gateway_session(W.gw, NULL, NULL, &seq);
  assert_int_equal(seq, 4);
  souk__gateway_stats_t st;
  souk__gateway_stats(W.gw, &st);
  assert_int_equal(st.events, 4);
  assert_int_equal(st.seq, 4);
  /* A resume URL gets the query without compress when it is off. */
  souk__gateway_reconnect(W.gw);
  souk__gateway_on_close(W.gw, 4000);
  assert_string_equal(W.connects[W.nconnect - 1],
                      "wss://gateway-us-east1-b.discord.gg/?v=10&encoding=json");
}

/* Event names come from the server: a server that invents a new one per
 * dispatch must not grow the per-name counts without end. */
static void count_names(void *ud, const char *name, uint64_t n) {
  uint64_t *tot = ud;
  tot[0]++;
  tot[1] += n;
}

static void test_event_names_bounded(void **state) {
  souk__gateway_conf_t c = base_conf();
  make(&c);
  to_ready(41250);
  char b[128];
  for (int i = 0; i < 1000; i++) {
    snprintf(b, sizeof b, "{\"t\":\"MADE_UP_%d\",\"s\":%d,\"op\":0,\"d\":{}}", i, i + 2);
    msg(b);
  }
  msg("{\"t\":\"MADE_UP_0\",\"s\":2000,\"op\":0,\"d\":{}}");
  uint64_t tot[2] = {0, 0};
  souk__gateway_event_counts(W.gw, count_names, tot);
  /* 128 names apart (READY is one), the rest together under "other";
   * nothing lost from the total. */
  assert_int_equal(tot[0], 129);
  assert_int_equal(tot[1], 1002);
  assert_int_equal(souk__gateway_event_count(W.gw, "READY"), 1);
  assert_int_equal(souk__gateway_event_count(W.gw, "MADE_UP_0"), 2);
  assert_int_equal(souk__gateway_event_count(W.gw, "MADE_UP_126"), 1);
  assert_int_equal(souk__gateway_event_count(W.gw, "MADE_UP_127"), 0);
  assert_int_equal(souk__gateway_event_count(W.gw, "other"), 1000 - 127);
  /* Every dispatch still reached the owner. */
  assert_int_equal(W.nevents, 1002);
}

static void resume_after(void (*trigger)(void)) {
  souk__gateway_conf_t c = base_conf();
  make(&c);
  to_ready(41250);
  msg("{\"t\":\"MESSAGE_CREATE\",\"s\":9,\"op\":0,\"d\":{\"id\":\"2\"}}");
  trigger();
  assert_int_equal(W.nclose, 1);
  assert_int_equal(W.closes[0], SOUK_GATEWAY_CLOSE_RECONNECT);
  souk__gateway_on_close(W.gw, W.closes[0]);
  advance(1000);
  assert_int_equal(W.nconnect, 2);
  assert_true(!strncmp(W.connects[1], "wss://gateway-us-east1-b.discord.gg/?", 37));
  souk__gateway_on_open(W.gw);
  hello(41250);
  assert_int_equal(count_op(6), 1);
  assert_non_null(strstr(last_sent(), "\"seq\":9"));
  assert_non_null(strstr(last_sent(), "\"session_id\":\"sess-abc\""));
  assert_int_equal(count_op(2), 1);
}

static void trig_op7(void) { msg("{\"op\":7,\"d\":null}"); }
static void trig_op9_true(void) { msg("{\"op\":9,\"d\":true}"); }

static void test_op7_resumes(void **state) { resume_after(trig_op7); }
static void test_op9_true_resumes(void **state) { resume_after(trig_op9_true); }

static void test_op9_false_waits_then_identifies(void **state) {
  const double rs[] = {0.0, 0.999999, 0.5};
  for (size_t k = 0; k < 3; k++) {
    souk__gateway_conf_t c = base_conf();
    make(&c);
    to_ready(41250);
    W.grant_at_once = false;
    W.rnd = rs[k];
    uint64_t t0 = W.now;
    int req0 = W.identify_requests;
    msg("{\"op\":9,\"d\":false}");
    /* Same connection, no close; session forgotten. */
    assert_int_equal(W.nclose, 0);
    assert_false(souk__gateway_session(W.gw, NULL, NULL, NULL));
    assert_true(W.timer_armed);
    uint64_t delay = W.timer_at - t0;
    assert_true(delay >= 1000 && delay <= 5000);
    advance(delay - 1);
    assert_int_equal(W.identify_requests, req0);
    advance(1);
    assert_int_equal(W.identify_requests, req0 + 1);
    assert_int_equal(count_op(2), 1);
    assert_true(souk__gateway_identify_granted(W.gw));
    assert_int_equal(count_op(2), 2);
    assert_int_equal(count_op(6), 0);
  }
}

static void test_fatal_codes_never_reconnect(void **state) {
  const int codes[] = {4004, 4010, 4011, 4012, 4013, 4014};
  for (size_t k = 0; k < 6; k++) {
    souk__gateway_conf_t c = base_conf();
    make(&c);
    to_ready(41250);
    souk__gateway_on_close(W.gw, codes[k]);
    assert_int_equal(W.nfatal, 1);
    assert_int_equal(W.fatal_code, codes[k]);
    char num[8];
    snprintf(num, sizeof num, "%d", codes[k]);
    assert_non_null(strstr(W.fatal_msg, num));
    assert_int_equal(souk__gateway_state(W.gw), SOUK_GW_FATAL);
    advance(3600 * 1000);
    assert_int_equal(W.nconnect, 1);
    assert_int_equal(souk__gateway_send(W.gw, "{\"op\":3}", 8), SOUK_ESTOPPED);
  }
  /* The message for disallowed intents says what to do. */
  assert_non_null(strstr(souk__gateway_fatal_reason(4014), "Developer Portal"));
  assert_non_null(strstr(souk__gateway_fatal_reason(4014), "discord.intents"));
  assert_null(souk__gateway_fatal_reason(4000));
  /* Also fatal before the session was ever ready. */
  souk__gateway_conf_t c = base_conf();
  make(&c);
  souk__gateway_start(W.gw);
  souk__gateway_on_open(W.gw);
  hello(41250);
  souk__gateway_identify_granted(W.gw);
  souk__gateway_on_close(W.gw, 4004);
  assert_int_equal(W.nfatal, 1);
  advance(3600 * 1000);
  assert_int_equal(W.nconnect, 1);
}

static void test_4007_4009_reidentify(void **state) {
  const int codes[] = {4007, 4009};
  for (size_t k = 0; k < 2; k++) {
    souk__gateway_conf_t c = base_conf();
    make(&c);
    to_ready(41250);
    souk__gateway_on_close(W.gw, codes[k]);
    assert_false(souk__gateway_session(W.gw, NULL, NULL, NULL));
    advance(1000);
    assert_int_equal(W.nconnect, 2);
    /* Back to the main gateway, not the resume URL. */
    assert_true(!strncmp(W.connects[1], "wss://gateway.discord.gg/?", 26));
    souk__gateway_on_open(W.gw);
    hello(41250);
    assert_int_equal(count_op(6), 0);
    assert_int_equal(count_op(2), 2);
    assert_int_equal(W.nfatal, 0);
  }
}

static void test_other_codes_resume(void **state) {
  const int codes[] = {1000, 1001, 1006, 1011, 4000, 4001, 4002, 4003, 4005, 4008};
  for (size_t k = 0; k < sizeof codes / sizeof codes[0]; k++) {
    souk__gateway_conf_t c = base_conf();
    make(&c);
    to_ready(41250);
    souk__gateway_on_close(W.gw, codes[k]);
    /* A healthy connection that ended reconnects at once, with no wait. */
    assert_int_equal(souk__gateway_state(W.gw), SOUK_GW_CONNECTING);
    assert_int_equal(W.nconnect, 2);
    assert_true(!strncmp(W.connects[1], "wss://gateway-us-east1-b.discord.gg/?", 37));
    souk__gateway_on_open(W.gw);
    hello(41250);
    assert_int_equal(count_op(6), 1);
    assert_int_equal(count_op(2), 1);
    assert_int_equal(W.nfatal, 0);
    /* The client itself never closed, least of all with 1000/1001. */
    assert_int_equal(W.nclose, 0);
  }
}

static void test_backoff_grows_with_jitter(void **state) {
  souk__gateway_conf_t c = base_conf();
  make(&c);
  W.rnd = 0.999999;
  souk__gateway_start(W.gw);
  uint64_t prev = 0;
  for (int i = 1; i <= 10; i++) {
    souk__gateway_on_close(W.gw, 1006); /* connect failed */
    assert_int_equal(souk__gateway_state(W.gw), SOUK_GW_BACKOFF);
    uint64_t delay = W.timer_at - W.now;
    uint64_t base = (1000ull << (i - 1 > 6 ? 6 : i - 1));
    if (base > 60000) base = 60000;
    assert_true(delay >= base / 2 && delay <= base);
    assert_true(delay >= prev || base == 60000);
    prev = delay;
    advance(delay);
    assert_int_equal(W.nconnect, i + 1);
  }
  assert_true(prev <= 60000);
  /* Jitter: with random 0 the delay is half the base. */
  W.rnd = 0;
  souk__gateway_on_close(W.gw, 1006);
  assert_int_equal(W.timer_at - W.now, 30000);
  advance(30000);
  /* READY resets the backoff. */
  W.grant_at_once = true;
  souk__gateway_on_open(W.gw);
  hello(41250);
  msg(READY);
  int before = W.nconnect;
  souk__gateway_on_close(W.gw, 1006);
  assert_int_equal(W.nconnect, before + 1);
  assert_int_equal(souk__gateway_state(W.gw), SOUK_GW_CONNECTING);
}

/* Resumable faults (a drop, an unrequested close, op 7) resume at once; a
 * server that ends every session right away spends the budget of
 * immediate reconnects and is then met with a wait, refilled over time. */
static void test_reconnect_at_once_within_budget(void **state) {
  souk__gateway_conf_t c = base_conf();
  make(&c);
  to_ready(41250);
  for (int i = 0; i < 10; i++) {
    int before = W.nconnect;
    if (i % 3 == 2) {
      /* op 7: we close, then reconnect the moment the close completes. */
      msg("{\"op\":7,\"d\":null,\"s\":null,\"t\":null}");
      souk__gateway_on_close(W.gw, SOUK_GATEWAY_CLOSE_RECONNECT);
    } else {
      souk__gateway_on_close(W.gw, i % 3 ? 4000 : 1006);
    }
    assert_int_equal(W.nconnect, before + 1);
    assert_true(!strncmp(W.connects[W.nconnect - 1], "wss://gateway-us-east1-b.discord.gg/?", 37));
    souk__gateway_on_open(W.gw);
    hello(41250);
    msg("{\"t\":\"RESUMED\",\"s\":2,\"op\":0,\"d\":{}}");
    assert_int_equal(souk__gateway_state(W.gw), SOUK_GW_READY);
  }
  /* The eleventh in a row waits half a second to a second. */
  int before = W.nconnect;
  souk__gateway_on_close(W.gw, 1006);
  assert_int_equal(souk__gateway_state(W.gw), SOUK_GW_BACKOFF);
  assert_int_equal(W.nconnect, before);
  assert_true(W.timer_at - W.now >= 500 && W.timer_at - W.now <= 1000);
  advance(1000);
  assert_int_equal(W.nconnect, before + 1);
  souk__gateway_on_open(W.gw);
  hello(41250);
  msg("{\"t\":\"RESUMED\",\"s\":3,\"op\":0,\"d\":{}}");
  /* Six seconds later one more immediate reconnect is allowed. */
  advance(6000);
  before = W.nconnect;
  souk__gateway_on_close(W.gw, 1006);
  assert_int_equal(W.nconnect, before + 1);
  assert_int_equal(count_op(2), 1); /* never re-identified */
}

/* While the gateway cannot be reached the failures are logged once, then
 * once a minute, whatever the number of attempts in between. */
static void test_outage_logged_once_a_minute(void **state) {
  souk__gateway_conf_t c = base_conf();
  make(&c);
  log_reset();
  souk_log_set_level(SOUK_LOG_INFO);
  souk__gateway_start(W.gw);
  for (int i = 0; i < 30; i++) {
    souk__gateway_on_close_reason(W.gw, 1006, "connect failed: Connection refused");
    assert_int_equal(souk__gateway_state(W.gw), SOUK_GW_BACKOFF);
    /* Capped backoff: never more than a minute apart. */
    assert_true(W.timer_at - W.now <= 60000);
    advance(W.timer_at - W.now);
  }
  /* 30 attempts take about 20 minutes; 30 failures: one line when the
   * outage began, then one per minute at most. */
  uint64_t minutes = (W.now - 1000000) / 60000;
  int first = log_count("gateway connection failed before the session was ready");
  int later = log_count("gateway still unreachable");
  if (first != 1 || later < 1) log_dump();
  assert_int_equal(first, 1);
  assert_true(later >= 1 && (uint64_t)later <= minutes);
  assert_int_equal(log_count("Connection refused"), first + later);
  assert_int_equal(log_count("level=warn"), first + later);
  assert_int_equal(log_count("reconnecting in"), 1); /* after the first failure only */
  /* Back: one line says so. */
  W.grant_at_once = true;
  souk__gateway_on_open(W.gw);
  hello(41250);
  msg(READY);
  assert_int_equal(log_count("connected again after 30 failed attempts"), 1);
  souk_log_set_level(SOUK_LOG_ERROR);
}

static void test_send_limit_with_heartbeat_room(void **state) {
  souk__gateway_conf_t c = base_conf();
  make(&c);
  W.rnd = 0.5;
  to_ready(41250);
  int base = W.nsent; /* the IDENTIFY */
  for (int i = 0; i < 300; i++) {
    char p[64];
    int n = snprintf(p, sizeof p, "{\"op\":8,\"d\":{\"guild_id\":\"%d\"}}", i);
    assert_int_equal(souk__gateway_send(W.gw, p, (size_t)n), 0);
  }
  /* Identify counted: 110 non-heartbeat payloads per 60 s in all. */
  assert_int_equal(W.nsent - base, 109);
  souk__gateway_stats_t st;
  souk__gateway_stats(W.gw, &st);
  assert_int_equal(st.queued, 300 - 109);
  /* Heartbeats still go out while the queue is held back. */
  advance(20625);
  assert_int_equal(count_op(1), 1);
  msg("{\"op\":11}");
  /* Over 5 minutes, check every 60 s window of sends. */
  for (int i = 0; i < 300; i++) {
    int hb = count_op(1);
    advance(1000);
    if (count_op(1) > hb) msg("{\"op\":11}");
  }
  assert_int_equal(count_op(8), 300);
  for (int i = 0; i < W.nsent; i++) {
    int in_window = 0, user = 0;
    for (int k = i; k < W.nsent && W.sent_at[k] < W.sent_at[i] + 60000; k++) {
      in_window++;
      if (strncmp(W.sent[k], "{\"op\":1,", 8)) user++;
    }
    assert_true(in_window <= 120);
    assert_true(user <= 110);
  }
  /* Payload order is kept. */
  int next = 0;
  for (int i = 0; i < W.nsent; i++) {
    if (strncmp(W.sent[i], "{\"op\":8,", 8)) continue;
    char want[64];
    snprintf(want, sizeof want, "{\"op\":8,\"d\":{\"guild_id\":\"%d\"}}", next++);
    assert_string_equal(W.sent[i], want);
  }
}

static void test_payload_size_limit(void **state) {
  souk__gateway_conf_t c = base_conf();
  make(&c);
  to_ready(41250);
  char *big = souk_malloc(5000);
  memset(big, ' ', 5000);
  big[0] = '{';
  memcpy(big + 1, "\"op\":8", 6);
  big[4096] = '}';
  int before = W.nsent;
  assert_int_equal(souk__gateway_send(W.gw, big, 4097), SOUK_ETOOBIG);
  assert_int_equal(W.nsent, before);
  big[4095] = '}';
  assert_int_equal(souk__gateway_send(W.gw, big, 4096), 0);
  assert_int_equal(W.nsent, before + 1);
  assert_int_equal(strlen(last_sent()), 4096);
  souk_free(big);
  /* A presence with a huge activity text is refused, not truncated. */
  char *act = souk_malloc(5000);
  memset(act, 'a', 4999);
  act[4999] = '\0';
  souk__presence_t p = {.status = "dnd", .activity = act};
  assert_int_equal(souk__gateway_set_presence(W.gw, &p), SOUK_ETOOBIG);
  souk_free(act);
}

static void test_op1_heartbeat_now(void **state) {
  souk__gateway_conf_t c = base_conf();
  make(&c);
  W.rnd = 0.9;
  to_ready(41250);
  assert_int_equal(count_op(1), 0);
  msg("{\"op\":1,\"d\":null}");
  assert_int_equal(count_op(1), 1);
  assert_string_equal(last_sent(), "{\"op\":1,\"d\":1}");
}

static void test_hello_timeout(void **state) {
  souk__gateway_conf_t c = base_conf();
  make(&c);
  souk__gateway_start(W.gw);
  souk__gateway_on_open(W.gw);
  advance(20000);
  assert_int_equal(W.nclose, 1);
  assert_int_equal(W.closes[0], SOUK_GATEWAY_CLOSE_RECONNECT);
  souk__gateway_on_close(W.gw, 4000);
  assert_int_equal(souk__gateway_state(W.gw), SOUK_GW_BACKOFF);
  advance(60000);
  assert_int_equal(W.nconnect, 2);
}

/* A server that breaks every connection before READY in a way that makes
 * souk close it (here a malformed payload right after the IDENTIFY) is
 * met with the same growing backoff as one that closes the connection
 * itself: not an immediate reconnect, and not a reconnect and an IDENTIFY
 * every second, which would spend Discord's 1000 IDENTIFYs a day in
 * minutes and get the token reset. */
static void test_failing_before_ready_backs_off(void **state) {
  souk__gateway_conf_t c = base_conf();
  make(&c);
  W.rnd = 0.999999;
  W.grant_at_once = true;
  souk__gateway_start(W.gw);
  uint64_t start = W.now, prev = 0;
  for (int i = 1; i <= 40; i++) {
    assert_int_equal(souk__gateway_state(W.gw), SOUK_GW_CONNECTING);
    souk__gateway_on_open(W.gw);
    hello(41250);
    assert_int_equal(count_op(2), i);
    msg("{\"op\":0,\"t\":");
    assert_int_equal(W.nclose, i);
    souk__gateway_on_close(W.gw, W.closes[i - 1]);
    assert_int_equal(souk__gateway_state(W.gw), SOUK_GW_BACKOFF);
    uint64_t delay = W.timer_at - W.now;
    uint64_t base = 1000ull << (i - 1 > 6 ? 6 : i - 1);
    if (base > 60000) base = 60000;
    assert_true(delay >= base / 2 && delay <= base);
    assert_true(delay >= prev);
    prev = delay;
    advance(delay);
  }
  /* 40 IDENTIFYs took over half an hour: about one a minute once the
   * backoff is at its cap. */
  assert_true(W.now - start >= 30 * 60000);
  /* READY ends the run of failures: the next drop resumes at once. */
  souk__gateway_on_open(W.gw);
  hello(41250);
  msg(READY);
  int before = W.nconnect;
  souk__gateway_on_close(W.gw, 4000);
  assert_int_equal(W.nconnect, before + 1);
}

static void test_stop(void **state) {
  /* 1000 ends the session. */
  souk__gateway_conf_t c = base_conf();
  make(&c);
  to_ready(41250);
  souk__gateway_stop(W.gw, 1000);
  assert_int_equal(W.nclose, 1);
  assert_int_equal(W.closes[0], 1000);
  assert_int_equal(W.stopped, 0);
  souk__gateway_on_close(W.gw, 1000);
  assert_int_equal(W.stopped, 1);
  assert_int_equal(souk__gateway_state(W.gw), SOUK_GW_STOPPED);
  assert_false(souk__gateway_session(W.gw, NULL, NULL, NULL));
  advance(3600 * 1000);
  assert_int_equal(W.nconnect, 1);
  assert_int_equal(souk__gateway_send(W.gw, "{\"op\":3}", 8), SOUK_ESTOPPED);

  /* 4000 keeps it resumable (a restart). */
  make(&c);
  to_ready(41250);
  souk__gateway_stop(W.gw, 4000);
  assert_int_equal(W.closes[0], 4000);
  souk__gateway_on_close(W.gw, 4000);
  assert_int_equal(W.stopped, 1);
  const char *sid;
  assert_true(souk__gateway_session(W.gw, &sid, NULL, NULL));
  assert_string_equal(sid, "sess-abc");

  /* Stop while waiting to reconnect (after a failed connection): at once,
   * no close needed. */
  make(&c);
  to_ready(41250);
  souk__gateway_on_close(W.gw, 1006);
  assert_int_equal(W.nconnect, 2);
  souk__gateway_on_close(W.gw, 1006);
  assert_int_equal(souk__gateway_state(W.gw), SOUK_GW_BACKOFF);
  souk__gateway_stop(W.gw, 1000);
  assert_int_equal(W.stopped, 1);
  assert_int_equal(W.nclose, 0);
  advance(3600 * 1000);
  assert_int_equal(W.nconnect, 2);

  /* Stop while our own reconnect close is in flight. */
  make(&c);
  to_ready(41250);
  souk__gateway_reconnect(W.gw);
  souk__gateway_stop(W.gw, 1000);
  souk__gateway_on_close(W.gw, 4000);
  assert_int_equal(W.stopped, 1);
  advance(3600 * 1000);
  assert_int_equal(W.nconnect, 1);
}

/* A resume URL that cannot be reached is not tried for ever: after three
 * resumes in a row fail, the session is given up and the shard identifies
 * anew through the gateway URL. */
static void test_unreachable_resume_url_abandoned(void **state) {
  souk__gateway_conf_t c = base_conf();
  make(&c);
  to_ready(41250);
  souk__gateway_on_close(W.gw, 4000); /* resumable: reconnect at once */
  for (int i = 0; i < 3; i++) {
    assert_true(!strncmp(W.connects[W.nconnect - 1], "wss://gateway-us-east1-b.discord.gg/", 36));
    souk__gateway_on_close_reason(W.gw, 1006, "connect failed: connection refused");
    if (i < 2) assert_true(souk__gateway_session(W.gw, NULL, NULL, NULL));
    advance(120000);
  }
  assert_false(souk__gateway_session(W.gw, NULL, NULL, NULL));
  assert_int_equal(W.nconnect, 5);
  assert_true(!strncmp(W.connects[4], "wss://gateway.discord.gg/?", 26));
  souk__gateway_on_open(W.gw);
  hello(41250);
  assert_int_equal(count_op(6), 0);
  assert_int_equal(count_op(2), 2);

  /* A resume that fails after the connection opened (no RESUMED, the
   * server closes) counts too; one that succeeds starts the count again. */
  make(&c);
  to_ready(41250);
  souk__gateway_on_close(W.gw, 4000);
  for (int i = 0; i < 2; i++) {
    souk__gateway_on_open(W.gw);
    hello(41250);
    assert_int_equal(souk__gateway_state(W.gw), SOUK_GW_RESUMING);
    souk__gateway_on_close(W.gw, 4000);
    advance(120000);
  }
  souk__gateway_on_open(W.gw);
  hello(41250);
  msg("{\"t\":\"RESUMED\",\"s\":5,\"op\":0,\"d\":{}}");
  assert_int_equal(souk__gateway_state(W.gw), SOUK_GW_READY);
  souk__gateway_on_close(W.gw, 4000);
  for (int i = 0; i < 3; i++) {
    assert_true(souk__gateway_session(W.gw, NULL, NULL, NULL));
    souk__gateway_on_open(W.gw);
    hello(41250);
    assert_int_equal(souk__gateway_state(W.gw), SOUK_GW_RESUMING);
    souk__gateway_on_close(W.gw, 4000);
    advance(120000);
  }
  assert_false(souk__gateway_session(W.gw, NULL, NULL, NULL));
  souk__gateway_on_open(W.gw);
  hello(41250);
  assert_int_equal(count_op(2), 2);
  assert_int_equal(count_op(6), 6);

  /* A resume_gateway_url souk cannot use is not used: resumes go through
   * the gateway URL. */
  make(&c);
  W.grant_at_once = true;
  souk__gateway_start(W.gw);
  souk__gateway_on_open(W.gw);
  hello(41250);
  msg("{\"t\":\"READY\",\"s\":1,\"op\":0,\"d\":{\"session_id\":\"s1\",\"resume_gateway_url\":"
      "\"http://nope example\"}}");
  assert_int_equal(souk__gateway_state(W.gw), SOUK_GW_READY);
  souk__gateway_on_close(W.gw, 4000);
  assert_true(!strncmp(W.connects[W.nconnect - 1], "wss://gateway.discord.gg/?", 26));
  souk__gateway_on_open(W.gw);
  hello(41250);
  assert_int_equal(count_op(6), 1);
}

/* An identify slot that comes while the daily budget is spent: no
 * IDENTIFY, the connection closes, and the session connects again when the
 * budget allows, with no failure counted (no backoff, no outage report). */
static void test_identify_deferred(void **state) {
  souk__gateway_conf_t c = base_conf();
  make(&c);
  souk__gateway_start(W.gw);
  souk__gateway_on_open(W.gw);
  hello(41250);
  assert_int_equal(W.identify_requests, 1);
  assert_int_equal(souk__gateway_state(W.gw), SOUK_GW_IDENTIFY_WAIT);
  souk__gateway_identify_deferred(W.gw, 3600000);
  assert_int_equal(count_op(2), 0);
  assert_int_equal(W.nclose, 1);
  assert_int_equal(W.closes[0], SOUK_GATEWAY_CLOSE_RECONNECT);
  souk__gateway_on_close(W.gw, W.closes[0]);
  assert_int_equal(souk__gateway_state(W.gw), SOUK_GW_BACKOFF);
  advance(3599000);
  assert_int_equal(W.nconnect, 1);
  advance(2000);
  assert_int_equal(W.nconnect, 2);
  souk__gateway_on_open(W.gw);
  hello(41250);
  assert_int_equal(W.identify_requests, 2);
  assert_true(souk__gateway_identify_granted(W.gw));
  assert_int_equal(count_op(2), 1);
  msg(READY);
  souk__gateway_stats_t st;
  souk__gateway_stats(W.gw, &st);
  assert_int_equal(st.identify_deferred, 1);
  assert_int_equal(st.identifies, 1);
  /* A deferral that comes when no slot was waited for does nothing. */
  souk__gateway_identify_deferred(W.gw, 1000);
  assert_int_equal(souk__gateway_state(W.gw), SOUK_GW_READY);
  assert_int_equal(W.nclose, 1);

  /* op 9 d:false again and again: each IDENTIFY waits for its slot, and a
   * deferred one waits for the budget, not 1-5 s. */
  msg("{\"op\":9,\"d\":false}");
  advance(5000);
  assert_int_equal(W.identify_requests, 3);
  souk__gateway_identify_deferred(W.gw, 600000);
  souk__gateway_on_close(W.gw, SOUK_GATEWAY_CLOSE_RECONNECT);
  advance(599000);
  assert_int_equal(W.nconnect, 2);
  advance(2000);
  assert_int_equal(W.nconnect, 3);
}

static void test_saved_session_resumes_first(void **state) {
  souk__gateway_conf_t c = base_conf();
  c.session_id = "old-session";
  c.resume_url = "wss://resume.example";
  c.seq = 1234;
  make(&c);
  souk__gateway_start(W.gw);
  assert_string_equal(W.connects[0],
                      "wss://resume.example/?v=10&encoding=json&compress=zlib-stream");
  souk__gateway_on_open(W.gw);
  hello(41250);
  assert_int_equal(count_op(6), 1);
  assert_non_null(strstr(last_sent(), "\"seq\":1234"));
  assert_int_equal(W.identify_requests, 0);
  /* Discord does not know it: op 9 false, then a fresh IDENTIFY. */
  W.rnd = 0;
  msg("{\"op\":9,\"d\":false}");
  advance(1000);
  assert_int_equal(W.identify_requests, 1);
}

/* A session handed on by another process, given after the session was
 * made (discord/handoff.h): resumed the same way; refused once started. */
static void test_session_set_before_start(void **state) {
  souk__gateway_conf_t c = base_conf();
  make(&c);
  assert_true(souk__gateway_set_session(W.gw, "handed-on", "wss://resume.example", 77));
  assert_true(souk__gateway_session(W.gw, NULL, NULL, NULL));
  souk__gateway_start(W.gw);
  assert_string_equal(W.connects[0],
                      "wss://resume.example/?v=10&encoding=json&compress=zlib-stream");
  assert_false(souk__gateway_set_session(W.gw, "other", "wss://x", 1));
  souk__gateway_on_open(W.gw);
  hello(41250);
  assert_int_equal(count_op(6), 1);
  assert_non_null(strstr(last_sent(), "\"session_id\":\"handed-on\""));
  assert_non_null(strstr(last_sent(), "\"seq\":77"));
  assert_int_equal(W.identify_requests, 0);
  /* A presence set meanwhile waits for the session; once resumed, this
   * process's presence replaces the previous process's, once. */
  souk__presence_t p = {"idle", "handed over", 3};
  assert_int_equal(souk__gateway_set_presence(W.gw, &p), 0);
  msg("{\"op\":0,\"t\":\"MESSAGE_CREATE\",\"s\":78,\"d\":{}}");
  assert_int_equal(count_op(3), 0);
  msg("{\"op\":0,\"t\":\"RESUMED\",\"s\":79,\"d\":{}}");
  assert_int_equal(count_op(3), 1);
  assert_non_null(strstr(last_sent(), "\"name\":\"handed over\""));
  assert_non_null(strstr(last_sent(), "\"status\":\"idle\""));
  int n = count_op(3);
  msg("{\"op\":7,\"d\":null}");
  souk__gateway_on_close(W.gw, 4000);
  souk__gateway_on_open(W.gw);
  hello(41250);
  msg("{\"op\":0,\"t\":\"RESUMED\",\"s\":80,\"d\":{}}");
  assert_int_equal(count_op(3), n);
}

/* Nothing set meanwhile: the resumed session still sends this process's
 * presence (the one of its configuration), once. */
static void test_session_handed_on_sends_own_presence(void **state) {
  souk__gateway_conf_t c = base_conf();
  c.presence.activity = "from my file";
  make(&c);
  assert_true(souk__gateway_set_session(W.gw, "handed-on", "wss://resume.example", 5));
  souk__gateway_start(W.gw);
  souk__gateway_on_open(W.gw);
  hello(41250);
  msg("{\"op\":0,\"t\":\"RESUMED\",\"s\":6,\"d\":{}}");
  assert_int_equal(count_op(3), 1);
  assert_non_null(strstr(last_sent(), "\"name\":\"from my file\""));
}

/* No session handed on: set_session(NULL) leaves none, and the session
 * identifies. */
static void test_session_set_none_identifies(void **state) {
  souk__gateway_conf_t c = base_conf();
  make(&c);
  assert_true(souk__gateway_set_session(W.gw, NULL, NULL, 0));
  assert_false(souk__gateway_session(W.gw, NULL, NULL, NULL));
  souk__gateway_start(W.gw);
  souk__gateway_on_open(W.gw);
  hello(41250);
  assert_int_equal(count_op(6), 0);
  assert_int_equal(W.identify_requests, 1);
}

static void test_presence_update(void **state) {
  souk__gateway_conf_t c = base_conf();
  make(&c);
  to_ready(41250);
  souk__presence_t p = {.status = "dnd", .activity = "prices", .activity_type = 0};
  assert_int_equal(souk__gateway_set_presence(W.gw, &p), 0);
  const char *s = last_sent();
  souk_json_t j = {0};
  assert_int_equal(souk_json_parse(&j, s, strlen(s)), 0);
  int64_t op = 0;
  souk_json_i64(&j, souk_json_get(&j, 0, "op"), &op);
  assert_int_equal(op, 3);
  assert_true(souk_json_streq(&j, souk_json_path(&j, 0, "d", "status", NULL), "dnd"));
  int a = souk_json_path(&j, 0, "d", "activities", NULL);
  assert_true(souk_json_streq(&j, souk_json_get(&j, souk_json_at(&j, a, 0), "name"), "prices"));
  souk_json_free(&j);
  /* Before any session, the next IDENTIFY carries it instead. */
  make(&c);
  p.activity = NULL;
  assert_int_equal(souk__gateway_set_presence(W.gw, &p), 0);
  assert_int_equal(W.nsent, 0);
  to_ready(41250);
  assert_non_null(strstr(W.sent[0], "\"status\":\"dnd\""));
  assert_non_null(strstr(W.sent[0], "\"activities\":[]"));
}

static void test_send_from_dispatch_and_before_ready(void **state) {
  souk__gateway_conf_t c = base_conf();
  make(&c);
  /* Queued before READY, sent after it, after the IDENTIFY. */
  assert_int_equal(souk__gateway_send(W.gw, "{\"op\":8,\"d\":{\"q\":1}}", 20), 0);
  to_ready(41250);
  assert_int_equal(W.nsent, 2);
  assert_string_equal(W.sent[1], "{\"op\":8,\"d\":{\"q\":1}}");
  W.send_from_dispatch = 2;
  msg("{\"t\":\"GUILD_CREATE\",\"s\":2,\"op\":0,\"d\":{\"id\":\"1\"}}");
  assert_int_equal(W.nsent, 4);
}

static void test_malformed_payload_reconnects(void **state) {
  souk__gateway_conf_t c = base_conf();
  make(&c);
  to_ready(41250);
  msg("{\"op\":0,\"t\":");
  assert_int_equal(W.nclose, 1);
  assert_int_equal(W.closes[0], SOUK_GATEWAY_CLOSE_RECONNECT);
  souk__gateway_on_close(W.gw, 4000);
  assert_int_equal(W.nconnect, 2);
  /* Unknown ops are ignored. */
  souk__gateway_on_open(W.gw);
  msg("{\"op\":42,\"d\":null}");
  assert_int_equal(W.nclose, 1);
}

static void test_huge_payload_then_small(void **state) {
  souk__gateway_conf_t c = base_conf();
  make(&c);
  to_ready(41250);
  /* A GUILD_CREATE with 30000 members: many tokens, released afterwards. */
  souk_buf_t b = {0};
  souk_buf_puts(&b, "{\"t\":\"GUILD_CREATE\",\"s\":2,\"op\":0,\"d\":{\"members\":[");
  for (int i = 0; i < 30000; i++)
    souk_buf_printf(&b, "%s{\"id\":\"%d\"}", i ? "," : "", i);
  souk_buf_puts(&b, "]}}");
  souk__gateway_on_message(W.gw, b.data, b.len);
  souk_buf_free(&b);
  msg("{\"t\":\"MESSAGE_CREATE\",\"s\":3,\"op\":0,\"d\":{\"id\":\"1\"}}");
  assert_int_equal(W.nevents, 3);
  assert_string_equal(W.events[1], "GUILD_CREATE");
  assert_string_equal(W.events[2], "MESSAGE_CREATE");
  souk__gateway_stats_t st;
  souk__gateway_stats(W.gw, &st);
  assert_int_equal(st.seq, 3);
  assert_true(st.bytes_in > 30000 * 10);
}

static void test_new_rejects_bad_conf(void **state) {
  souk__gateway_conf_t c = base_conf();
  c.token = NULL;
  assert_null(souk__gateway_new(&c, &OPS, NULL));
  c = base_conf();
  c.gateway_url = "";
  assert_null(souk__gateway_new(&c, &OPS, NULL));
  souk__gateway_ops_t o = OPS;
  o.rand01 = NULL;
  c = base_conf();
  assert_null(souk__gateway_new(&c, &o, NULL));
  assert_string_equal(souk__gw_state_name(SOUK_GW_READY), "ready");
}

int main(void) {
  souk_log_set_level(SOUK_LOG_ERROR);
  if (logcap_open() != 0) return 1;
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_teardown(test_url_and_first_heartbeat_jitter, teardown),
      cmocka_unit_test_teardown(test_heartbeat_ack_latency, teardown),
      cmocka_unit_test_teardown(test_zombie_closes_non_1000_and_resumes, teardown),
      cmocka_unit_test_teardown(test_identify_payload_and_slot, teardown),
      cmocka_unit_test_teardown(test_ready_stores_session_and_seq, teardown),
      cmocka_unit_test_teardown(test_event_names_bounded, teardown),
      cmocka_unit_test_teardown(test_op7_resumes, teardown),
      cmocka_unit_test_teardown(test_op9_true_resumes, teardown),
      cmocka_unit_test_teardown(test_op9_false_waits_then_identifies, teardown),
      cmocka_unit_test_teardown(test_fatal_codes_never_reconnect, teardown),
      cmocka_unit_test_teardown(test_4007_4009_reidentify, teardown),
      cmocka_unit_test_teardown(test_other_codes_resume, teardown),
      cmocka_unit_test_teardown(test_backoff_grows_with_jitter, teardown),
      cmocka_unit_test_teardown(test_reconnect_at_once_within_budget, teardown),
      cmocka_unit_test_teardown(test_outage_logged_once_a_minute, teardown),
      cmocka_unit_test_teardown(test_send_limit_with_heartbeat_room, teardown),
      cmocka_unit_test_teardown(test_payload_size_limit, teardown),
      cmocka_unit_test_teardown(test_op1_heartbeat_now, teardown),
      cmocka_unit_test_teardown(test_hello_timeout, teardown),
      cmocka_unit_test_teardown(test_failing_before_ready_backs_off, teardown),
      cmocka_unit_test_teardown(test_stop, teardown),
      cmocka_unit_test_teardown(test_saved_session_resumes_first, teardown),
      cmocka_unit_test_teardown(test_identify_deferred, teardown),
      cmocka_unit_test_teardown(test_unreachable_resume_url_abandoned, teardown),
      cmocka_unit_test_teardown(test_session_set_before_start, teardown),
      cmocka_unit_test_teardown(test_session_set_none_identifies, teardown),
      cmocka_unit_test_teardown(test_session_handed_on_sends_own_presence, teardown),
      cmocka_unit_test_teardown(test_presence_update, teardown),
      cmocka_unit_test_teardown(test_send_from_dispatch_and_before_ready, teardown),
      cmocka_unit_test_teardown(test_malformed_payload_reconnects, teardown),
      cmocka_unit_test_teardown(test_huge_payload_then_small, teardown),
      cmocka_unit_test_teardown(test_new_rejects_bad_conf, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
