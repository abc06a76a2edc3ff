/* libFuzzer target for the WebSocket client's inbound parsing: the answer
 * to the upgrade request and the frames that follow, as a server (or a
 * man in the middle of a ws:// connection) could send them.
 *
 * If the first byte is odd the input starts after the upgrade (frames
 * only); otherwise it starts with the HTTP answer.  The rest is fed in
 * pieces cut at each "\xff\xfe" pair, as reads of the socket, to a
 * connection with no socket of its own (what it would write goes to its
 * output buffer), capped at 64 KiB per message.  Any crash, sanitizer
 * report or leak is a bug.
 *
 * Run: fuzz_ws tests/fuzz/corpus/ws */
#include "../../src/net/ws.c"

static int msgs;
static void f_open(souk__ws_t *ws, void *ud) {}
static void f_msg(souk__ws_t *ws, void *ud, const char *data, size_t len, bool binary) {
  /* A callback may send and close, as the gateway does. */
  if (len && data[0] == 'c') souk__ws_close(ws, 4000, NULL);
  else if (len && data[0] == 's') souk__ws_send(ws, data, len, binary);
  msgs++;
}
static void f_close(souk__ws_t *ws, void *ud, int code, const char *reason) {}
static const souk__ws_cbs_t fcbs = {f_open, f_msg, f_close};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1) return 0;
  bool frames_only = data[0] & 1;
  data++;
  size--;
  souk__ws_t *ws = souk_calloc(1, sizeof *ws);
  ws->cbs = fcbs;
  ws->max_message = 65536;
  ws->url.path = souk_strdup("/");
  ws->host_hdr = souk_strdup("gateway.discord.gg");
  uv_timer_init(souk_loop(), &ws->timer);
  ws->timer.data = ws;
  ws->handles = 1;
  live_add(ws);
  souk__ws_global_init();
  if (frames_only) {
    ws->upgraded = true;
    ws->state = WS_OPEN;
  } else {
    ws->state = WS_CONNECTING;
    send_upgrade(ws);
    /* The expected answer needs the key just drawn: the fuzzer finds the
     * parsing paths, not the SHA-1. */
  }
  size_t start = 0;
  for (size_t i = 0; i <= size && ws->state != WS_FINISHING; i++) {
    bool cut = i == size || (i + 1 < size && data[i] == 0xff && data[i + 1] == 0xfe);
    if (!cut) continue;
    souk_buf_append(&ws->rx, data + start, i - start);
    on_plain(ws);
    start = i + 2;
  }
  if (ws->state != WS_FINISHING) finish(ws, SOUK_WS_ABNORMAL, "done");
  /* The timer's close callback reports and frees the connection. */
  uv_run(souk_loop(), UV_RUN_NOWAIT);
  return 0;
}
