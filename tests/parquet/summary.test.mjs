// Reads the SkyBlock module's real hourly summaries (written by souk itself:
// the live module against the fake Hypixel, or `souk skyblock replay`) with
// the same two independent readers as parquet.test.mjs, and checks:
//   - the hive layout: every file under the root is
//     date=YYYY-MM-DD/hour=HH/part-<name>.parquet (no temp file left), and
//     each row's hour_start is the partition's; DuckDB's own hive_partitioning
//     reads the same dates and hours back from the paths;
//   - every value of every column, read by hyparquet and by DuckDB, the
//     same in both;
//   - each column chunk's min, max and null count, from the footer as
//     hyparquet and DuckDB's parquet_metadata() read it, against values
//     computed here from the rows;
//   - what a summary row must be whatever the market: a ladder ascending
//     with its empty rungs last, sale statistics present exactly when there
//     were sales and ordered min <= median, iqm <= max, one row per item
//     key and attributes;
//   - and, when SOUK_PQ_EXPECT names a JSON file, what the test that made
//     the files knows: {"files": {"<relative path>": rows, ...},
//     "rows": [{"where": {column: value}, "want": {column: value}}]}
//     (integers as strings).
//
//   SOUK_PQ_SUMMARIES=<root of the summaries> [SOUK_PQ_EXPECT=<json>] \
//     node --test summary.test.mjs
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { parquetMetadata, parquetReadObjects, parquetSchema } from 'hyparquet';
import { compressors } from 'hyparquet-compressors';
import { DuckDBInstance } from '@duckdb/node-api';
import { stats } from './pqstats.mjs';

const root = process.env.SOUK_PQ_SUMMARIES;
assert.ok(root, 'SOUK_PQ_SUMMARIES must name the root of the hourly summaries');
const expect = process.env.SOUK_PQ_EXPECT ? JSON.parse(fs.readFileSync(process.env.SOUK_PQ_EXPECT, 'utf8')) : null;

const HIVE = /^date=(\d{4})-(\d{2})-(\d{2})\/hour=(\d{2})\/part-[^/]+\.parquet$/;

function walk(dir, rel = '') {
  const out = [];
  for (const de of fs.readdirSync(path.join(dir, rel), { withFileTypes: true })) {
    const r = rel ? `${rel}/${de.name}` : de.name;
    if (de.isDirectory()) out.push(...walk(dir, r));
    else out.push(r);
  }
  return out.sort();
}

const files = walk(root);
const duck = await (await DuckDBInstance.create(':memory:')).connect();
const sql = (s) => s.replace(/'/g, "''");

// Columns of the summary schema, in order, with how to compare them.
const LADDER = Array.from({ length: 16 }, (_, k) => `ladder_${String(k + 1).padStart(2, '0')}`);
const COLUMNS = [
  ['hour_start', 'INT64', true], ['item_key', 'STRING', true], ['attrs', 'STRING', true], ['name', 'STRING', true],
  ...LADDER.map((n) => [n, 'INT64', false]),
  ['listings', 'INT32', true], ['new_listings', 'INT32', true], ['sales', 'INT32', true],
  ['volume', 'INT64', true], ['sale_min', 'INT64', false], ['sale_median', 'INT64', false],
  ['sale_iqm', 'INT64', false], ['sale_max', 'INT64', false],
].map(([name, type, required]) => ({ name, type, required }));

// A reader's value as bigint (integers, hour_start as Unix ms), string or null.
function norm(c, v) {
  if (v === null || v === undefined) return null;
  if (c.name === 'hour_start') return BigInt(v instanceof Date ? v.getTime() : v);
  if (c.type !== 'STRING') return BigInt(v);
  return v;
}

function fromDuckStat(c, s) {
  if (s === null || s === undefined) return null;
  if (c.name === 'hour_start') return BigInt(Date.parse(s.replace(' ', 'T').replace(/(\+00)?$/, 'Z')));
  if (c.type !== 'STRING') return BigInt(s);
  return s;
}

test('the summaries are laid out as date=YYYY-MM-DD/hour=HH/part-*.parquet', () => {
  assert.ok(files.length > 0, `no file under ${root}`);
  for (const f of files) assert.match(f, HIVE, `${f}: not a hive partition file`);
  if (expect) assert.deepEqual(files, Object.keys(expect.files).sort());
});

const everyRow = [];

for (const rel of files.filter((f) => HIVE.test(f))) {
  test(rel, async () => {
    const [, y, mo, d, h] = rel.match(HIVE);
    const hourMs = BigInt(Date.UTC(+y, +mo - 1, +d, +h));
    const file = path.join(root, rel);
    const bytes = fs.readFileSync(file);
    assert.equal(bytes.subarray(0, 4).toString(), 'PAR1');
    const ab = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength);
    const md = parquetMetadata(ab);

    // The schema is the summary's, column for column.
    const leaves = parquetSchema(md).children.map((ch) => ch.element);
    assert.deepEqual(leaves.map((e) => e.name), COLUMNS.map((c) => c.name));
    leaves.forEach((e, i) => {
      const c = COLUMNS[i];
      assert.equal(e.repetition_type, c.required ? 'REQUIRED' : 'OPTIONAL', `${c.name}: repetition`);
      assert.equal(e.type, c.type === 'STRING' ? 'BYTE_ARRAY' : c.type, `${c.name}: type`);
    });
    assert.ok(md.key_value_metadata.some((kv) => kv.key === 'souk.skyblock.summary'));

    // Every value, by both readers, the same.
    const hrows = (await parquetReadObjects({ file: ab, compressors })).map((r) =>
      Object.fromEntries(COLUMNS.map((c) => [c.name, norm(c, r[c.name])])));
    const drows = (await duck.runAndReadAll(
      `SELECT * FROM read_parquet('${sql(file)}', file_row_number = true, hive_partitioning = false)
       ORDER BY file_row_number`))
      .getRowObjectsJS();
    assert.equal(hrows.length, Number(md.num_rows));
    assert.equal(drows.length, hrows.length, 'duckdb row count');
    assert.ok(hrows.length > 0, 'an hour written with no row');
    if (expect) assert.equal(hrows.length, expect.files[rel], 'rows the module reported');
    for (let r = 0; r < hrows.length; r++)
      for (const c of COLUMNS) {
        const dv = norm(c, drows[r][c.name]);
        if (dv !== hrows[r][c.name])
          assert.fail(`row ${r} column ${c.name}: hyparquet ${hrows[r][c.name]}, duckdb ${dv}`);
      }

    // Each column chunk's statistics against the rows.
    const meta = (await duck.runAndReadAll(
      `SELECT row_group_id, row_group_num_rows, column_id, path_in_schema, stats_null_count,
              stats_min_value, stats_max_value, compression
       FROM parquet_metadata('${sql(file)}') ORDER BY row_group_id, column_id`)).getRowObjectsJS();
    assert.equal(meta.length, md.row_groups.length * COLUMNS.length);
    let start = 0;
    md.row_groups.forEach((rg, g) => {
      const n = Number(rg.num_rows);
      const group = hrows.slice(start, start + n);
      start += n;
      COLUMNS.forEach((c, ci) => {
        const want = stats(c, group.map((row) => row[c.name]));
        const where = `${rel} row group ${g} column ${c.name}`;
        const m = meta[g * COLUMNS.length + ci];
        assert.equal(m.path_in_schema, c.name);
        assert.equal(Number(m.row_group_num_rows), n);
        assert.equal(m.compression, 'ZSTD', `${where}: compression`);
        assert.equal(Number(m.stats_null_count), want.nulls, `${where}: duckdb null count`);
        assert.equal(fromDuckStat(c, m.stats_min_value), want.min, `${where}: duckdb min`);
        assert.equal(fromDuckStat(c, m.stats_max_value), want.max, `${where}: duckdb max`);
        const st = rg.columns[ci].meta_data.statistics;
        assert.equal(Number(st.null_count), want.nulls, `${where}: hyparquet null count`);
        const hv = (v) => (v === undefined || v === null ? null : norm(c, v));
        assert.equal(hv(st.min_value), want.min, `${where}: hyparquet min`);
        assert.equal(hv(st.max_value), want.max, `${where}: hyparquet max`);
      });
    });
    assert.equal(start, hrows.length);

    // What every summary row must be.
    const keys = new Set();
    for (const row of hrows) {
      const who = `${rel}: ${row.item_key} [${row.attrs}]`;
      assert.equal(row.hour_start, hourMs, `${who}: hour_start is not the partition's`);
      const k = `${row.item_key}\u0000${row.attrs}`;
      assert.ok(!keys.has(k), `${who}: twice`);
      keys.add(k);
      assert.ok(row.item_key.length > 0, `${who}: empty key`);
      const lad = LADDER.map((n) => row[n]);
      const depth = lad.findIndex((v) => v === null);
      const rungs = depth < 0 ? 16 : depth;
      for (let i = 0; i < 16; i++) {
        if (i >= rungs) assert.equal(lad[i], null, `${who}: a rung after an empty one`);
        else assert.ok(lad[i] > 0n && (i === 0 || lad[i - 1] <= lad[i]), `${who}: ladder not ascending`);
      }
      assert.ok(row.listings >= 0n && row.new_listings >= 0n && row.sales >= 0n && row.volume >= 0n);
      const st = [row.sale_min, row.sale_median, row.sale_iqm, row.sale_max];
      if (row.sales === 0n) {
        assert.deepEqual(st, [null, null, null, null], `${who}: statistics without sales`);
        assert.equal(row.volume, 0n, `${who}: volume without sales`);
      } else {
        assert.ok(st.every((v) => v !== null), `${who}: sales without statistics`);
        assert.ok(st[0] <= st[1] && st[1] <= st[3] && st[0] <= st[2] && st[2] <= st[3],
          `${who}: min ${st[0]} median ${st[1]} iqm ${st[2]} max ${st[3]}`);
      }
      everyRow.push(row);
    }
  });
}

// DuckDB reading the whole tree as a hive-partitioned data set finds each
// file's date and hour in its path, and they are every row's hour_start.
// (A file column named like a partition key, "hour" say, would be replaced
// by the path's value there: hence hour_start.)
test('DuckDB reads the tree as hive partitions', async () => {
  const glob = path.join(root, '*', '*', '*.parquet');
  const got = (await duck.runAndReadAll(
    `SELECT "date"::VARCHAR AS d, "hour"::INTEGER AS h, filename, count(*) AS n,
            count(*) FILTER (WHERE epoch_ms(hour_start) =
                             epoch_ms("date"::DATE + to_hours("hour"::INTEGER))) AS same
     FROM read_parquet('${sql(glob)}', hive_partitioning = true, filename = true)
     GROUP BY ALL ORDER BY filename`)).getRowObjectsJS();
  assert.equal(got.length, files.length);
  got.forEach((g, i) => {
    const [, y, mo, d, h] = files[i].match(HIVE);
    assert.equal(path.relative(root, g.filename), files[i]);
    assert.equal(g.d, `${y}-${mo}-${d}`);
    assert.equal(g.h, +h);
    const hourMs = BigInt(Date.UTC(+y, +mo - 1, +d, +h));
    assert.equal(Number(g.n), everyRow.filter((r) => r.hour_start === hourMs).length);
    assert.equal(Number(g.same), Number(g.n), `${files[i]}: hour_start against the path`);
  });
});

test('the rows the test that wrote them knows', { skip: !expect }, () => {
  for (const { where, want } of expect.rows) {
    const match = everyRow.filter((row) =>
      Object.entries(where).every(([k, v]) => String(row[k]) === String(v)));
    assert.equal(match.length, 1, `rows where ${JSON.stringify(where)}: ${match.length}`);
    for (const [k, v] of Object.entries(want))
      assert.equal(String(match[0][k]), String(v), `${JSON.stringify(where)}: ${k}`);
  }
});
