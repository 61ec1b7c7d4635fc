"""scripts/probes.py keeps working: its data-file probes (5,000-deep JSON, a lone surrogate, a CSV of
10^6 columns, a 64 MiB+ line, NUL bytes, YAML alias bombs) all hold, one line each and a total."""

from __future__ import annotations

import subprocess
import sys

from helpers import REPO


def test_the_data_file_probes_all_hold():
    out = subprocess.run([sys.executable, str(REPO / "scripts" / "probes.py"), "--group", "data"], capture_output=True,
                         text=True, timeout=900, cwd=REPO)
    lines = out.stdout.strip().splitlines()
    assert out.returncode == 0, out.stdout + out.stderr[-2000:]
    assert len(lines) == 7 and all(line.startswith("HELD ") for line in lines[:6]), lines
    assert lines[-1] == "total: 6 probes, 6 held, 0 failed"
