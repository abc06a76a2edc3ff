/* Splitting long text into Discord-sized messages. */
#include "discord/msgsplit.h"

#include <stdbool.h>

static inline bool is_cont(unsigned char c) { return (c & 0xc0) == 0x80; }

size_t souk__msg_chunk(const char *text, size_t len, size_t max_chars, size_t *skip) {
  *skip = 0;
  if (max_chars == 0) return 0;
  /* Walk max_chars characters; stop early if the text ends. */
  size_t i = 0, chars = 0;
  size_t last_nl = 0, last_sp = 0;
  while (i < len && chars < max_chars) {
    unsigned char c = (unsigned char)text[i];
    if (c == '\n') last_nl = i;
    else if (c == ' ') last_sp = i;
    i++;
    while (i < len && is_cont((unsigned char)text[i])) i++;
    chars++;
  }
  if (i >= len) return len;
  /* The character at i does not fit.  If it is itself a newline or space,
   * cutting exactly here wastes nothing. */
  if (text[i] == '\n' || text[i] == ' ') {
    *skip = 1;
    return i;
  }
  /* Prefer a newline cut, then a space cut, unless that would leave a tiny
   * chunk (under a quarter of the window), which reads worse than a hard cut. */
  size_t quarter = i / 4;
  if (last_nl > 0 && last_nl >= quarter) {
    *skip = 1;
    return last_nl;
  }
  if (last_sp > 0 && last_sp >= quarter) {
    *skip = 1;
    return last_sp;
  }
  return i;
}
