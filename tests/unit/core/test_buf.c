/* Unit tests for the growable buffer and the JSON writer (src/core/buf.c). */
/* cmocka.h needs these headers included before it. */
/* clang-format off */
#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
/* clang-format on */

#include "souk/alloc.h"
#include "souk/buf.h"
#include "souk/json.h"

static void test_growth(void **state) {
  souk_buf_t b;
  souk_buf_init(&b);
  assert_null(b.data);
  assert_int_equal(b.len, 0);
  for (int i = 0; i < 100000; i++) {
    souk_buf_putc(&b, (char)('a' + i % 26));
    assert_true(b.cap >= b.len + 1);
    assert_int_equal(b.data[b.len], '\0');
  }
  assert_int_equal(b.len, 100000);
  for (int i = 0; i < 100000; i++)
    assert_int_equal(b.data[i], 'a' + i % 26);

  /* reset keeps the allocation, free drops it. */
  size_t cap = b.cap;
  souk_buf_reset(&b);
  assert_int_equal(b.len, 0);
  assert_int_equal(b.cap, cap);
  assert_string_equal(b.data, "");
  souk_buf_puts(&b, "hello");
  souk_buf_append(&b, ", world", 7);
  souk_buf_append(&b, NULL, 0);
  assert_string_equal(b.data, "hello, world");
  souk_buf_free(&b);
  assert_null(b.data);
  assert_int_equal(b.cap, 0);
  souk_buf_free(&b); /* twice is harmless */

  /* reserve makes room for n bytes plus the NUL without changing len. */
  souk_buf_reserve(&b, 1000);
  assert_true(b.cap >= 1001);
  assert_int_equal(b.len, 0);
  char *before = b.data;
  for (int i = 0; i < 1000; i++)
    souk_buf_putc(&b, 'x');
  assert_ptr_equal(b.data, before); /* no reallocation was needed */
  souk_buf_free(&b);

  /* Embedded NUL bytes are content. */
  souk_buf_append(&b, "a\0b", 3);
  assert_int_equal(b.len, 3);
  assert_memory_equal(b.data, "a\0b", 4);
  souk_buf_free(&b);
}

static void test_self_append(void **state) {
  /* Appending a slice of the buffer to itself must survive the realloc. */
  souk_buf_t b = {0};
  souk_buf_puts(&b, "abcdefgh");
  for (int i = 0; i < 12; i++)
    souk_buf_append(&b, b.data, b.len);
  assert_int_equal(b.len, 8u << 12);
  for (size_t i = 0; i < b.len; i++)
    assert_int_equal(b.data[i], "abcdefgh"[i % 8]);
  souk_buf_puts(&b, b.data + b.len - 3);
  assert_string_equal(b.data + b.len - 6, "fghfgh");
  souk_buf_free(&b);

  /* The same through printf's long path and the JSON string quoter. */
  souk_buf_puts(&b, "0123456789");
  for (int i = 0; i < 6; i++)
    souk_buf_printf(&b, "%s|%s", b.data, b.data);
  assert_int_equal(b.len, 7654); /* each round: len = 3 * len + 1 */
  assert_memory_equal(b.data, "01234567890123456789|0123456789", 31);
  assert_memory_equal(b.data + b.len - 31, "01234567890123456789|0123456789", 31);
  souk_buf_reset(&b);
  souk_buf_puts(&b, "ab\"");
  souk_buf_json_str(&b, b.data, b.len);
  assert_string_equal(b.data, "ab\"\"ab\\\"\"");
  /* Repeat until the buffer has grown several times: each round appends
   * the quoted form of everything before it. */
  souk_json_t j = {0};
  for (int i = 0; i < 8; i++) {
    size_t before = b.len;
    char *prev = souk_memdup0(b.data, b.len);
    souk_buf_json_str(&b, b.data, b.len);
    assert_int_equal(souk_json_parse(&j, b.data + before, b.len - before), 0);
    assert_true(souk_json_streq(&j, 0, prev));
    souk_free(prev);
  }
  souk_json_free(&j);
  souk_buf_free(&b);
}

static void test_printf(void **state) {
  souk_buf_t b = {0};
  souk_buf_printf(&b, "%d-%s-%" PRIu64, 42, "x", UINT64_MAX);
  assert_string_equal(b.data, "42-x-18446744073709551615");
  souk_buf_printf(&b, "%s", "");
  assert_int_equal(b.len, 25);
  /* Longer than the 256-byte stack buffer: the slow path. */
  char big[3000];
  memset(big, 'z', sizeof big - 1);
  big[sizeof big - 1] = '\0';
  souk_buf_printf(&b, "[%s]", big);
  assert_int_equal(b.len, 25 + 3001);
  assert_int_equal(b.data[25], '[');
  assert_int_equal(b.data[25 + 3000], ']');
  assert_int_equal(b.data[b.len], '\0');
  souk_buf_printf(&b, "%0400d|", 7);
  assert_int_equal(b.len, 25 + 3001 + 401);
  assert_string_equal(b.data + b.len - 2, "7|");
  /* Exactly at the 256-byte boundary. */
  souk_buf_reset(&b);
  souk_buf_printf(&b, "%255s", "y");
  assert_int_equal(b.len, 255);
  souk_buf_printf(&b, "%256s", "y");
  assert_int_equal(b.len, 511);
  assert_int_equal(strlen(b.data), 511);
  souk_buf_free(&b);
  /* printf into an empty buffer allocates it. */
  souk_buf_printf(&b, "%s", "");
  assert_non_null(b.data);
  assert_string_equal(b.data, "");
  souk_buf_free(&b);
}

static void test_steal(void **state) {
  souk_buf_t b = {0};
  char *s = souk_buf_steal(&b);
  assert_non_null(s);
  assert_string_equal(s, "");
  souk_free(s);
  souk_buf_puts(&b, "owned");
  s = souk_buf_steal(&b);
  assert_string_equal(s, "owned");
  assert_null(b.data);
  assert_int_equal(b.len, 0);
  assert_int_equal(b.cap, 0);
  souk_buf_puts(&b, "again"); /* the buffer is usable afterwards */
  assert_string_equal(b.data, "again");
  souk_free(s);
  souk_buf_free(&b);
}

static void expect_json_str(const char *in, size_t n, const char *want) {
  souk_buf_t b = {0};
  souk_buf_json_str(&b, in, n);
  assert_string_equal(b.data, want);
  assert_int_equal(b.len, strlen(want));
  souk_buf_free(&b);
}
#define JSTR(in, want) expect_json_str(in, sizeof(in) - 1, want)

static void test_json_str(void **state) {
  JSTR("", "\"\"");
  JSTR("plain text", "\"plain text\"");
  JSTR("q\"b\\s/", "\"q\\\"b\\\\s/\"");
  JSTR("\n\r\t", "\"\\n\\r\\t\"");
  JSTR("\x01\x08\x0c\x1f", "\"\\u0001\\u0008\\u000c\\u001f\"");
  JSTR("a\0b", "\"a\\u0000b\"");
  JSTR("\x7f", "\"\x7f\"");
  /* Valid UTF-8 passes through: 2, 3 and 4 byte forms and the extremes. */
  JSTR("\xc2\x80\xdf\xbf\xe0\xa0\x80\xef\xbf\xbf\xf0\x90\x80\x80\xf4\x8f\xbf\xbf",
       "\"\xc2\x80\xdf\xbf\xe0\xa0\x80\xef\xbf\xbf\xf0\x90\x80\x80\xf4\x8f\xbf\xbf\"");
  JSTR("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80",
       "\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\"");
  /* Invalid UTF-8 becomes U+FFFD, one per bad byte. */
#define R "\xef\xbf\xbd"
  JSTR("\x80", "\"" R "\"");
  JSTR("a\xbf"
       "b",
       "\"a" R "b\"");
  JSTR("\xc0\xaf", "\"" R R "\"");             /* overlong '/' */
  JSTR("\xe0\x80\xaf", "\"" R R R "\"");       /* overlong 3-byte */
  JSTR("\xf0\x80\x80\xaf", "\"" R R R R "\""); /* overlong 4-byte */
  JSTR("\xed\xa0\x80", "\"" R R R "\"");       /* UTF-16 surrogate */
  JSTR("\xf4\x90\x80\x80", "\"" R R R R "\""); /* past U+10FFFF */
  JSTR("\xff\xfe", "\"" R R "\"");
  JSTR("\xe2\x82", "\"" R R "\"");   /* truncated at the end */
  JSTR("\xe2\x82x", "\"" R R "x\""); /* truncated before ASCII */
  JSTR("\xc3", "\"" R "\"");
#undef R
}

static void test_writer(void **state) {
  souk_buf_t b = {0};
  souk_jw_t w;
  souk_jw_init(&w, &b);
  souk_jw_obj(&w);
  souk_jw_key(&w, "a");
  souk_jw_i64(&w, INT64_MIN);
  souk_jw_key(&w, "b");
  souk_jw_i64(&w, INT64_MAX);
  souk_jw_key(&w, "u");
  souk_jw_u64(&w, UINT64_MAX);
  souk_jw_key(&w, "id");
  souk_jw_snowflake(&w, UINT64_C(1105838371418411069));
  souk_jw_key(&w, "t");
  souk_jw_bool(&w, true);
  souk_jw_key(&w, "f");
  souk_jw_bool(&w, false);
  souk_jw_key(&w, "n");
  souk_jw_null(&w);
  souk_jw_key(&w, "s");
  souk_jw_str(&w, NULL);
  souk_jw_key(&w, "arr");
  souk_jw_arr(&w);
  souk_jw_arr(&w);
  souk_jw_end(&w);
  souk_jw_obj(&w);
  souk_jw_end(&w);
  souk_jw_str(&w, "x");
  souk_jw_strn(&w, "y\0z", 3);
  souk_jw_raw(&w, "{\"pre\":1}", 9);
  souk_jw_arr(&w);
  souk_jw_i64(&w, 1);
  souk_jw_i64(&w, 2);
  souk_jw_end(&w);
  souk_jw_end(&w);
  souk_jw_key(&w, "k\"\n");
  souk_jw_obj(&w);
  souk_jw_key(&w, "deep");
  souk_jw_obj(&w);
  souk_jw_end(&w);
  souk_jw_end(&w);
  souk_jw_end(&w);
  assert_int_equal(w.depth, 0);
  assert_string_equal(b.data,
                      "{\"a\":-9223372036854775808,\"b\":9223372036854775807,"
                      "\"u\":18446744073709551615,\"id\":\"1105838371418411069\",\"t\":true,"
                      "\"f\":false,\"n\":null,\"s\":null,\"arr\":[[],{},\"x\",\"y\\u0000z\","
                      "{\"pre\":1},[1,2]],\"k\\\"\\n\":{\"deep\":{}}}");
  souk_buf_free(&b);

  /* The writer appends to what the buffer holds; deep nesting is fine. */
  souk_buf_puts(&b, "prefix ");
  souk_jw_init(&w, &b);
  for (int i = 0; i < 60; i++)
    souk_jw_arr(&w);
  souk_jw_i64(&w, 0);
  for (int i = 0; i < 60; i++)
    souk_jw_end(&w);
  assert_int_equal(b.len, 7 + 121);
  assert_memory_equal(b.data, "prefix [[[", 10);
  souk_buf_free(&b);
}

/* Append one code point as UTF-8. */
static void put_cp(souk_buf_t *b, uint32_t cp) {
  char o[4];
  size_t n;
  if (cp < 0x80) {
    o[0] = (char)cp;
    n = 1;
  } else if (cp < 0x800) {
    o[0] = (char)(0xc0 | (cp >> 6));
    o[1] = (char)(0x80 | (cp & 0x3f));
    n = 2;
  } else if (cp < 0x10000) {
    o[0] = (char)(0xe0 | (cp >> 12));
    o[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
    o[2] = (char)(0x80 | (cp & 0x3f));
    n = 3;
  } else {
    o[0] = (char)(0xf0 | (cp >> 18));
    o[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
    o[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
    o[3] = (char)(0x80 | (cp & 0x3f));
    n = 4;
  }
  souk_buf_append(b, o, n);
}

static uint64_t rng = 0x9e3779b97f4a7c15u;
static uint32_t rnd(uint32_t n) {
  rng ^= rng << 13;
  rng ^= rng >> 7;
  rng ^= rng << 17;
  return (uint32_t)(rng % n);
}

static void test_round_trip(void **state) {
  /* Strings to write: every ASCII byte, and random valid UTF-8. */
  enum { NSTR = 200 };
  souk_buf_t strs[NSTR];
  memset(strs, 0, sizeof strs);
  for (int c = 0; c < 128; c++)
    souk_buf_putc(&strs[0], (char)c);
  for (int i = 1; i < NSTR; i++) {
    int len = (int)rnd(40);
    for (int k = 0; k < len; k++) {
      uint32_t cp;
      switch (rnd(4)) {
      case 0:
        cp = rnd(0x80);
        break;
      case 1:
        cp = 0x80 + rnd(0x800 - 0x80);
        break;
      case 2:
        do
          cp = 0x800 + rnd(0x10000 - 0x800);
        while (cp >= 0xd800 && cp <= 0xdfff);
        break;
      default:
        cp = 0x10000 + rnd(0x110000 - 0x10000);
        break;
      }
      put_cp(&strs[i], cp);
    }
  }
  int64_t ints[] = {0, -1, 1, INT64_MIN, INT64_MAX, 1749402460812, -987654321};

  souk_buf_t b = {0};
  souk_jw_t w;
  souk_jw_init(&w, &b);
  souk_jw_obj(&w);
  souk_jw_key(&w, "strings");
  souk_jw_arr(&w);
  for (int i = 0; i < NSTR; i++)
    souk_jw_strn(&w, strs[i].data ? strs[i].data : "", strs[i].len);
  souk_jw_end(&w);
  souk_jw_key(&w, "ints");
  souk_jw_arr(&w);
  for (size_t i = 0; i < sizeof ints / sizeof *ints; i++)
    souk_jw_i64(&w, ints[i]);
  souk_jw_end(&w);
  souk_jw_key(&w, "ids");
  souk_jw_arr(&w);
  souk_jw_snowflake(&w, UINT64_C(175928847299117063));
  souk_jw_snowflake(&w, UINT64_MAX);
  souk_jw_end(&w);
  /* Keys that need escaping. */
  for (int i = 1; i < 32; i++) {
    char k[4] = {'k', (char)i, '"', 0};
    souk_jw_key(&w, k);
    souk_jw_i64(&w, i);
  }
  souk_jw_key(&w, "nested");
  souk_jw_obj(&w);
  souk_jw_key(&w, "x");
  souk_jw_arr(&w);
  souk_jw_bool(&w, true);
  souk_jw_null(&w);
  souk_jw_obj(&w);
  souk_jw_end(&w);
  souk_jw_end(&w);
  souk_jw_end(&w);
  souk_jw_end(&w);

  souk_json_t j = {0};
  assert_int_equal(souk_json_parse(&j, b.data, b.len), 0);
  int arr = souk_json_get(&j, 0, "strings");
  assert_int_equal(souk_json_count(&j, arr), NSTR);
  for (int i = 0; i < NSTR; i++) {
    int t = souk_json_at(&j, arr, (size_t)i);
    char *s = souk_json_strdup(&j, t);
    assert_non_null(s);
    if (strs[i].len) assert_memory_equal(s, strs[i].data, strs[i].len);
    assert_int_equal(s[strs[i].len], '\0');
    souk_free(s);
    char out[256];
    assert_int_equal(souk_json_str(&j, t, out, sizeof out), (int)strs[i].len);
  }
  int ia = souk_json_get(&j, 0, "ints");
  for (size_t i = 0; i < sizeof ints / sizeof *ints; i++) {
    int64_t v;
    assert_int_equal(souk_json_i64(&j, souk_json_at(&j, ia, i), &v), 0);
    assert_true(v == ints[i]);
  }
  uint64_t u;
  int ids = souk_json_get(&j, 0, "ids");
  assert_int_equal(souk_json_type(&j, souk_json_at(&j, ids, 0)), SOUK_JSON_STRING);
  assert_int_equal(souk_json_u64(&j, souk_json_at(&j, ids, 0), &u), 0);
  assert_true(u == UINT64_C(175928847299117063));
  assert_int_equal(souk_json_u64(&j, souk_json_at(&j, ids, 1), &u), 0);
  assert_true(u == UINT64_MAX);
  for (int i = 1; i < 32; i++) {
    char k[4] = {'k', (char)i, '"', 0};
    int64_t v;
    int t = souk_json_get(&j, 0, k);
    assert_int_equal(souk_json_i64(&j, t, &v), 0);
    assert_true(v == i);
  }
  assert_int_equal(souk_json_type(&j, souk_json_path(&j, 0, "nested", "x", NULL)), SOUK_JSON_ARRAY);
  assert_int_equal(souk_json_count(&j, souk_json_path(&j, 0, "nested", "x", NULL)), 3);

  /* Invalid UTF-8 is written as U+FFFD and reads back that way. */
  souk_buf_reset(&b);
  souk_buf_json_str(&b, "a\xff\xc3", 3);
  assert_int_equal(souk_json_parse(&j, b.data, b.len), 0);
  assert_true(souk_json_streq(&j, 0, "a\xef\xbf\xbd\xef\xbf\xbd"));

  /* Every byte value, through the escaper and back. */
  souk_buf_reset(&b);
  char all[256];
  for (int i = 0; i < 256; i++)
    all[i] = (char)i;
  souk_buf_json_str(&b, all, sizeof all);
  assert_int_equal(souk_json_parse(&j, b.data, b.len), 0);
  char *s = souk_json_strdup(&j, 0);
  assert_memory_equal(s, all, 128);
  for (int i = 128; i < 256; i++)
    assert_memory_equal(s + 128 + 3 * (i - 128), "\xef\xbf\xbd", 3);
  souk_free(s);

  for (int i = 0; i < NSTR; i++)
    souk_buf_free(&strs[i]);
  souk_buf_free(&b);
  souk_json_free(&j);
}

/* What a user typed, shown back: controls escaped, text and newlines kept. */
static void test_escape_controls(void **state) {
  (void)state;
  static const struct {
    const char *in, *out;
  } cases[] = {
      {"plain text, \xC3\xA9t\xC3\xA9 \xE2\x82\xAC", "plain text, \xC3\xA9t\xC3\xA9 \xE2\x82\xAC"},
      {"two\nlines\tand a tab", "two\nlines\tand a tab"},
      {"\x1b[31mred\x1b[0m", "\\x1b[31mred\\x1b[0m"},
      {"\x1b]0;title\x07" "bell", "\\x1b]0;title\\x07bell"},
      {"cr\rdel\x7f", "cr\\x0ddel\\x7f"},
      {"c1 \xC2\x9b" "2J csi", "c1 \\u009b2J csi"},
      {"nbsp \xC2\xA0 kept", "nbsp \xC2\xA0 kept"},
      {"bad \xff byte", "bad \\xff byte"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    souk_buf_t b;
    souk_buf_init(&b);
    souk_buf_put_escaped(&b, cases[i].in, strlen(cases[i].in));
    souk_buf_putc(&b, '\0');
    assert_string_equal(b.data, cases[i].out);
    assert_int_equal(souk_text_needs_escape(cases[i].in, strlen(cases[i].in)),
                     strcmp(cases[i].in, cases[i].out) != 0);
    souk_buf_free(&b);
  }
}

/* Text users typed shows as typed on Discord: markdown's characters get
 * a backslash, ordinary text does not change, and a cut never splits a
 * character or separates a backslash from its character. */
static void test_markdown(void **state) {
  souk_buf_t b;
  souk_buf_init(&b);
  const char *in = "**Bob** _x_ ~~s~~ `c` ||sp|| [a](http://x) <@1> > q #h -l";
  souk_buf_put_md(&b, in, strlen(in));
  assert_string_equal(b.data, "\\*\\*Bob\\*\\* \\_x\\_ \\~\\~s\\~\\~ \\`c\\` \\|\\|sp\\|\\| "
                              "\\[a\\](http://x) \\<@1\\> \\> q #h -l");
  souk_buf_reset(&b);
  souk_buf_put_md(&b, "# Title", 7);
  assert_string_equal(b.data, "\\# Title");
  souk_buf_reset(&b);
  souk_buf_put_md(&b, "- item", 6);
  assert_string_equal(b.data, "\\- item");
  souk_buf_reset(&b);
  souk_buf_put_md(&b, "Zoë and Élodie", strlen("Zoë and Élodie"));
  assert_string_equal(b.data, "Zoë and Élodie");
  souk_buf_free(&b);
  char out[8];
  assert_string_equal(souk_md_escape("a*b", out, sizeof out), "a\\*b");
  /* "ab*" + "*": the second star and its backslash do not fit together. */
  assert_string_equal(souk_md_escape("abc**", out, 7), "abc\\*");
  assert_string_equal(souk_md_escape("abcdeé", out, 7), "abcde");
  assert_string_equal(souk_md_escape(NULL, out, sizeof out), "");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_growth),     cmocka_unit_test(test_self_append),
      cmocka_unit_test(test_printf),     cmocka_unit_test(test_steal),
      cmocka_unit_test(test_json_str),   cmocka_unit_test(test_writer),
      cmocka_unit_test(test_round_trip), cmocka_unit_test(test_escape_controls),
      cmocka_unit_test(test_markdown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
