/* A small Parquet writer for flat tables: the hourly SkyBlock summaries.
 *
 * Debian 12 packages no C library that writes Parquet, so this writes the
 * subset souk needs, against parquet-format (the Apache Parquet project's
 * specification: README.md "File Format", parquet.thrift, Encodings.md,
 * LogicalTypes.md, Compression.md).  It is proven only by independent
 * readers: tests/parquet reads files of every shape back with hyparquet and
 * with DuckDB.
 *
 * What a file holds:
 * - Layout (README "File Format"): "PAR1", the row groups' column chunks,
 *   the FileMetaData footer in Thrift's compact protocol, its length as a
 *   4-byte little-endian integer, "PAR1".
 * - Schema (parquet.thrift SchemaElement): a root group named "schema" with
 *   one leaf per column; no nesting, no repetition.  Leaves are REQUIRED or
 *   OPTIONAL.  Physical types BOOLEAN, INT32, INT64, DOUBLE and BYTE_ARRAY.
 *   Strings are BYTE_ARRAY annotated STRING (LogicalType) and UTF8
 *   (ConvertedType, for older readers), and must be valid UTF-8.  INT64 may
 *   be annotated TIMESTAMP(isAdjustedToUTC=true, MILLIS) and INT32 DATE
 *   (LogicalTypes.md "Temporal Types"), each with its ConvertedType too.
 * - Pages (parquet.thrift PageHeader, DataPageHeader): data pages version 1
 *   only.  An OPTIONAL column's page starts with its definition levels
 *   (max level 1): a 4-byte little-endian length, then the RLE /
 *   bit-packed hybrid of bit width 1 (Encodings.md "Run Length Encoding /
 *   Bit-Packing Hybrid").  Nulls take no space among the values.
 * - Encodings (Encodings.md): PLAIN (little-endian numbers, booleans one
 *   bit each least significant first, byte arrays with a 4-byte length
 *   prefix); and dictionary encoding for the columns that ask for it: one
 *   DICTIONARY_PAGE per column chunk, PLAIN encoded and first in the chunk,
 *   then RLE_DICTIONARY data pages (one byte of bit width, then the hybrid
 *   of the indices).  When a chunk's dictionary grows past dict_max_bytes
 *   the chunk is written PLAIN instead (the next row group tries again).
 *   Booleans are never dictionary encoded.
 * - Compression (Compression.md): every page, its levels included,
 *   compressed with ZSTD (codec 6) as one zstd frame, unless the options
 *   say uncompressed.
 * - Statistics (parquet.thrift Statistics, ColumnOrder): for each data
 *   page and each column chunk, null_count and min_value / max_value in
 *   the type's order (TypeDefinedOrder, which the footer's column_orders
 *   declares for every column): signed for integers and timestamps, the
 *   represented value for doubles (NaN left out, a zero minimum written as
 *   -0.0 and a zero maximum as +0.0), false < true for booleans, unsigned
 *   byte-wise for strings.  For the signed types the deprecated min / max
 *   fields carry the same values for older readers.  A page or chunk with
 *   no non-null (non-NaN) value has no min or max, only its null count.
 * - Footer extras: created_by "souk version X", optional key/value
 *   metadata, ColumnMetaData.encoding_stats.
 * Not written: repetition levels or nested schemas, data page v2,
 * FIXED_LEN_BYTE_ARRAY, INT96, FLOAT, the delta and byte-stream-split
 * encodings, page indexes, bloom filters, CRCs, encryption.
 *
 * Rows are buffered per row group in memory (PLAIN values, definition
 * levels, dictionary indices) and encoded when the row group is full or
 * the file is closed.  The file is written atomically: to a temporary
 * file beside the final path (".<name>.tmp-<pid>-<n>", hidden from
 * "*.parquet" globs), fsync'd, renamed into place, and the directory
 * fsync'd, so a reader sees the whole file or none of it.
 *
 * A writer is used by one thread at a time (it runs on the thread pool;
 * it never touches the loop). */
#ifndef SKYBLOCK_PARQUET_H
#define SKYBLOCK_PARQUET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/** Physical column types. */
typedef enum sb_pq_type {
  SB_PQ_INT32,
  SB_PQ_INT64,
  SB_PQ_DOUBLE,
  SB_PQ_BOOL,
  SB_PQ_STRING, /**< BYTE_ARRAY + STRING / UTF8 */
} sb_pq_type_t;

/** Logical annotations beyond STRING. */
typedef enum sb_pq_logical {
  SB_PQ_LT_NONE = 0,
  SB_PQ_LT_TIMESTAMP_MS, /**< INT64: Unix milliseconds, UTC */
  SB_PQ_LT_DATE,         /**< INT32: days since 1970-01-01 */
} sb_pq_logical_t;

/** One column of the schema.  name is copied by sb_pq_open. */
typedef struct sb_pq_col {
  const char *name;
  sb_pq_type_t type;
  bool optional;   /**< may hold nulls (sb_pq_put_null) */
  bool dictionary; /**< dictionary-encode (ignored for SB_PQ_BOOL) */
  sb_pq_logical_t logical;
} sb_pq_col_t;

/** A key/value pair for the footer's key_value_metadata; copied. */
typedef struct sb_pq_kv {
  const char *key;
  const char *value;
} sb_pq_kv_t;

/** Writer options; zero (or a NULL pointer) means the defaults. */
typedef struct sb_pq_opts {
  size_t row_group_rows; /**< rows per row group (default 1,000,000) */
  size_t page_rows;      /**< most rows per data page (default 20,000) */
  size_t page_bytes;     /**< a page ends once its values pass this (default 1 MiB) */
  size_t dict_max_bytes; /**< a bigger dictionary falls back to PLAIN (default 1 MiB) */
  int zstd_level;        /**< default 3 */
  bool uncompressed;     /**< write pages uncompressed (tests, debugging) */
  const sb_pq_kv_t *meta;
  size_t nmeta;
} sb_pq_opts_t;

/** An open writer. */
typedef struct sb_pq_writer sb_pq_writer_t;

/** Open a writer for final_path: creates missing parent directories, then
 * the temporary file beside final_path.  cols (ncols >= 1, names unique
 * and non-empty) and opts are copied.  0, SOUK_EINVAL for a bad schema,
 * SOUK_EIO when the file cannot be created (errno kept). */
int sb_pq_open(sb_pq_writer_t **out, const char *final_path, const sb_pq_col_t *cols, size_t ncols,
               const sb_pq_opts_t *opts);

/* Values of the current row, one per column in any order.  Each returns 0,
 * or SOUK_EINVAL when the column index is out of range, the column has
 * another type, already has a value in this row, or (for _null) is
 * required, and for _str when the bytes are not UTF-8.  Nothing is stored
 * on error. */

/** An INT32 column's value. */
int sb_pq_put_i32(sb_pq_writer_t *w, size_t col, int32_t v);
/** An INT64 column's value. */
int sb_pq_put_i64(sb_pq_writer_t *w, size_t col, int64_t v);
/** A DOUBLE column's value (NaN is stored, and left out of statistics). */
int sb_pq_put_f64(sb_pq_writer_t *w, size_t col, double v);
/** A BOOLEAN column's value. */
int sb_pq_put_bool(sb_pq_writer_t *w, size_t col, bool v);
/** A STRING column's value: s[0..len) is copied.  SOUK_ETOOBIG when the
 * column's values in one row group would pass 4 GB (PLAIN offsets are
 * 32-bit); end the row group sooner with row_group_rows. */
int sb_pq_put_str(sb_pq_writer_t *w, size_t col, const char *s, size_t len);
/** A null in an OPTIONAL column. */
int sb_pq_put_null(sb_pq_writer_t *w, size_t col);

/** End the current row.  SOUK_EINVAL if a column got no value (the row's
 * values are dropped, the writer stays usable); SOUK_EIO if a full row
 * group could not be written (the writer is then failed: abort it). */
int sb_pq_row_end(sb_pq_writer_t *w);

/** Rows ended so far. */
uint64_t sb_pq_rows(const sb_pq_writer_t *w);

/** Write the last row group and the footer, fsync, rename into place,
 * fsync the directory; frees w in every case.  A row begun but not ended
 * is dropped.  0 or SOUK_EIO (the temporary file is removed then, and
 * nothing appears at final_path). */
int sb_pq_close(sb_pq_writer_t *w);

/** Remove the temporary file and free w; NULL is allowed. */
void sb_pq_abort(sb_pq_writer_t *w);

/** The hive-partitioned path of an hour's part file:
 * "<root>/date=YYYY-MM-DD/hour=HH/part-<part>.parquet", from a UTC Unix
 * time in milliseconds.  part names the writer (for instance a process id
 * and a sequence number) so parts of one hour never collide.  Returns the
 * length, or SOUK_ETOOBIG if it does not fit in cap (out holds ""), or
 * SOUK_EINVAL for a time before 1970 or part containing '/'. */
int sb_pq_hive_path(char *out, size_t cap, const char *root, int64_t unix_ms, const char *part);

#endif
