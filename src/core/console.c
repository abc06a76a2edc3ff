/* `souk console`: the local shell adapter.
 *
 * Each line read from stdin becomes a MESSAGE_CREATE from a fixed console
 * user in a console guild and channel, dispatched through the same path as
 * gateway events; replies are printed to stdout.  The commands issue grows
 * this into the full command surface (slash syntax, components, editing). */
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

#include "core/core.h"
#include "souk/alloc.h"
#include "souk/buf.h"
#include "souk/err.h"
#include "souk/json.h"
#include "souk/log.h"
#include "souk/loop.h"

/* Fixed ids of the console's user, guild and channel: valid snowflakes
 * that no real Discord object can have (they predate Discord's epoch+1s). */
#define CONSOLE_USER_ID "100000000000000001"
#define CONSOLE_GUILD_ID "100000000000000002"
#define CONSOLE_CHANNEL_ID "100000000000000003"
#define CONSOLE_LINE_MAX 4000

static union {
  uv_tty_t tty;
  uv_pipe_t pipe;
} g_in;
static uv_fs_t g_fs;
static uv_handle_type g_kind;
static bool g_active, g_tty;
static souk_buf_t g_line;
static char g_fsbuf[4096];
static uint64_t g_msg_id;
static void (*g_on_eof)(void);
static bool g_overlong;

static int console_reply(const souk_event_t *ev, const char *text, size_t len) {
  fwrite(text, 1, len, stdout);
  if (len == 0 || text[len - 1] != '\n') fputc('\n', stdout);
  fflush(stdout);
  return 0;
}

static void prompt(void) {
  if (g_tty) {
    fputs("souk> ", stdout);
    fflush(stdout);
  }
}

static void run_line(const char *line, size_t n) {
  while (n > 0 && (line[n - 1] == '\r' || line[n - 1] == ' ')) n--;
  if (n == 0) return;
  souk_buf_t b;
  souk_buf_init(&b);
  souk_jw_t w;
  souk_jw_init(&w, &b);
  char id[32];
  snprintf(id, sizeof id, "%llu", (unsigned long long)(200000000000000000ULL + ++g_msg_id));
  souk_jw_obj(&w);
  souk_jw_key(&w, "id"), souk_jw_str(&w, id);
  souk_jw_key(&w, "channel_id"), souk_jw_str(&w, CONSOLE_CHANNEL_ID);
  souk_jw_key(&w, "guild_id"), souk_jw_str(&w, CONSOLE_GUILD_ID);
  souk_jw_key(&w, "author");
  souk_jw_obj(&w);
  souk_jw_key(&w, "id"), souk_jw_str(&w, CONSOLE_USER_ID);
  souk_jw_key(&w, "username"), souk_jw_str(&w, "console");
  souk_jw_key(&w, "bot"), souk_jw_bool(&w, false);
  souk_jw_end(&w);
  souk_jw_key(&w, "content"), souk_jw_strn(&w, line, n);
  souk_jw_end(&w);
  souk_json_t j = {0};
  if (souk_json_parse(&j, b.data, b.len) == 0) {
    souk_event_t ev = {.name = "MESSAGE_CREATE",
                       .seq = g_msg_id,
                       .json = &j,
                       .d = 0,
                       .source = SOUK_SRC_CONSOLE,
                       .reply = console_reply};
    souk__dispatch(&ev);
  }
  souk_json_free(&j);
  souk_buf_free(&b);
}

/* Split what arrived into lines; an over-long line is refused whole with a
 * clear message rather than cut into pieces that would run as commands. */
static void feed(const char *p, size_t n) {
  for (size_t i = 0; i < n; i++) {
    if (p[i] == '\n') {
      if (g_overlong) {
        printf("souk: line longer than %d bytes ignored\n", CONSOLE_LINE_MAX);
        g_overlong = false;
      } else {
        run_line(g_line.data ? g_line.data : "", g_line.len);
      }
      souk_buf_reset(&g_line);
      prompt();
    } else if (g_line.len >= CONSOLE_LINE_MAX) {
      g_overlong = true;
    } else {
      souk_buf_putc(&g_line, p[i]);
    }
  }
}

static void finish(void) {
  if (g_line.len && !g_overlong) run_line(g_line.data, g_line.len);
  souk_buf_reset(&g_line);
  void (*cb)(void) = g_on_eof;
  g_on_eof = NULL;
  souk__console_stop();
  if (cb) cb();
}

static void alloc_cb(uv_handle_t *h, size_t hint, uv_buf_t *buf) {
  static char rbuf[4096];
  buf->base = rbuf;
  buf->len = sizeof rbuf;
}

static void read_cb(uv_stream_t *s, ssize_t n, const uv_buf_t *buf) {
  if (n > 0) feed(buf->base, (size_t)n);
  else if (n < 0) finish();
}

static void fs_read_cb(uv_fs_t *req) {
  ssize_t n = req->result;
  uv_fs_req_cleanup(req);
  if (!g_active) return;
  if (n <= 0) {
    finish();
    return;
  }
  feed(g_fsbuf, (size_t)n);
  if (!g_active) return;
  uv_buf_t b = uv_buf_init(g_fsbuf, sizeof g_fsbuf);
  if (uv_fs_read(souk_loop(), &g_fs, 0, &b, 1, -1, fs_read_cb) != 0) finish();
}

int souk__console_start(void (*on_eof)(void)) {
  uv_loop_t *loop = souk_loop();
  g_on_eof = on_eof;
  g_kind = uv_guess_handle(0);
  int rc;
  if (g_kind == UV_TTY) {
    rc = uv_tty_init(loop, &g_in.tty, 0, 1);
    g_tty = true;
  } else if (g_kind == UV_NAMED_PIPE) {
    rc = uv_pipe_init(loop, &g_in.pipe, 0);
    if (rc == 0) rc = uv_pipe_open(&g_in.pipe, 0);
  } else {
    /* A regular file (or /dev/null): read it with the thread pool. */
    g_active = true;
    uv_buf_t b = uv_buf_init(g_fsbuf, sizeof g_fsbuf);
    rc = uv_fs_read(loop, &g_fs, 0, &b, 1, -1, fs_read_cb);
    if (rc) {
      g_active = false;
      return SOUK_EIO;
    }
    return 0;
  }
  if (rc == 0) rc = uv_read_start((uv_stream_t *)&g_in, alloc_cb, read_cb);
  if (rc) {
    SOUK_ERROR("console", "cannot read standard input: %s", uv_strerror(rc));
    if (!uv_is_closing((uv_handle_t *)&g_in)) uv_close((uv_handle_t *)&g_in, NULL);
    return SOUK_EIO;
  }
  g_active = true;
  if (g_tty) {
    printf("souk console: type a command (try !ping); Ctrl-D to quit.\n");
  }
  prompt();
  return 0;
}

void souk__console_stop(void) {
  if (!g_active) return;
  g_active = false;
  if (g_kind == UV_TTY || g_kind == UV_NAMED_PIPE) {
    uv_read_stop((uv_stream_t *)&g_in);
    if (!uv_is_closing((uv_handle_t *)&g_in)) uv_close((uv_handle_t *)&g_in, NULL);
    if (g_kind == UV_TTY) uv_tty_reset_mode();
  } else {
    uv_cancel((uv_req_t *)&g_fs);
  }
  souk_buf_free(&g_line);
}
