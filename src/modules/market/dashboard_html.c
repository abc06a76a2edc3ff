/* The dashboard's HTML and CSS: every page rendered from data already in
 * memory (see dashboard_int.h), on the loop thread.
 *
 * Security: every string that comes from data is HTML-escaped (dash_esc,
 * static so the many calls per page stay inlined); pages load nothing but
 * their own stylesheet, under a Content-Security-Policy that forbids
 * scripts, frames, forms and every other origin.  The charts are inline
 * SVG drawn with presentation attributes and classes, so no inline style
 * is needed (CSP would block it). */
#include "dashboard_int.h"
#include "fmt.h"
#include "money.h"
#include "souk/buf.h"

#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

/* ---- escaping and small formatters ------------------------------------- */

/* Append s as HTML text or attribute value: & < > " ' are escaped, control
 * characters are dropped and invalid UTF-8 becomes U+FFFD. */
static void dash_esc_n(souk_buf_t *b, const char *s, size_t n) {
  const unsigned char *p = (const unsigned char *)s;
  size_t i = 0;
  while (i < n) {
    unsigned char c = p[i];
    if (c < 0x80) {
      switch (c) {
      case '&':
        souk_buf_puts(b, "&amp;");
        break;
      case '<':
        souk_buf_puts(b, "&lt;");
        break;
      case '>':
        souk_buf_puts(b, "&gt;");
        break;
      case '"':
        souk_buf_puts(b, "&quot;");
        break;
      case '\'':
        souk_buf_puts(b, "&#39;");
        break;
      default:
        if (c >= 0x20 && c != 0x7f)
          souk_buf_putc(b, (char)c);
        else if (c == '\n' || c == '\t')
          souk_buf_putc(b, ' ');
        break;
      }
      i++;
      continue;
    }
    size_t k = souk_utf8_seq(p + i, n - i);
    if (k == 0) {
      souk_buf_puts(b, "\xEF\xBF\xBD");
      i++;
    } else {
      souk_buf_append(b, p + i, k);
      i += k;
    }
  }
}

static void dash_esc(souk_buf_t *b, const char *s) {
  if (s) dash_esc_n(b, s, strlen(s));
}

/* Amounts, prices and percentages are ASCII from money.c, escaped anyway
 * so no path from data to the page skips the escaper. */
static void dash_cents(souk_buf_t *b, int64_t cents) {
  char t[MARKET_FMT_MAX];
  dash_esc(b, market_fmt_cents(cents, t, sizeof t));
}

/* A price by the one rule of every list; when that rounds it, the exact
 * figure is the hover text (the pages' detail view of a price). */
static void dash_price_text(souk_buf_t *b, int64_t micro) {
  char t[MARKET_FMT_MAX], x[MARKET_FMT_MAX];
  market_fmt_price(micro, t, sizeof t);
  market_fmt_price_exact(micro, x, sizeof x);
  if (!strcmp(t, x)) {
    dash_esc(b, t);
    return;
  }
  souk_buf_puts(b, "<span class=\"exact\" title=\"");
  dash_esc(b, x);
  souk_buf_puts(b, "\">");
  dash_esc(b, t);
  souk_buf_puts(b, "</span>");
}

static void dash_bp(souk_buf_t *b, int64_t bp) {
  char t[MARKET_FMT_MAX];
  dash_esc(b, market_fmt_bp(bp, t, sizeof t));
}

/* Who a player is: their kept display name, escaped, or (none kept yet)
 * their user id as code. */
static void dash_player(souk_buf_t *b, const char *name, int64_t user_id) {
  if (name && name[0]) {
    souk_buf_puts(b, "<span class=\"player\">");
    dash_esc(b, name);
    souk_buf_puts(b, "</span>");
  } else {
    souk_buf_printf(b, "<code>%" PRId64 "</code>", user_id);
  }
}

/* "pos", "neg" or "zero": the class that colours a signed figure. */
static const char *dash_sign_class(int64_t v) { return v > 0 ? "pos" : v < 0 ? "neg" : "zero"; }

/* When t_ms was, from now_ms: "just now", "5 min ago", ...; "unknown"
 * when t <= 0.  A time in the future (another clock) reads "just now". */
static void dash_fmt_age(char *buf, size_t n, int64_t now_ms, int64_t t_ms) {
  if (t_ms <= 0)
    snprintf(buf, n, "unknown");
  else
    market_fmt_age(now_ms - t_ms, MARKET_AGE_AGO, buf, n);
}

/* "2026-11-22" for a YYYYMMDD day. */
static void dash_fmt_day(char *buf, size_t n, int64_t day) {
  if (day <= 0 || day > INT64_C(99991231)) {
    snprintf(buf, n, "?");
    return;
  }
  snprintf(buf, n, "%04" PRId64 "-%02" PRId64 "-%02" PRId64, day / 10000, day / 100 % 100,
           day % 100);
}

/* ---- HTML --------------------------------------------------------------- */

const char market_dash_css[] =
    ":root{color-scheme:light dark;--fg:#1b1f24;--bg:#fbfbfa;--mut:#5c6670;--line:#d9dde2;"
    "--acc:#2458c6;--pos:#18794e;--neg:#c2352b;--card:#fff}\n"
    "@media (prefers-color-scheme:dark){:root{--fg:#e6e8eb;--bg:#16181c;--mut:#9aa4ae;"
    "--line:#333a42;--acc:#7aa2f7;--pos:#4ec38a;--neg:#f2776d;--card:#1d2025}}\n"
    "*{box-sizing:border-box}\n"
    "body{margin:0 auto;max-width:960px;padding:24px 16px 48px;background:var(--bg);"
    "color:var(--fg);font:15px/1.45 system-ui,-apple-system,'Segoe UI',Roboto,sans-serif}\n"
    "a{color:var(--acc)}\n"
    "h1{font-size:1.5rem;margin:0 0 4px}h2{font-size:1.15rem;margin:28px 0 8px}\n"
    ".meta,.note,footer{color:var(--mut);font-size:.9rem}\n"
    "footer{margin-top:32px;border-top:1px solid var(--line);padding-top:12px}\n"
    "code{font-family:ui-monospace,SFMono-Regular,Menlo,monospace;font-size:.92em}\n"
    "table{border-collapse:collapse;width:100%;background:var(--card)}\n"
    "th,td{padding:6px 10px;border-bottom:1px solid var(--line);text-align:left;"
    "white-space:nowrap}\n"
    "th{font-size:.8rem;text-transform:uppercase;letter-spacing:.04em;color:var(--mut)}\n"
    "td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}\n"
    ".pos{color:var(--pos)}.neg{color:var(--neg)}\n"
    ".stale{color:var(--neg);font-size:.85em}\n"
    ".exact{text-decoration:underline dotted var(--mut);cursor:help}\n"
    ".tag{display:inline-block;padding:1px 6px;border:1px solid var(--line);border-radius:9px;"
    "font-size:.8rem;color:var(--mut)}\n"
    "dl.sum{display:grid;grid-template-columns:repeat(auto-fit,minmax(170px,1fr));gap:10px;"
    "margin:16px 0}\n"
    "dl.sum div{background:var(--card);border:1px solid var(--line);border-radius:8px;"
    "padding:10px 12px}\n"
    "dl.sum dt{font-size:.8rem;color:var(--mut)}dl.sum dd{margin:2px 0 0;font-size:1.15rem;"
    "font-variant-numeric:tabular-nums}\n"
    "nav.pages,nav.sort{margin:12px 0;display:flex;gap:14px;align-items:center}\n"
    ".wrap{overflow-x:auto}\n"
    "svg.chart{width:100%;height:auto;max-width:720px;background:var(--card);"
    "border:1px solid var(--line);border-radius:8px}\n"
    "svg.chart .grid{stroke:var(--line);stroke-width:1}\n"
    "svg.chart .axis{stroke:var(--mut);stroke-width:1}\n"
    "svg.chart .line{fill:none;stroke:var(--acc);stroke-width:2;stroke-linejoin:round}\n"
    "svg.chart .dot{fill:var(--acc)}\n"
    "svg.chart text{fill:var(--mut);font-size:11px;font-family:system-ui,sans-serif}\n";

/* The document's head and the top of its body. */
static void dash_head(souk_buf_t *b, const char *title) {
  souk_buf_puts(b, "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
                   "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
                   "<meta name=\"robots\" content=\"noindex\">"
                   "<link rel=\"icon\" href=\"data:,\">"
                   "<link rel=\"stylesheet\" href=\"/market/static/style.css\"><title>");
  dash_esc(b, title);
  souk_buf_puts(b, " · Market Sim</title></head>\n<body>\n");
}

static void dash_foot(souk_buf_t *b) { souk_buf_puts(b, "</body></html>\n"); }

/* An error page: the status's name and one sentence. */
void market_dash_render_error(souk_buf_t *b, int status, const char *msg) {
  const char *name = status == 400   ? "Bad request"
                     : status == 403 ? "Forbidden"
                     : status == 404 ? "Not found"
                     : status == 503 ? "Unavailable"
                                     : "Server error";
  char t[64];
  snprintf(t, sizeof t, "%d %s", status, name);
  dash_head(b, t);
  souk_buf_puts(b, "<main><h1>");
  dash_esc(b, t);
  souk_buf_puts(b, "</h1><p id=\"error\">");
  dash_esc(b, msg);
  souk_buf_puts(b, "</p></main>\n");
  dash_foot(b);
}

/* The guild's line under a title: guild, season, price source. */
static void dash_guild_meta(souk_buf_t *b, const market_dash_data_t *d) {
  souk_buf_printf(b, "<p class=\"meta\">Guild <code>%" PRId64 "</code> · season %" PRId64 " · ",
                  d->path.guild_id, d->settings.season);
  souk_buf_puts(b, d->settings.source == MARKET_SRC_SIM
                       ? "<span class=\"tag\">simulated market</span>"
                       : "<span class=\"tag\">live prices</span>");
  souk_buf_puts(b, "</p>\n");
}

/* Oldest and newest quote times among the snapshot's prices (0 if none);
 * with only, limited to the symbols it accepts. */
static void dash_snapshot_span(const market_dash_data_t *d, bool holdings_only,
                               const market_holding_t *only, size_t nonly, int64_t *oldest,
                               int64_t *newest, size_t *count) {
  *oldest = *newest = 0;
  *count = 0;
  for (size_t i = 0; i < (holdings_only ? nonly : d->nprices); i++) {
    const market_last_price_t *p =
        holdings_only ? market_dash_price_find(d, only[i].symbol) : &d->prices[i];
    if (!p) continue;
    int64_t t = p->quote_time_ms > 0 ? p->quote_time_ms : p->fetched_ms;
    if (*count == 0 || t < *oldest) *oldest = t;
    if (*count == 0 || t > *newest) *newest = t;
    (*count)++;
  }
}

/* The footer line that says which prices valued the page. */
static void dash_snapshot_note(souk_buf_t *b, const market_dash_data_t *d, bool holdings_only,
                               const market_holding_t *only, size_t nonly) {
  int64_t oldest, newest;
  size_t count;
  dash_snapshot_span(d, holdings_only, only, nonly, &oldest, &newest, &count);
  if (d->path.kind != MARKET_DASH_PRICES && d->settings.source == MARKET_SRC_SIM) {
    char t[48];
    market_fmt_utc(d->snap_ms, t, sizeof t);
    souk_buf_puts(b, "<p class=\"note\" id=\"snapshot\">Valued with the simulated market at ");
    dash_esc(b, t);
    souk_buf_puts(b, ", one snapshot for the whole page.</p>\n");
    return;
  }
  souk_buf_puts(b, "<p class=\"note\" id=\"snapshot\">Valued at the last known prices");
  if (count == 0) {
    souk_buf_puts(b, " (none recorded yet: holdings are valued at their cost).</p>\n");
    return;
  }
  char a[48], z[48];
  dash_fmt_age(a, sizeof a, d->now_ms, newest);
  dash_fmt_age(z, sizeof z, d->now_ms, oldest);
  souk_buf_printf(b, ", one snapshot of %zu symbol%s: newest quote ", count, count == 1 ? "" : "s");
  dash_esc(b, a);
  if (count > 1) {
    souk_buf_puts(b, ", oldest ");
    dash_esc(b, z);
  }
  souk_buf_puts(b, ".");
  if (d->now_ms - oldest > MARKET_DASH_STALE_MS)
    souk_buf_puts(b, " <span class=\"stale\">Some quotes are more than a day old.</span>");
  souk_buf_puts(b, "</p>\n");
}

static void dash_footer(souk_buf_t *b, const market_dash_data_t *d) {
  char t[48];
  market_fmt_utc(d->now_ms, t, sizeof t);
  souk_buf_puts(b, "<footer>Market Sim · read-only · rendered ");
  dash_esc(b, t);
  souk_buf_puts(b, ". Money is virtual.</footer>\n");
}

/* A link to the leaderboard page p sorted by. */
static void dash_board_href(souk_buf_t *b, int64_t guild, int64_t page, market_rank_by_t by) {
  souk_buf_printf(b, "/market/%" PRId64, guild);
  if (by == MARKET_RANK_ROI) souk_buf_printf(b, "?by=roi");
  if (page > 1) souk_buf_printf(b, "%cpage=%" PRId64, by == MARKET_RANK_ROI ? '&' : '?', page);
}

static void dash_render_board(souk_buf_t *b, const market_dash_data_t *d) {
  char title[96];
  snprintf(title, sizeof title, "Leaderboard of guild %" PRId64, d->path.guild_id);
  dash_head(b, title);
  int64_t g = d->path.guild_id;
  int64_t pages =
      d->total ? ((int64_t)d->total + MARKET_DASH_PAGE_SIZE - 1) / MARKET_DASH_PAGE_SIZE : 1;
  souk_buf_puts(b, "<header><h1>Leaderboard</h1>\n");
  dash_guild_meta(b, d);
  souk_buf_puts(b, "</header>\n<main>\n<nav class=\"sort\">Ranked by ");
  if (d->by == MARKET_RANK_VALUE) {
    souk_buf_puts(b, "<strong>total value</strong> · <a href=\"");
    dash_board_href(b, g, 1, MARKET_RANK_ROI);
    souk_buf_puts(b, "\">ROI</a>");
  } else {
    souk_buf_puts(b, "<a href=\"");
    dash_board_href(b, g, 1, MARKET_RANK_VALUE);
    souk_buf_puts(b, "\">total value</a> · <strong>ROI</strong>");
  }
  souk_buf_printf(b, " · <a href=\"/market/%" PRId64 "/prices\">prices</a></nav>\n", g);
  souk_buf_printf(b, "<p class=\"meta\" id=\"players\">%zu player%s</p>\n", d->total,
                  d->total == 1 ? "" : "s");
  if (d->nranks == 0) {
    souk_buf_puts(b, "<p id=\"empty\">Nobody has traded in this season yet.</p>\n");
  } else {
    souk_buf_puts(b, "<div class=\"wrap\"><table id=\"leaderboard\"><thead><tr>"
                     "<th class=\"num\">Rank</th><th>Player</th>"
                     "<th class=\"num\">Total value</th><th class=\"num\">ROI</th>"
                     "</tr></thead><tbody>\n");
    for (size_t i = 0; i < d->nranks; i++) {
      const market_rank_t *r = &d->ranks[i];
      souk_buf_printf(b,
                      "<tr><td class=\"num\">%" PRId64 "</td><td><a href=\"/market/%" PRId64
                      "/user/%" PRId64 "\">",
                      r->rank, g, r->user_id);
      dash_player(b, d->names ? d->names[i] : NULL, r->user_id);
      souk_buf_puts(b, "</a></td><td class=\"num\">");
      dash_cents(b, r->value_cents);
      souk_buf_printf(b, "</td><td class=\"num %s\">", dash_sign_class(r->roi_bp));
      dash_bp(b, r->roi_bp);
      souk_buf_puts(b, "</td></tr>\n");
    }
    souk_buf_puts(b, "</tbody></table></div>\n");
  }
  souk_buf_puts(b, "<nav class=\"pages\" aria-label=\"pages\">");
  if (d->page > 1) {
    souk_buf_puts(b, "<a rel=\"prev\" href=\"");
    dash_board_href(b, g, d->page - 1, d->by);
    souk_buf_puts(b, "\">« Previous</a>");
  }
  souk_buf_printf(b, "<span id=\"pageinfo\">Page %" PRId64 " of %" PRId64 "</span>", d->page,
                  pages);
  if (d->page < pages) {
    souk_buf_puts(b, "<a rel=\"next\" href=\"");
    dash_board_href(b, g, d->page + 1, d->by);
    souk_buf_puts(b, "\">Next »</a>");
  }
  souk_buf_puts(b, "</nav>\n");
  dash_snapshot_note(b, d, false, NULL, 0);
  char ranked[48];
  dash_fmt_age(ranked, sizeof ranked, d->now_ms, d->snap_ms);
  souk_buf_puts(b, "<p class=\"note\" id=\"ranked\">Ranked ");
  dash_esc(b, ranked);
  souk_buf_printf(b, "; rankings are recomputed at most every %d s.</p>\n",
                  MARKET_DASH_BOARD_TTL_MS / 1000);
  souk_buf_puts(b, "</main>\n");
  dash_footer(b, d);
  dash_foot(b);
}

/* The value chart: daily history as an inline SVG line with labelled axes.
 * No points draws the axes and says so; one point draws a dot. */
static void dash_svg_chart(souk_buf_t *b, const market_history_point_t *pts, size_t n) {
  const double W = 720, H = 280, L = 104, R = 20, T = 16, B = 40;
  const double pw = W - L - R, ph = H - T - B;
  souk_buf_printf(b,
                  "<svg class=\"chart\" id=\"chart\" xmlns=\"http://www.w3.org/2000/svg\" "
                  "viewBox=\"0 0 %.0f %.0f\" role=\"img\" aria-labelledby=\"chart-title\">"
                  "<title id=\"chart-title\">",
                  W, H);
  char a[MARKET_FMT_MAX], z[MARKET_FMT_MAX], d0[16], d1[16];
  if (n == 0) {
    souk_buf_puts(b, "Daily value: no snapshots yet</title>");
  } else {
    dash_fmt_day(d0, sizeof d0, pts[0].day);
    dash_fmt_day(d1, sizeof d1, pts[n - 1].day);
    market_fmt_cents(pts[0].value_cents, a, sizeof a);
    market_fmt_cents(pts[n - 1].value_cents, z, sizeof z);
    souk_buf_printf(b, "Daily value, %zu day%s: ", n, n == 1 ? "" : "s");
    dash_esc(b, d0);
    souk_buf_puts(b, " ");
    dash_esc(b, a);
    if (n > 1) {
      souk_buf_puts(b, " to ");
      dash_esc(b, d1);
      souk_buf_puts(b, " ");
      dash_esc(b, z);
    }
    souk_buf_puts(b, "</title>");
  }
  /* Axes. */
  souk_buf_printf(b,
                  "<line class=\"axis\" x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/>"
                  "<line class=\"axis\" x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/>",
                  L, T, L, T + ph, L, T + ph, L + pw, T + ph);
  if (n == 0) {
    souk_buf_printf(b,
                    "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">No daily snapshots yet"
                    "</text></svg>\n",
                    L + pw / 2, T + ph / 2);
    return;
  }
  /* The value range, widened so a flat line sits in the middle and a
   * moving one does not touch the frame. */
  int64_t lo = pts[0].value_cents, hi = lo;
  for (size_t i = 1; i < n; i++) {
    if (pts[i].value_cents < lo) lo = pts[i].value_cents;
    if (pts[i].value_cents > hi) hi = pts[i].value_cents;
  }
  double vlo = (double)lo, vhi = (double)hi;
  if (hi == lo) {
    double pad = vhi / 100 > 100 ? vhi / 100 : (vhi / 100 < -100 ? -vhi / 100 : 100);
    vlo -= pad;
    vhi += pad;
  } else {
    double pad = (vhi - vlo) * 0.05;
    vlo -= pad;
    vhi += pad;
  }
  double span = vhi - vlo;
  /* Horizontal grid lines with their values: bottom, middle, top. */
  for (int k = 0; k <= 2; k++) {
    double v = vlo + span * k / 2;
    double y = T + ph - ph * k / 2;
    char t[MARKET_FMT_MAX];
    market_fmt_cents((int64_t)(v >= 0 ? v + 0.5 : v - 0.5), t, sizeof t);
    if (k > 0)
      souk_buf_printf(b, "<line class=\"grid\" x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/>",
                      L, y, L + pw, y);
    souk_buf_printf(b, "<text class=\"ylabel\" x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">", L - 6,
                    y + 4);
    dash_esc(b, t);
    souk_buf_puts(b, "</text>");
  }
  /* x of point i: spread evenly; a single point sits in the middle. */
#define DASH_X(i) (n == 1 ? L + pw / 2 : L + pw * (double)(i) / (double)(n - 1))
#define DASH_Y(v) (T + ph - ph * (((double)(v)-vlo) / span))
  /* Day labels: first, last and (with three or more) the middle one. */
  size_t lab[3] = {0, n / 2, n - 1};
  size_t nlab = n == 1 ? 1 : n == 2 ? 2 : 3;
  if (nlab == 2) lab[1] = n - 1;
  for (size_t k = 0; k < nlab; k++) {
    size_t i = lab[k];
    char t[16];
    dash_fmt_day(t, sizeof t, pts[i].day);
    const char *anchor = n == 1 || (nlab == 3 && k == 1) ? "middle" : k == 0 ? "start" : "end";
    souk_buf_printf(b, "<text class=\"xlabel\" x=\"%.1f\" y=\"%.1f\" text-anchor=\"%s\">",
                    DASH_X(i), T + ph + 18, anchor);
    dash_esc(b, t);
    souk_buf_puts(b, "</text>");
  }
  if (n == 1) {
    souk_buf_printf(b, "<circle class=\"dot\" cx=\"%.1f\" cy=\"%.1f\" r=\"4\"/>", DASH_X(0),
                    DASH_Y(pts[0].value_cents));
  } else {
    souk_buf_puts(b, "<polyline class=\"line\" points=\"");
    for (size_t i = 0; i < n; i++)
      souk_buf_printf(b, "%s%.1f,%.1f", i ? " " : "", DASH_X(i), DASH_Y(pts[i].value_cents));
    souk_buf_puts(b, "\"/>");
    souk_buf_printf(b, "<circle class=\"dot\" cx=\"%.1f\" cy=\"%.1f\" r=\"3\"/>", DASH_X(n - 1),
                    DASH_Y(pts[n - 1].value_cents));
  }
#undef DASH_X
#undef DASH_Y
  souk_buf_puts(b, "</svg>\n");
}

/* One summary figure. */
static void dash_fig(souk_buf_t *b, const char *id, const char *label, const char *cls) {
  souk_buf_printf(b, "<div><dt>%s</dt><dd id=\"%s\"%s%s%s>", label, id, cls ? " class=\"" : "",
                  cls ? cls : "", cls ? "\"" : "");
}

static void dash_render_user(souk_buf_t *b, const market_dash_data_t *d) {
  char title[MARKET_NAME_MAX + 32];
  if (d->user_name[0])
    snprintf(title, sizeof title, "Portfolio of %s", d->user_name);
  else
    snprintf(title, sizeof title, "Portfolio of %" PRId64, d->path.user_id);
  dash_head(b, title);
  const market_account_t *a = &d->pf.account;
  int64_t g = d->path.guild_id;
  souk_buf_printf(b,
                  "<header><p class=\"meta\"><a href=\"/market/%" PRId64
                  "\">« Leaderboard</a></p><h1>Portfolio of ",
                  g);
  dash_player(b, d->user_name, d->path.user_id);
  souk_buf_puts(b, "</h1>\n");
  dash_guild_meta(b, d);
  souk_buf_puts(b, "</header>\n<main>\n<dl class=\"sum\">");
  int64_t hold = 0, roi = 0, pl = 0;
  bool hold_ok = market_sub(d->value_cents, a->cash_cents, &hold) == 0;
  bool roi_ok = a->initial_cents > 0 && market_roi_bp(d->value_cents, a->initial_cents, &roi) == 0;
  bool pl_ok = market_sub(d->value_cents, a->initial_cents, &pl) == 0;
  dash_fig(b, "total", "Total value", NULL);
  dash_cents(b, d->value_cents);
  souk_buf_puts(b, "</dd></div>");
  dash_fig(b, "cash", "Cash", NULL);
  dash_cents(b, a->cash_cents);
  souk_buf_puts(b, "</dd></div>");
  dash_fig(b, "holdings-value", "Holdings", NULL);
  if (hold_ok)
    dash_cents(b, hold);
  else
    souk_buf_puts(b, "—");
  souk_buf_puts(b, "</dd></div>");
  dash_fig(b, "roi", "Return (ROI)", roi_ok ? dash_sign_class(roi) : NULL);
  if (roi_ok) {
    dash_bp(b, roi);
    if (pl_ok) {
      souk_buf_puts(b, " <small>(");
      if (pl > 0) souk_buf_putc(b, '+');
      dash_cents(b, pl);
      souk_buf_puts(b, ")</small>");
    }
  } else {
    souk_buf_puts(b, "—");
  }
  souk_buf_puts(b, "</dd></div>");
  int64_t dc = 0;
  bool dc_ok = d->has_prev && market_sub(d->value_cents, d->prev_value, &dc) == 0;
  dash_fig(b, "day-change", "Since last close", dc_ok ? dash_sign_class(dc) : NULL);
  if (dc_ok) {
    if (dc > 0) souk_buf_putc(b, '+');
    dash_cents(b, dc);
  } else {
    souk_buf_puts(b, "—");
  }
  souk_buf_puts(b, "</dd></div>");
  dash_fig(b, "initial", "Started with", NULL);
  dash_cents(b, a->initial_cents);
  souk_buf_puts(b, "</dd></div></dl>\n");

  souk_buf_puts(b, "<h2>Value history</h2>\n");
  dash_svg_chart(b, d->hist, d->nhist);

  souk_buf_puts(b, "<h2>Holdings</h2>\n");
  if (d->pf.n == 0) {
    souk_buf_puts(b, "<p id=\"no-holdings\">No holdings: all cash.</p>\n");
  } else {
    souk_buf_puts(b, "<div class=\"wrap\"><table id=\"holdings\"><thead><tr><th>Symbol</th>"
                     "<th class=\"num\">Shares</th><th class=\"num\">Avg cost</th>"
                     "<th class=\"num\">Price</th><th class=\"num\">Value</th>"
                     "<th class=\"num\">Gain</th><th>Quote</th></tr></thead><tbody>\n");
    for (size_t i = 0; i < d->pf.n; i++) {
      const market_holding_t *h = &d->pf.holdings[i];
      const market_last_price_t *p = market_dash_price_find(d, h->symbol);
      int64_t value = h->cost_cents;
      bool priced =
          p && p->price_micro > 0 && market_gross_down(p->price_micro, h->shares, &value) == 0;
      if (!priced) value = h->cost_cents;
      souk_buf_puts(b, "<tr><td><code>");
      dash_esc(b, h->symbol);
      souk_buf_printf(b, "</code></td><td class=\"num\">%" PRId64 "</td><td class=\"num\">",
                      h->shares);
      if (h->shares > 0)
        dash_price_text(b, market_avg_cost_micro(h->cost_cents, h->shares));
      else
        souk_buf_puts(b, "—");
      souk_buf_puts(b, "</td><td class=\"num\">");
      if (priced)
        dash_price_text(b, p->price_micro);
      else
        souk_buf_puts(b, "—");
      souk_buf_puts(b, "</td><td class=\"num\">");
      dash_cents(b, value);
      int64_t gain = 0;
      bool gain_ok = priced && market_sub(value, h->cost_cents, &gain) == 0;
      souk_buf_printf(b, "</td><td class=\"num %s\">", gain_ok ? dash_sign_class(gain) : "");
      if (gain_ok) {
        if (gain > 0) souk_buf_putc(b, '+');
        dash_cents(b, gain);
      } else {
        souk_buf_puts(b, "—");
      }
      souk_buf_puts(b, "</td><td>");
      if (priced) {
        char age[48];
        int64_t t = p->quote_time_ms > 0 ? p->quote_time_ms : p->fetched_ms;
        dash_fmt_age(age, sizeof age, d->now_ms, t);
        dash_esc(b, age);
        souk_buf_puts(b, " · ");
        dash_esc(b, p->source);
        if (d->now_ms - t > MARKET_DASH_STALE_MS)
          souk_buf_puts(b, " <span class=\"stale\">stale</span>");
      } else {
        souk_buf_puts(b, "<span class=\"stale\">no price: valued at cost</span>");
      }
      souk_buf_puts(b, "</td></tr>\n");
    }
    souk_buf_puts(b, "</tbody></table></div>\n");
  }
  dash_snapshot_note(b, d, true, d->pf.holdings, d->pf.n);

  souk_buf_puts(b, "<h2>Recent trades</h2>\n");
  if (d->ntrades == 0) {
    souk_buf_puts(b, "<p id=\"no-trades\">No trades yet.</p>\n");
  } else {
    souk_buf_puts(b, "<div class=\"wrap\"><table id=\"trades\"><thead><tr><th>When</th>"
                     "<th>Side</th><th>Symbol</th><th class=\"num\">Shares</th>"
                     "<th class=\"num\">Price</th><th class=\"num\">Amount</th>"
                     "<th class=\"num\">Commission</th><th class=\"num\">Realised</th>"
                     "</tr></thead><tbody>\n");
    for (size_t i = 0; i < d->ntrades; i++) {
      const market_trade_t *t = &d->trades[i];
      char when[48];
      market_fmt_utc(t->created_at, when, sizeof when);
      souk_buf_puts(b, "<tr><td>");
      dash_esc(b, when);
      souk_buf_printf(b, "</td><td>%s</td><td><code>", t->side == MARKET_BUY ? "buy" : "sell");
      dash_esc(b, t->symbol);
      souk_buf_printf(b, "</code></td><td class=\"num\">%" PRId64 "</td><td class=\"num\">",
                      t->shares);
      dash_price_text(b, t->price_micro);
      souk_buf_puts(b, "</td><td class=\"num\">");
      dash_cents(b, t->amount_cents);
      souk_buf_puts(b, "</td><td class=\"num\">");
      dash_cents(b, t->commission_cents);
      if (t->side == MARKET_SELL) {
        souk_buf_printf(b, "</td><td class=\"num %s\">", dash_sign_class(t->realised_cents));
        if (t->realised_cents > 0) souk_buf_putc(b, '+');
        dash_cents(b, t->realised_cents);
      } else {
        souk_buf_puts(b, "</td><td class=\"num\">—");
      }
      souk_buf_puts(b, "</td></tr>\n");
    }
    souk_buf_puts(b, "</tbody></table></div>\n");
  }
  souk_buf_puts(b, "</main>\n");
  dash_footer(b, d);
  dash_foot(b);
}

/* One row of a prices table. */
static void dash_price_row(souk_buf_t *b, const market_dash_data_t *d, const char *symbol,
                           const market_last_price_t *p) {
  souk_buf_puts(b, "<tr><td><code>");
  dash_esc(b, symbol);
  souk_buf_puts(b, "</code></td>");
  if (!p) {
    souk_buf_puts(b, "<td class=\"num\">—</td><td class=\"num\">—</td><td>—</td><td>—</td>"
                     "<td><span class=\"stale\">no price recorded</span></td></tr>\n");
    return;
  }
  souk_buf_puts(b, "<td class=\"num\">");
  dash_price_text(b, p->price_micro);
  souk_buf_puts(b, "</td>");
  int64_t bp = 0;
  if (p->prev_close_micro > 0 && market_roi_bp(p->price_micro, p->prev_close_micro, &bp) == 0) {
    souk_buf_printf(b, "<td class=\"num %s\">", dash_sign_class(bp));
    dash_bp(b, bp);
    souk_buf_puts(b, "</td>");
  } else {
    souk_buf_puts(b, "<td class=\"num\">—</td>");
  }
  souk_buf_puts(b, "<td>");
  dash_esc(b, p->source);
  if (!strcmp(p->source, "sim") || !strcmp(p->source, "simulated"))
    souk_buf_puts(b, " <span class=\"tag\">simulated</span>");
  souk_buf_puts(b, "</td><td>");
  char t[48], age[48];
  int64_t qt = p->quote_time_ms > 0 ? p->quote_time_ms : p->fetched_ms;
  market_fmt_utc(qt, t, sizeof t);
  dash_esc(b, t);
  souk_buf_puts(b, "</td><td>");
  dash_fmt_age(age, sizeof age, d->now_ms, qt);
  dash_esc(b, age);
  if (d->now_ms - qt > MARKET_DASH_STALE_MS)
    souk_buf_puts(b, " <span class=\"stale\">stale</span>");
  souk_buf_puts(b, "</td></tr>\n");
}

static void dash_render_prices(souk_buf_t *b, const market_dash_data_t *d) {
  bool guild = d->path.kind == MARKET_DASH_GPRICES;
  char title[96];
  if (guild)
    snprintf(title, sizeof title, "Prices of guild %" PRId64, d->path.guild_id);
  else
    snprintf(title, sizeof title, "Price cache");
  dash_head(b, title);
  if (guild) {
    souk_buf_printf(b,
                    "<header><p class=\"meta\"><a href=\"/market/%" PRId64
                    "\">« Leaderboard</a></p><h1>Prices</h1>\n",
                    d->path.guild_id);
    dash_guild_meta(b, d);
    souk_buf_puts(b, d->settings.source == MARKET_SRC_SIM
                         ? "<p class=\"note\">Every symbol held in this guild's season, priced "
                           "by the simulated market now.</p></header>\n"
                         : "<p class=\"note\">The last known price of every symbol held in this "
                           "guild's season, as persisted by the price cache.</p></header>\n");
  } else {
    souk_buf_printf(b,
                    "<header><h1>Price cache</h1><p class=\"note\">Every last known price "
                    "persisted by the price cache (%zu symbol%s).</p></header>\n",
                    d->nprices, d->nprices == 1 ? "" : "s");
  }
  souk_buf_puts(b, "<main>\n");
  size_t rows = guild ? d->nheld : d->nprices;
  if (rows == 0) {
    souk_buf_puts(b, guild ? "<p id=\"empty\">No symbols are held in this season.</p>\n"
                           : "<p id=\"empty\">No prices recorded yet.</p>\n");
  } else {
    souk_buf_puts(b, "<div class=\"wrap\"><table id=\"prices\"><thead><tr><th>Symbol</th>"
                     "<th class=\"num\">Last price</th><th class=\"num\">Change</th>"
                     "<th>Source</th><th>Quote time</th><th>Age</th></tr></thead><tbody>\n");
    for (size_t i = 0; i < rows; i++) {
      if (guild)
        dash_price_row(b, d, d->held[i], market_dash_price_find(d, d->held[i]));
      else
        dash_price_row(b, d, d->prices[i].symbol, &d->prices[i]);
    }
    souk_buf_puts(b, "</tbody></table></div>\n");
  }
  souk_buf_puts(b, "</main>\n");
  dash_footer(b, d);
  dash_foot(b);
}

void market_dash_render_index(souk_buf_t *b) {
  dash_head(b, "Market Sim");
  souk_buf_puts(b, "<header><h1>Market Sim</h1></header>\n<main><p>Each guild that made its "
                   "dashboard public has its leaderboard at <code>/market/&lt;guild id&gt;</code>"
                   ". A guild's admins turn it on in the game's settings.</p></main>\n");
  dash_foot(b);
}

/* Render the page d describes (status 200 or 404) into b. */
int market_dash_render(souk_buf_t *b, const market_dash_data_t *d) {
  if (d->status != 200) {
    market_dash_render_error(b, d->status, d->why ? d->why : "Not found.");
    return d->status;
  }
  switch (d->path.kind) {
  case MARKET_DASH_BOARD:
    dash_render_board(b, d);
    break;
  case MARKET_DASH_USER:
    dash_render_user(b, d);
    break;
  case MARKET_DASH_GPRICES:
  case MARKET_DASH_PRICES:
    dash_render_prices(b, d);
    break;
  case MARKET_DASH_INDEX:
    market_dash_render_index(b);
    break;
  case MARKET_DASH_CSS:
    break;
  }
  return 200;
}
