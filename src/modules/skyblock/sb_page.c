/* Parsing one auction page; see sb_page.h. */
#include "sb_page.h"

#include "souk/alloc.h"
#include "souk/err.h"

#include <string.h>

static inline int hexval(unsigned char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

int sb_uuid_parse(const char *s, size_t n, sb_uuid_t *out) {
  size_t k = 0;
  int hi = -1;
  for (size_t i = 0; i < n; i++) {
    if (s[i] == '-') continue;
    int v = hexval((unsigned char)s[i]);
    if (v < 0 || k == 16) return SOUK_EPARSE;
    if (hi < 0) {
      hi = v;
    } else {
      out->b[k++] = (uint8_t)(hi << 4 | v);
      hi = -1;
    }
  }
  return k == 16 && hi < 0 ? 0 : SOUK_EPARSE;
}

void sb_uuid_hex(const sb_uuid_t *u, char out[33]) {
  static const char d[] = "0123456789abcdef";
  for (int i = 0; i < 16; i++) {
    out[2 * i] = d[u->b[i] >> 4];
    out[2 * i + 1] = d[u->b[i] & 15];
  }
  out[32] = '\0';
}

bool sb_uuid_eq(const sb_uuid_t *a, const sb_uuid_t *b) { return memcmp(a->b, b->b, 16) == 0; }

void sb_page_init(sb_page_t *p, sb_page_kind_t kind, char *body, size_t len) {
  memset(p, 0, sizeof *p);
  p->kind = kind;
  p->body = body;
  p->len = len;
}

void sb_page_free(sb_page_t *p) {
  souk_json_free(&p->j);
  souk_free(p->body);
  souk_free(p->l);
  souk_free(p->e);
  memset(p, 0, sizeof *p);
}

/* A whole number, also from a decimal or exponent form ("1.5E7") that
 * some encoders write for large prices; fractions are rounded once. */
static int num_i64(const souk_json_t *j, int t, int64_t *out) {
  if (souk_json_type(j, t) != SOUK_JSON_NUMBER) return SOUK_EINVAL;
  if (souk_json_i64(j, t, out) == 0) return 0;
  if (souk_json_fixed(j, t, 0, out) == 0) return 0;
  double d;
  if (souk_json_double(j, t, &d) || !(d >= 0 && d < 9.2e18)) return SOUK_ERANGE;
  *out = (int64_t)(d + 0.5);
  return 0;
}

static bool price_ok(int64_t v) { return v > 0 && v <= SB_PRICE_MAX; }
static bool time_ok(int64_t v) { return v >= 0 && v <= SB_TIME_MAX; }

static int str_uuid(const souk_json_t *j, int t, sb_uuid_t *out) {
  if (souk_json_type(j, t) != SOUK_JSON_STRING) return SOUK_EINVAL;
  size_t n;
  const char *s = souk_json_raw(j, t, &n);
  return sb_uuid_parse(s, n, out);
}

/* Compare object key token k with a literal, without escapes (the API's
 * keys have none; an escaped key simply matches nothing). */
#define KEY_IS(j, k, lit)                                                                          \
  ((j)->toks[k].len == sizeof(lit) - 1 && !(j)->toks[k].escaped &&                                 \
   memcmp((j)->src + (j)->toks[k].start, lit, sizeof(lit) - 1) == 0)

static bool item_ok(const souk_json_t *j, int t) {
  souk_json_type_t ty = souk_json_type(j, t);
  return ty == SOUK_JSON_STRING || ty == SOUK_JSON_OBJECT;
}

/* One auction object: a single pass over its keys. */
static bool parse_listing(const souk_json_t *j, int obj, sb_listing_t *l) {
  memset(l, 0, sizeof *l);
  l->item_tok = -1;
  unsigned have = 0;
  int64_t start_bid = -1, high = 0;
  size_t n = souk_json_count(j, obj);
  int k = obj + 1;
  for (size_t i = 0; i < n; i++) {
    int v = k + 1;
    if (KEY_IS(j, k, "uuid")) {
      if (str_uuid(j, v, &l->uuid) == 0) have |= 1;
    } else if (KEY_IS(j, k, "auctioneer")) {
      if (str_uuid(j, v, &l->seller) == 0) have |= 2;
    } else if (KEY_IS(j, k, "start")) {
      if (num_i64(j, v, &l->start_ms) == 0 && time_ok(l->start_ms)) have |= 4;
    } else if (KEY_IS(j, k, "end")) {
      if (num_i64(j, v, &l->end_ms) == 0 && time_ok(l->end_ms)) have |= 8;
    } else if (KEY_IS(j, k, "starting_bid")) {
      if (num_i64(j, v, &start_bid) == 0 && price_ok(start_bid)) have |= 16;
    } else if (KEY_IS(j, k, "highest_bid_amount")) {
      if (num_i64(j, v, &high) != 0 || !price_ok(high)) high = 0;
    } else if (KEY_IS(j, k, "bin")) {
      bool b;
      if (souk_json_bool(j, v, &b) == 0) l->bin = b;
    } else if (KEY_IS(j, k, "item_bytes")) {
      if (item_ok(j, v)) {
        l->item_tok = v;
        have |= 32;
      }
    }
    k = souk_json_skip(j, v);
  }
  if (have != 63) return false;
  l->price = l->bin || high < start_bid ? start_bid : high;
  return true;
}

static bool parse_ended(const souk_json_t *j, int obj, sb_ended_t *e) {
  memset(e, 0, sizeof *e);
  e->item_tok = -1;
  unsigned have = 0;
  size_t n = souk_json_count(j, obj);
  int k = obj + 1;
  for (size_t i = 0; i < n; i++) {
    int v = k + 1;
    if (KEY_IS(j, k, "auction_id")) {
      if (str_uuid(j, v, &e->auction) == 0) have |= 1;
    } else if (KEY_IS(j, k, "seller")) {
      if (str_uuid(j, v, &e->seller) == 0) have |= 2;
    } else if (KEY_IS(j, k, "buyer")) {
      if (str_uuid(j, v, &e->buyer) == 0) have |= 4;
    } else if (KEY_IS(j, k, "timestamp")) {
      if (num_i64(j, v, &e->ts_ms) == 0 && time_ok(e->ts_ms)) have |= 8;
    } else if (KEY_IS(j, k, "price")) {
      if (num_i64(j, v, &e->price) == 0 && price_ok(e->price)) have |= 16;
    } else if (KEY_IS(j, k, "bin")) {
      bool b;
      if (souk_json_bool(j, v, &b) == 0) e->bin = b;
    } else if (KEY_IS(j, k, "item_bytes")) {
      if (item_ok(j, v)) {
        e->item_tok = v;
        have |= 32;
      }
    }
    k = souk_json_skip(j, v);
  }
  return have == 63;
}

int sb_page_parse(sb_page_t *p) {
  int rc = souk_json_parse(&p->j, p->body, p->len);
  if (rc) return SOUK_EPARSE;
  const souk_json_t *j = &p->j;
  if (souk_json_type(j, 0) != SOUK_JSON_OBJECT) return SOUK_EPARSE;
  bool ok = false;
  if (souk_json_bool(j, souk_json_get(j, 0, "success"), &ok) != 0) return SOUK_EPARSE;
  if (!ok) return SOUK_EPROTO;
  if (num_i64(j, souk_json_get(j, 0, "lastUpdated"), &p->last_updated) != 0 ||
      !time_ok(p->last_updated))
    return SOUK_EPARSE;
  if (p->kind == SB_PAGE_AUCTIONS) {
    int64_t page, pages;
    if (num_i64(j, souk_json_get(j, 0, "page"), &page) != 0 ||
        num_i64(j, souk_json_get(j, 0, "totalPages"), &pages) != 0 ||
        num_i64(j, souk_json_get(j, 0, "totalAuctions"), &p->total_auctions) != 0 || page < 0 ||
        pages < 0 || page > 100000 || pages > 100000)
      return SOUK_EPARSE;
    p->page = (int)page;
    p->total_pages = (int)pages;
  }
  int arr = souk_json_get(j, 0, "auctions");
  if (souk_json_type(j, arr) != SOUK_JSON_ARRAY) return SOUK_EPARSE;
  size_t n = souk_json_count(j, arr);
  p->cap = n;
  p->n = 0;
  if (p->kind == SB_PAGE_AUCTIONS)
    p->l = souk_reallocarray(p->l, n ? n : 1, sizeof *p->l);
  else
    p->e = souk_reallocarray(p->e, n ? n : 1, sizeof *p->e);
  int t = arr + 1;
  for (size_t i = 0; i < n; i++, t = souk_json_skip(j, t)) {
    bool good = souk_json_type(j, t) == SOUK_JSON_OBJECT &&
                (p->kind == SB_PAGE_AUCTIONS ? parse_listing(j, t, &p->l[p->n])
                                             : parse_ended(j, t, &p->e[p->n]));
    if (good)
      p->n++;
    else
      p->bad++;
  }
  return 0;
}
