"""Where things live: the workspace folders, and resolving the names users type into paths.

Layout (ARCHITECTURE.md):
    training/datasets/    the user's data files (never modified by the tool)
    training/runs/<run>/  one folder per run
    models/               local base models
    tunestudio.db         the registry
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from tunestudio.errors import UserError


@dataclass(frozen=True)
class Workspace:
    root: Path

    @property
    def datasets_dir(self) -> Path:
        return self.root / "training" / "datasets"

    @property
    def runs_dir(self) -> Path:
        return self.root / "training" / "runs"

    @property
    def models_dir(self) -> Path:
        return self.root / "models"

    @property
    def db_path(self) -> Path:
        return self.root / "tunestudio.db"

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
            raise UserError(f"'{name}' points outside {base}: use a plain file name") from None
        return candidate

    def dataset_path(self, name: str) -> Path:
        """A dataset argument as the user typed it: a file under training/datasets or a path."""
        p = Path(name).expanduser()
        for candidate in (self.datasets_dir / name, p if p.is_absolute() else self.root / p, p):
            if candidate.is_file():
                return candidate
        raise UserError(
            f"dataset '{name}' not found: put the file in {self.datasets_dir} or give its path"
        )

    def model_path_or_id(self, name: str) -> str:
        """A model argument: a folder under models/, a local path, or (otherwise) a hub id."""
        for candidate in (self.models_dir / name, Path(name).expanduser()):
            if candidate.is_dir():
                if not (candidate / "config.json").is_file():
                    raise UserError(f"model folder {candidate} has no config.json: not a Hugging Face model")
                return str(candidate.resolve())
        if name.startswith((".", "/", "~")) or name.count("/") > 1 or not name.strip():
            raise UserError(f"model '{name}' not found: no folder {self.models_dir / name} or {name}")
        return name  # a hub id such as "Qwen/Qwen2.5-0.5B"; from_pretrained reports if it is unknown

    def list_datasets(self) -> list[str]:
        if not self.datasets_dir.is_dir():
            return []
        # cleaning reports (`NAME.clean.report.jsonl`) sit beside the data but are not datasets
        return sorted(
            p.name for p in self.datasets_dir.iterdir()
            if p.is_file() and not p.name.startswith(".") and ".report." not in p.name
        )

    def list_models(self) -> list[str]:
        if not self.models_dir.is_dir():
            return []
        return sorted(p.name for p in self.models_dir.iterdir() if (p / "config.json").is_file())


def workspace_from(arg: str | None) -> Workspace:
    """The workspace named by --workspace, else $TUNESTUDIO_HOME, else the current directory."""
    root = arg or os.environ.get("TUNESTUDIO_HOME") or os.getcwd()
    return Workspace(Path(root).expanduser().resolve())
