"""docs/DEPARTURES.md and the code agree: every ``# departure: <slug>: <one line>``
comment has a row in the page, and every row has at least one comment in the code."""

import os
import re

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PAGE = os.path.join(ROOT, "docs", "DEPARTURES.md")
SCANNED = ("p2p", "bench", "soak", "tools")
COMMENT = re.compile(r"#\s*departure:\s*([a-z0-9][a-z0-9-]*)\s*:\s*(\S.*)?$")
SLUG = re.compile(r"^[a-z0-9][a-z0-9-]*$")


def code_comments():
    """{slug: [(path, line)]} of the departure comments in the code."""
    found = {}
    for top in SCANNED:
        for dirpath, dirnames, filenames in os.walk(os.path.join(ROOT, top)):
            dirnames[:] = [d for d in dirnames if not d.startswith(".") and d != "node_modules"]
            for name in filenames:
                if not name.endswith(".py"):
                    continue
                path = os.path.join(dirpath, name)
                with open(path, encoding="utf-8") as f:
                    for i, line in enumerate(f, 1):
                        if "departure:" not in line:
                            continue
                        m = COMMENT.search(line)
                        assert m and m.group(2), "%s:%d: a departure comment must read '# departure: <slug>: <one line>'" % (
                            os.path.relpath(path, ROOT), i)
                        found.setdefault(m.group(1), []).append((os.path.relpath(path, ROOT), i))
    return found


def page_rows():
    """{slug: [cells]} of the table rows of the departures page."""
    rows = {}
    with open(PAGE, encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if not line.startswith("|") or line.startswith("|---") or line.startswith("| slug"):
                continue
            cells = [c.strip() for c in line.strip("|").split("|")]
            slug = cells[0].strip("`")
            assert slug not in rows, "row %s appears twice" % slug
            rows[slug] = cells
    return rows


def test_every_departure_comment_has_a_row():
    rows = page_rows()
    missing = ["%s (%s:%d)" % (slug, *places[0]) for slug, places in sorted(code_comments().items())
               if slug not in rows]
    assert not missing, "departure comments without a row in docs/DEPARTURES.md: %s" % missing


def test_every_row_has_a_comment():
    comments = code_comments()
    missing = [slug for slug in sorted(page_rows()) if slug not in comments]
    assert not missing, "rows in docs/DEPARTURES.md without a '# departure: <slug>:' comment: %s" % missing


def test_rows_are_complete():
    for slug, cells in page_rows().items():
        assert SLUG.match(slug), "bad slug %r" % slug
        assert len(cells) == 5, "row %s must have 5 cells (slug, where, what, why, later geth)" % slug
        assert all(cells[:4]), "row %s has an empty cell" % slug
        assert cells[4], "row %s: say the later geth version/PR, or 'none'" % slug


def test_comment_pattern():
    assert COMMENT.search("x = 1  # departure: some-slug: we do this instead").group(1) == "some-slug"
    assert COMMENT.search("# departure: bad slug: x") is None
