/* Unit tests for the storage janitor: the pure decision on synthetic
 * listings (retention only, cap only, both, ties, protection of the newest
 * partition), partition names, and the executor on a real temporary tree
 * with files of known sizes and mtimes. */
/* cmocka.h needs these headers included before it. */
/* clang-format off */
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <time.h>

#include <cmocka.h>
/* clang-format on */

#include "ops/janitor.h"
#include "opstest.h"
#include "souk/err.h"

#define HOUR (3600ull * 1000)
#define DAY  (24 * HOUR)

static uint64_t utc_ms(int y, int mo, int d, int h, int mi) {
  struct tm tm = {.tm_year = y - 1900, .tm_mon = mo - 1, .tm_mday = d, .tm_hour = h, .tm_min = mi};
  return (uint64_t)timegm(&tm) * 1000;
}

static int setup(void **state) {
  log_capture_start();
  return 0;
}

static int teardown(void **state) {
  souk__janitor_shutdown();
  log_capture_stop();
  return 0;
}

/* ---- the pure decision ---- */

#define N(a) (sizeof(a) / sizeof *(a))

static void test_decide_retention_only(void **state) {
  const uint64_t now = 100 * DAY;
  souk__janitor_part_t p[] = {
      {0, "d95", 10, 95 * DAY}, {0, "d97", 10, 97 * DAY}, {0, "d93", 10, 93 * DAY},
      {1, "x", 5, 10 * DAY},    {0, "d96", 10, 96 * DAY}, /* exactly at the limit: kept */
  };
  uint64_t ret[] = {4 * DAY, 0};
  souk__janitor_policy_t pol = {ret, 2, now, 0, 0.9};
  souk_janitor_verdict_t v[N(p)];
  souk_janitor_totals_t t;
  souk__janitor_decide(p, N(p), &pol, v, &t);
  assert_int_equal(v[0], SOUK_JANITOR_RETENTION);
  assert_int_equal(v[1], SOUK_JANITOR_KEEP);
  assert_int_equal(v[2], SOUK_JANITOR_RETENTION);
  assert_int_equal(v[3], SOUK_JANITOR_KEEP); /* set 1 keeps forever */
  assert_int_equal(v[4], SOUK_JANITOR_KEEP);
  assert_int_equal(t.bytes_before, 45);
  assert_int_equal(t.bytes_after, 25);
  assert_int_equal(t.deleted_retention, 2);
  assert_int_equal(t.freed_retention, 20);
  assert_int_equal(t.deleted_cap, 0);
  assert_false(t.still_over);
  /* Retention also removes a set's newest partition when it is too old. */
  souk__janitor_part_t q[] = {{0, "old", 1, 1 * DAY}};
  souk__janitor_decide(q, 1, &pol, v, &t);
  assert_int_equal(v[0], SOUK_JANITOR_RETENTION);
  /* Nothing at all. */
  souk__janitor_decide(NULL, 0, &pol, v, &t);
  assert_int_equal(t.bytes_before, 0);
}

static void test_decide_cap_only(void **state) {
  souk__janitor_part_t p[] = {
      {0, "a1", 400, 1000}, {1, "b1", 300, 1500}, {0, "a2", 400, 2000},
      {1, "b2", 300, 2500}, {0, "a3", 400, 3000}, {1, "b3", 300, 3500},
  };
  /* 2100 bytes, cap 1500, headroom 0.8: down to 1200. */
  souk__janitor_policy_t pol = {NULL, 2, 10000, 1500, 0.8};
  souk_janitor_verdict_t v[N(p)];
  souk_janitor_totals_t t;
  souk__janitor_decide(p, N(p), &pol, v, &t);
  souk_janitor_verdict_t want[] = {SOUK_JANITOR_CAP,  SOUK_JANITOR_CAP,  SOUK_JANITOR_CAP,
                                   SOUK_JANITOR_KEEP, SOUK_JANITOR_KEEP, SOUK_JANITOR_KEEP};
  for (size_t i = 0; i < N(p); i++)
    assert_int_equal(v[i], want[i]);
  assert_int_equal(t.bytes_after, 1000);
  assert_int_equal(t.freed_cap, 1100);
  assert_int_equal(t.deleted_cap, 3);
  assert_false(t.still_over);
  /* Under the cap nothing goes; exactly at the cap neither. */
  pol.cap_bytes = 2100;
  souk__janitor_decide(p, N(p), &pol, v, &t);
  for (size_t i = 0; i < N(p); i++)
    assert_int_equal(v[i], SOUK_JANITOR_KEEP);
  /* Headroom 0 means the cap itself. */
  pol.cap_bytes = 1800;
  pol.headroom = 0;
  souk__janitor_decide(p, N(p), &pol, v, &t);
  assert_int_equal(t.deleted_cap, 1);
  assert_int_equal(v[0], SOUK_JANITOR_CAP);
  /* The newest of each set is never deleted for the cap. */
  pol.cap_bytes = 100;
  souk__janitor_decide(p, N(p), &pol, v, &t);
  assert_int_equal(v[4], SOUK_JANITOR_KEEP);
  assert_int_equal(v[5], SOUK_JANITOR_KEEP);
  assert_int_equal(t.deleted_cap, 4);
  assert_int_equal(t.bytes_after, 700);
  assert_true(t.still_over);
}

static void test_decide_both(void **state) {
  const uint64_t now = 50 * DAY;
  souk__janitor_part_t p[] = {
      {0, "a40", 100, 40 * DAY}, /* past retention (7 days) */
      {0, "a45", 100, 45 * DAY}, {0, "a49", 100, 49 * DAY},
      {1, "b30", 100, 30 * DAY}, /* set 1 has no retention: cap takes it first */
      {1, "b44", 100, 44 * DAY}, {1, "b49", 100, 49 * DAY},
  };
  uint64_t ret[] = {7 * DAY, 0};
  souk__janitor_policy_t pol = {ret, 2, now, 400, 0.75}; /* 500 after retention; to 300 */
  souk_janitor_verdict_t v[N(p)];
  souk_janitor_totals_t t;
  souk__janitor_decide(p, N(p), &pol, v, &t);
  assert_int_equal(v[0], SOUK_JANITOR_RETENTION);
  assert_int_equal(v[3], SOUK_JANITOR_CAP);
  assert_int_equal(v[4], SOUK_JANITOR_CAP);
  assert_int_equal(v[1], SOUK_JANITOR_KEEP);
  assert_int_equal(v[2], SOUK_JANITOR_KEEP);
  assert_int_equal(v[5], SOUK_JANITOR_KEEP);
  assert_int_equal(t.deleted_retention, 1);
  assert_int_equal(t.deleted_cap, 2);
  assert_int_equal(t.bytes_after, 300);
  /* Retention alone can bring it under the cap: then the cap takes nothing. */
  pol.cap_bytes = 500;
  souk__janitor_decide(p, N(p), &pol, v, &t);
  assert_int_equal(t.deleted_cap, 0);
  assert_int_equal(t.deleted_retention, 1);
}

static void test_decide_ties(void **state) {
  /* Same time everywhere: set index first, then name. */
  souk__janitor_part_t p[] = {
      {1, "a", 10, 500}, {0, "c", 10, 500}, {0, "b", 10, 500}, {1, "z", 10, 900}, {0, "z", 10, 900},
  };
  souk__janitor_policy_t pol = {NULL, 2, 1000, 30, 1};
  souk_janitor_verdict_t v[N(p)];
  souk_janitor_totals_t t;
  souk__janitor_decide(p, N(p), &pol, v, &t);
  /* 50 bytes down to 30: two go, set 0's "b" then "c". */
  assert_int_equal(v[2], SOUK_JANITOR_CAP);
  assert_int_equal(v[1], SOUK_JANITOR_CAP);
  assert_int_equal(v[0], SOUK_JANITOR_KEEP);
  /* One more byte of pressure takes set 1's "a". */
  pol.cap_bytes = 29;
  souk__janitor_decide(p, N(p), &pol, v, &t);
  assert_int_equal(v[0], SOUK_JANITOR_CAP);
  assert_int_equal(t.deleted_cap, 3);
  /* The same decision twice is the same: the function is pure. */
  souk_janitor_verdict_t w[N(p)];
  souk__janitor_decide(p, N(p), &pol, w, NULL);
  assert_memory_equal(v, w, sizeof v);
}

static void test_parse_names(void **state) {
  uint64_t t;
  assert_int_equal(souk__janitor_parse_name("%Y-%m-%d", "2026-11-20", &t), 0);
  assert_int_equal(t, utc_ms(2026, 11, 21, 0, 0));
  assert_int_equal(
      souk__janitor_parse_name("trades-%Y%m%d%H.parquet", "trades-2026112014.parquet", &t), 0);
  assert_int_equal(t, utc_ms(2026, 11, 20, 15, 0));
  assert_int_equal(souk__janitor_parse_name("%Y-%m", "2026-12", &t), 0);
  assert_int_equal(t, utc_ms(2027, 1, 1, 0, 0));
  assert_int_equal(souk__janitor_parse_name("%Y/%m/%d %H:%M:%S%%", "2026/01/31 23:59:59%", &t), 0);
  assert_int_equal(t, utc_ms(2026, 2, 1, 0, 0));
  assert_int_equal(souk__janitor_parse_name("%Y-%m-%d", "2026-11-2", &t), SOUK_EPARSE);
  assert_int_equal(souk__janitor_parse_name("%Y-%m-%d", "2026-11-20x", &t), SOUK_EPARSE);
  assert_int_equal(souk__janitor_parse_name("%Y-%m-%d", "2026-13-20", &t), SOUK_EPARSE);
  assert_int_equal(souk__janitor_parse_name("%Y-%m-%d", "notes.txt", &t), SOUK_EPARSE);
  assert_int_equal(souk__janitor_parse_name("%Y-%m-%d", "", &t), SOUK_EPARSE);
  souk__janitor_init(NULL);
  assert_int_equal(souk_janitor_register(&(souk_janitor_set_t){"a", "/x", 0, "%Q"}), SOUK_EINVAL);
  assert_int_equal(souk_janitor_register(&(souk_janitor_set_t){"a", "/x", 0, "%m-%d"}),
                   SOUK_EINVAL);
  assert_int_equal(souk_janitor_register(&(souk_janitor_set_t){"a", NULL, 0, NULL}), SOUK_EINVAL);
  assert_int_equal(souk_janitor_register(&(souk_janitor_set_t){"a", "/x", 0, "%Y"}), 0);
  assert_int_equal(souk_janitor_register(&(souk_janitor_set_t){"a", "/y", 0, NULL}), SOUK_EEXIST);
  assert_int_equal(souk_janitor_unregister("a"), 0);
  assert_int_equal(souk_janitor_unregister("a"), SOUK_ENOTFOUND);
}

/* ---- the executor on a real tree ---- */

static char root[256];

static void mkfile(const char *rel, size_t bytes, uint64_t mtime_ms) {
  char path[512];
  snprintf(path, sizeof path, "%s/%s", root, rel);
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  assert_true(fd >= 0);
  assert_int_equal(ftruncate(fd, (off_t)bytes), 0);
  if (mtime_ms) {
    struct timespec ts[2] = {{(time_t)(mtime_ms / 1000), 0}, {(time_t)(mtime_ms / 1000), 0}};
    assert_int_equal(futimens(fd, ts), 0);
  }
  close(fd);
}

static void mkd(const char *rel) {
  char path[512];
  snprintf(path, sizeof path, "%s/%s", root, rel);
  assert_int_equal(mkdir(path, 0755), 0);
}

static bool exists(const char *rel) {
  char path[512];
  struct stat st;
  snprintf(path, sizeof path, "%s/%s", root, rel);
  return lstat(path, &st) == 0;
}

static void rm_tree(const char *path) {
  char cmd[600];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", path);
  assert_int_equal(system(cmd), 0);
}

static uint64_t wall_now;
static uint64_t wall_fn(void *ud) { return wall_now; }
static const souk_clock_t wall = {wall_fn, NULL};

/* Two sets: daily directories by name with 3 days of retention, and spool
 * files by mtime kept until the cap needs room. */
static void build_tree(void) {
  snprintf(root, sizeof root, "/tmp/souk-janitor-XXXXXX");
  assert_non_null(mkdtemp(root));
  mkd("auctions");
  const struct {
    const char *day;
    size_t a, b;
  } days[] = {{"2026-11-17", 600, 400},
              {"2026-11-19", 1500, 500},
              {"2026-11-20", 3000, 0},
              {"2026-11-21", 2000, 2000},
              {"2026-11-22", 5000, 0}};
  for (size_t i = 0; i < N(days); i++) {
    char rel[128];
    snprintf(rel, sizeof rel, "auctions/%s", days[i].day);
    mkd(rel);
    snprintf(rel, sizeof rel, "auctions/%s/part-0.bin", days[i].day);
    mkfile(rel, days[i].a, 0);
    if (days[i].b) {
      snprintf(rel, sizeof rel, "auctions/%s/deep", days[i].day);
      mkd(rel);
      snprintf(rel, sizeof rel, "auctions/%s/deep/part-1.bin", days[i].day);
      mkfile(rel, days[i].b, 0);
    }
  }
  /* Not partitions: never touched. */
  mkfile("auctions/notes.txt", 100, utc_ms(2020, 1, 1, 0, 0));
  mkd("auctions/.staging");
  mkfile("auctions/.staging/x", 7, utc_ms(2020, 1, 1, 0, 0));
  mkd("spool");
  mkfile("spool/x.bin", 1500, utc_ms(2026, 11, 19, 6, 0));
  mkfile("spool/y.bin", 2500, utc_ms(2026, 11, 20, 12, 0));
  mkfile("spool/z.bin", 500, utc_ms(2026, 11, 22, 11, 0));
  char link[512];
  snprintf(link, sizeof link, "%s/spool/link", root);
  assert_int_equal(symlink("/etc", link), 0);
}

static void register_sets(void) {
  char a[300], s[300];
  snprintf(a, sizeof a, "%s/auctions", root);
  snprintf(s, sizeof s, "%s/spool", root);
  assert_int_equal(souk_janitor_register(&(souk_janitor_set_t){"auctions", a, 3 * DAY, "%Y-%m-%d"}),
                   0);
  assert_int_equal(souk_janitor_register(&(souk_janitor_set_t){"spool", s, 0, NULL}), 0);
  char m[300];
  snprintf(m, sizeof m, "%s/missing", root);
  assert_int_equal(souk_janitor_register(&(souk_janitor_set_t){"missing", m, DAY, NULL}), 0);
}

static void check_report(const souk_janitor_report_t *rep, bool dry) {
  /* Retention: 2026-11-17 (ends 11-18 00:00, 3.5 days before noon of the
   * 22nd).  Then 18500 bytes against a cap of 15000 (down to 13500),
   * oldest first across sets: spool/x.bin (11-19 06:00), auctions
   * 2026-11-19 (ends 11-20 00:00), spool/y.bin (11-20 12:00). */
  assert_int_equal(rep->nfreed, 4);
  const struct {
    const char *set, *name;
    uint64_t bytes;
    souk_janitor_verdict_t why;
  } want[] = {{"auctions", "2026-11-17", 1000, SOUK_JANITOR_RETENTION},
              {"spool", "x.bin", 1500, SOUK_JANITOR_CAP},
              {"auctions", "2026-11-19", 2000, SOUK_JANITOR_CAP},
              {"spool", "y.bin", 2500, SOUK_JANITOR_CAP}};
  for (size_t i = 0; i < N(want); i++) {
    assert_string_equal(rep->freed[i].set, want[i].set);
    assert_string_equal(rep->freed[i].name, want[i].name);
    assert_int_equal(rep->freed[i].bytes, want[i].bytes);
    assert_int_equal(rep->freed[i].why, want[i].why);
    assert_int_equal(rep->freed[i].err, 0);
  }
  assert_int_equal(rep->freed_bytes, 7000);
  assert_int_equal(rep->errors, 0);
  assert_int_equal(rep->dry_run, dry);
  assert_int_equal(rep->totals.bytes_before, 19500);
  assert_int_equal(rep->totals.bytes_after, 12500);
  assert_false(rep->totals.still_over);
  assert_int_equal(rep->nsets, 3);
  assert_string_equal(rep->sets[0].name, "auctions");
  assert_int_equal(rep->sets[0].partitions, 5);
  assert_int_equal(rep->sets[0].bytes, 15000);
  assert_int_equal(rep->sets[0].deleted, 2);
  assert_int_equal(rep->sets[0].freed, 3000);
  assert_int_equal(rep->sets[1].partitions, 3);
  assert_int_equal(rep->sets[1].deleted, 2);
  assert_int_equal(rep->sets[1].freed, 4000);
  assert_int_equal(rep->sets[2].partitions, 0);
  assert_int_equal(rep->sets[2].list_err, 0);
  souk_buf_t b = {0};
  souk_janitor_report_text(rep, &b);
  char head[200];
  snprintf(head, sizeof head,
           "janitor%s: freed 7000 bytes in 4 partitions (1 by retention, 3 by cap); "
           "19500 -> 12500 bytes\n",
           dry ? " (dry run)" : "");
  assert_memory_equal(b.data, head, strlen(head));
  assert_non_null(strstr(b.data, "  set auctions: 5 partitions, 15000 bytes; deleted 2, "
                                 "freed 3000 bytes\n"));
  assert_non_null(strstr(b.data, "  - auctions/2026-11-17 1000 bytes (retention)\n"
                                 "  - spool/x.bin 1500 bytes (cap)\n"
                                 "  - auctions/2026-11-19 2000 bytes (cap)\n"
                                 "  - spool/y.bin 2500 bytes (cap)\n"));
  souk_buf_free(&b);
}

static void assert_tree_after(bool deleted) {
  assert_int_equal(exists("auctions/2026-11-17"), !deleted);
  assert_int_equal(exists("auctions/2026-11-19"), !deleted);
  assert_int_equal(exists("spool/x.bin"), !deleted);
  assert_int_equal(exists("spool/y.bin"), !deleted);
  assert_true(exists("auctions/2026-11-20/part-0.bin"));
  assert_true(exists("auctions/2026-11-21/deep/part-1.bin"));
  assert_true(exists("auctions/2026-11-22"));
  assert_true(exists("auctions/notes.txt"));
  assert_true(exists("auctions/.staging/x"));
  assert_true(exists("spool/z.bin"));
  assert_true(exists("spool/link"));
}

static void test_executor_tree(void **state) {
  build_tree();
  wall_now = utc_ms(2026, 11, 22, 12, 0);
  /* A dry run reports the same and deletes nothing. */
  souk__janitor_init(
      &(souk__janitor_opts_t){.cap_bytes = 15000, .headroom = 0.9, .dry_run = true, .wall = &wall});
  register_sets();
  souk_janitor_report_t rep;
  assert_int_equal(souk__janitor_run_sync(&rep), 0);
  check_report(&rep, true);
  souk_janitor_report_free(&rep);
  assert_tree_after(false);

  souk__janitor_set_limits(15000, 0.9, false);
  assert_int_equal(souk__janitor_run_sync(&rep), 0);
  check_report(&rep, false);
  souk_janitor_report_free(&rep);
  assert_tree_after(true);
  assert_true(log_contains("janitor: freed 7000 bytes in 4 partitions"));

  /* A second run finds nothing to do. */
  assert_int_equal(souk__janitor_run_sync(&rep), 0);
  assert_int_equal(rep.nfreed, 0);
  assert_int_equal(rep.totals.bytes_before, 12500);
  souk_janitor_report_free(&rep);
  rm_tree(root);
}

static int async_calls;
static size_t async_freed;
static void async_done(const souk_janitor_report_t *rep, void *ud) {
  async_calls++;
  async_freed = rep->nfreed;
  assert_ptr_equal(ud, &async_calls);
}

static void test_executor_async(void **state) {
  build_tree();
  wall_now = utc_ms(2026, 11, 22, 12, 0);
  souk__janitor_init(&(souk__janitor_opts_t){.cap_bytes = 15000, .wall = &wall});
  register_sets();
  async_calls = 0;
  assert_int_equal(souk_janitor_run(async_done, &async_calls), 0);
  assert_int_equal(souk_janitor_run(async_done, &async_calls), SOUK_EBUSY);
  souk_janitor_report_t rep;
  assert_int_equal(souk__janitor_run_sync(&rep), SOUK_EBUSY);
  uv_run(souk_loop(), UV_RUN_DEFAULT);
  assert_int_equal(async_calls, 1);
  assert_int_equal(async_freed, 4);
  assert_tree_after(true);
  assert_int_equal(souk__janitor_start(), 0);
  souk__janitor_stop();
  souk_loop_close();
  rm_tree(root);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_decide_retention_only, setup, teardown),
      cmocka_unit_test_setup_teardown(test_decide_cap_only, setup, teardown),
      cmocka_unit_test_setup_teardown(test_decide_both, setup, teardown),
      cmocka_unit_test_setup_teardown(test_decide_ties, setup, teardown),
      cmocka_unit_test_setup_teardown(test_parse_names, setup, teardown),
      cmocka_unit_test_setup_teardown(test_executor_tree, setup, teardown),
      cmocka_unit_test_setup_teardown(test_executor_async, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
