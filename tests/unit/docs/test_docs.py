"""The documentation: the MkDocs site builds in strict mode (a broken link or anchor fails it), and the
README stays a short front door whose two commands are the ones CI runs and whose links land in docs/."""

from __future__ import annotations

import os
import re
import subprocess
import sys

from helpers import REPO

ROOT = REPO
# The two fresh-machine commands: .ci/run runs exactly the README's test command.
COMMANDS = ("bash scripts/start.sh", "bash scripts/test.sh")
README_MAX_LINES = 300


def test_docs_site_builds_strict(tmp_path):
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    proc = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path)],
                          cwd=ROOT, capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, f"mkdocs build --strict failed:\n{proc.stdout}\n{proc.stderr}"
    assert (tmp_path / "index.html").is_file()


def _readme() -> str:
    return (ROOT / "README.md").read_text(encoding="utf-8")


def test_readme_is_short_with_the_two_commands():
    text = _readme()
    lines = text.splitlines()
    assert len(lines) <= README_MAX_LINES, f"README.md has {len(lines)} lines; the manual belongs in docs/"
    for command in COMMANDS:
        assert any(line.startswith(command + " ") or line == command for line in lines), \
            f"README.md lost its command line {command!r}"


def test_readme_links_land_in_docs():
    text = _readme()
    targets = [t for t in re.findall(r"\]\(([^)\s]+)\)", text) if not re.match(r"[a-z]+:", t)]
    assert any(t.startswith("docs/") and t.split("#", 1)[0].endswith(".md") for t in targets), \
        "README.md links to no page of docs/"
    outside = [t for t in targets if not t.startswith("docs/")]
    assert not outside, f"README.md links outside docs/: {outside}"
    missing = [t for t in targets if not (ROOT / t.split("#", 1)[0]).is_file()]
    assert not missing, f"README.md links to files that do not exist: {missing}"


# The user's guide, step by step: what a newcomer reads right after the two commands.
GUIDE_STEPS = ["Prepare your dataset", "Open the Training tab", "Select your dataset",
               "Configure the training parameters", "Select the training method", "Start Training",
               "Evaluate the fine-tuned model"]


def test_readme_walks_the_users_seven_steps_right_after_the_two_commands():
    text = _readme()
    sections = re.split(r"^## ", text, flags=re.M)
    after = next(i for i, s in enumerate(sections) if s.startswith("Fresh machine"))
    commands, steps = sections[after], sections[after + 1]
    assert "workspace" in commands and "Ctrl+C" in commands and "training/datasets/" in commands
    found = [int(n) for n, _ in re.findall(r"^\*\*(\d)\. ([^*]+)\*\*", steps, flags=re.M)]
    assert found == list(range(1, 8)), found
    titles = re.findall(r"^\*\*\d\. ([^*]+?)\.?\*\*", steps, flags=re.M)
    assert titles == GUIDE_STEPS, titles
    for words in ("Hahu Treinamentu", "Treinamentu", "Épokas", "Taxa", "Tamañu lote", "afina"):
        assert words in steps, words
