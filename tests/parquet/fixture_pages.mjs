// Real pages for `souk skyblock replay`, and what the summaries it writes
// from them must hold (summary.test.mjs checks them against it):
//
//   node fixture_pages.mjs pages DIR
//     DIR gets the captured auctions page 0 (tests/fixtures/hypixel) and
//     the captured auctions_ended sales wrapped back into the API's page
//     (the capture dropped the success/lastUpdated wrapper).
//   node fixture_pages.mjs expect REPLAY_STDOUT OUT_ROOT EXPECT_JSON
//     EXPECT_JSON gets the files and row counts replay reported, and for
//     a few items sold several times, the sales, volume and per-unit
//     minimum and maximum computed here from the capture and its
//     independent NBT decode (decoded-nbt.json): never from souk.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const fixtures = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../fixtures/hypixel');
const ended = JSON.parse(fs.readFileSync(path.join(fixtures, 'auctions_ended-2025-08-09.auctions.json'), 'utf8'));
const [mode, ...args] = process.argv.slice(2);

if (mode === 'pages') {
  const [dir] = args;
  fs.mkdirSync(dir, { recursive: true });
  fs.copyFileSync(path.join(fixtures, 'auctions-page0-2025-06-08.json.gz'),
    path.join(dir, 'auctions-page0-2025-06-08.json.gz'));
  const lastUpdated = Math.max(...ended.map((a) => a.timestamp));
  fs.writeFileSync(path.join(dir, 'auctions_ended-2025-08-09.json'),
    JSON.stringify({ success: true, lastUpdated, auctions: ended }));
} else if (mode === 'expect') {
  const [stdoutFile, outRoot, expectFile] = args;
  const files = {};
  for (const m of fs.readFileSync(stdoutFile, 'utf8').matchAll(/^ {2}(.+\.parquet): (\d+) items$/gm))
    files[path.relative(outRoot, m[1])] = Number(m[2]);
  // Items whose key is their SkyBlock id alone: plain items, one or many
  // to a stack.  Prices per unit round half up, as souk's do.
  const decoded = JSON.parse(fs.readFileSync(path.join(fixtures, 'auctions_ended-2025-08-09.decoded-nbt.json'), 'utf8'));
  const hour = String(Math.floor(Math.max(...ended.map((a) => a.timestamp)) / 3600000) * 3600000);
  const ids = ['TREASURE_TALISMAN', 'STRETCHING_STICKS', 'GOD_POTION_2', 'KAT_FLOWER', 'RECLUSE_FANG'];
  const rows = ids.map((id) => {
    const sold = ended.filter((a) => decoded[a.auction_id].i[0].tag.ExtraAttributes.id === id);
    const unit = sold.map((a) => {
      const n = BigInt(decoded[a.auction_id].i[0].Count);
      return (2n * BigInt(a.price) + n) / (2n * n);
    });
    const min = unit.reduce((a, b) => (b < a ? b : a));
    const max = unit.reduce((a, b) => (b > a ? b : a));
    return {
      where: { hour_start: hour, item_key: id, attrs: '' },
      want: { sales: sold.length, volume: String(sold.reduce((s, a) => s + BigInt(a.price), 0n)),
        sale_min: String(min), sale_max: String(max), listings: 0 },
    };
  });
  fs.writeFileSync(expectFile, JSON.stringify({ files, rows }, null, 1));
} else {
  console.error('usage: fixture_pages.mjs pages DIR | expect REPLAY_STDOUT OUT_ROOT EXPECT_JSON');
  process.exit(2);
}
