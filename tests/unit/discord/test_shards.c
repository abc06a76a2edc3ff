/* Shards: identify buckets through the in-process and lock-file backends
 * (two instances on one file, and a second process), then whole shards
 * against a small fake gateway (python3-websockets) speaking zlib-stream:
 * IDENTIFY spacing per bucket, READY, events, heartbeats, a resume after a
 * server close, a fatal close code, and a clean stop with 1000. */
/* cmocka.h needs these headers included before it. */
/* clang-format off */
#include <inttypes.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cmocka.h>
/* clang-format on */

#include "../net/pyspawn.h"
#include "discord/dconf.h"
#include "discord/idlock.h"
#include "discord/shards.h"
#include "net/ws.h"
#include "souk/alloc.h"
#include "souk/err.h"
#include "souk/log.h"
#include "souk/loop.h"

/* ---- loop helpers ------------------------------------------------------- */

static bool timed_out;
static void timeout_cb(uv_timer_t *t) { timed_out = true; }

typedef bool (*cond_cb)(void);

static bool run_until(cond_cb cond, unsigned ms) {
  uv_timer_t t;
  timed_out = false;
  uv_timer_init(souk_loop(), &t);
  uv_timer_start(&t, timeout_cb, ms, 0);
  while (!cond() && !timed_out)
    uv_run(souk_loop(), UV_RUN_ONCE);
  uv_close((uv_handle_t *)&t, NULL);
  uv_run(souk_loop(), UV_RUN_NOWAIT);
  return cond();
}

/* ---- identify backends -------------------------------------------------- */

typedef struct grant {
  uint32_t shard, bucket;
  uint64_t at;
  int inst;
} grant_t;

static grant_t grants[64];
static int ngrants;

typedef struct fake_shard {
  uint32_t id, bucket;
  int inst;
  souk__identify_lock_t *lock;
} fake_shard_t;

static void fake_grant(void *ud) {
  fake_shard_t *s = ud;
  grants[ngrants++] = (grant_t){s->id, s->bucket, souk_now_ms(), s->inst};
  s->lock->ops->release(s->lock->self, s->bucket);
}

static int want_grants;
static bool enough_grants(void) { return ngrants >= want_grants; }

/* Same bucket never closer than interval; no more than one grant per
 * bucket in any interval-long window, so at most max_conc in all. */
static void check_spacing(uint32_t interval, uint32_t mc) {
  for (int i = 0; i < ngrants; i++) {
    int in_window = 0;
    for (int k = 0; k < ngrants; k++) {
      if (k == i) continue;
      if (grants[k].at >= grants[i].at && grants[k].at < grants[i].at + interval) {
        in_window++;
        if (grants[k].bucket == grants[i].bucket)
          fail_msg("shards %u and %u (bucket %u) identified %" PRIu64 " ms apart", grants[i].shard,
                   grants[k].shard, grants[i].bucket, grants[k].at - grants[i].at);
      }
    }
    assert_true(in_window + 1 <= (int)mc);
  }
}

static void test_local_buckets(void **state) {
  const uint32_t interval = 250, mc = 2;
  souk__identify_lock_t lock;
  assert_int_equal(souk__identify_lock_local(interval, NULL, &lock), 0);
  fake_shard_t sh[10];
  ngrants = 0;
  uint64_t t0 = souk_now_ms();
  for (uint32_t i = 0; i < 10; i++) {
    sh[i] = (fake_shard_t){i, i % mc, 0, &lock};
    assert_int_equal(lock.ops->acquire(lock.self, sh[i].bucket, fake_grant, &sh[i]), 0);
  }
  /* Never granted from inside acquire. */
  assert_int_equal(ngrants, 0);
  want_grants = 10;
  assert_true(run_until(enough_grants, 5000));
  check_spacing(interval, mc);
  /* One per bucket at once, then one per bucket per interval. */
  assert_true(grants[0].at - t0 < 100 && grants[1].at - t0 < 100);
  assert_int_not_equal(grants[0].bucket, grants[1].bucket);
  assert_true(grants[9].at - t0 >= 4 * interval);
  assert_true(grants[9].at - t0 < 4 * interval + 500);
  /* Buckets are FIFO. */
  for (int i = 0; i < ngrants; i++)
    for (int k = i + 1; k < ngrants; k++)
      if (grants[i].bucket == grants[k].bucket) assert_true(grants[i].shard < grants[k].shard);
  /* Cancel withdraws a waiter. */
  ngrants = 0;
  lock.ops->acquire(lock.self, 0, fake_grant, &sh[0]);
  lock.ops->acquire(lock.self, 0, fake_grant, &sh[2]);
  lock.ops->cancel(lock.self, 0, fake_grant, &sh[0]);
  want_grants = 1;
  assert_true(run_until(enough_grants, 2000));
  assert_int_equal(grants[0].shard, 2);
  /* Destroy with a waiter queued: never called. */
  lock.ops->acquire(lock.self, 0, fake_grant, &sh[4]);
  lock.ops->destroy(lock.self);
  uv_run(souk_loop(), UV_RUN_NOWAIT);
  assert_int_equal(ngrants, 1);
}

static char lock_path[256];

static void test_file_two_instances(void **state) {
  const uint32_t interval = 250, mc = 2;
  snprintf(lock_path, sizeof lock_path, "/tmp/souk-test-identify-%d.lock", (int)getpid());
  unlink(lock_path);
  souk__identify_lock_t a, b;
  assert_int_equal(souk__identify_lock_file(lock_path, interval, &a), 0);
  assert_int_equal(souk__identify_lock_file(lock_path, interval, &b), 0);
  fake_shard_t sh[10];
  ngrants = 0;
  /* Two "processes": shards 0-4 on a, 5-9 on b, same buckets. */
  for (uint32_t i = 0; i < 10; i++) {
    sh[i] = (fake_shard_t){i, i % mc, i < 5 ? 0 : 1, i < 5 ? &a : &b};
    assert_int_equal(sh[i].lock->ops->acquire(sh[i].lock->self, sh[i].bucket, fake_grant, &sh[i]),
                     0);
  }
  want_grants = 10;
  assert_true(run_until(enough_grants, 8000));
  check_spacing(interval, mc);
  /* Both instances got slots. */
  int na = 0;
  for (int i = 0; i < ngrants; i++)
    na += grants[i].inst == 0;
  assert_int_equal(na, 5);
  a.ops->destroy(a.self);
  b.ops->destroy(b.self);
  uv_run(souk_loop(), UV_RUN_NOWAIT);
  unlink(lock_path);
  assert_int_equal(souk__identify_lock_file("", 0, &a), SOUK_EINVAL);
  assert_int_equal(souk__identify_lock_file("/nonexistent-dir/x.lock", 0, &a), SOUK_EIO);
}

/* The session starts of the last day, per hour of the wall clock: kept in
 * memory by the local backend, and in the lock file by the file backend,
 * where two instances (two processes) see each other's and a restart
 * finds them again; a slot holds one hour and is reused a day later. */
static void check_day(souk__identify_lock_t *l, int64_t wall, uint32_t now_h, uint32_t prev_h) {
  uint32_t c[SOUK_IDL_HOURS];
  l->ops->starts(l->self, wall, c);
  assert_int_equal(c[0], now_h);
  assert_int_equal(c[1], prev_h);
  for (int i = 2; i < SOUK_IDL_HOURS; i++)
    assert_int_equal(c[i], 0);
}

static void test_day_record(void **state) {
  const int64_t H = SOUK_IDL_HOUR_MS, t0 = INT64_C(490000) * H + 1000;
  souk__identify_lock_t loc;
  assert_int_equal(souk__identify_lock_local(250, NULL, &loc), 0);
  for (int i = 0; i < 3; i++)
    loc.ops->count_start(loc.self, t0);
  loc.ops->count_start(loc.self, t0 + H);
  loc.ops->count_start(loc.self, t0 + H + 5);
  check_day(&loc, t0 + H + 10, 2, 3);
  check_day(&loc, t0, 3, 0);
  /* A day later the hour's slot holds another hour. */
  check_day(&loc, t0 + 26 * H, 0, 0);
  loc.ops->count_start(loc.self, t0 + 26 * H);
  check_day(&loc, t0 + 26 * H, 1, 0);
  loc.ops->destroy(loc.self);

  snprintf(lock_path, sizeof lock_path, "/tmp/souk-test-identify-day-%d.lock", (int)getpid());
  unlink(lock_path);
  souk__identify_lock_t a, b;
  assert_int_equal(souk__identify_lock_file(lock_path, 250, &a), 0);
  assert_int_equal(souk__identify_lock_file(lock_path, 250, &b), 0);
  a.ops->count_start(a.self, t0);
  b.ops->count_start(b.self, t0);
  a.ops->count_start(a.self, t0 + H);
  check_day(&a, t0 + H, 1, 2);
  check_day(&b, t0 + H, 1, 2);
  /* The slots of buckets keep working beside the record. */
  fake_shard_t sh = {0, 3, 0, &a};
  ngrants = 0;
  assert_int_equal(a.ops->acquire(a.self, 3, fake_grant, &sh), 0);
  want_grants = 1;
  assert_true(run_until(enough_grants, 2000));
  a.ops->destroy(a.self);
  b.ops->destroy(b.self);
  uv_run(souk_loop(), UV_RUN_NOWAIT);
  /* A restart finds the record. */
  assert_int_equal(souk__identify_lock_file(lock_path, 250, &a), 0);
  check_day(&a, t0 + H, 1, 2);
  a.ops->count_start(a.self, t0 + H);
  check_day(&a, t0 + H, 2, 2);
  /* While another process holds the lock the count waits, and is written
   * once the lock is free; what this process reads includes it. */
  int fd = open(lock_path, O_RDWR);
  assert_true(fd >= 0);
  assert_int_equal(flock(fd, LOCK_EX), 0);
  a.ops->count_start(a.self, t0 + H);
  check_day(&a, t0 + H, 3, 2);
  flock(fd, LOCK_UN);
  assert_int_equal(souk__identify_lock_file(lock_path, 250, &b), 0);
  uint64_t end = souk_now_ms() + 2000;
  uint32_t c[SOUK_IDL_HOURS] = {0};
  while (c[0] != 3 && souk_now_ms() < end) {
    uv_run(souk_loop(), UV_RUN_ONCE);
    b.ops->starts(b.self, t0 + H, c);
  }
  assert_int_equal(c[0], 3);
  close(fd);
  a.ops->destroy(a.self);
  b.ops->destroy(b.self);
  uv_run(souk_loop(), UV_RUN_NOWAIT);
  unlink(lock_path);
}

/* The child side of test_file_two_processes: 5 shards of bucket 0 on the
 * lock file, printing each grant's monotonic time. */
static void child_grant(void *ud) {
  fake_shard_t *s = ud;
  printf("%" PRIu64 "\n", souk_now_ms());
  fflush(stdout);
  s->lock->ops->release(s->lock->self, s->bucket);
  ngrants++;
}

static int child_main(const char *path) {
  souk_alloc_init();
  souk__identify_lock_t lock;
  if (souk__identify_lock_file(path, 250, &lock)) return 1;
  fake_shard_t sh[5];
  for (uint32_t i = 0; i < 5; i++) {
    sh[i] = (fake_shard_t){i, 0, 1, &lock};
    lock.ops->acquire(lock.self, 0, child_grant, &sh[i]);
  }
  want_grants = 5;
  ngrants = 0;
  printf("go\n");
  fflush(stdout);
  while (ngrants < 5)
    uv_run(souk_loop(), UV_RUN_ONCE);
  lock.ops->destroy(lock.self);
  souk_loop_close();
  return 0;
}

static void test_file_two_processes(void **state) {
  snprintf(lock_path, sizeof lock_path, "/tmp/souk-test-identify-p%d.lock", (int)getpid());
  unlink(lock_path);
  int p[2];
  assert_int_equal(pipe(p), 0);
  char exe[512];
  ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
  assert_true(n > 0);
  exe[n] = '\0';
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    dup2(p[1], 1);
    close(p[0]);
    close(p[1]);
    execl(exe, exe, "--identify-child", lock_path, (char *)NULL);
    _exit(127);
  }
  close(p[1]);
  pyserver_t child = {.pid = -1, .fd = p[0], .in_fd = -1};
  char line[64];
  assert_true(pyserver_line(&child, line, sizeof line, 10000));
  assert_string_equal(line, "go");
  /* This process: 5 shards of bucket 0 too. */
  souk__identify_lock_t lock;
  assert_int_equal(souk__identify_lock_file(lock_path, 250, &lock), 0);
  fake_shard_t sh[5];
  ngrants = 0;
  for (uint32_t i = 0; i < 5; i++) {
    sh[i] = (fake_shard_t){10 + i, 0, 0, &lock};
    lock.ops->acquire(lock.self, 0, fake_grant, &sh[i]);
  }
  want_grants = 5;
  assert_true(run_until(enough_grants, 10000));
  lock.ops->destroy(lock.self);
  uv_run(souk_loop(), UV_RUN_NOWAIT);
  for (int i = 0; i < 5; i++) {
    assert_true(pyserver_line(&child, line, sizeof line, 10000));
    grants[ngrants++] = (grant_t){(uint32_t)i, 0, strtoull(line, NULL, 10), 1};
  }
  int st = 0;
  waitpid(pid, &st, 0);
  close(p[0]);
  assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
  /* Ten IDENTIFYs of one bucket from two processes: 250 ms apart each. */
  check_spacing(250, 1);
  unlink(lock_path);
}

/* ---- whole shards against a fake gateway --------------------------------- */

static const char *const GATEWAY_PY =
    "import asyncio, json, sys, time, zlib, websockets\n"
    "from urllib.parse import urlparse, parse_qs\n"
    "PORT = 0\n"
    "KICKED = set()\n"
    "def out(**kw):\n"
    "    print(json.dumps(kw), flush=True)\n"
    "async def handler(ws, path):\n"
    "    q = parse_qs(urlparse(path).query)\n"
    "    mode = q.get('mode', ['ok'])[0]\n"
    "    z = zlib.compressobj() if q.get('compress') == ['zlib-stream'] else None\n"
    "    assert q.get('v') == ['10'] and q.get('encoding') == ['json']\n"
    "    seq = 0\n"
    "    async def send(obj, split=False):\n"
    "        data = json.dumps(obj).encode()\n"
    "        if z is None:\n"
    "            await ws.send(data.decode())\n"
    "            return\n"
    "        b = z.compress(data) + z.flush(zlib.Z_SYNC_FLUSH)\n"
    "        if split:\n"
    "            await ws.send(b[:len(b)//3]); await ws.send(b[len(b)//3:])\n"
    "        else:\n"
    "            await ws.send(b)\n"
    "    await send({'op': 10, 'd': {'heartbeat_interval': 400}, 's': None, 't': None})\n"
    "    try:\n"
    "        async for m in ws:\n"
    "            p = json.loads(m)\n"
    "            op = p['op']\n"
    "            if op == 1:\n"
    "                out(ev='heartbeat')\n"
    "                await send({'op': 11})\n"
    "            elif op == 2:\n"
    "                d = p['d']\n"
    "                shard = d['shard'][0]\n"
    "                out(ev='identify', shard=shard, t=time.monotonic(), intents=d['intents'],\n"
    "                    os=d['properties']['os'], compress=d['compress'])\n"
    "                if mode == 'fatal':\n"
    "                    await ws.close(4014, 'Disallowed intent(s).')\n"
    "                    return\n"
    "                seq += 1\n"
    "                await send({'op': 0, 't': 'READY', 's': seq, 'd': {\n"
    "                    'v': 10, 'session_id': 'sess-%d' % shard, 'user': {'id': '1'},\n"
    "                    'resume_gateway_url': 'ws://127.0.0.1:%d/gw?mode=%s' % (PORT, mode),\n"
    "                    'shard': d['shard'], 'guilds': []}})\n"
    "                for i in range(3):\n"
    "                    seq += 1\n"
    "                    await send({'op': 0, 't': 'MESSAGE_CREATE', 's': seq,\n"
    "                                'd': {'id': str(i), 'content': 'x' * (3000 if i == 2 else "
    "5)}},\n"
    "                               split=(i == 2))\n"
    "                if mode == 'kick' and shard == 0 and 0 not in KICKED:\n"
    "                    KICKED.add(0)\n"
    "                    await ws.close(4000, 'kick')\n"
    "                    return\n"
    "            elif op == 6:\n"
    "                d = p['d']\n"
    "                out(ev='resume', session=d['session_id'], seq=d['seq'])\n"
    "                seq = d['seq'] + 1\n"
    "                await send({'op': 0, 't': 'RESUMED', 's': seq, 'd': {}})\n"
    "            elif op == 3:\n"
    "                out(ev='presence', status=p['d']['status'])\n"
    "    except websockets.ConnectionClosed:\n"
    "        pass\n"
    "    finally:\n"
    "        await ws.wait_closed()\n"
    "        out(ev='closed', code=ws.close_code)\n"
    "async def main():\n"
    "    global PORT\n"
    "    async with websockets.serve(handler, '127.0.0.1', 0, ping_interval=None) as srv:\n"
    "        PORT = srv.sockets[0].getsockname()[1]\n"
    "        print(PORT, flush=True)\n"
    "        await asyncio.Future()\n"
    "asyncio.run(main())\n";

static pyserver_t gsrv;
static bool have_gsrv;

static struct {
  int dispatches, ready, resumed, fatal, done;
  int fatal_code;
  char fatal_msg[512];
  int msg_creates;
  size_t longest;
  uint64_t last_seq[8];
  int order_errors;
} E;

static void h_dispatch(uint32_t shard, const char *name, uint64_t seq, const souk_json_t *j,
                       int d) {
  E.dispatches++;
  if (shard < 8) {
    if (seq <= E.last_seq[shard] && strcmp(name, "READY")) E.order_errors++;
    E.last_seq[shard] = seq;
  }
  if (!strcmp(name, "MESSAGE_CREATE")) {
    E.msg_creates++;
    size_t n = 0;
    souk_json_raw(j, souk_json_get(j, d, "content"), &n);
    if (n > E.longest) E.longest = n;
  }
}
static void h_ready(uint32_t shard) { E.ready++; }
static void h_resumed(uint32_t shard) { E.resumed++; }
static void h_fatal(int code, const char *msg) {
  E.fatal++;
  E.fatal_code = code;
  snprintf(E.fatal_msg, sizeof E.fatal_msg, "%s", msg);
}
static void h_done(void) { E.done++; }

static const souk__gateway_handlers_t HANDLERS = {h_dispatch, h_ready, h_resumed, h_fatal};

static bool all_ready_and_resumed(void) { return E.ready >= 4 && E.resumed >= 1; }
static bool stop_done(void) { return E.done > 0; }
static bool got_fatal(void) { return E.fatal > 0; }

/* Read the server's JSON lines until none come for a moment. */
/* Read what the server reported.  Its last lines (the closes) can lag
 * behind our own view of the stop on a loaded machine, so keep reading
 * until `want` lines containing `until` have arrived, or 10 s pass. */
static int read_events(char lines[][256], int max, const char *until, int want) {
  int n = 0, seen = 0;
  uint64_t deadline = souk_now_ms() + 10000;
  while (n < max) {
    if (pyserver_line(&gsrv, lines[n], sizeof lines[n], 300)) {
      if (until && strstr(lines[n], until)) seen++;
      n++;
    } else if (!until || seen >= want || souk_now_ms() > deadline) {
      break;
    }
  }
  return n;
}

static void test_shards_end_to_end(void **state) {
  if (!have_gsrv) skip();
  memset(&E, 0, sizeof E);
  char url[128];
  snprintf(url, sizeof url, "ws://127.0.0.1:%d/gw?mode=kick", gsrv.port);
  souk__shards_conf_t c = {
      .gateway_url = url,
      .shard_count = 4,
      .first = 0,
      .last = 3,
      .max_concurrency = 2,
      .token = "MTIz.abc.def",
      .intents = 513,
      .compress = 1,
      .large_threshold = 50,
      .identify_lock = "",
      .identify_interval_ms = 300,
  };
  assert_int_equal(souk__shards_start(&c, &HANDLERS), 0);
  assert_int_equal(souk__shards_start(&c, &HANDLERS), SOUK_EBUSY);
  assert_true(souk__shards_running());
  assert_int_equal(souk__shards_count(), 4);
  assert_true(run_until(all_ready_and_resumed, 10000));
  /* Let a few heartbeats go by. */
  uv_timer_t t;
  uv_timer_init(souk_loop(), &t);
  timed_out = false;
  uv_timer_start(&t, timeout_cb, 1000, 0);
  while (!timed_out)
    uv_run(souk_loop(), UV_RUN_ONCE);
  uv_close((uv_handle_t *)&t, NULL);
  assert_int_equal(souk__shards_ready(), 4);
  assert_int_equal(E.order_errors, 0);
  assert_true(E.msg_creates >= 12);
  assert_int_equal(E.longest, 3000);
  souk__shard_stats_t st;
  assert_int_equal(souk__shards_stats(0, &st), 0);
  assert_int_equal(st.id, 0);
  assert_int_equal(st.gw.resumes, 1);
  assert_int_equal(st.gw.identifies, 1);
  assert_true(st.gw.latency_last_ms >= 0);
  assert_true(st.gw.heartbeats >= 2);
  assert_true(st.bytes_compressed > 0 && st.bytes_compressed < st.gw.bytes_in);
  assert_int_equal(souk__shards_stats(4, &st), SOUK_ENOTFOUND);
  const char *sid;
  assert_true(souk__shards_session(0, &sid, NULL, NULL));
  assert_string_equal(sid, "sess-0");
  /* Presence reaches every shard. */
  souk__presence_t p = {.status = "dnd", .activity = "tests"};
  assert_int_equal(souk__shards_set_presence(&p), 0);
  assert_int_equal(souk__shards_send(99, "{\"op\":8}", 8), SOUK_ENOTFOUND);

  /* Stop right away: queued payloads still go out before the close. */
  souk__shards_stop(h_done);
  assert_true(run_until(stop_done, 10000));
  assert_int_equal(E.done, 1);
  assert_false(souk__shards_running());

  /* What the server saw. */
  static char lines[128][256];
  int n = read_events(lines, 128, "\"code\": 1000", 4);
  double t_id[4] = {0};
  int identifies = 0, resumes = 0, closed1000 = 0, closed4000 = 0, presences = 0;
  for (int i = 0; i < n; i++) {
    int shard = -1;
    double tm = 0;
    if (strstr(lines[i], "\"ev\": \"identify\"")) {
      const char *s = strstr(lines[i], "\"shard\": ");
      const char *tt = strstr(lines[i], "\"t\": ");
      assert_non_null(s);
      assert_non_null(tt);
      shard = atoi(s + 9);
      tm = atof(tt + 5);
      assert_true(shard >= 0 && shard < 4);
      t_id[shard] = tm;
      identifies++;
      assert_non_null(strstr(lines[i], "\"intents\": 513"));
      assert_non_null(strstr(lines[i], "\"os\": \"souk\""));
      assert_non_null(strstr(lines[i], "\"compress\": false"));
    }
    if (strstr(lines[i], "\"ev\": \"resume\"")) {
      resumes++;
      assert_non_null(strstr(lines[i], "\"session\": \"sess-0\""));
      assert_non_null(strstr(lines[i], "\"seq\": 4"));
    }
    if (strstr(lines[i], "\"ev\": \"presence\"")) presences++;
    if (strstr(lines[i], "\"code\": 1000")) closed1000++;
    if (strstr(lines[i], "\"code\": 4000")) closed4000++;
  }
  assert_int_equal(identifies, 4);
  assert_int_equal(resumes, 1);
  assert_int_equal(presences, 4);
  assert_int_equal(closed4000, 1);
  assert_int_equal(closed1000, 4);
  /* Buckets 0 (shards 0, 2) and 1 (shards 1, 3): 300 ms apart each. */
  double d02 = t_id[2] - t_id[0], d13 = t_id[3] - t_id[1];
  if (d02 < 0) d02 = -d02;
  if (d13 < 0) d13 = -d13;
  assert_true(d02 >= 0.25);
  assert_true(d13 >= 0.25);

  /* The loop runs dry: no handle of the shards or lws is left. */
  uv_run(souk_loop(), UV_RUN_DEFAULT);
  assert_true(souk__ws_global_idle());
}

static void test_shards_fatal(void **state) {
  if (!have_gsrv) skip();
  memset(&E, 0, sizeof E);
  char url[128];
  snprintf(url, sizeof url, "ws://127.0.0.1:%d/gw?mode=fatal", gsrv.port);
  souk__shards_conf_t c = {
      .gateway_url = url,
      .shard_count = 2,
      .first = 1,
      .last = 1,
      .max_concurrency = 1,
      .token = "MTIz.abc.def",
      .intents = 1 << 15,
      .compress = -1,
      .identify_lock = "",
  };
  assert_int_equal(souk__shards_start(&c, &HANDLERS), 0);
  assert_true(run_until(got_fatal, 10000));
  assert_int_equal(E.fatal_code, 4014);
  assert_non_null(strstr(E.fatal_msg, "4014"));
  assert_non_null(strstr(E.fatal_msg, "shard 1"));
  assert_non_null(strstr(E.fatal_msg, "Developer Portal"));
  souk__shard_stats_t st;
  souk__shards_stats(0, &st);
  assert_int_equal(st.gw.state, SOUK_GW_FATAL);
  /* No reconnect after a fatal code. */
  uv_timer_t t;
  uv_timer_init(souk_loop(), &t);
  timed_out = false;
  uv_timer_start(&t, timeout_cb, 1500, 0);
  while (!timed_out)
    uv_run(souk_loop(), UV_RUN_ONCE);
  uv_close((uv_handle_t *)&t, NULL);
  souk__shards_stats(0, &st);
  assert_int_equal(st.gw.connects, 1);
  souk__shards_stop(h_done);
  assert_true(run_until(stop_done, 5000));
  uv_run(souk_loop(), UV_RUN_DEFAULT);
  assert_true(souk__ws_global_idle());
  static char lines[16][256];
  read_events(lines, 16, NULL, 0);
}

static void test_shards_bad_conf(void **state) {
  souk__shards_conf_t c = {
      .gateway_url = "ws://127.0.0.1:1/", .shard_count = 2, .first = 1, .last = 2, .token = "x"};
  assert_int_equal(souk__shards_start(&c, &HANDLERS), SOUK_EINVAL);
  c.last = 1;
  souk__gateway_handlers_t none = {0};
  assert_int_equal(souk__shards_start(&c, &none), SOUK_EINVAL);
  c.token = NULL;
  souk__discord_conf.token = NULL;
  assert_int_equal(souk__shards_start(&c, &HANDLERS), SOUK_EINVAL);
  c.token = "x";
  c.identify_lock = "/nonexistent-dir/identify.lock";
  assert_int_equal(souk__shards_start(&c, &HANDLERS), SOUK_EIO);
  assert_false(souk__shards_running());
  souk__shards_stop(h_done); /* not running: ignored */
}

int main(int argc, char **argv) {
  if (argc == 3 && !strcmp(argv[1], "--identify-child")) return child_main(argv[2]);
  signal(SIGPIPE, SIG_IGN);
  souk_alloc_init();
  souk_log_set_level(SOUK_LOG_ERROR);
  have_gsrv = pyspawn_available() && pyserver_start(&gsrv, GATEWAY_PY) == 0;
  if (!have_gsrv) fprintf(stderr, "test_shards: /usr/bin/python3 with websockets missing\n");
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_local_buckets),      cmocka_unit_test(test_file_two_instances),
      cmocka_unit_test(test_day_record),
      cmocka_unit_test(test_file_two_processes), cmocka_unit_test(test_shards_end_to_end),
      cmocka_unit_test(test_shards_fatal),       cmocka_unit_test(test_shards_bad_conf),
  };
  if (getenv("TEST_FILTER")) cmocka_set_test_filter(getenv("TEST_FILTER"));
  int rc = cmocka_run_group_tests(tests, NULL, NULL);
  souk__ws_global_shutdown();
  uv_run(souk_loop(), UV_RUN_DEFAULT);
  souk_loop_close();
  if (have_gsrv) pyserver_stop(&gsrv);
  return rc;
}
