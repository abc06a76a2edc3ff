/* `souk skyblock replay DIR [OUT]`: rebuild the hourly summaries from a
 * raw spool (spool/raw-*.ndjson.zst: one page a line, zstd frames) or from
 * saved pages (*.json, *.json.gz: one page a file), in name order, through
 * the same engine as the live module, and write every hour it sees (the
 * last one too, as far as the pages go) as Parquet under OUT (default: the
 * module's summaries directory, replacing what is there for those hours).
 *
 * Consecutive auction pages with one lastUpdated are one sweep; a sweep
 * that has all its totalPages pages counts as complete (the store then
 * forgets the listings it did not see), as live.  The sniper is off: a
 * replay sends no alert. */
#include "sb_mod.h"
#include "souk/alloc.h"
#include "souk/err.h"
#include "souk/loop.h"

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>
#include <zstd.h>

typedef struct rp {
  sb_engine_t *e;
  const char *out;
  uint32_t sweep;
  int64_t sweep_lu;
  int seen, total;
  size_t files, pages, ended, bad, hours, rows, errors;
} rp_t;

static void rp_hour(void *ud, sb_summary_t *s) {
  rp_t *r = ud;
  char path[1024];
  size_t rows = 0;
  int rc = sb_files_write_summary(s, r->out, path, sizeof path, &rows);
  if (rc) {
    r->errors++;
    fprintf(stderr, "souk: writing %s failed: %s\n", path, souk_strerror(rc));
  } else {
    r->hours++;
    r->rows += rows;
    printf("  %s: %zu items\n", path, rows);
  }
  sb_summary_free(s);
}

/* The number after "key": in the first bytes of a page (the API writes its
 * header fields first), or -1. */
static int64_t header_num(const char *body, size_t len, const char *key) {
  size_t n = len < 512 ? len : 512;
  size_t kl = strlen(key);
  for (size_t i = 0; i + kl < n; i++) {
    if (memcmp(body + i, key, kl)) continue;
    const char *p = body + i + kl;
    while (p < body + n && (*p == ' ' || *p == ':'))
      p++;
    char *end;
    long long v = strtoll(p, &end, 10);
    return end > p ? v : -1;
  }
  return -1;
}

static void sweep_end(rp_t *r) {
  if (!r->sweep) return;
  sb_engine_sweep_end(r->e, r->sweep, r->total > 0 && r->seen >= r->total);
}

/* One page (body is souk_malloc'd; ownership passes). */
static void rp_page(rp_t *r, char *body, size_t len) {
  bool auctions = header_num(body, len, "\"totalPages\"") >= 0;
  if (auctions) {
    int64_t lu = header_num(body, len, "\"lastUpdated\"");
    if (lu != r->sweep_lu || !r->sweep) {
      sweep_end(r);
      r->sweep++;
      r->sweep_lu = lu;
      r->seen = 0;
      r->total = (int)header_num(body, len, "\"totalPages\"");
    }
    r->seen++;
  }
  int rc = sb_engine_ingest_sync(r->e, auctions ? SB_REQ_PAGE : SB_REQ_ENDED, r->sweep, body, len,
                                 NULL, NULL);
  if (rc)
    r->bad++;
  else if (auctions)
    r->pages++;
  else
    r->ended++;
}

/* Lines of an NDJSON zstd file, each a page. */
static int rp_ndjson_zst(rp_t *r, const char *path) {
  FILE *f = fopen(path, "rb");
  if (!f) return SOUK_EIO;
  ZSTD_DStream *z = ZSTD_createDStream();
  size_t inlen = ZSTD_DStreamInSize(), outlen = ZSTD_DStreamOutSize();
  char *in = souk_malloc(inlen), *out = souk_malloc(outlen);
  souk_buf_t line = {0};
  int rc = 0;
  size_t got;
  while ((got = fread(in, 1, inlen, f)) > 0 && !rc) {
    ZSTD_inBuffer ib = {in, got, 0};
    while (ib.pos < ib.size) {
      ZSTD_outBuffer ob = {out, outlen, 0};
      size_t zr = ZSTD_decompressStream(z, &ob, &ib);
      if (ZSTD_isError(zr)) {
        rc = SOUK_EPARSE;
        break;
      }
      for (size_t i = 0; i < ob.pos; i++) {
        if (out[i] != '\n') {
          souk_buf_putc(&line, out[i]);
          continue;
        }
        if (line.len) {
          size_t n = line.len;
          rp_page(r, souk_buf_steal(&line), n);
        }
      }
    }
  }
  if (line.len) r->bad++; /* a page cut short: the spool was being written */
  souk_buf_free(&line);
  souk_free(in);
  souk_free(out);
  ZSTD_freeDStream(z);
  fclose(f);
  return rc;
}

/* A whole file (gzip'd or not) as one page. */
static int rp_file(rp_t *r, const char *path, bool gz) {
  gzFile f = gzopen(path, "rb"); /* reads plain files as they are too */
  if (!f) return SOUK_EIO;
  (void)gz;
  souk_buf_t b = {0};
  char tmp[65536];
  int n;
  while ((n = gzread(f, tmp, sizeof tmp)) > 0)
    souk_buf_append(&b, tmp, (size_t)n);
  int err = n < 0;
  gzclose(f);
  if (err) {
    souk_buf_free(&b);
    return SOUK_EIO;
  }
  size_t len = b.len;
  rp_page(r, souk_buf_steal(&b), len);
  return 0;
}

static bool ends_with(const char *s, const char *suf) {
  size_t a = strlen(s), b = strlen(suf);
  return a >= b && !strcmp(s + a - b, suf);
}

static int cmp_str(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

static int replay(const char *dir, const char *out) {
  DIR *d = opendir(dir);
  if (!d) {
    fprintf(stderr, "souk: cannot read %s: %s\n", dir, strerror(errno));
    return 1;
  }
  char **names = NULL;
  size_t n = 0, cap = 0;
  struct dirent *de;
  while ((de = readdir(d))) {
    const char *nm = de->d_name;
    if (nm[0] == '.') continue;
    if (!ends_with(nm, ".ndjson.zst") && !ends_with(nm, ".json") && !ends_with(nm, ".json.gz"))
      continue;
    if (n == cap) {
      cap = cap ? cap * 2 : 64;
      names = souk_reallocarray(names, cap, sizeof *names);
    }
    names[n++] = souk_strdup(nm);
  }
  closedir(d);
  qsort(names, n, sizeof *names, cmp_str);
  sb_mkts_conf_t mc;
  sb_sniper_conf_t sc;
  sb_confs(&mc, &sc);
  rp_t r = {.out = out};
  sb_engine_hooks_t h = {.hour_closed = rp_hour, .ud = &r};
  r.e = sb_engine_new(&mc, &sc, &h);
  printf("replaying %zu files from %s into %s\n", n, dir, out);
  for (size_t i = 0; i < n; i++) {
    char path[2048];
    snprintf(path, sizeof path, "%s/%s", dir, names[i]);
    int rc = ends_with(names[i], ".ndjson.zst") ? rp_ndjson_zst(&r, path)
                                                : rp_file(&r, path, ends_with(names[i], ".gz"));
    if (rc) {
      r.errors++;
      fprintf(stderr, "souk: %s: %s\n", path, souk_strerror(rc));
    }
    r.files++;
    souk_free(names[i]);
  }
  souk_free(names);
  sweep_end(&r);
  /* The last hour, as far as the pages go. */
  sb_mkts_stats_t ms;
  sb_mkts_stats(sb_engine_store(r.e), &ms);
  if (ms.open_hour) {
    sb_summary_t *s = sb_mkts_open_summary(sb_engine_store(r.e));
    if (s->n)
      rp_hour(&r, s);
    else
      sb_summary_free(s);
  }
  sb_engine_stats_t es;
  sb_engine_stats(r.e, &es);
  printf("replay: %zu files, %zu auction pages (%" PRIu64 " auctions, %" PRIu64
         " distinct), %zu auctions_ended pages (%" PRIu64 " sales), %zu unreadable; %zu hourly "
         "summaries written (%zu rows)%s\n",
         r.files, r.pages, es.auctions_seen, es.auctions_new, r.ended, es.sales_new, r.bad, r.hours,
         r.rows, r.errors ? ", with errors" : "");
  sb_engine_free(r.e);
  souk_loop_close();
  return r.errors ? 1 : 0;
}

int sb_cli(int argc, char **argv) {
  if (argc >= 2 && argc <= 3 && !strcmp(argv[0], "replay")) {
    if (argc == 3) return replay(argv[1], argv[2]);
    char out[1024];
    if (sb_conf.dir)
      snprintf(out, sizeof out, "%s/summaries", sb_conf.dir);
    else
      snprintf(out, sizeof out, "%s/skyblock/summaries", souk_data_dir());
    return replay(argv[1], out);
  }
  fprintf(stderr, "usage: souk skyblock replay DIR [OUT]\n"
                  "  rebuild the hourly summaries from a spool (raw-*.ndjson.zst) or saved\n"
                  "  pages (*.json, *.json.gz) in DIR; OUT defaults to skyblock.dir/summaries\n");
  return 2;
}
