"""Tests of the strict Prometheus text-format parser (promparse.py).

Run: /usr/bin/python3 -m pytest -q tests/fakes/test_promparse.py
"""

import math
import os
import subprocess
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import promparse  # noqa: E402

GOOD = """\
# HELP a_gauge A gauge with \\\\ and \\n in its help.
# TYPE a_gauge gauge
a_gauge -1.5
# HELP req_total Requests.
# TYPE req_total counter
req_total{route="GET /x",status="200"} 3
req_total{route="a\\"b\\\\c\\nd",status="500"} 0.5 1700000000000
# HELP lat_seconds Latency.
# TYPE lat_seconds histogram
lat_seconds_bucket{route="/a",le="0.1"} 2
lat_seconds_bucket{route="/a",le="1"} 3
lat_seconds_bucket{route="/a",le="+Inf"} 4
lat_seconds_sum{route="/a"} 7.65
lat_seconds_count{route="/a"} 4
lat_seconds_bucket{route="/b",le="0.1"} 0
lat_seconds_bucket{route="/b",le="1"} 0
lat_seconds_bucket{route="/b",le="+Inf"} 0
lat_seconds_sum{route="/b"} 0
lat_seconds_count{route="/b"} 0
# HELP rpc_seconds A summary.
# TYPE rpc_seconds summary
rpc_seconds{quantile="0.5"} 0.2
rpc_seconds{quantile="0.99"} 1.5
rpc_seconds_sum 100
rpc_seconds_count 300
# HELP odd Special values.
# TYPE odd gauge
odd{k="nan"} NaN
odd{k="inf"} +Inf
odd{k="ninf"} -Inf
odd{k="exp"} 1e+20
"""


def test_good_text_parses():
    fams = promparse.parse(GOOD)
    assert list(fams) == ["a_gauge", "req_total", "lat_seconds", "rpc_seconds", "odd"]
    assert fams["a_gauge"].help == "A gauge with \\ and \n in its help."
    assert fams["lat_seconds"].type == "histogram"
    assert promparse.value(fams, "req_total", route='a"b\\c\nd', status="500") == 0.5
    assert fams["req_total"].samples[1].timestamp == 1700000000000
    assert promparse.value(fams, "lat_seconds_count", route="/a") == 4
    assert math.isnan(promparse.value(fams, "odd", k="nan"))
    assert promparse.value(fams, "odd", k="ninf") == -math.inf
    with pytest.raises(KeyError):
        promparse.value(fams, "req_total", route="nope")


def test_empty_text_and_comments():
    assert promparse.parse("") == {}
    fams = promparse.parse("# just a comment\n\n# HELP x X.\n# TYPE x gauge\nx 1\n")
    assert promparse.value(fams, "x") == 1


def test_trailing_comma_in_labels_is_allowed():
    fams = promparse.parse('# HELP x X.\n# TYPE x gauge\nx{a="1",} 2\n')
    assert promparse.value(fams, "x", a="1") == 2


BAD = {
    "no newline at end": "# HELP x X.\n# TYPE x gauge\nx 1",
    "no HELP": "# TYPE x gauge\nx 1\n",
    "no TYPE": "# HELP x X.\nx 1\n",
    "no HELP or TYPE": "x 1\n",
    "bad type": "# HELP x X.\n# TYPE x countr\nx 1\n",
    "two TYPEs": "# HELP x X.\n# TYPE x gauge\n# TYPE x gauge\nx 1\n",
    "two HELPs": "# HELP x X.\n# HELP x Y.\n# TYPE x gauge\nx 1\n",
    "TYPE after samples": "# HELP x X.\nx 1\n# TYPE x gauge\n",
    "duplicate series": "# HELP x X.\n# TYPE x counter\nx 1\nx 2\n",
    "duplicate labelled series": '# HELP x X.\n# TYPE x gauge\nx{a="1",b="2"} 1\nx{b="2",a="1"} 2\n',
    "family not contiguous": (
        "# HELP x X.\n# TYPE x gauge\nx 1\n# HELP y Y.\n# TYPE y gauge\ny 1\n"
        '# HELP x X.\n'
    ),
    "sample outside its block": (
        '# HELP x X.\n# TYPE x gauge\nx{a="1"} 1\n# HELP y Y.\n# TYPE y gauge\ny 1\nx{a="2"} 1\n'
    ),
    "bad value": "# HELP x X.\n# TYPE x gauge\nx one\n",
    "underscore value": "# HELP x X.\n# TYPE x gauge\nx 1_000\n",
    "negative counter": "# HELP x X.\n# TYPE x counter\nx -1\n",
    "bad timestamp": "# HELP x X.\n# TYPE x gauge\nx 1 1.5\n",
    "bad escape in label": '# HELP x X.\n# TYPE x gauge\nx{a="\\t"} 1\n',
    "bad escape in help": "# HELP x X \\t.\n# TYPE x gauge\nx 1\n",
    "unterminated label": '# HELP x X.\n# TYPE x gauge\nx{a="1} 1\n',
    "repeated label": '# HELP x X.\n# TYPE x gauge\nx{a="1",a="2"} 1\n',
    "reserved label": '# HELP x X.\n# TYPE x gauge\nx{__name__="1"} 1\n',
    "bad label name": '# HELP x X.\n# TYPE x gauge\nx{1a="1"} 1\n',
    "no blank before value": '# HELP x X.\n# TYPE x gauge\nx{a="1"}1\n',
    "extra token": "# HELP x X.\n# TYPE x gauge\nx 1 2 3\n",
    "gauge with suffix": "# HELP x X.\n# TYPE x gauge\nx_count 1\n",
    "histogram without +Inf": (
        "# HELP h H.\n# TYPE h histogram\n"
        'h_bucket{le="1"} 1\nh_sum 1\nh_count 1\n'
    ),
    "histogram count differs from +Inf": (
        "# HELP h H.\n# TYPE h histogram\n"
        'h_bucket{le="1"} 1\nh_bucket{le="+Inf"} 2\nh_sum 1\nh_count 3\n'
    ),
    "histogram not cumulative": (
        "# HELP h H.\n# TYPE h histogram\n"
        'h_bucket{le="1"} 2\nh_bucket{le="2"} 1\nh_bucket{le="+Inf"} 2\nh_sum 1\nh_count 2\n'
    ),
    "histogram le not increasing": (
        "# HELP h H.\n# TYPE h histogram\n"
        'h_bucket{le="2"} 1\nh_bucket{le="1"} 1\nh_bucket{le="+Inf"} 1\nh_sum 1\nh_count 1\n'
    ),
    "histogram without _sum": (
        "# HELP h H.\n# TYPE h histogram\n" 'h_bucket{le="+Inf"} 1\nh_count 1\n'
    ),
    "histogram bucket without le": (
        "# HELP h H.\n# TYPE h histogram\n" 'h_bucket 1\nh_sum 1\nh_count 1\n'
    ),
    "histogram fractional count": (
        "# HELP h H.\n# TYPE h histogram\n" 'h_bucket{le="+Inf"} 1.5\nh_sum 1\nh_count 1.5\n'
    ),
    "histogram bare sample": "# HELP h H.\n# TYPE h histogram\nh 1\n",
    "summary quantile out of range": (
        "# HELP s S.\n# TYPE s summary\n" 's{quantile="2"} 1\ns_sum 1\ns_count 1\n'
    ),
    "summary without _count": "# HELP s S.\n# TYPE s summary\ns_sum 1\n",
    "bad metric name": "# HELP 1x X.\n# TYPE 1x gauge\n1x 1\n",
    "carriage return": "# HELP x X.\r\n# TYPE x gauge\r\nx 1\r\n",
}


@pytest.mark.parametrize("name", sorted(BAD))
def test_bad_text_is_rejected(name):
    with pytest.raises(promparse.PromParseError):
        promparse.parse(BAD[name])


def test_not_utf8_is_rejected():
    with pytest.raises(promparse.PromParseError):
        promparse.parse(b'# HELP x X.\n# TYPE x gauge\nx{a="\xff"} 1\n')


def test_error_names_the_line():
    with pytest.raises(promparse.PromParseError) as e:
        promparse.parse("# HELP x X.\n# TYPE x counter\nx 1\nx 2\n")
    assert e.value.lineno == 4
    assert "duplicate" in str(e.value)


def test_prometheus_client_agrees_on_good_text():
    pytest.importorskip("prometheus_client")
    from prometheus_client.parser import text_string_to_metric_families

    names = [f.name for f in text_string_to_metric_families(GOOD)]
    # The client drops the _total suffix of counter families.
    assert "req" in names and "lat_seconds" in names


def test_command_line(tmp_path):
    good = tmp_path / "good.txt"
    good.write_text(GOOD)
    bad = tmp_path / "bad.txt"
    bad.write_text(BAD["duplicate series"])
    script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "promparse.py")
    r = subprocess.run([sys.executable, script, str(good)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    r = subprocess.run([sys.executable, script, str(bad)], capture_output=True, text=True)
    assert r.returncode == 1
    assert "duplicate series" in r.stderr
    r = subprocess.run([sys.executable, script, "-"], input=GOOD, capture_output=True, text=True)
    assert r.returncode == 0
