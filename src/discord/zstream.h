/* Discord's zlib-stream transport compression (compress=zlib-stream).
 *
 * The gateway compresses the whole connection as one zlib stream and ends
 * every message with a Z_SYNC_FLUSH, so a message is complete when the
 * binary data received so far ends with 00 00 ff ff; one message may span
 * several WebSocket frames.  One souk__zstream_t per connection, reset on
 * every reconnect (a new connection starts a new zlib stream).
 *
 * Memory: the input and output buffers are kept and reused, so steady state
 * costs no allocation per message; a buffer that grew past `keep` bytes for
 * one big message (a large READY) is released before the next one. */
#ifndef SOUK_DISCORD_ZSTREAM_H
#define SOUK_DISCORD_ZSTREAM_H

#include "souk/buf.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <zlib.h>

/** Default limit on one decompressed message. */
#define SOUK_ZSTREAM_MAX_DEFAULT ((size_t)16 << 20)

/** One connection's inflate state.  Zero-initialise, then souk__zstream_init. */
typedef struct souk__zstream {
  z_stream z;
  bool ready;         /* inflateInit done */
  bool broken;        /* an error happened: reset before further use */
  souk_buf_t in;      /* compressed bytes of an incomplete message */
  souk_buf_t out;     /* the last decompressed message */
  size_t max;         /* limit on one decompressed message */
  size_t keep;        /* buffers larger than this are released after use */
  uint8_t hdr[2];     /* the zlib header, read by hand (see zstream.c) */
  uint8_t hdr_len;    /* bytes of it seen so far */
  uint64_t bytes_in;  /* compressed bytes fed */
  uint64_t bytes_out; /* decompressed bytes produced */
  uint64_t messages;  /* complete messages produced */
} souk__zstream_t;

/** Room for the next piece of a decompressed message in o, whose first
 * step is first bytes: grown when full, never past max + 1 bytes in all
 * (one byte more than allowed tells a message is too big without
 * decompressing all of it), one byte kept for the NUL.  Shared by the zlib
 * and zstd decoders. */
size_t souk__zbuf_room(souk_buf_t *o, size_t max, size_t first);

/** Prepare zs; max is the decompressed size limit (0: 16 MiB).  0 or
 * SOUK_ENOMEM (zlib could not initialise). */
int souk__zstream_init(souk__zstream_t *zs, size_t max);
/** Start a new stream (a new connection): drops buffered input and zlib's
 * window, keeps the buffers' memory and the byte counters. */
void souk__zstream_reset(souk__zstream_t *zs);
/** Release everything; zs may be initialised again afterwards. */
void souk__zstream_free(souk__zstream_t *zs);

/** Feed one binary WebSocket frame.  Returns 1 when a message is complete:
 * *out / *outlen then hold its decompressed text (NUL-terminated, owned by
 * zs, valid until the next feed, reset or free); 0 when more frames are
 * needed; SOUK_EPARSE for corrupt data or SOUK_ETOOBIG when the message
 * would exceed the limit.  After an error the stream is unusable until
 * souk__zstream_reset(): the connection must be closed and reopened. */
int souk__zstream_feed(souk__zstream_t *zs, const void *data, size_t len, const char **out,
                      size_t *outlen);

#endif
