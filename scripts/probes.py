"""Adversarial probes (issue 30): hostile inputs against a fresh workspace on loopback, one line each.

    python scripts/probes.py                 # every group
    python scripts/probes.py --group data    # one group (or several: --group data,models)
    python scripts/probes.py --list          # the probes, without running them

Each probe runs `tunestudio` as a user would (a separate process, a throwaway workspace, servers on
127.0.0.1 only) and says HELD (the tool refused or survived the input as the issue asks: one clear
error, no traceback, within its time) or FAILED (why). The last line is the total; the exit status is
1 when any probe failed. Groups: data, models, sweeps, ui, runs, serve, reward (`--group`).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
import probe_checks  # noqa: E402  (beside this file: the probes that need a server or a model)
from probe_checks import one_error  # noqa: E402

GOOD = '{"instruction": "a", "output": "b"}'


class Env:
    """The throwaway workspace and a `tunestudio` runner; the demo's tiny model made when first needed."""

    def __init__(self, root: Path):
        self.root = root
        self.ws = root / "ws"
        (self.ws / "training" / "datasets").mkdir(parents=True, exist_ok=True)
        self.env = {**os.environ, "HF_HUB_OFFLINE": "1", "GRADIO_ANALYTICS_ENABLED": "False", "OMP_NUM_THREADS": "1",
                    "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)}
        self._demo = False

    def argv(self, *args) -> list[str]:
        return [sys.executable, "-m", "tunestudio", *map(str, args), "--workspace", str(self.ws)]

    def cli(self, *args, timeout: float = 120, env: dict | None = None) -> tuple[int, str, str, float]:
        """(exit status, stdout, stderr, seconds); status 124 when it ran past `timeout` (then its whole
        process group is killed). Output goes through files, not pipes: a grandchild left holding a
        pipe (a reward's forked child) would keep the call waiting for it."""
        t = time.monotonic()
        with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
            p = subprocess.Popen(self.argv(*args), stdout=out, stderr=err, cwd=self.root, stdin=subprocess.DEVNULL,
                                 env={**self.env, **(env or {})}, start_new_session=True)
            try:
                rc = p.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()
                rc = 124
            out.seek(0)
            err.seek(0)
            return rc, out.read(), err.read(), time.monotonic() - t

    def popen(self, *args, log: str = "bg.log") -> subprocess.Popen:
        return subprocess.Popen(self.argv(*args), cwd=self.root, env=self.env, stdin=subprocess.DEVNULL,
                                stdout=open(self.root / log, "w"), stderr=subprocess.STDOUT, start_new_session=True)

    def data(self, name: str, content: str | bytes) -> str:
        path = self.ws / "training" / "datasets" / name
        path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8", "surrogatepass"))
        return name

    def demo(self) -> None:
        if not self._demo:
            rc, _, err, _ = self.cli("demo", "--tiny-only", timeout=600)
            if rc != 0:
                raise RuntimeError(f"`tunestudio demo --tiny-only` failed: {err[-500:]}")
            self._demo = True


# ---- data files -----------------------------------------------------------------------------------

def _data_check(e: Env, name: str, code: str, limit: float = 60, env: dict | None = None) -> str | None:
    rc, out, err, secs = e.cli("data", "check", name, "--json", timeout=limit + 30, env=env)
    if rc == 124 or secs > limit:
        return f"still going after {secs:.0f} s"
    if rc != 1 or "Traceback" in err:
        return f"exit {rc}: {err.strip()[-300:]}"
    codes = [x.get("code") for x in json.loads(out)["errors"]]
    return None if code in codes else f"errors {codes}, expected {code}"


def probe_deep_json(e: Env):
    deep = '{"instruction": "q", "output": "b", "x": ' + "[" * 5000 + "]" * 5000 + "}"
    return _data_check(e, e.data("deep.jsonl", f"{GOOD}\n{deep}\n"), "json_too_deep")


def probe_lone_surrogate(e: Env):
    return _data_check(e, e.data("surrogate.jsonl", f'{GOOD}\n{{"instruction": "a\\ud800", "output": "b"}}\n'),
                       "json_lone_surrogate")


def probe_wide_csv(e: Env):
    n = 10**6
    text = ",".join(f"c{i}" for i in range(n)) + "\n" + ",".join("x" * n) + "\n"
    return _data_check(e, e.data("wide.csv", text), "csv_too_many_columns")


def probe_long_line(e: Env):
    line = json.dumps({"instruction": "x" * (64 * 2**20 + 1), "output": "b"})   # past the 64 MiB line limit
    return _data_check(e, e.data("long.jsonl", f"{GOOD}\n{line}\n{GOOD}\n"), "line_too_long")


def probe_nul_bytes(e: Env):
    """NUL bytes in a JSON Lines file, and a binary file posing as one: refused by line, no traceback."""
    why = _data_check(e, e.data("nul.jsonl", f'{GOOD}\n{{"instruction": "a\0b", "output": "c"}}\n'.encode()),
                      "invalid_json")
    blob = bytes((i * 37 + 11) % 256 for i in range(200_000)).replace(b"\n", b"\0")
    rc, _, err, secs = e.cli("data", "check", e.data("blob.jsonl", blob))
    return why or (None if rc == 1 and "Traceback" not in err and secs < 60 else f"binary file: exit {rc} {err[-300:]}")


# billion laughs: nine nested lists, each nine aliases of the one before: 9^9 strings once expanded
BOMB = "[&a [" + ", ".join(["lol"] * 9) + "], " + ", ".join(
    f"&{a} [{', '.join([f'*{b}'] * 9)}]" for b, a in zip("abcdefgh", "bcdefghi")) + "]"


def probe_yaml_bomb(e: Env):
    """A run config and a sweep file with an alias bomb as an option's value: one error, quickly."""
    (e.root / "bomb.yaml").write_text(f"model: tiny-demo\ndataset: demo-reviews.jsonl\ntarget_modules: {BOMB}\n")
    (e.root / "bomb-sweep.yaml").write_text("base: {model: tiny-demo, dataset: demo-reviews.jsonl}\n"
                                             f"space:\n  target_modules: {BOMB}\n")
    for args in (("train", "--config", e.root / "bomb.yaml"), ("sweep", "--config", e.root / "bomb-sweep.yaml")):
        rc, _, err, secs = e.cli(*args, timeout=90)
        why = one_error(rc, err, secs, 30)
        if why:
            return f"{args[0]} --config: {why}"
    return None


# ---- the rest: the table of every probe -------------------------------------------------------------

PROBES = [
    ("data", "5,000-deep JSON", probe_deep_json),
    ("data", "lone surrogate \\ud800", probe_lone_surrogate),
    ("data", "CSV with 10^6 columns", probe_wide_csv),
    ("data", "64 MiB+ line", probe_long_line),
    ("data", "NUL bytes", probe_nul_bytes),
    ("data", "YAML alias bomb (config, sweep)", probe_yaml_bomb),
    ("models", "pickle-only model folder", probe_checks.pickle_model),
    ("models", "looping chat template", probe_checks.looping_template),
    ("sweeps", "every trial invalid", probe_checks.invalid_sweep),
    ("ui", "wrong passwords throttled", probe_checks.ui_passwords),
    ("ui", "chat Markdown image not fetched", probe_checks.chat_image),
    ("runs", "two train --resume of one run", probe_checks.two_resumes),
    ("runs", "runs delete during an eval", probe_checks.delete_during_eval),
    ("serve", "5 MB prompt: 413/400", probe_checks.serve_huge_prompt),
    ("serve", "/load_model refused", probe_checks.serve_load_model),
    ("serve", "foreign Host refused", probe_checks.serve_foreign_host),
    ("serve", "SIGTERM: exits within 5 s", probe_checks.serve_sigterm),
    ("reward", "forked child killed", probe_checks.reward_fork),
    ("reward", "memory limited (RLIMIT_AS)", probe_checks.reward_memory),
    ("reward", "no HF_TOKEN in its env", probe_checks.reward_env),
]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--group", help="comma-separated groups (data, models, sweeps, ui, runs, serve, reward)")
    ap.add_argument("--list", action="store_true", help="list the probes")
    ap.add_argument("--keep", action="store_true", help="keep the throwaway workspace (its path is printed)")
    args = ap.parse_args(argv)
    groups = {g.strip() for g in (args.group or "").split(",") if g.strip()}
    chosen = [p for p in PROBES if not groups or p[0].split()[0] in groups]
    if args.list or not chosen:
        print("\n".join(f"{g:<20} {name}" for g, name, _ in PROBES))
        return 0 if args.list else 2
    root = Path(tempfile.mkdtemp(prefix="tunestudio-probes-"))
    e, held = Env(root), 0
    try:
        for group, name, probe in chosen:
            t = time.monotonic()
            try:
                why = probe(e)
            except Exception as x:  # noqa: BLE001 - a probe that breaks is a failed probe, said in one line
                why = f"the probe itself broke: {type(x).__name__}: {str(x)[:300]}"
            held += why is None
            print(f"{'HELD  ' if why is None else 'FAILED'}  {group:<20} {name:<34} {time.monotonic() - t:6.1f} s"
                  + ("" if why is None else f"  {' '.join(str(why).split())[:400]}"), flush=True)
    finally:
        if args.keep:
            print(f"workspace kept: {e.ws}")
        else:
            shutil.rmtree(root, ignore_errors=True)
    print(f"total: {len(chosen)} probes, {held} held, {len(chosen) - held} failed")
    return 0 if held == len(chosen) else 1


if __name__ == "__main__":
    sys.exit(main())
