/* WebSocket client (RFC 6455) on souk's libuv loop, with OpenSSL for wss://.
 *
 * Implementation choice: a frame codec of our own on a libuv TCP handle,
 * TLS through OpenSSL memory BIOs.  It replaced libwebsockets 4.1, whose
 * client frame parser works a byte at a time: on plain frames 65% of
 * souk's gateway CPU was inside it (perf, 100,000 MESSAGE_CREATE at 32 per
 * write; bench/README.md has the figures).  Here a frame is parsed from its
 * header and a whole message in one frame reaches the callback straight
 * from the read buffer, without a copy.  Debian's wslay was the other
 * candidate: its event API copies every message twice (a chunk list, then
 * one buffer), and what it does besides framing (ping answers, the close
 * handshake) is a few lines here.
 *
 * What this file does, in order of a connection's life:
 * - DNS with uv_getaddrinfo() on the thread pool (IPv4 preferred), so a
 *   reconnect never blocks the loop; Host and TLS SNI and the certificate
 *   check use the name, never the address.
 * - TCP with uv_tcp_connect(), then for wss:// a TLS handshake through
 *   memory BIOs with the trust policy of trust.h (CA certificates looked
 *   up lazily in the hashed directory), TLS 1.2 at least, the peer's name
 *   verified.
 * - The HTTP/1.1 upgrade, its 101 answer checked: Upgrade: websocket,
 *   Connection: Upgrade, Sec-WebSocket-Accept, and no extension or
 *   subprotocol, since souk asks for none.
 * - Frames: incoming ones unmasked (a masked server frame is a protocol
 *   error), fragments put together, text messages checked to be UTF-8
 *   (1007), pings answered with pongs, the size cap enforced while a
 *   message arrives (1009); outgoing ones masked.
 * - Writes are collected and written once per loop iteration (a prepare
 *   handle), so an abort right after a close or a send discards them, and
 *   a burst of sends costs one write.
 * - The closing handshake: our close frame after what was queued, then the
 *   peer's answer within WS_CLOSE_TIMEOUT_MS, else the TCP connection is
 *   dropped; a peer's close is answered with its own code, then the
 *   connection ends.
 * - Every end of a connection goes through finish(): its handles closed,
 *   then on_close exactly once, from the loop, then the memory freed. */
#include "net/sha1.h"
#include "net/trust.h"
#include "net/ws.h"

#include "souk/alloc.h"
#include "souk/buf.h"
#include "souk/err.h"
#include "souk/log.h"
#include "souk/loop.h"
#include "souk/url.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif
#include <sys/socket.h>

#define WS_LOG                 "ws"
#define WS_DEFAULT_MAX_MESSAGE ((size_t)16 << 20)
/* A buffer that grew past this for one large message (the READY of a big
 * bot, say) is released afterwards instead of being kept forever. */
#define WS_KEEP_MAX ((size_t)64 << 10)
/* Reads land in the receive buffer with at least this much room. */
#define WS_READ_CHUNK ((size_t)32 << 10)
/* From the TCP connect to the end of the upgrade. */
#define WS_OPEN_TIMEOUT_MS 15000
/* Our close frame written, waiting for the peer's. */
#define WS_CLOSE_TIMEOUT_MS 3000
/* The HTTP answer to the upgrade request. */
#define WS_HTTP_MAX 16384
/* Pings go unanswered while this much waits to be written: a peer that
 * sends pings and never reads the pongs cannot grow the queue further. */
#define WS_PONG_BACKLOG ((size_t)64 << 10)

typedef enum ws_state {
  WS_RESOLVING,  /* uv_getaddrinfo in flight */
  WS_CONNECTING, /* TCP connect, TLS handshake, HTTP upgrade */
  WS_OPEN,       /* established */
  WS_CLOSING,    /* close or abort requested, or the peer closed */
  WS_FINISHING,  /* handles closing; on_close comes when they are closed */
} ws_state_t;

struct souk__ws {
  souk__ws_cbs_t cbs;
  void *ud;
  ws_state_t state;
  souk_url_t url;
  char *host_hdr; /* host, or host:port for a non-default port */
  uv_getaddrinfo_t gai;
  uv_tcp_t tcp;
  uv_connect_t creq;
  uv_timer_t timer; /* open and close timeouts */
  int handles;      /* handles initialised and not yet closed */
  bool tcp_on, reading;
  SSL *ssl;
  BIO *rbio, *wbio; /* network -> TLS, TLS -> network */
  bool tls_done;
  bool upgraded;   /* the 101 answer was read */
  bool opened;     /* on_open was delivered */
  bool abort_req;  /* drop the connection rather than close it */
  int close_code;  /* code we asked for, 0 if none */
  bool close_sent; /* our close frame is queued or written */
  char close_reason[124];
  int peer_code; /* code from the peer's close frame, 0 if none */
  char peer_reason[124];
  bool peer_closed;
  char key[32];     /* Sec-WebSocket-Key */
  souk_buf_t rx;    /* received (decrypted) bytes not yet parsed */
  size_t rx_off;    /* parsed up to here */
  souk_buf_t msg;   /* fragments of the message being received */
  bool in_msg;      /* a fragmented message is being received */
  bool msg_binary;
  bool rx_dead;  /* framing lost (a bad length): incoming bytes are ignored */
  uint64_t skip_left; /* bytes of a dropped frame still to come */
  size_t max_message;
  souk_buf_t out;     /* frames (TLS records for wss) waiting for the flush */
  size_t out_msgs;    /* messages in out */
  unsigned writes;    /* uv_write requests in flight */
  bool flush_queued;  /* on the flush list */
  souk__ws_t *fnext;   /* flush list */
  int fin_code;       /* what on_close will report */
  char fin_reason[160];
  souk__ws_t *prev, *next; /* live list, for shutdown */
};

typedef struct ws_write {
  uv_write_t req;
  souk__ws_t *ws;
  size_t len;
  char data[];
} ws_write_t;

static struct {
  bool ready;      /* the prepare handle and TLS context exist */
  bool stopping;   /* shutdown in progress */
  SSL_CTX *ssl_ctx; /* created on the first wss:// connection */
  uv_prepare_t *flusher;
  souk__ws_t *flush_head;
  souk__ws_t *live;
  size_t nlive;
  unsigned closing; /* global handles still closing */
  uint64_t mask_state;
} g;

static void live_add(souk__ws_t *ws) {
  ws->prev = NULL;
  ws->next = g.live;
  if (g.live) g.live->prev = ws;
  g.live = ws;
  g.nlive++;
}

static void live_del(souk__ws_t *ws) {
  if (ws->prev)
    ws->prev->next = ws->next;
  else
    g.live = ws->next;
  if (ws->next) ws->next->prev = ws->prev;
  ws->prev = ws->next = NULL;
  g.nlive--;
}

/* ---- TLS context --------------------------------------------------------- */

/* A client SSL_CTX whose trust store looks CA certificates up on demand in
 * the hashed system directory (see trust.h): the gateway needs one of the
 * ~140 certificates of the bundle.  A file is loaded only when asked for
 * (souk__trust_set_ca_file) or when there is no usable directory. */
static SSL_CTX *client_ssl_ctx(void) {
  SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
  if (!ctx) return NULL;
  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  const char *dir = souk__trust_ca_dir();
  const char *file = souk__trust_ca_file();
  int ok = 1;
  if (dir)
    ok = SSL_CTX_load_verify_dir(ctx, dir);
  else
    ok = SSL_CTX_load_verify_file(ctx, souk__trust_ca_bundle());
  if (ok && file) ok = SSL_CTX_load_verify_file(ctx, file);
  if (!ok) {
    SSL_CTX_free(ctx);
    return NULL;
  }
  SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
  /* Only one TLS connection per shard: session tickets buy nothing. */
  SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
  return ctx;
}

/* ---- the end of a connection ----------------------------------------------- */

static void handle_closed_cb(uv_handle_t *h) {
  souk__ws_t *ws = h->data;
  if (--ws->handles > 0) return;
  live_del(ws);
  ws->cbs.on_close(ws, ws->ud, ws->fin_code, ws->fin_reason);
  if (ws->ssl) SSL_free(ws->ssl); /* frees both BIOs */
  souk_buf_free(&ws->rx);
  souk_buf_free(&ws->msg);
  souk_buf_free(&ws->out);
  souk_url_free(&ws->url);
  souk_free(ws->host_hdr);
  souk_free(ws);
}

static void flush_unlink(souk__ws_t *ws) {
  if (!ws->flush_queued) return;
  for (souk__ws_t **p = &g.flush_head; *p; p = &(*p)->fnext)
    if (*p == ws) {
      *p = ws->fnext;
      break;
    }
  ws->flush_queued = false;
  ws->fnext = NULL;
}

/* End the connection: close its handles (a write in flight is cancelled);
 * on_close follows from the loop with code and reason. */
static void finish(souk__ws_t *ws, int code, const char *reason) {
  if (ws->state == WS_FINISHING) return;
  ws->state = WS_FINISHING;
  ws->fin_code = code;
  snprintf(ws->fin_reason, sizeof ws->fin_reason, "%s", reason ? reason : "");
  flush_unlink(ws);
  if (ws->tcp_on) {
    if (ws->reading) uv_read_stop((uv_stream_t *)&ws->tcp);
    uv_close((uv_handle_t *)&ws->tcp, handle_closed_cb);
  }
  uv_timer_stop(&ws->timer);
  uv_close((uv_handle_t *)&ws->timer, handle_closed_cb);
}

/* The code to report once the connection is over by the peer's doing or
 * ours. */
static void finish_closed(souk__ws_t *ws, const char *fallback) {
  if (ws->peer_code)
    finish(ws, ws->peer_code, ws->peer_reason);
  else if (ws->close_code && !ws->abort_req)
    finish(ws, ws->close_code, ws->close_reason);
  else
    finish(ws, SOUK_WS_ABNORMAL, ws->abort_req ? "aborted" : fallback);
}

/* ---- writing ---------------------------------------------------------------- */

static void flush_schedule(souk__ws_t *ws) {
  if (ws->flush_queued || ws->state == WS_FINISHING) return;
  ws->flush_queued = true;
  ws->fnext = g.flush_head;
  g.flush_head = ws;
}

static void tls_drain(souk__ws_t *ws);

/* Bytes for the wire: through TLS for wss://, as they are otherwise. */
static int out_put(souk__ws_t *ws, const void *data, size_t len) {
  if (!ws->ssl) {
    souk_buf_append(&ws->out, data, len);
  } else {
    while (len) {
      int n = SSL_write(ws->ssl, data, len > INT32_MAX ? INT32_MAX : (int)len);
      if (n <= 0) {
        ERR_clear_error();
        return SOUK_EIO;
      }
      data = (const char *)data + n;
      len -= (size_t)n;
    }
    tls_drain(ws);
  }
  flush_schedule(ws);
  return 0;
}

/* Move what TLS produced (handshake records or encrypted data) to out. */
static void tls_drain(souk__ws_t *ws) {
  char buf[16384];
  int n;
  bool any = false;
  while ((n = BIO_read(ws->wbio, buf, sizeof buf)) > 0) {
    souk_buf_append(&ws->out, buf, (size_t)n);
    any = true;
  }
  if (any) flush_schedule(ws);
}

static void write_cb(uv_write_t *req, int status) {
  ws_write_t *w = (ws_write_t *)req;
  souk__ws_t *ws = w->ws;
  souk_free(w);
  ws->writes--;
  if (ws->state == WS_FINISHING) return;
  if (status < 0) {
    finish_closed(ws, "write failed");
    return;
  }
  /* The peer closed and our answer is out: the connection is over. */
  if (ws->peer_closed && ws->close_sent && ws->writes == 0 && !ws->out.len)
    finish_closed(ws, "closed");
}

static void flush_one(souk__ws_t *ws) {
  ws->flush_queued = false;
  ws->fnext = NULL;
  if (ws->state == WS_FINISHING || !ws->tcp_on || !ws->out.len) return;
  ws_write_t *w = souk_malloc(sizeof *w + ws->out.len);
  w->ws = ws;
  w->len = ws->out.len;
  memcpy(w->data, ws->out.data, ws->out.len);
  if (ws->out.cap > WS_KEEP_MAX)
    souk_buf_free(&ws->out);
  else
    souk_buf_reset(&ws->out);
  ws->out_msgs = 0;
  uv_buf_t b = uv_buf_init(w->data, (unsigned)w->len);
  if (uv_write(&w->req, (uv_stream_t *)&ws->tcp, &b, 1, write_cb) != 0) {
    souk_free(w);
    finish_closed(ws, "write failed");
    return;
  }
  ws->writes++;
}

/* Once per loop iteration, before it waits: write what was queued. */
static void flusher_cb(uv_prepare_t *h) {
  while (g.flush_head) {
    souk__ws_t *ws = g.flush_head;
    g.flush_head = ws->fnext;
    flush_one(ws);
  }
}

/* xorshift64*: masks only need to be unpredictable to a script in a
 * browser on the same connection, which a daemon never has; seeded from
 * the kernel (see ws_random). */
static uint32_t mask_next(void) {
  uint64_t x = g.mask_state;
  x ^= x >> 12;
  x ^= x << 25;
  x ^= x >> 27;
  g.mask_state = x;
  return (uint32_t)((x * UINT64_C(2685821657736338717)) >> 32);
}

/* Queue one frame (masked, as a client's must be). */
static int frame_out(souk__ws_t *ws, int opcode, const void *data, size_t len) {
  unsigned char hdr[14];
  size_t h = 0;
  hdr[h++] = (unsigned char)(0x80 | opcode);
  if (len < 126) {
    hdr[h++] = (unsigned char)(0x80 | len);
  } else if (len < 65536) {
    hdr[h++] = 0x80 | 126;
    hdr[h++] = (unsigned char)(len >> 8);
    hdr[h++] = (unsigned char)len;
  } else {
    hdr[h++] = 0x80 | 127;
    for (int i = 7; i >= 0; i--)
      hdr[h++] = (unsigned char)((uint64_t)len >> (8 * i));
  }
  uint32_t m = mask_next();
  unsigned char mk[4] = {(unsigned char)(m >> 24), (unsigned char)(m >> 16),
                         (unsigned char)(m >> 8), (unsigned char)m};
  memcpy(hdr + h, mk, 4);
  h += 4;
  /* Masked into one buffer, then handed to out_put in one piece. */
  unsigned char small[256];
  unsigned char *buf = h + len <= sizeof small ? small : souk_malloc(h + len);
  memcpy(buf, hdr, h);
  const unsigned char *p = data;
  for (size_t i = 0; i < len; i++)
    buf[h + i] = p[i] ^ mk[i & 3];
  int rc = out_put(ws, buf, h + len);
  if (buf != small) souk_free(buf);
  return rc;
}

static void send_close_frame(souk__ws_t *ws, int code, const char *reason) {
  unsigned char b[2 + 123];
  size_t rl = reason ? strlen(reason) : 0;
  if (rl > 123) rl = 123;
  b[0] = (unsigned char)(code >> 8);
  b[1] = (unsigned char)code;
  if (rl) memcpy(b + 2, reason, rl);
  ws->close_sent = true;
  if (frame_out(ws, 0x8, b, 2 + rl) != 0) finish_closed(ws, "write failed");
}

/* ---- reading ----------------------------------------------------------------- */

static void begin_close(souk__ws_t *ws, int code, const char *reason);

/* The server broke the protocol: fail the connection (RFC 6455 7.1.7)
 * with code.  Nothing more is delivered; what still arrives is only looked
 * through for the peer's answer to our close, so that the connection ends
 * when that comes rather than when the close times out.  A second error
 * ends it at once. */
static void protocol_error(souk__ws_t *ws, int code, const char *why) {
  SOUK_WARN(WS_LOG, "protocol error from the server (%s): closing", why);
  if (ws->close_sent) {
    finish(ws, SOUK_WS_ABNORMAL, why);
    return;
  }
  ws->close_code = code;
  snprintf(ws->close_reason, sizeof ws->close_reason, "%s", why);
  begin_close(ws, code, why);
}

static void msg_reset(souk__ws_t *ws) {
  if (ws->msg.cap > WS_KEEP_MAX)
    souk_buf_free(&ws->msg);
  else
    souk_buf_reset(&ws->msg);
  ws->in_msg = false;
}

static void close_timeout_cb(uv_timer_t *t) {
  souk__ws_t *ws = t->data;
  finish_closed(ws, "close timed out");
}

/* Start our closing handshake from the OPEN state (or answer the peer's). */
static void begin_close(souk__ws_t *ws, int code, const char *reason) {
  ws->state = WS_CLOSING;
  send_close_frame(ws, code, reason);
  if (ws->state == WS_FINISHING) return;
  uv_timer_start(&ws->timer, close_timeout_cb, WS_CLOSE_TIMEOUT_MS, 0);
}

/* A code a peer may close with (RFC 6455 7.4 and IANA's registry): never
 * one below 1000, 1004-1006 or 1015 (no endpoint may send them), nor the
 * unassigned 1016-2999. */
static bool close_code_ok(int code) {
  return (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014) ||
         (code >= 3000 && code <= 4999);
}

static void on_control(souk__ws_t *ws, int op, const unsigned char *p, size_t n) {
  if (op == 0x9) { /* ping: pong with the same data */
    /* RFC 6455 5.5.3 lets a pong answer only the latest of several pings:
     * while the peer leaves our writes unread, its pings are dropped. */
    size_t backlog = ws->out.len;
    if (ws->tcp_on) backlog += uv_stream_get_write_queue_size((uv_stream_t *)&ws->tcp);
    if (ws->state == WS_OPEN && backlog <= WS_PONG_BACKLOG && frame_out(ws, 0xA, p, n) != 0)
      finish_closed(ws, "write failed");
    return;
  }
  if (op == 0xA) return; /* pong */
  /* close */
  ws->peer_closed = true;
  if (n == 1 || (n >= 2 && !close_code_ok((p[0] << 8) | p[1]))) {
    /* Our 1002 ends the connection once written (the peer has closed). */
    protocol_error(ws, 1002, "bad close frame");
    return;
  }
  if (n >= 2) {
    ws->peer_code = (p[0] << 8) | p[1];
    size_t rl = n - 2;
    if (rl >= sizeof ws->peer_reason) rl = sizeof ws->peer_reason - 1;
    memcpy(ws->peer_reason, p + 2, rl);
    ws->peer_reason[rl] = '\0';
  } else {
    ws->peer_code = 1005; /* RFC 6455: no status code present */
  }
  if (ws->close_sent) {
    /* The answer to our close: done. */
    finish_closed(ws, "closed");
    return;
  }
  /* Answer with the peer's code, then end once it is written. */
  begin_close(ws, n >= 2 ? ws->peer_code : 1000, NULL);
}

/* Whether s[0..n) is UTF-8, as RFC 6455 requires of a text message: eight
 * bytes at a time while they are ASCII, which the gateway's JSON mostly
 * is. */
static bool utf8_valid(const unsigned char *s, size_t n) {
  size_t i = 0;
  while (i < n) {
#ifdef __SSE2__
    /* Gateway text is nearly all ASCII: 32 bytes a step while no byte has
     * its top bit set, then straight to the first one that has. */
    if (n - i >= 32) {
      __m128i a = _mm_loadu_si128((const __m128i *)(s + i));
      __m128i b = _mm_loadu_si128((const __m128i *)(s + i + 16));
      unsigned m = (unsigned)_mm_movemask_epi8(a) | ((unsigned)_mm_movemask_epi8(b) << 16);
      if (!m) {
        i += 32;
        continue;
      }
      i += (size_t)__builtin_ctz(m);
    }
#endif
    if (n - i >= 8) {
      uint64_t w;
      memcpy(&w, s + i, 8);
      if (!(w & UINT64_C(0x8080808080808080))) {
        i += 8;
        continue;
      }
    }
    if (s[i] < 0x80) {
      i++;
      continue;
    }
    size_t l = souk_utf8_seq(s + i, n - i);
    if (!l) return false;
    i += l;
  }
  return true;
}

/* Parse whole frames from rx; stops when the connection leaves OPEN or
 * CLOSING (a callback may close it). */
static void parse_frames(souk__ws_t *ws) {
  for (;;) {
    if (ws->state != WS_OPEN && ws->state != WS_CLOSING) return;
    if (ws->rx_dead) {
      ws->rx_off = ws->rx.len;
      return;
    }
    size_t avail = ws->rx.len - ws->rx_off;
    if (ws->skip_left) {
      /* The rest of a frame that is dropped (data after a close, or a
       * message over the cap): consumed as it comes, never buffered. */
      size_t k = avail < ws->skip_left ? avail : (size_t)ws->skip_left;
      ws->rx_off += k;
      ws->skip_left -= k;
      avail -= k;
      if (ws->skip_left) return;
    }
    const unsigned char *p = (const unsigned char *)ws->rx.data + ws->rx_off;
    if (avail < 2) return;
    bool fin = p[0] & 0x80;
    int op = p[0] & 0x0f;
    uint64_t len = p[1] & 0x7f;
    size_t h = 2;
    if (len == 126) {
      if (avail < 4) return;
      len = ((uint64_t)p[2] << 8) | p[3];
      h = 4;
    } else if (len == 127) {
      if (avail < 10) return;
      len = 0;
      for (int i = 0; i < 8; i++)
        len = (len << 8) | p[2 + i];
      h = 10;
      if (len >> 62) {
        /* Where the next frame would start is lost: read nothing more. */
        ws->rx_dead = true;
        return protocol_error(ws, 1009, "frame length out of range");
      }
    }
    bool control = op & 0x8;
    /* Only close, ping and pong are control frames; 0xB-0xF are reserved
     * and must not be taken for a close with whatever code they carry. */
    const char *bad = NULL;
    if (p[0] & 0x70)
      bad = "reserved bits set";
    else if (p[1] & 0x80)
      bad = "masked frame from the server";
    else if ((!control && op > 2) || op > 0xA)
      bad = "unknown opcode";
    else if (control && (!fin || len > 125))
      bad = "bad control frame";
    if (bad) {
      /* The frame's length is known: it is skipped, and the frames after
       * it are looked through for the peer's close. */
      ws->rx_off += h;
      ws->skip_left = len;
      protocol_error(ws, 1002, bad);
      continue;
    }
    /* A data frame too big for the cap is known from its header: refuse it
     * before it is all received. */
    if (!control && ws->state == WS_OPEN &&
        len + (ws->in_msg ? ws->msg.len : 0) > ws->max_message) {
      SOUK_WARN(WS_LOG, "incoming message over %zu bytes: closing", ws->max_message);
      ws->close_code = 1009;
      snprintf(ws->close_reason, sizeof ws->close_reason, "message too big");
      begin_close(ws, 1009, "message too big");
      return;
    }
    if (!control && ws->state != WS_OPEN) {
      /* Data after our close (or its cap) is not delivered: skip it. */
      ws->rx_off += h;
      ws->skip_left = len;
      continue;
    }
    if (avail - h < len) {
      /* Make room for the rest of a big frame in one go. */
      if (ws->rx_off + h + len > ws->rx.cap) {
        if (ws->rx_off) {
          memmove(ws->rx.data, ws->rx.data + ws->rx_off, avail);
          ws->rx.len = avail;
          ws->rx_off = 0;
        }
        souk_buf_reserve(&ws->rx, h + (size_t)len - avail + 1);
      }
      return;
    }
    const unsigned char *pl = p + h;
    ws->rx_off += h + (size_t)len;
    if (control) {
      on_control(ws, op, pl, (size_t)len);
      continue;
    }
    if (op != 0) {
      if (ws->in_msg) {
        protocol_error(ws, 1002, "new message inside a fragmented one");
        continue;
      }
      if (fin) {
        /* The common case: a whole message in one frame, to the callback
         * straight from the read buffer. */
        if (op == 1 && !utf8_valid(pl, (size_t)len)) {
          protocol_error(ws, 1007, "text message not UTF-8");
          continue;
        }
        if (ws->cbs.on_message)
          ws->cbs.on_message(ws, ws->ud, (const char *)pl, (size_t)len, op == 2);
        continue;
      }
      msg_reset(ws);
      ws->in_msg = true;
      ws->msg_binary = op == 2;
    } else if (!ws->in_msg) {
      protocol_error(ws, 1002, "continuation without a message");
      continue;
    }
    souk_buf_append(&ws->msg, pl, (size_t)len);
    if (fin) {
      ws->in_msg = false;
      /* Checked whole: a character may be split between fragments. */
      if (!ws->msg_binary &&
          !utf8_valid((const unsigned char *)ws->msg.data, ws->msg.len)) {
        msg_reset(ws);
        protocol_error(ws, 1007, "text message not UTF-8");
        continue;
      }
      if (ws->cbs.on_message)
        ws->cbs.on_message(ws, ws->ud, ws->msg.data ? ws->msg.data : "", ws->msg.len,
                           ws->msg_binary);
      if (ws->state == WS_FINISHING) return;
      msg_reset(ws);
    }
  }
}

static void rx_compact(souk__ws_t *ws) {
  size_t left = ws->rx.len - ws->rx_off;
  if (ws->rx_off == 0) return;
  if (left) memmove(ws->rx.data, ws->rx.data + ws->rx_off, left);
  ws->rx.len = left;
  ws->rx_off = 0;
  if (!left && ws->rx.cap > WS_KEEP_MAX) souk_buf_free(&ws->rx);
}

/* ---- the upgrade ---------------------------------------------------------------- */

static void open_timeout_cb(uv_timer_t *t) {
  souk__ws_t *ws = t->data;
  finish(ws, SOUK_WS_ABNORMAL, "connect failed: timed out");
}

static void b64(const unsigned char *in, size_t n, char *out) {
  EVP_EncodeBlock((unsigned char *)out, in, (int)n);
}

/* Random bytes straight from the kernel.  OpenSSL's RAND_bytes would do,
 * but its first call on a thread builds that thread's DRBGs and entropy
 * pool, about 150 KB of heap kept for good, and a plain ws:// connection
 * needs OpenSSL for nothing else (wss:// pays that in the handshake
 * anyway).  Returns false when the kernel gave fewer bytes. */
static bool ws_random(void *out, size_t n) {
  return getrandom(out, n, GRND_NONBLOCK) == (ssize_t)n;
}

static void send_upgrade(souk__ws_t *ws) {
  unsigned char nonce[16];
  if (!ws_random(nonce, sizeof nonce)) {
    for (size_t i = 0; i < sizeof nonce; i++)
      nonce[i] = (unsigned char)mask_next();
  }
  b64(nonce, sizeof nonce, ws->key);
  souk_buf_t b;
  souk_buf_init(&b);
  souk_buf_printf(&b,
                  "GET %s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                  "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n",
                  ws->url.path && *ws->url.path ? ws->url.path : "/", ws->host_hdr, ws->key);
  int rc = out_put(ws, b.data, b.len);
  souk_buf_free(&b);
  if (rc) finish(ws, SOUK_WS_ABNORMAL, "connect failed: cannot send the upgrade");
}

/* A header's value in the HTTP answer head[0..n), or NULL. */
static const char *header(const char *head, const char *name, size_t *vlen) {
  size_t nl = strlen(name);
  for (const char *l = strstr(head, "\r\n"); l; l = strstr(l, "\r\n")) {
    l += 2;
    if (!strncasecmp(l, name, nl) && l[nl] == ':') {
      const char *v = l + nl + 1;
      while (*v == ' ' || *v == '\t')
        v++;
      const char *e = strstr(v, "\r\n");
      if (!e) return NULL;
      while (e > v && (e[-1] == ' ' || e[-1] == '\t'))
        e--;
      *vlen = (size_t)(e - v);
      return v;
    }
  }
  return NULL;
}

/* Whether a comma-separated header value v[0..n) holds token (any case),
 * as Connection: keep-alive, Upgrade does. */
static bool header_has_token(const char *v, size_t n, const char *token) {
  size_t tl = strlen(token);
  const char *e = v + n;
  while (v < e) {
    while (v < e && (*v == ' ' || *v == '\t' || *v == ','))
      v++;
    const char *t = v;
    while (v < e && *v != ',')
      v++;
    const char *te = v;
    while (te > t && (te[-1] == ' ' || te[-1] == '\t'))
      te--;
    if ((size_t)(te - t) == tl && !strncasecmp(t, token, tl)) return true;
  }
  return false;
}

/* Read the 101 answer at the start of rx; 1 when done, 0 for more. */
static int read_upgrade(souk__ws_t *ws) {
  souk_buf_putc(&ws->rx, '\0');
  ws->rx.len--;
  char *end = strstr(ws->rx.data, "\r\n\r\n");
  if (!end) {
    if (ws->rx.len > WS_HTTP_MAX) {
      finish(ws, SOUK_WS_ABNORMAL, "connect failed: answer too long");
      return -1;
    }
    return 0;
  }
  size_t hl = (size_t)(end - ws->rx.data) + 4;
  end[2] = '\0'; /* the head, each line ending in \r\n */
  int status = 0;
  if (sscanf(ws->rx.data, "HTTP/1.1 %d", &status) != 1 || status != 101) {
    char why[96];
    snprintf(why, sizeof why, "connect failed: HTTP %d instead of 101", status);
    finish(ws, SOUK_WS_ABNORMAL, why);
    return -1;
  }
  size_t n = 0;
  const char *up = header(ws->rx.data, "Upgrade", &n);
  bool ok = up && n == 9 && !strncasecmp(up, "websocket", 9);
  /* RFC 6455 4.1: the answer must say Connection: Upgrade, and may not
   * turn on an extension or a subprotocol the client did not ask for
   * (souk asks for none: frames it cannot read would follow). */
  const char *conn = header(ws->rx.data, "Connection", &n);
  ok = ok && conn && header_has_token(conn, n, "upgrade");
  const char *ext = header(ws->rx.data, "Sec-WebSocket-Extensions", &n);
  bool unasked = ext && n;
  const char *proto = header(ws->rx.data, "Sec-WebSocket-Protocol", &n);
  unasked = unasked || (proto && n);
  const char *acc = header(ws->rx.data, "Sec-WebSocket-Accept", &n);
  char want[64];
  {
    char src[64];
    int sl = snprintf(src, sizeof src, "%s258EAFA5-E914-47DA-95CA-C5AB0DC85B11", ws->key);
    unsigned char md[20];
    souk__sha1(src, (size_t)sl, md);
    b64(md, sizeof md, want);
  }
  ok = ok && acc && n == strlen(want) && !memcmp(acc, want, n);
  if (!ok) {
    finish(ws, SOUK_WS_ABNORMAL, "connect failed: not a WebSocket answer");
    return -1;
  }
  if (unasked) {
    finish(ws, SOUK_WS_ABNORMAL,
           "connect failed: the server chose an extension or subprotocol souk did not ask for");
    return -1;
  }
  ws->upgraded = true;
  ws->rx_off = hl;
  rx_compact(ws);
  return 1;
}

static void become_open(souk__ws_t *ws) {
  uv_timer_stop(&ws->timer);
  if (ws->abort_req || ws->close_code) {
    finish(ws, SOUK_WS_ABNORMAL, "aborted");
    return;
  }
  ws->state = WS_OPEN;
  ws->opened = true;
  if (ws->cbs.on_open) ws->cbs.on_open(ws, ws->ud);
}

/* New plaintext bytes are in rx: advance the upgrade, then the frames. */
static void on_plain(souk__ws_t *ws) {
  if (!ws->upgraded) {
    int rc = read_upgrade(ws);
    if (rc <= 0) return;
    become_open(ws);
  }
  parse_frames(ws);
  if (ws->state != WS_FINISHING) rx_compact(ws);
}

/* ---- TCP and TLS ---------------------------------------------------------------- */

static void alloc_cb(uv_handle_t *h, size_t hint, uv_buf_t *buf) {
  souk__ws_t *ws = h->data;
  if (ws->ssl) {
    /* Encrypted bytes go through OpenSSL: a scratch buffer will do. */
    static char scratch[65536];
    *buf = uv_buf_init(scratch, sizeof scratch);
    return;
  }
  /* Plain: straight into the receive buffer, no copy. */
  souk_buf_reserve(&ws->rx, WS_READ_CHUNK);
  *buf = uv_buf_init(ws->rx.data + ws->rx.len, (unsigned)(ws->rx.cap - ws->rx.len - 1));
}

static int tls_pump(souk__ws_t *ws) {
  if (!ws->tls_done) {
    int r = SSL_do_handshake(ws->ssl);
    tls_drain(ws);
    if (r != 1) {
      int e = SSL_get_error(ws->ssl, r);
      if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) return 0;
      char why[160];
      long vr = SSL_get_verify_result(ws->ssl);
      snprintf(why, sizeof why, "connect failed: TLS: %s",
               vr != X509_V_OK ? X509_verify_cert_error_string(vr)
                               : ERR_reason_error_string(ERR_peek_last_error())
                                     ? ERR_reason_error_string(ERR_peek_last_error())
                                     : "handshake failed");
      ERR_clear_error();
      finish(ws, SOUK_WS_ABNORMAL, why);
      return -1;
    }
    ws->tls_done = true;
    send_upgrade(ws);
    if (ws->state == WS_FINISHING) return -1;
  }
  for (;;) {
    souk_buf_reserve(&ws->rx, 16384);
    int n = SSL_read(ws->ssl, ws->rx.data + ws->rx.len, (int)(ws->rx.cap - ws->rx.len - 1));
    if (n > 0) {
      ws->rx.len += (size_t)n;
      continue;
    }
    int e = SSL_get_error(ws->ssl, n);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) break;
    if (e == SSL_ERROR_ZERO_RETURN) break; /* close_notify: EOF follows */
    ERR_clear_error();
    finish_closed(ws, "TLS error");
    return -1;
  }
  tls_drain(ws);
  return 0;
}

static void read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
  souk__ws_t *ws = s->data;
  if (ws->state == WS_FINISHING) return;
  if (nread < 0) {
    finish_closed(ws, ws->opened ? "connection lost" : "connect failed: connection closed");
    return;
  }
  if (nread == 0) return;
  if (ws->ssl) {
    BIO_write(ws->rbio, buf->base, (int)nread);
    if (tls_pump(ws) < 0) return;
  } else {
    ws->rx.len += (size_t)nread;
  }
  on_plain(ws);
}

static void connect_cb(uv_connect_t *req, int status) {
  souk__ws_t *ws = req->data;
  if (ws->state == WS_FINISHING) return;
  if (status < 0) {
    char why[160];
    snprintf(why, sizeof why, "connect failed: %s", uv_strerror(status));
    finish(ws, SOUK_WS_ABNORMAL, ws->abort_req || ws->close_code ? "aborted" : why);
    return;
  }
  if (ws->abort_req || ws->close_code) {
    finish(ws, SOUK_WS_ABNORMAL, "aborted");
    return;
  }
  uv_tcp_nodelay(&ws->tcp, 1);
  if (uv_read_start((uv_stream_t *)&ws->tcp, alloc_cb, read_cb) != 0) {
    finish(ws, SOUK_WS_ABNORMAL, "connect failed: cannot read");
    return;
  }
  ws->reading = true;
  if (ws->ssl) {
    tls_pump(ws);
  } else {
    send_upgrade(ws);
  }
}

static int start_tls(souk__ws_t *ws) {
  if (!g.ssl_ctx) g.ssl_ctx = client_ssl_ctx();
  if (!g.ssl_ctx) {
    SOUK_ERROR(WS_LOG, "cannot create the TLS client context");
    return SOUK_EIO;
  }
  ws->ssl = SSL_new(g.ssl_ctx);
  if (!ws->ssl) return SOUK_EIO;
  ws->rbio = BIO_new(BIO_s_mem());
  ws->wbio = BIO_new(BIO_s_mem());
  if (!ws->rbio || !ws->wbio) return SOUK_EIO;
  SSL_set_bio(ws->ssl, ws->rbio, ws->wbio);
  SSL_set_connect_state(ws->ssl);
  const char *host = ws->url.host;
  unsigned char addr[16];
  bool literal = inet_pton(AF_INET, host, addr) == 1 || inet_pton(AF_INET6, host, addr) == 1;
  if (!literal) SSL_set_tlsext_host_name(ws->ssl, host);
  X509_VERIFY_PARAM *vp = SSL_get0_param(ws->ssl);
  int ok = literal ? X509_VERIFY_PARAM_set1_ip_asc(vp, host) : X509_VERIFY_PARAM_set1_host(vp, host, 0);
  return ok == 1 ? 0 : SOUK_EIO;
}

static void gai_cb(uv_getaddrinfo_t *req, int status, struct addrinfo *res) {
  souk__ws_t *ws = req->data;
  const struct addrinfo *pick = NULL;
  if (status == 0) {
    /* Prefer IPv4: a host with a broken IPv6 route would otherwise cost a
     * connect timeout on every reconnect. */
    for (const struct addrinfo *a = res; a && !pick; a = a->ai_next)
      if (a->ai_family == AF_INET) pick = a;
    for (const struct addrinfo *a = res; a && !pick; a = a->ai_next)
      if (a->ai_family == AF_INET6) pick = a;
  }
  if (ws->abort_req || ws->close_code || g.stopping) {
    if (res) uv_freeaddrinfo(res);
    finish(ws, SOUK_WS_ABNORMAL, g.stopping ? "shutdown" : "aborted");
    return;
  }
  if (!pick) {
    char why[200];
    snprintf(why, sizeof why, "cannot resolve %s: %s", ws->url.host,
             status ? uv_strerror(status) : "no address");
    if (res) uv_freeaddrinfo(res);
    finish(ws, SOUK_WS_ABNORMAL, why);
    return;
  }
  struct sockaddr_storage sa;
  memcpy(&sa, pick->ai_addr, pick->ai_addrlen);
  uv_freeaddrinfo(res);
  if (sa.ss_family == AF_INET)
    ((struct sockaddr_in *)&sa)->sin_port = htons((uint16_t)ws->url.port);
  else
    ((struct sockaddr_in6 *)&sa)->sin6_port = htons((uint16_t)ws->url.port);
  if (ws->url.tls && start_tls(ws) != 0) {
    finish(ws, SOUK_WS_ABNORMAL, "connect failed: TLS setup");
    return;
  }
  uv_tcp_init(souk_loop(), &ws->tcp);
  ws->tcp.data = ws;
  ws->tcp_on = true;
  ws->handles++;
  ws->state = WS_CONNECTING;
  ws->creq.data = ws;
  int rc = uv_tcp_connect(&ws->creq, &ws->tcp, (const struct sockaddr *)&sa, connect_cb);
  if (rc) {
    char why[160];
    snprintf(why, sizeof why, "connect failed: %s", uv_strerror(rc));
    finish(ws, SOUK_WS_ABNORMAL, why);
    return;
  }
  uv_timer_start(&ws->timer, open_timeout_cb, WS_OPEN_TIMEOUT_MS, 0);
}

/* ---- public ------------------------------------------------------------------------ */

static void global_closed_cb(uv_handle_t *h) {
  souk_free(h);
  g.closing--;
}

int souk__ws_global_init(void) {
  if (g.ready) return 0;
  if (g.stopping || g.closing) return SOUK_ESTOPPED;
  uint64_t seed = 0;
  if (!ws_random(&seed, sizeof seed) || !seed)
    seed = (uint64_t)souk_now_ms() * UINT64_C(0x9E3779B97F4A7C15) | 1;
  g.mask_state = seed;
  g.flusher = souk_malloc(sizeof *g.flusher);
  uv_prepare_init(souk_loop(), g.flusher);
  uv_prepare_start(g.flusher, flusher_cb);
  /* It runs every iteration but must not keep an idle loop alive. */
  uv_unref((uv_handle_t *)g.flusher);
  g.ready = true;
  return 0;
}

/* Once every connection has finished: the context goes. */
static void global_release(void) {
  if (g.flusher) {
    uv_prepare_stop(g.flusher);
    g.closing++;
    uv_close((uv_handle_t *)g.flusher, global_closed_cb);
    g.flusher = NULL;
  }
  if (g.ssl_ctx) SSL_CTX_free(g.ssl_ctx);
  g.ssl_ctx = NULL;
  g.ready = false;
  g.stopping = false;
}

void souk__ws_global_shutdown(void) {
  if (!g.ready && !g.live) return;
  g.stopping = true;
  for (souk__ws_t *ws = g.live; ws; ws = ws->next) {
    if (ws->state == WS_RESOLVING) {
      ws->abort_req = true;
      uv_cancel((uv_req_t *)&ws->gai);
    } else if (ws->state != WS_FINISHING) {
      ws->abort_req = true;
      finish(ws, SOUK_WS_ABNORMAL, "shutdown");
    }
  }
  global_release();
}

bool souk__ws_global_idle(void) { return !g.ready && !g.live && !g.closing; }

int souk__ws_connect(const char *url, const souk__ws_cbs_t *cbs, void *ud, souk__ws_t **out) {
  if (!url || !cbs || !cbs->on_close || !out) return SOUK_EINVAL;
  if (g.stopping) return SOUK_ESTOPPED;
  souk_url_t u;
  if (souk_url_parse(url, &u) != 0) return SOUK_EINVAL;
  if ((strcmp(u.scheme, "ws") && strcmp(u.scheme, "wss")) || u.port <= 0) {
    souk_url_free(&u);
    return SOUK_EINVAL;
  }
  int rc = souk__ws_global_init();
  if (rc) {
    souk_url_free(&u);
    return rc;
  }
  souk__ws_t *ws = souk_calloc(1, sizeof *ws);
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
  uv_timer_init(souk_loop(), &ws->timer);
  ws->timer.data = ws;
  ws->handles = 1;
  live_add(ws);
  *out = ws;
  return 0;
}

int souk__ws_send(souk__ws_t *ws, const void *data, size_t len, bool binary) {
  if (!ws || (!data && len)) return SOUK_EINVAL;
  if (ws->state == WS_CLOSING || ws->state == WS_FINISHING || ws->close_code || ws->abort_req)
    return SOUK_ECLOSED;
  if (ws->state != WS_OPEN) return SOUK_ECONN;
  if (frame_out(ws, binary ? 0x2 : 0x1, data, len) != 0) {
    /* TLS refused the bytes: the stream cannot go on (a frame may be half
     * written), so the connection ends; on_close follows from the loop. */
    finish_closed(ws, "write failed");
    return SOUK_ECLOSED;
  }
  ws->out_msgs++;
  return 0;
}

void souk__ws_close(souk__ws_t *ws, int code, const char *reason) {
  if (!ws || ws->state == WS_CLOSING || ws->state == WS_FINISHING || ws->close_code ||
      ws->abort_req)
    return;
  if (code < 1000 || code > 4999) code = 1000;
  ws->close_code = code;
  snprintf(ws->close_reason, sizeof ws->close_reason, "%s", reason ? reason : "");
  switch (ws->state) {
  case WS_RESOLVING:
    ws->abort_req = true;
    uv_cancel((uv_req_t *)&ws->gai);
    break;
  case WS_CONNECTING:
    ws->abort_req = true;
    /* Closing the socket also cancels a TCP connect still in progress
     * (connect_cb then sees the connection finishing): waiting for the
     * connect would hold a shutdown for up to WS_OPEN_TIMEOUT_MS when
     * SYNs go unanswered. */
    finish(ws, SOUK_WS_ABNORMAL, "aborted");
    break;
  case WS_OPEN:
    /* Queued messages go first: the close frame follows them in out. */
    begin_close(ws, code, ws->close_reason);
    break;
  default:
    break;
  }
}

void souk__ws_abort(souk__ws_t *ws) {
  if (!ws || ws->abort_req || ws->state == WS_FINISHING) return;
  ws->abort_req = true;
  switch (ws->state) {
  case WS_RESOLVING:
    uv_cancel((uv_req_t *)&ws->gai);
    break;
  case WS_CONNECTING:
    finish(ws, SOUK_WS_ABNORMAL, "aborted"); /* as in souk__ws_close() */
    break;
  default:
    /* Whatever was queued is dropped with the socket: the peer sees the
     * TCP connection end without a close frame. */
    souk_buf_reset(&ws->out);
    finish(ws, SOUK_WS_ABNORMAL, "aborted");
    break;
  }
}

void souk__ws_set_max_message(souk__ws_t *ws, size_t max) {
  if (ws) ws->max_message = max ? max : WS_DEFAULT_MAX_MESSAGE;
}

bool souk__ws_is_open(const souk__ws_t *ws) { return ws && ws->state == WS_OPEN; }

size_t souk__ws_queued(const souk__ws_t *ws) { return ws ? ws->out_msgs : 0; }

size_t souk__ws_live(void) { return g.nlive; }
