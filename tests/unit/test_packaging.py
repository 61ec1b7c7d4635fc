"""pyproject.toml as setuptools reads it: `pip install -e .` (scripts/setup.sh) prints no warning."""

from pathlib import Path

import tomllib
from helpers import REPO


def test_the_licence_is_an_spdx_expression_so_setup_prints_no_deprecation():
    # A `license = {text = ...}` table makes setuptools >= 77 print a SetuptoolsDeprecationWarning on
    # every install (twice per setup.sh run): PEP 639's plain SPDX string is the current form.
    meta = tomllib.loads(Path(REPO, "pyproject.toml").read_text())
    assert meta["project"]["license"] == "Apache-2.0"
    assert not any("License ::" in c for c in meta["project"].get("classifiers", []))
    assert any(r.startswith("setuptools>=77") for r in meta["build-system"]["requires"])
