"""Every program's --help prints its usage and exits 0: help texts are
%-formatted by argparse, so one stray "%" in a help string is a traceback
for the very first command a newcomer types."""

import importlib
import tomllib
from pathlib import Path

import pytest

SCRIPTS = tomllib.loads((Path(__file__).parent.parent / "pyproject.toml").read_text())[
    "project"
]["scripts"]


@pytest.mark.parametrize("name", sorted(SCRIPTS))
def test_help_prints_usage(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    module, _, function = SCRIPTS[name].partition(":")
    main = getattr(importlib.import_module(module), function)
    with pytest.raises(SystemExit) as ended:
        main(["--help"])
    assert ended.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage:")
    assert name in out.splitlines()[0]
