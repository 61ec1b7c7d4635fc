"""`data stats` numbers match the data: characters, roles, turns, labels and the length histogram
(token counts: test_data_stats_e2e.py; the command: test_data_stats_cli.py)."""

from __future__ import annotations

import json
from pathlib import Path

from helpers import FIXTURES

from tunestudio.core.workspace import Workspace
from tunestudio.data.formats.load import load_file
from tunestudio.data.quality.stats import compute_stats, histogram, stats_dataset


def write_jsonl(path: Path, rows):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def test_stats_chars_roles_turns_labels(tmp_path):
    ws = Workspace(tmp_path).ensure()
    rows = [{"instruction": f"review {i}", "output": "positive" if i < 8 else "negative"} for i in range(10)]
    rows.append(dict(rows[0]))  # one duplicate
    write_jsonl(ws.datasets_dir / "cls.jsonl", rows)
    s = stats_dataset(ws, "cls.jsonl")
    assert s["rows"] == 11 and s["unit"] == "characters" and s["format"] == "alpaca"
    assert s["roles"] == {"user": 11, "assistant": 11}
    assert s["turns"]["min"] == s["turns"]["max"] == 2
    assert s["duplicates"] == 1
    assert s["labels"] == {"positive": 9, "negative": 2}
    assert s["dominant_label"]["label"] == "positive"
    assert any("class imbalance" in w for w in s["warnings"])
    assert sum(b["count"] for b in s["histogram"]) == 11
    json.dumps(s)  # the web UI and --json need it JSON-able
    # each warning also in parts, which the web UI words in its language
    from tunestudio.webui.i18n.texts import engine_warning

    assert [p["message"] for p in s["warning_parts"]] == s["warnings"]
    tet = [engine_warning("tet", p) for p in s["warning_parts"]]
    assert any(w.startswith("klase la ekilibradu: resposta 'positive'") for w in tet), tet
    assert any(w.startswith("liña 1 hanesan ezatamente") for w in tet), tet
    assert [engine_warning("en", p).split(":")[0] for p in s["warning_parts"]][0] in s["warnings"][0]


def test_no_labels_for_free_text():
    r = load_file(FIXTURES / "data" / "formats" / "messages.jsonl")
    s = compute_stats(r.records)
    assert s["labels"] is None and s["turns"]["max"] == 5


def test_histogram_against_cutoff():
    h = histogram([1, 5, 9, 10, 11, 30], cutoff=10, bins=5)
    assert [(b["lo"], b["hi"], b["count"]) for b in h] == [(0, 5, 1), (5, 10, 3), (10, 30, 2)]
    assert h[-1]["over_cutoff"] and not any(b["over_cutoff"] for b in h[:-1])


def test_histogram_bins_fit_the_data_and_stop_at_the_cutoff():
    import random

    rng = random.Random(0)
    short = [rng.randint(20, 390) for _ in range(1000)] + [600] * 3
    h = histogram(short, cutoff=512)
    inner = h[:-1]
    widths = {b["hi"] - b["lo"] for b in inner}
    assert widths == {50} and inner[0]["lo"] == 0 and inner[-1]["hi"] == 400  # round, up to the data
    assert all(a["hi"] == b["lo"] for a, b in zip(inner, inner[1:]))          # contiguous
    assert h[-1] == {"lo": 512, "hi": 600, "count": 3, "over_cutoff": True}
    assert all(isinstance(b["count"], int) for b in h) and sum(b["count"] for b in h) == len(short)

    near = [rng.randint(0, 512) for _ in range(500)] + [513, 2000]
    h = histogram(near, cutoff=512, bins=10)
    assert h[-2]["hi"] == 512 and h[-1]["lo"] == 512    # the last bin ends at the cutoff, not past it
    assert len(h) - 1 <= 10 and sum(b["count"] for b in h) == len(near)
    assert h[-1]["count"] == 2

    assert histogram([], 512) == []
    # nothing over the cutoff: the over bin is empty and starts where it ends, never past it
    assert histogram([100, 150], 256)[-1] == {"lo": 256, "hi": 256, "count": 0, "over_cutoff": True}
    assert histogram([3, 4, 4, 9], None)[-1]["over_cutoff"] is False           # no cutoff: no over bin


