/* HTTP client: one curl multi handle driven by the libuv loop.
 *
 * libcurl tells us which sockets to watch (CURLMOPT_SOCKETFUNCTION: one
 * uv_poll per socket) and when it next needs a timeout run
 * (CURLMOPT_TIMERFUNCTION: one uv_timer).  The timer function only
 * (re)arms the uv_timer; libcurl is never called from inside its own
 * callbacks.  Both the poll and the timer callbacks hand the event to
 * curl_multi_socket_action and then collect finished transfers with
 * curl_multi_info_read. */
#include "net/trust.h"
#include "souk/alloc.h"
#include "souk/buf.h"
#include "souk/err.h"
#include "souk/http.h"
#include "souk/log.h"
#include "souk/loop.h"

#include <ctype.h>
#include <curl/curl.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <stdbool.h>
#include <string.h>
#include <strings.h>
#include <uv.h>

#define COMP                       "http"
#define DEFAULT_TIMEOUT_MS         30000
#define DEFAULT_CONNECT_TIMEOUT_MS 10000
#define DEFAULT_MAX_RESPONSE       (64u << 20)
/* Bounds on response headers we keep, so a hostile server cannot make us
 * hold megabytes of them. */
#define MAX_HEADERS      256
#define MAX_HEADER_BYTES (128u << 10)

struct souk_http_req {
  struct souk_http_req *prev, *next; /* in-flight list */
  CURL *easy;
  struct curl_slist *slist;
  souk_http_cb cb;
  void *ud;
  souk_buf_t body;
  souk_buf_t hdrs; /* "name\0value\0" pairs of the latest response */
  size_t nhdrs;
  size_t max_bytes;
  uint64_t start_ms;
  bool too_big;
  bool completing; /* its callback is running: cancel is a no-op */
  char method[16];
  char host[128]; /* for log lines: never the path, which may hold tokens */
  char errbuf[CURL_ERROR_SIZE];
};

/* One socket libcurl asked us to watch. */
typedef struct http_sock {
  uv_poll_t poll;
  curl_socket_t fd;
  struct http_sock *prev, *next;
} http_sock_t;

static struct {
  CURLM *multi;
  uv_timer_t *timer;
  bool running;
  bool cleaning; /* inside curl_multi_cleanup */
  unsigned gen;  /* bumped by shutdown so loops notice it happened */
  souk_http_req_t *reqs;
  size_t nreqs;
  http_sock_t *socks;
} g;

/* ---- sockets and the timer --------------------------------------------- */

static void free_handle_cb(uv_handle_t *h) { souk_free(h->data); }

static void sock_close(http_sock_t *k) {
  if (k->prev)
    k->prev->next = k->next;
  else
    g.socks = k->next;
  if (k->next) k->next->prev = k->prev;
  uv_poll_stop(&k->poll);
  uv_close((uv_handle_t *)&k->poll, free_handle_cb);
}

static void check_done(void);

static void poll_cb(uv_poll_t *h, int status, int events) {
  http_sock_t *k = h->data;
  if (!g.multi) return;
  int flags = 0;
  if (status < 0) {
    flags = CURL_CSELECT_ERR;
  } else {
    if (events & UV_READABLE) flags |= CURL_CSELECT_IN;
    if (events & UV_WRITABLE) flags |= CURL_CSELECT_OUT;
  }
  int running;
  /* k may be closed by the socket callback during this call; its memory
   * lives until the close callback, and we do not touch it again. */
  curl_multi_socket_action(g.multi, k->fd, flags, &running);
  check_done();
}

static int socket_fn(CURL *e, curl_socket_t s, int what, void *userp, void *socketp) {
  http_sock_t *k = socketp;
  if (what == CURL_POLL_REMOVE) {
    if (k) {
      sock_close(k);
      if (!g.cleaning) curl_multi_assign(g.multi, s, NULL);
    }
    return 0;
  }
  if (!k) {
    k = souk_calloc(1, sizeof *k);
    k->fd = s;
    if (uv_poll_init_socket(souk_loop(), &k->poll, s) != 0) {
      souk_free(k);
      return -1;
    }
    k->poll.data = k;
    k->next = g.socks;
    if (g.socks) g.socks->prev = k;
    g.socks = k;
    curl_multi_assign(g.multi, s, k);
  }
  int ev = 0;
  if (what & CURL_POLL_IN) ev |= UV_READABLE;
  if (what & CURL_POLL_OUT) ev |= UV_WRITABLE;
  uv_poll_start(&k->poll, ev, poll_cb);
  return 0;
}

static void timer_cb(uv_timer_t *t) {
  if (!g.multi) return;
  int running;
  curl_multi_socket_action(g.multi, CURL_SOCKET_TIMEOUT, 0, &running);
  check_done();
}

/* libcurl's timer function: only arm the uv timer.  Calling back into
 * libcurl from here would re-enter it. */
static int timer_fn(CURLM *m, long timeout_ms, void *userp) {
  if (timeout_ms < 0)
    uv_timer_stop(g.timer);
  else
    uv_timer_start(g.timer, timer_cb, (uint64_t)timeout_ms, 0);
  return 0;
}

/* ---- lifecycle --------------------------------------------------------- */

int souk_http_init(void) {
  if (g.multi) return 0;
  int rc = souk_alloc_init();
  if (rc) return rc;
  g.multi = curl_multi_init();
  if (!g.multi) return SOUK_EIO;
  g.timer = souk_malloc(sizeof *g.timer);
  uv_timer_init(souk_loop(), g.timer);
  g.timer->data = g.timer;
  curl_multi_setopt(g.multi, CURLMOPT_SOCKETFUNCTION, socket_fn);
  curl_multi_setopt(g.multi, CURLMOPT_TIMERFUNCTION, timer_fn);
  curl_multi_setopt(g.multi, CURLMOPT_PIPELINING, (long)CURLPIPE_MULTIPLEX);
  /* Enough idle connections for the handful of hosts souk talks to. */
  curl_multi_setopt(g.multi, CURLMOPT_MAXCONNECTS, 64L);
  g.running = true;
  return 0;
}

static void req_unlink(souk_http_req_t *r) {
  if (r->prev)
    r->prev->next = r->next;
  else
    g.reqs = r->next;
  if (r->next) r->next->prev = r->prev;
  r->prev = r->next = NULL;
  g.nreqs--;
}

static void req_free(souk_http_req_t *r) {
  if (r->easy) curl_easy_cleanup(r->easy);
  curl_slist_free_all(r->slist);
  souk_buf_free(&r->body);
  souk_buf_free(&r->hdrs);
  souk_free(r);
}

static void deliver(souk_http_req_t *r, int err, int status, const char *detail) {
  souk_http_header_t *hv = NULL;
  size_t nh = 0;
  if (err == 0 && r->nhdrs) {
    hv = souk_calloc(r->nhdrs, sizeof *hv);
    const char *p = r->hdrs.data, *end = r->hdrs.data + r->hdrs.len;
    while (p < end && nh < r->nhdrs) {
      hv[nh].name = p;
      p += strlen(p) + 1;
      hv[nh].value = p;
      p += strlen(p) + 1;
      nh++;
    }
  }
  souk_http_resp_t resp = {
      .err = err,
      .status = err ? 0 : status,
      .body = (err == 0 && r->body.data) ? r->body.data : "",
      .body_len = err == 0 ? r->body.len : 0,
      .headers = hv,
      .nheaders = nh,
      .elapsed_ms = souk_now_ms() - r->start_ms,
      .detail = detail ? detail : "",
  };
  r->completing = true;
  if (r->cb) r->cb(&resp, r->ud);
  souk_free(hv);
}

void souk_http_shutdown(void) {
  if (!g.multi) return;
  g.running = false;
  g.gen++;
  while (g.reqs) {
    souk_http_req_t *r = g.reqs;
    req_unlink(r);
    curl_multi_remove_handle(g.multi, r->easy);
    deliver(r, SOUK_ECANCELED, 0, "shutting down");
    req_free(r);
  }
  g.cleaning = true;
  curl_multi_cleanup(g.multi);
  g.cleaning = false;
  g.multi = NULL;
  while (g.socks)
    sock_close(g.socks);
  uv_timer_stop(g.timer);
  uv_close((uv_handle_t *)g.timer, free_handle_cb);
  g.timer = NULL;
}

size_t souk_http_inflight(void) { return g.nreqs; }

/* ---- completion -------------------------------------------------------- */

static int map_curl_error(CURLcode rc, const souk_http_req_t *r) {
  switch (rc) {
  case CURLE_OK:
    return 0;
  case CURLE_OPERATION_TIMEDOUT:
    return SOUK_ETIMEDOUT;
  case CURLE_COULDNT_RESOLVE_HOST:
  case CURLE_COULDNT_RESOLVE_PROXY:
  case CURLE_COULDNT_CONNECT:
  case CURLE_SSL_CONNECT_ERROR:
  case CURLE_PEER_FAILED_VERIFICATION:
  case CURLE_SSL_CERTPROBLEM:
  case CURLE_SSL_CIPHER:
  case CURLE_SSL_CACERT_BADFILE:
    return SOUK_ECONN;
  case CURLE_FILESIZE_EXCEEDED:
    return SOUK_ETOOBIG;
  case CURLE_WRITE_ERROR:
    return r->too_big ? SOUK_ETOOBIG : SOUK_EIO;
  case CURLE_SEND_ERROR:
  case CURLE_RECV_ERROR:
  case CURLE_GOT_NOTHING:
  case CURLE_PARTIAL_FILE:
  case CURLE_HTTP2:
  case CURLE_HTTP2_STREAM:
    return SOUK_ECLOSED;
  case CURLE_WEIRD_SERVER_REPLY:
  case CURLE_BAD_CONTENT_ENCODING:
  case CURLE_TOO_MANY_REDIRECTS:
  case CURLE_UNSUPPORTED_PROTOCOL:
  case CURLE_HTTP_RETURNED_ERROR:
    return SOUK_EPROTO;
  case CURLE_URL_MALFORMAT:
    return SOUK_EINVAL;
  default:
    return SOUK_EIO;
  }
}

static void finish(souk_http_req_t *r, CURLcode rc) {
  req_unlink(r);
  curl_multi_remove_handle(g.multi, r->easy);
  long status = 0;
  curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &status);
  int err = map_curl_error(rc, r);
  const char *detail = r->errbuf[0] ? r->errbuf : (rc ? curl_easy_strerror(rc) : "");
  if (err)
    SOUK_DEBUG(COMP, "%s %s failed: %s (%s)", r->method, r->host, souk_strerror(err), detail);
  else
    SOUK_DEBUG(COMP, "%s %s -> %ld in %llu ms", r->method, r->host, status,
               (unsigned long long)(souk_now_ms() - r->start_ms));
  deliver(r, err, (int)status, detail);
  req_free(r);
}

static void check_done(void) {
  unsigned gen = g.gen;
  CURLMsg *m;
  int left;
  while (g.multi && gen == g.gen && (m = curl_multi_info_read(g.multi, &left))) {
    if (m->msg != CURLMSG_DONE) continue;
    CURL *e = m->easy_handle;
    CURLcode rc = m->data.result;
    char *priv = NULL;
    curl_easy_getinfo(e, CURLINFO_PRIVATE, &priv);
    SOUK_ASSERT(priv);
    finish((souk_http_req_t *)(void *)priv, rc);
  }
}

/* ---- transfer callbacks ----------------------------------------------- */

static size_t write_cb(char *p, size_t size, size_t nmemb, void *ud) {
  souk_http_req_t *r = ud;
  size_t n = size * nmemb;
  if (n > r->max_bytes - r->body.len) {
    r->too_big = true;
    return 0; /* anything but n aborts the transfer with CURLE_WRITE_ERROR */
  }
  souk_buf_append(&r->body, p, n);
  return n;
}

static size_t header_cb(char *p, size_t size, size_t nmemb, void *ud) {
  souk_http_req_t *r = ud;
  size_t n = size * nmemb;
  if (n >= 5 && memcmp(p, "HTTP/", 5) == 0) {
    /* A new status line (after a 100 Continue or a redirect): only the
     * final response's headers are reported. */
    souk_buf_reset(&r->hdrs);
    r->nhdrs = 0;
    return n;
  }
  const char *colon = memchr(p, ':', n);
  if (!colon || colon == p || r->nhdrs >= MAX_HEADERS || r->hdrs.len + n > MAX_HEADER_BYTES)
    return n;
  size_t nl = (size_t)(colon - p);
  while (nl && (p[nl - 1] == ' ' || p[nl - 1] == '\t'))
    nl--;
  const char *v = colon + 1, *end = p + n;
  while (v < end && (*v == ' ' || *v == '\t'))
    v++;
  while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' ' || end[-1] == '\t'))
    end--;
  size_t at = r->hdrs.len;
  souk_buf_append(&r->hdrs, p, nl);
  for (size_t i = at; i < at + nl; i++)
    r->hdrs.data[i] = (char)tolower((unsigned char)r->hdrs.data[i]);
  souk_buf_putc(&r->hdrs, '\0');
  souk_buf_append(&r->hdrs, v, (size_t)(end - v));
  souk_buf_putc(&r->hdrs, '\0');
  r->nhdrs++;
  return n;
}

/* ---- starting requests ------------------------------------------------- */

static bool has_header(const souk_http_opts_t *o, const char *name) {
  size_t n = strlen(name);
  for (size_t i = 0; i < o->nheaders; i++)
    if (strncasecmp(o->headers[i], name, n) == 0 && o->headers[i][n] == ':') return true;
  return false;
}

/* Copy "host[:port]" of url into out, for log lines. */
static void url_host(const char *url, char *out, size_t cap) {
  const char *h = strstr(url, "://");
  h = h ? h + 3 : url;
  size_t n = strcspn(h, "/?#");
  const char *at = memchr(h, '@', n);
  if (at) {
    n -= (size_t)(at + 1 - h);
    h = at + 1;
  }
  if (n >= cap) n = cap - 1;
  memcpy(out, h, n);
  out[n] = '\0';
}

/* CURLOPT_SSL_CTX_FUNCTION: trust the extra CA file (trust.h) beside the
 * system's certificates. */
static CURLcode add_ca_file(CURL *e, void *ssl_ctx, void *ud) {
  const char *file = souk__trust_ca_file();
  if (file && !X509_STORE_load_file(SSL_CTX_get_cert_store(ssl_ctx), file))
    return CURLE_SSL_CACERT_BADFILE;
  return CURLE_OK;
}

int souk_http_request(const souk_http_opts_t *o, souk_http_cb cb, void *ud,
                      souk_http_req_t **out_opt) {
  if (!g.running || !g.multi) return SOUK_ESTOPPED;
  if (!o || !o->url) return SOUK_EINVAL;
  bool tls = strncasecmp(o->url, "https://", 8) == 0;
  if (!tls && strncasecmp(o->url, "http://", 7) != 0) return SOUK_EINVAL;
  if (strpbrk(o->url, "\r\n \t")) return SOUK_EINVAL;
  const char *method = o->method ? o->method : "GET";
  size_t ml = strlen(method);
  if (ml == 0 || ml >= sizeof((souk_http_req_t *)0)->method) return SOUK_EINVAL;
  for (size_t i = 0; i < ml; i++)
    if (!isupper((unsigned char)method[i])) return SOUK_EINVAL;
  for (size_t i = 0; i < o->nheaders; i++) {
    const char *h = o->headers[i];
    if (!h || strpbrk(h, "\r\n") || !strchr(h, ':') || h[0] == ':') return SOUK_EINVAL;
  }
  if (o->body_len && !o->body) return SOUK_EINVAL;

  CURL *e = curl_easy_init();
  if (!e) return SOUK_EIO;
  souk_http_req_t *r = souk_calloc(1, sizeof *r);
  r->easy = e;
  r->cb = cb;
  r->ud = ud;
  r->max_bytes = o->max_response_bytes ? o->max_response_bytes : DEFAULT_MAX_RESPONSE;
  r->start_ms = souk_now_ms();
  memcpy(r->method, method, ml + 1);
  url_host(o->url, r->host, sizeof r->host);

  curl_easy_setopt(e, CURLOPT_URL, o->url);
  curl_easy_setopt(e, CURLOPT_PRIVATE, (char *)r);
  curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(e, CURLOPT_ERRORBUFFER, r->errbuf);
  curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, write_cb);
  curl_easy_setopt(e, CURLOPT_WRITEDATA, r);
  curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, header_cb);
  curl_easy_setopt(e, CURLOPT_HEADERDATA, r);
  curl_easy_setopt(e, CURLOPT_TIMEOUT_MS,
                   (long)(o->timeout_ms ? o->timeout_ms : DEFAULT_TIMEOUT_MS));
  curl_easy_setopt(
      e, CURLOPT_CONNECTTIMEOUT_MS,
      (long)(o->connect_timeout_ms ? o->connect_timeout_ms : DEFAULT_CONNECT_TIMEOUT_MS));
  curl_easy_setopt(e, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_2TLS);
  curl_easy_setopt(e, CURLOPT_ACCEPT_ENCODING, "gzip");
  curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
  curl_easy_setopt(e, CURLOPT_TCP_KEEPIDLE, 60L);
  curl_easy_setopt(e, CURLOPT_TCP_KEEPINTVL, 30L);
  curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(e, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(e, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)r->max_bytes);
  if (o->max_redirects) {
    curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 1L);
    curl_easy_setopt(e, CURLOPT_MAXREDIRS, (long)o->max_redirects);
  }
  /* Over TLS the server may speak HTTP/2: wait for the connection in
   * progress rather than open a second one, so requests share it. */
  if (tls) curl_easy_setopt(e, CURLOPT_PIPEWAIT, 1L);
  /* Look CA certificates up on demand in the hashed directory rather than
   * load Debian's whole bundle, which libcurl would then keep in its
   * cached store for a day (trust.h).  Set for plain http:// too: a
   * redirect may lead to https://. */
  const char *ca_dir = souk__trust_ca_dir();
  curl_easy_setopt(e, CURLOPT_CAINFO, ca_dir ? NULL : souk__trust_ca_bundle());
  curl_easy_setopt(e, CURLOPT_CAPATH, ca_dir);
  if (souk__trust_ca_file()) {
    /* The extra CA goes into this transfer's own store: a cached one
     * (from the bundle) is shared, and must not keep it. */
    curl_easy_setopt(e, CURLOPT_CA_CACHE_TIMEOUT, 0L);
    curl_easy_setopt(e, CURLOPT_SSL_CTX_FUNCTION, add_ca_file);
  }

  bool sends_body =
      o->body || !strcmp(method, "POST") || !strcmp(method, "PUT") || !strcmp(method, "PATCH");
  if (!strcmp(method, "HEAD")) {
    curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
  } else if (sends_body) {
    /* Always send a body (maybe empty) for POST/PUT/PATCH: Discord answers
     * 411 to a PUT without Content-Length. */
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)o->body_len);
    curl_easy_setopt(e, CURLOPT_COPYPOSTFIELDS, o->body_len ? (const char *)o->body : "");
    if (strcmp(method, "POST") != 0) curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method);
  } else if (strcmp(method, "GET") != 0) {
    curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method);
  } else {
    curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
  }

  struct curl_slist *sl = NULL;
  for (size_t i = 0; i < o->nheaders; i++)
    sl = curl_slist_append(sl, o->headers[i]);
  /* No "Expect: 100-continue" round trip, and no form content type that
   * libcurl would otherwise invent for a POST. */
  sl = curl_slist_append(sl, "Expect:");
  if (sends_body && !has_header(o, "Content-Type")) sl = curl_slist_append(sl, "Content-Type:");
  r->slist = sl;
  curl_easy_setopt(e, CURLOPT_HTTPHEADER, sl);

  if (curl_multi_add_handle(g.multi, e) != CURLM_OK) {
    req_free(r);
    return SOUK_EIO;
  }
  r->next = g.reqs;
  if (g.reqs) g.reqs->prev = r;
  g.reqs = r;
  g.nreqs++;
  if (out_opt) *out_opt = r;
  return 0;
}

void souk_http_cancel(souk_http_req_t *r) {
  if (!r || r->completing) return;
  req_unlink(r);
  if (g.multi) curl_multi_remove_handle(g.multi, r->easy);
  req_free(r);
}

const char *souk_http_header(const souk_http_resp_t *resp, const char *name) {
  if (!resp || !name) return NULL;
  for (size_t i = 0; i < resp->nheaders; i++)
    if (strcasecmp(resp->headers[i].name, name) == 0) return resp->headers[i].value;
  return NULL;
}
