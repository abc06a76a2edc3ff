/* libFuzzer target for who a request is from (net/peer.h): the address and
 * range parsers, and the X-Forwarded-For / Forwarded chains that any client
 * can write.
 *
 * The input is up to four lines: an X-Forwarded-For value, a Forwarded
 * value, a trusted range and the peer's address ("-" for an absent
 * header).  Every parser gets every line; an address that parses must
 * print and parse back to itself, a range must contain its own base, and
 * the verdict must keep peer.h's promises: without a header or from an
 * untrusted peer the client is the peer; a local verdict names a loopback
 * client; the same input judges the same way twice.  Any break aborts.
 *
 * Run: fuzz_peer tests/fuzz/corpus/peer */
#include "net/peer.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CHECK(c)                                                                                   \
  do {                                                                                             \
    if (!(c)) {                                                                                    \
      fprintf(stderr, "fuzz_peer: check failed: %s (line %d)\n", #c, __LINE__);                    \
      abort();                                                                                     \
    }                                                                                              \
  } while (0)

#define MAX_LINE 4096

/* Parse s both ways; an address that parses prints and parses back to
 * itself. */
static void check_addr(const char *s, size_t n) {
  souk__addr_t a, b;
  if (souk__addr_parse(s, n, &a) != 0) return;
  char text[SOUK_ADDR_STRLEN];
  souk__addr_str(&a, text);
  CHECK(souk__addr_parse(text, strlen(text), &b) == 0);
  CHECK(memcmp(a.b, b.b, 16) == 0);
  souk__addr_t k1, k2;
  souk__addr_key(&a, &k1);
  souk__addr_key(&k1, &k2);
  CHECK(memcmp(k1.b, k2.b, 16) == 0);
}

static void check_verdict(const souk__addr_t *peer, const char *xff, const char *fwd,
                          const souk__cidr_t *trusted, size_t ntrusted) {
  souk__peer_view_t v, w;
  souk__peer_judge(peer, xff, fwd, trusted, ntrusted, &v);
  souk__peer_judge(peer, xff, fwd, trusted, ntrusted, &w);
  CHECK(memcmp(&v, &w, sizeof v) == 0);
  CHECK(v.forwarded == (xff || fwd));
  if (v.local) CHECK(souk__addr_loopback(&v.client));
  bool peer_trusted = souk__cidr_match(trusted, ntrusted, peer);
  if (!v.forwarded) {
    CHECK(!v.via_proxy && memcmp(v.client.b, peer->b, 16) == 0);
    CHECK(v.local == souk__addr_loopback(peer));
  } else if (!peer_trusted) {
    CHECK(!v.via_proxy && !v.local && memcmp(v.client.b, peer->b, 16) == 0);
  } else {
    CHECK(v.via_proxy);
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char lines[4][MAX_LINE];
  size_t lens[4] = {0};
  size_t line = 0;
  for (size_t i = 0; i < size && line < 4; i++) {
    if (data[i] == '\n') {
      line++;
      continue;
    }
    /* NUL would end the C string early; it is just another byte here. */
    if (lens[line] + 1 < MAX_LINE) lines[line][lens[line]++] = data[i] ? (char)data[i] : '?';
  }
  for (size_t i = 0; i < 4; i++)
    lines[i][lens[i]] = 0;

  for (size_t i = 0; i < 4; i++)
    check_addr(lines[i], lens[i]);

  souk__cidr_t trusted[2];
  size_t ntrusted = 0;
  if (souk__cidr_parse(lines[2], &trusted[0]) == 0) {
    CHECK(trusted[0].bits <= 128);
    CHECK(souk__cidr_match(&trusted[0], 1, &trusted[0].a));
    ntrusted = 1;
  }
  /* Loopback trusted too, as most set-ups have it. */
  CHECK(souk__cidr_parse("127.0.0.0/8", &trusted[ntrusted++]) == 0);

  souk__addr_t peer;
  if (souk__addr_parse(lines[3], lens[3], &peer) != 0)
    CHECK(souk__addr_parse("127.0.0.1", 9, &peer) == 0);
  const char *xff = strcmp(lines[0], "-") ? lines[0] : NULL;
  const char *fwd = strcmp(lines[1], "-") ? lines[1] : NULL;
  check_verdict(&peer, xff, fwd, trusted, ntrusted);
  check_verdict(&peer, xff, NULL, trusted, ntrusted);
  check_verdict(&peer, NULL, fwd, trusted, ntrusted);
  check_verdict(&peer, xff, fwd, trusted + 1, ntrusted - 1);
  check_verdict(&peer, xff, fwd, NULL, 0);
  return 0;
}
