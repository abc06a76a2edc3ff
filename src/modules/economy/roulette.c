/* European roulette (see roulette.h). */
#include "roulette.h"

#include "souk/err.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

static const char *const HINT =
    "try red, black, odd, even, low, high, a number 0-36, dozen 1-3, column 1-3, split 17-18, "
    "street 13, corner 13, line 13 or first four.";

bool roulette_is_red(int n) {
  /* Red on a European wheel: odd numbers in 1-10 and 19-28, even ones in
   * 11-18 and 29-36. */
  if (n < 1 || n > 36) return false;
  bool odd = n % 2 == 1;
  return (n <= 10 || (n >= 19 && n <= 28)) ? odd : !odd;
}

const char *roulette_color(int n) {
  if (n == 0) return "green";
  return roulette_is_red(n) ? "red" : "black";
}

/* Words and numbers of what was typed: runs of letters and runs of digits
 * (anything else separates them), at most max of them. */
typedef struct tok {
  char s[12];
  bool num;
  int v;
} tok_t;

static size_t tokenize(const char *text, tok_t *t, size_t max) {
  size_t n = 0;
  for (const char *p = text; *p;) {
    unsigned char c = (unsigned char)*p;
    if (!isalnum(c)) {
      p++;
      continue;
    }
    if (n == max) return max + 1;
    bool digit = isdigit(c) != 0;
    size_t k = 0;
    while (*p && (digit ? isdigit((unsigned char)*p) : isalpha((unsigned char)*p))) {
      if (k + 1 < sizeof t[n].s)
        t[n].s[k++] = (char)tolower((unsigned char)*p);
      else
        k = sizeof t[n].s; /* too long to be anything we know */
      p++;
    }
    if (k >= sizeof t[n].s) return max + 1;
    t[n].s[k] = '\0';
    t[n].num = digit;
    /* Numbers of more than two digits are no pocket of the wheel. */
    t[n].v = digit && k <= 2 ? atoi(t[n].s) : -1;
    n++;
  }
  return n;
}

static bool word(const tok_t *t, const char *w) { return !t->num && strcmp(t->s, w) == 0; }

static void set(roulette_bet_t *b, uint64_t pockets, const char *name) {
  b->pockets = pockets;
  b->count = __builtin_popcountll(pockets);
  /* Bet names are short ("split 1/2", "six line 31-36"); a longer one is
   * cut, never overrun. */
  size_t n = strnlen(name, sizeof b->name - 1);
  memcpy(b->name, name, n);
  b->name[n] = '\0';
}

static uint64_t bit(int n) { return UINT64_C(1) << n; }

/* Pockets of numbers in [lo, hi] that satisfy keep. */
static uint64_t range(int lo, int hi, int step) {
  uint64_t m = 0;
  for (int n = lo; n <= hi; n += step)
    m |= bit(n);
  return m;
}

static uint64_t reds(bool red) {
  uint64_t m = 0;
  for (int n = 1; n <= 36; n++)
    if (roulette_is_red(n) == red) m |= bit(n);
  return m;
}

static bool split_ok(int a, int b) {
  if (a > b) {
    int t = a;
    a = b, b = t;
  }
  if (a == 0) return b >= 1 && b <= 3;
  if (b > 36) return false;
  if (b - a == 3) return true;                     /* same column, next row */
  return b - a == 1 && (a - 1) / 3 == (b - 1) / 3; /* same row */
}

static bool refuse(char *err, size_t cap, const char *fmt, const char *what) {
  if (err && cap) snprintf(err, cap, fmt, what);
  return false;
}

bool roulette_parse(const char *text, roulette_bet_t *out, char *err, size_t cap) {
  memset(out, 0, sizeof *out);
  tok_t t[5];
  size_t n = tokenize(text ? text : "", t, 5);
  char shown[40];
  snprintf(shown, sizeof shown, "%s", text ? text : "");
  char name[64];
  if (n == 0 || n > 5) goto unknown;
  /* A single number: straight up. */
  if (n == 1 && t[0].num) {
    if (t[0].v < 0 || t[0].v > 36)
      return refuse(err, cap, "There is no pocket %s: the wheel has 0 to 36.", t[0].s);
    snprintf(name, sizeof name, "%d", t[0].v);
    set(out, bit(t[0].v), name);
    return true;
  }
  if (n == 1) {
    static const struct {
      const char *w, *name;
    } simple[] = {{"red", "red"},    {"black", "black"}, {"odd", "odd"},
                  {"even", "even"},  {"low", "low"},     {"high", "high"},
                  {"manque", "low"}, {"passe", "high"},  {"basket", "first four"}};
    for (size_t i = 0; i < sizeof simple / sizeof *simple; i++) {
      if (!word(&t[0], simple[i].w)) continue;
      const char *nm = simple[i].name;
      uint64_t m = !strcmp(nm, "red")     ? reds(true)
                   : !strcmp(nm, "black") ? reds(false)
                   : !strcmp(nm, "odd")   ? range(1, 36, 2)
                   : !strcmp(nm, "even")  ? range(2, 36, 2)
                   : !strcmp(nm, "low")   ? range(1, 18, 1)
                   : !strcmp(nm, "high")  ? range(19, 36, 1)
                                          : range(0, 3, 1);
      set(out, m, nm);
      return true;
    }
    goto unknown;
  }
  if (n == 2 && word(&t[0], "first") && word(&t[1], "four")) {
    set(out, range(0, 3, 1), "first four");
    return true;
  }
  /* Two numbers: low or high written as a range, else a split. */
  if (n == 2 && t[0].num && t[1].num) {
    int a = t[0].v, b = t[1].v;
    if (a == 1 && b == 18) {
      set(out, range(1, 18, 1), "low");
      return true;
    }
    if (a == 19 && b == 36) {
      set(out, range(19, 36, 1), "high");
      return true;
    }
    if (a < 0 || b < 0 || !split_ok(a, b))
      return refuse(err, cap,
                    "`%s` is not a split: a split is two numbers next to each other on the table "
                    "(like 17-18 or 17-20), or 0 with 1, 2 or 3.",
                    shown);
    snprintf(name, sizeof name, "split %d-%d", a < b ? a : b, a < b ? b : a);
    set(out, bit(a) | bit(b), name);
    return true;
  }
  /* "1st12", "2nd 12", "3rd dozen": a dozen. */
  if (n >= 2 && t[0].num && t[0].v >= 1 && t[0].v <= 3 &&
      (word(&t[1], "st") || word(&t[1], "nd") || word(&t[1], "rd")) &&
      (n == 2 || (n == 3 && ((t[2].num && t[2].v == 12) || word(&t[2], "dozen"))))) {
    int d = t[0].v;
    snprintf(name, sizeof name, "dozen %d", d);
    set(out, range(12 * (d - 1) + 1, 12 * d, 1), name);
    return true;
  }
  /* keyword N */
  if (n == 2 && !t[0].num && t[1].num) {
    int v = t[1].v;
    const char *w = t[0].s;
    if (!strcmp(w, "split") || !strcmp(w, "straight")) goto unknown;
    if (!strcmp(w, "dozen") || !strcmp(w, "doz")) {
      if (v < 1 || v > 3)
        return refuse(err, cap, "There are three dozens: dozen %s is not one.", t[1].s);
      snprintf(name, sizeof name, "dozen %d", v);
      set(out, range(12 * (v - 1) + 1, 12 * v, 1), name);
      return true;
    }
    if (!strcmp(w, "column") || !strcmp(w, "col")) {
      if (v < 1 || v > 3)
        return refuse(err, cap, "There are three columns: column %s is not one.", t[1].s);
      snprintf(name, sizeof name, "column %d", v);
      set(out, range(v, 36, 3), name);
      return true;
    }
    if (!strcmp(w, "street") || !strcmp(w, "row")) {
      if (v < 1 || v > 36)
        return refuse(err, cap, "A street is named by a number 1-36, not %s.", t[1].s);
      int first = (v - 1) / 3 * 3 + 1;
      snprintf(name, sizeof name, "street %d-%d", first, first + 2);
      set(out, range(first, first + 2, 1), name);
      return true;
    }
    if (!strcmp(w, "corner") || !strcmp(w, "square")) {
      if (v < 1 || v > 32 || (v - 1) % 3 == 2)
        return refuse(err, cap,
                      "A corner is named by its top-left number (1-32, not in the third column): "
                      "%s is not one.",
                      t[1].s);
      snprintf(name, sizeof name, "corner %d/%d/%d/%d", v, v + 1, v + 3, v + 4);
      set(out, bit(v) | bit(v + 1) | bit(v + 3) | bit(v + 4), name);
      return true;
    }
    if (!strcmp(w, "line") || !strcmp(w, "sixline")) {
      if (v < 1 || v > 31 || (v - 1) % 3 != 0)
        return refuse(err, cap,
                      "A six line is named by the first number of its first row (1, 4, ... 31): "
                      "%s is not one.",
                      t[1].s);
      snprintf(name, sizeof name, "line %d-%d", v, v + 5);
      set(out, range(v, v + 5, 1), name);
      return true;
    }
  }
  /* "split 17 18" */
  if (n == 3 && word(&t[0], "split") && t[1].num && t[2].num) {
    tok_t two[2] = {t[1], t[2]};
    char again[32];
    snprintf(again, sizeof again, "%s-%s", two[0].s, two[1].s);
    if (!strcmp(again, "1-18") || !strcmp(again, "19-36")) goto unknown;
    return roulette_parse(again, out, err, cap);
  }
  /* The canonical names of the inside bets read back: "street 13-15",
   * "line 13-18", "corner 13/14/16/17". */
  if (n == 3 && t[1].num && t[2].num && (word(&t[0], "street") || word(&t[0], "line"))) {
    int span = word(&t[0], "street") ? 2 : 5;
    if (t[1].v < 1 || t[2].v != t[1].v + span || (t[1].v - 1) % 3 != 0) goto unknown;
    char again[32];
    snprintf(again, sizeof again, "%s %s", t[0].s, t[1].s);
    return roulette_parse(again, out, err, cap);
  }
  if (n == 5 && word(&t[0], "corner") && t[1].num && t[2].num && t[3].num && t[4].num) {
    int v = t[1].v;
    if (v < 1 || t[2].v != v + 1 || t[3].v != v + 3 || t[4].v != v + 4) goto unknown;
    char again[32];
    snprintf(again, sizeof again, "corner %s", t[1].s);
    return roulette_parse(again, out, err, cap);
  }
  /* "six line 13". */
  if (n == 3 && word(&t[0], "six") && word(&t[1], "line") && t[2].num) {
    char again[32];
    snprintf(again, sizeof again, "line %s", t[2].s);
    return roulette_parse(again, out, err, cap);
  }
unknown:
  if (err && cap) snprintf(err, cap, "`%s` is not a bet I know: %s", shown, HINT);
  return false;
}

int roulette_return(const roulette_bet_t *bet, int pocket, int64_t stake, int64_t *ret) {
  if (!bet || !ret || stake <= 0 || pocket < 0 || pocket >= ROULETTE_POCKETS || bet->count <= 0 ||
      36 % bet->count != 0)
    return SOUK_EINVAL;
  if (!(bet->pockets & bit(pocket))) {
    *ret = 0;
    return 0;
  }
  int64_t r;
  if (__builtin_mul_overflow(stake, (int64_t)(36 / bet->count), &r)) return SOUK_ERANGE;
  *ret = r;
  return 0;
}

int roulette_spin(roulette_rng_cb rng, void *ud) {
  /* The largest multiple of 37 that fits: values at or above it are drawn
   * again, so every pocket is exactly as likely. */
  const uint64_t limit = UINT64_MAX - UINT64_MAX % ROULETTE_POCKETS;
  for (;;) {
    uint64_t v = rng(ud);
    if (v < limit) return (int)(v % ROULETTE_POCKETS);
  }
}

uint64_t roulette_rng_os(void *ud) {
  (void)ud;
  uint64_t v = 0;
  unsigned char *p = (unsigned char *)&v;
  size_t got = 0;
  while (got < sizeof v) {
    ssize_t n = getrandom(p + got, sizeof v - got, 0);
    if (n > 0) got += (size_t)n;
  }
  return v;
}
