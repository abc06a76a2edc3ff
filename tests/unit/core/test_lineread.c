/* Unit tests for the console's line reader (src/core/lineread.c): the
 * terminal path driven through a pseudo-terminal pair, keys typed as the
 * bytes a terminal sends, and the plain path through pipes, files and
 * /dev/null.  Every wait is bounded, and alarm() ends a runner that hangs. */
/* cmocka.h needs these headers included before it. */
/* clang-format off */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include <cmocka.h>
/* clang-format on */

#include "core/lineread.h"
#include "souk/alloc.h"
#include "souk/buf.h"
#include "souk/err.h"
#include "souk/loop.h"

#define MAX_LINES 64

/* What the reader delivered. */
static struct {
  char *lines[MAX_LINES];
  size_t lens[MAX_LINES];
  size_t n;
  size_t next; /* The next line expect_line() looks at. */
  int eofs;
  const char *stop_on;  /* Stop from inside on_line when this line comes. */
  const char *print_in; /* Print this from inside on_line. */
} g_rec;

static int g_master = -1, g_slave = -1;
static souk_buf_t g_screen; /* Everything the reader wrote to the terminal. */
static char g_dir[64];

static void rec_reset(void) {
  for (size_t i = 0; i < g_rec.n; i++)
    souk_free(g_rec.lines[i]);
  memset(&g_rec, 0, sizeof g_rec);
  souk_buf_reset(&g_screen);
}

static void on_line(const char *line, size_t len, void *ud) {
  assert_int_equal(line[len], '\0');
  assert_true(g_rec.n < MAX_LINES);
  g_rec.lines[g_rec.n] = souk_memdup0(line, len);
  g_rec.lens[g_rec.n++] = len;
  if (g_rec.print_in) souk__lineread_print(g_rec.print_in, strlen(g_rec.print_in));
  if (g_rec.stop_on && strcmp(line, g_rec.stop_on) == 0) souk__lineread_stop();
}

static void on_eof(void *ud) {
  g_rec.eofs++;
  assert_ptr_equal(ud, &g_rec);
  assert_false(souk__lineread_is_tty());
}

static uint64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void drain(void) {
  if (g_master < 0) return;
  char b[4096];
  ssize_t n;
  while ((n = read(g_master, b, sizeof b)) > 0)
    souk_buf_append(&g_screen, b, (size_t)n);
}

/* Run the loop until n lines (or an EOF) arrived, or for at most ms. */
static void run_for_lines(size_t n, unsigned ms) {
  uint64_t end = now_ms() + ms;
  while (now_ms() < end) {
    uv_run(souk_loop(), UV_RUN_NOWAIT);
    drain();
    if (g_rec.n >= n || g_rec.eofs) break;
    usleep(1000);
  }
  uv_run(souk_loop(), UV_RUN_NOWAIT);
  drain();
}

/* Let the loop run idle for a while (for "nothing more happens"). */
static void settle(unsigned ms) { run_for_lines(SIZE_MAX, ms); }

static void type(const char *s) {
  size_t n = strlen(s);
  assert_int_equal(write(g_master, s, n), (ssize_t)n);
  settle(20);
}

static void expect_line(const char *want) {
  size_t i = g_rec.next++;
  run_for_lines(i + 1, 2000);
  assert_true(g_rec.n > i);
  assert_string_equal(g_rec.lines[i], want);
}

static void open_pty(unsigned short cols) {
  g_master = posix_openpt(O_RDWR | O_NOCTTY);
  assert_true(g_master >= 0);
  assert_int_equal(grantpt(g_master), 0);
  assert_int_equal(unlockpt(g_master), 0);
  g_slave = open(ptsname(g_master), O_RDWR | O_NOCTTY);
  assert_true(g_slave >= 0);
  struct winsize ws = {.ws_row = 24, .ws_col = cols};
  assert_int_equal(ioctl(g_master, TIOCSWINSZ, &ws), 0);
  int fl = fcntl(g_master, F_GETFL);
  fcntl(g_master, F_SETFL, fl | O_NONBLOCK);
}

static void close_pty(void) {
  close(g_slave);
  close(g_master);
  g_slave = g_master = -1;
}

static void start_tty(const char *hist, size_t max_line) {
  souk__lineread_opts_t o = {.in_fd = g_slave,
                            .out_fd = g_slave,
                            .prompt = "souk> ",
                            .history_path = hist,
                            .max_line = max_line,
                            .on_line = on_line,
                            .on_eof = on_eof,
                            .ud = &g_rec};
  assert_int_equal(souk__lineread_start(&o), 0);
  assert_true(souk__lineread_is_tty());
  settle(10);
}

/* Stop and let libuv run the close callbacks that free the reader. */
static void stop(void) {
  souk__lineread_stop();
  settle(10);
}

/* Whether the terminal shows s, waiting up to 2 s for it (slow under valgrind). */
static bool screen_has(const char *s) {
  uint64_t end = now_ms() + 2000;
  while (!(g_screen.data && strstr(g_screen.data, s)) && now_ms() < end)
    settle(5);
  return g_screen.data && strstr(g_screen.data, s);
}

/* ---- terminal ---- */

static void test_tty_basic(void **state) {
  rec_reset();
  open_pty(80);
  start_tty(NULL, 0);
  assert_true(screen_has("souk> "));
  /* The terminal is in raw mode while the reader runs. */
  struct termios t;
  assert_int_equal(tcgetattr(g_slave, &t), 0);
  assert_false(t.c_lflag & (ICANON | ECHO));

  type("hello\r");
  expect_line("hello");
  /* Typed characters are echoed by the editor, not the terminal. */
  assert_true(screen_has("souk> hello"));
  /* An empty Enter is a line too; CR LF from a paste is one Enter. */
  type("\r");
  expect_line("");
  type("a\r\nb\r");
  expect_line("a");
  expect_line("b");
  assert_int_equal(g_rec.n, 4);
  /* Several lines in one write, as a paste delivers them. */
  type("one\rtwo\r");
  expect_line("one");
  expect_line("two");

  stop();
  assert_int_equal(g_rec.eofs, 0);
  assert_int_equal(tcgetattr(g_slave, &t), 0);
  assert_true(t.c_lflag & ICANON);
  assert_true(t.c_lflag & ECHO);
  souk__lineread_stop(); /* Twice is harmless. */
  close_pty();
}

static void test_tty_keys(void **state) {
  rec_reset();
  open_pty(80);
  start_tty(NULL, 0);
  /* Left arrow, then insert in the middle. */
  type("helo\x1b[Dl\r");
  expect_line("hello");
  /* Backspace (DEL and ^H). */
  type("abcx\x7f"
       "d\x08"
       "e\r");
  expect_line("abce");
  /* Ctrl-A and Ctrl-E, Home and End in their CSI, SS3 and ~ forms. */
  type("world\x01hello \x05!\r");
  expect_line("hello world!");
  type("b\x1b[Ha\x1b[Fc\x1bOHx\x1bOFy\x1b[1~0\x1b[4~9\r");
  expect_line("0xabcy9");
  /* Ctrl-K kills to the end, Ctrl-Y yanks it back. */
  type("hello world\x01\x06\x06\x06\x06\x06\x0b\r");
  expect_line("hello");
  type("hello world\x01\x1b[C\x1b[C\x1b[C\x1b[C\x1b[C\x0b\x01\x19\r");
  expect_line(" worldhello");
  /* Ctrl-U kills to the start, Ctrl-W the word before the cursor. */
  type("junk here\x15kept\r");
  expect_line("kept");
  type("one two  three\x17\x17"
       "2\r");
  expect_line("one 2");
  /* Delete, and Ctrl-D deletes under the cursor on a non-empty line. */
  type("abcd\x01\x1b[3~\x04\r");
  expect_line("cd");
  /* Alt-B / Alt-F and Ctrl-Left / Ctrl-Right move by words; Alt-D deletes one. */
  type("aa bb cc\x1b"
       "b\x1b"
       "bX\x1b[1;5CY\x1b[1;5D\x1b[1;5D\x1b"
       "d\r");
  expect_line(" XbbY cc");
  /* Ctrl-T swaps the two characters before the cursor at the end. */
  type("ab\x14\r");
  expect_line("ba");
  /* Ctrl-C drops a non-empty line. */
  type("abc\x03"
       "d\r");
  expect_line("d");
  assert_true(screen_has("^C"));
  /* Escape sequences split across reads still work. */
  type("xy\x1b");
  type("[");
  type("Dz\r");
  expect_line("xzy");
  /* Ctrl-L clears the screen and draws the line again at the top. */
  souk_buf_reset(&g_screen);
  type("ab\x0c"
       "c\r");
  expect_line("abc");
  assert_true(screen_has("\x1b[H\x1b[2J\rsouk> ab"));
  /* Unknown sequences and Tab are ignored, not inserted. */
  type("a\x1b[5~\x1b[200~\t\x1b[Zb\r");
  expect_line("ab");
  stop();
  close_pty();
}

static void test_tty_utf8(void **state) {
  rec_reset();
  open_pty(80);
  start_tty(NULL, 0);
  /* Left moves over a whole two-byte character. */
  type("a\xc3\xa9\x1b[Db\r");
  expect_line("ab\xc3\xa9");
  /* Backspace removes a whole three-byte character. */
  type("x\xe2\x82\xac\x7fy\r");
  expect_line("xy");
  /* A combining accent stays with its letter. */
  type("e\xcc\x81\x1b[Dx\r");
  expect_line("xe\xcc\x81");
  /* A character split across reads is assembled, not inserted in parts. */
  type("q\xe2");
  type("\x82");
  type("\xac\x1b[D\x1b[Dp\r");
  expect_line("pq\xe2\x82\xac");
  /* Invalid bytes from the terminal are dropped. */
  type("a\xff\x80"
       "b\r");
  expect_line("ab");
  /* Four-byte characters and Ctrl-W over multibyte words. */
  type("ok \xf0\x9f\x98\x80\xe4\xb8\xad\x17"
       "fine\r");
  expect_line("ok fine");
  stop();
  close_pty();
}

static void test_tty_limits_and_scroll(void **state) {
  rec_reset();
  open_pty(20);
  start_tty(NULL, 8);
  /* Beyond max_line bytes typing is refused with a bell. */
  type("abcdefghijkl\r");
  expect_line("abcdefgh");
  assert_true(screen_has("\a"));
  stop();

  /* A line wider than the terminal scrolls on one row: no refresh writes
   * more than the width, and the whole line is delivered. */
  rec_reset();
  start_tty(NULL, 0);
  char line[61];
  for (int i = 0; i < 60; i++)
    line[i] = (char)('a' + i % 26);
  line[60] = '\0';
  souk_buf_reset(&g_screen);
  type(line);
  assert_true(screen_has(line + 47));
  /* The last redraw shows the end of the line and fits in 19 columns. */
  const char *last = strrchr(g_screen.data, '\r');
  assert_non_null(last);
  const char *prev = g_screen.data;
  for (const char *p = g_screen.data; p < last; p++)
    if (*p == '\r') prev = p;
  size_t shown = (size_t)(strstr(prev, "\x1b[0K") - prev) - 1;
  assert_true(shown <= 19);
  assert_non_null(strstr(prev, line + 50));
  type("\x01X\r");
  char want[62] = "X";
  strcat(want, line);
  expect_line(want);
  /* Wide characters count two columns. */
  souk_buf_reset(&g_screen);
  type("\xe4\xb8\xad\xe4\xb8\xad\r");
  expect_line("\xe4\xb8\xad\xe4\xb8\xad");
  assert_true(screen_has("\x1b[10C")); /* "souk> " is 6 columns, 2 x 2 more. */
  stop();
  close_pty();
}

static void test_tty_print(void **state) {
  rec_reset();
  open_pty(80);
  start_tty(NULL, 0);
  type("half");
  souk_buf_reset(&g_screen);
  /* A reply arrives while the line is half typed. */
  const char *reply = "reply one\nreply two";
  souk__lineread_print(reply, strlen(reply));
  /* The row is cleared, the text printed with CR LF, and the prompt and the
   * half-typed line drawn again below it. */
  assert_true(screen_has("\rsouk> half"));
  const char *p = strstr(g_screen.data, "\r\x1b[0Kreply one");
  assert_non_null(p);
  const char *q = strstr(p, "reply two");
  assert_non_null(q);
  assert_non_null(strstr(q, "\n\rsouk> half"));
  type("way\r");
  expect_line("halfway");

  /* Output printed from inside on_line comes before the next prompt. */
  g_rec.print_in = "done";
  souk_buf_reset(&g_screen);
  type("cmd\r");
  expect_line("cmd");
  p = strstr(g_screen.data, "done");
  assert_non_null(p);
  assert_non_null(strstr(p, "souk> "));
  assert_null(strstr(p, "\x1b[0Kdone")); /* No prompt was on the row to clear. */
  g_rec.print_in = NULL;
  stop();
  close_pty();
}

static void read_file(const char *path, char *out, size_t cap) {
  FILE *f = fopen(path, "r");
  assert_non_null(f);
  size_t n = fread(out, 1, cap - 1, f);
  out[n] = '\0';
  fclose(f);
}

static void test_tty_history(void **state) {
  rec_reset();
  char hist[128];
  snprintf(hist, sizeof hist, "%s/history", g_dir);
  /* An existing file with loose permissions ends up 0600. */
  FILE *f = fopen(hist, "w");
  assert_non_null(f);
  fputs("old\r\n\nolder\n", f);
  fclose(f);
  chmod(hist, 0644);

  open_pty(80);
  start_tty(hist, 0);
  type("one\r");
  expect_line("one");
  type("two\r");
  expect_line("two");
  type("two\r"); /* A repeat of the previous entry is not added. */
  expect_line("two");
  type(" secret\r"); /* A leading space keeps a line out of history. */
  expect_line(" secret");
  /* Up recalls from newest to oldest, Down comes back to what was typed. */
  type("\x1b[A\r");
  expect_line("two");
  type("\x1b[A\x1b[A\x1b[A\r");
  expect_line("older");
  type("draft\x1b[A\x1b[A\x1b[B\x1b[B\r");
  expect_line("draft");
  type("\x10\x10\x10\x0e\r"); /* Ctrl-P x 3, Ctrl-N */
  expect_line("older");
  /* Editing a recalled entry does not change the history. */
  type("\x1b[A\x1b[A\x7f\x7fX\r");
  expect_line("draX");
  /* Up at the oldest entry rings and stays. */
  type("\x1b[A\x1b[A\x1b[A\x1b[A\x1b[A\x1b[A\x1b[A\x1b[A\x1b[A\x1b[A\x1b[A\r");
  expect_line("old");

  /* Ctrl-R searches backwards; Ctrl-R again finds the next older match. */
  type("\x12ne\r");
  expect_line("one");
  type("\x12o\x12\x12\r");
  expect_line("older");
  assert_true(screen_has("(reverse-i-search)`o': "));
  /* A failed search says so; Ctrl-G gives up and restores the line. */
  type("keep\x12zzz");
  assert_true(screen_has("(failed reverse-i-search)`zzz': "));
  type("\x07!\r");
  expect_line("keep!");
  /* Another key takes the match and does its own job. */
  type("\x12tw\x01>\r");
  expect_line(">two");
  /* Backspace in the search shortens the query. */
  type("\x12olx\x7f\x1b[F\r");
  expect_line("older");
  stop();

  struct stat st;
  assert_int_equal(stat(hist, &st), 0);
  assert_int_equal(st.st_mode & 0777, 0600);
  char got[512];
  read_file(hist, got, sizeof got);
  assert_string_equal(
      got,
      "old\nolder\none\ntwo\nolder\ndraft\nolder\ndraX\nold\none\nolder\nkeep!\n>two\nolder\n");

  /* A new session recalls the saved history. */
  rec_reset();
  start_tty(hist, 0);
  type("\x1b[A\x1b[A\r");
  expect_line(">two");
  assert_true(screen_has("souk> older"));
  stop();
  close_pty();
  unlink(hist);
}

static void test_tty_history_max(void **state) {
  rec_reset();
  char hist[128];
  snprintf(hist, sizeof hist, "%s/history-max", g_dir);
  open_pty(80);
  souk__lineread_opts_t o = {.in_fd = g_slave,
                            .out_fd = g_slave,
                            .history_path = hist,
                            .history_max = 3,
                            .on_line = on_line};
  assert_int_equal(souk__lineread_start(&o), 0);
  type("a\rb\rc\rd\re\r");
  run_for_lines(5, 2000);
  assert_int_equal(g_rec.n, 5);
  stop();
  char got[64];
  read_file(hist, got, sizeof got);
  assert_string_equal(got, "c\nd\ne\n");
  close_pty();
  unlink(hist);
}

static void test_tty_eof(void **state) {
  rec_reset();
  open_pty(80);
  start_tty(NULL, 0);
  /* Ctrl-D on an empty line ends, once. */
  type("\x04");
  run_for_lines(1, 2000);
  assert_int_equal(g_rec.eofs, 1);
  assert_int_equal(g_rec.n, 0);
  assert_false(souk__lineread_is_tty());
  struct termios t;
  assert_int_equal(tcgetattr(g_slave, &t), 0);
  assert_true(t.c_lflag & ICANON);
  type("more\r\x04");
  assert_int_equal(g_rec.eofs, 1);
  assert_int_equal(g_rec.n, 0);
  souk__lineread_stop();
  close_pty();

  /* The terminal hanging up ends too, dropping the half-typed line. */
  rec_reset();
  open_pty(80);
  start_tty(NULL, 0);
  type("half");
  close(g_master);
  g_master = -1;
  run_for_lines(1, 2000);
  assert_int_equal(g_rec.eofs, 1);
  assert_int_equal(g_rec.n, 0);
  close(g_slave);
  g_slave = -1;
}

static void test_tty_stop_in_callback(void **state) {
  rec_reset();
  open_pty(80);
  start_tty(NULL, 0);
  g_rec.stop_on = "quit";
  type("quit\rnot delivered\r");
  expect_line("quit");
  settle(50);
  assert_int_equal(g_rec.n, 1);
  assert_int_equal(g_rec.eofs, 0);
  assert_false(souk__lineread_is_tty());
  settle(10);
  close_pty();
}

/* A terminal whose output is not a terminal gets the plain mode: the kernel
 * edits the line, the reader only splits. */
static void test_tty_plain(void **state) {
  rec_reset();
  open_pty(80);
  int out[2];
  assert_int_equal(pipe(out), 0);
  souk__lineread_opts_t o = {.in_fd = g_slave, .out_fd = out[1], .on_line = on_line, .ud = &g_rec};
  assert_int_equal(souk__lineread_start(&o), 0);
  assert_false(souk__lineread_is_tty());
  type("abc\n");
  expect_line("abc");
  stop();
  close(out[0]);
  close(out[1]);
  close_pty();

  /* So does TERM=dumb. */
  rec_reset();
  open_pty(80);
  setenv("TERM", "dumb", 1);
  o.out_fd = g_slave;
  assert_int_equal(souk__lineread_start(&o), 0);
  assert_false(souk__lineread_is_tty());
  setenv("TERM", "xterm", 1);
  type("x\n");
  expect_line("x");
  stop();
  close_pty();
}

/* ---- plain input ---- */

static void start_plain(int in, int out, size_t max_line) {
  souk__lineread_opts_t o = {.in_fd = in,
                            .out_fd = out,
                            .max_line = max_line,
                            .on_line = on_line,
                            .on_eof = on_eof,
                            .ud = &g_rec};
  assert_int_equal(souk__lineread_start(&o), 0);
  assert_false(souk__lineread_is_tty());
}

static void pipe_output(int fd, char *out, size_t cap) {
  fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
  ssize_t n = read(fd, out, cap - 1);
  out[n > 0 ? n : 0] = '\0';
}

static void test_pipe(void **state) {
  rec_reset();
  int in[2], out[2];
  assert_int_equal(pipe(in), 0);
  assert_int_equal(pipe(out), 0);
  start_plain(in[0], out[1], 4);
  /* Without a terminal, printing just writes, adding the missing newline. */
  souk__lineread_print("plain", 5);
  const char *data = "a\nbb\r\n\nabcd\r\ntoolong\nabcde\nok\nlast";
  assert_int_equal(write(in[1], data, strlen(data)), (ssize_t)strlen(data));
  close(in[1]);
  run_for_lines(100, 2000);
  assert_int_equal(g_rec.eofs, 1);
  assert_int_equal(g_rec.n, 6);
  const char *want[] = {"a", "bb", "", "abcd", "ok", "last"};
  for (size_t i = 0; i < 6; i++)
    assert_string_equal(g_rec.lines[i], want[i]);
  char msg[256];
  pipe_output(out[0], msg, sizeof msg);
  assert_string_equal(msg, "plain\n"
                           "souk: line longer than 4 bytes ignored\n"
                           "souk: line longer than 4 bytes ignored\n");
  /* The caller's descriptor stays open: the reader closed its own copy. */
  assert_true(fcntl(in[0], F_GETFD) >= 0);
  close(in[0]);
  close(out[0]);
  close(out[1]);
  settle(10);

  /* A line split over many writes, and an over-long final line. */
  rec_reset();
  assert_int_equal(pipe(in), 0);
  assert_int_equal(pipe(out), 0);
  start_plain(in[0], out[1], 4);
  assert_int_equal(write(in[1], "ab", 2), 2);
  settle(10);
  assert_int_equal(write(in[1], "c\n12", 4), 4);
  settle(10);
  assert_int_equal(write(in[1], "345", 3), 3);
  close(in[1]);
  run_for_lines(100, 2000);
  assert_int_equal(g_rec.eofs, 1);
  assert_int_equal(g_rec.n, 1);
  assert_string_equal(g_rec.lines[0], "abc");
  pipe_output(out[0], msg, sizeof msg);
  assert_string_equal(msg, "souk: line longer than 4 bytes ignored\n");
  close(in[0]);
  close(out[0]);
  close(out[1]);

  /* Stopping from on_line delivers nothing more and no EOF. */
  rec_reset();
  assert_int_equal(pipe(in), 0);
  start_plain(in[0], STDOUT_FILENO, 0);
  g_rec.stop_on = "stop";
  assert_int_equal(write(in[1], "go\nstop\nnever\n", 14), 14);
  close(in[1]);
  settle(50);
  assert_int_equal(g_rec.n, 2);
  assert_int_equal(g_rec.eofs, 0);
  close(in[0]);
}

static void test_file(void **state) {
  rec_reset();
  char path[128];
  snprintf(path, sizeof path, "%s/input", g_dir);
  /* More than one read's worth, with CRLF, NUL bytes and no final LF. */
  FILE *f = fopen(path, "w");
  assert_non_null(f);
  for (int i = 0; i < 40; i++)
    fprintf(f, "/line number %03d padded to be a little longer %0200d\r\n", i, 0);
  fwrite("nul\0byte\nend", 1, 12, f);
  fclose(f);
  int fd = open(path, O_RDONLY);
  assert_true(fd >= 0);
  start_plain(fd, STDOUT_FILENO, 0);
  run_for_lines(100, 5000);
  assert_int_equal(g_rec.eofs, 1);
  assert_int_equal(g_rec.n, 42);
  for (int i = 0; i < 40; i++) {
    char want[300];
    snprintf(want, sizeof want, "/line number %03d padded to be a little longer %0200d", i, 0);
    assert_string_equal(g_rec.lines[i], want);
  }
  assert_int_equal(g_rec.lens[40], 8);
  assert_memory_equal(g_rec.lines[40], "nul\0byte", 9);
  assert_string_equal(g_rec.lines[41], "end");
  close(fd);
  unlink(path);

  /* /dev/null ends at once. */
  rec_reset();
  fd = open("/dev/null", O_RDONLY);
  start_plain(fd, STDOUT_FILENO, 0);
  run_for_lines(1, 2000);
  assert_int_equal(g_rec.eofs, 1);
  assert_int_equal(g_rec.n, 0);
  close(fd);

  /* Stopping while a read is in flight frees everything once it returns. */
  rec_reset();
  fd = open("/dev/zero", O_RDONLY);
  start_plain(fd, STDOUT_FILENO, 16);
  souk__lineread_stop();
  settle(50);
  assert_int_equal(g_rec.eofs, 0);
  close(fd);
}

static void test_api(void **state) {
  rec_reset();
  souk__lineread_opts_t o = {.in_fd = -1, .out_fd = 1};
  assert_int_equal(souk__lineread_start(NULL), SOUK_EINVAL);
  assert_int_equal(souk__lineread_start(&o), SOUK_EINVAL); /* No on_line. */
  int in[2];
  assert_int_equal(pipe(in), 0);
  start_plain(in[0], STDOUT_FILENO, 0);
  o.in_fd = in[0];
  o.on_line = on_line;
  assert_int_equal(souk__lineread_start(&o), SOUK_EINVAL); /* One at a time. */
  stop();
  stop();
  close(in[0]);
  close(in[1]);
  /* A descriptor that cannot be read fails cleanly. */
  o.in_fd = 1000;
  assert_int_equal(souk__lineread_start(&o), SOUK_EIO);
  settle(10);
  assert_false(souk__lineread_is_tty());
}

/* After a failed test too: stop the reader and close the terminal so the
 * next test starts clean. */
static int teardown(void **state) {
  souk__lineread_stop();
  settle(10);
  if (g_master >= 0) close(g_master);
  if (g_slave >= 0) close(g_slave);
  g_slave = g_master = -1;
  return 0;
}

int main(void) {
  if (souk_alloc_init() != 0) return 1;
  /* A hung test must fail rather than stall the suite. */
  alarm(60);
  setenv("TERM", "xterm", 1);
  snprintf(g_dir, sizeof g_dir, "/tmp/souk-lineread-XXXXXX");
  if (!mkdtemp(g_dir)) return 1;
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_teardown(test_tty_basic, teardown),
      cmocka_unit_test_teardown(test_tty_keys, teardown),
      cmocka_unit_test_teardown(test_tty_utf8, teardown),
      cmocka_unit_test_teardown(test_tty_limits_and_scroll, teardown),
      cmocka_unit_test_teardown(test_tty_print, teardown),
      cmocka_unit_test_teardown(test_tty_history, teardown),
      cmocka_unit_test_teardown(test_tty_history_max, teardown),
      cmocka_unit_test_teardown(test_tty_eof, teardown),
      cmocka_unit_test_teardown(test_tty_stop_in_callback, teardown),
      cmocka_unit_test_teardown(test_tty_plain, teardown),
      cmocka_unit_test_teardown(test_pipe, teardown),
      cmocka_unit_test_teardown(test_file, teardown),
      cmocka_unit_test_teardown(test_api, teardown),
  };
  int rc = cmocka_run_group_tests(tests, NULL, NULL);
  rec_reset();
  souk_buf_free(&g_screen);
  souk_loop_close();
  /* A failed test may have left its files behind. */
  const char *names[] = {"history", "history-max", "input"};
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
    char path[128];
    snprintf(path, sizeof path, "%s/%s", g_dir, names[i]);
    unlink(path);
  }
  rmdir(g_dir);
  return rc;
}
