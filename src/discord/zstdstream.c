/* zstd-stream decompression for the gateway; see zstdstream.h. */
#include "discord/zstdstream.h"

#include "discord/zstream.h"

#include "souk/alloc.h"
#include "souk/err.h"

#include <string.h>
#include <zstd.h>
#include <zstd_errors.h>

/* See zstream.c: one big message (a READY) must not pin its buffer. */
#define ZD_KEEP_DEFAULT ((size_t)64 << 10)
/* The size of a zstd block header (ZSTD_blockHeaderSize in zstd's own
 * sources, not in its public header).  ZSTD_decompressStream() returns it
 * as the next input size exactly when it stands between two blocks with
 * everything before flushed: the end of a payload. */
#define ZD_BLOCK_HEADER 3

int souk__zstdstream_init(souk__zstdstream_t *zs, size_t max) {
  memset(zs, 0, sizeof *zs);
  zs->max = max ? max : ((size_t)16 << 20);
  zs->keep = ZD_KEEP_DEFAULT;
  zs->dctx = ZSTD_createDCtx();
  if (!zs->dctx) return SOUK_ENOMEM;
  /* A server asking for a bigger window than this would cost that much
   * memory per shard: refuse it as corrupt rather than allocate it. */
  if (ZSTD_isError(ZSTD_DCtx_setParameter(zs->dctx, ZSTD_d_windowLogMax,
                                          SOUK_ZSTD_WINDOW_LOG_MAX))) {
    ZSTD_freeDCtx(zs->dctx);
    zs->dctx = NULL;
    return SOUK_ENOMEM;
  }
  return 0;
}

void souk__zstdstream_reset(souk__zstdstream_t *zs) {
  if (zs->dctx) ZSTD_DCtx_reset(zs->dctx, ZSTD_reset_session_only);
  zs->broken = false;
  zs->partial = false;
  souk_buf_reset(&zs->out);
}

void souk__zstdstream_free(souk__zstdstream_t *zs) {
  if (zs->dctx) ZSTD_freeDCtx(zs->dctx);
  souk_buf_free(&zs->out);
  memset(zs, 0, sizeof *zs);
}

static int zd_fail(souk__zstdstream_t *zs, int rc) {
  zs->broken = true;
  zs->partial = false;
  souk_buf_reset(&zs->out);
  return rc;
}

int souk__zstdstream_feed(souk__zstdstream_t *zs, const void *data, size_t len, const char **out,
                         size_t *outlen) {
  if (!zs->dctx || zs->broken) return SOUK_EPARSE;
  zs->bytes_in += len;
  souk_buf_t *o = &zs->out;
  if (!zs->partial) {
    if (o->cap > zs->keep) souk_buf_free(o);
    o->len = 0;
  }
  ZSTD_inBuffer in = {data, len, 0};
  size_t hint = 0;
  for (;;) {
    size_t room = souk__zbuf_room(o, zs->max, len * 8);
    ZSTD_outBuffer ob = {o->data + o->len, room, 0};
    hint = ZSTD_decompressStream(zs->dctx, &ob, &in);
    o->len += ob.pos;
    if (ZSTD_isError(hint)) {
      if (ZSTD_getErrorCode(hint) == ZSTD_error_memory_allocation) souk_oom(0);
      return zd_fail(zs, SOUK_EPARSE);
    }
    if (o->len > zs->max) return zd_fail(zs, SOUK_ETOOBIG);
    /* Everything consumed and the output not full: all is flushed. */
    if (in.pos == in.size && ob.pos < ob.size) break;
  }
  if (hint != 0 && hint != ZD_BLOCK_HEADER) {
    /* In the middle of a block: the rest comes in the next message. */
    zs->partial = true;
    return 0;
  }
  zs->partial = false;
  if (o->len == 0) return 0; /* only a frame header so far */
  o->data[o->len] = '\0';
  zs->bytes_out += o->len;
  zs->messages++;
  *out = o->data;
  *outlen = o->len;
  return 1;
}
