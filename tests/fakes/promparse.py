#!/usr/bin/python3
"""A strict parser for the Prometheus text exposition format 0.0.4.

Prometheus itself and prometheus_client's parser are lenient: they accept
samples without HELP or TYPE, duplicate series, histograms whose buckets do
not add up.  A scrape of souk's /metrics must be exactly right, so this
parser rejects all of that.  It follows the format description
(https://prometheus.io/docs/instrumenting/exposition_formats/) and, where
prometheus_client is importable (Debian's python3-prometheus-client), also
feeds the text to prometheus_client.parser.text_string_to_metric_families,
which must accept it too.

Checks, on top of the grammar:
  * every sample belongs to a family that has exactly one # HELP and one
    # TYPE line, both before its first sample; the type is one of counter,
    gauge, histogram, summary, untyped;
  * a family's lines are contiguous (no family appears twice);
  * escapes: only \\\\ and \\n in help text, only \\\\, \\" and \\n in label
    values; label names are valid, not reserved (__*), not repeated;
  * values parse as floats (NaN, +Inf, -Inf allowed); counters are >= 0;
    an optional timestamp is an integer;
  * no duplicate series (same name and label set);
  * histograms: for every label set, _bucket samples with le values that
    strictly increase and end in +Inf, cumulative counts that never drop,
    the +Inf bucket equal to _count, and a _sum; summaries: quantile in
    [0, 1], _sum and _count present;
  * the text is UTF-8 and ends with a newline.

Use from Python:

    fams = promparse.parse(text)          # raises PromParseError
    promparse.value(fams, "souk_rest_requests_total")
    promparse.value(fams, "souk_gateway_up", shard="0")

or from the shell: promparse.py FILE (or - for stdin); exit status 0 when
the text is valid, 1 with the reason on stderr otherwise.
"""

import math
import re
import sys
from dataclasses import dataclass, field

METRIC_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*\Z")
LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*\Z")
FLOAT = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?\Z")
TIMESTAMP = re.compile(r"-?[0-9]+\Z")
TYPES = ("counter", "gauge", "histogram", "summary", "untyped")


class PromParseError(ValueError):
    """The text is not valid; lineno is 1-based (0: the whole text)."""

    def __init__(self, lineno, msg):
        super().__init__(f"line {lineno}: {msg}" if lineno else msg)
        self.lineno = lineno
        self.msg = msg


@dataclass
class Sample:
    name: str
    labels: dict
    value: float
    timestamp: int = None
    lineno: int = 0


@dataclass
class Family:
    name: str
    type: str = None
    help: str = None
    samples: list = field(default_factory=list)


def _unescape(s, allowed, lineno, what):
    out = []
    i = 0
    while i < len(s):
        c = s[i]
        if c == "\\":
            if i + 1 >= len(s):
                raise PromParseError(lineno, f"{what}: backslash at the end")
            e = s[i + 1]
            if e not in allowed:
                raise PromParseError(lineno, f"{what}: invalid escape \\{e}")
            out.append({"\\": "\\", "n": "\n", '"': '"'}[e])
            i += 2
        else:
            out.append(c)
            i += 1
    return "".join(out)


def parse_value(tok, lineno):
    """A sample value: a decimal float, NaN, +Inf, -Inf (or Inf)."""
    if tok in ("NaN",):
        return math.nan
    if tok in ("+Inf", "Inf"):
        return math.inf
    if tok == "-Inf":
        return -math.inf
    if not FLOAT.match(tok):
        raise PromParseError(lineno, f"invalid value {tok!r}")
    return float(tok)


def _parse_labels(s, i, lineno):
    """Parse {...} starting at s[i] == '{'; returns (labels, index after '}')."""
    labels = {}
    i += 1
    while True:
        while i < len(s) and s[i] in " \t":
            i += 1
        if i < len(s) and s[i] == "}":
            return labels, i + 1
        m = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*").match(s, i)
        if not m:
            raise PromParseError(lineno, f"invalid label name at column {i + 1}")
        name = m.group(0)
        if name.startswith("__"):
            raise PromParseError(lineno, f"reserved label name {name!r}")
        if name in labels:
            raise PromParseError(lineno, f"label {name!r} repeated")
        i = m.end()
        while i < len(s) and s[i] in " \t":
            i += 1
        if i >= len(s) or s[i] != "=":
            raise PromParseError(lineno, f"expected '=' after label {name!r}")
        i += 1
        while i < len(s) and s[i] in " \t":
            i += 1
        if i >= len(s) or s[i] != '"':
            raise PromParseError(lineno, f"expected '\"' for the value of label {name!r}")
        i += 1
        start = i
        while i < len(s) and s[i] != '"':
            i += 2 if s[i] == "\\" else 1
        if i >= len(s):
            raise PromParseError(lineno, f"unterminated value of label {name!r}")
        labels[name] = _unescape(s[start:i], '\\n"', lineno, f"label {name!r}")
        i += 1
        while i < len(s) and s[i] in " \t":
            i += 1
        if i < len(s) and s[i] == ",":
            i += 1
            continue
        if i < len(s) and s[i] == "}":
            return labels, i + 1
        raise PromParseError(lineno, "expected ',' or '}' in the label set")


def _family_of(name, families):
    """The family a sample name belongs to, by the suffix rules."""
    f = families.get(name)
    if f is not None and f.type != "histogram":
        return f
    for suffix in ("_bucket", "_sum", "_count"):
        if name.endswith(suffix):
            base = families.get(name[: -len(suffix)])
            if base and (base.type == "histogram" or (base.type == "summary" and suffix != "_bucket")):
                return base
    return f


def parse(text, check_with_client=True):
    """Parse and check text; returns {family name: Family} in text order."""
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as e:
            raise PromParseError(0, f"not UTF-8: {e}") from None
    if text and not text.endswith("\n"):
        raise PromParseError(0, "the text does not end with a newline")
    families = {}
    order = []  # family names in the order their lines appear
    current = None
    seen_series = set()
    lines = text.split("\n")[:-1] if text else []
    for lineno, line in enumerate(lines, 1):
        if "\r" in line:
            raise PromParseError(lineno, "carriage return in a line")
        if not line.strip():
            continue
        if line.startswith("#"):
            parts = line.split(None, 3)
            if len(parts) >= 2 and parts[1] in ("HELP", "TYPE"):
                if len(parts) < 3:
                    raise PromParseError(lineno, f"# {parts[1]} without a metric name")
                name = parts[2]
                if not METRIC_NAME.match(name):
                    raise PromParseError(lineno, f"invalid metric name {name!r}")
                fam = families.get(name)
                if fam is None:
                    fam = families[name] = Family(name)
                    order.append(name)
                elif current is not fam:
                    raise PromParseError(lineno, f"family {name!r} is not contiguous")
                if fam.samples:
                    raise PromParseError(lineno, f"# {parts[1]} {name} after its samples")
                current = fam
                if parts[1] == "HELP":
                    if fam.help is not None:
                        raise PromParseError(lineno, f"second # HELP for {name!r}")
                    # The docstring is everything after "# HELP name ".
                    m = re.match(r"#\s+HELP\s+\S+(?:[ \t](.*))?\Z", line)
                    fam.help = _unescape(m.group(1) or "", "\\n", lineno, "help text")
                else:
                    if fam.type is not None:
                        raise PromParseError(lineno, f"second # TYPE for {name!r}")
                    if len(parts) != 4 or parts[3].strip() not in TYPES:
                        raise PromParseError(lineno, f"invalid type in {line!r}")
                    fam.type = parts[3].strip()
            continue  # another comment
        # A sample.
        m = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*").match(line)
        if not m:
            raise PromParseError(lineno, "invalid metric name at the start of the line")
        name = m.group(0)
        i = m.end()
        labels = {}
        if i < len(line) and line[i] == "{":
            labels, i = _parse_labels(line, i, lineno)
        rest = line[i:]
        if rest and rest[0] not in " \t":
            raise PromParseError(lineno, "expected a blank before the value")
        toks = rest.split()
        if len(toks) not in (1, 2):
            raise PromParseError(lineno, f"expected a value and an optional timestamp, got {toks!r}")
        value = parse_value(toks[0], lineno)
        ts = None
        if len(toks) == 2:
            if not TIMESTAMP.match(toks[1]):
                raise PromParseError(lineno, f"invalid timestamp {toks[1]!r}")
            ts = int(toks[1])
        fam = _family_of(name, families)
        if fam is None:
            raise PromParseError(lineno, f"sample {name!r} has no # HELP / # TYPE")
        if fam is not current:
            raise PromParseError(lineno, f"sample {name!r} outside its family's block")
        if fam.help is None:
            raise PromParseError(lineno, f"family {fam.name!r} has no # HELP")
        if fam.type is None:
            raise PromParseError(lineno, f"family {fam.name!r} has no # TYPE")
        if fam.type == "histogram" and name == fam.name:
            raise PromParseError(lineno, f"histogram sample {name!r} without _bucket/_sum/_count")
        if fam.type in ("counter", "gauge", "untyped") and name != fam.name:
            raise PromParseError(lineno, f"sample {name!r} in {fam.type} family {fam.name!r}")
        if fam.type == "counter" and (math.isnan(value) or value < 0):
            raise PromParseError(lineno, f"counter {name!r} has value {toks[0]}")
        key = (name, tuple(sorted(labels.items())))
        if key in seen_series:
            raise PromParseError(lineno, f"duplicate series {name}{labels}")
        seen_series.add(key)
        fam.samples.append(Sample(name, labels, value, ts, lineno))
    for name in order:
        fam = families[name]
        if fam.type is None:
            raise PromParseError(0, f"family {name!r} has no # TYPE")
        if fam.help is None:
            raise PromParseError(0, f"family {name!r} has no # HELP")
        if fam.type == "histogram":
            _check_histogram(fam)
        elif fam.type == "summary":
            _check_summary(fam)
    if check_with_client:
        _check_with_client(text)
    return families


def _group(fam, drop):
    groups = {}
    for s in fam.samples:
        key = tuple(sorted((k, v) for k, v in s.labels.items() if k != drop))
        groups.setdefault(key, []).append(s)
    return groups


def _count_value(s):
    if math.isnan(s.value) or s.value < 0 or s.value != math.floor(s.value):
        raise PromParseError(s.lineno, f"{s.name} must be a non-negative integer, got {s.value}")


def _check_histogram(fam):
    for key, samples in _group(fam, "le").items():
        buckets = [s for s in samples if s.name == fam.name + "_bucket"]
        sums = [s for s in samples if s.name == fam.name + "_sum"]
        counts = [s for s in samples if s.name == fam.name + "_count"]
        where = f"histogram {fam.name}{dict(key)}"
        for s in sums + counts:
            if "le" in s.labels:
                raise PromParseError(s.lineno, f"{s.name} must not have an le label")
        if not buckets:
            raise PromParseError(0, f"{where} has no _bucket samples")
        if len(sums) != 1 or len(counts) != 1:
            raise PromParseError(0, f"{where} needs one _sum and one _count")
        prev_le, prev_count = -math.inf, 0
        for s in buckets:
            if "le" not in s.labels:
                raise PromParseError(s.lineno, f"{s.name} without an le label")
            le = parse_value(s.labels["le"], s.lineno)
            if math.isnan(le) or le <= prev_le:
                raise PromParseError(s.lineno, f"{where}: le {s.labels['le']} does not increase")
            _count_value(s)
            if s.value < prev_count:
                raise PromParseError(s.lineno, f"{where}: bucket counts are not cumulative")
            prev_le, prev_count = le, s.value
        if prev_le != math.inf:
            raise PromParseError(buckets[-1].lineno, f"{where} has no le=\"+Inf\" bucket")
        if buckets[-1].labels["le"] != "+Inf":
            raise PromParseError(buckets[-1].lineno, f"{where}: write the last bucket as +Inf")
        _count_value(counts[0])
        if counts[0].value != buckets[-1].value:
            raise PromParseError(counts[0].lineno, f"{where}: _count differs from the +Inf bucket")


def _check_summary(fam):
    for key, samples in _group(fam, "quantile").items():
        where = f"summary {fam.name}{dict(key)}"
        sums = [s for s in samples if s.name == fam.name + "_sum"]
        counts = [s for s in samples if s.name == fam.name + "_count"]
        if len(sums) != 1 or len(counts) != 1:
            raise PromParseError(0, f"{where} needs one _sum and one _count")
        _count_value(counts[0])
        for s in samples:
            if s.name == fam.name:
                q = parse_value(s.labels.get("quantile", "x"), s.lineno) if "quantile" in s.labels else None
                if q is None or not 0 <= q <= 1:
                    raise PromParseError(s.lineno, f"{where}: quantile missing or outside [0, 1]")


def _check_with_client(text):
    try:
        from prometheus_client.parser import text_string_to_metric_families
    except ImportError:
        return
    try:
        for _ in text_string_to_metric_families(text):
            pass
    except Exception as e:  # the client raises ValueError and others
        raise PromParseError(0, f"prometheus_client rejects it: {e}") from None


def value(families, name, **labels):
    """The value of the sample called name whose labels are exactly labels."""
    for fam in families.values():
        for s in fam.samples:
            if s.name == name and s.labels == labels:
                return s.value
    raise KeyError(f"{name}{labels}")


def main(argv):
    if len(argv) != 2:
        print("usage: promparse.py FILE|-", file=sys.stderr)
        return 2
    data = sys.stdin.buffer.read() if argv[1] == "-" else open(argv[1], "rb").read()
    try:
        fams = parse(data)
    except PromParseError as e:
        print(f"promparse: {e}", file=sys.stderr)
        return 1
    print(f"ok: {len(fams)} families, {sum(len(f.samples) for f in fams.values())} samples")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
