/* SkyBlock items: decoding item_bytes and the item key.
 *
 * item_bytes is base64 (b64.h) of gzip (RFC 1952) of one NBT document
 * (nbt.h): a root compound whose list "i" holds the item stack, a compound
 * with "id" (the Minecraft id), "Count", "Damage" and "tag".  The SkyBlock
 * id is tag.ExtraAttributes.id; what the price depends on lives beside it
 * in ExtraAttributes.  sb_item_decode() runs the three stages and walks
 * the NBT once, picking out what the key needs and skipping (but checking)
 * everything else: no tree is built.
 *
 * The item key (sb_item_t.key) names one market: listings with equal keys
 * are priced against each other.
 *
 *   kind     key                                    from ExtraAttributes
 *   pet      PET:<type>:<tier>:<bracket>            petInfo (a JSON string)
 *   book     ENCHANTED_BOOK:<enchant>:<level>       enchantments (one)
 *            ENCHANTED_BOOK:<e1>:<l1>+<e2>:<l2>...  several, sorted by name
 *   rune     <id>:<rune>:<level>                    runes (RUNE, UNIQUE_RUNE)
 *   potion   POTION:<potion>:<level>[:splash]       potion, potion_level,
 *                                                   potion_type / splash
 *   shard    ATTRIBUTE_SHARD:<attribute>:<level>    attributes (one)
 *   other    <id>
 *
 * Pets: <tier> is the rarity the game shows, so a Tier Boost held item
 * (heldItem PET_ITEM_TIER_BOOST) raises petInfo's tier by one, as the
 * auction's own "tier" field does.  The level comes from petInfo.exp with
 * the game's pet XP table (sb_pet_level), and the key keeps a bracket of
 * it, the steps at which prices jump:
 *   L1       level 1: fresh pets, bought to be levelled
 *   L2-49, L50-79, L80-89, L90-99, L100
 *   L101-149, L150-199, L200   only for pets that reach 200 (Golden, Jade
 *                               and Rose Dragon)
 * A pet whose petInfo is missing or unreadable gets the key "PET:UNKNOWN".
 *
 * The secondary key (sb_item_t.attrs) lists the value-bearing attributes,
 * comma-separated, always in this order, each only when present, so equal
 * items get equal strings:
 *   stars=N          max(upgrade_level, dungeon_item_level), dungeon stars
 *                    with master stars (up to 10)
 *   recomb           rarity_upgrades > 0 (Recombobulator applied)
 *   ench=<e><l>+...  notable enchantments, sorted by name: every
 *                    ultimate_* enchantment, and these at or above the
 *                    level shown, where a level costs far more than the
 *                    one below: sharpness 7, critical 7, giant_killer 7,
 *                    ender_slayer 7, first_strike 5, power 7, growth 7,
 *                    protection 7, pristine 5, overload 5.  Enchanted
 *                    books carry their enchantments in the key instead.
 *   kuudra=<a><l>+.. Kuudra attributes (ExtraAttributes.attributes), sorted
 *                    by name; attribute shards carry theirs in the key
 *   gems=N           gemstones applied (filled slots, not unlocked ones)
 *   held=<ITEM>      a pet's held item
 *   skin=<SKIN>      a pet's skin
 *   candy            a pet that has eaten pet candy (candyUsed > 0)
 * Reforges (modifier) are in sb_item_t.reforge but not in attrs: apart
 * from a few expensive reforge stones they move prices little.  When attrs
 * would not fit, whole tokens (and whole list elements) are dropped from
 * the end, so the prefix stays comparable.
 *
 * Ownership: a decoder owns its buffers, which grow to the largest item
 * seen and are reused; use one decoder per thread (it is not shared).  An
 * sb_item_t owns no memory. */
#ifndef SKYBLOCK_ITEM_H
#define SKYBLOCK_ITEM_H

#include "souk/buf.h"
#include "souk/json.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/** Largest gzip payload accepted (base64 input is at most 4/3 of it). */
#define SB_ITEM_MAX_GZIP (1u << 20)
/** Largest inflated NBT accepted: a gzip bomb is an error, not a 4 GB
 * allocation.  Real items are under 3 KB; backpacks with their contents
 * a few tens of KB. */
#define SB_ITEM_MAX_NBT (1u << 20)

/** Rarity tiers, in the game's order. */
typedef enum sb_rarity {
  SB_RARITY_UNKNOWN = 0,
  SB_RARITY_COMMON,
  SB_RARITY_UNCOMMON,
  SB_RARITY_RARE,
  SB_RARITY_EPIC,
  SB_RARITY_LEGENDARY,
  SB_RARITY_MYTHIC,
  SB_RARITY_DIVINE,
  SB_RARITY_SPECIAL,
  SB_RARITY_VERY_SPECIAL,
  SB_RARITY_ULTIMATE,
  SB_RARITY_ADMIN,
} sb_rarity_t;

/** "COMMON" ... "ADMIN" as the API spells them ("VERY_SPECIAL"), or
 * "UNKNOWN". */
const char *sb_rarity_name(sb_rarity_t r);
/** The rarity named s[0..n) ("VERY_SPECIAL" or "VERY SPECIAL"; "SUPREME",
 * the name the auction API's tier field still uses, is DIVINE), or
 * SB_RARITY_UNKNOWN. */
sb_rarity_t sb_rarity_parse(const char *s, size_t n);

/** What kind of market an item's key belongs to. */
typedef enum sb_kind {
  SB_KIND_ITEM = 0, /* key is the SkyBlock id */
  SB_KIND_PET,
  SB_KIND_BOOK,
  SB_KIND_RUNE,
  SB_KIND_POTION,
  SB_KIND_SHARD,
} sb_kind_t;

/** One decoded item stack: what the key, the sniper and FMV need. */
typedef struct sb_item {
  char id[64];       /**< tag.ExtraAttributes.id, e.g. "HYPERION", "PET" */
  char key[128];     /**< primary item key: one market (see the top of item.h) */
  char attrs[128];   /**< secondary key of value-bearing attributes, "" when none */
  char name[96];     /**< display name with the § formatting codes removed,
                          truncated at a character boundary; "" when absent */
  char reforge[32];  /**< ExtraAttributes.modifier, e.g. "ancient"; "" if none */
  char pet_type[48]; /**< petInfo.type, e.g. "ENDER_DRAGON"; pets only */
  char pet_held[64]; /**< petInfo.heldItem; "" if none */
  char pet_skin[64]; /**< petInfo.skin; "" if none */
  uint32_t count;    /**< Count, >= 1: prices are per unit */
  sb_kind_t kind;
  /** Rarity shown: a pet's tier (with Tier Boost), otherwise the rarity on
   * the last lore line (which includes a recombobulation). */
  sb_rarity_t rarity;
  uint16_t pet_level; /**< 1..200 for pets, 0 otherwise */
  uint8_t stars;      /**< max(upgrade_level, dungeon_item_level), clamped to 0..255 */
  uint8_t gems;       /**< gemstones applied */
  bool recomb;        /**< rarity_upgrades > 0 */
  bool pet_candy;     /**< candyUsed > 0 */
  uint8_t n_enchants; /**< number of enchantments (all, not only notable) */
  uint8_t n_kuudra;   /**< number of Kuudra attributes */
  double pet_exp;     /**< petInfo.exp (a game figure, never money) */
} sb_item_t;

/** Which inflater a decoder uses.  souk's own (inflate.h) is the default:
 * on these small members it is faster than libdeflate, which is faster
 * than zlib (bench/README.md has the figures); the other two are kept to
 * measure and to test against. */
typedef enum sb_inflater {
  SB_INFLATE_SOUK = 0,
  SB_INFLATE_LIBDEFLATE = 1,
  SB_INFLATE_ZLIB = 2,
  SB_INFLATE_COUNT /**< the number of inflaters */
} sb_inflater_t;

/** Reusable buffers and inflate state; one per thread, never shared. */
typedef struct sb_decoder sb_decoder_t;

/** A new decoder (aborts on out of memory, like every souk allocation). */
sb_decoder_t *sb_decoder_new(void);
/** Free a decoder; NULL is allowed. */
void sb_decoder_free(sb_decoder_t *d);
/** Choose the inflater (for the benchmark and tests). */
void sb_decoder_set_inflater(sb_decoder_t *d, sb_inflater_t which);

/** Decode one item_bytes string (base64 of gzip of NBT; for the object
 * form {"type":0,"data":"..."} pass the data string) into *out.  0, or
 * for hostile or corrupt input SOUK_EPARSE (malformed), SOUK_ETOOBIG
 * (over a size or depth limit): an error for that auction only.  *out is
 * fully written on success and unspecified on error. */
int sb_item_decode(sb_decoder_t *d, const char *b64, size_t len, sb_item_t *out);

/** Decode the item_bytes value at token tok of a parsed auction: either a
 * string or the object form's "data" string, with JSON escapes honoured
 * (a JSON encoder may write '=' as \u003d).  0, SOUK_EINVAL when tok is
 * neither form, or as sb_item_decode. */
int sb_item_decode_json(sb_decoder_t *d, const souk_json_t *j, int tok, sb_item_t *out);

/** The whole NBT of one item_bytes string as JSON text, appended to out
 * (tag types stripped, like the oracle: see sb_nbt_json), for tests,
 * /ah detail and debugging.  0 or as sb_item_decode. */
int sb_nbt_to_json(sb_decoder_t *d, const char *b64, size_t len, souk_buf_t *out);

/* The stages one by one, for the benchmark and the fuzz target.  Pointers
 * they return point into the decoder's buffers: valid until the same
 * stage runs again on d, or d is freed. */

/** Stage 1: base64 to gzip bytes. */
int sb_decode_base64(sb_decoder_t *d, const char *b64, size_t len, const uint8_t **gz,
                     size_t *gz_len);
/** Stage 2: gunzip (one member, CRC and length checked, nothing after it)
 * to NBT bytes, at most SB_ITEM_MAX_NBT. */
int sb_decode_gunzip(sb_decoder_t *d, const uint8_t *gz, size_t gz_len, const uint8_t **nbt,
                     size_t *nbt_len);
/** Stage 3: NBT bytes to an item and its key.  The whole document is
 * checked, not only the parts the key reads. */
int sb_item_from_nbt(sb_decoder_t *d, const uint8_t *nbt, size_t nbt_len, sb_item_t *out);

/** A pet's level from its total exp and its shown rarity, with the game's
 * pet XP table (levels offset by rarity: Common starts at the table's
 * start, Uncommon 6 entries in, Rare 11, Epic 16, Legendary and Mythic 20;
 * past level 100, for the pets that reach 200, each level costs the
 * table's last step, 1,886,700 exp).  max_level is 100 or 200.  Returns
 * 1..max_level. */
unsigned sb_pet_level(double exp, sb_rarity_t rarity, unsigned max_level);
/** The highest level a pet type reaches: 200 for GOLDEN_DRAGON,
 * JADE_DRAGON and ROSE_DRAGON, 100 otherwise. */
unsigned sb_pet_max_level(const char *type);
/** The key's level bracket for a level ("L1", "L2-49", ...). */
const char *sb_pet_bracket(unsigned level, unsigned max_level);

#endif
