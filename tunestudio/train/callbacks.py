"""The run monitor: one Trainer callback that decides when to evaluate and save, reports progress,
keeps the best validation loss, warns of overfitting and stops early.

Evaluation and saving are driven from here rather than by TrainingArguments strategies, because
we want both "every N steps" and "at each epoch end", a checkpoint whenever the validation loss
improves (so final/ can be the best checkpoint), and a graceful stop on SIGINT/SIGTERM.
"""

from __future__ import annotations

import os
import resource
import signal
import time

import torch
from transformers import TrainerCallback

from tunestudio.train.events import EventLog, fmt_duration
from tunestudio.train.objectives import OBJECTIVES


class StopFlag:
    """Set by SIGINT/SIGTERM; the monitor turns it into "save a checkpoint and stop" at the next step.

    A second SIGTERM while stopping is ignored: a Stop pressed twice (or by two pages) still ends
    with the checkpoint it promised. Stopping at once, without a checkpoint, is asked for in words:
    SIGUSR1 (the queue's "Stop now", `jobs.queue.stop(now=True)`), or a second Ctrl-C (SIGINT) in
    a terminal; both end the run with KeyboardInterrupt. `step` and `save_every` are kept current
    by the run monitor, so a run that ends at once can say where it was and what was saved."""

    NOW = signal.SIGUSR1

    def __init__(self):
        self.reason: str | None = None
        self.step = 0
        self.save_every: int | None = None
        self._previous = {}

    def install(self) -> "StopFlag":
        for sig in (signal.SIGINT, signal.SIGTERM, self.NOW):
            try:
                self._previous[sig] = signal.signal(sig, self._handle)
            except ValueError:  # not the main thread (e.g. called from a UI worker): no handlers
                pass
        return self

    def _handle(self, signum, frame):
        if signum == self.NOW or (signum == signal.SIGINT and self.reason is not None):
            self.reason = "stopped at once"
            _say("stopping at once, without saving a checkpoint")
            raise KeyboardInterrupt
        if self.reason is None:
            self.reason = signal.Signals(signum).name
            _say("stopping: a checkpoint is saved at the end of this step (Ctrl-C again stops at once, without one)")
        else:
            _say("already stopping: the checkpoint is being saved")

    def restore(self) -> None:
        """The handlers from before `install`; but once a stop was asked for, a later SIGTERM (a Stop
        pressed again as the run ends) is ignored: the process is leaving, with its checkpoint and
        its exit code (3, stopped), and must not be killed on its way out. SIG_IGN, not a Python
        handler: Python puts its own handlers back to the default while it shuts down."""
        for sig, handler in self._previous.items():
            signal.signal(sig, signal.SIG_IGN if sig == signal.SIGTERM and self.reason is not None else handler)
        self._previous = {}


def _say(line: str) -> None:
    """A line on stderr from a signal handler: os.write, since print may be in the middle of a line."""
    try:
        os.write(2, (line + "\n").encode())
    except OSError:
        pass


def live_memory_mb() -> dict:
    """This process's memory now, in MiB: {'rss_mb': resident CPU memory (/proc/self/statm),
    'gpu_mb': CUDA memory allocated by torch on its device (None without CUDA)}. The monitor
    shows them live; peak_memory_mb is the high-water mark."""
    rss = None
    try:
        with open("/proc/self/statm") as f:
            rss = round(int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20, 1)
    except (OSError, ValueError, IndexError):  # not Linux: the peak RSS is all we can say
        rss = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    gpu = round(torch.cuda.memory_allocated() / 2**20, 1) if torch.cuda.is_available() else None
    return {"rss_mb": rss, "gpu_mb": gpu}


def peak_memory_mb() -> float:
    if torch.cuda.is_available():
        return round(torch.cuda.max_memory_allocated() / 2**20, 1)
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)  # Linux: KiB


class RunMonitor(TrainerCallback):
    def __init__(self, cfg, events: EventLog, stop: StopFlag, has_val: bool, eval_every: int,
                 save_every: int, world_size: int = 1):
        self.cfg = cfg
        self.events = events
        self.stop = stop
        self.has_val = has_val
        self.eval_every = eval_every
        self.save_every = save_every
        self.world_size = world_size
        self.best_loss: float | None = None
        self.best_step: int | None = None
        self.best_accuracy: float | None = None
        self.initial_eval_loss: float | None = None
        self.last_eval_loss: float | None = None
        self.last_eval_step = -1
        self.bad_evals = 0
        self.history: list[tuple[float, float | None]] = []  # (eval loss, mean train loss since the eval before)
        self.window: list[float] = []                         # train losses since the last evaluation
        self.train_losses: list[float] = []
        self.last_train: dict = {}
        self.overfitting = False
        self.early_stopped = False
        self.stopped = False
        self.warnings: list[str] = []
        # what the objective logs beside the loss, and what picks the best checkpoint (train/objectives.py)

        objective = OBJECTIVES[getattr(cfg, "objective", "sft")]
        self.extra_metrics = objective.metrics
        self.best_key, self.higher_is_better = objective.best
        self.best_score: float | None = None

    # ---- state after a resume: rebuilt from the Trainer's log history ----------------------
    def on_train_begin(self, args, state, control, **kw):
        for entry in state.log_history:
            if "loss" in entry and "eval_loss" not in entry:
                self.window.append(entry["loss"])
                self.train_losses.append(entry["loss"])
            if "eval_loss" in entry:
                self._record_eval(entry["step"], entry["eval_loss"], entry.get("eval_token_accuracy"), control,
                                  score=entry.get(self.best_key))
        self.t0 = self.t_last = time.time()
        self.step0 = state.global_step
        self.tokens_last = self.tokens_at_start = state.num_input_tokens_seen

    # ---- when to log, evaluate, save, stop --------------------------------------------------
    def on_step_end(self, args, state, control, **kw):
        step = state.global_step
        self.stop.step, self.stop.save_every = step, self.save_every
        if self._stop_requested(args):
            control.should_save = True
            control.should_training_stop = True
            control.should_log = True
            self.stopped = True
        if self.has_val and self.eval_every and step % self.eval_every == 0:
            control.should_evaluate = True
        if self.save_every and step % self.save_every == 0:
            control.should_save = True
        if step >= state.max_steps:
            control.should_log = True
            control.should_evaluate = self.has_val
        if control.should_evaluate:
            control.should_log = True  # log the train loss window before the evaluation
        return control

    def on_epoch_end(self, args, state, control, **kw):
        stopping = self.stopped or self.early_stopped  # no point evaluating a run that is leaving
        if self.has_val and not stopping and state.global_step != self.last_eval_step:
            control.should_evaluate = True
            control.should_log = True
        return control

    def _stop_requested(self, args) -> bool:
        flag = self.stop.reason is not None
        if self.world_size > 1:  # every rank must stop at the same step, or the others hang
            import torch.distributed as dist

            t = torch.tensor([int(flag)])
            dist.all_reduce(t, op=dist.ReduceOp.MAX)
            flag = bool(t.item())
            if flag and self.stop.reason is None:
                self.stop.reason = "another process was stopped"
        return flag

    # ---- reporting ----------------------------------------------------------------------------
    def on_log(self, args, state, control, logs=None, **kw):
        if not logs or "loss" not in logs or "eval_loss" in logs:
            return
        now = time.time()
        step = state.global_step
        tokens = state.num_input_tokens_seen
        tps = (tokens - self.tokens_last) / max(now - self.t_last, 1e-9)
        done = step - self.step0
        eta = (now - self.t0) / done * (state.max_steps - step) if done > 0 else None
        self.t_last, self.tokens_last = now, tokens
        self.window.append(logs["loss"])
        self.train_losses.append(logs["loss"])
        self.last_train = logs
        self.events.emit(
            "train", step=step, total_steps=state.max_steps, epoch=round(state.epoch or 0, 4),
            loss=logs["loss"], token_accuracy=logs.get("token_accuracy"), lr=logs.get("learning_rate"),
            grad_norm=logs.get("grad_norm"), tokens_seen=tokens, tokens_per_second=round(tps, 1),
            elapsed_s=round(now - self.t0, 2), eta_s=round(eta, 1) if eta is not None else None,
            peak_memory_mb=peak_memory_mb(), **live_memory_mb(), **self._extra(logs))
        acc = logs.get("token_accuracy")
        self.events.say(
            f"step {step}/{state.max_steps} ({100 * step / max(state.max_steps, 1):.0f}%) | epoch {state.epoch or 0:.2f}"
            f" | loss {logs['loss']:.4f}" + (f" | acc {acc:.3f}" if acc is not None else "")
            + "".join(f" | {k.split('/')[-1]} {logs[k]:.3f}" for k in self.extra_metrics if k in logs and logs[k] is not None)
            + f" | lr {logs.get('learning_rate', 0):.2e} | {tps:,.0f} tok/s | ETA {fmt_duration(eta)}")

    def _extra(self, logs: dict, prefix: str = "") -> dict:
        """The objective's metrics found in `logs`; a name ending in '*' takes every key it starts
        (GRPO's rewards/<function>/mean, one per reward function)."""
        out = {}
        for k in self.extra_metrics:
            want = prefix + k
            if want.endswith("*"):
                out.update({key: v for key, v in logs.items() if key.startswith(want[:-1])})
            elif want in logs:
                out[want] = logs[want]
        return out

    def on_evaluate(self, args, state, control, metrics=None, **kw):
        if not metrics or "eval_loss" not in metrics:
            return control
        step = state.global_step
        loss, acc = metrics["eval_loss"], metrics.get("eval_token_accuracy")
        is_best = self._record_eval(step, loss, acc, control, live=True, score=metrics.get(self.best_key))
        extra = self._extra(metrics, "eval_")
        self.events.emit("eval", step=step, epoch=round(state.epoch or 0, 4), eval_loss=loss,
                         eval_token_accuracy=acc, best_eval_loss=self.best_loss, best_step=self.best_step,
                         is_best=is_best, **extra)
        self.events.say(f"eval  step {step} | eval_loss {loss:.4f}" + (f" | acc {acc:.3f}" if acc is not None else "")
                        + "".join(f" | {k[5:]} {v:.3f}" for k, v in extra.items())
                        + (" (best)" if is_best else f" | best {self.best_loss:.4f} at step {self.best_step}"
                           if self.best_loss is not None else ""))
        return control

    def _record_eval(self, step, loss, acc, control, live=False, score=None) -> bool:
        """Fold one evaluation into best / overfitting / early-stopping state. True when it is a new best.
        `score` is the objective's best-checkpoint metric (e.g. validation preference accuracy, higher
        is better) when it has one; without it the validation loss decides."""
        self.last_eval_step, self.last_eval_loss = step, loss
        if step == 0:  # the untrained model: the baseline, never "the best checkpoint"
            self.initial_eval_loss = loss
            self.t0 = self.t_last = time.time()  # throughput and ETA count training time only
            return False
        train_mean = sum(self.window) / len(self.window) if self.window else None
        self.window = []
        self.history.append((loss, train_mean))
        threshold = self.cfg.early_stopping_threshold
        if score is not None and self.best_key != "eval_loss":
            better = score > self.best_score + threshold if self.best_score is not None and self.higher_is_better \
                else self.best_score is not None and score < self.best_score - threshold
            # an equal score (preference accuracy often sits at 1.0) with a lower loss is still better
            tie = self.best_score is not None and score == self.best_score and loss < (self.best_loss or float("inf"))
            is_best = self.best_score is None or better or tie
        else:
            is_best = self.best_loss is None or loss < self.best_loss - threshold
        if is_best:
            self.best_loss, self.best_step, self.best_accuracy, self.bad_evals = loss, step, acc, 0
            self.best_score = score
            if live:
                control.should_save = True  # final/ is the best checkpoint: make sure it exists
        else:
            self.bad_evals += 1
        if live:
            self._check_overfitting(step)
            patience = self.cfg.patience(self.has_val)
            if patience and self.bad_evals >= patience:
                control.should_training_stop = True
                self.early_stopped = True
                self.events.emit("early_stop", step=step, best_step=self.best_step, patience=patience)
                self.events.say(f"early stopping: no improvement for {patience} evaluations; "
                                f"the best was step {self.best_step} (eval_loss {self.best_loss:.4f})")
        return is_best

    def _check_overfitting(self, step) -> None:
        k = self.cfg.overfitting_window
        recent = self.history[-(k + 1):]
        if not k or len(recent) < k + 1 or any(t is None for _, t in recent):
            self.overfitting = False
            return
        rising = all(b[0] > a[0] for a, b in zip(recent, recent[1:]))
        falling = all(b[1] < a[1] for a, b in zip(recent, recent[1:]))
        if rising and falling and not self.overfitting:
            self.warnings.append("overfitting")
            self.events.warn(
                "overfitting", f"overfitting: validation loss rose for {k} evaluations in a row "
                f"({recent[0][0]:.4f} -> {recent[-1][0]:.4f}) while training loss fell; the best model so far "
                f"is step {self.best_step}. Fewer epochs, more data, a lower learning rate or "
                "--early-stopping-patience help", step=step, evals=k, before=f"{recent[0][0]:.4f}",
                after=f"{recent[-1][0]:.4f}", best_step=self.best_step)
        self.overfitting = rising and falling

    def on_save(self, args, state, control, **kw):
        path = f"checkpoints/checkpoint-{state.global_step}"
        self.events.emit("checkpoint", step=state.global_step, path=path)
        self.events.say(f"checkpoint saved: {path}")
        return control
