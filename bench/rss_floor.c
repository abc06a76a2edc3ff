/**
 * rss_floor: what the shared libraries alone cost in resident memory.
 *
 * One source, built by bench/CMakeLists.txt into one executable per set of
 * libraries (rss_floor_<set>).  Each executable links only its set, sets
 * each library up the way souk does at start (an OpenSSL client context,
 * libcurl's global state and a multi handle, a libuv loop with a zstd
 * decompression context, an SQLite database in WAL mode, a libmicrohttpd daemon on
 * loopback, ...), does nothing else, and prints its VmRSS, RssAnon and
 * RssFile and the mappings that hold the most.  scripts/bench.sh runs them
 * all; the difference between two sets is what a library costs before souk
 * has done any work of its own.
 *
 * The sets are chosen by the FLOOR_* definitions:
 *   FLOOR_TLS     OpenSSL (libssl, libcrypto): what wss:// and Ed25519 need
 *   FLOOR_CURL    libcurl, Debian's build, with every library it depends on
 *   FLOOR_UV      libuv, and libzstd (the gateway's zstd-stream)
 *   FLOOR_SQLITE  SQLite
 *   FLOOR_MHD     libmicrohttpd (Debian's build depends on GnuTLS)
 *   FLOOR_PQ      libpq
 *   FLOOR_REDIS   hiredis
 *   FLOOR_YAML    libyaml and zlib
 *   FLOOR_DEFLATE libdeflate (SkyBlock's item decoding; souk makes a
 *                 decompressor only when it decodes, so this only links it)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifdef FLOOR_TLS
#include <openssl/ssl.h>
#endif
#ifdef FLOOR_CURL
#include <curl/curl.h>
#endif
#ifdef FLOOR_UV
#include <uv.h>
#include <zstd.h>
#endif
#ifdef FLOOR_SQLITE
#include <sqlite3.h>
#endif
#ifdef FLOOR_MHD
#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#endif
#ifdef FLOOR_PQ
#include <libpq-fe.h>
#endif
#ifdef FLOOR_REDIS
#include <hiredis/hiredis.h>
#endif
#ifdef FLOOR_YAML
#include <yaml.h>
#include <zlib.h>
#endif
#ifdef FLOOR_DEFLATE
#include <libdeflate.h>
#endif

#ifndef FLOOR_NAME
#define FLOOR_NAME "rss_floor"
#endif

/** A "Key:   N kB" field of /proc/self/status, in kB, or -1. */
static long status_kb(const char *key) {
  FILE *f = fopen("/proc/self/status", "r");
  char line[256];
  long v = -1;
  size_t n = strlen(key);
  if (!f) return -1;
  while (fgets(line, sizeof line, f)) {
    if (strncmp(line, key, n) == 0 && line[n] == ':') {
      v = atol(line + n + 1);
      break;
    }
  }
  fclose(f);
  return v;
}

struct mapping {
  char name[128];
  long kb;
};

/** Every mapping's RSS, summed by file (by base name), [heap], [stack] and
 * [anon]; returns how many of all[max] were filled. */
static size_t all_mappings(struct mapping *all, size_t max) {
  size_t n = 0;
  char line[512], cur[128] = "[anon]";
  FILE *f = fopen("/proc/self/smaps", "r");
  if (!f) return 0;
  while (fgets(line, sizeof line, f)) {
    unsigned long a, b;
    char perms[8], path[400] = "";
    long kb;
    if (sscanf(line, "%lx-%lx %7s %*s %*s %*s %399s", &a, &b, perms, path) >= 3 &&
        strchr(line, '-') < strchr(line, ' ')) {
      const char *base = path[0] ? strrchr(path, '/') : NULL;
      snprintf(cur, sizeof cur, "%.127s", path[0] ? (base ? base + 1 : path) : "[anon]");
    } else if (sscanf(line, "Rss: %ld kB", &kb) == 1) {
      size_t i;
      for (i = 0; i < n && strcmp(all[i].name, cur) != 0; i++) {
      }
      if (i == n) {
        if (n == max) continue;
        snprintf(all[n].name, sizeof all[n].name, "%s", cur);
        all[n++].kb = 0;
      }
      all[i].kb += kb;
    }
  }
  fclose(f);
  return n;
}

/** The three mappings (by file, or [heap], [anon]) with the most RSS. */
static void top_mappings(struct mapping top[3]) {
  struct mapping all[128];
  size_t n = all_mappings(all, sizeof all / sizeof all[0]);
  memset(top, 0, 3 * sizeof *top);
  for (int k = 0; k < 3; k++) {
    size_t best = n;
    for (size_t i = 0; i < n; i++)
      if (all[i].kb > 0 && (best == n || all[i].kb > all[best].kb)) best = i;
    if (best == n) break;
    top[k] = all[best];
    all[best].kb = 0;
  }
}


#ifdef FLOOR_MHD
static enum MHD_Result mhd_cb(void *cls, struct MHD_Connection *c, const char *url,
                              const char *method, const char *version, const char *data,
                              size_t *size, void **con_cls) {
  return MHD_NO;
}
#endif

static int __attribute__((unused)) fail(const char *what) {
  fprintf(stderr, "%s: %s failed\n", FLOOR_NAME, what);
  return 1;
}

int main(int argc, char **argv) {
  /* --mappings: after the summary line, one line per mapping ("name kB"),
   * so the gateway benchmark can say in which mappings souk's own memory
   * (its RSS minus this floor's) lies. */
  int mappings = argc > 1 && strcmp(argv[1], "--mappings") == 0;
#ifdef FLOOR_TLS
  /* What souk's WebSocket client sets up (src/net/ws.c): the library and
   * a client context that looks CA certificates up on demand in the hashed
   * system directory instead of parsing the whole bundle. */
  if (!OPENSSL_init_ssl(0, NULL)) return fail("OPENSSL_init_ssl");
  SSL_CTX *ssl = SSL_CTX_new(TLS_client_method());
  if (!ssl) return fail("SSL_CTX_new");
  if (SSL_CTX_load_verify_dir(ssl, X509_get_default_cert_dir()) != 1)
    return fail("SSL_CTX_load_verify_dir");
#endif
#ifdef FLOOR_CURL
  if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) return fail("curl_global_init");
  CURLM *multi = curl_multi_init();
  CURL *easy = curl_easy_init();
  if (!multi || !easy) return fail("curl_multi_init");
  curl_easy_setopt(easy, CURLOPT_URL, "https://discord.com/api/v10/gateway/bot");
#endif
#ifdef FLOOR_UV
  uv_loop_t loop;
  if (uv_loop_init(&loop) != 0) return fail("uv_loop_init");
  ZSTD_DCtx *zd = ZSTD_createDCtx();
  if (!zd) return fail("ZSTD_createDCtx");
#endif
#ifdef FLOOR_SQLITE
  char dbpath[] = "/tmp/rss_floor_XXXXXX";
  int fd = mkstemp(dbpath);
  if (fd < 0) return fail("mkstemp");
  close(fd);
  sqlite3 *db;
  if (sqlite3_open(dbpath, &db) != SQLITE_OK ||
      sqlite3_exec(db,
                   "PRAGMA journal_mode=WAL; CREATE TABLE kv(k TEXT PRIMARY KEY, v BLOB);"
                   "INSERT INTO kv VALUES('a', x'00'); SELECT v FROM kv WHERE k='a';",
                   NULL, NULL, NULL) != SQLITE_OK)
    return fail("sqlite3");
#endif
#ifdef FLOOR_MHD
  struct sockaddr_in sin;
  memset(&sin, 0, sizeof sin);
  sin.sin_family = AF_INET;
  sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  struct MHD_Daemon *mhd =
      MHD_start_daemon(MHD_USE_EPOLL, 0, NULL, NULL, mhd_cb, NULL, MHD_OPTION_SOCK_ADDR,
                       (struct sockaddr *)&sin, MHD_OPTION_END);
  if (!mhd) return fail("MHD_start_daemon");
#endif
#ifdef FLOOR_PQ
  if (PQlibVersion() <= 0) return fail("PQlibVersion");
#endif
#ifdef FLOOR_REDIS
  redisReader *reader = redisReaderCreate();
  if (!reader) return fail("redisReaderCreate");
#endif
#ifdef FLOOR_YAML
  yaml_parser_t parser;
  z_stream zs;
  memset(&zs, 0, sizeof zs);
  if (!yaml_parser_initialize(&parser) || inflateInit(&zs) != Z_OK) return fail("yaml/zlib");
#endif
#ifdef FLOOR_DEFLATE
  /* Called so that the link is kept (--as-needed) and the library's
   * start-up pages are touched, as souk's are. */
  if (libdeflate_deflate_compress_bound(NULL, 1) == 0) return fail("libdeflate");
#endif

  struct mapping top[3];
  top_mappings(top);
  printf("%-22s %7.2f %7.2f %7.2f   ", FLOOR_NAME, status_kb("VmRSS") / 1024.0,
         status_kb("RssAnon") / 1024.0, status_kb("RssFile") / 1024.0);
  for (int k = 0; k < 3 && top[k].kb > 0; k++)
    printf("%s%s %.2f", k ? ", " : "", top[k].name, top[k].kb / 1024.0);
  printf("\n");
  if (mappings) {
    struct mapping all[128];
    size_t n = all_mappings(all, sizeof all / sizeof all[0]);
    for (size_t i = 0; i < n; i++)
      if (all[i].kb > 0) printf("%s %ld\n", all[i].name, all[i].kb);
  }

#ifdef FLOOR_YAML
  inflateEnd(&zs);
  yaml_parser_delete(&parser);
#endif
#ifdef FLOOR_REDIS
  redisReaderFree(reader);
#endif
#ifdef FLOOR_MHD
  MHD_stop_daemon(mhd);
#endif
#ifdef FLOOR_SQLITE
  sqlite3_close(db);
  unlink(dbpath);
  char side[sizeof dbpath + 8];
  snprintf(side, sizeof side, "%s-wal", dbpath);
  unlink(side);
  snprintf(side, sizeof side, "%s-shm", dbpath);
  unlink(side);
#endif
#ifdef FLOOR_UV
  ZSTD_freeDCtx(zd);
  uv_run(&loop, UV_RUN_NOWAIT);
  uv_loop_close(&loop);
#endif
#ifdef FLOOR_CURL
  curl_easy_cleanup(easy);
  curl_multi_cleanup(multi);
  curl_global_cleanup();
#endif
#ifdef FLOOR_TLS
  SSL_CTX_free(ssl);
#endif
  return 0;
}
