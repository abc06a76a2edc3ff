/* Message splitting: limits in characters (not bytes), cut points, and
 * that re-joining the chunks gives back the text. */
/* cmocka.h needs these headers included before it. */
/* clang-format off */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
/* clang-format on */

#include "discord/msgsplit.c"

static size_t utf8_chars(const char *s, size_t n) {
  size_t c = 0;
  for (size_t i = 0; i < n; i++)
    if (((unsigned char)s[i] & 0xc0) != 0x80) c++;
  return c;
}

/* Split text fully, checking every chunk; returns the number of chunks and
 * rebuilds the text (with the dropped separators) into out. */
static size_t split_all(const char *text, size_t len, size_t max, char *out) {
  size_t n = 0, o = 0;
  while (len > 0) {
    size_t skip;
    size_t c = souk__msg_chunk(text, len, max, &skip);
    assert_true(c > 0 || skip > 0);
    assert_true(utf8_chars(text, c) <= max);
    /* A chunk never starts with a continuation byte. */
    if (c) assert_false(((unsigned char)text[0] & 0xc0) == 0x80);
    memcpy(out + o, text, c + skip);
    o += c + skip;
    text += c + skip;
    len -= c + skip;
    n++;
  }
  out[o] = 0;
  return n;
}

static void test_fits(void **state) {
  size_t skip;
  assert_int_equal(souk__msg_chunk("hello", 5, 2000, &skip), 5);
  assert_int_equal(skip, 0);
}

static void test_exactly_limit(void **state) {
  char *s = malloc(2001);
  memset(s, 'a', 2000);
  s[2000] = 0;
  size_t skip;
  assert_int_equal(souk__msg_chunk(s, 2000, 2000, &skip), 2000);
  free(s);
}

static void test_multibyte_counts_characters(void **state) {
  /* 2000 characters of 'é' (2 bytes each) fit in one message of 4000 bytes. */
  size_t n = 2000;
  char *s = malloc(n * 2 + 3);
  for (size_t i = 0; i < n; i++)
    memcpy(s + 2 * i, "\xc3\xa9", 2);
  size_t skip;
  assert_int_equal(souk__msg_chunk(s, n * 2, 2000, &skip), n * 2);
  /* One more character spills over, cut on a character boundary. */
  memcpy(s + n * 2, "\xc3\xa9", 2);
  assert_int_equal(souk__msg_chunk(s, n * 2 + 2, 2000, &skip), n * 2);
  free(s);
}

static void test_prefers_newline_then_space(void **state) {
  const char *t = "first line\nsecond line here";
  size_t skip;
  assert_int_equal(souk__msg_chunk(t, strlen(t), 20, &skip), 10);
  assert_int_equal(skip, 1);
  const char *u = "aaaa bbbb cccc dddd";
  assert_int_equal(souk__msg_chunk(u, strlen(u), 12, &skip), 9);
  assert_int_equal(skip, 1);
}

static void test_hard_cut_without_separator(void **state) {
  char s[50];
  memset(s, 'x', 49);
  s[49] = 0;
  size_t skip;
  assert_int_equal(souk__msg_chunk(s, 49, 20, &skip), 20);
  assert_int_equal(skip, 0);
}

static void test_roundtrip_long_text(void **state) {
  size_t len = 9000;
  char *s = malloc(len + 1), *out = malloc(len + 1);
  unsigned seed = 7;
  for (size_t i = 0; i < len;) {
    seed = seed * 1103515245 + 12345;
    unsigned r = (seed >> 16) % 20;
    if (r == 0)
      s[i++] = '\n';
    else if (r < 4)
      s[i++] = ' ';
    else if (r < 6 && i + 3 <= len) {
      memcpy(s + i, "\xe2\x82\xac", 3); /* euro sign */
      i += 3;
    } else
      s[i++] = 'a' + (char)(r % 26);
  }
  s[len] = 0;
  size_t chunks = split_all(s, len, 2000, out);
  assert_true(chunks >= (utf8_chars(s, len) + 1999) / 2000);
  assert_true(chunks <= (utf8_chars(s, len) + 1999) / 2000 + 2);
  assert_memory_equal(out, s, len);
  free(s);
  free(out);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_fits),
      cmocka_unit_test(test_exactly_limit),
      cmocka_unit_test(test_multibyte_counts_characters),
      cmocka_unit_test(test_prefers_newline_then_space),
      cmocka_unit_test(test_hard_cut_without_separator),
      cmocka_unit_test(test_roundtrip_long_text),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
