"""The README's example runs as printed."""

import io
import os
import re
from contextlib import redirect_stdout

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _python_blocks():
    text = open(os.path.join(ROOT, "README.md"), encoding="utf-8").read()
    return re.findall(r"```python\n(.*?)```", text, re.S)


def test_readme_example_runs():
    (example,) = _python_blocks()
    assert len(example.strip().splitlines()) <= 25
    out = io.StringIO()
    with redirect_stdout(out):
        exec(compile(example, "README.md", "exec"), {"__name__": "readme"})
    line = out.getvalue().strip()
    assert line.count("hello from") == 2, line
    assert "hello from a" in line and "hello from b" in line
