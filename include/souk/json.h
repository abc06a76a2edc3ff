/* souk's JSON reader: one pass over the text into a flat token array.
 *
 * Why our own: the gateway budget is about 3 µs per event including inflate
 * (0.33 s per 100,000 events, DESIGN.md), and the auction path moves ~150 MB
 * a minute.  Jansson (~75 MB/s) and cJSON (120-370 MB/s) build a malloc'd
 * tree per document, which alone exceeds that budget; jsmn tokenises without
 * skip links, so every lookup rescans.  This reader is in the jsmn family:
 * no per-value allocation, tokens reused across documents, strings and
 * numbers left in place (so prices are parsed from their decimal text, never
 * through a double), and each token knows where its subtree ends so lookups
 * skip whole values.
 *
 * Ownership: a souk_json_t borrows the source text; tokens and any pointer
 * returned by souk_json_raw() are valid until the next souk_json_parse() on
 * the same souk_json_t, its souk_json_free(), or until the text is freed. */
#ifndef SOUK_JSON_H
#define SOUK_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

/** Value types. */
typedef enum souk_json_type {
  SOUK_JSON_NONE = 0, /* not a token (lookup failed) */
  SOUK_JSON_NULL,
  SOUK_JSON_FALSE,
  SOUK_JSON_TRUE,
  SOUK_JSON_NUMBER,
  SOUK_JSON_STRING,
  SOUK_JSON_ARRAY,
  SOUK_JSON_OBJECT,
} souk_json_type_t;

/** One token.  For strings start/len cover the raw text between the quotes;
 * for numbers and literals their text; for containers start is the opening
 * bracket and len the number of elements (objects: key/value pairs). */
typedef struct souk_json_tok {
  uint32_t start;
  uint32_t len;
  uint32_t next; /* index of the first token after this whole value */
  uint8_t type;
  uint8_t escaped; /* string contains backslash escapes */
} souk_json_tok_t;

/** A parsed document.  Zero-initialise, parse many times, free once. */
typedef struct souk_json {
  const char *src;
  size_t len;
  souk_json_tok_t *toks;
  uint32_t ntoks;
  uint32_t cap;
  uint32_t max_depth; /* 0 means the default, 64 */
  uint32_t err_pos;   /* byte offset of a parse error */
} souk_json_t;

/** Parse len bytes of src (which need not be NUL-terminated).  Returns 0 or
 * SOUK_EPARSE (err_pos says where) or SOUK_ETOOBIG (over 4 GiB or too deep).
 * Token 0 is the root value.  On failure no tokens are left (ntoks is 0).
 * Strings are checked for JSON escapes and control bytes, not for UTF-8. */
int souk_json_parse(souk_json_t *j, const char *src, size_t len);
/** Release the token array. */
void souk_json_free(souk_json_t *j);

/** Type of token t, or SOUK_JSON_NONE for t < 0. */
souk_json_type_t souk_json_type(const souk_json_t *j, int t);
/** Value of key in object obj (key klen bytes long), or -1 (absent, or obj
 * not an object). */
int souk_json_getn(const souk_json_t *j, int obj, const char *key, size_t klen);
/** Same with a NUL-terminated key.  Inline so that the length of a literal
 * key is known when compiling: lookups run several times per event. */
static inline int souk_json_get(const souk_json_t *j, int obj, const char *key) {
  return souk_json_getn(j, obj, key, strlen(key));
}
/** Several keys of one object in a single pass over it: out[k] is the
 * value of keys[k] (NUL-terminated), or -1.  For code that reads many keys
 * of a large object per event: each souk_json_get() walks the keys before
 * the one it finds (all of them when the key is absent).  The keys must be
 * distinct; when the object repeats a key the first occurrence wins, as
 * with souk_json_get().  Returns how many were found, SOUK_EINVAL when n
 * is over 16. */
int souk_json_get_keys(const souk_json_t *j, int obj, const char *const *keys, int n, int *out);
/** Element i of array arr, or -1. */
int souk_json_at(const souk_json_t *j, int arr, size_t i);
/** Number of elements (array) or pairs (object); 0 otherwise. */
size_t souk_json_count(const souk_json_t *j, int t);
/** First element of an array / first key of an object, or -1 if empty. */
int souk_json_first(const souk_json_t *j, int t);
/** Token after the whole value t (the next sibling inside a container). */
static inline int souk_json_skip(const souk_json_t *j, int t) { return (int)j->toks[t].next; }

/** Raw text of t (string content without quotes, still escaped). */
const char *souk_json_raw(const souk_json_t *j, int t, size_t *len);
/** True if t is a string equal to s (escapes are honoured). */
bool souk_json_streq(const souk_json_t *j, int t, const char *s);
/** Unescape string t into out (cap bytes, NUL-terminated).  Returns the
 * decoded length, SOUK_EINVAL if t is not a string, SOUK_ETOOBIG if it does
 * not fit (out then holds a truncated, still valid prefix). */
int souk_json_str(const souk_json_t *j, int t, char *out, size_t cap);
/** Unescaped copy of string t (free with souk_free), or NULL if not a string. */
char *souk_json_strdup(const souk_json_t *j, int t);
/** Integer value of a number token (no fraction/exponent), or of a string
 * holding one (Discord sends 64-bit ids as strings).  0 or SOUK_EINVAL /
 * SOUK_ERANGE. */
int souk_json_i64(const souk_json_t *j, int t, int64_t *out);
/** Unsigned form of souk_json_i64, for snowflakes. */
int souk_json_u64(const souk_json_t *j, int t, uint64_t *out);
/** true/false token. 0 or SOUK_EINVAL. */
int souk_json_bool(const souk_json_t *j, int t, bool *out);
/** Number (or numeric string) as a double, for non-money figures only. */
int souk_json_double(const souk_json_t *j, int t, double *out);
/** Decimal number (or numeric string) as fixed point with `scale` fraction
 * digits (6 gives micro-units), rounded half away from zero once, from the
 * text.  0, SOUK_EINVAL or SOUK_ERANGE. */
int souk_json_fixed(const souk_json_t *j, int t, unsigned scale, int64_t *out);

/** Parse decimal text s[0..n) to fixed point as souk_json_fixed does. */
int souk_decimal_parse(const char *s, size_t n, unsigned scale, int64_t *out);

/** Path lookup: souk_json_path(j, 0, "d", "author", "id", NULL). */
int souk_json_path(const souk_json_t *j, int t, ...);

#endif
