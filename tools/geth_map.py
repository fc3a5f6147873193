"""Cross-reference geth's Go functions with their Python twins.

``python tools/geth_map.py`` writes ``docs/GETH_MAP.md``: for every Go function
and method listed in ``tools/geth_names.tsv`` (the ported geth files), the
Python twin (module, qualified name, line), or the reason recorded in
``tools/geth_map_reasons.tsv`` why it has none. ``--check`` only reports the
Go names that have neither and exits 1 if there are any; the test suite runs it.

Twins are found by name: Go ``MixedCase`` becomes ``snake_case``
(``Table.ReadRandomNodes`` -> method ``read_random_nodes`` of class ``Table``,
``newDialState`` -> ``new_dial_state``, ``TestTable_pingReplace`` ->
``test_table_ping_replace``); ``String``/``Error`` methods become ``__str__``.
Receiver types match classes ignoring case and underscores (``dialstate`` ->
``DialState``).

Go's order: per Go file (one Python module each), the twins are taken in Go's
line order and their Python positions compared: the twins of the longest
subsequence that is also in Python's line order are "in Go's order", the others
are not. Rows out of order on purpose are listed, with the reason, in
``tools/geth_order_reasons.tsv`` or ``tools/geth_order_reasons.d/<package>.tsv``
(same columns as the map's reasons); they are left out of the comparison.
``--order`` prints the share per module and the unexcused rows out of order
(exit 1 if there are any) and the reasons that excuse nothing any more
(``--prune-stale`` deletes those); the test suite requires no unexcused row.
"""

from __future__ import annotations

import argparse
import ast
import bisect
import fnmatch
import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LINKED_DOCS = [os.path.join(ROOT, "docs", "ARCHITECTURE.md")]
NAMES = os.path.join(ROOT, "tools", "geth_names.tsv")
REASONS = os.path.join(ROOT, "tools", "geth_map_reasons.tsv")
# Each ported package may keep its rows in a file of its own beside the main lists:
# tools/geth_names.d/<package>.tsv and tools/geth_map_reasons.d/<package>.tsv.
NAMES_DIR = os.path.join(ROOT, "tools", "geth_names.d")
REASONS_DIR = os.path.join(ROOT, "tools", "geth_map_reasons.d")


def _list_files(main: str, directory: str) -> list:
    """``main`` followed by the ``.tsv`` files of ``directory``, sorted by name."""
    files = [main] if os.path.exists(main) else []
    if os.path.isdir(directory):
        files += [os.path.join(directory, f) for f in sorted(os.listdir(directory)) if f.endswith(".tsv")]
    return files
ORDER_REASONS = os.path.join(ROOT, "tools", "geth_order_reasons.tsv")
ORDER_REASONS_DIR = os.path.join(ROOT, "tools", "geth_order_reasons.d")
OUT = os.path.join(ROOT, "docs", "GETH_MAP.md")

# Go file -> the Python files searched for its twins, in order.
_SPECIAL = {
    "cmd/p2psim/main.go": ["p2p/cmd/p2psim.py"],
    "p2p/netutil/toobig_notwindows.go": ["p2p/netutil/error.py", "p2p/netutil/net.py"],
    "event/feed.go": ["p2p/event.py"],
    "event/subscription.go": ["p2p/event.py"],
    "event/feed_test.go": ["tests/test_event.py"],
    "event/subscription_test.go": ["tests/test_event.py"],
    "crypto/ecies/ecies.go": ["p2p/crypto/ecies.py"],
    "crypto/ecies/params.go": ["p2p/crypto/ecies.py"],
    "crypto/ecies/ecies_test.go": ["tests/crypto/test_ecies.py"],
    "crypto/crypto.go": ["p2p/crypto/__init__.py"],
    "crypto/signature_cgo.go": ["p2p/crypto/__init__.py"],
    "crypto/crypto_test.go": ["tests/crypto/test_crypto.py"],
    "crypto/signature_test.go": ["tests/crypto/test_signature.py"],
    "p2p/simulations/examples/ping-pong.go": ["p2p/simulations/examples/ping_pong.py"],
}

_METHOD_ALIASES = {
    "String": ["__str__", "__repr__", "string"],
    "Error": ["__str__", "error"],
    "Close": ["close"],
}


def snake(name: str) -> str:
    parts = []
    for piece in name.split("_"):
        if not piece:
            continue
        s = re.sub(r"([A-Z]{2,})s(?=[A-Z]|$)", lambda m: m.group(1).capitalize() + "s", piece)
        s = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1_\2", s)
        s = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", s)
        parts.append(s.lower())
    return "_".join(parts)


def _norm(name: str) -> str:
    return name.replace("_", "").lower()


def python_files(go_file: str) -> list:
    if go_file in _SPECIAL:
        return _SPECIAL[go_file]
    d, base = os.path.split(go_file)
    stem = base[:-3]
    if stem.endswith("_test"):
        sub = d[len("p2p"):].strip("/")
        return [os.path.join("tests", sub, "test_%s.py" % stem[:-5]).replace("\\", "/")]
    return ["%s/%s.py" % (d, stem)]


class PyIndex:
    """Top-level functions, classes and their methods of one Python file, with lines."""

    def __init__(self, path: str):
        self.path = path
        self.functions = {}
        self.classes = {}  # normalized class name -> (name, line, {method: line})
        full = os.path.join(ROOT, path)
        if not os.path.exists(full):
            self.exists = False
            return
        self.exists = True
        tree = ast.parse(open(full, encoding="utf-8").read(), path)
        for node in tree.body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                self.functions[node.name] = node.lineno
            elif isinstance(node, ast.ClassDef):
                methods = {}
                for sub in node.body:
                    if isinstance(sub, (ast.FunctionDef, ast.AsyncFunctionDef)):
                        methods[sub.name] = sub.lineno
                    elif isinstance(sub, ast.Assign):
                        for t in sub.targets:
                            if isinstance(t, ast.Name):
                                methods.setdefault(t.id, sub.lineno)
                self.classes.setdefault(_norm(node.name), (node.name, node.lineno, methods))
                # test classes group test functions: index their methods as functions too
                if node.name.startswith("Test"):
                    for m, line in methods.items():
                        self.functions.setdefault(m, line)
            elif isinstance(node, ast.Assign):
                for t in node.targets:
                    if isinstance(t, ast.Name):
                        self.functions.setdefault(t.id, node.lineno)

    def find(self, receiver: str, name: str):
        """Return (qualified python name, line) or None."""
        if receiver:
            cls = self.classes.get(_norm(receiver))
            if cls is None:
                return None
            cname, _, methods = cls
            candidates = [snake(name)] + _METHOD_ALIASES.get(name, [])
            if name[:1].islower():
                # as for functions: getNode beside GetNode is the private _get_node
                candidates.insert(0, "_" + snake(name))
            for c in candidates:
                if c in methods:
                    return "%s.%s" % (cname, c), methods[c]
            for m, line in methods.items():
                if _norm(m) == _norm(name):
                    return "%s.%s" % (cname, m), line
            return None
        s = snake(name)
        # An unexported Go name whose exported sibling has the same snake_case name
        # (toECDSA beside ToECDSA) is the private Python function.
        for c in (("_" + s, s) if name[:1].islower() else (s, "_" + s)):
            if c in self.functions:
                return c, self.functions[c]
        for f, line in self.functions.items():
            if _norm(f) == _norm(name):
                return f, line
        # Go types that became classes (Foo -> Foo), and constructors that are the
        # class itself (newFoo -> Foo: Python constructs by calling the class)
        cls = self.classes.get(_norm(name))
        if cls is None and name[:3] in ("new", "New") and name[3:4].isupper():
            cls = self.classes.get(_norm(name[3:]))
        if cls is not None:
            return cls[0], cls[1]
        return None


def load_names():
    rows = []
    for path in _list_files(NAMES, NAMES_DIR):
        for line in open(path, encoding="utf-8"):
            if line.startswith("#") or not line.strip():
                continue
            go_file, go_line, qual = line.rstrip("\n").split("\t")
            receiver, _, name = qual.rpartition(".")
            rows.append((go_file, int(go_line), receiver, name))
    return rows


def load_reasons(main=REASONS, directory=REASONS_DIR):
    reasons = []
    for path in _list_files(main, directory):
        for line in open(path, encoding="utf-8"):
            if line.startswith("#") or not line.strip():
                continue
            go_file, qual, reason = line.rstrip("\n").split("\t", 2)
            reasons.append((go_file, qual, reason))
    return reasons


def reason_for(reasons, go_file, qual):
    for f, q, r in reasons:
        if fnmatch.fnmatchcase(go_file, f) and fnmatch.fnmatchcase(qual, q):
            return r
    return None


def build():
    indexes = {}
    reasons = load_reasons()
    result = []
    for go_file, go_line, receiver, name in load_names():
        qual = "%s.%s" % (receiver, name) if receiver else name
        found = None
        for py in python_files(go_file):
            idx = indexes.get(py) or indexes.setdefault(py, PyIndex(py))
            hit = idx.find(receiver, name)
            if hit:
                found = (py, hit[0], hit[1])
                break
        reason = None if found else reason_for(reasons, go_file, qual)
        result.append((go_file, go_line, qual, found, reason))
    return result


def _longest_ordered(keys: list) -> set:
    """Indexes of one longest non-decreasing subsequence of ``keys`` (patience sorting)."""
    tails: list = []  # tails[k]: index of the smallest last key of a run of length k+1
    prev = [-1] * len(keys)
    tail_keys: list = []
    for i, k in enumerate(keys):
        j = bisect.bisect_right(tail_keys, k)
        if j:
            prev[i] = tails[j - 1]
        if j == len(tails):
            tails.append(i)
            tail_keys.append(k)
        else:
            tails[j] = i
            tail_keys[j] = k
    keep = set()
    i = tails[-1] if tails else -1
    while i >= 0:
        keep.add(i)
        i = prev[i]
    return keep


class ModuleOrder:
    """How the twins of one Go file follow Go's order in their Python module."""

    def __init__(self, go_file: str, twins: int, excused: list, in_order: int, out_of_order: list):
        self.go_file = go_file
        self.py_files = python_files(go_file)
        self.twins = twins              # Go names with a Python twin
        self.excused = excused          # [(qual, reason)]: out of order on purpose
        self.in_order = in_order        # twins (not excused) in Go's order
        self.out_of_order = out_of_order  # [(go_line, qual, py_file, py_line)], not excused

    @property
    def compared(self) -> int:
        return self.twins - len(self.excused)

    @property
    def share(self) -> float:
        """The share of the compared twins in Go's order (1.0 when there are none)."""
        return self.in_order / self.compared if self.compared else 1.0


def go_order(result, reasons=None) -> list:
    """A :class:`ModuleOrder` per Go file with twins, in the order of the name lists."""
    if reasons is None:
        reasons = load_reasons(ORDER_REASONS, ORDER_REASONS_DIR)
    by_file: dict = {}
    for row in result:
        if row[3]:
            by_file.setdefault(row[0], []).append(row)
    out = []
    for go_file, rows in by_file.items():
        rows.sort(key=lambda r: r[1])
        pys = python_files(go_file)
        excused, compared = [], []
        for go_file_, go_line, qual, (py, _, py_line), _ in rows:
            why = reason_for(reasons, go_file_, qual)
            if why:
                excused.append((qual, why))
            else:
                compared.append((go_line, qual, py, py_line))
        keys = [(pys.index(py) if py in pys else len(pys), line) for _, _, py, line in compared]
        keep = _longest_ordered(keys)
        out.append(ModuleOrder(go_file, len(rows), excused, len(keep),
                               [c for i, c in enumerate(compared) if i not in keep]))
    return out


def stale_order_reasons(result, reasons=None) -> list:
    """Order reasons that excuse no twin now out of Go's order: ``(go_file, qual, reason)``."""
    if reasons is None:
        reasons = load_reasons(ORDER_REASONS, ORDER_REASONS_DIR)
    bare = go_order(result, reasons=[])
    out_rows = {(m.go_file, q) for m in bare for _, q, _, _ in m.out_of_order}
    return [(f, q, r) for f, q, r in reasons
            if not any(fnmatch.fnmatchcase(gf, f) and fnmatch.fnmatchcase(qq, q) for gf, qq in out_rows)]


def write_markdown(result, path=OUT):
    lines = [
        "# geth ↔ gethp2p map",
        "",
        "Generated by `make geth-map` (`tools/geth_map.py`) from the code; do not edit by hand.",
        "For every Go function and method of the ported geth files: its Python twin, or why it has none.",
        "",
    ]
    by_file = {}
    for row in result:
        by_file.setdefault(row[0], []).append(row)
    total = len(result)
    twins = sum(1 for r in result if r[3])
    lines.append("%d Go functions and methods: %d with a Python twin, %d with a reason, %d missing." % (
        total, twins, sum(1 for r in result if r[4]), sum(1 for r in result if not r[3] and not r[4])))
    lines.append("")
    order = go_order(result)
    lines += [
        "## Go's order",
        "",
        "Per module, the share of its twins that follow Go's line order (the longest run of",
        "twins in both orders, over the twins not excused in `tools/geth_order_reasons*`).",
        "",
        "The raw share counts every twin, excused or not.",
        "",
        "| Go file | Python | twins | excused | in Go's order | share | raw share |",
        "|---|---|---|---|---|---|---|",
    ]
    raw = {m.go_file: m for m in go_order(result, reasons=[])}
    for m in order:
        lines.append("| %s | %s | %d | %d | %d | %.0f%% | %.0f%% |" % (
            m.go_file, ", ".join(m.py_files), m.twins, len(m.excused), m.in_order, 100 * m.share,
            100 * raw[m.go_file].share))
    lines.append("")
    unordered = {(m.go_file, q) for m in order for _, q, _, _ in m.out_of_order}
    excused = {(m.go_file, q): r for m in order for q, r in m.excused}
    for go_file, rows in by_file.items():
        lines.append("## %s" % go_file)
        lines.append("")
        lines.append("| Go | line | Python | where |")
        lines.append("|---|---|---|---|")
        for _, go_line, qual, found, reason in rows:
            if found:
                py, pyname, pyline = found
                note = ""
                if (go_file, qual) in unordered:
                    note = " (out of Go's order)"
                elif (go_file, qual) in excused:
                    note = " (out of Go's order: %s)" % excused[(go_file, qual)]
                lines.append("| `%s` | %d | `%s` | [%s:%d](../%s#L%d)%s |" % (
                    qual, go_line, pyname, py, pyline, py, pyline, note))
            elif reason:
                lines.append("| `%s` | %d | — | %s |" % (qual, go_line, reason))
            else:
                lines.append("| `%s` | %d | **missing** | |" % (qual, go_line))
        lines.append("")
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(lines))


# A link to a Python definition in the docs: [`Class.method`](../p2p/x.py#L123)
_LINK = re.compile(r"\[`([A-Za-z_][\w.]*)`\]\(\.\./([\w/]+\.py)#L(\d+)\)")


def lookup_definition(path: str, qualname: str):
    """Line of ``qualname`` (``func``, ``Class`` or ``Class.method``) in ``path``, or None."""
    idx = PyIndex(path)
    if not idx.exists:
        return None
    if "." in qualname:
        cls_name, meth = qualname.split(".", 1)
        for name, _, methods in idx.classes.values():
            if name == cls_name and meth in methods:
                return methods[meth]
        return None
    if qualname in idx.functions:
        return idx.functions[qualname]
    for name, line, _ in idx.classes.values():
        if name == qualname:
            return line
    return None


def check_links(doc: str):
    """``(link, problem)`` for every code link in ``doc`` that is broken or stale."""
    problems = []
    for m in _LINK.finditer(open(doc, encoding="utf-8").read()):
        name, path, line = m.group(1), m.group(2), int(m.group(3))
        actual = lookup_definition(path, name)
        if actual is None:
            problems.append((m.group(0), "no definition %s in %s" % (name, path)))
        elif actual != line:
            problems.append((m.group(0), "stale line: %s is at line %d" % (name, actual)))
    return problems


def refresh_links(doc: str) -> int:
    """Rewrite the line numbers of ``doc``'s code links; returns how many changed."""
    text = open(doc, encoding="utf-8").read()
    changed = 0

    def fix(m):
        nonlocal changed
        actual = lookup_definition(m.group(2), m.group(1))
        if actual is None or actual == int(m.group(3)):
            return m.group(0)
        changed += 1
        return "[`%s`](../%s#L%d)" % (m.group(1), m.group(2), actual)

    new = _LINK.sub(fix, text)
    if new != text:
        with open(doc, "w", encoding="utf-8") as f:
            f.write(new)
    return changed


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--check", action="store_true", help="list Go names with neither twin nor reason")
    ap.add_argument("--order", action="store_true",
                    help="print the share of twins in Go's order per module and the rows out of order")
    ap.add_argument("--prune-stale", action="store_true",
                    help="delete the order reasons that excuse nothing out of order any more")
    args = ap.parse_args(argv)
    result = build()
    if args.prune_stale:
        stale = {(f, q) for f, q, _ in stale_order_reasons(result)}
        for path in _list_files(ORDER_REASONS, ORDER_REASONS_DIR):
            with open(path, encoding="utf-8") as fh:
                lines = fh.readlines()
            keep = [ln for ln in lines if ln.startswith("#") or not ln.strip()
                    or tuple(ln.rstrip("\n").split("\t", 2)[:2]) not in stale]
            if len(keep) != len(lines):
                with open(path, "w", encoding="utf-8") as fh:
                    fh.writelines(keep)
                print("%s: %d stale rows deleted" % (os.path.relpath(path, ROOT), len(lines) - len(keep)))
        return 0
    if args.order:
        order = go_order(result)
        raw = {m.go_file: m for m in go_order(result, reasons=[])}
        print("%-44s %6s %6s  %s" % ("Go file", "share", "raw", "(in order of compared, excused; raw: no excuses)"))
        for m in order:
            print("%-44s %5.0f%% %5.0f%%  (%d of %d, %d excused)" % (
                m.go_file, 100 * m.share, 100 * raw[m.go_file].share, m.in_order, m.compared, len(m.excused)))
        bad = [(m.go_file, row) for m in order for row in m.out_of_order]
        for go_file, (go_line, qual, py, py_line) in bad:
            print("%s:%d %s is out of Go's order (%s:%d)" % (go_file, go_line, qual, py, py_line))
        for f, q, r in stale_order_reasons(result):
            print("stale order reason (nothing out of order matches it): %s\t%s\t%s" % (f, q, r))
        print("%d twins out of Go's order without a reason" % len(bad))
        return 1 if bad else 0
    missing = [r for r in result if not r[3] and not r[4]]
    if args.check:
        for go_file, go_line, qual, _, _ in missing:
            print("%s:%d %s has no Python twin and no reason" % (go_file, go_line, qual))
        print("%d of %d Go names missing" % (len(missing), len(result)))
        return 1 if missing else 0
    write_markdown(result)
    print("wrote %s (%d names, %d missing)" % (os.path.relpath(OUT, ROOT), len(result), len(missing)))
    for doc in LINKED_DOCS:
        n = refresh_links(doc)
        broken = [p for p in check_links(doc) if not p[1].startswith("stale")]
        print("refreshed %d code links in %s" % (n, os.path.relpath(doc, ROOT)))
        for link, problem in broken:
            print("  broken link %s: %s" % (link, problem))
    return 0


if __name__ == "__main__":
    sys.exit(main())
