"""The package's version, its py.typed marker, and --version on every command."""

import contextlib
import importlib
import io
import os
from importlib import metadata

import pytest

import p2p

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_version_comes_from_the_package_metadata():
    assert p2p.__version__ == metadata.version("gethp2p")
    with open(os.path.join(ROOT, "setup.py"), encoding="utf-8") as f:
        assert 'version="%s"' % p2p.__version__ in f.read()


def test_py_typed_marker_is_shipped():
    assert os.path.isfile(os.path.join(os.path.dirname(p2p.__file__), "py.typed"))
    with open(os.path.join(ROOT, "setup.py"), encoding="utf-8") as f:
        assert '"py.typed"' in f.read()


def _commands():
    # Every console script of the distribution, and the demo (run as a module).
    eps = [ep for ep in metadata.entry_points(group="console_scripts") if ep.value.startswith("p2p.")]
    cmds = [(ep.name, ep.value) for ep in eps]
    cmds.append(("demo", "p2p.cmd.demo:main"))
    return sorted(set(cmds))


def test_every_command_is_listed():
    names = {name for name, _ in _commands()}
    assert {"bootnode", "p2pnode", "demo"} <= names


@pytest.mark.parametrize("name,target", _commands())
def test_command_answers_version(name, target):
    module, _, func = target.partition(":")
    main = getattr(importlib.import_module(module), func)
    out = io.StringIO()
    with contextlib.redirect_stdout(out), pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code in (0, None)
    assert out.getvalue().strip() == "%s (gethp2p %s)" % (name, p2p.__version__)
