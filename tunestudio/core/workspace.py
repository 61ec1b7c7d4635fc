"""Where things live: the workspace folders, and resolving the names users type into paths.

Layout (docs/dev/architecture.md); every path is a `Workspace` property or method, and no other module spells one out:
    training/datasets/        the user's data files (never modified by the tool)  datasets_dir
    training/runs/<run>/      one folder per run                                  runs_dir
    training/jobs/            the job queue, each job's log and exit record       jobs_dir
    training/sweeps/<sweep>/  a sweep's study and its background process          sweeps_dir, sweep_dir(name)
    training/sweeps/uploads/  sweep specs uploaded in the web UI                  sweep_uploads_dir
    training/evals/<model>/   evaluations of a model that is not a run            evals_dir
    training/benchmarks/      local lm-evaluation-harness task files (YAML+JSONL) benchmarks_dir
    training/.cache/loaded/   data files read into Arrow tables                   loaded_cache_dir
    training/.cache/encoded/  tokenized examples                                  encoded_cache_dir
    training/.cache/replay/   the base model's answers for replay                 replay_cache_dir
    training/mlflow.db        the MLflow store (--report-to mlflow)               mlflow_db_path
    training/trackio/         the Trackio store (--report-to trackio)             trackio_dir
    models/                   local base models                                   models_dir
    rewards/                  reward files for GRPO                               rewards_dir
    exports/                  exported models                                     exports_dir
    exports/.jobs/            exports started in the background (web UI)          export_jobs_dir
    .serve/<run>/             a run's adapter merged for serving                  serve_merged_dir(run_id)
    .serve/servers/           servers started in the background (web UI)          servers_dir
    tunestudio.db             the registry                                        db_path
    .tunestudio.db.lock       one registry repair at a time                       db_lock_path

Names resolve inside the workspace: a data file or model folder that is a symlink leading out of
it is refused, in the web UI always (`confined`, also set for the jobs it launches) and in the
CLI unless the user typed an explicit path (`/data/x.jsonl`, `./x.jsonl`, `~/m`), which is theirs
to give.
"""

from __future__ import annotations

import os
import re
import shlex
from dataclasses import dataclass
from pathlib import Path

from tunestudio.core.errors import UserError

CONFINED_ENV = "TUNESTUDIO_CONFINED"   # "1": read nothing outside the workspace (web UI and its jobs)


def is_explicit_path(name: str) -> bool:
    """Whether the user typed a path (a separator, or starting with ~ or .) rather than a name."""
    return "/" in name or "\\" in name or name.startswith(("~", "."))


@dataclass(frozen=True)
class Workspace:
    root: Path
    confined: bool = False   # True in the web UI: explicit paths outside the workspace are refused too

    @property
    def datasets_dir(self) -> Path:
        return self.training_dir / "datasets"

    @property
    def runs_dir(self) -> Path:
        return self.training_dir / "runs"

    @property
    def models_dir(self) -> Path:
        return self.root / "models"

    @property
    def db_path(self) -> Path:
        return self.root / "tunestudio.db"

    @property
    def db_lock_path(self) -> Path:
        return self.root / ".tunestudio.db.lock"

    @property
    def training_dir(self) -> Path:
        return self.root / "training"

    @property
    def jobs_dir(self) -> Path:
        return self.training_dir / "jobs"

    @property
    def sweeps_dir(self) -> Path:
        return self.training_dir / "sweeps"

    def sweep_dir(self, name: str) -> Path:
        return self.sweeps_dir / name

    @property
    def sweep_uploads_dir(self) -> Path:
        return self.sweeps_dir / "uploads"

    @property
    def evals_dir(self) -> Path:
        return self.training_dir / "evals"

    @property
    def benchmarks_dir(self) -> Path:
        return self.training_dir / "benchmarks"

    @property
    def cache_dir(self) -> Path:
        return self.training_dir / ".cache"

    @property
    def loaded_cache_dir(self) -> Path:
        return self.cache_dir / "loaded"

    @property
    def encoded_cache_dir(self) -> Path:
        return self.cache_dir / "encoded"

    @property
    def replay_cache_dir(self) -> Path:
        return self.cache_dir / "replay"

    @property
    def mlflow_db_path(self) -> Path:
        return self.training_dir / "mlflow.db"

    @property
    def trackio_dir(self) -> Path:
        return self.training_dir / "trackio"

    @property
    def rewards_dir(self) -> Path:
        return self.root / "rewards"

    @property
    def exports_dir(self) -> Path:
        return self.root / "exports"

    @property
    def export_jobs_dir(self) -> Path:
        return self.exports_dir / ".jobs"

    @property
    def serve_dir(self) -> Path:
        return self.root / ".serve"

    def serve_merged_dir(self, run_id: str) -> Path:
        return self.serve_dir / run_id

    @property
    def servers_dir(self) -> Path:
        return self.serve_dir / "servers"

    def child_env(self) -> dict[str, str]:
        """What a process started for this workspace gets in its environment to be confined as the
        web UI is ($TUNESTUDIO_CONFINED=1), nothing elsewhere."""
        return {CONFINED_ENV: "1"} if self.confined else {}

    def ensure(self) -> "Workspace":
        for d in (self.datasets_dir, self.runs_dir, self.models_dir):
            d.mkdir(parents=True, exist_ok=True)
        return self

    def safe_join(self, base: Path, name: str) -> Path:
        """`base / name`, refusing names that escape `base` (`../x`, absolute paths, symlinks out)."""
        candidate = (base / name).resolve()
        try:
            candidate.relative_to(base.resolve())
        except ValueError:
            raise UserError(f"'{name}' points outside {base}: use a plain file name", "upload_outside", name=name,
                            folder=str(base)) from None
        return candidate

    def inside(self, path: Path) -> bool:
        """Whether `path`, with every symlink resolved, lies inside the workspace."""
        try:
            Path(path).resolve().relative_to(self.root.resolve())
            return True
        except (ValueError, OSError, RuntimeError):  # outside, or a symlink loop
            return False

    def check_readable(self, path: Path, given: str, what: str = "file") -> Path:
        """`path` (found for what the user typed, `given`) if tunestudio may read it: inside the
        workspace, or outside it only when the user typed an explicit path and is not in the UI.
        Otherwise a UserError naming where the link leads."""
        if self.inside(path) or (is_explicit_path(given) and not self.confined):
            return path
        where = Path(path).resolve()
        if self.confined:
            raise UserError(f"{what} '{given}' resolves to {where}, outside the workspace {self.root}: "
                            "the web UI reads only files inside it; copy the file into the workspace",
                            "outside_workspace", name=given, where=str(where), workspace=str(self.root))
        raise UserError(f"{what} '{given}' is a link to {where}, outside the workspace {self.root}: refused; "
                        f"give the path itself ({where}) if you mean to read it", "link_outside_workspace",
                        name=given, where=str(where), workspace=str(self.root))

    def dataset_path(self, name: str) -> Path:
        """A dataset argument as the user typed it: a file under training/datasets or a path
        (see `check_readable` for links and paths leaving the workspace)."""
        p = Path(name).expanduser()
        for candidate in (self.datasets_dir / name, p if p.is_absolute() else self.root / p, p):
            if candidate.is_file():
                return self.check_readable(candidate, name, "dataset")
        raise UserError(
            f"dataset '{name}' not found: put the file in {self.datasets_dir} or give its path",
            "dataset_not_found", name=name, folder=str(self.datasets_dir))

    def model_path_or_id(self, name: str) -> str:
        """A model argument: a folder under models/, a local path, or (otherwise) a hub id. A GGUF
        file (or a folder holding only one) is refused with the command that imports it."""
        for candidate in (self.models_dir / name, Path(name).expanduser()):
            if candidate.is_dir():
                self.check_readable(candidate, name, "model")
                if not (candidate / "config.json").is_file():
                    ggufs = sorted(candidate.glob("*.gguf"))
                    if ggufs:
                        raise self._gguf_refusal(ggufs[0], folder=candidate)
                    raise UserError(f"model folder {candidate} has no config.json: not a Hugging Face model",
                                    "model_no_config", folder=str(candidate))
                refusal = pickle_refusal(candidate)
                if refusal:
                    raise refusal
                return str(candidate.resolve())
        if name.lower().endswith(".gguf"):   # never a hub id: a file to import first
            p = Path(name).expanduser()
            for candidate in (self.models_dir / name, p if p.is_absolute() else self.root / p, p):
                if candidate.is_file():
                    raise self._gguf_refusal(candidate)
            raise UserError(f"model '{name}' is a GGUF file name, and there is no {self.models_dir / name} or "
                            f"{name}: put the file in {self.models_dir}, then import it with "
                            f"`tunestudio models import FILE.gguf`", "model_gguf_missing", name=name,
                            folder=str(self.models_dir))
        if name.startswith((".", "/", "~")) or name.count("/") > 1 or not name.strip():
            raise UserError(f"model '{name}' not found: no folder {self.models_dir / name} or {name}",
                            "model_not_found", name=name, folder=str(self.models_dir / name))
        if "/" not in name:
            # A hub id is owner/name (the few old one-word ids redirect from their owner/name form), so a
            # bare name is a folder the user meant: say which exist rather than wait on the network for
            # an answer about huggingface.co that helps no one.
            raise self._not_local(name)
        return name  # a hub id such as "Qwen/Qwen2.5-0.5B"; from_pretrained reports if it is unknown

    def _not_local(self, name: str) -> UserError:
        import difflib

        models = self.list_models()
        close = difflib.get_close_matches(name.lower(), models, n=1, cutoff=0.6)
        have = ", ".join(models) if models else "none yet"
        hub = "A Hugging Face model is named owner/name, e.g. HuggingFaceTB/SmolLM2-135M-Instruct"
        if close:
            return UserError(f"model '{name}' is not a folder under {self.models_dir}: did you mean '{close[0]}'? "
                             f"(its models: {have}). {hub}", "model_not_local_close", name=name,
                             folder=str(self.models_dir), closest=close[0], models=have)
        return UserError(f"model '{name}' is not a folder under {self.models_dir} (its models: {have}). {hub}",
                         "model_not_local", name=name, folder=str(self.models_dir), models=have)

    def _gguf_refusal(self, file: Path, folder: Path | None = None) -> UserError:
        """The error for a GGUF file given where a model folder is wanted: the import command to run
        (with --name where the file's own name is taken, e.g. by the folder it sits in) and the
        name to use afterwards."""
        shown = self.shown_path(file)
        name = gguf_model_name(file)
        source = self.models_dir / name / "SOURCE.md"   # written by the import, naming the file
        if (self.models_dir / name / "config.json").is_file() and source.is_file() \
                and f"`{Path(file).name}`" in source.read_text(encoding="utf-8", errors="replace"):
            return UserError(f"{shown} is a GGUF file, already imported as models/{name}: use --model {name}",
                             "model_gguf_imported", file=shown, name=name)
        command = f"tunestudio models import {shlex.quote(shown)}"
        if (self.models_dir / name).exists():
            name = f"{name}-hf"
            command += f" --name {name}"
        how = (f"import it first with `{command}` (or the Model tab's Import), then use --model {name}")
        if folder is not None:
            return UserError(f"model folder {self.shown_path(folder)} holds a GGUF file ({file.name}), not a Hugging "
                             f"Face model: {how}", "model_folder_gguf", folder=self.shown_path(folder), file=shown,
                             command=command, name=name)
        return UserError(f"{shown} is a GGUF file: {how}", "model_is_gguf", file=shown, command=command, name=name)

    def shown_path(self, path: Path) -> str:
        """`path` as a message shows it: relative to the workspace when inside it (models/x.gguf)."""
        try:
            return str(Path(path).absolute().relative_to(self.root))
        except ValueError:
            return str(path)

    def list_gguf_files(self) -> list[str]:
        """GGUF files under models/ (there, or one folder down), as paths relative to models/: what
        the Model tab offers to import. Links leading out of the workspace are left out."""
        if not self.models_dir.is_dir():
            return []
        found = list(self.models_dir.glob("*.gguf")) + list(self.models_dir.glob("*/*.gguf"))
        return sorted(str(p.relative_to(self.models_dir)) for p in found
                      if p.is_file() and not any(part.startswith(".") for part in p.relative_to(self.models_dir).parts)
                      and self.inside(p))

    def list_datasets(self) -> list[str]:
        if not self.datasets_dir.is_dir():
            return []
        # cleaning reports (`NAME.clean.report.jsonl`) sit beside the data but are not datasets
        # a symlink leading out of the workspace is not listed (nor read: `dataset_path`)
        return sorted(
            p.name for p in self.datasets_dir.iterdir()
            if p.is_file() and not p.name.startswith(".") and ".report." not in p.name and self.inside(p)
        )

    def list_models(self) -> list[str]:
        if not self.models_dir.is_dir():
            return []
        # a folder being written (`.NAME.import-PID`, `.NAME.tmp-PID`) is not a model yet
        return sorted(p.name for p in self.models_dir.iterdir()
                      if not p.name.startswith(".") and (p / "config.json").is_file() and self.inside(p))


def gguf_model_name(path: Path) -> str:
    """The models/<name> a GGUF file is imported as by default: its stem, lower case, without the
    quantisation suffix (SmolLM2-135M-Instruct.Q4_1.gguf -> smollm2-135m-instruct)."""
    stem = re.sub(r"[.\-_](?:[QqFf]\d+(?:_[A-Za-z0-9]+)*|BF16|bf16|IQ\d\w*)$", "", Path(path).stem)
    return re.sub(r"[^a-z0-9._-]+", "-", stem.lower()).strip("-.") or "imported"


def workspace_from(arg: str | None) -> Workspace:
    """The workspace named by --workspace, else $TUNESTUDIO_HOME, else the current directory."""
    root = arg or os.environ.get("TUNESTUDIO_HOME") or os.getcwd()
    return Workspace(Path(root).expanduser().resolve(), confined=os.environ.get(CONFINED_ENV) == "1")


# Weights saved with torch.save (pickle): loading one runs whatever code the file holds, so a model
# folder holding its weights only this way is refused before transformers sees it (transformers
# would load it with torch.load and, refused there, advise weights_only=False: never that advice).
PICKLE_WEIGHTS = (".bin", ".pt", ".pth", ".ckpt")
# a trainer's checkpoint files beside safetensors weights: not the model's weights
NOT_WEIGHTS = ("training_args.bin", "optimizer.pt", "scheduler.pt", "scaler.pt", "rng_state")


def pickle_refusal(folder: Path) -> UserError | None:
    """The one-line error for a model folder whose weights are pickle files only (no *.safetensors),
    with the command that converts them, for whoever trusts the file; None for any other folder."""
    if any(folder.glob("*.safetensors")):
        return None
    pickles = sorted(p.name for p in folder.iterdir() if p.suffix.lower() in PICKLE_WEIGHTS
                     and p.is_file() and not p.name.startswith(NOT_WEIGHTS))
    if not pickles:
        return None
    command = (f'python -c "from transformers import AutoModelForCausalLM as M; '
               f'M.from_pretrained({str(folder)!r}).save_pretrained({str(folder)!r}, safe_serialization=True)"')
    return UserError(f"model folder {folder} holds its weights only as a pickle file ({pickles[0]}): tunestudio loads "
                     "safetensors only, because a pickle file can run code when it is loaded. If you trust the file, "
                     f"convert it once: {command}", "model_pickle_only", folder=str(folder), file=pickles[0],
                     command=command)
