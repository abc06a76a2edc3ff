/* WebSocket client: libwebsockets 4.1 running on souk's own libuv loop.
 *
 * Implementation choice: libwebsockets (lws) with LWS_SERVER_OPTION_LIBUV
 * and souk_loop() passed as a foreign loop, as DESIGN.md records.  lws does
 * the framing, masking, ping/pong, TLS and the closing handshake; this file
 * adds what lws 4.1 lacks or does in a way a daemon cannot use:
 *
 * - DNS: lws resolves with a blocking getaddrinfo(), which would stall the
 *   loop thread for every reconnect.  We resolve with uv_getaddrinfo() on
 *   the thread pool first and hand lws the numeric address, keeping the
 *   host name for the Host header and TLS SNI / certificate checks.
 * - Memory: lws sizes its fd tables from `ulimit -n` unless told otherwise,
 *   which costs hundreds of KiB for nothing; fd_limit_per_thread keeps them
 *   small (lws then looks fds up by a linear scan, fine for a handful).
 *   For wss we pass our own client SSL_CTX that looks CA certificates up
 *   lazily in the hashed system directory instead of parsing the whole
 *   bundle into memory at start-up (about a megabyte of RSS).
 * - Writes: lws allows one lws_write() per WRITEABLE callback, so outgoing
 *   messages are queued and written one per callback.
 * - Lifetime: lws reports the end of a connection through several
 *   callbacks depending on when it ends; we fold them into one on_close
 *   called exactly once, after which the handle is freed.
 * - Abort: lws has no "drop the TCP connection" call; closing a wsi lets it
 *   try to send a close frame first.  We shut the socket down underneath it,
 *   so the peer sees the connection drop (the Discord gateway keeps the
 *   session resumable then), and lws notices the dead socket at once.
 * - Closing handshake: Debian's lws is built with _DEBUG, and its libuv
 *   "repeat close" self-test kills the socket before lws's own close frame
 *   is written, so we write the close frame ourselves (see
 *   send_close_frame) and wait for the peer's answer with a timeout.
 * - Shutdown: lws_context_destroy() must not run inside an lws callback, so
 *   a shutdown requested from one is deferred to a zero-delay timer.  With a
 *   foreign loop lws 4.1 only closes its libuv handles on the first
 *   lws_context_destroy() and frees the context on a second call once they
 *   are closed; an idle handle watches for that (see finisher_cb), so after
 *   shutdown the loop runs dry by itself with nothing leaked.
 *
 * Measured here (loopback, no TLS session yet): creating the context costs
 * about 1.2 MB of RSS, almost all OpenSSL's client context (shared in
 * practice with libcurl's); the first connection about 230 KB (libuv's
 * resolver threads among it), each further idle connection 6-9 KB. */
#include "net/trust.h"
#include "net/ws.h"

#include "souk/alloc.h"
#include "souk/buf.h"
#include "souk/err.h"
#include "souk/log.h"
#include "souk/loop.h"
#include "souk/url.h"

#include <arpa/inet.h>
#include <libwebsockets.h>
#include <netdb.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define WS_LOG                 "ws"
#define WS_DEFAULT_MAX_MESSAGE ((size_t)16 << 20)
/* A receive buffer that grew past this for one large message (a READY of
 * a big bot, say) is released afterwards instead of being kept forever. */
#define WS_RX_KEEP_MAX ((size_t)256 << 10)
/* Seconds the closing handshake may take (waiting for the socket to be
 * writable, then for the peer's close frame) before the socket is
 * dropped. */
#define WS_CLOSE_TIMEOUT_S 3
/* lws_write() opcode for a close frame: lws 4.1 still handles it
 * (lws_close_reason() uses it internally) but no longer names it in its
 * public enum. */
#define WS_LWS_WRITE_CLOSE ((enum lws_write_protocol)4)

typedef enum ws_state {
  WS_RESOLVING,  /* uv_getaddrinfo in flight */
  WS_CONNECTING, /* lws is connecting / handshaking */
  WS_OPEN,       /* established */
  WS_CLOSING,    /* close or abort requested, waiting for lws */
} ws_state_t;

typedef struct ws_out {
  struct ws_out *next;
  size_t len;
  bool binary;
  unsigned char buf[]; /* LWS_PRE bytes of headroom, then the payload */
} ws_out_t;

struct souk_ws {
  souk_ws_cbs_t cbs;
  void *ud;
  ws_state_t state;
  souk_url_t url;
  char *host_hdr; /* host, or host:port for a non-default port */
  uv_getaddrinfo_t gai;
  struct lws *wsi;
  bool opened;     /* on_open was delivered */
  bool abort_req;  /* drop the connection rather than close it */
  int close_code;  /* code we asked for, 0 if none */
  bool close_sent; /* our close frame is written */
  char close_reason[124];
  int peer_code; /* code from the peer's close frame, 0 if none */
  char peer_reason[124];
  ws_out_t *out_head, *out_tail;
  size_t out_n;
  souk_buf_t rx;
  bool rx_binary;
  bool rx_skip; /* the message being received is too big: discard it */
  size_t max_message;
  souk_ws_t *prev, *next; /* live list, for shutdown */
};

static struct {
  struct lws_context *ctx;
  struct lws_context *dying; /* destroyed once, waiting for its handles */
  uv_handle_t *statics[8];   /* lws's own handles on the loop */
  size_t nstatic;
  uv_idle_t *finisher; /* completes the destruction of dying */
  unsigned finisher_spins;
  SSL_CTX *ssl_ctx;
  souk_ws_t *live;
  size_t nlive;
  int in_lws;    /* depth of lws callbacks on the stack */
  bool stopping; /* shutdown in progress */
  uv_timer_t *defer;
} g;

static void live_add(souk_ws_t *ws) {
  ws->prev = NULL;
  ws->next = g.live;
  if (g.live) g.live->prev = ws;
  g.live = ws;
  g.nlive++;
}

static void live_del(souk_ws_t *ws) {
  if (ws->prev)
    ws->prev->next = ws->next;
  else
    g.live = ws->next;
  if (ws->next) ws->next->prev = ws->prev;
  ws->prev = ws->next = NULL;
  g.nlive--;
}

static void out_clear(souk_ws_t *ws) {
  ws_out_t *o = ws->out_head;
  while (o) {
    ws_out_t *n = o->next;
    souk_free(o);
    o = n;
  }
  ws->out_head = ws->out_tail = NULL;
  ws->out_n = 0;
}

/* Report the end of the connection once and free the handle. */
static void finish(souk_ws_t *ws, int code, const char *reason) {
  live_del(ws);
  if (ws->wsi) lws_set_opaque_user_data(ws->wsi, NULL);
  ws->wsi = NULL;
  ws->cbs.on_close(ws, ws->ud, code, reason ? reason : "");
  out_clear(ws);
  souk_buf_free(&ws->rx);
  souk_url_free(&ws->url);
  souk_free(ws->host_hdr);
  souk_free(ws);
}

/* The code to report when lws says the connection is gone. */
static void finish_closed(souk_ws_t *ws, const char *fallback_reason) {
  if (ws->peer_code)
    finish(ws, ws->peer_code, ws->peer_reason);
  else if (ws->close_code && !ws->abort_req)
    finish(ws, ws->close_code, ws->close_reason);
  else
    finish(ws, SOUK_WS_ABNORMAL, ws->abort_req ? "aborted" : fallback_reason);
}

/* Drop the TCP connection under lws: shutdown() makes the socket readable
 * with EOF and fails any write, so lws closes the wsi on its next service
 * without a close frame reaching the peer.  The kill timeout is a backstop
 * in case no event is delivered. */
static void wsi_drop(struct lws *wsi) {
  lws_sockfd_type fd = lws_get_socket_fd(wsi);
  if (fd >= 0) shutdown(fd, SHUT_RDWR);
  lws_set_timeout(wsi, PENDING_TIMEOUT_CLOSE_SEND, LWS_TO_KILL_ASYNC);
}

static void rx_reset(souk_ws_t *ws) {
  if (ws->rx.cap > WS_RX_KEEP_MAX)
    souk_buf_free(&ws->rx);
  else
    souk_buf_reset(&ws->rx);
  ws->rx_skip = false;
}

static int on_receive(souk_ws_t *ws, struct lws *wsi, const void *in, size_t len) {
  if (ws->state != WS_OPEN) return 0;
  bool first = lws_is_first_fragment(wsi), last = lws_is_final_fragment(wsi) &&
                                                    lws_remaining_packet_payload(wsi) == 0;
  /* The common case, a whole message in one frame and one read, goes to
   * the callback straight from lws's buffer without a copy. */
  if (first && last && len <= ws->max_message) {
    rx_reset(ws);
    if (ws->cbs.on_message) ws->cbs.on_message(ws, ws->ud, in ? in : "", len,
                                               lws_frame_is_binary(wsi) != 0);
    return 0;
  }
  if (first) {
    rx_reset(ws);
    ws->rx_binary = lws_frame_is_binary(wsi) != 0;
  }
  if (!ws->rx_skip) {
    if (len > ws->max_message || ws->rx.len > ws->max_message - len) {
      SOUK_WARN(WS_LOG, "incoming message over %zu bytes: closing", ws->max_message);
      ws->rx_skip = true;
      souk_buf_free(&ws->rx);
      souk_ws_close(ws, 1009, "message too big");
      return 0;
    }
    souk_buf_append(&ws->rx, in, len);
  }
  if (last) {
    if (!ws->rx_skip && ws->cbs.on_message)
      ws->cbs.on_message(ws, ws->ud, ws->rx.data ? ws->rx.data : "", ws->rx.len, ws->rx_binary);
    /* The callback may have closed the connection, but ws stays valid
     * until lws reports the close, so resetting is safe. */
    rx_reset(ws);
  }
  return 0;
}

/* Our closing handshake.  lws's own way (lws_close_reason() and returning
 * -1 from WRITEABLE) cannot be used with Debian's lws: it is built with
 * _DEBUG, whose libuv "repeat close" self-test closes the wsi a second time
 * at once, which kills the socket before the close frame is written.  So
 * we write the close frame ourselves and keep the connection until the
 * peer answers with its own (see LWS_CALLBACK_WS_PEER_INITIATED_CLOSE) or
 * the timeout set in souk_ws_close() fires. */
static int send_close_frame(souk_ws_t *ws, struct lws *wsi) {
  unsigned char buf[LWS_PRE + 2 + sizeof ws->close_reason];
  size_t rl = strlen(ws->close_reason);
  buf[LWS_PRE] = (unsigned char)(ws->close_code >> 8);
  buf[LWS_PRE + 1] = (unsigned char)(ws->close_code & 0xff);
  memcpy(buf + LWS_PRE + 2, ws->close_reason, rl);
  ws->close_sent = true;
  if (lws_write(wsi, buf + LWS_PRE, 2 + rl, WS_LWS_WRITE_CLOSE) < 0) return -1;
  return 0;
}

static int on_writeable(souk_ws_t *ws, struct lws *wsi) {
  if (ws->abort_req) return -1;
  ws_out_t *o = ws->out_head;
  if (ws->state == WS_CLOSING) {
    if (ws->peer_code || ws->close_sent || !ws->close_code) return 0;
    /* Messages queued before the close go out first. */
    if (!o) return send_close_frame(ws, wsi);
  }
  if (!o) return 0;
  ws->out_head = o->next;
  if (!ws->out_head) ws->out_tail = NULL;
  ws->out_n--;
  int n = lws_write(wsi, o->buf + LWS_PRE, o->len, o->binary ? LWS_WRITE_BINARY : LWS_WRITE_TEXT);
  souk_free(o);
  if (n < 0) {
    SOUK_DEBUG(WS_LOG, "write failed: dropping the connection");
    return -1;
  }
  if (ws->out_head || ws->state == WS_CLOSING) lws_callback_on_writable(wsi);
  return 0;
}

static int ws_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                       size_t len) {
  souk_ws_t *ws = wsi ? lws_get_opaque_user_data(wsi) : NULL;
  if (!ws) return 0;
  int rc = 0;
  g.in_lws++;
  switch (reason) {
  case LWS_CALLBACK_CLIENT_ESTABLISHED:
    if (ws->state == WS_CONNECTING) {
      ws->state = WS_OPEN;
      ws->opened = true;
      if (ws->cbs.on_open) ws->cbs.on_open(ws, ws->ud);
      if (ws->state == WS_OPEN && ws->out_head) lws_callback_on_writable(wsi);
    } else if (ws->state == WS_CLOSING) {
      rc = -1; /* aborted while the handshake was in flight */
    }
    break;
  case LWS_CALLBACK_CLIENT_RECEIVE:
    rc = on_receive(ws, wsi, in, len);
    break;
  case LWS_CALLBACK_CLIENT_WRITEABLE:
    rc = on_writeable(ws, wsi);
    break;
  case LWS_CALLBACK_WS_PEER_INITIATED_CLOSE: {
    const unsigned char *p = in;
    if (len >= 2) {
      ws->peer_code = (p[0] << 8) | p[1];
      size_t n = len - 2;
      if (n >= sizeof ws->peer_reason) n = sizeof ws->peer_reason - 1;
      memcpy(ws->peer_reason, p + 2, n);
      ws->peer_reason[n] = '\0';
    } else {
      ws->peer_code = 1005; /* RFC 6455: no status code present */
    }
    /* Answering our own close: done, drop the socket (returning non-zero
     * stops lws from echoing a second close frame).  Otherwise returning 0
     * lets lws echo the peer's frame and close. */
    if (ws->close_sent) rc = 1;
    ws->state = WS_CLOSING;
    break;
  }
  case LWS_CALLBACK_CLIENT_CONNECTION_ERROR: {
    char why[160];
    snprintf(why, sizeof why, "connect failed: %s", in ? (const char *)in : "unknown error");
    if (ws->abort_req || ws->close_code)
      finish(ws, SOUK_WS_ABNORMAL, "aborted");
    else
      finish(ws, SOUK_WS_ABNORMAL, why);
    break;
  }
  case LWS_CALLBACK_CLIENT_CLOSED:
    finish_closed(ws, "connection lost");
    break;
  case LWS_CALLBACK_WSI_DESTROY:
    /* Backstop: every path above should have reported already. */
    finish_closed(ws, ws->opened ? "connection lost" : "connect failed");
    break;
  default:
    break;
  }
  g.in_lws--;
  return rc;
}

static const struct lws_protocols ws_protocols[] = {
    {"souk-ws", ws_callback, 0, 16384, 0, NULL, 0},
    {NULL, NULL, 0, 0, 0, NULL, 0},
};

static void lws_log_emit(int level, const char *line) {
  size_t n = strlen(line);
  while (n && (line[n - 1] == '\n' || line[n - 1] == '\r'))
    n--;
  if (level & LLL_ERR)
    SOUK_WARN(WS_LOG, "lws: %.*s", (int)n, line);
  else
    SOUK_INFO(WS_LOG, "lws: %.*s", (int)n, line);
}

/* A client SSL_CTX whose trust store looks CA certificates up on demand in
 * the hashed system directory (see trust.h): the gateway needs one of the
 * ~140 certificates of the bundle.  A file is loaded only when asked for
 * (souk_trust_set_ca_file) or when there is no usable directory. */
static SSL_CTX *client_ssl_ctx(void) {
  SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
  if (!ctx) return NULL;
  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  const char *dir = souk_trust_ca_dir();
  const char *file = souk_trust_ca_file();
  int ok = 1;
  if (dir)
    ok = SSL_CTX_load_verify_dir(ctx, dir);
  else
    ok = SSL_CTX_load_verify_file(ctx, souk_trust_ca_bundle());
  if (ok && file) ok = SSL_CTX_load_verify_file(ctx, file);
  if (!ok) {
    SSL_CTX_free(ctx);
    return NULL;
  }
  SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
  return ctx;
}

/* uv_walk helpers that tell lws's handles from everyone else's: the
 * handles on the loop before lws_create_context() are listed first. */
typedef struct handle_set {
  uv_handle_t **v;
  size_t n, cap;
} handle_set_t;

static void mark_before_cb(uv_handle_t *h, void *arg) {
  handle_set_t *set = arg;
  if (set->n == set->cap) {
    set->cap = set->cap ? set->cap * 2 : 32;
    set->v = souk_reallocarray(set->v, set->cap, sizeof *set->v);
  }
  set->v[set->n++] = h;
}

static void collect_new_cb(uv_handle_t *h, void *arg) {
  handle_set_t *set = arg;
  for (size_t i = 0; i < set->n; i++)
    if (set->v[i] == h) return;
  if (g.nstatic < sizeof g.statics / sizeof g.statics[0]) g.statics[g.nstatic++] = h;
}

int souk_ws_global_init(void) {
  if (g.ctx) return 0;
  /* A previous context still closing its handles must finish first: lws
   * keeps per-process state that two contexts on one loop would share. */
  if (g.stopping || g.dying) return SOUK_ESTOPPED;
  /* SOUK_WS_LWS_LOG=<lws level bits> turns on lws's own debug lines. */
  const char *lv = getenv("SOUK_WS_LWS_LOG");
  lws_set_log_level(lv ? atoi(lv) : (LLL_ERR | LLL_WARN), lws_log_emit);
  g.ssl_ctx = client_ssl_ctx();
  if (!g.ssl_ctx) {
    SOUK_ERROR(WS_LOG, "cannot create the TLS client context");
    return SOUK_EIO;
  }
  void *loops[1] = {souk_loop()};
  struct lws_context_creation_info info;
  memset(&info, 0, sizeof info);
  info.port = CONTEXT_PORT_NO_LISTEN;
  info.protocols = ws_protocols;
  info.options = LWS_SERVER_OPTION_LIBUV | LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
  info.foreign_loops = loops;
  info.provided_client_ssl_ctx = g.ssl_ctx;
  /* Our sockets, lws's cancel pipe and some slack: the gateway uses one
   * socket per shard. */
  info.fd_limit_per_thread = 64;
  info.count_threads = 1;
  info.timeout_secs = 15;
  info.connect_timeout_secs = 15;
  info.gid = -1;
  info.uid = -1;
  /* The handles lws creates now are the ones it closes last on
   * destruction; remember them to know when that is complete. */
  handle_set_t before = {0};
  uv_walk(souk_loop(), mark_before_cb, &before);
  g.ctx = lws_create_context(&info);
  g.nstatic = 0;
  uv_walk(souk_loop(), collect_new_cb, &before);
  souk_free(before.v);
  SOUK_DEBUG(WS_LOG, "libwebsockets context created with %zu libuv handles", g.nstatic);
  if (!g.ctx) {
    SSL_CTX_free(g.ssl_ctx);
    g.ssl_ctx = NULL;
    SOUK_ERROR(WS_LOG, "cannot create the libwebsockets context");
    return SOUK_EIO;
  }
  return 0;
}

static void handle_free_cb(uv_handle_t *h) { souk_free(h); }

static void find_handle_cb(uv_handle_t *h, void *arg) {
  uv_handle_t **want = arg;
  if (h == *want) *want = NULL;
}

/* True while any of lws's own libuv handles is still on the loop. */
static bool lws_handles_remain(void) {
  for (size_t i = 0; i < g.nstatic; i++) {
    uv_handle_t *h = g.statics[i];
    uv_walk(souk_loop(), find_handle_cb, &h);
    if (!h) return true;
  }
  return false;
}

/* Runs once per loop iteration after lws_context_destroy() until lws has
 * closed all its handles, then completes the destruction.  With a foreign
 * loop lws 4.1 only closes its handles on the first lws_context_destroy()
 * and frees the context on a second call, which must come after the close
 * callbacks ran (an idle handle keeps the loop from blocking meanwhile). */
static void finisher_cb(uv_idle_t *idle) {
  /* The handles close within an iteration or two; if lws ever kept one
   * open, stop spinning after a while and leave the context behind. */
  if (lws_handles_remain() && ++g.finisher_spins < 10000) return;
  if (g.finisher_spins >= 10000) {
    SOUK_WARN(WS_LOG, "libwebsockets did not close its handles: context not freed");
    g.dying = NULL;
  }
  g.finisher_spins = 0;
  uv_idle_stop(idle);
  uv_close((uv_handle_t *)idle, handle_free_cb);
  g.finisher = NULL;
  if (g.dying) lws_context_destroy(g.dying);
  g.dying = NULL;
  g.nstatic = 0;
  if (g.ssl_ctx) SSL_CTX_free(g.ssl_ctx);
  g.ssl_ctx = NULL;
  g.stopping = false;
}

static void destroy_now(void) {
  if (g.ctx) {
    lws_context_destroy(g.ctx);
    g.dying = g.ctx;
    g.ctx = NULL;
  }
  /* Connections lws did not report while tearing down (there should be
   * none) still get their on_close. */
  souk_ws_t *next;
  for (souk_ws_t *ws = g.live; ws; ws = next) {
    next = ws->next;
    /* A resolution still in flight reports from its own callback. */
    if (ws->state != WS_RESOLVING) finish(ws, SOUK_WS_ABNORMAL, "shutdown");
  }
  g.finisher = souk_malloc(sizeof *g.finisher);
  uv_idle_init(souk_loop(), g.finisher);
  uv_idle_start(g.finisher, finisher_cb);
}

static void defer_cb(uv_timer_t *t) {
  uv_close((uv_handle_t *)t, handle_free_cb);
  g.defer = NULL;
  destroy_now();
}

void souk_ws_global_shutdown(void) {
  if (g.stopping) return;
  if (!g.ctx && !g.live) return;
  g.stopping = true;
  /* Resolutions in flight are cancelled; their callbacks report. */
  for (souk_ws_t *ws = g.live; ws; ws = ws->next) {
    if (ws->state == WS_RESOLVING) {
      ws->abort_req = true;
      uv_cancel((uv_req_t *)&ws->gai);
    }
  }
  if (g.in_lws) {
    g.defer = souk_malloc(sizeof *g.defer);
    uv_timer_init(souk_loop(), g.defer);
    uv_timer_start(g.defer, defer_cb, 0, 0);
    return;
  }
  destroy_now();
}

static void start_lws(souk_ws_t *ws, const char *ip) {
  struct lws_client_connect_info ci;
  memset(&ci, 0, sizeof ci);
  ci.context = g.ctx;
  ci.address = ip;
  ci.port = ws->url.port;
  ci.ssl_connection = ws->url.tls ? LCCSCF_USE_SSL : 0;
  ci.path = ws->url.path;
  ci.host = ws->host_hdr;
  ci.origin = NULL;
  ci.protocol = NULL;
  ci.local_protocol_name = ws_protocols[0].name;
  ci.opaque_user_data = ws;
  ci.pwsi = &ws->wsi;
  ws->state = WS_CONNECTING;
  g.in_lws++;
  struct lws *wsi = lws_client_connect_via_info(&ci);
  g.in_lws--;
  /* lws may have failed synchronously, reporting CONNECTION_ERROR (then
   * ws is already freed and no longer on the live list) or not. */
  if (!wsi) {
    for (souk_ws_t *p = g.live; p; p = p->next)
      if (p == ws) {
        ws->wsi = NULL;
        finish(ws, SOUK_WS_ABNORMAL, "connect failed");
        return;
      }
  }
}

static void gai_cb(uv_getaddrinfo_t *req, int status, struct addrinfo *res) {
  souk_ws_t *ws = req->data;
  char ip[INET6_ADDRSTRLEN] = "";
  if (status == 0) {
    /* Prefer IPv4: a host with a broken IPv6 route would otherwise cost a
     * connect timeout on every reconnect, and lws takes one address. */
    const struct addrinfo *pick = NULL;
    for (const struct addrinfo *a = res; a && !pick; a = a->ai_next)
      if (a->ai_family == AF_INET) pick = a;
    for (const struct addrinfo *a = res; a && !pick; a = a->ai_next)
      if (a->ai_family == AF_INET6) pick = a;
    if (pick && pick->ai_family == AF_INET)
      uv_ip4_name((const struct sockaddr_in *)pick->ai_addr, ip, sizeof ip);
    else if (pick)
      uv_ip6_name((const struct sockaddr_in6 *)pick->ai_addr, ip, sizeof ip);
  }
  if (res) uv_freeaddrinfo(res);
  if (ws->abort_req || ws->close_code || !g.ctx || g.stopping) {
    finish(ws, SOUK_WS_ABNORMAL, g.ctx ? "aborted" : "shutdown");
    return;
  }
  if (status != 0 || !*ip) {
    char why[160];
    snprintf(why, sizeof why, "cannot resolve %s: %s", ws->url.host,
             status ? uv_strerror(status) : "no address");
    finish(ws, SOUK_WS_ABNORMAL, why);
    return;
  }
  start_lws(ws, ip);
}

int souk_ws_connect(const char *url, const souk_ws_cbs_t *cbs, void *ud, souk_ws_t **out) {
  if (!url || !cbs || !cbs->on_close || !out) return SOUK_EINVAL;
  if (g.stopping) return SOUK_ESTOPPED;
  souk_url_t u;
  if (souk_url_parse(url, &u) != 0) return SOUK_EINVAL;
  if ((strcmp(u.scheme, "ws") && strcmp(u.scheme, "wss")) || u.port <= 0) {
    souk_url_free(&u);
    return SOUK_EINVAL;
  }
  int rc = souk_ws_global_init();
  if (rc) {
    souk_url_free(&u);
    return rc;
  }
  souk_ws_t *ws = souk_calloc(1, sizeof *ws);
  ws->cbs = *cbs;
  ws->ud = ud;
  ws->url = u;
  ws->max_message = WS_DEFAULT_MAX_MESSAGE;
  int defport = u.tls ? 443 : 80;
  bool v6 = strchr(u.host, ':') != NULL;
  souk_buf_t h;
  souk_buf_init(&h);
  souk_buf_printf(&h, v6 ? "[%s]" : "%s", u.host);
  if (u.port != defport) souk_buf_printf(&h, ":%d", u.port);
  ws->host_hdr = souk_buf_steal(&h);
  struct addrinfo hints;
  memset(&hints, 0, sizeof hints);
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_ADDRCONFIG;
  ws->gai.data = ws;
  ws->state = WS_RESOLVING;
  if (uv_getaddrinfo(souk_loop(), &ws->gai, gai_cb, u.host, NULL, &hints) != 0) {
    souk_url_free(&ws->url);
    souk_free(ws->host_hdr);
    souk_free(ws);
    return SOUK_EIO;
  }
  live_add(ws);
  *out = ws;
  return 0;
}

int souk_ws_send(souk_ws_t *ws, const void *data, size_t len, bool binary) {
  if (!ws || (!data && len)) return SOUK_EINVAL;
  if (ws->state == WS_CLOSING) return SOUK_ECLOSED;
  if (ws->state != WS_OPEN) return SOUK_ECONN;
  ws_out_t *o = souk_malloc(sizeof *o + LWS_PRE + len);
  o->next = NULL;
  o->len = len;
  o->binary = binary;
  if (len) memcpy(o->buf + LWS_PRE, data, len);
  if (ws->out_tail)
    ws->out_tail->next = o;
  else
    ws->out_head = o;
  ws->out_tail = o;
  ws->out_n++;
  lws_callback_on_writable(ws->wsi);
  return 0;
}

void souk_ws_close(souk_ws_t *ws, int code, const char *reason) {
  if (!ws || ws->state == WS_CLOSING || ws->close_code || ws->abort_req) return;
  if (code < 1000 || code > 4999) code = 1000;
  ws->close_code = code;
  if (reason) {
    size_t n = strlen(reason);
    if (n >= sizeof ws->close_reason) n = sizeof ws->close_reason - 1;
    memcpy(ws->close_reason, reason, n);
    ws->close_reason[n] = '\0';
  }
  switch (ws->state) {
  case WS_RESOLVING:
    ws->abort_req = true;
    uv_cancel((uv_req_t *)&ws->gai);
    break;
  case WS_CONNECTING:
    ws->abort_req = true;
    ws->state = WS_CLOSING;
    if (ws->wsi) wsi_drop(ws->wsi);
    break;
  case WS_OPEN:
    ws->state = WS_CLOSING;
    /* Queued messages, then the close frame, go out from WRITEABLE
     * callbacks (see on_writeable); all of it and the peer's answer get
     * WS_CLOSE_TIMEOUT_S seconds, after which lws drops the socket. */
    lws_set_timeout(ws->wsi, PENDING_TIMEOUT_CLOSE_SEND, WS_CLOSE_TIMEOUT_S);
    lws_callback_on_writable(ws->wsi);
    break;
  case WS_CLOSING:
    break;
  }
}

void souk_ws_abort(souk_ws_t *ws) {
  if (!ws || ws->abort_req) return;
  ws->abort_req = true;
  switch (ws->state) {
  case WS_RESOLVING:
    uv_cancel((uv_req_t *)&ws->gai);
    break;
  case WS_CONNECTING:
  case WS_OPEN:
  case WS_CLOSING:
    ws->state = WS_CLOSING;
    out_clear(ws);
    if (ws->wsi) wsi_drop(ws->wsi);
    break;
  }
}

void souk_ws_set_max_message(souk_ws_t *ws, size_t max) {
  if (ws) ws->max_message = max ? max : WS_DEFAULT_MAX_MESSAGE;
}

bool souk_ws_is_open(const souk_ws_t *ws) { return ws && ws->state == WS_OPEN; }

size_t souk_ws_queued(const souk_ws_t *ws) { return ws ? ws->out_n : 0; }

size_t souk_ws_live(void) { return g.nlive; }

bool souk_ws_global_idle(void) { return !g.ctx && !g.dying && !g.defer && !g.finisher; }
