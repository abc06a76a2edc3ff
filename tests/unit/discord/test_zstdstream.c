/* zstd-stream: payloads produced the way the gateway does (one
 * compression context per connection, a flush after each payload), many
 * on one decompression context, across zstd frame boundaries (a frame
 * ended and a new one begun inside one message), split over several
 * messages at every byte boundary, big payloads over many blocks,
 * corruption, the size cap and the window cap. */
/* cmocka.h needs these headers included before it. */
/* clang-format off */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <zstd.h>

#include <cmocka.h>
/* clang-format on */

/* The .c itself, to reach the scan for the end of a payload. */
#include "../../../src/discord/zstdstream.c"
#include "souk/alloc.h"
#include "souk/buf.h"
#include "souk/err.h"

/* The gateway's side: one compression context for the connection. */
static ZSTD_CCtx *enc_new(int window_log) {
  ZSTD_CCtx *c = ZSTD_createCCtx();
  assert_non_null(c);
  assert_false(ZSTD_isError(ZSTD_CCtx_setParameter(c, ZSTD_c_compressionLevel, 3)));
  if (window_log)
    assert_false(ZSTD_isError(ZSTD_CCtx_setParameter(c, ZSTD_c_windowLog, window_log)));
  return c;
}

/* Compress one payload and end with `end` (ZSTD_e_flush: the payload ends
 * on a block boundary, the frame goes on; ZSTD_e_end: the frame ends),
 * appending to out. */
static void enc(ZSTD_CCtx *c, const char *text, size_t len, ZSTD_EndDirective end,
                souk_buf_t *out) {
  ZSTD_inBuffer in = {text, len, 0};
  for (;;) {
    souk_buf_reserve(out, ZSTD_CStreamOutSize());
    ZSTD_outBuffer ob = {out->data + out->len, out->cap - out->len, 0};
    size_t left = ZSTD_compressStream2(c, &ob, &in, end);
    assert_false(ZSTD_isError(left));
    out->len += ob.pos;
    if (left == 0 && in.pos == in.size) break;
  }
}

static void payload(char *buf, size_t cap, int i) {
  snprintf(buf, cap,
           "{\"t\":\"MESSAGE_CREATE\",\"s\":%d,\"op\":0,\"d\":{\"content\":\"message number %d "
           "about the auction house\",\"channel_id\":\"1186672118224076811\",\"id\":\"%d\"}}",
           i, i, 1000000 + i);
}

static void expect(souk__zstdstream_t *zs, const souk_buf_t *msg, const char *want) {
  const char *out = NULL;
  size_t n = 0;
  assert_int_equal(souk__zstdstream_feed(zs, msg->data, msg->len, &out, &n), 1);
  assert_int_equal(n, strlen(want));
  assert_memory_equal(out, want, n);
  assert_int_equal(out[n], '\0');
}

static void test_many_payloads_share_history(void **state) {
  souk__zstdstream_t zs;
  assert_int_equal(souk__zstdstream_init(&zs, 0), 0);
  ZSTD_CCtx *c = enc_new(0);
  souk_buf_t m = {0};
  size_t first = 0, later = 0;
  for (int i = 0; i < 500; i++) {
    char p[512];
    payload(p, sizeof p, i);
    souk_buf_reset(&m);
    enc(c, p, strlen(p), ZSTD_e_flush, &m);
    if (i == 0) first = m.len;
    if (i == 499) later = m.len;
    expect(&zs, &m, p);
  }
  /* The context is kept: later payloads compress against earlier ones. */
  assert_true(later * 2 < first);
  assert_int_equal(zs.messages, 500);
  souk_buf_free(&m);
  ZSTD_freeCCtx(c);
  souk__zstdstream_free(&zs);
}

static void test_across_frame_boundaries(void **state) {
  souk__zstdstream_t zs;
  assert_int_equal(souk__zstdstream_init(&zs, 0), 0);
  ZSTD_CCtx *c = enc_new(0);
  souk_buf_t m = {0};
  char p[512], q[512];
  /* A server that ends a frame per payload. */
  for (int i = 0; i < 20; i++) {
    payload(p, sizeof p, i);
    souk_buf_reset(&m);
    enc(c, p, strlen(p), ZSTD_e_end, &m);
    expect(&zs, &m, p);
  }
  /* One message holding the end of a frame and the start of the next: the
   * flushed payload, then the frame's end and a new frame's payload. */
  payload(p, sizeof p, 100);
  souk_buf_reset(&m);
  enc(c, p, strlen(p), ZSTD_e_flush, &m);
  expect(&zs, &m, p);
  souk_buf_reset(&m);
  enc(c, "", 0, ZSTD_e_end, &m); /* ends the frame: no payload of its own */
  payload(q, sizeof q, 101);
  enc(c, q, strlen(q), ZSTD_e_flush, &m);
  expect(&zs, &m, q);
  /* Flushed payloads go on in the new frame. */
  for (int i = 102; i < 110; i++) {
    payload(p, sizeof p, i);
    souk_buf_reset(&m);
    enc(c, p, strlen(p), ZSTD_e_flush, &m);
    expect(&zs, &m, p);
  }
  souk_buf_free(&m);
  ZSTD_freeCCtx(c);
  souk__zstdstream_free(&zs);
}

static void test_split_at_every_byte(void **state) {
  char p[512];
  payload(p, sizeof p, 7);
  /* The first message of a connection (frame header, block header, block)
   * and a later one, each split at every position. */
  for (int which = 0; which < 2; which++) {
    ZSTD_CCtx *c0 = enc_new(0);
    souk_buf_t m = {0};
    enc(c0, p, strlen(p), ZSTD_e_flush, &m);
    if (which == 1) {
      souk_buf_reset(&m);
      enc(c0, p, strlen(p), ZSTD_e_flush, &m);
    }
    for (size_t cut = 1; cut < m.len; cut++) {
      souk__zstdstream_t zs;
      assert_int_equal(souk__zstdstream_init(&zs, 0), 0);
      ZSTD_CCtx *c = enc_new(0);
      souk_buf_t pre = {0};
      if (which == 1) {
        /* Replay the first payload so the split one is the second. */
        enc(c, p, strlen(p), ZSTD_e_flush, &pre);
        expect(&zs, &pre, p);
      }
      souk_buf_t again = {0};
      enc(c, p, strlen(p), ZSTD_e_flush, &again);
      assert_int_equal(again.len, m.len);
      const char *out = NULL;
      size_t n = 0;
      int rc = souk__zstdstream_feed(&zs, again.data, cut, &out, &n);
      if (rc == 1) {
        /* The cut fell after the whole block: only trailing bytes of a
         * header would remain, which never happens with a flush. */
        fail_msg("payload complete after %zu of %zu bytes", cut, again.len);
      }
      assert_int_equal(rc, 0);
      assert_int_equal(souk__zstdstream_feed(&zs, again.data + cut, again.len - cut, &out, &n), 1);
      assert_int_equal(n, strlen(p));
      assert_memory_equal(out, p, n);
      souk_buf_free(&again);
      souk_buf_free(&pre);
      ZSTD_freeCCtx(c);
      souk__zstdstream_free(&zs);
    }
    souk_buf_free(&m);
    ZSTD_freeCCtx(c0);
  }
}

/* A JSON object of exactly len bytes (len >= 64), like a big READY: many
 * small objects with strings holding braces, quotes and backslashes, so
 * that a scan which miscounted them would end early or late. */
static char *big_json(size_t len) {
  char *t = souk_malloc(len + 1);
  size_t n = 0;
  n += (size_t)snprintf(t, len, "{\"op\":0,\"t\":\"READY\",\"d\":{\"guilds\":[");
  for (int i = 0; n + 120 < len; i++)
    n += (size_t)snprintf(t + n, len - n,
                          "%s{\"id\":\"%d\",\"name\":\"g}]\\\"{[%d\\\\\",\"x\":[%d,{}]}",
                          i ? "," : "", 1000 + i, i * 7 % 97, i);
  n += (size_t)snprintf(t + n, len - n, "],\"pad\":\"");
  for (; n < len - 3; n++)
    t[n] = (char)('a' + n * 7 % 26);
  memcpy(t + n, "\"}}", 3);
  t[len] = '\0';
  return t;
}

/* Where each zstd block in data[off..len) ends (the blocks of a frame
 * whose header came earlier); the walk must land on len exactly. */
static int block_ends(const char *data, size_t off, size_t len, size_t *ends, int max) {
  int n = 0;
  while (off + 3 <= len && n < max) {
    const unsigned char *b = (const unsigned char *)data + off;
    uint32_t h = b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16;
    uint32_t type = (h >> 1) & 3, size = h >> 3;
    off += 3 + (type == 1 ? 1 : size); /* an RLE block holds one byte */
    ends[n++] = off;
  }
  assert_int_equal(off, len);
  return n;
}

/* The scan for the end of a JSON object, resumed across pieces: strings
 * with braces, escaped quotes and backslashes (a backslash last in a
 * piece), nested arrays; whole only after the last byte, wherever the
 * text is cut. */
static void test_json_end_scan(void **state) {
  static const char *const texts[] = {
      "{\"a\":\"}\\\"}\",\"b\":[1,{\"c\":\"\\\\\"},[]],\"d\":\"{[\\\\\"}",
      "  \n{\"op\":11}",
      "[{\"x\":\"]\"},2]",
  };
  for (size_t t = 0; t < sizeof texts / sizeof texts[0]; t++) {
    const char *text = texts[t];
    size_t len = strlen(text);
    for (size_t cut = 0; cut <= len; cut++) {
      for (size_t cut2 = cut; cut2 <= len; cut2++) {
        souk__zstdstream_t zs;
        memset(&zs, 0, sizeof zs);
        souk_buf_append(&zs.out, text, cut);
        bool whole = zd_json_complete(&zs);
        assert_true(whole == (cut == len));
        souk_buf_append(&zs.out, text + cut, cut2 - cut);
        whole = zd_json_complete(&zs);
        assert_true(whole == (cut2 == len));
        souk_buf_append(&zs.out, text + cut2, len - cut2);
        assert_true(zd_json_complete(&zs));
        souk_buf_free(&zs.out);
      }
    }
  }
  /* Runs of backslashes and quotes across the scan's 64-byte blocks: every
   * offset of them, every cut. */
  for (int pad = 0; pad < 140; pad++) {
    char text[512];
    int n =
        snprintf(text, sizeof text,
                 "{\"k\":\"%.*s\\\\\\\"}]\\\\\",\"x\":[{\"y\":\"\\\"\"}],\"z\":\"%.*s\\\\\"}", pad,
                 "................................................................................"
                 "............................................................",
                 (pad * 7) % 90,
                 "{[{[{[{[{[{[{[{[{[{[{[{[{[{[{[{[{[{[{[{[{[{[{[{[{[{[{[{[{[{[{[{[{[{[{[{[{[{[");
    size_t len = (size_t)n;
    for (size_t cut = 0; cut <= len; cut++) {
      souk__zstdstream_t zs;
      memset(&zs, 0, sizeof zs);
      souk_buf_append(&zs.out, text, cut);
      if (zd_json_complete(&zs) != (cut == len))
        fail_msg("pad %d cut %zu of %zu: %s", pad, cut, len, text);
      souk_buf_append(&zs.out, text + cut, len - cut);
      assert_true(zd_json_complete(&zs));
      souk_buf_free(&zs.out);
    }
  }
  /* Text that is no object or array is never held back. */
  souk__zstdstream_t zs;
  memset(&zs, 0, sizeof zs);
  souk_buf_append(&zs.out, "\"just a string", 14);
  assert_true(zd_json_complete(&zs));
  souk_buf_free(&zs.out);
}

/* A payload bigger than a block (128 KiB of text) is several blocks; a
 * server may send it over several WebSocket messages, and when one ends
 * exactly between two blocks the decoder stands where a payload would
 * end.  Only the whole payload may come out. */
static void test_split_at_block_boundaries(void **state) {
  size_t len = 300000;
  char *text = big_json(len);
  assert_int_equal(strlen(text), len);
  for (int level = 1; level <= 19; level += 18) {
    souk__zstdstream_t zs;
    assert_int_equal(souk__zstdstream_init(&zs, 0), 0);
    ZSTD_CCtx *c = enc_new(0);
    assert_false(ZSTD_isError(ZSTD_CCtx_setParameter(c, ZSTD_c_compressionLevel, level)));
    souk_buf_t m = {0};
    /* A small payload first, so the big one is not the frame's first. */
    enc(c, "{\"op\":10,\"d\":{\"heartbeat_interval\":41250}}", 42, ZSTD_e_flush, &m);
    expect(&zs, &m, "{\"op\":10,\"d\":{\"heartbeat_interval\":41250}}");
    souk_buf_reset(&m);
    enc(c, text, len, ZSTD_e_flush, &m);
    /* The blocks of the big payload (the frame header came with the
     * first message). */
    size_t ends[64];
    int nb = block_ends(m.data, 0, m.len, ends, 64);
    assert_true(nb >= 3);
    /* One WebSocket message per block. */
    size_t from = 0;
    for (int b = 0; b < nb; b++) {
      const char *out = NULL;
      size_t n = 0;
      int rc = souk__zstdstream_feed(&zs, m.data + from, ends[b] - from, &out, &n);
      from = ends[b];
      if (b < nb - 1) {
        if (rc == 1) fail_msg("payload delivered after block %d of %d: %zu bytes", b + 1, nb, n);
        assert_int_equal(rc, 0);
      } else {
        assert_int_equal(rc, 1);
        assert_int_equal(n, len);
        assert_memory_equal(out, text, len);
      }
    }
    /* The stream goes on: the next payload decodes on its own. */
    souk_buf_reset(&m);
    enc(c, "{\"op\":11}", 9, ZSTD_e_flush, &m);
    expect(&zs, &m, "{\"op\":11}");
    assert_int_equal(zs.messages, 3);
    souk_buf_free(&m);
    ZSTD_freeCCtx(c);
    souk__zstdstream_free(&zs);
  }
  souk_free(text);
}

static void test_big_payload_and_limits(void **state) {
  /* 1 MiB of JSON: many 128 KiB blocks in one message. */
  size_t big = (size_t)1 << 20;
  char *text = big_json(big);
  souk__zstdstream_t zs;
  assert_int_equal(souk__zstdstream_init(&zs, 0), 0);
  ZSTD_CCtx *c = enc_new(0);
  souk_buf_t m = {0};
  enc(c, text, big, ZSTD_e_flush, &m);
  expect(&zs, &m, text);
  /* The big buffer is released before the next small message. */
  souk_buf_reset(&m);
  enc(c, "{\"op\":11}", 9, ZSTD_e_flush, &m);
  expect(&zs, &m, "{\"op\":11}");
  assert_true(zs.out.cap <= ((size_t)64 << 10));
  souk__zstdstream_free(&zs);
  ZSTD_freeCCtx(c);

  /* Over the cap: refused, and the stream stays broken until reset. */
  assert_int_equal(souk__zstdstream_init(&zs, 4096), 0);
  c = enc_new(0);
  souk_buf_reset(&m);
  enc(c, text, 10000, ZSTD_e_flush, &m);
  const char *out;
  size_t n;
  assert_int_equal(souk__zstdstream_feed(&zs, m.data, m.len, &out, &n), SOUK_ETOOBIG);
  assert_int_equal(souk__zstdstream_feed(&zs, m.data, m.len, &out, &n), SOUK_EPARSE);
  /* A new connection starts a new stream. */
  souk__zstdstream_reset(&zs);
  ZSTD_freeCCtx(c);
  c = enc_new(0);
  souk_buf_reset(&m);
  enc(c, "{\"op\":10}", 9, ZSTD_e_flush, &m);
  expect(&zs, &m, "{\"op\":10}");
  ZSTD_freeCCtx(c);

  /* Corrupt bytes. */
  souk__zstdstream_reset(&zs);
  const char junk[] = "this is not zstd at all, not even close";
  assert_int_equal(souk__zstdstream_feed(&zs, junk, sizeof junk, &out, &n), SOUK_EPARSE);
  souk__zstdstream_free(&zs);

  /* A window bigger than souk accepts (it would cost that much per
   * shard) is refused. */
  assert_int_equal(souk__zstdstream_init(&zs, 0), 0);
  c = enc_new(SOUK_ZSTD_WINDOW_LOG_MAX + 2);
  souk_buf_reset(&m);
  enc(c, text, 1000, ZSTD_e_flush, &m);
  assert_int_equal(souk__zstdstream_feed(&zs, m.data, m.len, &out, &n), SOUK_EPARSE);
  ZSTD_freeCCtx(c);
  souk__zstdstream_free(&zs);
  souk_buf_free(&m);
  souk_free(text);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_many_payloads_share_history),
      cmocka_unit_test(test_across_frame_boundaries),
      cmocka_unit_test(test_split_at_every_byte),
      cmocka_unit_test(test_json_end_scan),
      cmocka_unit_test(test_split_at_block_boundaries),
      cmocka_unit_test(test_big_payload_and_limits),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
