/* zlib-stream inflate for the gateway; see zstream.h. */
#include "discord/zstream.h"

#include "souk/alloc.h"
#include "souk/err.h"

#include <limits.h>
#include <string.h>

/* Buffers above this size (after one big message such as the READY of a
 * large bot) are given back: every shard keeps its own, and RSS counts. */
#define ZS_KEEP_DEFAULT ((size_t)64 << 10)

static const unsigned char zs_suffix[4] = {0x00, 0x00, 0xff, 0xff};

/* zlib allocates through souk's wrappers so that running out of memory
 * ends in the one place it should (souk_oom) rather than as Z_MEM_ERROR
 * in the middle of a message. */
static voidpf zs_alloc(voidpf opaque, uInt items, uInt size) { return souk_calloc(items, size); }
static void zs_free(voidpf opaque, voidpf p) { souk_free(p); }

int souk__zstream_init(souk__zstream_t *zs, size_t max) {
  memset(zs, 0, sizeof *zs);
  zs->max = max ? max : SOUK_ZSTREAM_MAX_DEFAULT;
  zs->keep = ZS_KEEP_DEFAULT;
  zs->z.zalloc = zs_alloc;
  zs->z.zfree = zs_free;
  /* Raw inflate, with the 2-byte zlib header checked by hand: Discord's
   * stream never ends, so its Adler-32 trailer never arrives and zlib would
   * checksum every byte for nothing (7% of souk's CPU per event). */
  if (inflateInit2(&zs->z, -15) != Z_OK) return SOUK_ENOMEM;
  zs->ready = true;
  return 0;
}

void souk__zstream_reset(souk__zstream_t *zs) {
  if (zs->ready) inflateReset(&zs->z);
  zs->hdr_len = 0;
  zs->broken = false;
  souk_buf_reset(&zs->in);
}

void souk__zstream_free(souk__zstream_t *zs) {
  if (zs->ready) inflateEnd(&zs->z);
  souk_buf_free(&zs->in);
  souk_buf_free(&zs->out);
  memset(zs, 0, sizeof *zs);
}

size_t souk__zbuf_room(souk_buf_t *o, size_t max, size_t first) {
  if (o->len + 1 >= o->cap) {
    size_t want = o->cap ? o->cap : (first > 4096 ? first : 4096);
    if (want > max + 1 - o->len) want = max + 1 - o->len;
    souk_buf_reserve(o, want);
  }
  size_t room = o->cap - o->len - 1;
  if (room > max + 1 - o->len) room = max + 1 - o->len;
  return room;
}

/* Inflate src[0..n) (one or more complete sync-flushed messages) into
 * zs->out, replacing what it held. */
static int zs_inflate(souk__zstream_t *zs, const unsigned char *src, size_t n) {
  /* The stream opens with a zlib header (RFC 1950): deflate, a window of
   * at most 32 KiB, no preset dictionary, and a check that makes the pair
   * a multiple of 31.  Anything else is not Discord's zlib-stream. */
  while (zs->hdr_len < 2 && n > 0) {
    zs->hdr[zs->hdr_len++] = *src++;
    n--;
    if (zs->hdr_len == 2) {
      unsigned cmf = zs->hdr[0], flg = zs->hdr[1];
      if ((cmf & 0x0f) != 8 || (cmf >> 4) > 7 || (flg & 0x20) || (cmf * 256 + flg) % 31 != 0)
        return SOUK_EPARSE;
    }
  }
  souk_buf_t *o = &zs->out;
  if (o->cap > zs->keep) souk_buf_free(o);
  o->len = 0;
  zs->z.next_in = (Bytef *)src;
  zs->z.avail_in = (uInt)n;
  for (;;) {
    size_t room = souk__zbuf_room(o, zs->max, n * 4);
    if (room > UINT_MAX) room = UINT_MAX;
    zs->z.next_out = (Bytef *)o->data + o->len;
    zs->z.avail_out = (uInt)room;
    int rc = inflate(&zs->z, Z_SYNC_FLUSH);
    o->len += room - zs->z.avail_out;
    if (o->len > zs->max) return SOUK_ETOOBIG;
    /* Discord never ends the stream, and a stream end would make whatever
     * follows undecodable: treat it as corruption, like zlib's errors. */
    if (rc != Z_OK && rc != Z_BUF_ERROR) return SOUK_EPARSE;
    if (zs->z.avail_in == 0 && zs->z.avail_out > 0) break; /* all flushed */
    if (zs->z.avail_out == 0) continue;                    /* needs room */
    if (rc == Z_BUF_ERROR) return SOUK_EPARSE;             /* stuck */
  }
  o->data[o->len] = '\0';
  zs->bytes_out += o->len;
  zs->messages++;
  return 1;
}

int souk__zstream_feed(souk__zstream_t *zs, const void *data, size_t len, const char **out,
                      size_t *outlen) {
  if (!zs->ready || zs->broken) return SOUK_EPARSE;
  zs->bytes_in += len;
  const unsigned char *p = data;
  int rc;
  if (zs->in.len == 0 && len >= 4 && memcmp(p + len - 4, zs_suffix, 4) == 0) {
    /* The common case: a whole message in one frame, inflated in place. */
    rc = zs_inflate(zs, p, len);
  } else {
    /* Compressed data is at most a little larger than its output, so a
     * message whose compressed part alone exceeds the limit is too big. */
    if (zs->in.len + len > zs->max + 1024) {
      zs->broken = true;
      souk_buf_free(&zs->in);
      return SOUK_ETOOBIG;
    }
    if (zs->in.len == 0 && zs->in.cap > zs->keep) souk_buf_free(&zs->in);
    souk_buf_append(&zs->in, p, len);
    if (zs->in.len < 4 || memcmp(zs->in.data + zs->in.len - 4, zs_suffix, 4) != 0) return 0;
    rc = zs_inflate(zs, (const unsigned char *)zs->in.data, zs->in.len);
    souk_buf_reset(&zs->in);
  }
  if (rc < 0) {
    zs->broken = true;
    souk_buf_reset(&zs->out);
    return rc;
  }
  *out = zs->out.data;
  *outlen = zs->out.len;
  return 1;
}
