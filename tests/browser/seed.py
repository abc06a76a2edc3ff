"""Seed a souk SQLite database (schema of store migration v2, already applied
by `souk db migrate`) with Market Sim data for the browser test, and print
what the pages must show as JSON on stdout.

    /usr/bin/python3 seed.py DATA_DIR/souk.db NOW_MS

Values follow the ledger's rules (src/modules/market/ledger.h): money in
cents, prices in micro-dollars, a holding is worth
floor(shares * price / 10,000) cents, ROI in basis points truncated toward
zero, rank by total value (ties by user id).  The public guild is on live
prices, so the pages value it with the market_last_price rows seeded here.
"""
import json
import sqlite3
import sys

PUBLIC = 700000000000000001
PRIVATE = 700000000000000002
SIM = 700000000000000003
START = 100_000_000  # $1,000,000.00
PLAYERS = 120
# The player the portfolio page shows, and a symbol full of markup: the
# pages must show it as text, never as HTML.
STAR = 900000000000000042
EVIL = "<i>X</i>"
PRICES = {  # symbol -> (price_micro, prev_close_micro)
    "AAPL": (189_950_000, 187_000_000),
    "MSFT": (412_345_600, 415_000_000),
    "NVDA": (875_120_000, 860_000_000),
    EVIL: (1_500_000, 0),
}


def value_of(cash, holdings):
    return cash + sum(shares * PRICES[sym][0] // 10_000 for sym, shares, _ in holdings)


def roi_bp(value, initial):
    """Basis points rounded half away from zero, as souk shows them."""
    d = (value - initial) * 10_000
    q, r = divmod(abs(d), initial)
    if 2 * r >= initial:
        q += 1
    return q if d >= 0 else -q


def main():
    db_path, now_ms = sys.argv[1], int(sys.argv[2])
    db = sqlite3.connect(db_path, timeout=30)
    db.execute("PRAGMA busy_timeout = 30000")
    day_ms = 86_400_000
    with db:
        for g, public in ((PUBLIC, 1), (PRIVATE, 0)):
            db.execute(
                "INSERT INTO market_settings (guild_id, season, start_cash_cents, price_source,"
                " commission_cents, dashboard_public, hours_policy, season_started_at, updated_at)"
                " VALUES (?, 1, ?, 'live', 0, ?, 'last_price', ?, ?)",
                (g, START, public, now_ms - 30 * day_ms, now_ms))
        # A guild on the simulated market: valued by the module's simulated
        # market at the request's instant, never by persisted prices.
        db.execute(
            "INSERT INTO market_settings (guild_id, season, start_cash_cents, price_source,"
            " commission_cents, dashboard_public, hours_policy, season_started_at, updated_at)"
            " VALUES (?, 1, ?, 'sim', 0, 1, 'last_price', ?, ?)",
            (SIM, START, now_ms - day_ms, now_ms))
        db.execute(
            "INSERT INTO market_accounts (guild_id, season, user_id, cash_cents, initial_cents,"
            " last_value_cents, created_at) VALUES (?, 1, ?, ?, ?, ?, ?)",
            (SIM, STAR, START - 1_900_000, START, START, now_ms))
        db.execute(
            "INSERT INTO market_holdings (guild_id, season, user_id, symbol, shares, cost_cents)"
            " VALUES (?, 1, ?, 'AAPL', 100, 1900000)", (SIM, STAR))
        for sym, (p, prev) in PRICES.items():
            db.execute(
                "INSERT OR REPLACE INTO market_last_price (symbol, price_micro, prev_close_micro,"
                " source, quote_time_ms, fetched_ms) VALUES (?, ?, ?, 'finnhub', ?, ?)",
                (sym, p, prev, now_ms - 90_000, now_ms - 60_000))

        accounts = []
        for i in range(PLAYERS):
            user = 800000000000000000 + i
            cash = START - 1_000_000 * (i % 37) - 13 * i  # distinct totals, some losses
            holdings = []
            if i % 3 == 0:
                holdings.append(("AAPL", 10 + i % 5, 10 + i % 5))
            accounts.append((user, cash, holdings))
        star_holdings = [("AAPL", 100, 1_800_000), ("MSFT", 25, 1_000_000),
                         ("NVDA", 40, 3_200_000), (EVIL, 7, 1_050)]
        star_cash = START - sum(c for _, _, c in star_holdings) - 2_000_000
        accounts.append((STAR, star_cash, star_holdings))
        # A player in the private guild too: must never show.
        db.execute(
            "INSERT INTO market_accounts (guild_id, season, user_id, cash_cents, initial_cents,"
            " last_value_cents, created_at) VALUES (?, 1, ?, ?, ?, ?, ?)",
            (PRIVATE, STAR, START, START, START, now_ms))

        for user, cash, holdings in accounts:
            db.execute(
                "INSERT INTO market_accounts (guild_id, season, user_id, cash_cents, initial_cents,"
                " last_value_cents, created_at) VALUES (?, 1, ?, ?, ?, ?, ?)",
                (PUBLIC, user, cash, START, cash, now_ms - 20 * day_ms))
            for sym, shares, cost in holdings:
                db.execute(
                    "INSERT INTO market_holdings (guild_id, season, user_id, symbol, shares,"
                    " cost_cents) VALUES (?, 1, ?, ?, ?, ?)",
                    (PUBLIC, user, sym, shares, cost))

        # Twenty days of history for the star, ending yesterday.
        import datetime
        today = datetime.datetime.fromtimestamp(now_ms / 1000, datetime.timezone.utc).date()
        history = []
        for k in range(20, 0, -1):
            d = today - datetime.timedelta(days=k)
            v = START + (20 - k) * 150_000 - (300_000 if k == 7 else 0)
            history.append((int(d.strftime("%Y%m%d")), v))
            db.execute(
                "INSERT INTO market_history (guild_id, season, user_id, day, value_cents,"
                " created_at) VALUES (?, 1, ?, ?, ?, ?)",
                (PUBLIC, STAR, history[-1][0], v, now_ms - k * day_ms))

        # Trades of the star (the audit trail; cash columns are illustrative).
        trades = [("buy", "AAPL", 100, 180_000_000, 1_800_000),
                  ("buy", "MSFT", 25, 400_000_000, 1_000_000),
                  ("buy", "NVDA", 40, 800_000_000, 3_200_000),
                  ("buy", EVIL, 7, 1_500_000, 1_050)]
        for n, (side, sym, shares, price, amount) in enumerate(trades):
            db.execute(
                "INSERT INTO market_transactions (guild_id, season, user_id, side, symbol, shares,"
                " price_micro, amount_cents, commission_cents, cash_before, cash_after,"
                " realised_cents, price_source, price_time_ms, created_at, idem_key)"
                " VALUES (?, 1, ?, ?, ?, ?, ?, ?, 0, ?, ?, 0, 'live', ?, ?, ?)",
                (PUBLIC, STAR, side, sym, shares, price, amount, START, START - amount,
                 now_ms - (10 - n) * 3_600_000, now_ms - (10 - n) * 3_600_000,
                 "browser-seed-%d" % n))

    ranked = sorted(((value_of(c, h), u) for u, c, h in accounts), key=lambda t: (-t[0], t[1]))
    star_value = value_of(star_cash, star_holdings)
    out = {
        "public": str(PUBLIC),
        "private": str(PRIVATE),
        "sim": str(SIM),
        "unknown": "700000000000000009",
        "players": len(accounts),
        "ranking": [{"user": str(u), "value": v, "roi_bp": roi_bp(v, START)}
                    for v, u in ranked],
        "star": {
            "user": str(STAR),
            "cash": star_cash,
            "value": star_value,
            "holdings_value": star_value - star_cash,
            "roi_bp": roi_bp(star_value, START),
            "holdings": [{"symbol": s, "shares": n, "value": n * PRICES[s][0] // 10_000}
                         for s, n, _ in sorted(star_holdings)],
            "history": len(history),
            "trades": len(trades),
        },
        "evil": EVIL,
        "symbols": sorted(PRICES),
    }
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
