/* souk's SHA-1 (src/net/sha1.c): the FIPS 180 examples, the RFC 6455
 * handshake example, and every length from 0 to 300 bytes (each padding
 * case: tail in one block or two) against OpenSSL's. */
/* cmocka.h needs these headers included before it. */
/* clang-format off */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>
/* clang-format on */

#include <openssl/evp.h>
#include <stdlib.h>

#include "net/sha1.h"

static void hex(const uint8_t d[20], char out[41]) {
  for (int i = 0; i < 20; i++) snprintf(out + 2 * i, 3, "%02x", d[i]);
}

static void check(const char *msg, size_t n, const char *want) {
  uint8_t d[20];
  char h[41];
  souk__sha1(msg, n, d);
  hex(d, h);
  assert_string_equal(h, want);
}

static void test_fips_examples(void **state) {
  check("", 0, "da39a3ee5e6b4b0d3255bfef95601890afd80709");
  check("abc", 3, "a9993e364706816aba3e25717850c26c9cd0d89d");
  const char *two = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
  check(two, strlen(two), "84983e441c3bd26ebaae4aa1f95129e5e54670f1");
  size_t n = 1000000;
  char *a = malloc(n);
  memset(a, 'a', n);
  check(a, n, "34aa973cd4c4daa4f61eeb2bdbad27316534016f");
  free(a);
}

static void test_websocket_accept(void **state) {
  /* RFC 6455 section 1.3: key "dGhlIHNhbXBsZSBub25jZQ==" is accepted with
   * "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=". */
  const char *src = "dGhlIHNhbXBsZSBub25jZQ==258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
  uint8_t d[20];
  char b64[32];
  souk__sha1(src, strlen(src), d);
  EVP_EncodeBlock((unsigned char *)b64, d, 20);
  assert_string_equal(b64, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
}

static void test_every_length_against_openssl(void **state) {
  unsigned char buf[300];
  for (size_t i = 0; i < sizeof buf; i++) buf[i] = (unsigned char)(i * 131 + 7);
  for (size_t n = 0; n <= sizeof buf; n++) {
    uint8_t mine[20], ref[20];
    souk__sha1(buf, n, mine);
    unsigned int rl = 0;
    assert_int_equal(EVP_Digest(buf, n, ref, &rl, EVP_sha1(), NULL), 1);
    if (memcmp(mine, ref, 20)) fail_msg("digest differs at length %zu", n);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_fips_examples),
      cmocka_unit_test(test_websocket_accept),
      cmocka_unit_test(test_every_length_against_openssl),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
