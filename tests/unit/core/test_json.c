/* Unit tests for souk's JSON reader (src/core/json.c). */
/* cmocka.h needs these headers included before it. */
/* clang-format off */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include <cmocka.h>
/* clang-format on */

#include "souk/alloc.h"
#include "souk/buf.h"
#include "souk/err.h"
#include "souk/json.h"

/* Parse s (without its NUL) from an exact-size heap copy, so that ASan and
 * valgrind catch any read past the end of the text.  The copy stays alive
 * until the next call, because the tokens point into it. */
static char *g_copy;

static int parse(souk_json_t *j, const char *s) {
  size_t n = strlen(s);
  souk_free(g_copy);
  g_copy = souk_malloc(n);
  memcpy(g_copy, s, n);
  return souk_json_parse(j, g_copy, n);
}

static int parse_n(souk_json_t *j, const char *s, size_t n) {
  souk_free(g_copy);
  g_copy = souk_malloc(n);
  if (n) memcpy(g_copy, s, n);
  return souk_json_parse(j, g_copy, n);
}

/* Check the structural invariants of a parsed document: every token's
 * skip link points past it and never past its parent's end, and the number
 * of children reached by walking the skip links equals the count. */
static void check_links(const souk_json_t *j, int t) {
  const souk_json_tok_t *k = &j->toks[t];
  assert_true(k->next > (uint32_t)t && k->next <= j->ntoks);
  souk_json_type_t ty = souk_json_type(j, t);
  if (ty != SOUK_JSON_ARRAY && ty != SOUK_JSON_OBJECT) {
    assert_int_equal(k->next, (uint32_t)t + 1);
    return;
  }
  size_t n = 0;
  int c = souk_json_first(j, t);
  while (c >= 0 && (uint32_t)c < k->next) {
    if (ty == SOUK_JSON_OBJECT) {
      assert_int_equal(souk_json_type(j, c), SOUK_JSON_STRING);
      c++;
    }
    check_links(j, c);
    c = souk_json_skip(j, c);
    n++;
  }
  assert_int_equal(c < 0 ? k->next : (uint32_t)c, k->next);
  assert_int_equal(n, souk_json_count(j, t));
}

static char *read_file(const char *name, size_t *len) {
  char path[1024];
  snprintf(path, sizeof path, "%s/%s", SOUK_TEST_FIXTURES, name);
  FILE *f = fopen(path, "rb");
  if (!f) fail_msg("cannot open %s", path);
  souk_buf_t b = {0};
  char chunk[65536];
  size_t n;
  while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
    souk_buf_append(&b, chunk, n);
  fclose(f);
  *len = b.len;
  return souk_buf_steal(&b);
}

static char *read_gz(const char *name, size_t *len) {
  char path[1024];
  snprintf(path, sizeof path, "%s/%s", SOUK_TEST_FIXTURES, name);
  gzFile f = gzopen(path, "rb");
  if (!f) fail_msg("cannot open %s", path);
  souk_buf_t b = {0};
  char chunk[65536];
  int n;
  while ((n = gzread(f, chunk, sizeof chunk)) > 0)
    souk_buf_append(&b, chunk, (size_t)n);
  assert_true(n == 0);
  gzclose(f);
  *len = b.len;
  return souk_buf_steal(&b);
}

/* ---- value types ---- */

static void test_types(void **state) {
  souk_json_t j = {0};
  assert_int_equal(parse(&j, "{\"n\":null,\"f\":false,\"t\":true,\"i\":-12,\"d\":1.5e3,"
                             "\"s\":\"x\",\"a\":[1,\"2\",[]],\"o\":{\"k\":{}}}"),
                   0);
  check_links(&j, 0);
  assert_int_equal(souk_json_type(&j, 0), SOUK_JSON_OBJECT);
  assert_int_equal(souk_json_count(&j, 0), 8);
  assert_int_equal(souk_json_type(&j, souk_json_get(&j, 0, "n")), SOUK_JSON_NULL);
  assert_int_equal(souk_json_type(&j, souk_json_get(&j, 0, "f")), SOUK_JSON_FALSE);
  assert_int_equal(souk_json_type(&j, souk_json_get(&j, 0, "t")), SOUK_JSON_TRUE);
  assert_int_equal(souk_json_type(&j, souk_json_get(&j, 0, "i")), SOUK_JSON_NUMBER);
  assert_int_equal(souk_json_type(&j, souk_json_get(&j, 0, "d")), SOUK_JSON_NUMBER);
  assert_int_equal(souk_json_type(&j, souk_json_get(&j, 0, "s")), SOUK_JSON_STRING);
  int a = souk_json_get(&j, 0, "a");
  assert_int_equal(souk_json_type(&j, a), SOUK_JSON_ARRAY);
  assert_int_equal(souk_json_count(&j, a), 3);
  assert_int_equal(souk_json_type(&j, souk_json_at(&j, a, 1)), SOUK_JSON_STRING);
  assert_int_equal(souk_json_count(&j, souk_json_at(&j, a, 2)), 0);
  assert_int_equal(souk_json_first(&j, souk_json_at(&j, a, 2)), -1);
  int o = souk_json_get(&j, 0, "o");
  assert_int_equal(souk_json_type(&j, o), SOUK_JSON_OBJECT);
  assert_int_equal(souk_json_type(&j, souk_json_get(&j, o, "k")), SOUK_JSON_OBJECT);
  assert_int_equal(souk_json_path(&j, 0, "o", "k", NULL), souk_json_get(&j, o, "k"));
  assert_int_equal(souk_json_path(&j, 0, "o", "k", "x", NULL), -1);
  assert_int_equal(souk_json_path(&j, 0, "nope", "k", NULL), -1);
  assert_int_equal(souk_json_path(&j, 0, NULL), 0);

  /* Raw text of numbers and literals. */
  size_t n;
  const char *r = souk_json_raw(&j, souk_json_get(&j, 0, "d"), &n);
  assert_int_equal(n, 5);
  assert_memory_equal(r, "1.5e3", 5);
  r = souk_json_raw(&j, souk_json_get(&j, 0, "f"), &n);
  assert_memory_equal(r, "false", n);
  assert_null(souk_json_raw(&j, -1, &n));
  assert_int_equal(n, 0);

  /* Failed lookups. */
  assert_int_equal(souk_json_get(&j, 0, "missing"), -1);
  assert_int_equal(souk_json_get(&j, 0, ""), -1);
  assert_int_equal(souk_json_get(&j, a, "n"), -1);  /* not an object */
  assert_int_equal(souk_json_get(&j, -1, "n"), -1); /* no token */
  assert_int_equal(souk_json_at(&j, a, 3), -1);
  assert_int_equal(souk_json_at(&j, 0, 0), -1); /* not an array */
  assert_int_equal(souk_json_at(&j, -1, 0), -1);
  assert_int_equal(souk_json_type(&j, -1), SOUK_JSON_NONE);
  assert_int_equal(souk_json_type(&j, (int)j.ntoks), SOUK_JSON_NONE);
  assert_int_equal(souk_json_count(&j, souk_json_get(&j, 0, "s")), 0);
  assert_int_equal(souk_json_first(&j, souk_json_get(&j, 0, "s")), -1);
  assert_int_equal(souk_json_count(&j, -1), 0);

  /* Scalars as the root, with surrounding whitespace. */
  static const struct {
    const char *doc;
    souk_json_type_t type;
  } roots[] = {
      {"42", SOUK_JSON_NUMBER},
      {" -0 ", SOUK_JSON_NUMBER},
      {"\t\"s\"\r\n", SOUK_JSON_STRING},
      {"null", SOUK_JSON_NULL},
      {" true", SOUK_JSON_TRUE},
      {"false ", SOUK_JSON_FALSE},
      {"[]", SOUK_JSON_ARRAY},
      {" { } ", SOUK_JSON_OBJECT},
      {"0e0", SOUK_JSON_NUMBER},
      {"1E-0", SOUK_JSON_NUMBER},
      {"-1.25e+10", SOUK_JSON_NUMBER},
      {"\"\"", SOUK_JSON_STRING},
      {"[ [ ] , { } ]", SOUK_JSON_ARRAY},
  };
  for (size_t i = 0; i < sizeof roots / sizeof *roots; i++) {
    assert_int_equal(parse(&j, roots[i].doc), 0);
    assert_int_equal(souk_json_type(&j, 0), roots[i].type);
    assert_int_equal(j.toks[0].next, j.ntoks);
    check_links(&j, 0);
  }
  souk_json_free(&j);
}

/* ---- nesting, skip links, iteration ---- */

static void test_nested_skip(void **state) {
  /* A big nested value between two keys: the lookup of "after" must skip
   * it in one step via the skip link. */
  souk_buf_t b = {0};
  souk_buf_puts(&b, "{\"before\":1,\"big\":[");
  for (int i = 0; i < 2000; i++)
    souk_buf_printf(&b, "%s{\"id\":%d,\"tags\":[\"a\",\"b\",{\"after\":%d}],\"o\":{}}",
                    i ? "," : "", i, -i);
  souk_buf_puts(&b, "],\"after\":\"yes\",\"last\":[[[[]]]]}");
  souk_json_t j = {0};
  assert_int_equal(parse_n(&j, b.data, b.len), 0);
  check_links(&j, 0);
  assert_int_equal(souk_json_count(&j, 0), 4);
  int big = souk_json_get(&j, 0, "big");
  assert_int_equal(souk_json_count(&j, big), 2000);
  /* The key after "big" sits right at big's skip link. */
  int after_key = souk_json_skip(&j, big);
  assert_true(souk_json_streq(&j, after_key, "after"));
  int after = souk_json_get(&j, 0, "after");
  assert_int_equal(after, after_key + 1);
  assert_true(souk_json_streq(&j, after, "yes"));
  int last = souk_json_get(&j, 0, "last");
  assert_int_equal(souk_json_skip(&j, last), (int)j.ntoks);

  /* souk_json_at agrees with iteration through first/skip. */
  int e = souk_json_first(&j, big);
  for (size_t i = 0; i < 2000; i++) {
    assert_int_equal(souk_json_at(&j, big, i), e);
    int64_t id;
    assert_int_equal(souk_json_i64(&j, souk_json_get(&j, e, "id"), &id), 0);
    assert_int_equal(id, (int64_t)i);
    int tags = souk_json_get(&j, e, "tags");
    int64_t v;
    assert_int_equal(souk_json_i64(&j, souk_json_get(&j, souk_json_at(&j, tags, 2), "after"), &v),
                     0);
    assert_int_equal(v, -(int64_t)i);
    e = souk_json_skip(&j, e);
  }
  assert_int_equal(e, after_key); /* one past the array's last element */
  assert_int_equal(souk_json_at(&j, big, 2000), -1);

  /* Object iteration: key, value, next key at the value's skip link. */
  static const char *const keys[] = {"before", "big", "after", "last"};
  int k = souk_json_first(&j, 0);
  for (size_t i = 0; i < 4; i++) {
    assert_true(souk_json_streq(&j, k, keys[i]));
    k = souk_json_skip(&j, k + 1);
  }
  assert_int_equal(k, (int)j.ntoks);
  souk_json_free(&j);
  souk_buf_free(&b);
}

/* ---- strings and escapes ---- */

static void expect_str(const char *doc, const char *want, size_t wantlen) {
  souk_json_t j = {0};
  assert_int_equal(parse(&j, doc), 0);
  assert_int_equal(souk_json_type(&j, 0), SOUK_JSON_STRING);
  char out[256];
  int n = souk_json_str(&j, 0, out, sizeof out);
  assert_int_equal(n, (int)wantlen);
  assert_memory_equal(out, want, wantlen);
  assert_int_equal(out[wantlen], '\0');
  char *d = souk_json_strdup(&j, 0);
  assert_memory_equal(d, want, wantlen + 1);
  souk_free(d);
  if (!memchr(want, '\0', wantlen)) assert_true(souk_json_streq(&j, 0, want));
  souk_json_free(&j);
}
#define EXPECT_STR(doc, want) expect_str(doc, want, sizeof(want) - 1)

static void test_escapes(void **state) {
  EXPECT_STR("\"plain\"", "plain");
  EXPECT_STR("\"\"", "");
  EXPECT_STR("\"a\\\"b\\\\c\\/d\\b\\f\\n\\r\\t\"", "a\"b\\c/d\b\f\n\r\t");
  EXPECT_STR("\"\\u0041\\u00e9\\u00E9\\u20ac\"", "A\xc3\xa9\xc3\xa9\xe2\x82\xac");
  EXPECT_STR("\"\\u0000x\"", "\0x");
  EXPECT_STR("\"\\u007f\\u0080\\u07ff\\u0800\\uffff\"",
             "\x7f\xc2\x80\xdf\xbf\xe0\xa0\x80\xef\xbf\xbf");
  /* Surrogate pairs: U+1F600 and the extremes U+10000, U+10FFFF. */
  EXPECT_STR("\"\\ud83d\\ude00\"", "\xf0\x9f\x98\x80");
  EXPECT_STR("\"\\uD800\\uDC00|\\uDBFF\\uDFFF\"", "\xf0\x90\x80\x80|\xf4\x8f\xbf\xbf");
  /* Lone surrogates become U+FFFD; the following escape is not swallowed. */
  EXPECT_STR("\"\\ud800\"", "\xef\xbf\xbd");
  EXPECT_STR("\"\\ud800x\"", "\xef\xbf\xbdx");
  EXPECT_STR("\"\\udc00\"", "\xef\xbf\xbd");
  EXPECT_STR("\"\\ude00\\ud83d\"", "\xef\xbf\xbd\xef\xbf\xbd");
  EXPECT_STR("\"\\ud800\\u0041\"", "\xef\xbf\xbd"
                                   "A");
  EXPECT_STR("\"\\ud800\\ud800\\udc00\"", "\xef\xbf\xbd\xf0\x90\x80\x80");
  EXPECT_STR("\"\\ud800\\n\"", "\xef\xbf\xbd\n");
  EXPECT_STR("\"\\ud800\\\\udc00\"", "\xef\xbf\xbd\\udc00");
  /* Raw UTF-8 and DEL pass through. */
  EXPECT_STR("\"caf\xc3\xa9 \x7f \xf0\x9f\x98\x80\"", "caf\xc3\xa9 \x7f \xf0\x9f\x98\x80");

  /* The raw accessor keeps the escapes and flags them. */
  souk_json_t j = {0};
  assert_int_equal(parse(&j, "[\"a\\nb\",\"ab\"]"), 0);
  size_t n;
  const char *r = souk_json_raw(&j, 1, &n);
  assert_int_equal(n, 4);
  assert_memory_equal(r, "a\\nb", 4);
  assert_int_equal(j.toks[1].escaped, 1);
  assert_int_equal(j.toks[2].escaped, 0);

  /* Not a string. */
  char out[8];
  assert_int_equal(parse(&j, "[1]"), 0);
  assert_int_equal(souk_json_str(&j, 0, out, sizeof out), SOUK_EINVAL);
  assert_int_equal(souk_json_str(&j, 1, out, sizeof out), SOUK_EINVAL);
  assert_int_equal(souk_json_str(&j, -1, out, sizeof out), SOUK_EINVAL);
  assert_null(souk_json_strdup(&j, 1));
  assert_false(souk_json_streq(&j, 1, "1"));
  assert_int_equal(parse(&j, "\"x\""), 0);
  assert_int_equal(souk_json_str(&j, 0, out, 0), SOUK_EINVAL);

  /* Long escaped strings take the heap path in str/streq/getn. */
  souk_buf_t b = {0}, want = {0};
  souk_buf_puts(&b, "{\"");
  for (int i = 0; i < 400; i++) {
    souk_buf_puts(&b, "\\u00e9x");
    souk_buf_puts(&want, "\xc3\xa9x");
  }
  char *key = souk_memdup0(b.data + 2, b.len - 2);
  souk_buf_puts(&b, "\":\"");
  souk_buf_puts(&b, key);
  souk_buf_puts(&b, "\"}");
  souk_free(key);
  assert_int_equal(parse_n(&j, b.data, b.len), 0);
  int v = souk_json_get(&j, 0, want.data);
  assert_int_equal(v, 2);
  assert_true(souk_json_streq(&j, v, want.data));
  char *d = souk_json_strdup(&j, v);
  assert_string_equal(d, want.data);
  souk_free(d);
  char big[2048];
  assert_int_equal(souk_json_str(&j, v, big, sizeof big), (int)want.len);
  assert_string_equal(big, want.data);
  want.data[want.len - 1] = 'y';
  assert_false(souk_json_streq(&j, v, want.data));
  assert_int_equal(souk_json_get(&j, 0, want.data), -1);
  souk_buf_free(&b);
  souk_buf_free(&want);
  souk_json_free(&j);
}

static void test_str_truncation(void **state) {
  /* "aé€😀" is 1 + 2 + 3 + 4 bytes; a truncated copy must end on a code
   * point boundary, both from raw UTF-8 and from \u escapes. */
  static const char *const docs[] = {
      "\"a\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\"",
      "\"a\\u00e9\\u20ac\\ud83d\\ude00\"",
  };
  static const char full[] = "a\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80";
  /* cap -> bytes kept */
  static const size_t keep[] = {0, 0, 1, 1, 3, 3, 3, 6, 6, 6, 6, 10};
  for (size_t d = 0; d < 2; d++) {
    souk_json_t j = {0};
    assert_int_equal(parse(&j, docs[d]), 0);
    for (size_t cap = 1; cap <= 10; cap++) {
      char out[16];
      memset(out, '#', sizeof out);
      int rc = souk_json_str(&j, 0, out, cap);
      assert_int_equal(rc, SOUK_ETOOBIG);
      assert_int_equal(strlen(out), keep[cap]);
      assert_memory_equal(out, full, keep[cap]);
      assert_int_equal(out[cap], '#'); /* nothing written past cap */
    }
    char out[12];
    assert_int_equal(souk_json_str(&j, 0, out, sizeof out), 10);
    assert_string_equal(out, full);
    souk_json_free(&j);
  }
}

static void test_streq_keys(void **state) {
  souk_json_t j = {0};
  assert_int_equal(parse(&j, "{\"t\\u0079pe\":1,\"a\\\"b\":2,\"caf\\u00e9\":3,\"caf\xc3\xa9x\":4,"
                             "\"\\/\":5,\"\":6,\"nul\\u0000l\":7}"),
                   0);
  int64_t v;
  assert_int_equal(souk_json_i64(&j, souk_json_get(&j, 0, "type"), &v), 0);
  assert_int_equal(v, 1);
  assert_int_equal(souk_json_i64(&j, souk_json_get(&j, 0, "a\"b"), &v), 0);
  assert_int_equal(v, 2);
  assert_int_equal(souk_json_i64(&j, souk_json_get(&j, 0, "caf\xc3\xa9"), &v), 0);
  assert_int_equal(v, 3);
  assert_int_equal(souk_json_i64(&j, souk_json_get(&j, 0, "caf\xc3\xa9x"), &v), 0);
  assert_int_equal(v, 4);
  assert_int_equal(souk_json_i64(&j, souk_json_get(&j, 0, "/"), &v), 0);
  assert_int_equal(v, 5);
  assert_int_equal(souk_json_i64(&j, souk_json_get(&j, 0, ""), &v), 0);
  assert_int_equal(v, 6);
  assert_int_equal(souk_json_i64(&j, souk_json_getn(&j, 0, "nul\0l", 5), &v), 0);
  assert_int_equal(v, 7);
  assert_int_equal(souk_json_get(&j, 0, "nul"), -1);
  assert_int_equal(souk_json_get(&j, 0, "typ"), -1);
  assert_int_equal(souk_json_get(&j, 0, "types"), -1);
  assert_int_equal(souk_json_get(&j, 0, "t\\u0079pe"), -1); /* escapes are decoded */
  assert_int_equal(souk_json_getn(&j, 0, "typeXYZ", 4), 2);
  assert_false(souk_json_streq(&j, 0, "x")); /* an object is not a string */
  /* The first of duplicate keys wins. */
  assert_int_equal(parse(&j, "{\"k\":1,\"k\":2}"), 0);
  assert_int_equal(souk_json_i64(&j, souk_json_get(&j, 0, "k"), &v), 0);
  assert_int_equal(v, 1);
  souk_json_free(&j);
}

/* ---- integers ---- */

/* One pass for several keys finds what souk_json_get() finds for each:
 * first and last keys, absent ones, an escaped key, a repeated key (its
 * first occurrence), and nothing in a non-object. */
static void test_get_keys(void **state) {
  souk_json_t j = {0};
  const char *doc = "{\"a\":1,\"content\":\"x\",\"a\":2,\"gu\\u0069ld_id\":\"7\","
                    "\"author\":{\"id\":\"9\"},\"guild\":[1,2],\"z\":null}";
  assert_int_equal(souk_json_parse(&j, doc, strlen(doc)), 0);
  const char *keys[] = {"z", "guild_id", "webhook_id", "a", "author", "content", ""};
  int out[7];
  assert_int_equal(souk_json_get_keys(&j, 0, keys, 7, out), 5);
  for (int k = 0; k < 7; k++) assert_int_equal(out[k], souk_json_get(&j, 0, keys[k]));
  int64_t v = 0;
  assert_int_equal(souk_json_i64(&j, out[3], &v), 0);
  assert_int_equal(v, 1);
  assert_int_equal(souk_json_type(&j, out[0]), SOUK_JSON_NULL);
  assert_int_equal(souk_json_type(&j, out[2]), SOUK_JSON_NONE);
  assert_true(souk_json_streq(&j, out[1], "7"));
  /* Not an object: nothing found, every slot -1. */
  int arr = souk_json_get(&j, 0, "guild");
  out[0] = 5;
  assert_int_equal(souk_json_get_keys(&j, arr, keys, 2, out), 0);
  assert_int_equal(out[0], -1);
  assert_int_equal(out[1], -1);
  assert_int_equal(souk_json_get_keys(&j, 0, keys, 17, out), SOUK_EINVAL);
  souk_json_free(&j);
}

static void test_integers(void **state) {
  souk_json_t j = {0};
  assert_int_equal(parse(&j, "[9223372036854775807,-9223372036854775808,9223372036854775808,"
                             "-9223372036854775809,18446744073709551615,18446744073709551616,"
                             "99999999999999999999999,0,-0,1.5,1e3,-1,"
                             "\"175928847299117063\",\"-42\",\"\",\"abc\",\"1 \",\" 1\","
                             "\"1\\u0032\",\"this is a long string that is not a number\","
                             "\"000000000000000000000000042\",true,null,[],{},\"+5\",\"-\","
                             "\"18446744073709551616\"]"),
                   0);
  int64_t i;
  uint64_t u;
#define AT(k) souk_json_at(&j, 0, k)
  assert_int_equal(souk_json_i64(&j, AT(0), &i), 0);
  assert_true(i == INT64_MAX);
  assert_int_equal(souk_json_u64(&j, AT(0), &u), 0);
  assert_true(u == (uint64_t)INT64_MAX);
  assert_int_equal(souk_json_i64(&j, AT(1), &i), 0);
  assert_true(i == INT64_MIN);
  assert_int_equal(souk_json_u64(&j, AT(1), &u), SOUK_EINVAL);
  assert_int_equal(souk_json_i64(&j, AT(2), &i), SOUK_ERANGE);
  assert_int_equal(souk_json_u64(&j, AT(2), &u), 0);
  assert_true(u == (uint64_t)INT64_MAX + 1);
  assert_int_equal(souk_json_i64(&j, AT(3), &i), SOUK_ERANGE);
  assert_int_equal(souk_json_u64(&j, AT(4), &u), 0);
  assert_true(u == UINT64_MAX);
  assert_int_equal(souk_json_i64(&j, AT(4), &i), SOUK_ERANGE);
  assert_int_equal(souk_json_u64(&j, AT(5), &u), SOUK_ERANGE);
  assert_int_equal(souk_json_i64(&j, AT(5), &i), SOUK_ERANGE);
  assert_int_equal(souk_json_u64(&j, AT(6), &u), SOUK_ERANGE);
  assert_int_equal(souk_json_i64(&j, AT(6), &i), SOUK_ERANGE);
  assert_int_equal(souk_json_i64(&j, AT(7), &i), 0);
  assert_true(i == 0);
  assert_int_equal(souk_json_i64(&j, AT(8), &i), 0);
  assert_true(i == 0);
  assert_int_equal(souk_json_i64(&j, AT(9), &i), SOUK_EINVAL);  /* fraction */
  assert_int_equal(souk_json_i64(&j, AT(10), &i), SOUK_EINVAL); /* exponent */
  assert_int_equal(souk_json_u64(&j, AT(10), &u), SOUK_EINVAL);
  assert_int_equal(souk_json_i64(&j, AT(11), &i), 0);
  assert_true(i == -1);
  assert_int_equal(souk_json_u64(&j, AT(11), &u), SOUK_EINVAL);
  /* Numeric strings: Discord sends 64-bit ids as strings. */
  assert_int_equal(souk_json_u64(&j, AT(12), &u), 0);
  assert_true(u == UINT64_C(175928847299117063));
  assert_int_equal(souk_json_i64(&j, AT(12), &i), 0);
  assert_true(i == INT64_C(175928847299117063));
  assert_int_equal(souk_json_i64(&j, AT(13), &i), 0);
  assert_true(i == -42);
  for (int k = 14; k <= 19; k++) { /* "", "abc", "1 ", " 1", escaped, long prose */
    assert_int_equal(souk_json_i64(&j, AT(k), &i), SOUK_EINVAL);
    assert_int_equal(souk_json_u64(&j, AT(k), &u), SOUK_EINVAL);
  }
  assert_int_equal(souk_json_u64(&j, AT(20), &u), 0); /* leading zeros in a string */
  assert_true(u == 42);
  for (int k = 21; k <= 26; k++) { /* true null [] {} "+5" "-" */
    assert_int_equal(souk_json_i64(&j, AT(k), &i), SOUK_EINVAL);
    assert_int_equal(souk_json_u64(&j, AT(k), &u), SOUK_EINVAL);
  }
  assert_int_equal(souk_json_u64(&j, AT(27), &u), SOUK_ERANGE);
  assert_int_equal(souk_json_u64(&j, -1, &u), SOUK_EINVAL);

  bool bv;
  assert_int_equal(souk_json_bool(&j, AT(21), &bv), 0);
  assert_true(bv);
  assert_int_equal(souk_json_bool(&j, AT(22), &bv), SOUK_EINVAL);
  assert_int_equal(souk_json_bool(&j, AT(7), &bv), SOUK_EINVAL);
  assert_int_equal(parse(&j, "false"), 0);
  assert_int_equal(souk_json_bool(&j, 0, &bv), 0);
  assert_false(bv);
#undef AT
  souk_json_free(&j);
}

static void test_double(void **state) {
  souk_json_t j = {0};
  assert_int_equal(parse(&j,
                         "[1.5,\"2.5\",-1e-3,1e400,\"abc\",\" 1\",\"0x10\",\"nan\","
                         "\"1e2\",true,\"inf\","
                         "0.12345678901234567890123456789012345678901234567890123456789012345]"),
                   0);
  double d;
  assert_int_equal(souk_json_double(&j, souk_json_at(&j, 0, 0), &d), 0);
  assert_true(d == 1.5);
  assert_int_equal(souk_json_double(&j, souk_json_at(&j, 0, 1), &d), 0);
  assert_true(d == 2.5);
  assert_int_equal(souk_json_double(&j, souk_json_at(&j, 0, 2), &d), 0);
  assert_true(d == -1e-3);
  assert_int_equal(souk_json_double(&j, souk_json_at(&j, 0, 3), &d), SOUK_EINVAL);
  /* Strings must hold a JSON number, not whatever strtod accepts. */
  for (int k = 4; k <= 7; k++)
    assert_int_equal(souk_json_double(&j, souk_json_at(&j, 0, (size_t)k), &d), SOUK_EINVAL);
  assert_int_equal(souk_json_double(&j, souk_json_at(&j, 0, 8), &d), 0);
  assert_true(d == 100);
  assert_int_equal(souk_json_double(&j, souk_json_at(&j, 0, 9), &d), SOUK_EINVAL);
  assert_int_equal(souk_json_double(&j, souk_json_at(&j, 0, 10), &d), SOUK_EINVAL);
  /* A valid number longer than any stack buffer still converts. */
  assert_int_equal(souk_json_double(&j, souk_json_at(&j, 0, 11), &d), 0);
  assert_true(d > 0.1234567 && d < 0.1234568);
  souk_json_free(&j);
}

/* ---- fixed-point decimals ---- */

static void test_decimal(void **state) {
  static const struct {
    const char *s;
    unsigned scale;
    int rc;
    int64_t v;
  } cases[] = {
      /* Rounding half away from zero, from the text, never via a double. */
      {"1.005", 2, 0, 101},
      {"-1.005", 2, 0, -101},
      {"1.004", 2, 0, 100},
      {"1.0049999999", 2, 0, 100},
      {"0.005", 2, 0, 1},
      {"-0.005", 2, 0, -1},
      {"0.0049", 2, 0, 0},
      {"-0.0049", 2, 0, 0},
      {"2.675", 2, 0, 268},
      {"1.15", 1, 0, 12},
      {"-1.15", 1, 0, -12},
      {"0.5", 0, 0, 1},
      {"-0.5", 0, 0, -1},
      {"1.4999999", 0, 0, 1},
      {"123.456789", 6, 0, 123456789},
      {"123.4567895", 6, 0, 123456790},
      {"-123.4567894", 6, 0, -123456789},
      {"12", 2, 0, 1200},
      {"12", 6, 0, 12000000},
      {"00012.50", 2, 0, 1250},
      {"0", 6, 0, 0},
      {"-0", 6, 0, 0},
      {"0.000000", 6, 0, 0},
      {"0.0000001", 6, 0, 0},
      {"0.0000005", 6, 0, 1},
      {"-0.0000005", 6, 0, -1},
      /* Exponents. */
      {"1e3", 2, 0, 100000},
      {"1E+2", 0, 0, 100},
      {"2.5E-3", 6, 0, 2500},
      {"2.5E-3", 2, 0, 0},
      {"2.5e-2", 2, 0, 3},
      {"-2.5e-2", 2, 0, -3},
      {"12345e-2", 2, 0, 12345},
      {"12345e-4", 2, 0, 123},
      {"12355e-4", 2, 0, 124},
      {"0.001e3", 2, 0, 100},
      {"1e-400", 6, 0, 0},
      {"1e-99999999999", 6, 0, 0},
      {"0e400", 6, 0, 0},
      {"0e99999999999", 6, 0, 0},
      {"1e400", 6, SOUK_ERANGE, 0},
      {"1e99999999999", 6, SOUK_ERANGE, 0},
      {"1e18", 0, 0, INT64_C(1000000000000000000)},
      {"1e19", 0, SOUK_ERANGE, 0},
      {"1e12", 6, 0, INT64_C(1000000000000000000)},
      {"1e13", 6, SOUK_ERANGE, 0},
      /* Long mantissas: more than 18 significant digits. */
      {"1.23456789012345678901234567", 6, 0, 1234568},
      {"0.1234564999999999999999999", 6, 0, 123456},
      {"0.12345650000000000000001", 6, 0, 123457},
      {"-0.12345650000000000000001", 6, 0, -123457},
      {"0.0000000000000000000000000015", 6, 0, 0},
      {"1234567890123456789", 0, 0, INT64_C(1234567890123456789)},
      {"1234567890123456789.4999", 0, 0, INT64_C(1234567890123456789)},
      {"1234567890123456788.5", 0, 0, INT64_C(1234567890123456789)},
      {"1234567890123.456789", 6, 0, INT64_C(1234567890123456789)},
      {"1234567890123.4567891", 6, 0, INT64_C(1234567890123456789)},
      {"12345678901234567890123e-10", 2, 0, INT64_C(123456789012346)},
      {"12345678901234567890123e-22", 6, 0, 1234568},
      {"0.00000000000000000000000000000000000000000000000000001e53", 2, 0, 100},
      /* The int64 limits, exactly. */
      {"9223372036854775807", 0, 0, INT64_MAX},
      {"-9223372036854775808", 0, 0, INT64_MIN},
      {"9223372036854775806.5", 0, 0, INT64_MAX},
      {"9223372036854775807.5", 0, SOUK_ERANGE, 0},
      {"9223372036854775808", 0, SOUK_ERANGE, 0},
      {"-9223372036854775809", 0, SOUK_ERANGE, 0},
      {"9223372036854.775807", 6, 0, INT64_MAX},
      {"9223372036854.775808", 6, SOUK_ERANGE, 0},
      {"-9223372036854.775808", 6, 0, INT64_MIN},
      {"92233720368547758.07", 2, 0, INT64_MAX},
      {"92233720368547758.08", 2, SOUK_ERANGE, 0},
      {"92233720368547758070", 0, SOUK_ERANGE, 0},
      {"99999999999999999999999999", 2, SOUK_ERANGE, 0},
      {"100000000000000000000000000000000000000000000", 0, SOUK_ERANGE, 0},
      {"1", 18, 0, INT64_C(1000000000000000000)},
      {"10", 18, SOUK_ERANGE, 0},
      {"1", 19, SOUK_ERANGE, 0},
      /* Garbage. */
      {"", 2, SOUK_EINVAL, 0},
      {"-", 2, SOUK_EINVAL, 0},
      {"+", 2, SOUK_EINVAL, 0},
      {".", 2, SOUK_EINVAL, 0},
      {"-.", 2, SOUK_EINVAL, 0},
      {"abc", 2, SOUK_EINVAL, 0},
      {"1.2.3", 2, SOUK_EINVAL, 0},
      {"1e", 2, SOUK_EINVAL, 0},
      {"1e+", 2, SOUK_EINVAL, 0},
      {"1e-", 2, SOUK_EINVAL, 0},
      {"e5", 2, SOUK_EINVAL, 0},
      {"1x", 2, SOUK_EINVAL, 0},
      {" 1", 2, SOUK_EINVAL, 0},
      {"1 ", 2, SOUK_EINVAL, 0},
      {"--1", 2, SOUK_EINVAL, 0},
      {"0x10", 2, SOUK_EINVAL, 0},
      {"1,5", 2, SOUK_EINVAL, 0},
      {"NaN", 2, SOUK_EINVAL, 0},
      {"inf", 2, SOUK_EINVAL, 0},
      {"1e5.5", 2, SOUK_EINVAL, 0},
      {"\xef\xbc\x91", 2, SOUK_EINVAL, 0}, /* fullwidth digit one */
  };
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    int64_t v = 0x5a5a5a5a;
    size_t n = strlen(cases[i].s);
    /* Exact-size copy: the parser must not read s[n]. */
    char *s = souk_malloc(n);
    memcpy(s, cases[i].s, n);
    int rc = souk_decimal_parse(s, n, cases[i].scale, &v);
    souk_free(s);
    if (rc != cases[i].rc || (rc == 0 && v != cases[i].v))
      fail_msg("souk_decimal_parse(\"%s\", %u): rc %d value %lld, want rc %d value %lld",
               cases[i].s, cases[i].scale, rc, (long long)v, cases[i].rc, (long long)cases[i].v);
    if (rc != 0) assert_true(v == 0x5a5a5a5a); /* out untouched on error */
  }

  /* souk_json_fixed reads numbers and numeric strings. */
  souk_json_t j = {0};
  assert_int_equal(parse(&j, "[12.345,\"-0.015\",true,\"1\\u0032\",\"abc\",1e-2,null]"), 0);
  int64_t v;
  assert_int_equal(souk_json_fixed(&j, souk_json_at(&j, 0, 0), 2, &v), 0);
  assert_true(v == 1235);
  assert_int_equal(souk_json_fixed(&j, souk_json_at(&j, 0, 0), 6, &v), 0);
  assert_true(v == 12345000);
  assert_int_equal(souk_json_fixed(&j, souk_json_at(&j, 0, 1), 2, &v), 0);
  assert_true(v == -2);
  assert_int_equal(souk_json_fixed(&j, souk_json_at(&j, 0, 2), 2, &v), SOUK_EINVAL);
  assert_int_equal(souk_json_fixed(&j, souk_json_at(&j, 0, 3), 2, &v), SOUK_EINVAL);
  assert_int_equal(souk_json_fixed(&j, souk_json_at(&j, 0, 4), 2, &v), SOUK_EINVAL);
  assert_int_equal(souk_json_fixed(&j, souk_json_at(&j, 0, 5), 6, &v), 0);
  assert_true(v == 10000);
  assert_int_equal(souk_json_fixed(&j, souk_json_at(&j, 0, 6), 2, &v), SOUK_EINVAL);
  assert_int_equal(souk_json_fixed(&j, 0, 2, &v), SOUK_EINVAL);
  assert_int_equal(souk_json_fixed(&j, -1, 2, &v), SOUK_EINVAL);
  souk_json_free(&j);
}

/* Reference for souk_decimal_parse on up to 36 digits, in 128-bit
 * integers: exact, then rounded half away from zero once. */
__extension__ typedef unsigned __int128 u128;

static int ref_decimal(bool neg, const char *digits, int fracdigits, int exp10, unsigned scale,
                       int64_t *out) {
  u128 d = 0;
  for (const char *p = digits; *p; p++)
    d = d * 10 + (unsigned)(*p - '0');
  int shift = exp10 + (int)scale - fracdigits;
  u128 lim = neg ? (u128)INT64_MAX + 1 : (u128)INT64_MAX;
  u128 v;
  if (d == 0) {
    v = 0;
  } else if (shift >= 0) {
    v = d;
    for (int k = 0; k < shift; k++) {
      if (v > lim) return SOUK_ERANGE;
      v *= 10;
    }
  } else if (-shift >= 38) {
    v = 0;
  } else {
    u128 p = 1;
    for (int k = 0; k < -shift; k++)
      p *= 10;
    v = d / p;
    if ((d % p) * 2 >= p) v++;
  }
  if (v > lim) return SOUK_ERANGE;
  *out = neg ? (int64_t)(0 - (uint64_t)v) : (int64_t)v;
  return 0;
}

static uint64_t g_rng = 0x2545f4914f6cdd1du;
static unsigned rnd(unsigned n) {
  g_rng ^= g_rng << 13;
  g_rng ^= g_rng >> 7;
  g_rng ^= g_rng << 17;
  return (unsigned)(g_rng % n);
}

static void test_decimal_random(void **state) {
  static const unsigned scales[] = {0, 2, 6, 18};
  static const char pool[] = "0123456789999995000";
  for (int iter = 0; iter < 200000; iter++) {
    char text[128], digits[64];
    size_t tn = 0, dn = 0;
    bool neg = rnd(2);
    if (neg) text[tn++] = '-';
    int ni = (int)rnd(19), nf = (int)rnd(19);
    if (ni + nf == 0) ni = 1;
    for (int k = 0; k < ni; k++) {
      char c = pool[rnd(sizeof pool - 1)];
      text[tn++] = c;
      digits[dn++] = c;
    }
    if (nf) {
      text[tn++] = '.';
      for (int k = 0; k < nf; k++) {
        char c = pool[rnd(sizeof pool - 1)];
        text[tn++] = c;
        digits[dn++] = c;
      }
    }
    digits[dn] = '\0';
    int e = 0;
    if (rnd(3) == 0) {
      e = (int)rnd(51) - 25;
      tn += (size_t)snprintf(text + tn, sizeof text - tn, "%s%d", rnd(2) ? "e" : "E", e);
    }
    text[tn] = '\0';
    unsigned scale = scales[rnd(4)];
    int64_t got = 0, want = 0;
    int rc = souk_decimal_parse(text, tn, scale, &got);
    int wrc = ref_decimal(neg, digits, nf, e, scale, &want);
    if (rc != wrc || (rc == 0 && got != want))
      fail_msg("souk_decimal_parse(\"%s\", %u): rc %d value %lld; reference rc %d value %lld", text,
               scale, rc, (long long)got, wrc, (long long)want);
  }
}

/* ---- malformed input ---- */

static void test_malformed(void **state) {
  static const char *const bad[] = {
      "",
      " ",
      "\n\t",
      "[1,]",
      "{\"a\":1,}",
      "[,1]",
      "{,}",
      "[1,,2]",
      "01",
      "[01]",
      "-01",
      "00",
      "1.",
      ".5",
      "+1",
      "1e",
      "1e+",
      "1E-",
      "-",
      "--1",
      "[-]",
      "1.e5",
      "1e5.5",
      "0x1F",
      "NaN",
      "Infinity",
      "-Infinity",
      "{a:1}",
      "{'a':1}",
      "['a']",
      "{1:1}",
      "{null:1}",
      "tru",
      "True",
      "TRUE",
      "nul",
      "nulll",
      "falsey",
      "fals",
      "[true false]",
      "[truefalse]",
      "{\"a\" 1}",
      "{\"a\":}",
      "{\"a\"}",
      "{\"a\":1 \"b\":2}",
      "{\"a\"::1}",
      "[1 2]",
      "[1:2]",
      "{\"a\":1]",
      "[1}",
      "[1]]",
      "[1]x",
      "{}{}",
      "[] []",
      "1 2",
      "[",
      "{",
      "]",
      "}",
      "[[]",
      "{\"a\":{}",
      "\"abc",
      "\"\\",
      "\"\\\"",
      "\"a\\x\"",
      "\"\\u12\"",
      "\"\\u12g4\"",
      "\"\\U0041\"",
      "\"\\'\"",
      "\"\\u\"",
      "\"\\ud800\\u\"",
      /* Control characters must be escaped inside strings. */
      "\"\x01\"",
      "\"a\nb\"",
      "\"\t\"",
      "\"\x1f\"",
      "[\"\r\"]",
      /* Comments and other extensions. */
      "[1]//",
      "/*x*/1",
      "[1,/*x*/2]",
      "\xef\xbb\xbf[1]",
      "[\xc2\xa0]",
  };
  souk_json_t j = {0};
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    size_t n = strlen(bad[i]);
    int rc = parse_n(&j, bad[i], n);
    if (rc != SOUK_EPARSE) fail_msg("accepted bad JSON #%zu \"%s\" (rc %d)", i, bad[i], rc);
    assert_int_equal(j.ntoks, 0);
    assert_int_equal(souk_json_type(&j, 0), SOUK_JSON_NONE);
    assert_true(j.err_pos <= n);
  }
  /* Embedded NUL bytes anywhere are rejected, whatever strlen says. */
  static const char nul1[] = "[1,\0 2]", nul2[] = "\"a\0b\"", nul3[] = "{\"a\":1}\0";
  assert_int_equal(parse_n(&j, nul1, sizeof nul1 - 1), SOUK_EPARSE);
  assert_int_equal(parse_n(&j, nul2, sizeof nul2 - 1), SOUK_EPARSE);
  assert_int_equal(parse_n(&j, nul3, sizeof nul3 - 1), SOUK_EPARSE);

  /* err_pos points at the offending byte. */
  assert_int_equal(parse(&j, "[1,]"), SOUK_EPARSE);
  assert_int_equal(j.err_pos, 3);
  assert_int_equal(parse(&j, "{\"a\":tru}"), SOUK_EPARSE);
  assert_int_equal(j.err_pos, 5);
  assert_int_equal(parse(&j, "[1, 2"), SOUK_EPARSE);
  assert_int_equal(j.err_pos, 5);

  /* And some valid documents that look odd. */
  static const char *const good[] = {
      "\"\x7f\"",          "[\"\xc3\xa9\"]",  " \t\r\n[ 1 , 2 ]\r\n", "{\"\":\"\"}",
      "[-0.0e-0]",         "[1E+2,1e-2,1.0]", "{\"a\":[{\"b\":[]}]}", "\"\\/\"",
      "[null,true,false]", "\"\xff\xfe\"", /* bytes are not UTF-8-checked by the reader */
  };
  for (size_t i = 0; i < sizeof good / sizeof *good; i++) {
    int rc = parse(&j, good[i]);
    if (rc != 0) fail_msg("rejected good JSON \"%s\" (rc %d)", good[i], rc);
    check_links(&j, 0);
  }
  souk_json_free(&j);
}

static void check_prefixes(const char *doc, size_t n) {
  souk_json_t j = {0};
  assert_int_equal(parse_n(&j, doc, n), 0);
  check_links(&j, 0);
  for (size_t k = 0; k < n; k++) {
    int rc = parse_n(&j, doc, k);
    if (rc != SOUK_EPARSE) fail_msg("prefix of %zu bytes accepted (rc %d)", k, rc);
    assert_int_equal(j.ntoks, 0);
  }
  souk_json_free(&j);
}

static void test_truncated(void **state) {
  static const char doc[] =
      "{\"op\":0,\"t\":\"MESSAGE_CREATE\",\"s\":42,\"d\":{\"id\":\"1105838371418411069\","
      "\"content\":\"h\\u00e9llo \\ud83d\\ude00 \\\"q\\\"\\n\",\"n\":-12.5e-3,\"f\":false,"
      "\"t\":true,\"z\":null,\"a\":[[],{},[1,[2,{\"x\":[\"y\"]}]]],\"e\":{}}}";
  check_prefixes(doc, sizeof doc - 1);
  size_t n;
  char *f = read_file("hypixel/doc-example-auction-by-uuid.json", &n);
  while (n && (f[n - 1] == '\n' || f[n - 1] == ' '))
    n--;
  check_prefixes(f, n);
  souk_free(f);
  f = read_file("hypixel/doc-example-auctions_ended.json", &n);
  while (n && (f[n - 1] == '\n' || f[n - 1] == ' '))
    n--;
  check_prefixes(f, n);
  souk_free(f);
}

static void test_depth(void **state) {
  char doc[2 * 1100 + 1];
  souk_json_t j = {0};
  /* Default limit 64. */
  for (int d = 63; d <= 66; d++) {
    memset(doc, '[', (size_t)d);
    memset(doc + d, ']', (size_t)d);
    int rc = parse_n(&j, doc, 2 * (size_t)d);
    assert_int_equal(rc, d <= 64 ? 0 : SOUK_ETOOBIG);
    if (rc) {
      assert_int_equal(j.err_pos, 64);
      assert_int_equal(j.ntoks, 0);
    }
  }
  /* Mixed containers with a small limit. */
  j.max_depth = 3;
  assert_int_equal(parse(&j, "{\"a\":[{\"b\":1}]}"), 0);
  assert_int_equal(parse(&j, "{\"a\":[{\"b\":[1]}]}"), SOUK_ETOOBIG);
  assert_int_equal(parse(&j, "[[[]],[[]],{\"x\":{\"y\":0}}]"), 0);
  assert_int_equal(parse(&j, "[[[]],[[]],{\"x\":{\"y\":{}}}]"), SOUK_ETOOBIG);
  /* A limit above 1024 is capped at 1024. */
  j.max_depth = 5000;
  for (int d = 1024; d <= 1025; d++) {
    memset(doc, '[', (size_t)d);
    memset(doc + d, ']', (size_t)d);
    assert_int_equal(parse_n(&j, doc, 2 * (size_t)d), d <= 1024 ? 0 : SOUK_ETOOBIG);
  }
  /* Deep but unclosed: still too deep, not a crash. */
  memset(doc, '[', 1100);
  assert_int_equal(parse_n(&j, doc, 1100), SOUK_ETOOBIG);
  j.max_depth = 0;
  assert_int_equal(parse_n(&j, doc, 1100), SOUK_ETOOBIG);
  assert_int_equal(parse_n(&j, doc, 64), SOUK_EPARSE);
  souk_json_free(&j);
}

static void test_reuse(void **state) {
  souk_json_t j = {0};
  souk_buf_t b = {0};
  souk_buf_putc(&b, '[');
  for (int i = 0; i < 10000; i++)
    souk_buf_printf(&b, "%s%d", i ? "," : "", i);
  souk_buf_putc(&b, ']');
  assert_int_equal(parse_n(&j, b.data, b.len), 0);
  assert_int_equal(j.ntoks, 10001);
  uint32_t cap = j.cap;
  /* A small document afterwards reuses the tokens. */
  assert_int_equal(parse(&j, "{\"a\":1}"), 0);
  assert_int_equal(j.ntoks, 3);
  assert_int_equal(j.cap, cap);
  int64_t v;
  assert_int_equal(souk_json_i64(&j, souk_json_get(&j, 0, "a"), &v), 0);
  assert_true(v == 1);
  /* A failed parse leaves nothing behind, and the next one works. */
  assert_int_equal(parse(&j, "{\"a\":1,"), SOUK_EPARSE);
  assert_int_equal(souk_json_get(&j, 0, "a"), -1);
  assert_int_equal(parse(&j, "[true]"), 0);
  assert_int_equal(souk_json_type(&j, souk_json_at(&j, 0, 0)), SOUK_JSON_TRUE);
  /* Free, then parse again with the same struct. */
  souk_json_free(&j);
  assert_null(j.toks);
  assert_int_equal(parse_n(&j, b.data, b.len), 0);
  assert_int_equal(souk_json_i64(&j, souk_json_at(&j, 0, 9999), &v), 0);
  assert_true(v == 9999);
  souk_json_free(&j);
  souk_json_free(&j); /* twice is harmless */
  souk_buf_free(&b);
}

/* ---- real Hypixel payloads ---- */

static void check_auction_page(const char *text, size_t n, size_t want_auctions) {
  souk_json_t j = {0};
  assert_int_equal(souk_json_parse(&j, text, n), 0);
  check_links(&j, 0);
  bool ok;
  assert_int_equal(souk_json_bool(&j, souk_json_get(&j, 0, "success"), &ok), 0);
  assert_true(ok);
  int64_t v;
  assert_int_equal(souk_json_i64(&j, souk_json_get(&j, 0, "totalPages"), &v), 0);
  assert_true(v == 66);
  assert_int_equal(souk_json_i64(&j, souk_json_get(&j, 0, "totalAuctions"), &v), 0);
  assert_true(v == 65573);
  assert_int_equal(souk_json_i64(&j, souk_json_get(&j, 0, "lastUpdated"), &v), 0);
  assert_true(v == INT64_C(1749402460812));
  int arr = souk_json_get(&j, 0, "auctions");
  assert_int_equal(souk_json_count(&j, arr), want_auctions);
  int a0 = souk_json_at(&j, arr, 0);
  assert_true(
      souk_json_streq(&j, souk_json_get(&j, a0, "uuid"), "a6774985b93e44f7aeed3e513c09240b"));
  assert_true(
      souk_json_streq(&j, souk_json_get(&j, a0, "item_name"), "Void Conqueror Enderman Skin"));
  /* item_lore carries \u00a7 colour codes and \n. */
  char lore[2048];
  assert_true(souk_json_str(&j, souk_json_get(&j, a0, "item_lore"), lore, sizeof lore) > 0);
  static const char lore0[] = "\xc2\xa7"
                              "8Consumed on use\n\n\xc2\xa7"
                              "7";
  assert_memory_equal(lore, lore0, sizeof lore0 - 1);

  int64_t sum_start = 0, sum_high = 0, fixed_sum = 0;
  size_t nbin = 0, nbids = 0, count = 0;
  for (int a = souk_json_first(&j, arr); a >= 0 && (uint32_t)a < j.toks[arr].next;
       a = souk_json_skip(&j, a), count++) {
    assert_int_equal(souk_json_i64(&j, souk_json_get(&j, a, "starting_bid"), &v), 0);
    sum_start += v;
    int64_t micro;
    assert_int_equal(souk_json_fixed(&j, souk_json_get(&j, a, "starting_bid"), 6, &micro), 0);
    assert_true(micro == v * 1000000);
    fixed_sum += micro / 1000000;
    assert_int_equal(souk_json_i64(&j, souk_json_get(&j, a, "highest_bid_amount"), &v), 0);
    sum_high += v;
    bool bin;
    assert_int_equal(souk_json_bool(&j, souk_json_get(&j, a, "bin"), &bin), 0);
    nbin += bin;
    nbids += souk_json_count(&j, souk_json_get(&j, a, "bids"));
    char name[256];
    assert_true(souk_json_str(&j, souk_json_get(&j, a, "item_name"), name, sizeof name) > 0);
    assert_int_equal(souk_json_type(&j, souk_json_get(&j, a, "item_bytes")), SOUK_JSON_STRING);
  }
  assert_int_equal(count, want_auctions);
  if (want_auctions == 1000) {
    assert_true(sum_start == INT64_C(17589987952));
    assert_true(fixed_sum == sum_start);
    assert_true(sum_high == INT64_C(429289443));
    assert_int_equal(nbin, 878);
    assert_int_equal(nbids, 375);
    assert_true(souk_json_streq(&j, souk_json_get(&j, souk_json_at(&j, arr, 999), "uuid"),
                                "cd3f0ccd21c6490098d1cd424ec29f83"));
  } else {
    assert_true(sum_start == INT64_C(986247664));
    char name[64];
    int last = souk_json_at(&j, arr, 24);
    assert_true(
        souk_json_streq(&j, souk_json_get(&j, last, "uuid"), "cb4b51ed152647cb921d855eb9514344"));
    assert_int_equal(souk_json_str(&j, souk_json_get(&j, last, "item_name"), name, sizeof name),
                     14);
    assert_string_equal(name, "\xe2\x97\x86 Ice Rune I");
    assert_true(
        souk_json_streq(&j, souk_json_get(&j, last, "item_name"), "\xe2\x97\x86 Ice Rune I"));
  }
  souk_json_free(&j);
}

static void test_hypixel_fixtures(void **state) {
  size_t n;
  char *f = read_file("hypixel/auctions-page0-2025-06-08.subset25.json", &n);
  check_auction_page(f, n, 25);
  souk_free(f);

  f = read_gz("hypixel/auctions-page0-2025-06-08.json.gz", &n);
  assert_int_equal(n, 2546850);
  check_auction_page(f, n, 1000);
  souk_free(f);

  /* auctions_ended: a bare array of 120 sales. */
  souk_json_t j = {0};
  f = read_file("hypixel/auctions_ended-2025-08-09.auctions.json", &n);
  assert_int_equal(souk_json_parse(&j, f, n), 0);
  check_links(&j, 0);
  assert_int_equal(souk_json_count(&j, 0), 120);
  int64_t sum = 0, v;
  for (size_t i = 0; i < 120; i++) {
    int a = souk_json_at(&j, 0, i);
    assert_int_equal(souk_json_i64(&j, souk_json_get(&j, a, "price"), &v), 0);
    sum += v;
  }
  assert_true(sum == INT64_C(896434973));
  assert_true(souk_json_streq(&j, souk_json_path(&j, souk_json_at(&j, 0, 0), "auction_id", NULL),
                              "e73ce0be127d428485ae69b7dcd5dd60"));
  assert_int_equal(souk_json_i64(&j, souk_json_get(&j, souk_json_at(&j, 0, 119), "timestamp"), &v),
                   0);
  assert_true(v == INT64_C(1754778410847));
  souk_free(f);

  /* The documentation's example of /skyblock/auction: item_bytes is an
   * object there. */
  f = read_file("hypixel/doc-example-auction-by-uuid.json", &n);
  assert_int_equal(souk_json_parse(&j, f, n), 0);
  int a = souk_json_at(&j, souk_json_get(&j, 0, "auctions"), 0);
  assert_true(souk_json_streq(&j, souk_json_get(&j, a, "item_name"), "Azure Bluet"));
  int ib = souk_json_get(&j, a, "item_bytes");
  assert_int_equal(souk_json_type(&j, ib), SOUK_JSON_OBJECT);
  assert_int_equal(souk_json_i64(&j, souk_json_get(&j, ib, "type"), &v), 0);
  assert_true(v == 0);
  assert_int_equal(souk_json_type(&j, souk_json_get(&j, ib, "data")), SOUK_JSON_STRING);
  assert_int_equal(souk_json_i64(&j, souk_json_get(&j, a, "start"), &v), 0);
  assert_true(v == INT64_C(1573760802637));
  souk_free(f);

  f = read_file("hypixel/doc-example-auctions_ended.json", &n);
  assert_int_equal(souk_json_parse(&j, f, n), 0);
  check_links(&j, 0);
  assert_int_equal(souk_json_type(&j, souk_json_get(&j, 0, "auctions")), SOUK_JSON_ARRAY);
  souk_free(f);
  souk_json_free(&j);
}

static int teardown_copy(void **state) {
  souk_free(g_copy);
  g_copy = NULL;
  return 0;
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_teardown(test_types, teardown_copy),
      cmocka_unit_test_teardown(test_nested_skip, teardown_copy),
      cmocka_unit_test_teardown(test_escapes, teardown_copy),
      cmocka_unit_test_teardown(test_str_truncation, teardown_copy),
      cmocka_unit_test_teardown(test_streq_keys, teardown_copy),
      cmocka_unit_test(test_get_keys),
      cmocka_unit_test_teardown(test_integers, teardown_copy),
      cmocka_unit_test_teardown(test_double, teardown_copy),
      cmocka_unit_test_teardown(test_decimal, teardown_copy),
      cmocka_unit_test(test_decimal_random),
      cmocka_unit_test_teardown(test_malformed, teardown_copy),
      cmocka_unit_test_teardown(test_truncated, teardown_copy),
      cmocka_unit_test_teardown(test_depth, teardown_copy),
      cmocka_unit_test_teardown(test_reuse, teardown_copy),
      cmocka_unit_test_teardown(test_hypixel_fixtures, teardown_copy),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
