/* Discord's zstd-stream transport compression (compress=zstd-stream).
 *
 * The gateway compresses the whole connection as one zstd stream through
 * one compression context, flushing at the end of every payload, so each
 * payload ends on a block boundary and decodes with everything sent
 * before it as history.  One souk__zstdstream_t (one decompression context)
 * per connection, reset on every reconnect.  A payload is complete when
 * the decoder has consumed all input, flushed all output and waits for
 * the next block header (or has finished a frame: a server that ends a
 * frame per payload works too); a payload split over several WebSocket
 * messages is put back together the same way.
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
  bool broken;        /* an error happened: reset before further use */
  souk_buf_t out;     /* the message being put together, then the last one */
  bool partial;       /* out holds the start of an unfinished message */
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
 * complete: *out / *outlen hold its text (NUL-terminated, owned by zs,
 * valid until the next feed, reset or free); 0 when more is needed;
 * SOUK_EPARSE for corrupt data (or a window over the limit) or
 * SOUK_ETOOBIG when the payload would exceed max.  After an error the
 * stream is unusable until souk__zstdstream_reset(). */
int souk__zstdstream_feed(souk__zstdstream_t *zs, const void *data, size_t len, const char **out,
                         size_t *outlen);

#endif
