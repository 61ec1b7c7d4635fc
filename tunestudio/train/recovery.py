"""What the engine does when things go wrong: where a resume starts, what a failed run's status
says, and recording an end on a disk that may be full.

- `resume_point`: the newest checkpoint that passes `checkpoint.verify`; damaged newer ones are
  moved aside and named in a warning (which, and why).
- `cause`: the error a failed run records: the user's message, "no space left on device (...)"
  for a full disk (torch's zip writer says only "unexpected pos"), else the exception.
- `record_end`: events.jsonl, train.log and the registry, each tried even when another fails.
"""

from __future__ import annotations

import time
import traceback
from pathlib import Path

from tunestudio.core import registry, statefiles
from tunestudio.core.errors import UserError, error_record
from tunestudio.train import checkpoint as ckpt
from tunestudio.train.events import EventLog


def resume_point(ckpt_dir: Path, events: EventLog, dist) -> Path | None:
    """The newest intact checkpoint (main process decides, every rank follows); each damaged
    newer one is moved aside and named in a warning with the reason."""
    found = None
    if dist.is_main_process:
        statefiles.recover_dir(ckpt_dir.parent / "final")

        def damaged(path, why, moved):
            events.warn("checkpoint_damaged", f"{path.name} is damaged ({why}): moved aside to {moved.name}, "
                        "resuming from the checkpoint before it", checkpoint=str(path), moved_to=str(moved),
                        name=path.name, why=str(why), moved=moved.name)

        found = ckpt.newest_intact(ckpt_dir, on_damaged=damaged)
        if found is not None:
            events.say(f"resuming from {found.name} (verified intact)")
        elif ckpt_dir.is_dir() and any(ckpt_dir.glob("checkpoint-*")):
            events.warn("no_intact_checkpoint", "no intact checkpoint left: training again from the start")
        else:   # stopped before its first checkpoint: said, never a silent start from scratch
            events.warn("resume_from_start", "the run has no checkpoint (it stopped before its first was saved): "
                        "resuming starts again from step 0")
    if dist.num_processes > 1:
        from accelerate.utils import broadcast_object_list

        found = broadcast_object_list([str(found) if found else None], from_process=0)[0]
    return Path(found) if found else None


def stopped_words(point: dict) -> str:
    """What a stop left, in one line for the registry and the log (`point`: checkpoint.stop_point)."""
    if point["checkpoint_step"] is not None:
        return (f"stopped at step {point['step']}; the last checkpoint is at step {point['checkpoint_step']}, "
                "where a resume goes on")
    first = f" (the first is saved at step {point['first_save']})" if point.get("first_save") else ""
    return f"stopped at step {point['step']}: no checkpoint was saved{first}, so a resume starts again from step 0"


def cause(e: BaseException, run_dir: Path) -> str:
    """What the run's status should say about `e`: the user's message, a full disk in plain
    words, else the exception (a bug: its traceback goes to train.log)."""
    if isinstance(e, UserError):
        return str(e)
    if isinstance(e, Exception) and ckpt.out_of_space(e, run_dir):
        return f"no space left on device ({brief(e)})"
    return f"{type(e).__name__}: {e}"


def brief(e: BaseException) -> str:
    """`e` in one short line: its type and the first 200 characters of its message's first line."""
    return f"{type(e).__name__}: {str(e).splitlines()[0][:200] if str(e) else ''}"


def record_end(events: EventLog, conn, run_id: str, status: str, error: str, e: BaseException,
               extra: dict | None = None) -> None:
    """Record a failed or interrupted end in events.jsonl, train.log and the registry, each as
    far as it goes: on a full or read-only disk one of them may fail, and the others must still
    be tried (and the original error, not this one, reach the user)."""
    for record in (
        # a UserError's code and fields too: the web UI words the reason in its language
        lambda: events.emit(status, error=error, reason="interrupted" if status == "stopped" else None,
                            code=getattr(e, "code", None) if isinstance(e, UserError) else None,
                            fields=error_record(e)["fields"] if isinstance(e, UserError) and e.code else None,
                            **(extra or {})),
        lambda: events.say(f"{status}: {error}"),
        lambda: events.say(traceback.format_exc()) if not isinstance(e, (UserError, KeyboardInterrupt)) else None,
        lambda: registry.update_run(conn, run_id, status=status, error=error, finished_at=time.time()),
    ):
        try:
            record()
        except Exception:  # noqa: BLE001 - see above
            pass
