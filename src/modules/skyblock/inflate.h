/* A DEFLATE (RFC 1951) and gzip (RFC 1952) decoder for small, whole
 * buffers: one item_bytes member of about 1 KB inflating to about 1.3 KB.
 *
 * Every item is its own gzip member with its own dynamic Huffman block, so
 * at these sizes a general inflater spends much of its time setting up:
 * decoding the block header and building the decode tables.  This one
 * builds tables only as wide as the longest code (11 bits at most, with
 * subtables past that), lists the symbols by code length as the lengths
 * are read rather than sorting them after, decodes with a 64-bit bit
 * buffer refilled a word at a time, writes matches 8 bytes at a time into
 * slack past the end of the output, and checks the CRC-32 with
 * libdeflate's (folding with carry-less multiplies where the CPU has
 * them).  On the real page's items it takes about 82% of libdeflate's
 * time and 42% of zlib's (bench/README.md).
 *
 * It is a parser of hostile bytes: every code set is checked (no
 * over-subscribed code, no incomplete code but the single one-bit code
 * RFC 1951 allows, as zlib does), every write is bounded by the output's
 * size, every distance by the bytes already written, and reads never go
 * past the input.  What it accepts is what zlib accepts: the tests and the
 * fuzz target (tests/fuzz/fuzz_inflate.c) compare the two on every input.
 *
 * Ownership: an sb_inflate_t holds only the decode tables, is reused from
 * one call to the next, and belongs to one thread at a time. */
#ifndef SKYBLOCK_INFLATE_H
#define SKYBLOCK_INFLATE_H

#include <stddef.h>
#include <stdint.h>

/** Bytes past out_len that an output buffer must have: match copies and
 * runs of literals may write up to this far past the end of the output
 * (never past the end of the buffer) before the overrun is seen. */
#define SB_INFLATE_SLACK 16

/** Decode tables, reused across calls; one per thread. */
typedef struct sb_inflate sb_inflate_t;

/** A new decoder (aborts on out of memory, like every souk allocation). */
sb_inflate_t *sb_inflate_new(void);
/** Free a decoder; NULL is allowed. */
void sb_inflate_free(sb_inflate_t *z);
/** For tests: decode with the code compiled for the baseline instruction
 * set even where the CPU has BMI2 (on x86 the decoding loop is compiled
 * twice and the CPU picks; elsewhere this changes nothing). */
void sb_inflate_use_baseline(sb_inflate_t *z);

/** Inflate the raw DEFLATE stream at in[0..in_len) into out, up to its
 * final block.  out has room for out_cap + SB_INFLATE_SLACK bytes; a
 * stream that would write more than out_cap bytes is an error.  On
 * success *out_len gets the bytes written and *in_used the bytes of input
 * the stream took (the last one possibly in part; what follows is not
 * read as part of it).  0, or SOUK_EPARSE for a malformed or truncated
 * stream or one longer than out_cap; on error out's content and the two
 * counts are unspecified. */
int sb_inflate_raw(sb_inflate_t *z, const uint8_t *in, size_t in_len, uint8_t *out, size_t out_cap,
                   size_t *out_len, size_t *in_used);

/** Inflate the single gzip member in[0..in_len) into out[0..out_len),
 * where out_len is what the member's trailer says (ISIZE) and out has room
 * for out_len + SB_INFLATE_SLACK bytes.  0 when the header is well formed
 * (its CRC-16 checked when present), the stream inflates to exactly
 * out_len bytes, the CRC-32 and ISIZE match and nothing follows the
 * member; SOUK_EPARSE otherwise, with out's content unspecified. */
int sb_gunzip(sb_inflate_t *z, const uint8_t *in, size_t in_len, uint8_t *out, size_t out_len);

#endif
