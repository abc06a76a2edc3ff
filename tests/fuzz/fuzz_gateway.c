/* libFuzzer target for the gateway's inbound path: zlib-stream and
 * zstd-stream frames and gateway payloads from the network.
 *
 * The input is cut into frames at each "\xff\xfe" pair.  If the first byte
 * is odd, the frames go through zlib-stream inflation (zstd-stream when
 * its second bit is set too), as compressed gateway traffic, and each
 * decompressed message to the session; otherwise every frame is given to
 * the session as a text payload.  The session runs
 * with fake outputs and a fake clock; the timer fires between frames.  Any
 * crash, sanitizer report or leak is a bug.
 *
 * Run: fuzz_gateway tests/fuzz/corpus/gateway */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "discord/gateway.h"
#include "discord/zstdstream.h"
#include "discord/zstream.h"
#include "souk/json.h"

static uint64_t clock_ms;

static int op_send(void *ud, const char *text, size_t len) {
  /* Whatever the session sends must itself be valid JSON within limits. */
  souk_json_t j = {0};
  if (len > 4096 || souk_json_parse(&j, text, len) != 0) abort();
  souk_json_free(&j);
  return 0;
}
static void op_close(void *ud, int code) {}
static void op_connect(void *ud, const char *url) {}
static void op_timer(void *ud, int64_t delay_ms) {}
static void op_request_identify(void *ud) { *(int *)ud = 1; }
static void op_dispatch(void *ud, const char *name, uint64_t seq, const souk_json_t *json, int d) {
  /* Handlers read fields; make sure the token they get is usable. */
  (void)souk_json_type(json, d);
  (void)souk_json_get(json, d, "content");
}
static void op_ready(void *ud) {}
static void op_resumed(void *ud) {}
static void op_fatal(void *ud, int code, const char *msg) {}
static void op_stopped(void *ud) {}
static uint64_t op_now(void *ud) { return clock_ms; }
static double op_rand(void *ud) { return 0.5; }

static const souk__gateway_ops_t ops = {
    op_send,  op_close, op_connect, op_timer,   op_request_identify, op_dispatch,
    op_ready, op_resumed, op_fatal, op_stopped, op_now,              op_rand,
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1) return 0;
  bool compressed = data[0] & 1;
  bool zstd = compressed && (data[0] & 2);
  data++;
  size--;
  int want_identify = 0;
  souk__gateway_conf_t conf = {
      .shard_id = 0,
      .shard_count = 1,
      .token = "MTAwMDAwMDAwMDAwMDAwMDAx.GsoukT.c291a190ZXN0X3Rva2VuX25vdF9hX3JlYWxfb25l",
      .gateway_url = "wss://gateway.discord.gg",
      .intents = 33281,
      .compress = zstd ? SOUK_GW_COMPRESS_ZSTD : compressed,
  };
  clock_ms = 1000;
  souk__gateway_t *gw = souk__gateway_new(&conf, &ops, &want_identify);
  if (!gw) abort();
  souk__gateway_start(gw);
  souk__gateway_on_open(gw);
  souk__zstream_t zs;
  souk__zstream_init(&zs, 1 << 20);
  souk__zstdstream_t zd;
  souk__zstdstream_init(&zd, 1 << 20);
  size_t start = 0;
  for (size_t i = 0; i <= size; i++) {
    bool cut = i == size || (i + 1 < size && data[i] == 0xff && data[i + 1] == 0xfe);
    if (!cut) continue;
    const char *frame = (const char *)data + start;
    size_t flen = i - start;
    if (compressed) {
      const char *out;
      size_t outlen;
      int rc = zstd ? souk__zstdstream_feed(&zd, frame, flen, &out, &outlen)
                    : souk__zstream_feed(&zs, frame, flen, &out, &outlen);
      if (rc == 1) souk__gateway_on_message(gw, out, outlen);
      else if (rc < 0 && zstd) souk__zstdstream_reset(&zd);
      else if (rc < 0) souk__zstream_reset(&zs);
    } else {
      souk__gateway_on_message(gw, frame, flen);
    }
    if (want_identify) {
      want_identify = 0;
      souk__gateway_identify_granted(gw);
    }
    clock_ms += 700;
    souk__gateway_on_timer(gw);
    start = i + 2;
  }
  souk__zstream_free(&zs);
  souk__zstdstream_free(&zd);
  souk__gateway_free(gw);
  return 0;
}
