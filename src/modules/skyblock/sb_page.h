/* One page of the Hypixel SkyBlock auction API, parsed.
 *
 * A page is parsed as it arrives, alone: no sweep of 66 pages (~150 MB of
 * JSON) is ever held in memory.  The parse keeps the body and its tokens
 * so that item_bytes can be decoded later, only for the auctions that are
 * new (sb_listing_t.item_tok), without copying or re-parsing.
 *
 * Two shapes (the API's own field names):
 *   GET /v2/skyblock/auctions?page=N  {success, page, totalPages,
 *       totalAuctions, lastUpdated, auctions: [{uuid, auctioneer, start,
 *       end, starting_bid, highest_bid_amount, bin, item_bytes, ...}]}
 *   GET /v2/skyblock/auctions_ended   {success, lastUpdated, auctions:
 *       [{auction_id, seller, buyer, timestamp, price, bin, item_bytes}]}
 * An auction with a missing or malformed field, or a figure outside
 * SB_PRICE_MAX / SB_TIME_MAX, is skipped and counted (bad); the rest of
 * the page is used.  A page whose header is malformed,
 * or {success: false}, is an error as a whole.
 *
 * Threads: pure functions over the page's own memory, for the thread pool.
 * Ownership: an sb_page_t owns its body, tokens and records; free it with
 * sb_page_free(). */
#ifndef SKYBLOCK_SB_PAGE_H
#define SKYBLOCK_SB_PAGE_H

#include "souk/json.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/** Bounds every figure read from a page must meet, or the record is bad:
 * prices are whole coins up to ten trillion (far above any purse), times
 * UTC milliseconds up to the year 33,000.  Within them no sum or product
 * the store and the value compute can overflow. */
#define SB_PRICE_MAX 10000000000000LL
#define SB_TIME_MAX  1000000000000000LL

/** A Hypixel uuid (auction, player, profile): 32 hex digits as 16 bytes. */
typedef struct sb_uuid {
  uint8_t b[16];
} sb_uuid_t;

/** Parse 32 hex digits (dashes allowed, either case) into *out.  0 or
 * SOUK_EPARSE. */
int sb_uuid_parse(const char *s, size_t n, sb_uuid_t *out);
/** Write the 32 lower-case hex digits and a NUL into out (33 bytes). */
void sb_uuid_hex(const sb_uuid_t *u, char out[33]);
/** A 64-bit hash of all 16 bytes of a uuid, for sets and account ids
 * (two accounts colliding is a 2^-64 chance). */
static inline uint64_t sb_uuid_h64(const sb_uuid_t *u) {
  uint64_t a = 0, b = 0;
  for (int i = 0; i < 8; i++) {
    a = a << 8 | u->b[i];
    b = b << 8 | u->b[8 + i];
  }
  uint64_t h = a ^ (b * 0x9e3779b97f4a7c15ULL);
  h ^= h >> 31;
  h *= 0xbf58476d1ce4e5b9ULL;
  return h ^ (h >> 29);
}
/** True when a and b are the same uuid. */
bool sb_uuid_eq(const sb_uuid_t *a, const sb_uuid_t *b);

/** One active auction of a page. */
typedef struct sb_listing {
  sb_uuid_t uuid;
  sb_uuid_t seller; /* auctioneer */
  int64_t price;    /* BIN: starting_bid; else max(starting_bid, highest_bid_amount) */
  int64_t start_ms; /* when it was listed (UTC ms) */
  int64_t end_ms;   /* when it ends */
  int item_tok;     /* token of item_bytes in the page's tokens */
  bool bin;
} sb_listing_t;

/** One sale of auctions_ended. */
typedef struct sb_ended {
  sb_uuid_t auction;
  sb_uuid_t seller, buyer;
  int64_t ts_ms;
  int64_t price; /* the whole stack's price */
  int item_tok;
  bool bin;
} sb_ended_t;

/** Which endpoint a body came from. */
typedef enum sb_page_kind { SB_PAGE_AUCTIONS, SB_PAGE_ENDED } sb_page_kind_t;

/** A parsed page. */
typedef struct sb_page {
  sb_page_kind_t kind;
  char *body; /* owned; NUL-terminated */
  size_t len;
  souk_json_t j;
  /* Header. */
  int page, total_pages;
  int64_t total_auctions, last_updated;
  /* Records. */
  sb_listing_t *l; /* SB_PAGE_AUCTIONS */
  sb_ended_t *e;   /* SB_PAGE_ENDED */
  size_t n, cap;
  size_t bad; /* auctions skipped as malformed */
} sb_page_t;

/** Take ownership of body (allocated with souk_malloc, len bytes plus a
 * NUL) into a zeroed page of kind. */
void sb_page_init(sb_page_t *p, sb_page_kind_t kind, char *body, size_t len);
/** Parse p->body.  0, SOUK_EPARSE (not JSON or a malformed header) or
 * SOUK_EPROTO ({"success": false}). */
int sb_page_parse(sb_page_t *p);
/** Free everything p owns and zero it. */
void sb_page_free(sb_page_t *p);

#endif
