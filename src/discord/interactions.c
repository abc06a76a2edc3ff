/* Discord's HTTP interactions endpoint: signature checks with OpenSSL 3,
 * PING, and the deadline that defers a slow handler.
 *
 * A verified interaction becomes a souk__ix_t holding its own copy of the
 * body and the parsed JSON, because the handler may outlive the HTTP
 * request: when the deadline passes, the deferred answer is sent on the
 * request (which the server then frees) while the handler keeps working
 * and later finishes through the REST API.  The souk__ix_t therefore lives
 * until the handler's souk__ix_respond(), and its deadline timer is closed
 * before it is freed. */
#include "discord/interactions.h"

#include "discord/dconf.h"
#include "souk/alloc.h"
#include "souk/buf.h"
#include "souk/err.h"
#include "net/httpd.h"
#include "souk/log.h"
#include "souk/store.h"
#include "souk/task.h"

#include <openssl/err.h>
#include <openssl/evp.h>
#include <string.h>
#include <uv.h>

#define IX_KEY_LEN 32
#define IX_SIG_LEN 64
/* Unix seconds fit in 11 digits until the year 5138; 12 leaves room and
 * keeps ts * 1000 far from overflowing. */
#define IX_TS_MAX_DIGITS 12
/* A failed check is logged as a warning at most this often: Discord probes
 * with bad signatures on purpose, and anyone on the Internet can send
 * them, but a wrong public_key must still be visible in the log. */
#define IX_WARN_EVERY_MS (60 * 1000)
/* A retried interaction looks for the first one's answer this often. */
#define IX_DUP_POLL_MS 50
/* Answers are kept for replays this long: Discord's interaction tokens
 * live 15 minutes, and no load balancer retries later than that. */
#define IX_ANSWER_KEEP_MS (15 * 60 * 1000)
/* kv namespace of the recorded answers, and the idempotency key prefix. */
#define IX_ANSWER_NS "ix.answer"

struct souk__ix {
  souk_httpd_req_t *req; /* NULL once the deferred answer went out */
  char *body;            /* copy of the request body, parsed into json */
  souk_json_t json;
  int type;
  char id[24];   /* the interaction's id ("" when it has none) */
  bool claiming; /* its idempotency key is being claimed in the store */
  bool dup;      /* another request (a retry) claimed it first */
  bool reading;  /* a duplicate: the first one's answer is being read */
  uint64_t deadline_at;
  bool deferred;
  uv_timer_t timer;        /* the deadline */
  souk__ix_t *prev, *next; /* list of interactions before their deadline */
};

static struct {
  bool mounted;
  char key_hex[2 * IX_KEY_LEN + 1];
  souk_clock_t clock;
  bool clock_set;
  souk__ix_handler_cb handler;
  void *handler_ud;
  uint64_t deadline_ms;
  souk__ix_t *pending;
  uint64_t last_warn_ms;
  bool warned;
  souk_store_t *store; /* idempotency keys and recorded answers; NULL: none */
  uint64_t dups;       /* retried interactions answered from the first one's answer */
} X;

/* ---- verification ------------------------------------------------------ */

static int hexval(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

/* Decode exactly 2 * n hex digits into out; anything else (another length,
 * a sign, spaces, a 0x prefix) is refused, so there is one accepted
 * spelling of each key and signature apart from letter case. */
static bool hex_decode(const char *s, unsigned char *out, size_t n) {
  if (!s || strlen(s) != 2 * n) return false;
  for (size_t i = 0; i < n; i++) {
    int hi = hexval(s[2 * i]), lo = hexval(s[2 * i + 1]);
    if (hi < 0 || lo < 0) return false;
    out[i] = (unsigned char)(hi << 4 | lo);
  }
  return true;
}

static uint64_t wall_now_ms(void) {
  return X.clock_set ? X.clock.now_ms(X.clock.ud) : souk_unix_ms();
}

/* Is the timestamp decimal Unix seconds inside the replay window? */
static bool timestamp_fresh(const char *ts) {
  size_t n = ts ? strlen(ts) : 0;
  if (n == 0 || n > IX_TS_MAX_DIGITS) return false;
  uint64_t secs = 0;
  for (size_t i = 0; i < n; i++) {
    if (ts[i] < '0' || ts[i] > '9') return false;
    secs = secs * 10 + (uint64_t)(ts[i] - '0');
  }
  uint64_t at = secs * 1000, now = wall_now_ms();
  if (at <= now) return now - at <= SOUK_IX_MAX_AGE_MS;
  return at - now <= SOUK_IX_MAX_SKEW_MS;
}

/* The check itself; *why says what failed, for the log. */
static int verify(const char *pubkey_hex, const char *sig_hex, const char *timestamp,
                  const void *body, size_t len, const char **why) {
  unsigned char key[IX_KEY_LEN], sig[IX_SIG_LEN];
  *why = NULL;
  if (!hex_decode(pubkey_hex, key, sizeof key)) {
    *why = "the public key is not 64 hex digits";
    return SOUK_EAUTH;
  }
  if (!hex_decode(sig_hex, sig, sizeof sig)) {
    *why = "the signature is not 128 hex digits";
    return SOUK_EAUTH;
  }
  if (!timestamp || (len && !body)) {
    *why = "no timestamp, or a length without a body";
    return SOUK_EAUTH;
  }
  if (!timestamp_fresh(timestamp)) {
    *why = "the timestamp is malformed or outside the replay window";
    return SOUK_EAUTH;
  }
  /* Ed25519 signs the whole message in one pass (no streaming updates),
   * so the timestamp and the body are joined first. */
  size_t tlen = strlen(timestamp);
  unsigned char *msg = souk_malloc(tlen + len + 1);
  memcpy(msg, timestamp, tlen);
  if (len) memcpy(msg + tlen, body, len);
  int rc = SOUK_EAUTH;
  EVP_PKEY *pkey = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, key, sizeof key);
  EVP_MD_CTX *ctx = pkey ? EVP_MD_CTX_new() : NULL;
  if (!pkey) {
    *why = "OpenSSL refused the public key";
  } else if (!ctx) {
    souk_oom(sizeof(void *));
  } else if (EVP_DigestVerifyInit(ctx, NULL, NULL, NULL, pkey) != 1) {
    *why = "OpenSSL could not set up Ed25519 verification";
  } else if (EVP_DigestVerify(ctx, sig, sizeof sig, msg, tlen + len) != 1) {
    *why = "the signature does not match";
  } else {
    rc = 0;
  }
  EVP_MD_CTX_free(ctx);
  EVP_PKEY_free(pkey);
  souk_free(msg);
  /* A failed verification leaves entries in this thread's OpenSSL error
   * queue; libcurl and libwebsockets share the thread and would read them
   * as errors of their own TLS connections. */
  if (rc) ERR_clear_error();
  return rc;
}

int souk__ix_verify(const char *pubkey_hex, const char *sig_hex, const char *timestamp,
                    const void *body, size_t len) {
  const char *why;
  return verify(pubkey_hex, sig_hex, timestamp, body, len, &why);
}

void souk__ix_set_clock(const souk_clock_t *clock) {
  X.clock_set = clock != NULL;
  if (clock) X.clock = *clock;
}

/* ---- interactions owed an answer --------------------------------------- */

void souk__ix_set_handler(souk__ix_handler_cb fn, void *ud) {
  X.handler = fn;
  X.handler_ud = ud;
}

void souk__ix_set_deadline_ms(uint64_t ms) { X.deadline_ms = ms; }

int souk__ix_type(const souk__ix_t *ix) { return ix->type; }

bool souk__ix_deferred(const souk__ix_t *ix) { return ix->deferred; }

/* The answer Discord accepts in place of a late handler's: each type has
 * its own deferred form, and autocomplete has none, so it gets no
 * suggestions rather than an error. */
static const char *deferred_body(int type) {
  switch (type) {
  case SOUK_IX_MESSAGE_COMPONENT:
    return "{\"type\":6}";
  case SOUK_IX_AUTOCOMPLETE:
    return "{\"type\":8,\"data\":{\"choices\":[]}}";
  default:
    /* Commands, and modal submits, for which type 6 is valid only when
     * the modal came from a component. */
    return "{\"type\":5}";
  }
}

static void respond_json(souk_httpd_req_t *req, const char *json, size_t len) {
  souk_httpd_respond(req, 200, "application/json", json, len);
}

static void pending_unlink(souk__ix_t *ix) {
  if (ix->prev)
    ix->prev->next = ix->next;
  else if (X.pending == ix)
    X.pending = ix->next;
  if (ix->next) ix->next->prev = ix->prev;
  ix->prev = ix->next = NULL;
}

/* Send the deferred answer in the handler's place; ix stays for the
 * handler's own souk__ix_respond. */
static void record_answer(const souk__ix_t *ix, const char *json, size_t len);

static void answer_deferred(souk__ix_t *ix) {
  uv_timer_stop(&ix->timer);
  pending_unlink(ix);
  const char *b = deferred_body(ix->type);
  respond_json(ix->req, b, strlen(b));
  ix->req = NULL;
  ix->deferred = true;
  record_answer(ix, b, strlen(b));
}

static void deadline_cb(uv_timer_t *t) {
  souk__ix_t *ix = t->data;
  SOUK_INFO("interactions", "the handler did not answer a type %d interaction in time: deferred",
            ix->type);
  answer_deferred(ix);
}

static void ix_closed(uv_handle_t *h) {
  souk__ix_t *ix = h->data;
  souk_json_free(&ix->json);
  souk_free(ix->body);
  souk_free(ix);
}

static void ix_release(souk__ix_t *ix) {
  uv_timer_stop(&ix->timer);
  pending_unlink(ix);
  uv_close((uv_handle_t *)&ix->timer, ix_closed);
}

/* ---- answered once, across processes --------------------------------------
 *
 * Behind a load balancer, a request that took too long may be sent again
 * to another process.  Each interaction's id is claimed in the store
 * (souk_db_once, key "ix:<id>") before its handler runs, and the answer
 * sent for it is recorded (kv "ix.answer"/<id>).  A request whose id was
 * claimed already is a retry: its handler never runs; it waits (until the
 * deadline) for the first one's recorded answer and sends the same, or
 * the deferred answer if none came in time (the first process then
 * finishes through the REST API, which reaches the same interaction).
 * The store down: the handler runs anyway (commands that move money carry
 * idempotency keys of their own) and the log says so. */

typedef struct ixrec {
  char id[24];
  char *json;
  size_t len;
} ixrec_t;

static int record_fn(souk_db_t *db, void *ud) {
  ixrec_t *r = ud;
  return souk_db_kv_put(db, IX_ANSWER_NS, r->id, r->json, r->len);
}

static void record_done(void *ud, int status) {
  ixrec_t *r = ud;
  if (status)
    SOUK_DEBUG("interactions", "could not record the answer to %s: %s", r->id,
               souk_strerror(status));
  souk_free(r->json);
  souk_free(r);
}

/* Keep the answer sent for ix, for a retry of it. */
static void record_answer(const souk__ix_t *ix, const char *json, size_t len) {
  if (!X.store || !ix->id[0] || ix->dup) return;
  ixrec_t *r = souk_calloc(1, sizeof *r);
  memcpy(r->id, ix->id, sizeof r->id);
  r->json = souk_memdup0(json, len);
  r->len = len;
  if (souk_store_tx_async(X.store, record_fn, record_done, r) != 0) record_done(r, 0);
}

typedef struct ixread {
  souk__ix_t *ix;
  souk_buf_t out;
  bool found;
} ixread_t;

static int read_fn(souk_db_t *db, void *ud) {
  ixread_t *r = ud;
  souk_buf_reset(&r->out);
  int rc = souk_db_kv_get(db, IX_ANSWER_NS, r->ix->id, &r->out, NULL);
  r->found = rc == 0;
  return rc == SOUK_ENOTFOUND ? 0 : rc;
}

static void dup_poll(souk__ix_t *ix);

static void dup_tick_cb(uv_timer_t *t) { dup_poll(t->data); }

/* A duplicate's answer: the first one's, or the deferred one. */
static void dup_finish(souk__ix_t *ix, const char *json, size_t len) {
  if (!ix->deferred && ix->req) {
    if (json)
      respond_json(ix->req, json, len);
    else {
      const char *b = deferred_body(ix->type);
      respond_json(ix->req, b, strlen(b));
    }
    ix->req = NULL;
  }
  ix_release(ix);
}

static void read_done(void *ud, int status) {
  ixread_t *r = ud;
  souk__ix_t *ix = r->ix;
  ix->reading = false;
  if (ix->deferred || !ix->req) {
    /* Shut down meanwhile: the deferred answer went out. */
    ix_release(ix);
  } else if (status == 0 && r->found) {
    SOUK_INFO("interactions", "interaction %s was retried: answered with the first answer",
              ix->id);
    dup_finish(ix, r->out.data, r->out.len);
  } else if (souk_now_ms() >= ix->deadline_at) {
    SOUK_INFO("interactions",
              "interaction %s was retried and its first answer is not in yet: deferred", ix->id);
    dup_finish(ix, NULL, 0);
  } else {
    uv_timer_start(&ix->timer, dup_tick_cb, IX_DUP_POLL_MS, 0);
  }
  souk_buf_free(&r->out);
  souk_free(r);
}

static void dup_poll(souk__ix_t *ix) {
  ixread_t *r = souk_calloc(1, sizeof *r);
  r->ix = ix;
  souk_buf_init(&r->out);
  ix->reading = true;
  if (souk_store_read_async(X.store, read_fn, read_done, r) != 0) {
    ix->reading = false;
    souk_free(r);
    dup_finish(ix, NULL, 0);
  }
}

typedef struct ixclaim {
  souk__ix_t *ix;
  char key[40];
} ixclaim_t;

static int claim_fn(souk_db_t *db, void *ud) {
  ixclaim_t *c = ud;
  return souk_db_once(db, c->key);
}

static void claim_done(void *ud, int status) {
  ixclaim_t *c = ud;
  souk__ix_t *ix = c->ix;
  souk_free(c);
  ix->claiming = false;
  if (!X.mounted || !X.handler) {
    /* Shut down meanwhile (the deferred answer went out then). */
    if (!ix->deferred && ix->req) answer_deferred(ix);
    ix_release(ix);
    return;
  }
  if (status == SOUK_EEXIST) {
    ix->dup = true;
    X.dups++;
    if (ix->deferred) {
      /* This request got the deferred answer while the key was claimed:
       * the first one's handler finishes through REST. */
      ix_release(ix);
      return;
    }
    uv_timer_stop(&ix->timer);
    dup_poll(ix);
    return;
  }
  if (status)
    SOUK_WARN("interactions",
              "cannot claim interaction %s in the store (%s): running it without the retry check",
              ix->id, souk_strerror(status));
  /* The handler may answer (and release ix) before it returns. */
  X.handler(ix, &ix->json, X.handler_ud);
}

void souk__ix_set_store(souk_store_t *st) { X.store = st; }

uint64_t souk__ix_retries(void) { return X.dups; }

static int prune_fn(souk_db_t *db, void *ud) {
  (void)ud;
  int64_t before = (int64_t)souk_unix_ms() - IX_ANSWER_KEEP_MS;
  return souk_db_runf(db, NULL, "DELETE FROM kv WHERE namespace = '" IX_ANSWER_NS
                                "' AND updated_at < ?",
                      "i", before);
}

static void prune_done(void *ud, int status) { souk_task_done(ud, status); }

static void prune_task(souk_task_ctx_t *ctx) {
  if (!X.store) {
    souk_task_done(ctx, 0);
    return;
  }
  int rc = souk_store_tx_async(X.store, prune_fn, prune_done, ctx);
  if (rc) souk_task_done(ctx, rc);
}

static const souk_task_t ix_tasks[] = {
    {.name = "interactions.prune",
     .period_ms = 5 * 60 * 1000,
     .jitter_ms = 30000,
     .budget_ms = 10000,
     .handler = prune_task,
     /* The answers are in the shared store: one process prunes them. */
     .scope = SOUK_TASK_SCOPE_CLUSTER},
    {0},
};

const souk_task_t *souk__ix_tasks(void) { return ix_tasks; }

int souk__ix_respond(souk__ix_t *ix, const char *json, size_t len) {
  SOUK_ASSERT(ix);
  if (!ix->deferred) {
    /* Discord answers "interaction failed" to anything but an interaction
     * response object, so a handler's bug is refused here, where it can
     * still answer properly. */
    souk_json_t j = {0};
    bool ok =
        json && souk_json_parse(&j, json, len) == 0 && souk_json_type(&j, 0) == SOUK_JSON_OBJECT;
    souk_json_free(&j);
    if (!ok) return SOUK_EINVAL;
    respond_json(ix->req, json, len);
    ix->req = NULL;
    record_answer(ix, json, len);
  }
  int rc = ix->deferred ? SOUK_ETIMEDOUT : 0;
  ix_release(ix);
  return rc;
}

/* ---- the route --------------------------------------------------------- */

/* Whether the interaction names who acted: member.user.id in a guild,
 * user.id in a DM (the fields the command surfaces read).  Without one a
 * command would run as user 0, a trade would land on an account nobody
 * owns. */
static bool names_its_user(const souk_json_t *j) {
  int member = souk_json_get(j, 0, "member");
  int user = member >= 0 ? souk_json_get(j, member, "user") : souk_json_get(j, 0, "user");
  uint64_t id = 0;
  return user >= 0 && souk_json_u64(j, souk_json_get(j, user, "id"), &id) == 0 && id != 0;
}

/* Log why a request was refused: a warning now and then, so a wrong
 * public_key shows up without letting strangers flood the log. */
static void log_refused(const souk_httpd_req_t *req, const char *why) {
  uint64_t now = souk_now_ms();
  if (!X.warned || now - X.last_warn_ms >= IX_WARN_EVERY_MS) {
    X.warned = true;
    X.last_warn_ms = now;
    SOUK_WARN("interactions",
              "refused a request from %s: %s (check discord.public_key if Discord's own "
              "requests fail; further refusals are logged at debug level for a minute)",
              req->peer, why);
  } else {
    SOUK_DEBUG("interactions", "refused a request from %s: %s", req->peer, why);
  }
}

static void ix_route(souk_httpd_req_t *req) {
  const char *sig = souk_httpd_header(req, "X-Signature-Ed25519");
  const char *ts = souk_httpd_header(req, "X-Signature-Timestamp");
  const char *why = "missing X-Signature-Ed25519 or X-Signature-Timestamp";
  if (!sig || !ts || verify(X.key_hex, sig, ts, req->body, req->body_len, &why) != 0) {
    log_refused(req, why);
    souk_httpd_respond_text(req, 401, "invalid request signature");
    return;
  }
  souk__ix_t *ix = souk_calloc(1, sizeof *ix);
  ix->body = souk_memdup0(req->body, req->body_len);
  int64_t type = 0;
  if (souk_json_parse(&ix->json, ix->body, req->body_len) != 0 ||
      souk_json_type(&ix->json, 0) != SOUK_JSON_OBJECT) {
    souk_httpd_respond_text(req, 400, "malformed JSON body");
    goto drop;
  }
  int t = souk_json_get(&ix->json, 0, "type");
  if (souk_json_type(&ix->json, t) != SOUK_JSON_NUMBER || souk_json_i64(&ix->json, t, &type) != 0 ||
      type < SOUK_IX_PING || type > SOUK_IX_MODAL_SUBMIT) {
    souk_httpd_respond_text(req, 400, "unknown interaction type");
    goto drop;
  }
  ix->type = (int)type;
  if (type == SOUK_IX_PING) {
    respond_json(req, "{\"type\":1}", 10);
    goto drop;
  }
  if (!names_its_user(&ix->json)) {
    SOUK_WARN("interactions",
              "refused a type %d interaction that names no user (no member.user.id "
              "and no user.id)",
              ix->type);
    souk_httpd_respond_text(req, 400, "interaction without a user");
    goto drop;
  }
  if (!X.handler) {
    SOUK_WARN("interactions", "no handler for interactions yet: deferred a type %d interaction",
              ix->type);
    const char *b = deferred_body(ix->type);
    respond_json(req, b, strlen(b));
    goto drop;
  }
  ix->req = req;
  uv_timer_init(souk_loop(), &ix->timer);
  ix->timer.data = ix;
  uint64_t deadline = X.deadline_ms ? X.deadline_ms : SOUK_IX_DEADLINE_MS;
  ix->deadline_at = souk_now_ms() + deadline;
  uv_timer_start(&ix->timer, deadline_cb, deadline, 0);
  ix->next = X.pending;
  if (X.pending) X.pending->prev = ix;
  X.pending = ix;
  souk_json_str(&ix->json, souk_json_get(&ix->json, 0, "id"), ix->id, sizeof ix->id);
  if (X.store && ix->id[0]) {
    /* Claimed first: a retry of an interaction already being answered
     * (by this process or another) must not run the command again. */
    ixclaim_t *c = souk_calloc(1, sizeof *c);
    c->ix = ix;
    snprintf(c->key, sizeof c->key, "ix:%s", ix->id);
    ix->claiming = true;
    if (souk_store_tx_async(X.store, claim_fn, claim_done, c) == 0) return;
    ix->claiming = false;
    souk_free(c);
  }
  /* The handler may answer (and release ix) before it returns: ix is not
   * touched after this call. */
  X.handler(ix, &ix->json, X.handler_ud);
  return;
drop:
  souk_json_free(&ix->json);
  souk_free(ix->body);
  souk_free(ix);
}

static const souk_route_t ix_routes[] = {
    {"POST", "/interactions", SOUK_ROUTE_PUBLIC, ix_route},
    {0},
};

int souk__ix_mount(void) {
  const char *key = souk__discord_conf.public_key;
  if (!key || !*key) {
    SOUK_DEBUG("interactions", "discord.public_key is not set: no /interactions endpoint");
    return 0;
  }
  unsigned char raw[IX_KEY_LEN];
  if (!hex_decode(key, raw, sizeof raw)) {
    SOUK_ERROR("interactions",
               "discord.public_key must be the application's public key: exactly 64 hex "
               "digits (Developer Portal > General Information), got %zu characters",
               strlen(key));
    return SOUK_ECONFIG;
  }
  int rc = souk_httpd_mount(ix_routes, NULL);
  if (rc) return rc;
  memcpy(X.key_hex, key, sizeof X.key_hex - 1);
  X.key_hex[sizeof X.key_hex - 1] = 0;
  X.mounted = true;
  if (souk__httpd_conf.timeout_ms && (uint64_t)souk__httpd_conf.timeout_ms <=
                                         (X.deadline_ms ? X.deadline_ms : SOUK_IX_DEADLINE_MS))
    SOUK_WARN("interactions",
              "http.timeout (%lld ms) is shorter than the interaction deadline: slow handlers "
              "will get 504 instead of a deferred answer",
              (long long)souk__httpd_conf.timeout_ms);
  SOUK_INFO("interactions", "serving POST /interactions");
  return 0;
}

void souk__ix_unmount(void) {
  if (!X.mounted) return;
  souk_httpd_unmount(ix_routes);
  X.mounted = false;
  while (X.pending)
    answer_deferred(X.pending);
}
