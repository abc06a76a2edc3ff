/* Splitting long text into Discord-sized messages. */
#ifndef SOUK_DISCORD_MSGSPLIT_H
#define SOUK_DISCORD_MSGSPLIT_H

#include <stddef.h>

/** Discord's documented limit on message content, in characters. */
#define SOUK_DISCORD_CONTENT_MAX 2000

/** Length in bytes of the next chunk of text[0..len) holding at most
 * max_chars Unicode characters, cut after the last newline in the window,
 * else after the last space, else at a character boundary; never inside a
 * UTF-8 sequence.  Returns len when everything fits.  *skip is set to the
 * number of bytes after the chunk to drop (the newline or space cut at). */
size_t souk__msg_chunk(const char *text, size_t len, size_t max_chars, size_t *skip);

#endif
