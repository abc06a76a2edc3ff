/* JSON parse throughput: souk's reader on the two payloads that matter.
 *
 *   (a) a real Hypixel auctions page (1000 auctions, ~2.5 MB), parsed whole
 *       and then read the way the auction poller reads it;
 *   (b) a gateway MESSAGE_CREATE event, parsed and looked up (op, t, s,
 *       d.author.id, d.content) once per event, as the dispatcher does.
 *
 * Where Debian's libcjson / libjansson were found at build time the same
 * work is timed with them too, for comparison (DESIGN.md's JSON row).
 *
 * Usage: bench_json [fixtures-dir] [seconds-per-figure]
 * The figures are also written as JSON to bench/out/json.json.
 * Prints lines such as
 *   json: hypixel auctions page 2.55 MB: 812 MB/s, 3.14 ms/page (souk: parse)
 *   json: MESSAGE_CREATE 0.96 KB: 2.90 M events/s, 0.345 µs/event (souk: ...) */
#include "souk/alloc.h"
#include "souk/buf.h"
#include "souk/err.h"
#include "souk/json.h"

#include <glob.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <zlib.h>

#ifdef SOUK_BENCH_CJSON
#include <cjson/cJSON.h>
#endif
#ifdef SOUK_BENCH_JANSSON
#include <jansson.h>
#endif

#ifndef SOUK_FIXTURES
#define SOUK_FIXTURES "tests/fixtures"
#endif

/* A gateway dispatch as Discord sends it (field order and shapes from the
 * Gateway and Message docs: t/s/op first, d with member and author). */
static const char message_create[] =
    "{\"t\":\"MESSAGE_CREATE\",\"s\":42,\"op\":0,\"d\":{\"type\":0,\"tts\":false,"
    "\"timestamp\":\"2025-06-08T17:07:40.812000+00:00\",\"referenced_message\":null,"
    "\"pinned\":false,\"nonce\":\"1381326150939635712\",\"mentions\":[],\"mention_roles\":[],"
    "\"mention_everyone\":false,\"member\":{\"roles\":[\"1105838371418411070\"],"
    "\"premium_since\":null,\"pending\":false,\"nick\":null,\"mute\":false,"
    "\"joined_at\":\"2023-05-11T12:00:00.000000+00:00\",\"flags\":0,\"deaf\":false,"
    "\"communication_disabled_until\":null,\"banner\":null,\"avatar\":null},"
    "\"id\":\"1381326151732088903\",\"flags\":0,\"embeds\":[],\"edited_timestamp\":null,"
    "\"content\":\"!ah lowest Hyperion \\u2014 any under 800m? \\ud83d\\udcb0\","
    "\"components\":[],\"channel_type\":0,\"channel_id\":\"1105838372299227156\","
    "\"author\":{\"username\":\"trader\",\"public_flags\":0,\"primary_guild\":null,"
    "\"id\":\"301072236227018752\",\"global_name\":\"Trader\",\"discriminator\":\"0\","
    "\"clan\":null,\"avatar_decoration_data\":null,"
    "\"avatar\":\"a_2b3c4d5e6f708192a3b4c5d6e7f80912\"},\"attachments\":[],"
    "\"guild_id\":\"1105838371418411069\"}}";

static double g_secs = 1.0;
static volatile uint64_t g_sink; /* keeps results alive */

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void die(const char *what) {
  fprintf(stderr, "bench_json: %s\n", what);
  exit(1);
}

static char *gunzip_file(const char *path, size_t *len) {
  gzFile f = gzopen(path, "rb");
  if (!f) return NULL;
  gzbuffer(f, 1 << 16);
  souk_buf_t b = {0};
  char chunk[1 << 16];
  int n;
  while ((n = gzread(f, chunk, sizeof chunk)) > 0)
    souk_buf_append(&b, chunk, (size_t)n);
  gzclose(f);
  if (n < 0) die("gunzip failed");
  *len = b.len;
  return souk_buf_steal(&b);
}

/* Run fn(arg) repeatedly for about g_secs; returns calls per second. */
static double rate(uint64_t (*fn)(void *), void *arg, unsigned batch) {
  for (unsigned i = 0; i < batch; i++)
    g_sink += fn(arg); /* warm-up */
  uint64_t calls = 0;
  double t0 = now_s(), t;
  do {
    for (unsigned i = 0; i < batch; i++)
      g_sink += fn(arg);
    calls += batch;
    t = now_s() - t0;
  } while (t < g_secs);
  return (double)calls / t;
}

typedef struct doc {
  const char *text;
  size_t len;
  souk_json_t j;
} doc_t;

/* ---- (a) the auctions page ---- */

static uint64_t souk_page_parse(void *arg) {
  doc_t *d = arg;
  if (souk_json_parse(&d->j, d->text, d->len) != 0) die("page does not parse");
  return d->j.ntoks;
}

/* What the poller does per page: every auction's price, BIN flag, name,
 * tier and uuid. */
static uint64_t souk_page_read(void *arg) {
  doc_t *d = arg;
  souk_json_t *j = &d->j;
  if (souk_json_parse(j, d->text, d->len) != 0) die("page does not parse");
  uint64_t acc = 0;
  int arr = souk_json_get(j, 0, "auctions");
  for (int a = souk_json_first(j, arr); a >= 0 && (uint32_t)a < j->toks[arr].next;
       a = souk_json_skip(j, a)) {
    int64_t price = 0;
    bool bin = false;
    char name[128], uuid[40];
    souk_json_fixed(j, souk_json_get(j, a, "starting_bid"), 6, &price);
    souk_json_bool(j, souk_json_get(j, a, "bin"), &bin);
    souk_json_str(j, souk_json_get(j, a, "item_name"), name, sizeof name);
    souk_json_str(j, souk_json_get(j, a, "uuid"), uuid, sizeof uuid);
    acc += (uint64_t)price + bin + (uint64_t)name[0] + (uint64_t)uuid[0] +
           souk_json_streq(j, souk_json_get(j, a, "tier"), "LEGENDARY");
  }
  return acc;
}

/* ---- (b) MESSAGE_CREATE ---- */

static uint64_t souk_event(void *arg) {
  doc_t *d = arg;
  souk_json_t *j = &d->j;
  if (souk_json_parse(j, d->text, d->len) != 0) die("event does not parse");
  int64_t op = -1, s = 0;
  uint64_t author = 0;
  char content[2001 * 4];
  souk_json_i64(j, souk_json_get(j, 0, "op"), &op);
  bool is_mc = souk_json_streq(j, souk_json_get(j, 0, "t"), "MESSAGE_CREATE");
  souk_json_i64(j, souk_json_get(j, 0, "s"), &s);
  int dd = souk_json_get(j, 0, "d");
  souk_json_u64(j, souk_json_path(j, dd, "author", "id", NULL), &author);
  int n = souk_json_str(j, souk_json_get(j, dd, "content"), content, sizeof content);
  if (op != 0 || !is_mc || author != UINT64_C(301072236227018752) || n <= 0) die("bad lookup");
  return (uint64_t)s + author + (uint64_t)n;
}

#ifdef SOUK_BENCH_CJSON
static uint64_t cjson_page_parse(void *arg) {
  doc_t *d = arg;
  cJSON *root = cJSON_ParseWithLength(d->text, d->len);
  if (!root) die("cJSON: page does not parse");
  cJSON_Delete(root);
  return 1;
}

static uint64_t cjson_event(void *arg) {
  doc_t *d = arg;
  cJSON *root = cJSON_ParseWithLength(d->text, d->len);
  if (!root) die("cJSON: event does not parse");
  const cJSON *op = cJSON_GetObjectItemCaseSensitive(root, "op");
  const cJSON *t = cJSON_GetObjectItemCaseSensitive(root, "t");
  const cJSON *s = cJSON_GetObjectItemCaseSensitive(root, "s");
  const cJSON *dd = cJSON_GetObjectItemCaseSensitive(root, "d");
  const cJSON *author = cJSON_GetObjectItemCaseSensitive(dd, "author");
  const cJSON *id = cJSON_GetObjectItemCaseSensitive(author, "id");
  const cJSON *content = cJSON_GetObjectItemCaseSensitive(dd, "content");
  uint64_t r = 0;
  if (cJSON_IsNumber(op) && cJSON_IsString(t) && strcmp(t->valuestring, "MESSAGE_CREATE") == 0 &&
      cJSON_IsNumber(s) && cJSON_IsString(id) && cJSON_IsString(content))
    r = (uint64_t)s->valueint + strtoull(id->valuestring, NULL, 10) + strlen(content->valuestring);
  else
    die("cJSON: bad lookup");
  cJSON_Delete(root);
  return r;
}
#endif

#ifdef SOUK_BENCH_JANSSON
static uint64_t jansson_page_parse(void *arg) {
  doc_t *d = arg;
  json_error_t err;
  json_t *root = json_loadb(d->text, d->len, 0, &err);
  if (!root) die("jansson: page does not parse");
  json_decref(root);
  return 1;
}

static uint64_t jansson_event(void *arg) {
  doc_t *d = arg;
  json_error_t err;
  json_t *root = json_loadb(d->text, d->len, 0, &err);
  if (!root) die("jansson: event does not parse");
  json_t *dd = json_object_get(root, "d");
  const char *t = json_string_value(json_object_get(root, "t"));
  const char *id = json_string_value(json_object_get(json_object_get(dd, "author"), "id"));
  const char *content = json_string_value(json_object_get(dd, "content"));
  json_int_t op = json_integer_value(json_object_get(root, "op"));
  json_int_t s = json_integer_value(json_object_get(root, "s"));
  if (op != 0 || !t || strcmp(t, "MESSAGE_CREATE") != 0 || !id || !content)
    die("jansson: bad lookup");
  uint64_t r = (uint64_t)s + strtoull(id, NULL, 10) + strlen(content);
  json_decref(root);
  return r;
}
#endif

/* Every figure printed is also kept for bench/out/json.json. */
static souk_buf_t g_out;
static souk_jw_t g_jw;

static void jw_num(const char *key, const char *fmt, double v) {
  char num[64];
  int n = snprintf(num, sizeof num, fmt, v);
  souk_jw_key(&g_jw, key);
  souk_jw_raw(&g_jw, num, (size_t)n);
}

static void record(const char *payload, const char *what, double bytes, double per_s) {
  souk_jw_obj(&g_jw);
  souk_jw_key(&g_jw, "payload");
  souk_jw_str(&g_jw, payload);
  souk_jw_key(&g_jw, "what");
  souk_jw_str(&g_jw, what);
  jw_num("bytes", "%.0f", bytes);
  jw_num("per_second", "%.1f", per_s);
  jw_num("mb_per_second", "%.1f", bytes * per_s / 1e6);
  jw_num("us_per_call", "%.3f", 1e6 / per_s);
  souk_jw_end(&g_jw);
}

static void print_page(const char *what, double mb, double per_s) {
  record("hypixel auctions page", what, mb * 1e6, per_s);
  printf("json: hypixel auctions page %.2f MB: %.0f MB/s, %.2f ms/page (%s)\n", mb, mb * per_s,
         1e3 / per_s, what);
}

static void print_event(const char *what, size_t len, double per_s) {
  record("MESSAGE_CREATE", what, (double)len, per_s);
  printf("json: MESSAGE_CREATE %.2f KB: %.2f M events/s, %.3f \xc2\xb5s/event (%s)\n",
         (double)len / 1000.0, per_s / 1e6, 1e6 / per_s, what);
}

int main(int argc, char **argv) {
  const char *dir = argc > 1 && argv[1][0] ? argv[1] : SOUK_FIXTURES;
  if (argc > 2) g_secs = atof(argv[2]);
  if (g_secs <= 0) g_secs = 1.0;
  souk_jw_init(&g_jw, &g_out);
  souk_jw_obj(&g_jw);
  souk_jw_key(&g_jw, "benchmark");
  souk_jw_str(&g_jw, "json");
  jw_num("seconds_per_figure", "%g", g_secs);
  souk_jw_key(&g_jw, "figures");
  souk_jw_arr(&g_jw);

  char pattern[4096];
  snprintf(pattern, sizeof pattern, "%s/hypixel/auctions-page0-*.json.gz", dir);
  glob_t g;
  if (glob(pattern, 0, NULL, &g) != 0 || g.gl_pathc == 0) die("no auctions-page0-*.json.gz");
  doc_t page = {0};
  page.text = gunzip_file(g.gl_pathv[0], &page.len);
  if (!page.text) die("cannot read the auctions page");
  globfree(&g);
  double mb = (double)page.len / 1e6;

  if (souk_json_parse(&page.j, page.text, page.len) != 0) die("page does not parse");
  printf("json: fixture %zu bytes, %u tokens, %zu auctions\n", page.len, page.j.ntoks,
         souk_json_count(&page.j, souk_json_get(&page.j, 0, "auctions")));
  print_page("souk: parse", mb, rate(souk_page_parse, &page, 2));
  print_page("souk: parse + read price/bin/name/uuid/tier of 1000 auctions", mb,
             rate(souk_page_read, &page, 2));

  doc_t ev = {message_create, sizeof message_create - 1, {0}};
  print_event("souk: parse + op/t/s/d.author.id/d.content", ev.len, rate(souk_event, &ev, 1000));

#ifdef SOUK_BENCH_CJSON
  char who[64];
  snprintf(who, sizeof who, "cJSON %s: parse + free", cJSON_Version());
  print_page(who, mb, rate(cjson_page_parse, &page, 1));
  snprintf(who, sizeof who, "cJSON %s: parse + lookups + free", cJSON_Version());
  print_event(who, ev.len, rate(cjson_event, &ev, 1000));
#endif
#ifdef SOUK_BENCH_JANSSON
  print_page("jansson " JANSSON_VERSION ": parse + free", mb, rate(jansson_page_parse, &page, 1));
  print_event("jansson " JANSSON_VERSION ": parse + lookups + free", ev.len,
              rate(jansson_event, &ev, 1000));
#endif

  souk_jw_end(&g_jw);
  souk_jw_end(&g_jw);
  souk_buf_putc(&g_out, '\n');
#ifdef SOUK_BENCH_OUT_DIR
  /* Best effort: the figures were printed already. */
  mkdir(SOUK_BENCH_OUT_DIR, 0755);
  FILE *f = fopen(SOUK_BENCH_OUT_DIR "/json.json", "w");
  if (f) {
    fwrite(g_out.data, 1, g_out.len, f);
    fclose(f);
    printf("json: figures written to %s\n", SOUK_BENCH_OUT_DIR "/json.json");
  }
#endif
  souk_buf_free(&g_out);

  souk_json_free(&page.j);
  souk_json_free(&ev.j);
  souk_free((void *)page.text);
  return 0;
}
