// Reads every Parquet file that pq_shapes wrote with souk's writer, with two
// independent readers, and checks it against the rows the writer was given
// (<shape>.json beside each file):
//   - hyparquet (+ hyparquet-compressors for zstd): every value of every
//     column, and the footer's statistics and encoding_stats;
//   - DuckDB (@duckdb/node-api): every value again, and parquet_metadata():
//     each column chunk's min, max and null count, its encodings, and the
//     row group sizes.
// Statistics and dictionary use are computed here from the rows, never
// taken from the writer.
//
//   SOUK_PQ_DIR=<dir written by pq_shapes> node --test parquet.test.mjs
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { parquetMetadata, parquetReadObjects } from 'hyparquet';
import { compressors } from 'hyparquet-compressors';
import { DuckDBInstance } from '@duckdb/node-api';
import { stats, utf8 } from './pqstats.mjs';

const dir = process.env.SOUK_PQ_DIR;
assert.ok(dir, 'SOUK_PQ_DIR must name the directory pq_shapes wrote');
const shapes = fs.readdirSync(dir).filter((f) => f.endsWith('.json')).map((f) => f.slice(0, -5)).sort();

const duck = await (await DuckDBInstance.create(':memory:')).connect();

// ---- the writer's values, typed -------------------------------------------

const isInt = (c) => c.type === 'INT32' || c.type === 'INT64';

// A value from <shape>.json: integers and doubles arrive as strings.
function expected(c, v) {
  if (v === null) return null;
  if (isInt(c)) return BigInt(v);
  if (c.type === 'DOUBLE') return Number(v); // 'NaN', 'Infinity', '-0' included
  return v;
}

// A reader's value in the same domain (bigint for integers, whatever the
// logical type; numbers for doubles, -0 and NaN kept).
function normalise(c, v) {
  if (v === null || v === undefined) return null;
  if (c.logical === 'TIMESTAMP_MILLIS') return BigInt(v.getTime());
  if (c.logical === 'DATE') return BigInt(Math.round(v.getTime() / 86400000));
  if (isInt(c)) return BigInt(v);
  return v;
}

function same(a, b) {
  if (typeof a === 'number' && typeof b === 'number') return Object.is(a, b);
  return a === b;
}

// Would the writer's dictionary for this chunk stay under its limit?
function dictionaryExpected(c, values, options) {
  if (!c.dictionary || c.type === 'BOOLEAN') return false;
  const seen = new Set();
  let bytes = 0;
  const key = (v) => {
    if (c.type !== 'DOUBLE') return String(v);
    const dv = new DataView(new ArrayBuffer(8));
    dv.setFloat64(0, v, true);
    return dv.getBigUint64(0, true).toString(); // by bit pattern: NaN, -0
  };
  for (const v of values) {
    if (v === null) continue;
    const k = key(v);
    if (seen.has(k)) continue;
    seen.add(k);
    bytes += c.type === 'STRING' ? 4 + utf8(v).length : c.type === 'INT32' ? 4 : 8;
    if (bytes > options.dict_max_bytes) return false;
  }
  return seen.size > 0;
}

// A bound as DuckDB's parquet_metadata() prints it, back to our domain.
function fromDuckStat(c, s) {
  if (s === null) return null;
  if (c.logical === 'TIMESTAMP_MILLIS') return BigInt(Date.parse(s.replace(' ', 'T').replace(/\+00$/, 'Z')));
  if (c.logical === 'DATE') return BigInt(Math.round(Date.parse(s + 'T00:00:00Z') / 86400000));
  if (isInt(c)) return BigInt(s);
  if (c.type === 'DOUBLE') return Number(s);
  if (c.type === 'BOOLEAN') return s === 'true';
  return s;
}

// hyparquet decodes statistics with the logical type too.
function fromHyparquetStat(c, v) {
  if (v === undefined || v === null) return null;
  return normalise(c, v);
}

function checkColumnValues(reader, spec, rows, got) {
  assert.equal(got.length, rows.length, `${reader}: row count`);
  spec.columns.forEach((c, ci) => {
    for (let r = 0; r < rows.length; r++) {
      const want = expected(c, rows[r][ci]);
      const have = normalise(c, got[r][c.name]);
      if (!same(want, have))
        assert.fail(`${reader}: column ${c.name} row ${r}: want ${String(want)}, got ${String(have)}`);
    }
  });
}

for (const name of shapes) {
  test(name, async () => {
    const spec = JSON.parse(fs.readFileSync(path.join(dir, `${name}.json`), 'utf8'));
    const file = path.join(dir, `${name}.parquet`);
    const bytes = fs.readFileSync(file);
    const ab = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength);
    const rows = spec.rows;

    // hyparquet: every value.
    const hrows = await parquetReadObjects({ file: ab, compressors });
    checkColumnValues('hyparquet', spec, rows, hrows);

    // DuckDB: every value, in file order.
    const q = await duck.runAndReadAll(
      `SELECT * FROM read_parquet('${file}', file_row_number = true) ORDER BY file_row_number`);
    checkColumnValues('duckdb', spec, rows, q.getRowObjectsJS());

    // Row groups: sizes as the writer was told to cut them.
    const md = parquetMetadata(ab);
    const per = spec.options.row_group_rows;
    const groups = [];
    for (let start = 0; start < rows.length; start += per) groups.push(rows.slice(start, start + per));
    assert.equal(md.row_groups.length, groups.length, 'row group count');
    assert.equal(Number(md.num_rows), rows.length);

    const meta = (await duck.runAndReadAll(
      `SELECT row_group_id, row_group_num_rows, column_id, path_in_schema, stats_min, stats_max,
              stats_null_count, stats_min_value, stats_max_value, encodings, compression
       FROM parquet_metadata('${file}') ORDER BY row_group_id, column_id`)).getRowObjectsJS();
    assert.equal(meta.length, groups.length * spec.columns.length, 'column chunks in parquet_metadata');

    groups.forEach((group, g) => {
      spec.columns.forEach((c, ci) => {
        const values = group.map((row) => expected(c, row[ci]));
        const want = stats(c, values);
        const where = `row group ${g} column ${c.name}`;

        // DuckDB's view of the chunk.
        const m = meta[g * spec.columns.length + ci];
        assert.equal(m.path_in_schema, c.name);
        assert.equal(Number(m.row_group_num_rows), group.length, `${where}: rows`);
        assert.equal(Number(m.stats_null_count), want.nulls, `${where}: null count`);
        assert.equal(m.compression, spec.options.compressed ? 'ZSTD' : 'UNCOMPRESSED');
        const dmin = fromDuckStat(c, m.stats_min_value);
        const dmax = fromDuckStat(c, m.stats_max_value);
        const infinite = c.type === 'DOUBLE' && (!Number.isFinite(want.min) || !Number.isFinite(want.max));
        if (infinite && want.min !== null && dmin === null && dmax === null) {
          // DuckDB does not show infinite floating-point bounds; hyparquet
          // below checks them.
        } else {
          assert.ok(same(dmin, want.min), `${where}: min ${String(dmin)} != ${String(want.min)}`);
          assert.ok(same(dmax, want.max), `${where}: max ${String(dmax)} != ${String(want.max)}`);
        }
        // The deprecated signed-order min/max: the same for every type but
        // strings, where they are left out.
        if (c.type === 'STRING' || infinite) {
          if (c.type === 'STRING') assert.equal(m.stats_min, null, `${where}: deprecated min`);
        } else {
          assert.ok(same(fromDuckStat(c, m.stats_min), want.min), `${where}: deprecated min`);
          assert.ok(same(fromDuckStat(c, m.stats_max), want.max), `${where}: deprecated max`);
        }
        const dict = dictionaryExpected(c, values, spec.options);
        assert.equal(m.encodings.includes('RLE_DICTIONARY'), dict, `${where}: dictionary`);

        // hyparquet's view of the same chunk.
        const cm = md.row_groups[g].columns[ci].meta_data;
        const st = cm.statistics;
        assert.equal(Number(st.null_count), want.nulls, `${where}: hyparquet null count`);
        assert.ok(same(fromHyparquetStat(c, st.min_value), want.min), `${where}: hyparquet min`);
        assert.ok(same(fromHyparquetStat(c, st.max_value), want.max), `${where}: hyparquet max`);
        const dataPages = cm.encoding_stats.filter((e) => e.page_type === 'DATA_PAGE');
        assert.equal(dataPages.length, 1);
        assert.equal(dataPages[0].encoding, dict ? 'RLE_DICTIONARY' : 'PLAIN', `${where}: page encoding`);
        assert.equal(cm.encoding_stats.some((e) => e.page_type === 'DICTIONARY_PAGE'), dict);
        if (name === 'many_pages') assert.ok(dataPages[0].count >= 10, `${where}: ${dataPages[0].count} pages`);
      });
    });

    if (name === 'summary_hour') {
      // One hour's summary for 5,000 item keys must stay under 1 MB.
      assert.equal(rows.length, 5000);
      assert.ok(bytes.length < 1 << 20, `summary hour: ${bytes.length} bytes`);
    }
  });
}

test('every shape was written', () => {
  for (const want of ['basic_plain', 'optional_zstd_dict', 'all_null', 'extremes', 'many_pages',
    'many_row_groups', 'dict_fallback', 'wide_dict', 'temporal', 'empty', 'summary_hour',
    'fault_recovery']) {
    assert.ok(shapes.includes(want), `missing shape ${want}`);
  }
});
