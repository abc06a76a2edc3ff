/* A small line reader on the libuv loop: line editing and history on a
 * terminal, plain line splitting otherwise (lineread.h).
 *
 * Why not libedit (Debian 12's 3.1-20221030, tried with its readline-style
 * callback interface, rl_callback_handler_install and rl_callback_read_char
 * driven by uv_poll): text printed while a line was half typed came out
 * garbled ("tick 1lled> hello") because there is no way to clear the visible
 * line (no rl_clear_visible_line; rl_replace_line plus rl_redisplay leaves it
 * on screen); output printed from the line callback landed on the next
 * prompt's row; after a multibyte character the arrow keys were inserted as
 * text ("é^[[Da").  It also keeps one hidden global editor and installs
 * signal handlers next to libuv's.  The editor below is a single-row editor
 * in the manner of linenoise: every change
 * redraws the row with "\r", the prompt, the visible part of the buffer,
 * "erase to end of line" and a cursor move, which only needs the ANSI
 * sequences every terminal souk meets understands.  Keeping the line on one
 * row (scrolling horizontally) is what makes souk__lineread_print() simple
 * and exact: clear the row, print, redraw. */
#include "core/lineread.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>
#include <uv.h>

#include "souk/alloc.h"
#include "souk/buf.h"
#include "souk/err.h"
#include "souk/log.h"
#include "souk/loop.h"

#define LR_DEFAULT_MAX_LINE 4096
#define LR_DEFAULT_HISTORY  1000

/* Keys other than bytes: above any byte value. */
enum {
  K_UP = 0x100,
  K_DOWN,
  K_LEFT,
  K_RIGHT,
  K_HOME,
  K_END,
  K_DELETE,
  K_WORD_LEFT,
  K_WORD_RIGHT,
  K_WORD_DELETE, /* Alt-D */
  K_WORD_RUBOUT, /* Alt-Backspace */
  K_IGNORE,
};

enum { IN_TTY, IN_PIPE, IN_FILE };
enum { ESC_NONE, ESC_ESC, ESC_CSI, ESC_SS3 };

typedef struct lr {
  int in_fd, out_fd;
  char *prompt;
  char *hist_path;
  size_t max_line, hist_max;
  souk__lineread_line_cb on_line;
  souk__lineread_eof_cb on_eof;
  void *ud;

  int kind;
  bool edit;     /* Line editing on a terminal in raw mode. */
  bool stopped;  /* souk__lineread_stop() ran; free once nothing refers to us. */
  unsigned hold; /* > 0 while one of our libuv callbacks runs. */
  union {
    uv_handle_t h;
    uv_stream_t s;
    uv_tty_t tty;
    uv_pipe_t pipe;
  } h;
  bool handle_open; /* Initialised and its close callback not run yet. */
  bool fs_busy;     /* A uv_fs_read is in flight. */
  uv_fs_t fs;
  char rbuf[4096];

  /* Plain mode. */
  souk_buf_t pl;
  bool overlong;

  /* Editing. */
  souk_buf_t buf;
  size_t pos;
  bool prompt_shown;
  bool last_cr;
  int esc;
  char csi[16];
  size_t csi_len;
  unsigned char u8[4];
  size_t u8_len, u8_need;
  souk_buf_t kill;
  char **hist;
  size_t hist_len;
  size_t hist_idx; /* hist_len: the line being typed, kept in scratch. */
  char *scratch;

  /* Reverse incremental search (Ctrl-R). */
  bool search, search_fail;
  souk_buf_t query;
  size_t search_idx;
  char *search_saved;
  size_t search_saved_pos;
} lr_t;

static lr_t *g_lr;

/* ---- Output ---- */

/* Write everything; a terminal that has gone away just loses the output. */
static void out_write(int fd, const char *p, size_t n) {
  while (n > 0) {
    ssize_t w = write(fd, p, n);
    if (w > 0) {
      p += w;
      n -= (size_t)w;
    } else if (w < 0 && errno == EINTR) {
      continue;
    } else if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      struct pollfd pfd = {.fd = fd, .events = POLLOUT};
      if (poll(&pfd, 1, 1000) <= 0) return;
    } else {
      return;
    }
  }
}

static void out_buf(lr_t *lr, souk_buf_t *b) {
  if (b->len) out_write(lr->out_fd, b->data, b->len);
  souk_buf_reset(b);
}

/* ---- UTF-8 and display width ---- */

/* Decode one character at s[i] (i < n); an invalid byte counts as one
 * character of its own so that nothing can loop forever. */
static size_t u8_decode(const char *s, size_t n, size_t i, uint32_t *cp) {
  const unsigned char *u = (const unsigned char *)s + i;
  size_t k = souk_utf8_seq(u, n - i);
  if (k == 0) {
    *cp = 0xFFFD;
    return 1;
  }
  if (k == 1)
    *cp = u[0];
  else if (k == 2)
    *cp = (uint32_t)(u[0] & 0x1F) << 6 | (u[1] & 0x3F);
  else if (k == 3)
    *cp = (uint32_t)(u[0] & 0x0F) << 12 | (uint32_t)(u[1] & 0x3F) << 6 | (u[2] & 0x3F);
  else
    *cp = (uint32_t)(u[0] & 0x07) << 18 | (uint32_t)(u[1] & 0x3F) << 12 |
          (uint32_t)(u[2] & 0x3F) << 6 | (u[3] & 0x3F);
  return k;
}

/* Columns a character takes.  A short table rather than wcwidth(), which
 * depends on the process's locale (souk never calls setlocale). */
static int cp_width(uint32_t c) {
  if (c < 0x20 || (c >= 0x7F && c < 0xA0)) return 0;
  if ((c >= 0x0300 && c <= 0x036F) || (c >= 0x0483 && c <= 0x0489) ||
      (c >= 0x0591 && c <= 0x05BD) || (c >= 0x0610 && c <= 0x061A) ||
      (c >= 0x064B && c <= 0x065F) || (c >= 0x1AB0 && c <= 0x1AFF) ||
      (c >= 0x1DC0 && c <= 0x1DFF) || (c >= 0x200B && c <= 0x200F) ||
      (c >= 0x20D0 && c <= 0x20FF) || (c >= 0xFE00 && c <= 0xFE0F) ||
      (c >= 0xFE20 && c <= 0xFE2F) || c == 0x200D || (c >= 0xE0100 && c <= 0xE01EF))
    return 0;
  if ((c >= 0x1100 && c <= 0x115F) || (c >= 0x2E80 && c <= 0x303E) ||
      (c >= 0x3041 && c <= 0xA4CF) || (c >= 0xAC00 && c <= 0xD7A3) ||
      (c >= 0xF900 && c <= 0xFAFF) || (c >= 0xFE30 && c <= 0xFE4F) ||
      (c >= 0xFF00 && c <= 0xFF60) || (c >= 0xFFE0 && c <= 0xFFE6) ||
      (c >= 0x1F300 && c <= 0x1F64F) || (c >= 0x1F900 && c <= 0x1F9FF) ||
      (c >= 0x20000 && c <= 0x3FFFD))
    return 2;
  return 1;
}

/* The byte offset after the character at i and any zero-width marks that
 * follow it, so the cursor never lands between a letter and its accent. */
static size_t next_char(const char *s, size_t n, size_t i) {
  uint32_t cp;
  if (i >= n) return n;
  i += u8_decode(s, n, i, &cp);
  while (i < n) {
    size_t k = u8_decode(s, n, i, &cp);
    if (cp_width(cp) != 0 || cp < 0x20) break;
    i += k;
  }
  return i;
}

/* The byte offset of the character before i (with its marks). */
static size_t prev_char(const char *s, size_t n, size_t i) {
  while (i > 0) {
    size_t j = i - 1;
    while (j > 0 && ((unsigned char)s[j] & 0xC0) == 0x80 && i - j < 4)
      j--;
    /* j may not start a valid sequence of exactly i - j bytes; fall back to
     * one byte so an invalid byte is stepped over alone. */
    uint32_t cp;
    if (u8_decode(s, n, j, &cp) != i - j) j = i - 1, cp = 0xFFFD;
    i = j;
    if (cp_width(cp) != 0 || cp < 0x20 || i == 0) break;
  }
  return i;
}

static size_t str_width(const char *s, size_t a, size_t b) {
  size_t w = 0;
  while (a < b) {
    uint32_t cp;
    a += u8_decode(s, b, a, &cp);
    w += (size_t)cp_width(cp);
  }
  return w;
}

static size_t term_cols(lr_t *lr) {
  struct winsize ws;
  if (ioctl(lr->out_fd, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0) return ws.ws_col;
  return 80;
}

/* ---- Drawing ---- */

static void refresh(lr_t *lr) {
  souk_buf_t o = {0};
  const char *text = lr->buf.data ? lr->buf.data : "";
  size_t len = lr->buf.len;
  souk_buf_t sp = {0};
  const char *prompt = lr->prompt;
  if (lr->search) {
    souk_buf_printf(&sp, "(%sreverse-i-search)`%s': ", lr->search_fail ? "failed " : "",
                    lr->query.data ? lr->query.data : "");
    prompt = sp.data;
  }
  size_t cols = term_cols(lr);
  size_t plen = str_width(prompt, 0, strlen(prompt));
  /* Leave the last column empty: writing there makes some terminals wrap. */
  size_t avail = cols > plen + 1 ? cols - plen - 1 : 1;
  size_t start = 0, cw = str_width(text, 0, lr->pos);
  while (cw > avail && start < lr->pos) {
    size_t nx = next_char(text, len, start);
    cw -= str_width(text, start, nx);
    start = nx;
  }
  size_t end = start, ew = 0;
  while (end < len) {
    size_t nx = next_char(text, len, end);
    size_t w = str_width(text, end, nx);
    if (ew + w > avail) break;
    ew += w;
    end = nx;
  }
  souk_buf_puts(&o, "\r");
  souk_buf_puts(&o, prompt);
  souk_buf_append(&o, text + start, end - start);
  souk_buf_puts(&o, "\x1b[0K\r");
  if (plen + cw > 0) souk_buf_printf(&o, "\x1b[%zuC", plen + cw);
  out_buf(lr, &o);
  souk_buf_free(&o);
  souk_buf_free(&sp);
}

static void bell(lr_t *lr) { out_write(lr->out_fd, "\a", 1); }

/* ---- History ---- */

static void hist_push(lr_t *lr, const char *s, size_t n) {
  if (n == 0 || s[0] == ' ' || n > lr->max_line) return;
  if (lr->hist_len && strlen(lr->hist[lr->hist_len - 1]) == n &&
      memcmp(lr->hist[lr->hist_len - 1], s, n) == 0)
    return;
  if (memchr(s, '\n', n) || memchr(s, '\0', n)) return;
  if (lr->hist_len == lr->hist_max) {
    souk_free(lr->hist[0]);
    memmove(lr->hist, lr->hist + 1, (lr->hist_len - 1) * sizeof *lr->hist);
    lr->hist_len--;
  }
  lr->hist[lr->hist_len++] = souk_memdup0(s, n);
}

static void hist_load(lr_t *lr) {
  if (!lr->hist_path) return;
  FILE *f = fopen(lr->hist_path, "re");
  if (!f) return;
  char *line = NULL;
  size_t cap = 0;
  ssize_t n;
  while ((n = getline(&line, &cap, f)) >= 0) {
    size_t k = (size_t)n;
    while (k > 0 && (line[k - 1] == '\n' || line[k - 1] == '\r'))
      k--;
    hist_push(lr, line, k);
  }
  free(line); /* getline allocates with malloc. */
  fclose(f);
}

/* Replace the file in one step so a crash never leaves half a history, and
 * create it 0600: commands may contain things other users should not read. */
static void hist_save(lr_t *lr) {
  if (!lr->hist_path || lr->hist_len == 0) return;
  souk_buf_t tmp = {0}, b = {0};
  souk_buf_printf(&tmp, "%s.tmp.%ld", lr->hist_path, (long)getpid());
  for (size_t i = 0; i < lr->hist_len; i++) {
    souk_buf_puts(&b, lr->hist[i]);
    souk_buf_putc(&b, '\n');
  }
  int fd = open(tmp.data, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
  bool ok = fd >= 0;
  if (ok) ok = fchmod(fd, 0600) == 0;
  size_t off = 0;
  while (ok && off < b.len) {
    ssize_t w = write(fd, b.data + off, b.len - off);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0)
      ok = false;
    else
      off += (size_t)w;
  }
  if (fd >= 0 && close(fd) != 0) ok = false;
  if (ok && rename(tmp.data, lr->hist_path) != 0) ok = false;
  if (!ok) {
    SOUK_WARN("console", "cannot save the history to %s: %s", lr->hist_path, strerror(errno));
    if (fd >= 0) unlink(tmp.data);
  }
  souk_buf_free(&tmp);
  souk_buf_free(&b);
}

/* ---- Lifetime ---- */

static void lr_free(lr_t *lr) {
  souk_free(lr->prompt);
  souk_free(lr->hist_path);
  souk_buf_free(&lr->pl);
  souk_buf_free(&lr->buf);
  souk_buf_free(&lr->kill);
  souk_buf_free(&lr->query);
  for (size_t i = 0; i < lr->hist_len; i++)
    souk_free(lr->hist[i]);
  souk_free(lr->hist);
  souk_free(lr->scratch);
  souk_free(lr->search_saved);
  souk_free(lr);
}

static void maybe_free(lr_t *lr) {
  if (lr->stopped && !lr->hold && !lr->handle_open && !lr->fs_busy) lr_free(lr);
}

static void close_cb(uv_handle_t *h) {
  lr_t *lr = h->data;
  lr->handle_open = false;
  maybe_free(lr);
}

void souk__lineread_stop(void) {
  lr_t *lr = g_lr;
  if (!lr) return;
  g_lr = NULL;
  lr->stopped = true;
  if (lr->edit) {
    /* The prompt is the editor's: take it away so what follows (a shutdown
     * message, the shell's prompt) starts on a clean row. */
    if (lr->prompt_shown) out_write(lr->out_fd, "\r\x1b[0K", 5);
    lr->prompt_shown = false;
    uv_tty_set_mode(&lr->h.tty, UV_TTY_MODE_NORMAL);
    hist_save(lr);
  }
  if (lr->handle_open) {
    uv_read_stop(&lr->h.s);
    if (!uv_is_closing(&lr->h.h)) uv_close(&lr->h.h, close_cb);
  }
  /* If the read already runs on a pool thread it cannot be cancelled; its
   * callback sees stopped and frees us. */
  if (lr->fs_busy) uv_cancel((uv_req_t *)&lr->fs);
  maybe_free(lr);
}

/* The input ended: deliver nothing more, stop, then tell the owner. */
static void at_eof(lr_t *lr) {
  souk__lineread_eof_cb cb = lr->on_eof;
  void *ud = lr->ud;
  if (g_lr == lr) souk__lineread_stop();
  if (cb) cb(ud);
}

int souk__lineread_is_tty(void) { return g_lr && g_lr->edit; }

/* ---- Plain mode ---- */

static void overlong_msg(lr_t *lr) {
  souk_buf_t m = {0};
  souk_buf_printf(&m, "souk: line longer than %zu bytes ignored\n", lr->max_line);
  out_buf(lr, &m);
  souk_buf_free(&m);
}

/* One line is complete in lr->pl (without its LF). */
static void plain_line(lr_t *lr) {
  size_t n = lr->pl.len;
  if (!lr->overlong && n > 0 && lr->pl.data[n - 1] == '\r') n--;
  if (lr->overlong || n > lr->max_line) {
    lr->overlong = false;
    souk_buf_reset(&lr->pl);
    overlong_msg(lr);
    return;
  }
  char *line = souk_buf_steal(&lr->pl);
  line[n] = '\0';
  lr->on_line(line, n, lr->ud);
  souk_free(line);
}

static void plain_feed(lr_t *lr, const char *p, size_t n) {
  while (n > 0 && !lr->stopped) {
    const char *nl = memchr(p, '\n', n);
    size_t take = nl ? (size_t)(nl - p) : n;
    if (!lr->overlong) {
      /* One byte more than max_line leaves room for a CR before the LF. */
      if (lr->pl.len + take > lr->max_line + 1) {
        lr->overlong = true;
        souk_buf_free(&lr->pl);
      } else {
        souk_buf_append(&lr->pl, p, take);
      }
    }
    if (!nl) return;
    plain_line(lr);
    p = nl + 1;
    n -= take + 1;
  }
}

static void plain_eof(lr_t *lr) {
  if (lr->overlong) {
    overlong_msg(lr);
  } else if (lr->pl.len > 0) {
    plain_line(lr);
    if (lr->stopped) return; /* The owner stopped us: no on_eof. */
  }
  at_eof(lr);
}

/* ---- Editing ---- */

static const char *text(lr_t *lr) { return lr->buf.data ? lr->buf.data : ""; }

static void set_line(lr_t *lr, const char *s, size_t pos) {
  souk_buf_reset(&lr->buf);
  souk_buf_puts(&lr->buf, s ? s : "");
  lr->pos = pos > lr->buf.len ? lr->buf.len : pos;
}

/* Remove [a, b) from the line; keep it for Ctrl-Y when asked. */
static void cut(lr_t *lr, size_t a, size_t b, bool keep) {
  if (a >= b) return;
  if (keep) {
    souk_buf_reset(&lr->kill);
    souk_buf_append(&lr->kill, lr->buf.data + a, b - a);
  }
  memmove(lr->buf.data + a, lr->buf.data + b, lr->buf.len - b + 1);
  lr->buf.len -= b - a;
  if (lr->pos > b)
    lr->pos -= b - a;
  else if (lr->pos > a)
    lr->pos = a;
}

static void insert(lr_t *lr, const char *s, size_t n) {
  size_t room = lr->max_line - lr->buf.len;
  if (n > room) {
    /* Keep what fits of a pasted ASCII run; a multibyte character is never
     * cut, so it is refused whole. */
    bell(lr);
    for (size_t i = 0; i < n; i++)
      if ((unsigned char)s[i] >= 0x80) return;
    n = room;
    if (n == 0) return;
  }
  souk_buf_reserve(&lr->buf, n);
  /* buf.data exists now, but a fresh allocation has no NUL yet. */
  if (lr->buf.len == 0) lr->buf.data[0] = '\0';
  memmove(lr->buf.data + lr->pos + n, lr->buf.data + lr->pos, lr->buf.len - lr->pos + 1);
  memcpy(lr->buf.data + lr->pos, s, n);
  lr->buf.len += n;
  lr->pos += n;
}

static bool is_space(char c) { return c == ' ' || c == '\t'; }

static size_t word_left(lr_t *lr) {
  const char *s = text(lr);
  size_t i = lr->pos;
  while (i > 0 && is_space(s[i - 1]))
    i--;
  while (i > 0 && !is_space(s[i - 1]))
    i--;
  return i;
}

static size_t word_right(lr_t *lr) {
  const char *s = text(lr);
  size_t i = lr->pos, n = lr->buf.len;
  while (i < n && is_space(s[i]))
    i++;
  while (i < n && !is_space(s[i]))
    i++;
  return i;
}

static void hist_reset_nav(lr_t *lr) {
  lr->hist_idx = lr->hist_len;
  souk_free(lr->scratch);
  lr->scratch = NULL;
}

static void hist_move(lr_t *lr, bool older) {
  if (older) {
    if (lr->hist_idx == 0) {
      bell(lr);
      return;
    }
    if (lr->hist_idx == lr->hist_len) {
      souk_free(lr->scratch);
      lr->scratch = souk_strdup(text(lr));
    }
    lr->hist_idx--;
    set_line(lr, lr->hist[lr->hist_idx], SIZE_MAX);
  } else {
    if (lr->hist_idx >= lr->hist_len) {
      bell(lr);
      return;
    }
    lr->hist_idx++;
    set_line(lr, lr->hist_idx == lr->hist_len ? lr->scratch : lr->hist[lr->hist_idx], SIZE_MAX);
  }
  refresh(lr);
}

/* Enter: the line is done.  Returns false when the owner stopped us. */
static bool accept_line(lr_t *lr) {
  lr->pos = lr->buf.len;
  refresh(lr);
  out_write(lr->out_fd, "\r\n", 2);
  lr->prompt_shown = false;
  hist_push(lr, text(lr), lr->buf.len);
  hist_reset_nav(lr);
  size_t n = lr->buf.len;
  char *line = souk_buf_steal(&lr->buf);
  lr->pos = 0;
  lr->on_line(line, n, lr->ud);
  souk_free(line);
  if (lr->stopped) return false;
  lr->prompt_shown = true;
  refresh(lr);
  return true;
}

/* ---- Ctrl-R ---- */

static void search_find(lr_t *lr, size_t from_plus_one) {
  const char *q = lr->query.data ? lr->query.data : "";
  size_t qn = lr->query.len;
  for (size_t i = from_plus_one; i-- > 0;) {
    const char *h = lr->hist[i];
    const char *m = memmem(h, strlen(h), q, qn);
    if (m) {
      lr->search_idx = i;
      lr->search_fail = false;
      set_line(lr, h, (size_t)(m - h));
      refresh(lr);
      return;
    }
  }
  lr->search_fail = true;
  refresh(lr);
  bell(lr);
}

static void search_begin(lr_t *lr) {
  lr->search = true;
  lr->search_fail = false;
  souk_buf_reset(&lr->query);
  lr->search_idx = lr->hist_len;
  souk_free(lr->search_saved);
  lr->search_saved = souk_strdup(text(lr));
  lr->search_saved_pos = lr->pos;
  refresh(lr);
}

static void search_end(lr_t *lr, bool restore) {
  lr->search = false;
  if (restore) set_line(lr, lr->search_saved, lr->search_saved_pos);
  souk_free(lr->search_saved);
  lr->search_saved = NULL;
  hist_reset_nav(lr);
  refresh(lr);
}

/* Text typed or pasted: already complete UTF-8 characters. */
static void on_text(lr_t *lr, const char *s, size_t n) {
  if (lr->search) {
    souk_buf_append(&lr->query, s, n);
    search_find(lr, lr->search_idx < lr->hist_len ? lr->search_idx + 1 : lr->hist_len);
    return;
  }
  insert(lr, s, n);
  refresh(lr);
}

/* Returns false when the owner stopped us. */
static bool on_key(lr_t *lr, int k) {
  bool was_cr = lr->last_cr;
  lr->last_cr = k == '\r';
  if (k == '\n' && was_cr) return true; /* CR LF from a paste: one Enter. */
  if (lr->search) {
    switch (k) {
    case 0x12: /* Ctrl-R: the next older match. */
      if (lr->search_idx > 0 && lr->query.len)
        search_find(lr, lr->search_idx);
      else
        bell(lr);
      return true;
    case 0x7F:
    case 0x08:
      if (lr->query.len) {
        lr->query.len = prev_char(lr->query.data, lr->query.len, lr->query.len);
        lr->query.data[lr->query.len] = '\0';
        search_find(lr, lr->hist_len);
      }
      return true;
    case 0x07: /* Ctrl-G and Ctrl-C give the search up. */
    case 0x03:
      search_end(lr, true);
      return true;
    case K_IGNORE:
      return true;
    default: /* Any other key takes the match and then does its job. */
      search_end(lr, false);
      break;
    }
  }
  const char *s = text(lr);
  size_t n = lr->buf.len;
  switch (k) {
  case '\r':
  case '\n':
    return accept_line(lr);
  case 0x01: /* Ctrl-A */
  case K_HOME:
    lr->pos = 0;
    break;
  case 0x05: /* Ctrl-E */
  case K_END:
    lr->pos = n;
    break;
  case 0x02: /* Ctrl-B */
  case K_LEFT:
    lr->pos = prev_char(s, n, lr->pos);
    break;
  case 0x06: /* Ctrl-F */
  case K_RIGHT:
    lr->pos = next_char(s, n, lr->pos);
    break;
  case K_WORD_LEFT:
    lr->pos = word_left(lr);
    break;
  case K_WORD_RIGHT:
    lr->pos = word_right(lr);
    break;
  case 0x7F: /* Backspace */
  case 0x08:
    if (lr->pos == 0) {
      bell(lr);
      return true;
    }
    cut(lr, prev_char(s, n, lr->pos), lr->pos, false);
    break;
  case K_DELETE:
    if (lr->pos == n) {
      bell(lr);
      return true;
    }
    cut(lr, lr->pos, next_char(s, n, lr->pos), false);
    break;
  case 0x04: /* Ctrl-D: end on an empty line, else delete. */
    if (n == 0) {
      out_write(lr->out_fd, "\r\n", 2);
      lr->prompt_shown = false;
      at_eof(lr);
      return false;
    }
    if (lr->pos < n) cut(lr, lr->pos, next_char(s, n, lr->pos), false);
    break;
  case 0x0B: /* Ctrl-K */
    cut(lr, lr->pos, n, true);
    break;
  case 0x15: /* Ctrl-U */
    cut(lr, 0, lr->pos, true);
    break;
  case 0x17: /* Ctrl-W */
  case K_WORD_RUBOUT:
    cut(lr, word_left(lr), lr->pos, true);
    break;
  case K_WORD_DELETE:
    cut(lr, lr->pos, word_right(lr), true);
    break;
  case 0x19: /* Ctrl-Y */
    if (lr->kill.len) insert(lr, lr->kill.data, lr->kill.len);
    break;
  case 0x14: /* Ctrl-T: swap the characters around the cursor. */
    if (n >= 2 && lr->pos > 0) {
      size_t b = lr->pos == n ? prev_char(s, n, n) : lr->pos;
      size_t a = prev_char(s, n, b), c = next_char(s, n, b);
      char *tmp = souk_memdup0(s + a, b - a);
      size_t an = b - a;
      memmove(lr->buf.data + a, lr->buf.data + b, c - b);
      memcpy(lr->buf.data + a + (c - b), tmp, an);
      souk_free(tmp);
      lr->pos = c;
    }
    break;
  case 0x0C: /* Ctrl-L */
    out_write(lr->out_fd, "\x1b[H\x1b[2J", 7);
    break;
  case K_UP:
  case 0x10: /* Ctrl-P */
    hist_move(lr, true);
    return true;
  case K_DOWN:
  case 0x0E: /* Ctrl-N */
    hist_move(lr, false);
    return true;
  case 0x12: /* Ctrl-R */
    search_begin(lr);
    return true;
  case 0x03: /* Ctrl-C: drop the line, or interrupt souk on an empty one. */
    if (n == 0) {
      /* ISIG is off in raw mode, so do what the terminal would have done. */
      raise(SIGINT);
      return !lr->stopped;
    }
    out_write(lr->out_fd, "^C\r\n", 4);
    souk_buf_reset(&lr->buf);
    lr->pos = 0;
    hist_reset_nav(lr);
    break;
  case 0x1A: /* Ctrl-Z: suspend with the terminal in its normal mode. */
    out_write(lr->out_fd, "\r\n", 2);
    uv_tty_set_mode(&lr->h.tty, UV_TTY_MODE_NORMAL);
    raise(SIGTSTP);
    uv_tty_set_mode(&lr->h.tty, UV_TTY_MODE_RAW);
    break;
  default:
    return true; /* Tab and other keys do nothing. */
  }
  refresh(lr);
  return true;
}

/* A finished CSI or SS3 sequence. */
static int esc_key(lr_t *lr, char final) {
  const char *p = lr->csi;
  bool ctrl = strstr(p, ";5") || strstr(p, ";3"); /* Ctrl or Alt modifier. */
  switch (final) {
  case 'A':
    return K_UP;
  case 'B':
    return K_DOWN;
  case 'C':
    return ctrl ? K_WORD_RIGHT : K_RIGHT;
  case 'D':
    return ctrl ? K_WORD_LEFT : K_LEFT;
  case 'H':
    return K_HOME;
  case 'F':
    return K_END;
  case '~':
    switch (atoi(p)) {
    case 1:
    case 7:
      return K_HOME;
    case 4:
    case 8:
      return K_END;
    case 3:
      return K_DELETE;
    default:
      return K_IGNORE; /* Insert, page keys, paste brackets. */
    }
  default:
    return K_IGNORE;
  }
}

/* Turn bytes into keys: escape sequences and UTF-8 may arrive split across
 * reads, so both are state machines. */
static void edit_feed(lr_t *lr, const char *p, size_t n) {
  size_t i = 0;
  while (i < n && !lr->stopped) {
    unsigned char c = (unsigned char)p[i];
    if (lr->esc == ESC_ESC) {
      i++;
      lr->esc = ESC_NONE;
      if (c == '[' || c == 'O') {
        lr->esc = c == '[' ? ESC_CSI : ESC_SS3;
        lr->csi_len = 0;
        lr->csi[0] = '\0';
        continue;
      }
      int k = c == 'b' || c == 'B'     ? K_WORD_LEFT
              : c == 'f' || c == 'F'   ? K_WORD_RIGHT
              : c == 'd' || c == 'D'   ? K_WORD_DELETE
              : c == 0x7F || c == 0x08 ? K_WORD_RUBOUT
                                       : K_IGNORE;
      if (!on_key(lr, k)) return;
      continue;
    }
    if (lr->esc == ESC_CSI || lr->esc == ESC_SS3) {
      i++;
      if (lr->esc == ESC_CSI && c >= 0x20 && c <= 0x3F) {
        if (lr->csi_len + 1 < sizeof lr->csi) {
          lr->csi[lr->csi_len++] = (char)c;
          lr->csi[lr->csi_len] = '\0';
        }
        continue;
      }
      lr->esc = ESC_NONE;
      if (!on_key(lr, esc_key(lr, (char)c))) return;
      continue;
    }
    if (lr->u8_need) {
      if ((c & 0xC0) == 0x80) {
        lr->u8[lr->u8_len++] = c;
        i++;
        if (lr->u8_len == lr->u8_need) {
          lr->u8_need = 0;
          if (souk_utf8_seq(lr->u8, lr->u8_len) == lr->u8_len)
            on_text(lr, (char *)lr->u8, lr->u8_len);
        }
        continue;
      }
      lr->u8_need = 0; /* A broken sequence is dropped; c is looked at anew. */
    }
    if (c >= 0x80) {
      i++;
      size_t need = c >= 0xF0 && c <= 0xF4   ? 4
                    : c >= 0xE0 && c <= 0xEF ? 3
                    : c >= 0xC2 && c <= 0xDF ? 2
                                             : 0;
      if (need) {
        lr->u8[0] = c;
        lr->u8_len = 1;
        lr->u8_need = need;
      }
      continue;
    }
    if (c >= 0x20 && c < 0x7F) {
      /* A run of printable ASCII (typing or a paste) is one insertion. */
      size_t j = i;
      while (j < n && (unsigned char)p[j] >= 0x20 && (unsigned char)p[j] < 0x7F)
        j++;
      lr->last_cr = false;
      on_text(lr, p + i, j - i);
      i = j;
      continue;
    }
    i++;
    if (c == 0x1B) {
      lr->esc = ESC_ESC;
      continue;
    }
    if (!on_key(lr, c)) return;
  }
}

/* ---- libuv callbacks ---- */

static void alloc_cb(uv_handle_t *h, size_t hint, uv_buf_t *buf) {
  lr_t *lr = h->data;
  buf->base = lr->rbuf;
  buf->len = sizeof lr->rbuf;
}

static void feed(lr_t *lr, const char *p, size_t n) {
  if (lr->edit)
    edit_feed(lr, p, n);
  else
    plain_feed(lr, p, n);
}

static void read_cb(uv_stream_t *s, ssize_t n, const uv_buf_t *buf) {
  lr_t *lr = s->data;
  if (lr->stopped) return;
  lr->hold++;
  if (n > 0)
    feed(lr, buf->base, (size_t)n);
  else if (n < 0) {
    /* A terminal hang-up drops a half-typed line: nobody is there to mean it. */
    if (lr->edit)
      at_eof(lr);
    else
      plain_eof(lr);
  }
  lr->hold--;
  maybe_free(lr);
}

static void fs_read_cb(uv_fs_t *req) {
  lr_t *lr = req->data;
  ssize_t n = req->result;
  uv_fs_req_cleanup(req);
  lr->fs_busy = false;
  lr->hold++;
  if (!lr->stopped) {
    if (n <= 0) {
      plain_eof(lr);
    } else {
      feed(lr, lr->rbuf, (size_t)n);
      if (!lr->stopped) {
        uv_buf_t b = uv_buf_init(lr->rbuf, sizeof lr->rbuf);
        lr->fs.data = lr;
        if (uv_fs_read(souk_loop(), &lr->fs, lr->in_fd, &b, 1, -1, fs_read_cb) == 0)
          lr->fs_busy = true;
        else
          plain_eof(lr);
      }
    }
  }
  lr->hold--;
  maybe_free(lr);
}

/* ---- Start ---- */

int souk__lineread_start(const souk__lineread_opts_t *o) {
  if (!o || !o->on_line || g_lr) return SOUK_EINVAL;
  if (fcntl(o->in_fd, F_GETFL) < 0) return SOUK_EIO;
  uv_loop_t *loop = souk_loop();
  lr_t *lr = souk_calloc(1, sizeof *lr);
  lr->in_fd = o->in_fd;
  lr->out_fd = o->out_fd;
  lr->prompt = souk_strdup(o->prompt ? o->prompt : "> ");
  lr->hist_path = souk_strdup(o->history_path);
  lr->max_line = o->max_line ? o->max_line : LR_DEFAULT_MAX_LINE;
  lr->hist_max = o->history_max ? o->history_max : LR_DEFAULT_HISTORY;
  lr->on_line = o->on_line;
  lr->on_eof = o->on_eof;
  lr->ud = o->ud;
  lr->h.h.data = lr;

  uv_handle_type t = uv_guess_handle(o->in_fd);
  const char *term = getenv("TERM");
  int rc = 0;
  if (t == UV_TTY) {
    lr->kind = IN_TTY;
    lr->edit = isatty(o->out_fd) && term && *term && strcmp(term, "dumb") != 0;
    rc = uv_tty_init(loop, &lr->h.tty, o->in_fd, 1);
    lr->handle_open = rc == 0;
  } else if (t == UV_NAMED_PIPE) {
    /* libuv closes the descriptor with the handle: give it a copy so the
     * caller's stays open. */
    lr->kind = IN_PIPE;
    int fd = fcntl(o->in_fd, F_DUPFD_CLOEXEC, 3);
    rc = fd < 0 ? UV_EBADF : uv_pipe_init(loop, &lr->h.pipe, 0);
    if (rc == 0) {
      lr->handle_open = true;
      rc = uv_pipe_open(&lr->h.pipe, fd);
      if (rc) close(fd);
    } else if (fd >= 0) {
      close(fd);
    }
  } else {
    /* A regular file, /dev/null or anything else: read on the thread pool. */
    lr->kind = IN_FILE;
    uv_buf_t b = uv_buf_init(lr->rbuf, sizeof lr->rbuf);
    lr->fs.data = lr;
    rc = uv_fs_read(loop, &lr->fs, o->in_fd, &b, 1, -1, fs_read_cb);
    lr->fs_busy = rc == 0;
  }
  if (rc == 0 && lr->handle_open) rc = uv_read_start(&lr->h.s, alloc_cb, read_cb);
  if (rc == 0 && lr->edit) rc = uv_tty_set_mode(&lr->h.tty, UV_TTY_MODE_RAW);
  if (rc) {
    SOUK_ERROR("console", "cannot read the input: %s", uv_strerror(rc));
    lr->edit = false;
    g_lr = lr;
    souk__lineread_stop();
    return SOUK_EIO;
  }
  g_lr = lr;
  if (lr->edit) {
    lr->hist = souk_calloc(lr->hist_max, sizeof *lr->hist);
    hist_load(lr);
    hist_reset_nav(lr);
    lr->prompt_shown = true;
    refresh(lr);
  }
  return 0;
}

/* ---- Output from the owner ---- */

void souk__lineread_print(const char *s, size_t n) {
  lr_t *lr = g_lr;
  int fd = lr ? lr->out_fd : STDOUT_FILENO;
  bool nl = n > 0 && s[n - 1] == '\n';
  if (!lr || !lr->edit) {
    out_write(fd, s, n);
    if (!nl) out_write(fd, "\n", 1);
    return;
  }
  souk_buf_t o = {0};
  if (lr->prompt_shown) souk_buf_puts(&o, "\r\x1b[0K");
  /* Raw mode may have left output post-processing on or off: say CR LF. */
  for (size_t i = 0; i < n; i++) {
    if (s[i] == '\n' && (i == 0 || s[i - 1] != '\r')) souk_buf_putc(&o, '\r');
    souk_buf_putc(&o, s[i]);
  }
  if (!nl) souk_buf_puts(&o, "\r\n");
  out_buf(lr, &o);
  souk_buf_free(&o);
  if (lr->prompt_shown) refresh(lr);
}
