#!/usr/bin/python3
"""Check that souk's #include lines follow the layer order.

    core  <-  net, store  <-  cache  <-  ops  <-  discord  <-  modules  <-  app

A file in src/<layer>/ may include headers of its own layer and of the
layers below it, never above (net and store are siblings: neither includes
the other).  A module (src/modules/<name>/) includes only include/souk and
headers of its own folder: no private header of a layer, no other module.

An include of "souk/x.h" counts as an include of the layer that implements
x.h, so a public header cannot hide a crossing: HEADERS below maps each
header of include/souk to its layer, and the check verifies the map, by
finding where every function a header declares is defined.  A new header
must be added to the map; a function defined in another layer than its
header's fails the check.

    scripts/check_layers.py [ROOT]      check the tree at ROOT (default: here)
    scripts/check_layers.py --self-test check that the checker catches crossings

Exit status 0 when the tree follows the order, 1 with one line per problem.
"""
import os
import re
import sys
import tempfile

# The layers, lowest first, and what each may include besides itself.
BELOW = {
    "core": set(),
    "net": {"core"},
    "store": {"core"},
    "cache": {"core", "net", "store"},
    "ops": {"core", "net", "store", "cache"},
    "discord": {"core", "net", "store", "cache", "ops"},
    "modules": {"core", "net", "store", "cache", "ops", "discord"},
    "app": {"core", "net", "store", "cache", "ops", "discord", "modules"},
}
# Folders of src/ whose private headers other layers may include by path.
PRIVATE = {"core", "net", "store", "cache", "ops", "discord", "app"}

# Each public header and the layer that implements what it declares.
HEADERS = {
    "alloc.h": "core",
    "buf.h": "core",
    "cmd.h": "core",
    "conf.h": "core",
    "err.h": "core",
    "json.h": "core",
    "log.h": "core",
    "loop.h": "core",
    "metrics.h": "core",
    "module.h": "core",
    "tz.h": "core",
    "http.h": "net",
    "httpd.h": "net",
    "url.h": "net",
    "store.h": "store",
    "cache.h": "cache",
    "cluster.h": "ops",
    "health.h": "ops",
    "janitor.h": "ops",
    "memguard.h": "ops",
    "recovery.h": "ops",
    "settings.h": "ops",
    "task.h": "ops",
    "usage.h": "ops",
    "discord.h": "discord",
    "stats.h": "discord",
}

INCLUDE_RE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)
# A declaration in a header: a line that starts with a type and names a
# souk_ function followed by its parameter list.
DECL_RE = re.compile(r"^[A-Za-z_][^;(#/]*?\b(souk_[a-z0-9_]+)\s*\(", re.M)
# A definition in a .c file: the same at the start of a line, followed by
# its body before any semicolon.
DEF_RE = re.compile(r"^[A-Za-z_][^;(#/=]*?\b(souk_[a-z0-9_]+)\s*\(", re.M)


def strip_comments(text):
    """Blank out C comments, keeping line numbers."""
    return re.sub(r"/\*.*?\*/", lambda m: re.sub(r"[^\n]", " ", m.group(0)), text, flags=re.S)


def layer_of(path):
    """The layer of a file given relative to the root, or None."""
    parts = path.split("/")
    if len(parts) >= 3 and parts[0] == "src":
        return "modules" if parts[1] == "modules" else parts[1]
    if len(parts) == 3 and parts[:2] == ["include", "souk"]:
        return HEADERS.get(parts[2], "?")
    return None


def sources(root, top):
    for base, dirs, files in os.walk(os.path.join(root, top)):
        dirs.sort()
        for f in sorted(files):
            if f.endswith((".c", ".h")):
                full = os.path.join(base, f)
                yield os.path.relpath(full, root).replace(os.sep, "/"), full


def read(full):
    with open(full, encoding="utf-8", errors="replace") as f:
        return f.read()


def check_headers_map(root, problems):
    """Every public header is mapped, and implemented in its layer."""
    inc = os.path.join(root, "include", "souk")
    present = sorted(f for f in os.listdir(inc) if f.endswith(".h")) if os.path.isdir(inc) else []
    for h in present:
        if h not in HEADERS:
            problems.append(f"include/souk/{h}: not in HEADERS of scripts/check_layers.py: "
                            "say which layer implements it")
    for h in sorted(HEADERS):
        if h not in present:
            problems.append(f"scripts/check_layers.py: HEADERS names include/souk/{h}, "
                            "which does not exist")
    # Where is each souk_ function defined?
    defined = {}
    for rel, full in sources(root, "src"):
        if not rel.endswith(".c"):
            continue
        text = strip_comments(read(full))
        for m in DEF_RE.finditer(text):
            rest = text[m.end():]
            semi, brace = rest.find(";"), rest.find("{")
            if brace >= 0 and (semi < 0 or brace < semi):
                defined.setdefault(m.group(1), set()).add(layer_of(rel))
    for h in present:
        want = HEADERS.get(h)
        if not want:
            continue
        text = strip_comments(read(os.path.join(inc, h)))
        for m in DECL_RE.finditer(text):
            name = m.group(1)
            where = defined.get(name, set())
            wrong = sorted(x for x in where if x != want)
            if wrong:
                line = text.count("\n", 0, m.start()) + 1
                problems.append(f"include/souk/{h}:{line}: {name} is defined in "
                                f"{', '.join(wrong)}, but the header belongs to {want}: "
                                "declare it in a header of that layer")


def check_includes(root, problems):
    files = list(sources(root, "src")) + list(sources(root, "include"))
    for rel, full in files:
        layer = layer_of(rel)
        if layer is None or layer == "?":
            continue
        text = read(full)
        for m in INCLUDE_RE.finditer(text):
            target = m.group(1)
            line = text.count("\n", 0, m.start()) + 1
            where = f"{rel}:{line}"
            top = target.split("/")[0]
            if target.startswith("souk/"):
                dep = HEADERS.get(target[5:])
                if dep is None:
                    problems.append(f"{where}: includes {target}, which HEADERS does not map")
                    continue
            elif "/" not in target:
                # A header of the file's own folder.
                if not os.path.exists(os.path.join(os.path.dirname(full), target)):
                    problems.append(f"{where}: includes {target}, not in its own folder")
                continue
            elif top == "modules":
                dep = "modules"
                if layer == "modules" and target.split("/")[1] != rel.split("/")[2]:
                    problems.append(f"{where}: a module includes another module ({target})")
                    continue
            elif top in PRIVATE:
                dep = top
                if layer == "modules":
                    problems.append(f"{where}: a module includes the private header {target}; "
                                    "modules use include/souk only")
                    continue
            else:
                problems.append(f"{where}: includes {target}, outside every layer")
                continue
            if dep != layer and dep not in BELOW[layer]:
                problems.append(f"{where}: {layer} includes {target} ({dep}), "
                                f"against the order core <- net, store <- cache <- ops <- "
                                f"discord <- modules <- app")


def check(root):
    problems = []
    check_headers_map(root, problems)
    check_includes(root, problems)
    return problems


def self_test():
    """Build small trees and check that each crossing is caught."""
    def tree(files):
        d = tempfile.mkdtemp(prefix="souk-layers-")
        for path, text in files.items():
            full = os.path.join(d, path)
            os.makedirs(os.path.dirname(full), exist_ok=True)
            with open(full, "w") as f:
                f.write(text)
        for h in HEADERS:
            full = os.path.join(d, "include", "souk", h)
            if not os.path.exists(full):
                os.makedirs(os.path.dirname(full), exist_ok=True)
                open(full, "w").close()
        return d

    clean = {
        "src/core/log.c": '#include "souk/log.h"\nvoid souk_log(int l) {\n}\n',
        "include/souk/log.h": "void souk_log(int l);\n",
        "src/discord/bot.c": '#include "core/core.h"\n#include "souk/store.h"\n',
        "src/modules/m/m.c": '#include "souk/log.h"\n#include "m.h"\n',
        "src/modules/m/m.h": "",
        "src/app/main.c": '#include "discord/bot.h"\n#include "souk/module.h"\n',
    }
    cases = [
        ({"src/core/x.c": '#include "discord/bot.h"\n'}, "core includes discord/bot.h"),
        ({"src/net/x.c": '#include "store/store_int.h"\n'}, "net includes store/store_int.h"),
        ({"src/cache/x.c": '#include "souk/task.h"\n'}, "cache includes souk/task.h (ops)"),
        ({"src/modules/m/x.c": '#include "core/core.h"\n'}, "the private header core/core.h"),
        ({"src/modules/m/x.c": '#include "modules/n/n.h"\n'}, "another module"),
        ({"src/modules/m/x.c": '#include "n.h"\n'}, "not in its own folder"),
        ({"include/souk/new.h": ""}, "new.h: not in HEADERS"),
        ({"src/discord/bot.c": "int souk_log_x(void) {\n  return 0;\n}\n",
          "include/souk/log.h": "int souk_log_x(void);\n"},
         "souk_log_x is defined in discord"),
        ({"include/souk/store.h": '#include "souk/task.h"\n'}, "store includes souk/task.h"),
    ]
    failed = 0
    got = check(tree(clean))
    if got:
        print("self-test: a clean tree was refused:\n  " + "\n  ".join(got))
        failed += 1
    for extra, want in cases:
        files = dict(clean)
        files.update(extra)
        got = check(tree(files))
        if not any(want in p for p in got):
            print(f"self-test: expected a problem containing {want!r}, got {got}")
            failed += 1
    print("self-test: %s" % ("FAILED" if failed else f"{len(cases) + 1} trees checked, all as expected"))
    return 1 if failed else 0


def main(argv):
    if len(argv) > 1 and argv[1] == "--self-test":
        return self_test()
    root = argv[1] if len(argv) > 1 else os.getcwd()
    problems = check(root)
    for p in problems:
        print(p)
    if problems:
        print(f"{len(problems)} problem(s): see docs/modules.md, \"Layers\"")
        return 1
    print("layers: every #include follows core <- net, store <- cache <- ops <- discord "
          "<- modules <- app")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
