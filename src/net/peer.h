/* Who an HTTP request comes from: peer addresses, CIDR ranges, the client
 * a trusted reverse proxy names, and per-address connection counts.
 *
 * Behind a reverse proxy on the same host every peer is loopback, so the
 * socket's address alone would make every request "local".  A request that
 * carries Forwarded (RFC 7239) or X-Forwarded-For is therefore judged by
 * the client address a trusted proxy gives: the chain of addresses in the
 * header, followed by the peer itself, is read from the right, and the
 * first address that is not a trusted proxy is the client (what nginx's
 * realip module does with real_ip_recursive on).  Everything to the left
 * of it was written by the client and proves nothing.  A request carrying
 * those headers from a peer that is not a trusted proxy is never local:
 * only a proxy can make a forwarded request, and souk cannot tell what it
 * forwarded.
 *
 * Addresses are kept as 16 bytes, IPv4 as IPv4-mapped IPv6
 * (::ffff:a.b.c.d), so one comparison serves both families.  Pure
 * functions, no I/O; the count table is not thread-safe (the HTTP server
 * uses it on the loop thread). */
#ifndef SOUK_NET_PEER_H
#define SOUK_NET_PEER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct sockaddr;

/** An IPv6 address, or an IPv4 address mapped into IPv6. */
typedef struct souk__addr {
  uint8_t b[16];
} souk__addr_t;

/** An address range: the first bits bits of a (0..128; IPv4 ranges are
 * stored mapped, so 10.0.0.0/8 has bits 104). */
typedef struct souk__cidr {
  souk__addr_t a;
  unsigned bits;
} souk__cidr_t;

/** The longest text souk__addr_str() writes, with its NUL. */
#define SOUK_ADDR_STRLEN 46

/** The address of an AF_INET or AF_INET6 socket address.  0, or -1 for
 * NULL or another family. */
int souk__addr_from_sockaddr(const struct sockaddr *sa, souk__addr_t *out);

/** Parse one address as it appears in a header: "192.0.2.1",
 * "192.0.2.1:4711", "2001:db8::1", "[2001:db8::1]" or "[2001:db8::1]:4711",
 * with blanks around it; s is n bytes, not necessarily NUL-terminated.  0,
 * or -1 for anything else ("unknown", an obfuscated "_hidden", a zone id). */
int souk__addr_parse(const char *s, size_t n, souk__addr_t *out);

/** Write a as text: dotted IPv4 for a mapped address, else IPv6.  out must
 * hold SOUK_ADDR_STRLEN bytes. */
void souk__addr_str(const souk__addr_t *a, char *out);

/** True for 127.0.0.0/8 and ::1 (mapped or not). */
bool souk__addr_loopback(const souk__addr_t *a);

/** Parse a range as the configuration writes it: an address ("10.1.2.3",
 * "::1": that address alone) or an address and a prefix length
 * ("10.0.0.0/8", "fd00::/8").  Bits below the prefix must be zero, so a
 * typo such as "10.0.0.1/8" is refused rather than read as 10.0.0.0/8.  0
 * or -1. */
int souk__cidr_parse(const char *s, souk__cidr_t *out);

/** True when a lies in one of the n ranges of set. */
bool souk__cidr_match(const souk__cidr_t *set, size_t n, const souk__addr_t *a);

/** What souk__peer_judge() concludes about one request. */
typedef struct souk__peer_view {
  souk__addr_t client; /* the client: the peer, or the one a trusted proxy named */
  bool local;          /* the client is on loopback, and nothing makes that doubtful */
  bool forwarded;      /* the request carried Forwarded or X-Forwarded-For */
  bool via_proxy;      /* the peer is a trusted proxy and the headers were read: the
                          client is not the peer (count it per address by client) */
} souk__peer_view_t;

/** Judge a request from peer carrying the X-Forwarded-For value xff and the
 * Forwarded value forwarded (each NULL when absent; several header lines of
 * one name joined with ", "), given the trusted proxies.
 * - No such header: the client is the peer, local when it is loopback.
 * - A header, and the peer is not a trusted proxy: the client is the peer,
 *   and the request is not local.
 * - A header from a trusted proxy: the client is the right-most address of
 *   the chain that is not a trusted proxy (the left-most when all are);
 *   local when that is loopback.  When the chain cannot be read (an
 *   "unknown" or malformed hop before an untrusted address, a hop without
 *   for=, an empty header) or the two headers name different clients, the
 *   client is the peer and the request is not local. */
void souk__peer_judge(const souk__addr_t *peer, const char *xff, const char *forwarded,
                      const souk__cidr_t *trusted, size_t ntrusted, souk__peer_view_t *out);

/** The key an address is counted under: the address itself for IPv4, its
 * /64 for IPv6, since one IPv6 host usually holds a whole /64. */
void souk__addr_key(const souk__addr_t *a, souk__addr_t *key);

/** Counts per address (an open-addressing hash table); zero it to start. */
typedef struct souk__addr_counts {
  struct souk__addr_slot *slots;
  size_t cap, n;
} souk__addr_counts_t;

/** The count of key (0 when absent). */
unsigned souk__addr_count(const souk__addr_counts_t *t, const souk__addr_t *key);
/** Add delta (+1 or -1) to key's count and return the new count; an entry
 * that falls to 0 is removed.  The count never goes below 0. */
unsigned souk__addr_count_add(souk__addr_counts_t *t, const souk__addr_t *key, int delta);
/** Free the table; it is empty (and usable) afterwards. */
void souk__addr_counts_free(souk__addr_counts_t *t);

#endif
