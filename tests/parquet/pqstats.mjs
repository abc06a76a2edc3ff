// Column chunk statistics computed from the rows, shared by the read-back
// tests (parquet.test.mjs, summary.test.mjs): what a chunk's min, max and
// null count must be, never taken from the writer.

export const utf8 = (s) => Buffer.from(s, 'utf8');

// Statistics of one column over rows, by the column's type-defined order.
export function stats(c, values) {
  let nulls = 0;
  let min = null;
  let max = null;
  const less = (a, b) => (c.type === 'STRING' ? Buffer.compare(utf8(a), utf8(b)) < 0 : a < b);
  for (const v of values) {
    if (v === null) {
      nulls++;
      continue;
    }
    if (c.type === 'DOUBLE' && Number.isNaN(v)) continue;
    if (min === null || less(v, min)) min = v;
    if (max === null || less(max, v)) max = v;
  }
  if (c.type === 'DOUBLE') {
    // A zero bound is written as -0.0 (min) and +0.0 (max).
    if (min === 0) min = -0;
    if (max === 0) max = 0;
  }
  return { nulls, min, max };
}
