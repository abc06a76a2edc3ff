/* Who a request comes from: addresses and ranges as headers and the
 * configuration write them, the client behind trusted proxies in every case
 * peer.h lists, and the per-address count table against a plain array. */
/* clang-format off */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
/* clang-format on */
#include "net/peer.h"
#include "souk/alloc.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

static souk__addr_t A(const char *s) {
  souk__addr_t a;
  assert_int_equal(souk__addr_parse(s, strlen(s), &a), 0);
  return a;
}

/* A pointer to a parsed address, valid until the next call. */
static const souk__addr_t *AP(const char *s) {
  static souk__addr_t a;
  a = A(s);
  return &a;
}

static void assert_addr(const souk__addr_t *a, const char *want) {
  char s[SOUK_ADDR_STRLEN];
  souk__addr_str(a, s);
  assert_string_equal(s, want);
}

static void test_addr_parse(void **state) {
  struct {
    const char *in, *out;
  } ok[] = {
      {"192.0.2.1", "192.0.2.1"},
      {" 192.0.2.1\t", "192.0.2.1"},
      {"192.0.2.1:4711", "192.0.2.1"},
      {"2001:db8::1", "2001:db8::1"},
      {"[2001:db8::1]", "2001:db8::1"},
      {"[2001:db8::1]:4711", "2001:db8::1"},
      {"::1", "::1"},
      {"::ffff:10.0.0.1", "10.0.0.1"},
  };
  for (size_t i = 0; i < sizeof ok / sizeof *ok; i++) {
    souk__addr_t a = A(ok[i].in);
    assert_addr(&a, ok[i].out);
  }
  const char *bad[] = {"",          "unknown",      "_hidden",       "192.0.2",      "192.0.2.1:",
                       "1.2.3.4:x", "[2001:db8::1", "[::1]x",        "fe80::1%eth0", "1.2.3.4.5",
                       "256.1.1.1", "[1.2.3.4]",    "1.2.3.4:123456"};
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    souk__addr_t a;
    if (souk__addr_parse(bad[i], strlen(bad[i]), &a) == 0) fail_msg("accepted '%s'", bad[i]);
  }
  /* Not NUL-terminated: only n bytes are read. */
  souk__addr_t a;
  assert_int_equal(souk__addr_parse("10.0.0.1, 10.0.0.2", 8, &a), 0);
  assert_addr(&a, "10.0.0.1");
}

static void test_sockaddr_and_loopback(void **state) {
  struct sockaddr_in in = {.sin_family = AF_INET};
  inet_pton(AF_INET, "127.0.0.2", &in.sin_addr);
  souk__addr_t a;
  assert_int_equal(souk__addr_from_sockaddr((struct sockaddr *)&in, &a), 0);
  assert_addr(&a, "127.0.0.2");
  assert_true(souk__addr_loopback(&a));
  struct sockaddr_in6 in6 = {.sin6_family = AF_INET6};
  inet_pton(AF_INET6, "::1", &in6.sin6_addr);
  assert_int_equal(souk__addr_from_sockaddr((struct sockaddr *)&in6, &a), 0);
  assert_true(souk__addr_loopback(&a));
  /* A dual-stack socket sees IPv4 peers as mapped addresses: the same. */
  inet_pton(AF_INET6, "::ffff:127.9.9.9", &in6.sin6_addr);
  assert_int_equal(souk__addr_from_sockaddr((struct sockaddr *)&in6, &a), 0);
  assert_true(souk__addr_loopback(&a));
  assert_addr(&a, "127.9.9.9");
  assert_false(souk__addr_loopback(AP("10.0.0.1")));
  assert_false(souk__addr_loopback(AP("::2")));
  assert_false(souk__addr_loopback(AP("128.0.0.1")));
  struct sockaddr other = {.sa_family = AF_UNIX};
  assert_int_equal(souk__addr_from_sockaddr(&other, &a), -1);
  assert_int_equal(souk__addr_from_sockaddr(NULL, &a), -1);
}

static void test_cidr(void **state) {
  souk__cidr_t set[4];
  assert_int_equal(souk__cidr_parse("10.0.0.0/8", &set[0]), 0);
  assert_int_equal(souk__cidr_parse("192.0.2.7", &set[1]), 0);
  assert_int_equal(souk__cidr_parse("fd00::/8", &set[2]), 0);
  assert_int_equal(souk__cidr_parse("2001:db8::1/128", &set[3]), 0);
  const char *in[] = {"10.0.0.1", "10.255.255.255", "192.0.2.7",
                      "fd12::5",  "2001:db8::1",    "::ffff:10.1.1.1"};
  const char *out[] = {"11.0.0.0", "9.255.255.255", "192.0.2.8",
                       "fe00::1",  "2001:db8::2",   "::a00:1"};
  for (size_t i = 0; i < sizeof in / sizeof *in; i++) {
    souk__addr_t a = A(in[i]);
    if (!souk__cidr_match(set, 4, &a)) fail_msg("%s should match", in[i]);
  }
  for (size_t i = 0; i < sizeof out / sizeof *out; i++) {
    souk__addr_t a = A(out[i]);
    if (souk__cidr_match(set, 4, &a)) fail_msg("%s should not match", out[i]);
  }
  /* Prefixes that are not whole bytes. */
  souk__cidr_t c;
  assert_int_equal(souk__cidr_parse("172.16.0.0/12", &c), 0);
  assert_true(souk__cidr_match(&c, 1, AP("172.31.255.1")));
  assert_false(souk__cidr_match(&c, 1, AP("172.32.0.1")));
  /* /0 of one family does not take in the other. */
  assert_int_equal(souk__cidr_parse("0.0.0.0/0", &c), 0);
  assert_true(souk__cidr_match(&c, 1, AP("203.0.113.9")));
  assert_false(souk__cidr_match(&c, 1, AP("2001:db8::9")));
  const char *bad[] = {"10.0.0.1/8", "10.0.0.0/33", "::1/129", "10.0.0.0/", "10.0.0.0/x",
                       "nginx",      "[::1]",       "::1/64",  "",          "10.0.0.0/8 "};
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
    if (souk__cidr_parse(bad[i], &c) == 0) fail_msg("accepted '%s'", bad[i]);
  assert_int_equal(souk__cidr_parse(NULL, &c), -1);
}

/* ---- the proxy cases --------------------------------------------------- */

static souk__cidr_t trusted[2];
static size_t ntrusted;

static void trust(const char *a, const char *b) {
  ntrusted = 0;
  if (a) assert_int_equal(souk__cidr_parse(a, &trusted[ntrusted++]), 0);
  if (b) assert_int_equal(souk__cidr_parse(b, &trusted[ntrusted++]), 0);
}

static souk__peer_view_t judge(const char *peer, const char *xff, const char *fwd) {
  souk__addr_t p = A(peer);
  souk__peer_view_t v;
  souk__peer_judge(&p, xff, fwd, trusted, ntrusted, &v);
  return v;
}

static void expect(const char *peer, const char *xff, const char *fwd, const char *client,
                   bool local, bool via_proxy) {
  souk__peer_view_t v = judge(peer, xff, fwd);
  char s[SOUK_ADDR_STRLEN];
  souk__addr_str(&v.client, s);
  if (strcmp(s, client) || v.local != local || v.via_proxy != via_proxy ||
      v.forwarded != (xff || fwd))
    fail_msg("peer %s xff %s fwd %s: client %s local %d via_proxy %d", peer, xff ? xff : "-",
             fwd ? fwd : "-", s, v.local, v.via_proxy);
}

static void test_no_proxy_headers(void **state) {
  trust("127.0.0.1", NULL);
  /* No header: the peer, local when loopback, trusted or not. */
  expect("127.0.0.1", NULL, NULL, "127.0.0.1", true, false);
  expect("127.0.0.5", NULL, NULL, "127.0.0.5", true, false);
  expect("203.0.113.9", NULL, NULL, "203.0.113.9", false, false);
  expect("::1", NULL, NULL, "::1", true, false);
}

static void test_headers_from_an_untrusted_peer(void **state) {
  /* Nothing trusted: a loopback peer with a proxy header is a proxy souk
   * was not told about, and what it forwarded is not local. */
  trust(NULL, NULL);
  expect("127.0.0.1", "127.0.0.1", NULL, "127.0.0.1", false, false);
  expect("127.0.0.1", NULL, "for=127.0.0.1", "127.0.0.1", false, false);
  expect("127.0.0.1", "", NULL, "127.0.0.1", false, false);
  /* Loopback is trusted, the peer is not: the header changes nothing but
   * takes away "local". */
  trust("127.0.0.1", NULL);
  expect("203.0.113.9", "127.0.0.1", NULL, "203.0.113.9", false, false);
  expect("127.0.0.2", "127.0.0.1", NULL, "127.0.0.2", false, false);
}

static void test_trusted_proxy(void **state) {
  trust("127.0.0.1", "10.0.0.0/8");
  /* The proxy appended the client: remote, or really local. */
  expect("127.0.0.1", "203.0.113.9", NULL, "203.0.113.9", false, true);
  expect("127.0.0.1", "127.0.0.1", NULL, "127.0.0.1", true, true);
  expect("127.0.0.1", "::1", NULL, "::1", true, true);
  /* What the client wrote before the proxy's hop proves nothing. */
  expect("127.0.0.1", "127.0.0.1, 203.0.113.9", NULL, "203.0.113.9", false, true);
  expect("127.0.0.1", "unknown, garbage,203.0.113.9", NULL, "203.0.113.9", false, true);
  /* Trusted hops are skipped from the right; all trusted: the left-most. */
  expect("127.0.0.1", "198.51.100.1, 10.1.2.3", NULL, "198.51.100.1", false, true);
  expect("127.0.0.1", "10.9.9.9, 10.1.2.3", NULL, "10.9.9.9", false, true);
  expect("127.0.0.1", "127.0.0.1, 10.1.2.3", NULL, "127.0.0.1", true, true);
  /* Ports and brackets as some proxies write them. */
  expect("127.0.0.1", "203.0.113.9:5555", NULL, "203.0.113.9", false, true);
  expect("127.0.0.1", "[2001:db8::7]:443", NULL, "2001:db8::7", false, true);
  /* A hop the walk must read but cannot: unreadable, not local, and the
   * client is counted under the proxy's address. */
  expect("127.0.0.1", "10.0.0.5, unknown", NULL, "127.0.0.1", false, true);
  expect("127.0.0.1", "", NULL, "127.0.0.1", false, true);
  expect("127.0.0.1", " , ", NULL, "127.0.0.1", false, true);
}

static void test_forwarded_header(void **state) {
  trust("127.0.0.1", NULL);
  expect("127.0.0.1", NULL, "for=203.0.113.9;proto=https", "203.0.113.9", false, true);
  expect("127.0.0.1", NULL, "for=127.0.0.1", "127.0.0.1", true, true);
  expect("127.0.0.1", NULL, "For=\"[2001:db8:cafe::17]:4711\"", "2001:db8:cafe::17", false, true);
  expect("127.0.0.1", NULL, "for=127.0.0.1, for=198.51.100.17;by=127.0.0.1", "198.51.100.17", false,
         true);
  expect("127.0.0.1", NULL, "proto=http;for=\"198.51.100.17:80\" ;host=x", "198.51.100.17", false,
         true);
  /* A quoted comma does not split elements. */
  expect("127.0.0.1", NULL, "for=\"a,b\", for=198.51.100.17", "198.51.100.17", false, true);
  /* An obfuscated or unknown last hop, an element without for=. */
  expect("127.0.0.1", NULL, "for=198.51.100.17, for=_hidden", "127.0.0.1", false, true);
  expect("127.0.0.1", NULL, "for=unknown", "127.0.0.1", false, true);
  expect("127.0.0.1", NULL, "proto=https", "127.0.0.1", false, true);
  /* Both headers: believed when they agree, else neither. */
  expect("127.0.0.1", "203.0.113.9", "for=203.0.113.9", "203.0.113.9", false, true);
  expect("127.0.0.1", "127.0.0.1", "for=127.0.0.1", "127.0.0.1", true, true);
  expect("127.0.0.1", "203.0.113.9", "for=127.0.0.1", "127.0.0.1", false, true);
  expect("127.0.0.1", "127.0.0.1", "for=203.0.113.9", "127.0.0.1", false, true);
}

static void test_long_chain_is_unreadable(void **state) {
  trust("127.0.0.1", NULL);
  char xff[2048] = "";
  for (int i = 0; i < 40; i++)
    snprintf(xff + strlen(xff), sizeof xff - strlen(xff), "%s127.0.0.1", i ? "," : "");
  expect("127.0.0.1", xff, NULL, "127.0.0.1", false, true);
  /* An over-long hop is unreadable, not truncated into an address. */
  char hop[200];
  memset(hop, '1', sizeof hop - 1);
  hop[sizeof hop - 1] = 0;
  expect("127.0.0.1", hop, NULL, "127.0.0.1", false, true);
}

/* ---- counts ------------------------------------------------------------ */

static void test_addr_key(void **state) {
  souk__addr_t k;
  souk__addr_key(AP("2001:db8:1:2:aaaa::1"), &k);
  assert_addr(&k, "2001:db8:1:2::");
  souk__addr_key(AP("192.0.2.77"), &k);
  assert_addr(&k, "192.0.2.77");
}

static void test_counts_match_an_array(void **state) {
  enum { N = 300 };
  souk__addr_counts_t t = {0};
  unsigned want[N] = {0};
  souk__addr_t keys[N];
  for (int i = 0; i < N; i++) {
    char s[32];
    snprintf(s, sizeof s, "10.0.%d.%d", i / 256, i % 256);
    keys[i] = A(s);
  }
  srand(7);
  for (int step = 0; step < 20000; step++) {
    int i = rand() % N;
    int delta = (rand() % 3 == 0) ? -1 : 1;
    unsigned got = souk__addr_count_add(&t, &keys[i], delta);
    if (delta > 0)
      want[i]++;
    else if (want[i])
      want[i]--;
    assert_int_equal(got, want[i]);
    /* Check every key now and then: removals shift others back. */
    if (step % 997 == 0)
      for (int k = 0; k < N; k++)
        assert_int_equal(souk__addr_count(&t, &keys[k]), want[k]);
  }
  size_t live = 0;
  for (int k = 0; k < N; k++) {
    assert_int_equal(souk__addr_count(&t, &keys[k]), want[k]);
    live += want[k] > 0;
  }
  assert_int_equal(t.n, live);
  /* Down to nothing, then the table is empty. */
  for (int k = 0; k < N; k++)
    while (want[k]--)
      souk__addr_count_add(&t, &keys[k], -1);
  assert_int_equal(t.n, 0);
  assert_int_equal(souk__addr_count_add(&t, &keys[0], -1), 0);
  souk__addr_counts_free(&t);
  assert_int_equal(souk__addr_count(&t, &keys[0]), 0);
}

int main(void) {
  souk_alloc_init();
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_addr_parse),
      cmocka_unit_test(test_sockaddr_and_loopback),
      cmocka_unit_test(test_cidr),
      cmocka_unit_test(test_no_proxy_headers),
      cmocka_unit_test(test_headers_from_an_untrusted_peer),
      cmocka_unit_test(test_trusted_proxy),
      cmocka_unit_test(test_forwarded_header),
      cmocka_unit_test(test_long_chain_is_unreadable),
      cmocka_unit_test(test_addr_key),
      cmocka_unit_test(test_counts_match_an_array),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
