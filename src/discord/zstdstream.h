/* Discord's zstd-stream transport compression (compress=zstd-stream).
 *
 * The gateway compresses the whole connection as one zstd stream through
 * one compression context, flushing at the end of every payload, so each
 * payload ends on a block boundary and decodes with everything sent
 * before it as history.  One souk__zstdstream_t (one decompression
 * context) per connection, reset on every reconnect.
 *
 * Where a payload ends: a flush leaves no mark in a zstd stream.  It only
 * ends the current block, and a block also ends when it is full (128 KiB
 * of text) or where the compressor chose to split it.  So a message that
 * ends on a block boundary (the decoder has consumed all input, flushed
 * all output and waits for the next block header) is a whole payload only
 * if its text is whole: gateway payloads are JSON objects, and the text
 * is complete once the outermost brace has closed (strings and escapes
 * skipped, 64 bytes at a time with bit masks as simdjson finds strings,
 * the scan resumed where the last message stopped).  A server that ends
 * a zstd frame per payload is taken at its word at the frame's end.  A
 * payload split over several WebSocket messages, at a block boundary or
 * inside a block, is put back together until it is whole.
 *
 * Memory: the decoder keeps a window of history of the size the server's
 * frame header asks for (Discord's own is not documented; the fake's is
 * 256 KiB), refused above SOUK_ZSTD_WINDOW_LOG_MAX; the output buffer is
 * reused, and released after a message above 64 KiB. */
#ifndef SOUK_DISCORD_ZSTDSTREAM_H
#define SOUK_DISCORD_ZSTDSTREAM_H

#include "souk/buf.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/** Largest window accepted from the server, as a power of two: 8 MiB.  A
 * stream asking for more is corrupt as far as souk is concerned (it would
 * cost that much memory per shard). */
#define SOUK_ZSTD_WINDOW_LOG_MAX 23

/** One connection's zstd decompression state.  Zero-initialise, then
 * souk__zstdstream_init. */
typedef struct souk__zstdstream {
  struct ZSTD_DCtx_s *dctx;
  bool broken;    /* an error happened: reset before further use */
  souk_buf_t out; /* the message being put together, then the last one */
  bool partial;   /* out holds the start of an unfinished message */
  /* The scan for the end of the JSON text in out (see above), kept as of
   * scan_pos, a multiple of 64: a shorter tail is scanned again next time. */
  size_t scan_pos;    /* bytes of out scanned so far */
  int64_t depth;      /* objects and arrays open at scan_pos */
  uint64_t in_str;    /* all ones when scan_pos is inside a string */
  uint64_t escaped;   /* 1 when the byte at scan_pos is escaped */
  bool scan_started;  /* the first non-blank byte was seen */
  bool scan_opaque;   /* the text is no object or array: never held back */
  size_t max;         /* limit on one decompressed message */
  size_t keep;        /* an output buffer larger than this is released */
  uint64_t bytes_in;  /* compressed bytes fed */
  uint64_t bytes_out; /* decompressed bytes produced */
  uint64_t messages;  /* complete messages produced */
} souk__zstdstream_t;

/** Prepare zs; max is the decompressed size limit (0: 16 MiB).  0 or
 * SOUK_ENOMEM. */
int souk__zstdstream_init(souk__zstdstream_t *zs, size_t max);
/** Start a new stream (a new connection): forgets the history and any
 * unfinished message, keeps the buffer and the counters. */
void souk__zstdstream_reset(souk__zstdstream_t *zs);
/** Release everything; zs may be initialised again afterwards. */
void souk__zstdstream_free(souk__zstdstream_t *zs);

/** Feed one binary WebSocket message.  Returns 1 when a payload is
 * complete (a whole JSON object, see above): *out / *outlen hold its text
 * (NUL-terminated, owned by zs, valid until the next feed, reset or free);
 * 0 when more is needed; SOUK_EPARSE for corrupt data (or a window over
 * the limit) or SOUK_ETOOBIG when the payload would exceed max.  After an
 * error the stream is unusable until souk__zstdstream_reset(). */
int souk__zstdstream_feed(souk__zstdstream_t *zs, const void *data, size_t len, const char **out,
                          size_t *outlen);

#endif
