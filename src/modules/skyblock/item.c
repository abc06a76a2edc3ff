/* Item decoding and the item key (see item.h). */
#include "item.h"

#include "b64.h"
#include "inflate.h"
#include "nbt.h"
#include "souk/alloc.h"
#include "souk/err.h"

#include <libdeflate.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

struct sb_decoder {
  uint8_t *gz; /* base64-decoded bytes */
  size_t gz_cap;
  uint8_t *nbt; /* inflated bytes */
  size_t nbt_cap;
  sb_inflater_t inflater;
  sb_inflate_t *own;
  struct libdeflate_decompressor *ld;
  z_stream zs;
  bool zs_ready;
  souk_json_t pet_json; /* petInfo's tokens, reused */
  souk_buf_t tmp;       /* item_bytes unescaped from JSON; petInfo as UTF-8 */
};

/* ---- allocation routing ------------------------------------------------ */

static pthread_once_t ld_once = PTHREAD_ONCE_INIT;

/* libdeflate allocates its decompressor through these, so out of memory
 * ends in souk_oom like every other allocation. */
static void ld_init(void) { libdeflate_set_memory_allocator(souk_malloc, souk_free); }

static voidpf zs_alloc(voidpf opaque, uInt items, uInt size) {
  (void)opaque;
  return souk_calloc(items, size);
}
static void zs_free(voidpf opaque, voidpf p) {
  (void)opaque;
  souk_free(p);
}

sb_decoder_t *sb_decoder_new(void) {
  pthread_once(&ld_once, ld_init);
  sb_decoder_t *d = souk_calloc(1, sizeof *d);
  d->own = sb_inflate_new();
  d->ld = libdeflate_alloc_decompressor();
  if (!d->ld) souk_oom(sizeof *d);
  return d;
}

void sb_decoder_free(sb_decoder_t *d) {
  if (!d) return;
  sb_inflate_free(d->own);
  if (d->ld) libdeflate_free_decompressor(d->ld);
  if (d->zs_ready) inflateEnd(&d->zs);
  souk_json_free(&d->pet_json);
  souk_buf_free(&d->tmp);
  souk_free(d->gz);
  souk_free(d->nbt);
  souk_free(d);
}

void sb_decoder_set_inflater(sb_decoder_t *d, sb_inflater_t which) { d->inflater = which; }

/* Grow *buf to at least n bytes; the content is not kept. */
static void grow(uint8_t **buf, size_t *cap, size_t n) {
  if (n <= *cap) return;
  size_t c = *cap ? *cap : 4096;
  while (c < n)
    c *= 2;
  souk_free(*buf);
  *buf = souk_malloc(c);
  *cap = c;
}

/* ---- stages 1 and 2 ---------------------------------------------------- */

int sb_decode_base64(sb_decoder_t *d, const char *b64, size_t len, const uint8_t **gz,
                     size_t *gz_len) {
  if (len > (size_t)SB_ITEM_MAX_GZIP / 3 * 4 + 4) return SOUK_ETOOBIG;
  grow(&d->gz, &d->gz_cap, sb_b64_out_cap(len));
  int rc = sb_b64_decode(b64, len, d->gz, gz_len);
  if (rc) return rc;
  *gz = d->gz;
  return 0;
}

static int gunzip_zlib(sb_decoder_t *d, const uint8_t *gz, size_t n, size_t isize) {
  if (!d->zs_ready) {
    d->zs.zalloc = zs_alloc;
    d->zs.zfree = zs_free;
    /* 16 + 15: a gzip wrapper (header, CRC-32 and ISIZE checked) around a
     * 32 KB window. */
    if (inflateInit2(&d->zs, 16 + MAX_WBITS) != Z_OK) return SOUK_ENOMEM;
    d->zs_ready = true;
  } else if (inflateReset(&d->zs) != Z_OK) {
    return SOUK_EPARSE;
  }
  d->zs.next_in = (Bytef *)gz;
  d->zs.avail_in = (uInt)n;
  d->zs.next_out = d->nbt;
  /* One byte more than ISIZE promises, so a stream that runs longer is
   * seen (zlib checks ISIZE itself too). */
  d->zs.avail_out = (uInt)(isize + 1);
  int zr = inflate(&d->zs, Z_FINISH);
  if (zr != Z_STREAM_END || d->zs.avail_in != 0 || d->zs.total_out != isize) return SOUK_EPARSE;
  return 0;
}

int sb_decode_gunzip(sb_decoder_t *d, const uint8_t *gz, size_t n, const uint8_t **nbt,
                     size_t *nbt_len) {
  /* A gzip member is at least a 10-byte header and an 8-byte trailer. */
  if (n < 18) return SOUK_EPARSE;
  if (n > SB_ITEM_MAX_GZIP) return SOUK_ETOOBIG;
  /* ISIZE, the trailer's last field, is the length mod 2^32: it sizes the
   * output buffer.  A stream that lies about it is caught by the
   * inflater's own check against it, and a stream longer than the buffer
   * by the buffer's end, so ISIZE bounds the work whatever it says. */
  const uint8_t *t = gz + n - 4;
  size_t isize = (size_t)t[0] | (size_t)t[1] << 8 | (size_t)t[2] << 16 | (size_t)t[3] << 24;
  if (isize > SB_ITEM_MAX_NBT) return SOUK_ETOOBIG;
  /* The slack souk's inflater writes into, which is also the one byte
   * more that zlib is given to see a stream run past ISIZE. */
  grow(&d->nbt, &d->nbt_cap, isize + SB_INFLATE_SLACK);
  if (d->inflater == SB_INFLATE_SOUK) {
    if (sb_gunzip(d->own, gz, n, d->nbt, isize)) return SOUK_EPARSE;
  } else if (d->inflater == SB_INFLATE_ZLIB) {
    int rc = gunzip_zlib(d, gz, n, isize);
    if (rc) return rc;
  } else {
    size_t in_used = 0, out_len = 0;
    enum libdeflate_result r =
        libdeflate_gzip_decompress_ex(d->ld, gz, n, d->nbt, isize, &in_used, &out_len);
    /* One member only: bytes after it (a second member, garbage) are an
     * error, as the base64 around them would be. */
    if (r != LIBDEFLATE_SUCCESS || in_used != n || out_len != isize) return SOUK_EPARSE;
  }
  *nbt = d->nbt;
  *nbt_len = isize;
  return 0;
}

/* ---- rarity and pets --------------------------------------------------- */

static const char *const rarity_names[] = {
    "UNKNOWN", "COMMON", "UNCOMMON", "RARE",         "EPIC",     "LEGENDARY",
    "MYTHIC",  "DIVINE", "SPECIAL",  "VERY_SPECIAL", "ULTIMATE", "ADMIN",
};

const char *sb_rarity_name(sb_rarity_t r) {
  return (unsigned)r < sizeof rarity_names / sizeof *rarity_names ? rarity_names[r] : "UNKNOWN";
}

sb_rarity_t sb_rarity_parse(const char *s, size_t n) {
  if (n == 12 && memcmp(s, "VERY SPECIAL", 12) == 0) return SB_RARITY_VERY_SPECIAL;
  /* The API's "tier" field still calls DIVINE by its old name. */
  if (n == 7 && memcmp(s, "SUPREME", 7) == 0) return SB_RARITY_DIVINE;
  for (size_t r = 1; r < sizeof rarity_names / sizeof *rarity_names; r++)
    if (strlen(rarity_names[r]) == n && memcmp(rarity_names[r], s, n) == 0) return (sb_rarity_t)r;
  return SB_RARITY_UNKNOWN;
}

/* Exp from each pet level to the next, from the SkyBlock wiki's Pets page
 * (also in SkyCrypt and every profile viewer).  A pet of a given rarity
 * reads the table from an offset (pet_offset) for 99 levels. */
static const uint32_t pet_xp[] = {
    100,     110,     120,     130,     145,     160,     175,     190,     210,     230,    250,
    275,     300,     330,     360,     400,     440,     490,     540,     600,     660,    730,
    800,     880,     960,     1050,    1150,    1260,    1380,    1510,    1650,    1800,   1960,
    2130,    2310,    2500,    2700,    2920,    3160,    3420,    3700,    4000,    4350,   4750,
    5200,    5700,    6300,    7000,    7800,    8700,    9700,    10800,   12000,   13300,  14700,
    16200,   17800,   19500,   21300,   23200,   25200,   27400,   29800,   32400,   35200,  38200,
    41400,   44800,   48400,   52200,   56200,   60400,   64800,   69400,   74200,   79200,  84700,
    90700,   97200,   104200,  111700,  119700,  128200,  137200,  146700,  156700,  167700, 179700,
    192700,  206700,  221700,  237700,  254700,  272700,  291700,  311700,  333700,  357700, 383700,
    411700,  441700,  476700,  516700,  561700,  611700,  666700,  726700,  791700,  861700, 936700,
    1016700, 1101700, 1191700, 1286700, 1386700, 1496700, 1616700, 1746700, 1886700,
};
#define PET_XP_N (sizeof pet_xp / sizeof *pet_xp)

static unsigned pet_offset(sb_rarity_t r) {
  switch (r) {
  case SB_RARITY_COMMON:
    return 0;
  case SB_RARITY_UNCOMMON:
    return 6;
  case SB_RARITY_RARE:
    return 11;
  case SB_RARITY_EPIC:
    return 16;
  case SB_RARITY_UNKNOWN:
    return 0;
  default:
    return 20;
  }
}

unsigned sb_pet_level(double exp, sb_rarity_t rarity, unsigned max_level) {
  unsigned off = pet_offset(rarity), level = 1;
  double total = 0;
  /* !(exp > 0) also catches NaN. */
  if (!(exp > 0)) return 1;
  for (unsigned i = 0; level < max_level; i++) {
    double need = off + i < PET_XP_N ? pet_xp[off + i] : pet_xp[PET_XP_N - 1];
    if (total + need > exp) break;
    total += need;
    level++;
  }
  return level;
}

unsigned sb_pet_max_level(const char *type) {
  return strcmp(type, "GOLDEN_DRAGON") == 0 || strcmp(type, "JADE_DRAGON") == 0 ||
                 strcmp(type, "ROSE_DRAGON") == 0
             ? 200
             : 100;
}

const char *sb_pet_bracket(unsigned level, unsigned max_level) {
  if (level <= 1) return "L1";
  if (level < 50) return "L2-49";
  if (level < 80) return "L50-79";
  if (level < 90) return "L80-89";
  if (level < 100) return "L90-99";
  if (level == 100 || max_level <= 100) return "L100";
  if (level < 150) return "L101-149";
  if (level < 200) return "L150-199";
  return "L200";
}

/* ---- the walk ---------------------------------------------------------- */

/* Enchantments, attributes and runes seen, by name (pointers into the NBT
 * buffer, modified UTF-8).  Past the cap they are counted, not kept. */
#define KV_MAX 32
typedef struct kv {
  const char *name;
  size_t len;
  int64_t val;
} kv_t;
typedef struct kvs {
  kv_t v[KV_MAX];
  size_t n, seen;
} kvs_t;

/* Strings are remembered as (pointer, length) into the NBT buffer. */
typedef struct span {
  const char *s;
  size_t n;
} span_t;

typedef struct walk {
  sb_nbt_cur_t c;
  span_t id, name, lore_last, pet_info, modifier, potion, potion_type;
  int64_t count, upgrade_level, dungeon_level, rarity_upgrades, potion_level, splash;
  bool have_count, have_potion_level, found;
  unsigned gems;
  kvs_t ench, attr, runes;
  kvs_t *kvs; /* where walk_kvs_field puts what it reads */
} walk_t;

/* Handles one entry of a compound: the tag's type and name are read, the
 * cursor is at its value, which the handler must consume (read or skip).
 * depth is the compound's. */
typedef int (*field_cb)(walk_t *w, uint8_t t, const char *name, size_t nl, int depth);

/* Walk the compound at the cursor (nested at depth), entry by entry. */
static int walk_compound(walk_t *w, int depth, field_cb fn) {
  for (;;) {
    uint8_t t;
    const char *name;
    size_t nl;
    int rc = sb_nbt_read_head(&w->c, &t, &name, &nl);
    if (rc) return rc;
    if (t == SB_NBT_END) return 0;
    if ((rc = fn(w, t, name, nl, depth))) return rc;
  }
}

#define NAME_IS(lit) sb_nbt_name_is(name, nl, lit, sizeof lit - 1)

/* Read an integer value into *v when the tag has an integer type; any
 * other type is skipped and *v left alone (a field with an unexpected type
 * is treated as absent, never as an error). */
static int read_int_or_skip(walk_t *w, uint8_t t, int depth, int64_t *v) {
  int rc = sb_nbt_read_int(&w->c, t, v);
  if (rc == SOUK_EINVAL) return sb_nbt_skip(&w->c, t, depth);
  return rc;
}

static int read_str_or_skip(walk_t *w, uint8_t t, int depth, span_t *s) {
  if (t != SB_NBT_STRING) return sb_nbt_skip(&w->c, t, depth);
  return sb_nbt_read_str(&w->c, &s->s, &s->n);
}

/* A compound of name -> integer (enchantments, attributes, runes), into
 * w->kvs. */
static int kvs_field(walk_t *w, uint8_t t, const char *name, size_t nl, int depth) {
  int64_t v;
  int rc = sb_nbt_read_int(&w->c, t, &v);
  if (rc == SOUK_EINVAL) return sb_nbt_skip(&w->c, t, depth);
  if (rc) return rc;
  w->kvs->seen++;
  if (w->kvs->n < KV_MAX) w->kvs->v[w->kvs->n++] = (kv_t){name, nl, v};
  return 0;
}

static int walk_kvs(walk_t *w, int depth, kvs_t *out) {
  w->kvs = out;
  return walk_compound(w, depth, kvs_field);
}

/* gems: filled slots are "<SLOT>_<n>" keys holding a quality string (or,
 * for some gems, a compound with "quality"); "unlocked_slots" and the
 * "<SLOT>_<n>_gem" keys naming a universal slot's gem are not gems. */
static int gems_field(walk_t *w, uint8_t t, const char *name, size_t nl, int depth) {
  bool is_gem_name = nl >= 4 && memcmp(name + nl - 4, "_gem", 4) == 0;
  if ((t == SB_NBT_STRING || t == SB_NBT_COMPOUND) && !is_gem_name && !NAME_IS("unlocked_slots") &&
      w->gems < 255)
    w->gems++;
  return sb_nbt_skip(&w->c, t, depth);
}

static int extra_field(walk_t *w, uint8_t t, const char *name, size_t nl, int depth) {
  if (NAME_IS("id")) return read_str_or_skip(w, t, depth, &w->id);
  if (NAME_IS("petInfo")) return read_str_or_skip(w, t, depth, &w->pet_info);
  if (NAME_IS("modifier")) return read_str_or_skip(w, t, depth, &w->modifier);
  if (NAME_IS("upgrade_level")) return read_int_or_skip(w, t, depth, &w->upgrade_level);
  if (NAME_IS("dungeon_item_level")) return read_int_or_skip(w, t, depth, &w->dungeon_level);
  if (NAME_IS("rarity_upgrades")) return read_int_or_skip(w, t, depth, &w->rarity_upgrades);
  if (NAME_IS("potion")) return read_str_or_skip(w, t, depth, &w->potion);
  if (NAME_IS("potion_type")) return read_str_or_skip(w, t, depth, &w->potion_type);
  if (NAME_IS("splash")) return read_int_or_skip(w, t, depth, &w->splash);
  if (NAME_IS("potion_level")) {
    w->have_potion_level = t >= SB_NBT_BYTE && t <= SB_NBT_LONG;
    return read_int_or_skip(w, t, depth, &w->potion_level);
  }
  if (t == SB_NBT_COMPOUND) {
    if (NAME_IS("enchantments")) return walk_kvs(w, depth + 1, &w->ench);
    if (NAME_IS("attributes")) return walk_kvs(w, depth + 1, &w->attr);
    if (NAME_IS("runes")) return walk_kvs(w, depth + 1, &w->runes);
    if (NAME_IS("gems")) return walk_compound(w, depth + 1, gems_field);
  }
  return sb_nbt_skip(&w->c, t, depth);
}

/* display.Lore: a list of strings; the last non-empty line names the
 * rarity ("§6§lLEGENDARY SWORD").  depth is the enclosing compound's. */
static int walk_lore(walk_t *w, int depth) {
  if (sb_nbt_left(&w->c) < 5) return SOUK_EPARSE;
  uint8_t et = w->c.p[0];
  if (et != SB_NBT_STRING) return sb_nbt_skip(&w->c, SB_NBT_LIST, depth);
  int32_t n = (int32_t)sb_be32(w->c.p + 1);
  if (n < 0 || (size_t)n > (sb_nbt_left(&w->c) - 5) / 2) return SOUK_EPARSE;
  w->c.p += 5;
  for (int32_t i = 0; i < n; i++) {
    span_t s;
    int rc = sb_nbt_read_str(&w->c, &s.s, &s.n);
    if (rc) return rc;
    if (s.n) w->lore_last = s;
  }
  return 0;
}

static int display_field(walk_t *w, uint8_t t, const char *name, size_t nl, int depth) {
  if (NAME_IS("Name")) return read_str_or_skip(w, t, depth, &w->name);
  if (t == SB_NBT_LIST && NAME_IS("Lore")) return walk_lore(w, depth);
  return sb_nbt_skip(&w->c, t, depth);
}

static int tag_field(walk_t *w, uint8_t t, const char *name, size_t nl, int depth) {
  if (t == SB_NBT_COMPOUND && NAME_IS("ExtraAttributes"))
    return walk_compound(w, depth + 1, extra_field);
  if (t == SB_NBT_COMPOUND && NAME_IS("display")) return walk_compound(w, depth + 1, display_field);
  return sb_nbt_skip(&w->c, t, depth);
}

/* One item stack: {id, Count, tag, Damage}. */
static int stack_field(walk_t *w, uint8_t t, const char *name, size_t nl, int depth) {
  if (NAME_IS("Count")) {
    w->have_count = t >= SB_NBT_BYTE && t <= SB_NBT_LONG;
    return read_int_or_skip(w, t, depth, &w->count);
  }
  if (t == SB_NBT_COMPOUND && NAME_IS("tag")) return walk_compound(w, depth + 1, tag_field);
  return sb_nbt_skip(&w->c, t, depth);
}

/* The root compound: the list "i" of item stacks; the first is the item
 * (auctions hold one), the rest are checked and skipped. */
static int root_field(walk_t *w, uint8_t t, const char *name, size_t nl, int depth) {
  if (t != SB_NBT_LIST || !NAME_IS("i") || w->found || sb_nbt_left(&w->c) < 5 ||
      w->c.p[0] != SB_NBT_COMPOUND)
    return sb_nbt_skip(&w->c, t, depth);
  int32_t n = (int32_t)sb_be32(w->c.p + 1);
  if (n < 0 || (size_t)n > sb_nbt_left(&w->c) - 5) return SOUK_EPARSE;
  w->c.p += 5;
  /* The list is at depth + 1, its stacks at depth + 2. */
  for (int32_t i = 0; i < n; i++) {
    int rc = i == 0 ? walk_compound(w, depth + 2, stack_field)
                    : sb_nbt_skip(&w->c, SB_NBT_COMPOUND, depth + 1);
    if (rc) return rc;
  }
  w->found = n > 0;
  return 0;
}

/* ---- building the key -------------------------------------------------- */

/* A bounded string being written: writes that do not fit are refused
 * whole (the caller decides what to drop), so a key is never cut inside a
 * component. */
typedef struct sw {
  char *s;
  size_t cap, len;
} sw_t;

static void sw_init(sw_t *w, char *s, size_t cap) {
  w->s = s;
  w->cap = cap;
  w->len = 0;
  s[0] = '\0';
}

/* Key components are ids and names: anything outside [A-Za-z0-9_.-]
 * (including the separators : , + =, and every non-ASCII byte) becomes
 * '_', so a component can never forge the key's structure. */
static char key_char(unsigned char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' ||
                 c == '.' || c == '-'
             ? (char)c
             : '_';
}

/* Append text verbatim (a literal separator) or as a sanitised component. */
static bool sw_put(sw_t *w, const char *s, size_t n, bool component) {
  if (w->cap - 1 - w->len < n) return false;
  for (size_t i = 0; i < n; i++)
    w->s[w->len + i] = component ? key_char((unsigned char)s[i]) : s[i];
  w->len += n;
  w->s[w->len] = '\0';
  return true;
}
static bool sw_lit(sw_t *w, const char *s) { return sw_put(w, s, strlen(s), false); }
static bool sw_comp(sw_t *w, const char *s, size_t n) { return sw_put(w, s, n, true); }
static bool sw_int(sw_t *w, int64_t v) {
  char b[24];
  int n = snprintf(b, sizeof b, "%lld", (long long)v);
  return sw_put(w, b, (size_t)n, false);
}

/* Truncate back to len (undo a partial write). */
static void sw_back(sw_t *w, size_t len) {
  w->len = len;
  w->s[len] = '\0';
}

static int kv_cmp(const void *a, const void *b) {
  const kv_t *x = a, *y = b;
  size_t n = x->len < y->len ? x->len : y->len;
  int c = memcmp(x->name, y->name, n);
  if (c) return c;
  return x->len < y->len ? -1 : x->len > y->len;
}

/* Append "<name><sep><val>" joined by join for each entry (that keep()
 * accepts), dropping whole entries that do not fit.  Returns how many were
 * written. */
static size_t sw_kvs(sw_t *w, const kvs_t *kv, const char *sep, const char *join,
                     bool (*keep)(const kv_t *)) {
  size_t written = 0;
  for (size_t i = 0; i < kv->n; i++) {
    if (keep && !keep(&kv->v[i])) continue;
    size_t mark = w->len;
    if ((written && !sw_lit(w, join)) || !sw_comp(w, kv->v[i].name, kv->v[i].len) ||
        !sw_lit(w, sep) || !sw_int(w, kv->v[i].val)) {
      sw_back(w, mark);
      break;
    }
    written++;
  }
  return written;
}

/* Copy a span into a fixed field as a sanitised component (ids). */
static void copy_comp(char *dst, size_t cap, span_t s) {
  sw_t w;
  sw_init(&w, dst, cap);
  if (s.n >= cap) s.n = cap - 1;
  sw_comp(&w, s.s, s.n);
}

static const struct {
  const char *name;
  int64_t min_level;
} notable_ench[] = {
    {"sharpness", 7},    {"critical", 7}, {"giant_killer", 7}, {"ender_slayer", 7},
    {"first_strike", 5}, {"power", 7},    {"growth", 7},       {"protection", 7},
    {"pristine", 5},     {"overload", 5},
};

static bool ench_notable(const kv_t *e) {
  if (e->len > 9 && memcmp(e->name, "ultimate_", 9) == 0) return true;
  for (size_t i = 0; i < sizeof notable_ench / sizeof *notable_ench; i++)
    if (strlen(notable_ench[i].name) == e->len &&
        memcmp(notable_ench[i].name, e->name, e->len) == 0)
      return e->val >= notable_ench[i].min_level;
  return false;
}

/* Append one attrs token, or nothing if it does not fit. */
static void attrs_token(sw_t *w, const char *text, size_t n) {
  size_t mark = w->len;
  if ((w->len && !sw_lit(w, ",")) || !sw_put(w, text, n, false)) sw_back(w, mark);
}

/* Append a formatted attrs token; one that does not fit in attrs (which
 * is shorter than tok) is dropped whole by attrs_token. */
__attribute__((format(printf, 2, 3))) static void attrs_fmt(sw_t *w, const char *fmt, ...) {
  char tok[sizeof((sb_item_t *)0)->attrs + 1];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(tok, sizeof tok, fmt, ap);
  va_end(ap);
  if (n > 0 && (size_t)n < sizeof tok) attrs_token(w, tok, (size_t)n);
}

/* Append a list token "<label>=<e1>+<e2>..." with as many whole elements as
 * fit; nothing when none does. */
static void attrs_list(sw_t *w, const char *label, const kvs_t *kv, bool (*keep)(const kv_t *)) {
  size_t mark = w->len;
  if ((w->len && !sw_lit(w, ",")) || !sw_lit(w, label) || !sw_lit(w, "=") ||
      sw_kvs(w, kv, "", "+", keep) == 0)
    sw_back(w, mark);
}

/* Remove § formatting codes (U+00A7, C2 A7 in (modified) UTF-8, and the
 * code character after it) from s into out, converting to UTF-8, cut at a
 * character boundary to fit cap - 1 bytes.  0 or SOUK_EPARSE. */
static int plain_text(span_t s, char *out, size_t cap, souk_buf_t *tmp) {
  souk_buf_reset(tmp);
  int rc = sb_mutf8_append(tmp, s.s, s.n);
  if (rc) return rc;
  size_t o = 0;
  const unsigned char *p = (const unsigned char *)tmp->data;
  for (size_t i = 0; i < tmp->len;) {
    if (p[i] == 0xC2 && i + 1 < tmp->len && p[i + 1] == 0xA7) {
      i += 2;
      if (i < tmp->len) i += p[i] < 0x80 ? 1 : souk_utf8_seq(p + i, tmp->len - i);
      continue;
    }
    size_t l = p[i] < 0x80 ? 1 : souk_utf8_seq(p + i, tmp->len - i);
    if (l == 0) l = 1; /* cannot happen after conversion; never loop */
    if (o + l > cap - 1) break;
    memcpy(out + o, p + i, l);
    o += l;
    i += l;
  }
  out[o] = '\0';
  return 0;
}

/* The rarity on a lore line: the first word that names one, after the
 * formatting codes are gone ("a LEGENDARY BOOTS a" on a recombobulated
 * item, where "a" was an obfuscated character). */
static sb_rarity_t lore_rarity(const char *line) {
  const char *p = line;
  while (*p) {
    while (*p == ' ')
      p++;
    const char *q = p;
    while (*q && *q != ' ')
      q++;
    size_t n = (size_t)(q - p);
    if (n == 4 && memcmp(p, "VERY", 4) == 0 && strncmp(q, " SPECIAL", 8) == 0)
      return SB_RARITY_VERY_SPECIAL;
    sb_rarity_t r = sb_rarity_parse(p, n);
    if (r != SB_RARITY_UNKNOWN) return r;
    p = q;
  }
  return SB_RARITY_UNKNOWN;
}

/* Copy JSON string token t of d->pet_json into a fixed field as a key
 * component; "" when absent. */
static void pet_field(sb_decoder_t *d, int obj, const char *key, char *dst, size_t cap) {
  int t = souk_json_get(&d->pet_json, obj, key);
  dst[0] = '\0';
  if (souk_json_type(&d->pet_json, t) != SOUK_JSON_STRING) return;
  size_t n;
  const char *raw = souk_json_raw(&d->pet_json, t, &n);
  copy_comp(dst, cap, (span_t){raw, n});
}

/* Pets: type, tier and level from petInfo, a JSON document in a string. */
static void pet_key(sb_decoder_t *d, const walk_t *w, sb_item_t *it, sw_t *key) {
  it->kind = SB_KIND_PET;
  souk_buf_reset(&d->tmp);
  int obj = -1;
  if (w->pet_info.s && sb_mutf8_append(&d->tmp, w->pet_info.s, w->pet_info.n) == 0 &&
      souk_json_parse(&d->pet_json, d->tmp.data, d->tmp.len) == 0 &&
      souk_json_type(&d->pet_json, 0) == SOUK_JSON_OBJECT)
    obj = 0;
  char tier[24] = "";
  if (obj == 0) {
    pet_field(d, obj, "type", it->pet_type, sizeof it->pet_type);
    pet_field(d, obj, "tier", tier, sizeof tier);
    pet_field(d, obj, "heldItem", it->pet_held, sizeof it->pet_held);
    pet_field(d, obj, "skin", it->pet_skin, sizeof it->pet_skin);
    double exp = 0, candy = 0;
    if (souk_json_double(&d->pet_json, souk_json_get(&d->pet_json, obj, "exp"), &exp) == 0)
      it->pet_exp = exp;
    if (souk_json_double(&d->pet_json, souk_json_get(&d->pet_json, obj, "candyUsed"), &candy) == 0)
      it->pet_candy = candy > 0;
  }
  sb_rarity_t r = sb_rarity_parse(tier, strlen(tier));
  if (!it->pet_type[0] || r == SB_RARITY_UNKNOWN) {
    sw_lit(key, "PET:UNKNOWN");
    return;
  }
  /* A Tier Boost shows (and levels) the pet one rarity higher. */
  if (strcmp(it->pet_held, "PET_ITEM_TIER_BOOST") == 0 && r < SB_RARITY_MYTHIC)
    r = (sb_rarity_t)(r + 1);
  it->rarity = r;
  unsigned max = sb_pet_max_level(it->pet_type);
  it->pet_level = (uint16_t)sb_pet_level(it->pet_exp, r, max);
  sw_lit(key, "PET:");
  sw_lit(key, it->pet_type);
  sw_lit(key, ":");
  sw_lit(key, sb_rarity_name(r));
  sw_lit(key, ":");
  sw_lit(key, sb_pet_bracket(it->pet_level, max));
}

static bool id_is(const sb_item_t *it, const char *s) { return strcmp(it->id, s) == 0; }

static int build(sb_decoder_t *d, walk_t *w, sb_item_t *it) {
  if (!w->id.s || w->id.n == 0) return SOUK_ENOTFOUND;
  if (w->id.n >= sizeof it->id) return SOUK_ETOOBIG;
  copy_comp(it->id, sizeof it->id, w->id);
  if (w->have_count && (w->count < 1 || w->count > UINT32_MAX)) return SOUK_EPARSE;
  it->count = w->have_count ? (uint32_t)w->count : 1;

  int rc;
  if (w->name.s && (rc = plain_text(w->name, it->name, sizeof it->name, &d->tmp))) return rc;
  if (w->lore_last.s) {
    char line[128];
    if ((rc = plain_text(w->lore_last, line, sizeof line, &d->tmp))) return rc;
    it->rarity = lore_rarity(line);
  }
  if (w->modifier.s) copy_comp(it->reforge, sizeof it->reforge, w->modifier);
  int64_t stars = w->upgrade_level > w->dungeon_level ? w->upgrade_level : w->dungeon_level;
  it->stars = (uint8_t)(stars < 0 ? 0 : stars > 255 ? 255 : stars);
  it->recomb = w->rarity_upgrades > 0;
  it->gems = (uint8_t)w->gems;
  it->n_enchants = (uint8_t)(w->ench.seen > 255 ? 255 : w->ench.seen);
  it->n_kuudra = (uint8_t)(w->attr.seen > 255 ? 255 : w->attr.seen);
  qsort(w->ench.v, w->ench.n, sizeof(kv_t), kv_cmp);
  qsort(w->attr.v, w->attr.n, sizeof(kv_t), kv_cmp);
  qsort(w->runes.v, w->runes.n, sizeof(kv_t), kv_cmp);

  sw_t key;
  sw_init(&key, it->key, sizeof it->key);
  bool key_has_attr = false, key_has_ench = false;
  if (id_is(it, "PET")) {
    pet_key(d, w, it, &key);
  } else if (id_is(it, "ENCHANTED_BOOK") && w->ench.n) {
    it->kind = SB_KIND_BOOK;
    sw_lit(&key, "ENCHANTED_BOOK:");
    sw_kvs(&key, &w->ench, ":", "+", NULL);
    key_has_ench = true;
  } else if ((id_is(it, "RUNE") || id_is(it, "UNIQUE_RUNE")) && w->runes.n) {
    it->kind = SB_KIND_RUNE;
    sw_lit(&key, it->id);
    sw_lit(&key, ":");
    sw_kvs(&key, &w->runes, ":", "+", NULL);
  } else if (id_is(it, "ATTRIBUTE_SHARD") && w->attr.n) {
    it->kind = SB_KIND_SHARD;
    sw_lit(&key, "ATTRIBUTE_SHARD:");
    sw_kvs(&key, &w->attr, ":", "+", NULL);
    key_has_attr = true;
  } else if (id_is(it, "POTION") && w->potion.s && w->have_potion_level) {
    it->kind = SB_KIND_POTION;
    sw_lit(&key, "POTION:");
    sw_comp(&key, w->potion.s, w->potion.n < 48 ? w->potion.n : 48);
    sw_lit(&key, ":");
    sw_int(&key, w->potion_level);
    bool splash = w->splash > 0 || (w->potion_type.n >= 6 &&
                                    memmem(w->potion_type.s, w->potion_type.n, "SPLASH", 6));
    if (splash) sw_lit(&key, ":splash");
  } else {
    sw_lit(&key, it->id);
  }

  sw_t at;
  sw_init(&at, it->attrs, sizeof it->attrs);
  if (it->stars) attrs_fmt(&at, "stars=%u", it->stars);
  if (it->recomb) attrs_token(&at, "recomb", 6);
  if (!key_has_ench) attrs_list(&at, "ench", &w->ench, ench_notable);
  if (!key_has_attr) attrs_list(&at, "kuudra", &w->attr, NULL);
  if (it->gems) attrs_fmt(&at, "gems=%u", it->gems);
  if (it->kind == SB_KIND_PET) {
    if (it->pet_held[0]) attrs_fmt(&at, "held=%s", it->pet_held);
    if (it->pet_skin[0]) attrs_fmt(&at, "skin=%s", it->pet_skin);
    if (it->pet_candy) attrs_token(&at, "candy", 5);
  }
  return 0;
}

int sb_item_from_nbt(sb_decoder_t *d, const uint8_t *nbt, size_t n, sb_item_t *out) {
  walk_t *w = &(walk_t){.c = {nbt, nbt + n}};
  memset(out, 0, sizeof *out);
  uint8_t t;
  const char *name;
  size_t nl;
  int rc = sb_nbt_read_head(&w->c, &t, &name, &nl);
  if (rc) return rc;
  if (t != SB_NBT_COMPOUND) return SOUK_EPARSE;
  if ((rc = walk_compound(w, 1, root_field))) return rc;
  if (w->c.p != w->c.end) return SOUK_EPARSE;
  if (!w->found) return SOUK_ENOTFOUND;
  return build(d, w, out);
}

/* ---- whole pipelines --------------------------------------------------- */

static int to_nbt(sb_decoder_t *d, const char *b64, size_t len, const uint8_t **nbt, size_t *n) {
  const uint8_t *gz;
  size_t gz_len;
  int rc = sb_decode_base64(d, b64, len, &gz, &gz_len);
  if (rc) return rc;
  return sb_decode_gunzip(d, gz, gz_len, nbt, n);
}

int sb_item_decode(sb_decoder_t *d, const char *b64, size_t len, sb_item_t *out) {
  const uint8_t *nbt;
  size_t n;
  int rc = to_nbt(d, b64, len, &nbt, &n);
  if (rc) return rc;
  return sb_item_from_nbt(d, nbt, n, out);
}

int sb_nbt_to_json(sb_decoder_t *d, const char *b64, size_t len, souk_buf_t *out) {
  const uint8_t *nbt;
  size_t n;
  int rc = to_nbt(d, b64, len, &nbt, &n);
  if (rc) return rc;
  return sb_nbt_json(nbt, n, out);
}

int sb_item_decode_json(sb_decoder_t *d, const souk_json_t *j, int tok, sb_item_t *out) {
  if (souk_json_type(j, tok) == SOUK_JSON_OBJECT) tok = souk_json_get(j, tok, "data");
  if (souk_json_type(j, tok) != SOUK_JSON_STRING) return SOUK_EINVAL;
  size_t n;
  const char *raw = souk_json_raw(j, tok, &n);
  if (!j->toks[tok].escaped) return sb_item_decode(d, raw, n, out);
  /* Escapes only ever shrink the text, so n + 1 bytes hold it.  The key
   * builder reuses d->tmp later, once stage 1 has consumed the text. */
  souk_buf_reset(&d->tmp);
  souk_buf_reserve(&d->tmp, n + 1);
  int len = souk_json_str(j, tok, d->tmp.data, n + 1);
  if (len < 0) return SOUK_EPARSE;
  return sb_item_decode(d, d->tmp.data, (size_t)len, out);
}
