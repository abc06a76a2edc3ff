/* KuCoin Futures contracts list, outcomes and the public pool (kucoin.h). */
#include "kucoin.h"

#include "souk/alloc.h"
#include "souk/err.h"
#include "souk/json.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define OK_CODE   "200000"
#define RATE_CODE "429000"

const char *scanner_outcome_name(scanner_outcome_t o) {
  switch (o) {
  case SCANNER_OK:
    return "ok";
  case SCANNER_RATE_LIMITED:
    return "rate limited";
  case SCANNER_CODE_ERROR:
    return "error code";
  case SCANNER_HTTP_ERROR:
    return "HTTP error";
  case SCANNER_MALFORMED:
    return "malformed";
  }
  return "?";
}

/* A number token (or a numeric string: KuCoin sends openInterest as one)
 * as fixed point with scale fraction digits, read from its text. */
static int fixed(const souk_json_t *j, int obj, const char *key, unsigned scale, int64_t *out) {
  int t = souk_json_get(j, obj, key);
  souk_json_type_t ty = souk_json_type(j, t);
  if (ty != SOUK_JSON_NUMBER && ty != SOUK_JSON_STRING) return SOUK_EINVAL;
  return souk_json_fixed(j, t, scale, out);
}

static void text(const souk_json_t *j, int obj, const char *key, char *out, size_t cap) {
  out[0] = '\0';
  int t = souk_json_get(j, obj, key);
  if (souk_json_type(j, t) != SOUK_JSON_STRING || souk_json_str(j, t, out, cap) < 0) out[0] = '\0';
}

/* Symbols go into replies and custom ids: keep them to what KuCoin uses. */
static bool symbol_ok(const char *s) {
  if (!s[0]) return false;
  for (; *s; s++)
    if (!((*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') || *s == '-' || *s == '_'))
      return false;
  return true;
}

static bool read_contract(const souk_json_t *j, int o, const scanner_filter_t *f,
                          scanner_contract_t *c) {
  memset(c, 0, sizeof *c);
  int st = souk_json_get(j, o, "status");
  if (souk_json_type(j, st) == SOUK_JSON_STRING && !souk_json_streq(j, st, "Open")) return false;
  text(j, o, "symbol", c->symbol, sizeof c->symbol);
  if (!symbol_ok(c->symbol)) return false;
  text(j, o, "baseCurrency", c->base, sizeof c->base);
  text(j, o, "quoteCurrency", c->quote, sizeof c->quote);
  if (f && f->quote && f->quote[0] && strcmp(c->quote, f->quote) != 0) return false;
  int lt = souk_json_get(j, o, "lastTradePrice");
  if (fixed(j, o, "lastTradePrice", 6, &c->last_micro) || c->last_micro <= 0) return false;
  size_t ln = 0;
  const char *raw = souk_json_raw(j, lt, &ln);
  bool plain = raw && ln < sizeof c->last_text;
  for (size_t i = 0; plain && i < ln; i++)
    plain = (raw[i] >= '0' && raw[i] <= '9') || raw[i] == '.';
  if (plain) {
    memcpy(c->last_text, raw, ln);
    c->last_text[ln] = '\0';
  }
  if (fixed(j, o, "markPrice", 6, &c->mark_micro) || c->mark_micro <= 0)
    c->mark_micro = c->last_micro;
  /* The figures below are optional for ranking: a missing one counts as 0
   * rather than dropping the contract. */
  if (fixed(j, o, "priceChgPct", 6, &c->change_ppm)) c->change_ppm = 0;
  if (fixed(j, o, "fundingFeeRate", 8, &c->funding_e8)) c->funding_e8 = 0;
  if (fixed(j, o, "turnoverOf24h", 0, &c->turnover) || c->turnover < 0) c->turnover = 0;
  if (fixed(j, o, "volumeOf24h", 3, &c->volume_milli) || c->volume_milli < 0) c->volume_milli = 0;
  if (fixed(j, o, "openInterest", 0, &c->open_interest) || c->open_interest < 0)
    c->open_interest = 0;
  if (fixed(j, o, "multiplier", 9, &c->multiplier_e9)) c->multiplier_e9 = 0;
  if (fixed(j, o, "nextFundingRateTime", 0, &c->funding_in_ms) || c->funding_in_ms < 0)
    c->funding_in_ms = -1;
  double mult = 0, mark = 0;
  if (souk_json_double(j, souk_json_get(j, o, "multiplier"), &mult) ||
      souk_json_double(j, souk_json_get(j, o, "markPrice"), &mark))
    mark = (double)c->mark_micro / 1e6;
  c->oi_value = (double)c->open_interest * mult * mark;
  if (!(c->oi_value > 0)) c->oi_value = 0;
  return true;
}

static void set_reason(scanner_parsed_t *out, scanner_outcome_t o, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void set_reason(scanner_parsed_t *out, scanner_outcome_t o, const char *fmt, ...) {
  out->outcome = o;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(out->reason, sizeof out->reason, fmt, ap);
  va_end(ap);
}

/* The envelope's code and msg, when the body is one. */
static bool envelope(const souk_json_t *j, char *code, size_t ccap, char *msg, size_t mcap) {
  code[0] = msg[0] = '\0';
  if (souk_json_type(j, 0) != SOUK_JSON_OBJECT) return false;
  int c = souk_json_get(j, 0, "code");
  if (souk_json_type(j, c) == SOUK_JSON_STRING) {
    if (souk_json_str(j, c, code, ccap) < 0) code[0] = '\0';
  } else if (souk_json_type(j, c) == SOUK_JSON_NUMBER) {
    int64_t v;
    if (souk_json_i64(j, c, &v) == 0) snprintf(code, ccap, "%" PRId64, v);
  }
  int m = souk_json_get(j, 0, "msg");
  if (souk_json_type(j, m) == SOUK_JSON_STRING && souk_json_str(j, m, msg, mcap) < 0) {
    /* A truncated message is still worth showing. */
  }
  return code[0] != '\0';
}

void scanner_parse_contracts(int status, const char *body, size_t len, const scanner_filter_t *f,
                             scanner_parsed_t *out) {
  memset(out, 0, sizeof *out);
  souk_json_t j = {0};
  bool parsed = body && len && souk_json_parse(&j, body, len) == 0;
  char msg[96] = "";
  bool env = parsed && envelope(&j, out->code, sizeof out->code, msg, sizeof msg);
  if (status == 429 || (env && strcmp(out->code, RATE_CODE) == 0)) {
    set_reason(out, SCANNER_RATE_LIMITED, "rate limited (HTTP %d%s%s)", status,
               env ? ", code " : "", env ? out->code : "");
    goto done;
  }
  if (env && strcmp(out->code, OK_CODE) != 0) {
    set_reason(out, SCANNER_CODE_ERROR, "code %s%s%s (HTTP %d)", out->code, msg[0] ? ": " : "", msg,
               status);
    goto done;
  }
  if (status != 200) {
    set_reason(out, SCANNER_HTTP_ERROR, "HTTP %d", status);
    goto done;
  }
  if (!parsed) {
    set_reason(out, SCANNER_MALFORMED, "malformed JSON (at byte %u)", (unsigned)j.err_pos);
    goto done;
  }
  if (!env) {
    set_reason(out, SCANNER_MALFORMED, "no code in the answer");
    goto done;
  }
  int data = souk_json_get(&j, 0, "data");
  if (souk_json_type(&j, data) != SOUK_JSON_ARRAY) {
    set_reason(out, SCANNER_MALFORMED, "data is not a list");
    goto done;
  }
  size_t max = f && f->max ? f->max : 1000;
  size_t total = souk_json_count(&j, data);
  out->contracts = souk_calloc(total ? (total < max ? total : max) : 1, sizeof *out->contracts);
  uint32_t end = j.toks[data].next; /* the first token after the list */
  for (int t = souk_json_first(&j, data); t >= 0 && (uint32_t)t < end; t = souk_json_skip(&j, t)) {
    if (out->n < max && souk_json_type(&j, t) == SOUK_JSON_OBJECT &&
        read_contract(&j, t, f, &out->contracts[out->n]))
      out->n++;
    else
      out->skipped++;
  }
  out->outcome = SCANNER_OK;
  snprintf(out->reason, sizeof out->reason, "%zu contracts (%zu skipped)", out->n, out->skipped);
done:
  souk_json_free(&j);
}

void scanner_parsed_free(scanner_parsed_t *p) {
  souk_free(p->contracts);
  p->contracts = NULL;
  p->n = 0;
}

/* ---- the public pool ---------------------------------------------------- */

static bool header_int(const char *s, int64_t *out) {
  if (!s || !*s) return false;
  char *end = NULL;
  long long v = strtoll(s, &end, 10);
  if (end == s || *end != '\0' || v < 0) return false;
  *out = (int64_t)v;
  return true;
}

bool scanner_pool_update(scanner_pool_t *p, const char *limit, const char *remaining,
                         const char *reset_ms, uint64_t now_ms) {
  int64_t l, r, z;
  bool hl = header_int(limit, &l), hr = header_int(remaining, &r), hz = header_int(reset_ms, &z);
  if (hl) p->limit = l;
  if (hr) p->remaining = r;
  if (hz) p->reset_at_ms = now_ms + (uint64_t)z;
  if (hr && hz) p->known = true;
  return hl && hr && hz;
}

uint64_t scanner_pool_wait(const scanner_pool_t *p, int64_t weight, uint64_t now_ms) {
  if (!p->known || p->remaining >= weight || now_ms >= p->reset_at_ms) return 0;
  return p->reset_at_ms - now_ms;
}

void scanner_pool_spend(scanner_pool_t *p, int64_t weight, uint64_t now_ms) {
  if (!p->known) return;
  if (now_ms >= p->reset_at_ms) {
    /* A new window: its size is the limit, as far as we know. */
    p->remaining = p->limit;
    p->known = p->limit > 0;
    return;
  }
  p->remaining = p->remaining > weight ? p->remaining - weight : 0;
}

/* ---- formatting --------------------------------------------------------- */

void scanner_fmt_price(const scanner_contract_t *c, char *out, size_t cap) {
  if (c->last_text[0]) {
    snprintf(out, cap, "%s", c->last_text);
    return;
  }
  int64_t m = c->last_micro;
  int64_t whole = m / 1000000, frac = m % 1000000;
  char f[8];
  snprintf(f, sizeof f, "%06" PRId64, frac);
  int keep = 6;
  while (keep > 2 && f[keep - 1] == '0')
    keep--;
  f[keep] = '\0';
  snprintf(out, cap, "%" PRId64 ".%s", whole, f);
}

void scanner_fmt_amount(double v, char *out, size_t cap) {
  double a = v < 0 ? -v : v;
  if (a >= 1e9)
    snprintf(out, cap, "%.2fB", v / 1e9);
  else if (a >= 1e6)
    snprintf(out, cap, "%.1fM", v / 1e6);
  else if (a >= 1e3)
    snprintf(out, cap, "%.1fK", v / 1e3);
  else
    snprintf(out, cap, "%.0f", v);
}
