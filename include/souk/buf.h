/* A growable byte buffer and a small JSON writer on top of it.
 *
 * The buffer owns data; souk_buf_free() releases it.  data is always
 * NUL-terminated after any append, so it can be used as a C string when the
 * content has no NUL bytes.  Appends never fail (allocation aborts). */
#ifndef SOUK_BUF_H
#define SOUK_BUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/** A growable buffer; zero-initialise or use souk_buf_init. */
typedef struct souk_buf {
  char *data;
  size_t len;
  size_t cap;
} souk_buf_t;

/** Empty buffer with no allocation. */
void souk_buf_init(souk_buf_t *b);
/** Release the buffer's memory and leave it empty. */
void souk_buf_free(souk_buf_t *b);
/** Keep the allocation, drop the content. */
void souk_buf_reset(souk_buf_t *b);
/** Make room for n more bytes (plus a NUL). */
void souk_buf_reserve(souk_buf_t *b, size_t n);
/** Append n bytes. */
void souk_buf_append(souk_buf_t *b, const void *p, size_t n);
/** Append a C string. */
void souk_buf_puts(souk_buf_t *b, const char *s);
/** Append one byte. */
void souk_buf_putc(souk_buf_t *b, char c);
/** Append printf-formatted text. */
void souk_buf_printf(souk_buf_t *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/** Take ownership of the data (NUL-terminated, never NULL); b becomes empty. */
char *souk_buf_steal(souk_buf_t *b);
/** Length of the valid UTF-8 sequence starting at s (1 to 4 bytes, looking
 * at most n bytes), or 0 if it is not one: overlong forms, surrogates and
 * code points past U+10FFFF are invalid. */
size_t souk_utf8_seq(const unsigned char *s, size_t n);
/** Append s[0..n) to b with control characters shown, not obeyed: text a
 * user typed that souk shows back (an error quoting it, a name) must not
 * move a terminal's cursor or recolour it.  C0 controls other than newline
 * and tab become \xNN (ESC is \x1b), DEL \x7f, C1 controls \u0080..\u009f,
 * and bytes that are not UTF-8 \xNN. */
void souk_buf_put_escaped(souk_buf_t *b, const char *s, size_t n);
/** Whether s[0..n) holds anything souk_buf_put_escaped() would change. */
bool souk_text_needs_escape(const char *s, size_t n);
/** Append s[0..n) to b for Discord markdown: text a user typed (a display
 * name, a poll's question or options) shows as typed, never as bold, a
 * strike-through, a spoiler, code, a masked link, a quote or a mention.  A
 * backslash goes before \ * _ ~ ` | < > [ ], and before # or - that start
 * the text (a heading, a list); Discord shows the character without it. */
void souk_buf_put_md(souk_buf_t *b, const char *s, size_t n);
/** souk_buf_put_md of the NUL-terminated s into out (cap bytes, always
 * terminated; cut on a character boundary when it does not fit, never
 * between a backslash and its character).  Returns out. */
const char *souk_md_escape(const char *s, char *out, size_t cap);
/** Append s[0..n) as a quoted JSON string; invalid UTF-8 becomes U+FFFD. */
void souk_buf_json_str(souk_buf_t *b, const char *s, size_t n);

/** JSON writer state: inserts commas and checks nesting. */
typedef struct souk_jw {
  souk_buf_t *b;
  int depth;
  uint64_t first; /* bit d set: nothing written yet at depth d */
  uint64_t arr;   /* bit d set: depth d is an array */
  bool after_key;
} souk_jw_t;

/** Start writing JSON into b (appended to what b holds). */
void souk_jw_init(souk_jw_t *w, souk_buf_t *b);
void souk_jw_obj(souk_jw_t *w);  /**< open an object */
void souk_jw_arr(souk_jw_t *w);  /**< open an array */
void souk_jw_end(souk_jw_t *w);  /**< close the innermost object or array */
void souk_jw_key(souk_jw_t *w, const char *k);            /**< object key */
void souk_jw_str(souk_jw_t *w, const char *s);            /**< string (NULL writes null) */
void souk_jw_strn(souk_jw_t *w, const char *s, size_t n); /**< string of n bytes */
void souk_jw_i64(souk_jw_t *w, int64_t v);                /**< integer */
void souk_jw_u64(souk_jw_t *w, uint64_t v);               /**< unsigned integer */
void souk_jw_snowflake(souk_jw_t *w, uint64_t id);        /**< id as a string */
void souk_jw_bool(souk_jw_t *w, bool v);                  /**< true/false */
void souk_jw_null(souk_jw_t *w);                          /**< null */
void souk_jw_raw(souk_jw_t *w, const char *json, size_t n); /**< pre-encoded value */

#endif
