/* A small line reader on souk's libuv loop, for `souk console`.
 *
 * When both the input and the output are terminals (and TERM is not
 * "dumb"), lines are edited in place: cursor keys, Home/End, Ctrl-A/E/B/F,
 * Ctrl-K/U/W/Y, Alt-B/F/D, backspace and Delete, Ctrl-L, Up/Down and
 * Ctrl-P/N through the history, Ctrl-R reverse incremental search, and
 * Ctrl-D to end.  Editing is UTF-8 aware: the cursor moves by characters
 * (combining marks stay with their base, East Asian wide characters take two
 * columns) and never splits a multibyte sequence.  A line that does not fit
 * the terminal's width scrolls horizontally on one row, so asynchronous output
 * can always clear and redraw it.
 *
 * Otherwise (a pipe, a regular file, /dev/null, or a terminal whose output is
 * redirected) input is split into lines exactly as before editing existed:
 * LF ends a line and a CR before it is dropped, a final line without LF is
 * still delivered, and a line longer than max_line bytes is refused whole
 * with a message on the output instead of being cut into pieces.
 *
 * Raw mode turns the terminal's own signal keys off, so the editor does
 * their work: Ctrl-C drops a non-empty line and raises SIGINT on an empty one
 * (souk's SIGINT handler then stops souk, as before), and Ctrl-Z suspends
 * with the terminal's mode restored.  History (kept, loaded and saved only in
 * terminal mode) skips empty lines, a repeat of the previous entry and lines
 * that begin with a space.
 *
 * in_fd and out_fd stay the caller's: the reader never closes them (a pipe
 * is read through a duplicate; for a terminal libuv reopens the device and
 * dup2()s it onto in_fd).  The prompt is plain text: escape sequences in it
 * would be counted as columns.
 *
 * There is one line reader per process; every function runs on the loop
 * thread.  lineread.c says why this is a small editor of souk's own rather
 * than libedit. */
#ifndef SOUK_CORE_LINEREAD_H
#define SOUK_CORE_LINEREAD_H

#include <stddef.h>

/** One complete line without its line ending.  line is NUL-terminated at len
 * (it may also contain NUL bytes when read from a pipe) and is valid only
 * during the call.  The callback may call souk__lineread_print() and
 * souk__lineread_stop(). */
typedef void (*souk__lineread_line_cb)(const char *line, size_t len, void *ud);
/** The input ended: Ctrl-D on an empty line, end of file, or a terminal hang
 * up.  Called at most once, after the reader has already stopped itself (so
 * souk__lineread_stop() is then a no-op and a new start is allowed). */
typedef void (*souk__lineread_eof_cb)(void *ud);

/** Where to read and write and what to call; zero-initialise and fill in. */
typedef struct souk__lineread_opts {
  int in_fd;                     /**< Read lines from here (0 for stdin). */
  int out_fd;                    /**< Prompt, echo and printed output (1 for stdout). */
  const char *prompt;            /**< Shown when editing; NULL: "> ".  Copied. */
  const char *history_path;      /**< NULL: no persistent history.  Copied. */
  size_t max_line;               /**< Longest line in bytes; 0: 4096. */
  size_t history_max;            /**< Entries kept and saved; 0: 1000. */
  souk__lineread_line_cb on_line; /**< Required. */
  souk__lineread_eof_cb on_eof;   /**< May be NULL. */
  void *ud;                      /**< Passed to both callbacks. */
} souk__lineread_opts_t;

/** Start reading on souk_loop().  Terminal mode loads the history file (a
 * missing file is fine), switches the terminal to raw mode and draws the
 * prompt.  Returns 0, SOUK_EINVAL (no on_line, or a reader already runs) or
 * SOUK_EIO (the input cannot be read); on failure no callback is called and
 * nothing is left open.  opts is not kept. */
int souk__lineread_start(const souk__lineread_opts_t *opts);

/** Print text that arrived asynchronously (a command's reply) without
 * garbling the line being edited: the edited line is cleared, text is
 * written followed by a newline if it lacks one, and the prompt and the
 * half-typed line are drawn again below.  Without a terminal, or when no
 * reader runs, it simply writes text (and the missing newline) to the output
 * (stdout when no reader runs).  text is not kept. */
void souk__lineread_print(const char *text, size_t len);

/** Stop: on a terminal, clear the prompt's row, restore the terminal's mode
 * and save the history file (mode 0600, written to a temporary file beside
 * it and renamed over it, synchronously: it is small); then close the
 * handles.  on_eof is not called.  Safe to call twice, from inside a
 * callback, or when never started; the memory is released once libuv has
 * closed the handles. */
void souk__lineread_stop(void);

/** Whether the reader edits lines on a terminal (false in the plain mode or
 * when stopped); for the console's banner. */
int souk__lineread_is_tty(void);

#endif
