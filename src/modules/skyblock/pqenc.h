/* The low-level encodings the Parquet writer (parquet.h) needs, kept apart
 * so the unit tests can check them byte by byte against the specs:
 *
 * - Thrift's compact protocol (the Thrift project's
 *   doc/specs/thrift-compact-protocol.md), in which Parquet writes its page
 *   headers and its footer: ULEB128 varints, zigzag integers, field headers
 *   with a delta from the previous field id, lists with their element type
 *   and size in one byte when the size is under 15.
 * - The RLE / bit-packed hybrid of parquet-format's Encodings.md, for
 *   definition levels and dictionary indices.
 *
 * Everything appends to a souk_buf_t and cannot fail (allocation aborts). */
#ifndef SKYBLOCK_PQENC_H
#define SKYBLOCK_PQENC_H

#include "souk/buf.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/** Append v as an unsigned LEB128 varint. */
void pq_uleb(souk_buf_t *b, uint64_t v);
/** Zigzag mapping of a signed integer (0,-1,1,-2 -> 0,1,2,3). */
static inline uint64_t pq_zigzag(int64_t v) { return ((uint64_t)v << 1) ^ (uint64_t)(v >> 63); }

/** Compact protocol type codes (field headers and list headers). */
enum {
  PQ_T_TRUE = 1, /* a bool field's value rides in its header */
  PQ_T_FALSE = 2,
  PQ_T_BYTE = 3,
  PQ_T_I16 = 4,
  PQ_T_I32 = 5,
  PQ_T_I64 = 6,
  PQ_T_DOUBLE = 7,
  PQ_T_BINARY = 8,
  PQ_T_LIST = 9,
  PQ_T_SET = 10,
  PQ_T_MAP = 11,
  PQ_T_STRUCT = 12,
};

/** Deepest struct nesting the writer tracks (Parquet's footer needs 5). */
#define PQ_TW_DEPTH 16

/** A compact-protocol writer: remembers the last field id of each open
 * struct, because field ids are written as a delta from the previous one. */
typedef struct pq_tw {
  souk_buf_t *b;
  int depth;
  int16_t last[PQ_TW_DEPTH];
} pq_tw_t;

/** Start writing a top-level struct into b. */
void pq_tw_init(pq_tw_t *w, souk_buf_t *b);
/** Field header for field id of type t. */
void pq_tw_field(pq_tw_t *w, int16_t id, uint8_t t);
/** i32 field (enums are i32 too). */
void pq_tw_i32(pq_tw_t *w, int16_t id, int32_t v);
/** i64 field. */
void pq_tw_i64(pq_tw_t *w, int16_t id, int64_t v);
/** bool field. */
void pq_tw_bool(pq_tw_t *w, int16_t id, bool v);
/** binary or string field of n bytes. */
void pq_tw_bin(pq_tw_t *w, int16_t id, const void *p, size_t n);
/** Open a struct field; close it with pq_tw_end. */
void pq_tw_struct(pq_tw_t *w, int16_t id);
/** Close the innermost struct (writes its STOP byte).  Also closes the
 * top-level struct. */
void pq_tw_end(pq_tw_t *w);
/** A list field header of n elements of type et; write the elements with
 * the pq_tw_elem_* functions (struct elements with pq_tw_elem_struct and
 * pq_tw_end). */
void pq_tw_list(pq_tw_t *w, int16_t id, uint8_t et, size_t n);
/** An i32 list element. */
void pq_tw_elem_i32(pq_tw_t *w, int32_t v);
/** A binary list element. */
void pq_tw_elem_bin(pq_tw_t *w, const void *p, size_t n);
/** Open a struct list element; close it with pq_tw_end. */
void pq_tw_elem_struct(pq_tw_t *w);

/** Append values v[0..n) as the RLE / bit-packed hybrid with the given bit
 * width (1..32), without a length prefix: runs of 8 or more equal values
 * become RLE runs, the rest bit-packed runs of whole groups of 8 (at most
 * 63 groups a run, so each header is one byte; only the stream's last
 * group is padded, with zeros). */
void pq_rle_hybrid(souk_buf_t *b, const uint32_t *v, size_t n, unsigned width);

/** The bits needed for values up to max (at least 1). */
unsigned pq_bit_width(uint32_t max);

#endif
