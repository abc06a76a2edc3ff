/* zlib-stream: messages produced the way Discord does (one deflate stream,
 * Z_SYNC_FLUSH after each message), split across frames at every byte
 * boundary, many messages on one context, corruption and the size cap. */
/* cmocka.h needs these headers included before it. */
/* clang-format off */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <zlib.h>

#include <cmocka.h>
/* clang-format on */

#include "discord/zstream.h"
#include "souk/alloc.h"
#include "souk/buf.h"
#include "souk/err.h"

/* A deflate stream standing in for the gateway. */
typedef struct deflater {
  z_stream z;
} deflater_t;

static void def_init(deflater_t *d) {
  memset(d, 0, sizeof *d);
  assert_int_equal(deflateInit(&d->z, Z_DEFAULT_COMPRESSION), Z_OK);
}

/* Compress one message with a sync flush; the result ends in 00 00 ff ff. */
static void def_msg(deflater_t *d, const char *msg, size_t len, souk_buf_t *out) {
  souk_buf_reset(out);
  d->z.next_in = (Bytef *)msg;
  d->z.avail_in = (uInt)len;
  do {
    souk_buf_reserve(out, 4096);
    d->z.next_out = (Bytef *)out->data + out->len;
    d->z.avail_out = (uInt)(out->cap - out->len - 1);
    size_t before = d->z.avail_out;
    assert_true(deflate(&d->z, Z_SYNC_FLUSH) != Z_STREAM_ERROR);
    out->len += before - d->z.avail_out;
  } while (d->z.avail_out == 0);
  assert_true(out->len >= 4);
  assert_memory_equal(out->data + out->len - 4, "\x00\x00\xff\xff", 4);
}

static void def_free(deflater_t *d) { deflateEnd(&d->z); }

static const char MSG1[] = "{\"op\":10,\"d\":{\"heartbeat_interval\":41250}}";
static const char MSG2[] =
    "{\"t\":\"MESSAGE_CREATE\",\"s\":2,\"op\":0,\"d\":{\"content\":\"hello hello hello "
    "world\",\"channel_id\":\"123456789012345678\",\"author\":{\"id\":\"1\"}}}";

static void feed_ok(souk__zstream_t *zs, const void *p, size_t n, const char *want) {
  const char *out = NULL;
  size_t outlen = 0;
  assert_int_equal(souk__zstream_feed(zs, p, n, &out, &outlen), 1);
  assert_int_equal(outlen, strlen(want));
  assert_memory_equal(out, want, outlen);
  assert_int_equal(out[outlen], '\0');
}

static void feed_more(souk__zstream_t *zs, const void *p, size_t n) {
  const char *out = NULL;
  size_t outlen = 0;
  assert_int_equal(souk__zstream_feed(zs, p, n, &out, &outlen), 0);
}

static void test_one_frame(void **state) {
  deflater_t d;
  def_init(&d);
  souk_buf_t c = {0};
  souk__zstream_t zs;
  assert_int_equal(souk__zstream_init(&zs, 0), 0);
  def_msg(&d, MSG1, strlen(MSG1), &c);
  feed_ok(&zs, c.data, c.len, MSG1);
  def_msg(&d, MSG2, strlen(MSG2), &c);
  feed_ok(&zs, c.data, c.len, MSG2);
  assert_int_equal(zs.messages, 2);
  assert_int_equal(zs.bytes_out, strlen(MSG1) + strlen(MSG2));
  souk__zstream_free(&zs);
  souk_buf_free(&c);
  def_free(&d);
}

/* MSG2's compressed bytes (after MSG1 on the same stream) split into
 * frames at the given cut points; the context is reset and MSG1 replayed
 * first so every split sees the same stream. */
static void check_split(souk__zstream_t *zs, const souk_buf_t *c1, const souk_buf_t *c2,
                        const size_t *cuts, int ncuts) {
  souk__zstream_reset(zs);
  feed_ok(zs, c1->data, c1->len, MSG1);
  size_t prev = 0;
  for (int i = 0; i < ncuts; i++) {
    feed_more(zs, c2->data + prev, cuts[i] - prev);
    prev = cuts[i];
  }
  feed_ok(zs, c2->data + prev, c2->len - prev, MSG2);
}

static void test_split_every_boundary(void **state) {
  deflater_t d;
  def_init(&d);
  souk_buf_t c1 = {0}, c2 = {0};
  def_msg(&d, MSG1, strlen(MSG1), &c1);
  def_msg(&d, MSG2, strlen(MSG2), &c2);
  souk__zstream_t zs;
  assert_int_equal(souk__zstream_init(&zs, 0), 0);
  size_t L = c2.len;
  unsigned runs = 0;
  /* Two frames: every cut. */
  for (size_t i = 1; i < L; i++) {
    size_t cuts[1] = {i};
    check_split(&zs, &c1, &c2, cuts, 1);
    runs++;
  }
  /* Three frames: every pair of cuts. */
  for (size_t i = 1; i < L; i++)
    for (size_t j = i + 1; j < L; j++) {
      size_t cuts[2] = {i, j};
      check_split(&zs, &c1, &c2, cuts, 2);
      runs++;
    }
  /* Four and five frames: every position of the last cut with the others
   * spread out, and the first cut at every position with the rest fixed. */
  for (size_t i = 3; i < L; i++) {
    size_t c4[3] = {1, 2, i};
    check_split(&zs, &c1, &c2, c4, 3);
    size_t c5[4] = {1, i / 3 ? i / 3 + 1 : 2, i - 1 > i / 3 + 1 ? i - 1 : i, i};
    if (c5[1] < c5[2] && c5[2] < c5[3]) check_split(&zs, &c1, &c2, c5, 4);
    runs += 2;
  }
  for (size_t i = 1; i + 4 < L; i++) {
    size_t c5[4] = {i, i + 1, i + 2, i + 3};
    check_split(&zs, &c1, &c2, c5, 4);
    runs++;
  }
  assert_true(runs > L * (L - 1) / 2);
  souk__zstream_free(&zs);
  souk_buf_free(&c1);
  souk_buf_free(&c2);
  def_free(&d);
}

static void test_many_messages_one_context(void **state) {
  deflater_t d;
  def_init(&d);
  souk_buf_t c = {0}, m = {0};
  souk__zstream_t zs;
  assert_int_equal(souk__zstream_init(&zs, 0), 0);
  const char *first_out = NULL;
  size_t first_cap = 0;
  for (int i = 0; i < 2000; i++) {
    souk_buf_reset(&m);
    souk_buf_printf(&m, "{\"t\":\"GUILD_CREATE\",\"s\":%d,\"op\":0,\"d\":{\"id\":\"%d\",\"n\":\"",
                    i, i * 7);
    for (int k = 0; k < i % 50; k++)
      souk_buf_printf(&m, "%c", 'a' + (i + k) % 26);
    souk_buf_puts(&m, "\"}}");
    def_msg(&d, m.data, m.len, &c);
    /* Alternate single frames and two-frame splits. */
    if (i % 2 && c.len > 2) {
      feed_more(&zs, c.data, c.len / 2);
      feed_ok(&zs, c.data + c.len / 2, c.len - c.len / 2, m.data);
    } else {
      feed_ok(&zs, c.data, c.len, m.data);
    }
    if (i == 10) {
      first_out = zs.out.data;
      first_cap = zs.out.cap;
    }
  }
  /* Steady state reuses the output buffer: no allocation per message. */
  assert_ptr_equal(zs.out.data, first_out);
  assert_int_equal(zs.out.cap, first_cap);
  assert_int_equal(zs.messages, 2000);
  souk__zstream_free(&zs);
  souk_buf_free(&c);
  souk_buf_free(&m);
  def_free(&d);
}

static void test_corrupt(void **state) {
  deflater_t d;
  def_init(&d);
  souk_buf_t c = {0};
  souk__zstream_t zs;
  assert_int_equal(souk__zstream_init(&zs, 0), 0);
  def_msg(&d, MSG1, strlen(MSG1), &c);
  feed_ok(&zs, c.data, c.len, MSG1);
  /* Garbage that still ends in the flush marker. */
  const unsigned char junk[] = {0xde, 0xad, 0xbe, 0xef, 0x13, 0x37, 0x00, 0x00, 0xff, 0xff};
  const char *out;
  size_t outlen;
  assert_int_equal(souk__zstream_feed(&zs, junk, sizeof junk, &out, &outlen), SOUK_EPARSE);
  /* The stream stays unusable until reset. */
  def_msg(&d, MSG2, strlen(MSG2), &c);
  assert_int_equal(souk__zstream_feed(&zs, c.data, c.len, &out, &outlen), SOUK_EPARSE);
  /* A new connection: new stream on both sides. */
  souk__zstream_reset(&zs);
  def_free(&d);
  def_init(&d);
  def_msg(&d, MSG2, strlen(MSG2), &c);
  feed_ok(&zs, c.data, c.len, MSG2);

  /* A stream that does not start with a zlib header. */
  souk__zstream_reset(&zs);
  assert_int_equal(souk__zstream_feed(&zs, junk + 2, sizeof junk - 2, &out, &outlen), SOUK_EPARSE);

  /* A valid zlib header asking for a preset dictionary, which Discord's
   * stream never uses (souk checks the header itself; see zstream.c). */
  souk__zstream_reset(&zs);
  const unsigned char fdict[] = {0x78, 0xbb, 0x00, 0x00, 0xff, 0xff};
  assert_int_equal(souk__zstream_feed(&zs, fdict, sizeof fdict, &out, &outlen), SOUK_EPARSE);

  /* Data of a stream fed to a fresh context (missing its start). */
  souk__zstream_reset(&zs);
  def_msg(&d, MSG1, strlen(MSG1), &c);
  assert_true(souk__zstream_feed(&zs, c.data, c.len, &out, &outlen) < 0);
  souk__zstream_free(&zs);
  souk_buf_free(&c);
  def_free(&d);
}

static void test_size_cap(void **state) {
  deflater_t d;
  def_init(&d);
  souk_buf_t c = {0}, m = {0};
  souk__zstream_t zs;
  assert_int_equal(souk__zstream_init(&zs, 1000), 0);
  /* Exactly at the limit is fine. */
  for (int i = 0; i < 1000; i++)
    souk_buf_putc(&m, 'x');
  def_msg(&d, m.data, m.len, &c);
  feed_ok(&zs, c.data, c.len, m.data);
  /* One byte more is not; highly compressible data is caught while
   * inflating, not after. */
  souk_buf_putc(&m, 'x');
  def_msg(&d, m.data, m.len, &c);
  const char *out;
  size_t outlen;
  assert_int_equal(souk__zstream_feed(&zs, c.data, c.len, &out, &outlen), SOUK_ETOOBIG);
  assert_true(zs.out.cap <= 1002 + 64);
  souk__zstream_free(&zs);

  /* A 20 MB message against the default 16 MiB limit. */
  assert_int_equal(souk__zstream_init(&zs, 0), 0);
  def_free(&d);
  def_init(&d);
  souk_buf_reset(&m);
  souk_buf_reserve(&m, 20u << 20);
  memset(m.data, 'a', 20u << 20);
  m.len = 20u << 20;
  m.data[m.len] = '\0';
  def_msg(&d, m.data, m.len, &c);
  assert_int_equal(souk__zstream_feed(&zs, c.data, c.len, &out, &outlen), SOUK_ETOOBIG);
  souk__zstream_free(&zs);

  /* Compressed input alone over the limit, across frames, without the
   * marker: refused before buffering it all. */
  assert_int_equal(souk__zstream_init(&zs, 1000), 0);
  unsigned char chunk[1000];
  memset(chunk, 0x55, sizeof chunk);
  assert_int_equal(souk__zstream_feed(&zs, chunk, sizeof chunk, &out, &outlen), 0);
  assert_int_equal(souk__zstream_feed(&zs, chunk, sizeof chunk, &out, &outlen), 0);
  assert_int_equal(souk__zstream_feed(&zs, chunk, sizeof chunk, &out, &outlen), SOUK_ETOOBIG);
  souk__zstream_free(&zs);
  souk_buf_free(&c);
  souk_buf_free(&m);
  def_free(&d);
}

static void test_big_then_small_releases(void **state) {
  deflater_t d;
  def_init(&d);
  souk_buf_t c = {0}, m = {0};
  souk__zstream_t zs;
  assert_int_equal(souk__zstream_init(&zs, 0), 0);
  /* A 3 MB READY-like message, in 7 frames. */
  for (int i = 0; m.len < (3u << 20); i++)
    souk_buf_printf(&m, "{\"id\":\"%d\"},", i);
  def_msg(&d, m.data, m.len, &c);
  size_t step = c.len / 7 + 1, off = 0;
  while (c.len - off > step) {
    feed_more(&zs, c.data + off, step);
    off += step;
  }
  feed_ok(&zs, c.data + off, c.len - off, m.data);
  assert_true(zs.out.cap > (3u << 20));
  def_msg(&d, MSG2, strlen(MSG2), &c);
  feed_ok(&zs, c.data, c.len, MSG2);
  assert_true(zs.out.cap < (1u << 20));
  souk__zstream_free(&zs);
  souk_buf_free(&c);
  souk_buf_free(&m);
  def_free(&d);
}

static void test_empty_and_partial(void **state) {
  souk__zstream_t zs;
  assert_int_equal(souk__zstream_init(&zs, 0), 0);
  const char *out;
  size_t outlen;
  assert_int_equal(souk__zstream_feed(&zs, "", 0, &out, &outlen), 0);
  assert_int_equal(souk__zstream_feed(&zs, "\x78", 1, &out, &outlen), 0);
  souk__zstream_reset(&zs);
  assert_int_equal(zs.in.len, 0);
  souk__zstream_free(&zs);
  /* Free twice and init again is fine. */
  souk__zstream_free(&zs);
  assert_int_equal(souk__zstream_init(&zs, 0), 0);
  souk__zstream_free(&zs);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_one_frame),
      cmocka_unit_test(test_split_every_boundary),
      cmocka_unit_test(test_many_messages_one_context),
      cmocka_unit_test(test_corrupt),
      cmocka_unit_test(test_size_cap),
      cmocka_unit_test(test_big_then_small_releases),
      cmocka_unit_test(test_empty_and_partial),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
