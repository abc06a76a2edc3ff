/* One Discord gateway session (v10, JSON) as a pure state machine.
 *
 * No sockets, timers or clocks in here: the owner (src/discord/shards.c)
 * feeds inputs - transport opened, one text message, transport closed with
 * a code, the timer fired, an identify slot granted - and the machine acts
 * through souk__gateway_ops_t: send a text frame, close the transport with a
 * code, open a transport to a URL, (re)arm its single timer, ask for an
 * identify slot, deliver events.  Time and randomness come from the ops too,
 * so tests drive every timing rule without sleeping.
 *
 * What it implements (Discord's gateway docs, "Protocol facts that bite" in
 * DESIGN.md): HELLO, heartbeats (the first at interval x random[0,1), then
 * every interval; op 1 answered at once; no ACK before the next beat is a
 * zombie connection, closed with 4000 and resumed), IDENTIFY only when an
 * identify slot is granted, READY (session id, resume URL, seq), RESUME on
 * op 7, op 9 d:true and resumable closes (through the resume URL; after
 * three resumes in a row fail before RESUMED, the session is given up and
 * a fresh IDENTIFY goes through the gateway URL), op 9 d:false (wait 1-5 s, forget
 * the session, IDENTIFY), the close-code policy (4004, 4010-4014 fatal;
 * 4007, 4009 re-IDENTIFY; anything else RESUME), reconnecting at once
 * when a healthy connection ends (within a budget of 10 in a row, one more
 * every 6 s) and with exponential backoff and jitter, up to a minute, while
 * connections keep failing (logged once, then once a minute), the send limit (120 payloads per 60 s with room kept for
 * heartbeats; excess queued, never dropped) and the 4096-byte payload limit.
 * The machine itself never closes with 1000/1001 except when asked to stop
 * with that code, because that ends the session on Discord's side.
 *
 * Threading: loop thread only.  Callbacks may call back into the machine
 * (a dispatch handler may send or stop). */
#ifndef SOUK_DISCORD_GATEWAY_H
#define SOUK_DISCORD_GATEWAY_H

#include "souk/json.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/** Largest payload Discord accepts from a client. */
#define SOUK_GATEWAY_PAYLOAD_MAX 4096
/** Gateway opcodes, as Discord numbers them ("Gateway Opcodes"). */
enum {
  SOUK_GW_OP_DISPATCH = 0,         /* receive: an event */
  SOUK_GW_OP_HEARTBEAT = 1,        /* send; receive: a heartbeat is wanted now */
  SOUK_GW_OP_IDENTIFY = 2,         /* send: start a session */
  SOUK_GW_OP_PRESENCE_UPDATE = 3,  /* send */
  SOUK_GW_OP_RESUME = 6,           /* send: resume a session */
  SOUK_GW_OP_RECONNECT = 7,        /* receive: reconnect and resume */
  SOUK_GW_OP_INVALID_SESSION = 9,  /* receive: d says whether it is resumable */
  SOUK_GW_OP_HELLO = 10,           /* receive: the heartbeat interval */
  SOUK_GW_OP_HEARTBEAT_ACK = 11,   /* receive */
};

/** Close codes: WebSocket's own, and Discord's ("Gateway Close Event
 * Codes") that matter here. */
enum {
  SOUK_GW_CLOSE_NORMAL = 1000,             /* ends the session */
  SOUK_GW_CLOSE_GOING_AWAY = 1001,         /* ends the session too */
  SOUK_GW_CLOSE_UNKNOWN_ERROR = 4000,      /* any 4000 keeps it resumable */
  SOUK_GW_CLOSE_AUTHENTICATION_FAILED = 4004,
  SOUK_GW_CLOSE_INVALID_SEQ = 4007,        /* identify again */
  SOUK_GW_CLOSE_SESSION_TIMED_OUT = 4009,  /* identify again */
  SOUK_GW_CLOSE_INVALID_SHARD = 4010,
  SOUK_GW_CLOSE_SHARDING_REQUIRED = 4011,
  SOUK_GW_CLOSE_INVALID_API_VERSION = 4012,
  SOUK_GW_CLOSE_INVALID_INTENTS = 4013,
  SOUK_GW_CLOSE_DISALLOWED_INTENTS = 4014,
};

/** Close code for our own reconnects: anything but 1000/1001 keeps the
 * session resumable. */
#define SOUK_GATEWAY_CLOSE_RECONNECT SOUK_GW_CLOSE_UNKNOWN_ERROR

/** Transport compression asked for in the gateway URL.  ZLIB is 1, so a
 * bool "compress" still means zlib-stream. */
typedef enum souk__gw_compress {
  SOUK_GW_COMPRESS_NONE = 0,
  SOUK_GW_COMPRESS_ZLIB = 1, /* compress=zlib-stream */
  SOUK_GW_COMPRESS_ZSTD = 2, /* compress=zstd-stream */
} souk__gw_compress_t;

/** Session states. */
typedef enum souk__gw_state {
  SOUK_GW_IDLE,          /* not started */
  SOUK_GW_CONNECTING,    /* waiting for the transport to open */
  SOUK_GW_HELLO,         /* open, waiting for HELLO */
  SOUK_GW_IDENTIFY_WAIT, /* waiting for an identify slot or the op 9 delay */
  SOUK_GW_IDENTIFYING,   /* IDENTIFY sent, waiting for READY */
  SOUK_GW_RESUMING,      /* RESUME sent, waiting for RESUMED */
  SOUK_GW_READY,         /* the session is live */
  SOUK_GW_CLOSING,       /* we closed the transport, waiting for it to end */
  SOUK_GW_BACKOFF,       /* waiting to reconnect */
  SOUK_GW_STOPPED,       /* stopped on request */
  SOUK_GW_FATAL,         /* Discord refused the session; never reconnects */
} souk__gw_state_t;

/** Static name of a state ("ready", "backoff", ...). */
const char *souk__gw_state_name(souk__gw_state_t s);

/** A presence; strings are copied by the functions that take one. */
typedef struct souk__presence {
  const char *status;   /* "online", "idle", "dnd", "invisible"; NULL: online */
  const char *activity; /* activity name, or NULL for none */
  int activity_type;    /* 0 playing, 1 streaming, 2 listening, 3 watching,
                           4 custom, 5 competing */
} souk__presence_t;

/** Settings of one session.  Strings are copied by souk__gateway_new(). */
typedef struct souk__gateway_conf {
  uint32_t shard_id;
  uint32_t shard_count;    /* 0 or 1: no "shard" field is sent */
  const char *token;       /* bot token, without "Bot " */
  const char *gateway_url; /* e.g. wss://gateway.discord.gg (from /gateway/bot) */
  uint64_t intents;
  int compress;             /* souk__gw_compress_t: transport compression asked for */
  int large_threshold;      /* 50..250; 0: 50 */
  souk__presence_t presence; /* sent with IDENTIFY */
  /* A session to resume first (e.g. saved by a previous process that
   * stopped with 4000); all three or none. */
  const char *session_id;
  const char *resume_url;
  uint64_t seq;
  /* Limits; 0 takes the default given. */
  uint32_t send_limit;       /* payloads per window: 120 */
  uint32_t send_reserve;     /* of those, kept for heartbeats: 10 */
  uint32_t send_window_ms;   /* 60000 */
  uint32_t queue_max;        /* queued payloads before SOUK_EFULL: 1000 */
  uint32_t hello_timeout_ms; /* open but no HELLO: reconnect after 20000 */
} souk__gateway_conf_t;

/** What the machine asks its owner to do.  All but ready, resumed and
 * stopped are required.  Pointers passed are valid during the call only. */
typedef struct souk__gateway_ops {
  /** Send one text frame; 0 or SOUK_E* (the transport is going away). */
  int (*send)(void *ud, const char *text, size_t len);
  /** Close the transport with code (abort it if not open yet); the owner
   * then reports souk__gateway_on_close() when it has ended. */
  void (*close)(void *ud, int code);
  /** Open a transport to url now; report souk__gateway_on_open() or
   * souk__gateway_on_close(). */
  void (*connect)(void *ud, const char *url);
  /** (Re)arm the single timer to call souk__gateway_on_timer() after
   * delay_ms; -1 cancels it. */
  void (*timer)(void *ud, int64_t delay_ms);
  /** Ask for an identify slot; answer with souk__gateway_identify_granted()
   * once, whenever it is this shard's turn. */
  void (*request_identify)(void *ud);
  /** One dispatch (op 0): event name, sequence number, the payload and the
   * token of its "d".  Called in gateway order. */
  void (*dispatch)(void *ud, const char *name, uint64_t seq, const souk_json_t *json, int d);
  /** READY received (after its dispatch). */
  void (*ready)(void *ud);
  /** RESUMED received (after its dispatch). */
  void (*resumed)(void *ud);
  /** Discord refused the session (close code and an explanation of what to
   * do); the machine stays in SOUK_GW_FATAL.  The machine does not log it:
   * reporting it is the owner's job, done once. */
  void (*fatal)(void *ud, int code, const char *msg);
  /** souk__gateway_stop() has completed. */
  void (*stopped)(void *ud);
  /** Monotonic milliseconds. */
  uint64_t (*now_ms)(void *ud);
  /** Uniform random number in [0, 1). */
  double (*rand01)(void *ud);
} souk__gateway_ops_t;

/** Counters and figures of one session. */
typedef struct souk__gateway_stats {
  souk__gw_state_t state;
  int64_t latency_last_ms;   /* heartbeat sent -> ACK; -1 before the first */
  int64_t latency_avg_ms;    /* moving average (weight 1/8); -1 before the first */
  uint64_t seq;              /* last sequence number received */
  uint64_t events;           /* dispatches received */
  uint64_t connects;         /* transports opened (attempts) */
  uint64_t reconnects;       /* connection attempts after the first */
  uint64_t identifies;       /* IDENTIFY sent */
  uint64_t identify_deferred; /* slots refused for the daily budget */
  uint64_t resumes;          /* RESUME sent */
  uint64_t resumed;          /* RESUMED received */
  uint64_t zombies;          /* connections closed for a missing ACK */
  uint64_t invalid_sessions; /* op 9 received */
  uint64_t heartbeats;       /* heartbeats sent */
  uint64_t sent;             /* payloads sent (all kinds) */
  uint64_t queued;           /* payloads waiting for the send limit now */
  uint64_t bytes_in;         /* text bytes received (after decompression) */
  uint64_t messages_in;      /* text messages received */
} souk__gateway_stats_t;

/** One session; opaque. */
typedef struct souk__gateway souk__gateway_t;

/** Create a session in SOUK_GW_IDLE.  conf and its strings are copied;
 * ops is copied; ud is passed back to every op.  Returns NULL only for a
 * missing token, gateway URL or required op. */
souk__gateway_t *souk__gateway_new(const souk__gateway_conf_t *conf, const souk__gateway_ops_t *ops,
                                 void *ud);
/** Free the session; no op is called.  The owner closes its transport and
 * timer itself. */
void souk__gateway_free(souk__gateway_t *gw);

/** Give a session that has not started (SOUK_GW_IDLE) a session to resume
 * first, as souk__gateway_conf_t's session fields do: one handed on by the
 * process that ran the shard before (discord/handoff.h).  session_id NULL
 * or "" leaves it without one.  Strings are copied.  Once resumed, the
 * session sends this process's presence (op 3): Discord still shows the
 * one the previous process set.  Returns false, and changes nothing, once
 * the session has started. */
bool souk__gateway_set_session(souk__gateway_t *gw, const char *session_id,
                               const char *resume_url, uint64_t seq);
/** Start: connect to the gateway (or the resume URL with a saved session). */
void souk__gateway_start(souk__gateway_t *gw);
/** Stop: close with code (1000 ends the session on Discord's side; 4000
 * keeps it resumable, see souk__gateway_session()), never reconnect, then
 * call ops.stopped.  Calling it again only updates nothing; calling it when
 * nothing is connected calls ops.stopped at once. */
void souk__gateway_stop(souk__gateway_t *gw, int code);
/** Close with 4000 and RESUME (or IDENTIFY without a session): for a
 * transport error the owner detected, such as corrupt compressed data. */
void souk__gateway_reconnect(souk__gateway_t *gw);

/** The transport asked for by ops.connect is open. */
void souk__gateway_on_open(souk__gateway_t *gw);
/** One text message from the transport (already decompressed). */
void souk__gateway_on_message(souk__gateway_t *gw, const char *text, size_t len);
/** The transport ended (close code from the peer or ours, 1006 if it
 * dropped or never opened). */
void souk__gateway_on_close(souk__gateway_t *gw, int code);
/** As souk__gateway_on_close, with the transport's words for why (the
 * peer's close reason, "connect failed: ...", or NULL), used in the log. */
void souk__gateway_on_close_reason(souk__gateway_t *gw, int code, const char *reason);
/** The timer armed by ops.timer fired. */
void souk__gateway_on_timer(souk__gateway_t *gw);
/** The identify slot asked for by ops.request_identify is ours.  Returns
 * true if IDENTIFY was sent, false if the session no longer needed it (the
 * slot should still be released: it may have been spent). */
bool souk__gateway_identify_granted(souk__gateway_t *gw);

/** The identify slot asked for by ops.request_identify is ours, but no
 * IDENTIFY may go for delay_ms (the daily budget of session starts is
 * spent, see idbudget.h): the connection is closed and the session
 * connects again after delay_ms, without counting it as a failure.  Does
 * nothing unless the session is waiting for its slot. */
void souk__gateway_identify_deferred(souk__gateway_t *gw, uint64_t delay_ms);

/** Queue a payload (a complete JSON object such as {"op":8,...}) for
 * sending when the session is ready and the send limit allows; text is
 * copied.  0, SOUK_ETOOBIG (over 4096 bytes: never sent), SOUK_EFULL (queue
 * full), SOUK_ESTOPPED (stopped or fatal), SOUK_EINVAL. */
int souk__gateway_send(souk__gateway_t *gw, const char *text, size_t len);
/** Change the presence: kept for the next IDENTIFY and, when ready, sent as
 * op 3 through the send queue.  0 or as souk__gateway_send. */
int souk__gateway_set_presence(souk__gateway_t *gw, const souk__presence_t *p);

/** Current counters. */
void souk__gateway_stats(const souk__gateway_t *gw, souk__gateway_stats_t *out);
/** Current state. */
souk__gw_state_t souk__gateway_state(const souk__gateway_t *gw);
/** Dispatches received with event name, 0 if none.  Only the first 128
 * distinct names are counted apart; later new names are counted together
 * under "other". */
uint64_t souk__gateway_event_count(const souk__gateway_t *gw, const char *name);
/** Call fn for every event name received and its count. */
void souk__gateway_event_counts(const souk__gateway_t *gw,
                               void (*fn)(void *ud, const char *name, uint64_t n), void *ud);
/** The resumable session, if any: pointers valid until the next call into
 * gw.  Returns false when there is none. */
bool souk__gateway_session(const souk__gateway_t *gw, const char **session_id,
                          const char **resume_url, uint64_t *seq);

/** Explanation for a close code Discord uses to refuse a session, or NULL
 * if code is not fatal. */
const char *souk__gateway_fatal_reason(int code);

#endif
