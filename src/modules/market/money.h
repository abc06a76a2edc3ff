/* The Market Sim's money arithmetic: pure functions, no I/O.
 *
 * Money is int64 cents and prices are int64 micro-dollars (1 cent = 10,000
 * micro), never floats (DESIGN.md, Money).  Every product goes through
 * __int128 and every result is range-checked: a function that would
 * overflow returns SOUK_ERANGE and leaves its output untouched, so no input
 * can wrap around.  Rounding is always in the house's favour: a buy's cost
 * rounds up to the cent, a sale's proceeds and a holding's value round
 * down, so no sequence of trades mints money.
 *
 * Commission (whole cents per trade) is part of a buy's cost (and of the
 * cost basis it adds) and comes off a sale's proceeds.
 *
 * Cost basis is kept as (total cost in cents, shares).  A partial sale
 * removes floor(total_cost * sold / held) cents of cost; selling every
 * share removes exactly the total, so the basis can never drift below
 * zero or leave a remainder on an empty holding.  The average cost is only
 * computed for display (market_avg_cost_micro). */
#ifndef MARKET_MONEY_H
#define MARKET_MONEY_H

#include <stddef.h>
#include <stdint.h>

/** Micro-dollars in one cent. */
#define MARKET_MICRO_PER_CENT INT64_C(10000)
/** Micro-dollars in one dollar. */
#define MARKET_MICRO_PER_DOLLAR INT64_C(1000000)
/** A buffer this large holds any formatted amount, price or percentage. */
#define MARKET_FMT_MAX 40

/** Gross value of shares at price_micro, rounded UP to the cent (what a buy
 * costs before commission).  price_micro > 0 and shares >= 0, else
 * SOUK_EINVAL; SOUK_ERANGE on overflow. */
int market_gross_up(int64_t price_micro, int64_t shares, int64_t *cents);
/** Gross value of shares at price_micro, rounded DOWN to the cent (a sale's
 * proceeds before commission, and a holding's value).  Errors as
 * market_gross_up. */
int market_gross_down(int64_t price_micro, int64_t shares, int64_t *cents);

/** Total cash a buy takes: ceil(price * shares / 10,000) + commission.
 * commission_cents >= 0.  0, SOUK_EINVAL or SOUK_ERANGE. */
int market_buy_cost(int64_t price_micro, int64_t shares, int64_t commission_cents,
                    int64_t *cost_cents);
/** Net cash a sale gives: floor(price * shares / 10,000) - commission.  The
 * result may be negative when the commission exceeds the gross value (the
 * ledger refuses such a sale).  0, SOUK_EINVAL or SOUK_ERANGE. */
int market_sell_proceeds(int64_t price_micro, int64_t shares, int64_t commission_cents,
                         int64_t *proceeds_cents);

/** The most whole shares amount_cents buys at price_micro with the rounded-
 * up cost AND the commission included, so market_buy_cost() of the result
 * never exceeds amount_cents: floor((amount - commission) * 10,000 / price),
 * 0 when the amount does not cover the commission.  SOUK_ERANGE when the
 * share count would not fit in int64 (a sub-micro price times a fortune). */
int market_shares_for_amount(int64_t price_micro, int64_t amount_cents, int64_t commission_cents,
                             int64_t *shares);
/** The whole shares whose exact value is at most amount_cents:
 * floor(amount * 10,000 / price).  Used to sell "$X worth". */
int market_shares_worth(int64_t price_micro, int64_t amount_cents, int64_t *shares);

/** Cost basis removed when selling sold of held shares whose total cost is
 * total_cost_cents: floor(total * sold / held), and exactly total when
 * sold == held.  Requires 0 < sold <= held and total >= 0 (SOUK_EINVAL). */
int market_cost_removed(int64_t total_cost_cents, int64_t held, int64_t sold,
                        int64_t *removed_cents);
/** Average cost per share in micro-dollars, floor(cost * 10,000 / shares),
 * for display only; 0 when shares is 0. */
int64_t market_avg_cost_micro(int64_t cost_cents, int64_t shares);

/** *out = a + b, or SOUK_ERANGE. */
int market_add(int64_t a, int64_t b, int64_t *out);
/** *out = a - b, or SOUK_ERANGE. */
int market_sub(int64_t a, int64_t b, int64_t *out);

/** Return on investment (or any change from initial to value) in basis
 * points, (value - initial) * 10,000 / initial rounded half away from zero
 * (8.597% is 860 bp, -0.005% is -1 bp), the figure every percentage shown
 * is made of.  initial must be > 0 (SOUK_EINVAL); SOUK_ERANGE if the ratio
 * does not fit. */
int market_roi_bp(int64_t value_cents, int64_t initial_cents, int64_t *bp);

/** Format cents as "$1,234,567.89" or "-$1,234.50" into buf (n bytes,
 * MARKET_FMT_MAX is always enough).  Returns buf; truncated if n is small. */
char *market_fmt_cents(int64_t cents, char *buf, size_t n);
/** Format a micro-dollar price by the one rule every list and summary
 * uses: from $1 up, to the cent rounded half away from zero ("$244.94" for
 * $244.938, "$1,234.50"); below $1, up to six decimals with trailing zeros
 * trimmed to two ("$0.50", "$0.000123"). */
char *market_fmt_price(int64_t micro, char *buf, size_t n);
/** Format a micro-dollar price exactly, for the detail views (/quote, a
 * trade's receipt, the dashboard's hover text): every decimal that is not a
 * trailing zero, at least two ("$244.938", "$549.905555", "$123.40"). */
char *market_fmt_price_exact(int64_t micro, char *buf, size_t n);
/** Format basis points as a signed percentage: "+12.34%", "-0.50%", and
 * "0.00%" (no sign) for zero. */
char *market_fmt_bp(int64_t bp, char *buf, size_t n);

/** Parse a dollar amount a user typed: optional '$', digits with optional
 * thousands commas (in groups of three), optional '.' and up to two
 * decimals ("1,000", "$12.5", "0.99").  No sign, no spaces inside.  0 and
 * *cents, SOUK_EPARSE for anything else, SOUK_ERANGE when too large. */
int market_parse_cents(const char *s, int64_t *cents);

#endif
