/* Peer addresses, ranges, proxies and per-address counts: see peer.h. */
#include "peer.h"

#include "souk/alloc.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

/* Longest address text accepted inside a header: a bracketed IPv6 address
 * with a port is at most 47 characters; more is not an address. */
#define ADDR_TEXT_MAX 64
/* Hops read from one header.  A longer chain is refused as unreadable
 * rather than cut short, which could skip the hop that matters. */
#define CHAIN_MAX 32

static const uint8_t v4_prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

static void map_v4(const void *in4, souk__addr_t *out) {
  memcpy(out->b, v4_prefix, 12);
  memcpy(out->b + 12, in4, 4);
}

static bool is_mapped(const souk__addr_t *a) { return memcmp(a->b, v4_prefix, 12) == 0; }

int souk__addr_from_sockaddr(const struct sockaddr *sa, souk__addr_t *out) {
  if (!sa) return -1;
  if (sa->sa_family == AF_INET) {
    map_v4(&((const struct sockaddr_in *)sa)->sin_addr, out);
    return 0;
  }
  if (sa->sa_family == AF_INET6) {
    memcpy(out->b, &((const struct sockaddr_in6 *)sa)->sin6_addr, 16);
    return 0;
  }
  return -1;
}

static bool all_digits(const char *s, size_t n) {
  if (n == 0 || n > 5) return false;
  for (size_t i = 0; i < n; i++)
    if (s[i] < '0' || s[i] > '9') return false;
  return true;
}

/* inet_pton on n bytes of text. */
static int pton(int af, const char *s, size_t n, void *dst) {
  char tmp[ADDR_TEXT_MAX];
  if (n == 0 || n >= sizeof tmp) return -1;
  memcpy(tmp, s, n);
  tmp[n] = 0;
  return inet_pton(af, tmp, dst) == 1 ? 0 : -1;
}

int souk__addr_parse(const char *s, size_t n, souk__addr_t *out) {
  while (n && (*s == ' ' || *s == '\t'))
    s++, n--;
  while (n && (s[n - 1] == ' ' || s[n - 1] == '\t'))
    n--;
  if (n == 0 || n >= ADDR_TEXT_MAX) return -1;
  if (s[0] == '[') {
    const char *close = memchr(s, ']', n);
    if (!close) return -1;
    size_t rest = n - (size_t)(close + 1 - s);
    if (rest && (close[1] != ':' || !all_digits(close + 2, rest - 1))) return -1;
    return pton(AF_INET6, s + 1, (size_t)(close - s - 1), out->b);
  }
  const char *colon = memchr(s, ':', n);
  if (colon && memchr(colon + 1, ':', n - (size_t)(colon + 1 - s))) {
    /* Two colons or more: a bare IPv6 address. */
    return pton(AF_INET6, s, n, out->b);
  }
  size_t alen = colon ? (size_t)(colon - s) : n;
  if (colon && !all_digits(colon + 1, n - alen - 1)) return -1;
  uint8_t v4[4];
  if (pton(AF_INET, s, alen, v4) != 0) return -1;
  map_v4(v4, out);
  return 0;
}

void souk__addr_str(const souk__addr_t *a, char *out) {
  if (is_mapped(a))
    inet_ntop(AF_INET, a->b + 12, out, SOUK_ADDR_STRLEN);
  else
    inet_ntop(AF_INET6, a->b, out, SOUK_ADDR_STRLEN);
}

bool souk__addr_loopback(const souk__addr_t *a) {
  if (is_mapped(a)) return a->b[12] == 127;
  static const uint8_t one[16] = {[15] = 1};
  return memcmp(a->b, one, 16) == 0;
}

int souk__cidr_parse(const char *s, souk__cidr_t *out) {
  if (!s) return -1;
  size_t n = strlen(s);
  const char *slash = memchr(s, '/', n);
  size_t alen = slash ? (size_t)(slash - s) : n;
  bool v6 = memchr(s, ':', alen) != NULL;
  if (v6) {
    if (pton(AF_INET6, s, alen, out->a.b) != 0) return -1;
  } else {
    uint8_t v4[4];
    if (pton(AF_INET, s, alen, v4) != 0) return -1;
    map_v4(v4, &out->a);
  }
  unsigned max = v6 ? 128 : 32, bits = max;
  if (slash) {
    const char *p = slash + 1;
    size_t plen = n - alen - 1;
    if (plen == 0 || plen > 3) return -1;
    bits = 0;
    for (size_t i = 0; i < plen; i++) {
      if (p[i] < '0' || p[i] > '9') return -1;
      bits = bits * 10 + (unsigned)(p[i] - '0');
    }
    if (bits > max) return -1;
  }
  out->bits = v6 ? bits : bits + 96;
  /* Host bits set below the prefix are a typo, not a range. */
  for (unsigned i = out->bits; i < 128; i++)
    if (out->a.b[i / 8] & (0x80u >> (i % 8))) return -1;
  return 0;
}

static bool cidr_has(const souk__cidr_t *c, const souk__addr_t *a) {
  unsigned full = c->bits / 8, rem = c->bits % 8;
  if (memcmp(c->a.b, a->b, full) != 0) return false;
  if (!rem) return true;
  uint8_t mask = (uint8_t)(0xffu << (8 - rem));
  return (c->a.b[full] & mask) == (a->b[full] & mask);
}

bool souk__cidr_match(const souk__cidr_t *set, size_t n, const souk__addr_t *a) {
  for (size_t i = 0; i < n; i++)
    if (cidr_has(&set[i], a)) return true;
  return false;
}

/* ---- proxy headers ----------------------------------------------------- */

/* One hop of a chain: its text, or bad when it could not be read. */
typedef struct hop {
  char text[ADDR_TEXT_MAX];
  bool bad;
} hop_t;

static void hop_set(hop_t *h, const char *s, size_t n) {
  if (n >= sizeof h->text) {
    h->bad = true;
    h->text[0] = 0;
    return;
  }
  memcpy(h->text, s, n);
  h->text[n] = 0;
  h->bad = false;
}

/* X-Forwarded-For: addresses separated by commas.  Returns the number of
 * hops, or -1 when there are more than CHAIN_MAX. */
static int xff_hops(const char *v, hop_t *hops) {
  int n = 0;
  for (const char *p = v;;) {
    const char *comma = strchr(p, ',');
    size_t len = comma ? (size_t)(comma - p) : strlen(p);
    if (n == CHAIN_MAX) return -1;
    hop_set(&hops[n++], p, len);
    if (!comma) break;
    p = comma + 1;
  }
  return n;
}

/* Forwarded (RFC 7239): elements separated by commas, each of
 * pairs separated by semicolons; the hop is the element's for= value, a
 * token or a quoted string.  An element without for= is a bad hop.
 * Returns the number of hops, or -1 when there are more than CHAIN_MAX. */
static int forwarded_hops(const char *v, hop_t *hops) {
  int n = 0;
  const char *p = v;
  for (;;) {
    if (n == CHAIN_MAX) return -1;
    hop_t *h = &hops[n++];
    h->bad = true;
    h->text[0] = 0;
    /* Pairs of this element. */
    for (;;) {
      while (*p == ' ' || *p == '\t' || *p == ';')
        p++;
      const char *name = p;
      while (*p && *p != '=' && *p != ';' && *p != ',')
        p++;
      size_t nlen = (size_t)(p - name);
      while (nlen && (name[nlen - 1] == ' ' || name[nlen - 1] == '\t'))
        nlen--;
      char val[ADDR_TEXT_MAX];
      size_t vlen = 0;
      bool overflow = false;
      if (*p == '=') {
        p++;
        while (*p == ' ' || *p == '\t')
          p++;
        if (*p == '"') {
          for (p++; *p && *p != '"'; p++) {
            if (*p == '\\' && p[1]) p++;
            if (vlen + 1 < sizeof val)
              val[vlen++] = *p;
            else
              overflow = true;
          }
          if (*p == '"') p++;
        }
        while (*p && *p != ';' && *p != ',') {
          if (vlen + 1 < sizeof val)
            val[vlen++] = *p;
          else
            overflow = true;
          p++;
        }
      }
      if (nlen == 3 && !strncasecmp(name, "for", 3) && h->text[0] == 0 && h->bad) {
        if (overflow)
          h->bad = true;
        else
          hop_set(h, val, vlen);
      }
      if (*p != ';') break;
    }
    if (*p != ',') break;
    p++;
  }
  return n;
}

/* Walk a chain from the right.  1: *client is the right-most untrusted
 * hop, or the left-most when all are trusted; 0: unreadable. */
static int chain_client(const hop_t *hops, int n, const souk__cidr_t *trusted, size_t ntrusted,
                        souk__addr_t *client) {
  if (n <= 0) return 0;
  for (int i = n - 1; i >= 0; i--) {
    souk__addr_t a;
    if (hops[i].bad || souk__addr_parse(hops[i].text, strlen(hops[i].text), &a) != 0) return 0;
    *client = a;
    if (!souk__cidr_match(trusted, ntrusted, &a)) return 1;
  }
  return 1;
}

void souk__peer_judge(const souk__addr_t *peer, const char *xff, const char *forwarded,
                      const souk__cidr_t *trusted, size_t ntrusted, souk__peer_view_t *out) {
  memset(out, 0, sizeof *out);
  out->client = *peer;
  out->forwarded = xff || forwarded;
  if (!out->forwarded) {
    out->local = souk__addr_loopback(peer);
    return;
  }
  if (!souk__cidr_match(trusted, ntrusted, peer)) return;
  /* The proxy vouches for the chain; from here on the client is counted
   * by the address it names (or under the proxy's own when it cannot be
   * read), never exempt as the proxy itself is. */
  out->via_proxy = true;
  hop_t hops[CHAIN_MAX];
  souk__addr_t a = {0}, b = {0};
  int ok_a = 1, ok_b = 1;
  if (xff) ok_a = chain_client(hops, xff_hops(xff, hops), trusted, ntrusted, &a);
  if (forwarded) ok_b = chain_client(hops, forwarded_hops(forwarded, hops), trusted, ntrusted, &b);
  if (!ok_a || !ok_b) return;
  /* A client may send the header its proxy does not manage, naming anyone:
   * when the two disagree, neither is believed. */
  if (xff && forwarded && memcmp(a.b, b.b, 16) != 0) return;
  out->client = xff ? a : b;
  out->local = souk__addr_loopback(&out->client);
}

/* ---- counts per address ------------------------------------------------ */

struct souk__addr_slot {
  souk__addr_t key;
  unsigned count; /* 0: free */
};

void souk__addr_key(const souk__addr_t *a, souk__addr_t *key) {
  *key = *a;
  if (!is_mapped(a)) memset(key->b + 8, 0, 8);
}

static size_t addr_hash(const souk__addr_t *a) {
  uint64_t h = UINT64_C(14695981039346656037);
  for (int i = 0; i < 16; i++) {
    h ^= a->b[i];
    h *= UINT64_C(1099511628211);
  }
  return (size_t)(h ^ (h >> 32));
}

static struct souk__addr_slot *slot_find(const souk__addr_counts_t *t, const souk__addr_t *key) {
  if (!t->cap) return NULL;
  for (size_t i = addr_hash(key) & (t->cap - 1);; i = (i + 1) & (t->cap - 1)) {
    struct souk__addr_slot *s = &t->slots[i];
    if (!s->count) return NULL;
    if (!memcmp(s->key.b, key->b, 16)) return s;
  }
}

unsigned souk__addr_count(const souk__addr_counts_t *t, const souk__addr_t *key) {
  const struct souk__addr_slot *s = slot_find(t, key);
  return s ? s->count : 0;
}

static void slot_put(souk__addr_counts_t *t, const souk__addr_t *key, unsigned count) {
  size_t i = addr_hash(key) & (t->cap - 1);
  while (t->slots[i].count)
    i = (i + 1) & (t->cap - 1);
  t->slots[i].key = *key;
  t->slots[i].count = count;
  t->n++;
}

/* Remove slot i and shift later members of its probe run back, so that
 * lookups never need tombstones. */
static void slot_remove(souk__addr_counts_t *t, size_t i) {
  size_t mask = t->cap - 1;
  t->slots[i].count = 0;
  t->n--;
  for (size_t j = (i + 1) & mask; t->slots[j].count; j = (j + 1) & mask) {
    size_t home = addr_hash(&t->slots[j].key) & mask;
    /* Slot j may move to the hole at i when its home is not in (i, j]. */
    bool stays = i <= j ? (home > i && home <= j) : (home > i || home <= j);
    if (stays) continue;
    t->slots[i] = t->slots[j];
    t->slots[j].count = 0;
    i = j;
  }
}

unsigned souk__addr_count_add(souk__addr_counts_t *t, const souk__addr_t *key, int delta) {
  struct souk__addr_slot *s = slot_find(t, key);
  if (delta < 0) {
    if (!s) return 0;
    if (s->count > 1) return --s->count;
    slot_remove(t, (size_t)(s - t->slots));
    return 0;
  }
  if (s) return s->count += (unsigned)delta;
  if ((t->n + 1) * 2 > t->cap) {
    /* Keep the table at most half full so probe runs stay short. */
    souk__addr_counts_t old = *t;
    t->cap = old.cap ? old.cap * 2 : 16;
    t->slots = souk_calloc(t->cap, sizeof *t->slots);
    t->n = 0;
    for (size_t i = 0; i < old.cap; i++)
      if (old.slots[i].count) slot_put(t, &old.slots[i].key, old.slots[i].count);
    souk_free(old.slots);
  }
  slot_put(t, key, (unsigned)delta);
  return (unsigned)delta;
}

void souk__addr_counts_free(souk__addr_counts_t *t) {
  souk_free(t->slots);
  memset(t, 0, sizeof *t);
}
