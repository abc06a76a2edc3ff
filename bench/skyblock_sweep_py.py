#!/usr/bin/python3
"""The scale souk's SkyBlock sweep is measured against: the same work in
Python's standard library, stage by stage.

For each page (the captured page 0, tests/fixtures/hypixel, 1,000 real
auctions): json.loads; then for every auction base64.b64decode,
gzip.decompress, a small NBT reader (the 13 tag types, big-endian, names
and values) up to tag.ExtraAttributes.id and Count, and a ladder update (the
16 lowest BIN prices per unit of each id).  CPU time per stage with
time.process_time; a sweep is 66 such pages.

    /usr/bin/python3 bench/skyblock_sweep_py.py [pages] [--json OUT]
"""
import base64
import gzip
import json
import os
import struct
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PAGE0 = os.path.join(ROOT, "tests", "fixtures", "hypixel", "auctions-page0-2025-06-08.json.gz")


class Nbt:
    """A small big-endian NBT reader: the whole document as Python values."""

    def __init__(self, b):
        self.b = b
        self.i = 0

    def u8(self):
        v = self.b[self.i]
        self.i += 1
        return v

    def fmt(self, f, n):
        v = struct.unpack_from(f, self.b, self.i)[0]
        self.i += n
        return v

    def string(self):
        n = self.fmt(">H", 2)
        s = self.b[self.i:self.i + n].decode("utf-8", "replace")
        self.i += n
        return s

    def payload(self, t):
        if t == 1:
            return self.fmt(">b", 1)
        if t == 2:
            return self.fmt(">h", 2)
        if t == 3:
            return self.fmt(">i", 4)
        if t == 4:
            return self.fmt(">q", 8)
        if t == 5:
            return self.fmt(">f", 4)
        if t == 6:
            return self.fmt(">d", 8)
        if t == 7:
            n = self.fmt(">i", 4)
            v = self.b[self.i:self.i + n]
            self.i += n
            return v
        if t == 8:
            return self.string()
        if t == 9:
            et = self.u8()
            n = self.fmt(">i", 4)
            return [self.payload(et) for _ in range(n)]
        if t == 10:
            out = {}
            while True:
                ct = self.u8()
                if ct == 0:
                    return out
                name = self.string()
                out[name] = self.payload(ct)
        if t == 11:
            n = self.fmt(">i", 4)
            v = struct.unpack_from(">%di" % n, self.b, self.i)
            self.i += 4 * n
            return list(v)
        if t == 12:
            n = self.fmt(">i", 4)
            v = struct.unpack_from(">%dq" % n, self.b, self.i)
            self.i += 8 * n
            return list(v)
        raise ValueError("tag type %d" % t)

    def root(self):
        t = self.u8()
        self.string()
        return self.payload(t)


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    pages = int(args[0]) if args else 5
    out = None
    if "--json" in sys.argv:
        out = sys.argv[sys.argv.index("--json") + 1]
    with gzip.open(PAGE0, "rt") as f:
        text = f.read()
    st = {"json": 0.0, "base64": 0.0, "gunzip": 0.0, "nbt": 0.0, "ladder": 0.0}
    ladders = {}
    n = 0
    t_all = time.process_time()
    for _ in range(pages):
        t = time.process_time()
        page = json.loads(text)
        st["json"] += time.process_time() - t
        for a in page["auctions"]:
            t0 = time.process_time()
            gz = base64.b64decode(a["item_bytes"])
            t1 = time.process_time()
            raw = gzip.decompress(gz)
            t2 = time.process_time()
            item = Nbt(raw).root()["i"][0]
            key = item["tag"]["ExtraAttributes"]["id"]
            count = item.get("Count", 1) or 1
            t3 = time.process_time()
            if a["bin"]:
                lad = ladders.setdefault(key, [])
                lad.append(-(-a["starting_bid"] // count))
                lad.sort()
                del lad[16:]
            t4 = time.process_time()
            st["base64"] += t1 - t0
            st["gunzip"] += t2 - t1
            st["nbt"] += t3 - t2
            st["ladder"] += t4 - t3
            n += 1
    total = time.process_time() - t_all
    per_page = total / pages
    print("Python %s standard library, %d pages of 1,000 real auctions:" % (
        sys.version.split()[0], pages))
    print("  %.1f ms a page: json %.1f, base64 %.1f, gunzip %.1f, NBT %.1f, ladder %.1f ms" % (
        per_page * 1e3, *(st[k] / pages * 1e3 for k in ("json", "base64", "gunzip", "nbt",
                                                         "ladder"))))
    print("  a sweep of 66 pages: %.2f s of CPU (%.1f us an auction)" % (
        per_page * 66, total / n * 1e6))
    if out:
        os.makedirs(os.path.dirname(out), exist_ok=True)
        with open(out, "w") as f:
            json.dump({"ms_per_page": per_page * 1e3, "sweep_s": per_page * 66,
                       "stages_ms_per_page": {k: v / pages * 1e3 for k, v in st.items()}}, f)


if __name__ == "__main__":
    main()
