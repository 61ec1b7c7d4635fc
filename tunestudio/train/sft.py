"""Supervised fine-tuning: the rows (conversations, instructions or text) encoded with the model's
chat template, and the TuneTrainer that takes the next-token loss on the answers.

The `sft` row of the objectives table (train/objectives.py) points here.
"""

from __future__ import annotations

import sys

from tunestudio.config import presets
from tunestudio.core.errors import UserError
from tunestudio.data.chat import turns
from tunestudio.data.chat.render import refusal_error, refusal_fields, refused_part, refused_rows
from tunestudio.data.encoding import streamed
from tunestudio.data.encoding.encode import encode
from tunestudio.data.quality.pref import preference_kind
from tunestudio.data.split import load_splits, splits_from_info
from tunestudio.train import attention, model_source, replay
from tunestudio.train.context import TrainerContext, quiet, training_kwargs


def load_data(cfg, ws, tokenizer, split_info: dict | None = None) -> dict:
    """The SFT rows of `cfg.dataset`, split and encoded (ids + trained mask), as the fields of run.Data:
    info (the split), train, val (capped at --eval-rows), stats, warnings. Raises UserError on bad data."""


    kind = preference_kind(ws, cfg.dataset) if split_info is None and not cfg.streaming else None
    if kind:  # SFT would call every pair "a row without an assistant turn"
        raise UserError(f"{cfg.dataset} holds preference data ({'pairs' if kind == 'pairs' else 'labelled answers'}): "
                        f"train it with --objective {'dpo (or orpo, simpo)' if kind == 'pairs' else 'kto'}",
                        "sft_on_pairs" if kind == "pairs" else "sft_on_labelled_answers", dataset=cfg.dataset)
    if cfg.streaming:   # nothing prepared up front: read and encoded as the run goes (data/encoding/streamed.py)

        return streamed.load(cfg, ws, tokenizer)
    if split_info is not None:  # a resumed run trains on exactly the rows it started with
        splits = splits_from_info(ws, split_info)
    else:
        splits = load_splits(ws, cfg.dataset, val_split=cfg.val_split, test_split=cfg.test_split, seed=cfg.seed,
                             fmt=cfg.format or None, mapping=cfg.mapping or None, separator=cfg.separator or None)
    replayed = _replay(cfg, ws, tokenizer, splits.train)
    if replayed:   # the base model's own general answers, in the training split only (train/replay.py)
        splits.train = [*splits.train, *replayed]   # auto replay only below AUTO_MAX_ROWS: a list is fine
    # Arrow files under the fingerprint of rows + tokenizer + options, memory-mapped (data/encoding/encoded.py)
    cache = ws.encoded_cache_dir
    # rows the chat template refuses, in every split (the test split is not encoded here, but eval
    # would meet them): all listed before a run exists, or left out and each reported
    opts = dict(cache_dir=cache, num_proc=cfg.num_proc or None, reasoning=cfg.reasoning, skip_bad_rows=True,
                text_mode=cfg.text_mode, stride=cfg.stride)
    train = encode(splits.train, tokenizer, cfg.max_length, cfg.train_on_prompt, **opts)
    val = encode(splits.val, tokenizer, cfg.max_length, cfg.train_on_prompt, **opts) if splits.val else None
    if train.from_cache:   # so a person knows why this start was quick, and where the files are
        print(f"encoded examples reused from the cache ({len(train.examples):,} training examples, "
              f"{ws.shown_path(cache / train.fingerprint)})", file=sys.stderr, flush=True)
    refused = train.refused_rows + (val.refused_rows if val else []) + \
        [str(r) for r in refused_rows(splits.test, tokenizer, cfg.reasoning)]
    if refused and not cfg.skip_bad_rows:
        raise UserError(refusal_error(refused), "template_refused_rows", **refusal_fields(refused))
    if refused and not train.examples and len(train.refused_rows) == train.stats["rows"]:
        raise UserError(f"the chat template refused all {train.stats['rows']} training rows, so nothing is left "
                        f"to train on; first: {refused[0]}", "template_refused_all", rows=train.stats["rows"],
                        first=refused_part(refused[0]))
    if not train.examples:
        raise UserError(f"no training row has anything left to train on at --max-length {cfg.max_length} "
                        f"({train.dropped} rows dropped): raise --max-length or shorten the prompts", "sft_no_row_left",
                        max_length=cfg.max_length, dropped=train.dropped)
    if cfg.early_stopping_patience > 0 and not (val and val.examples):
        raise UserError("--early-stopping-patience watches the validation loss, and there is no validation "
                        "data: set --val-split above 0 (or give a NAME.val.* file)", "early_stopping_no_val_loss",
                        option="early_stopping_patience")
    # what the data layer noticed (duplicates, train/test leakage) is shown in the run too
    warnings = [p.as_warning() for p in splits.warnings]
    if any(r.is_chat for r in splits.train[:1]):  # what the chat template does that costs the user later
        try:
            # each note's own code and numbers (turns.probe): the web UI words it in its language
            warnings += [{"code": getattr(note, "code", None) or "template", "message": str(note),
                          "fields": dict(getattr(note, "fields", None) or {})} for note in turns.probe(tokenizer).notes]
        except turns.TemplateRefused as e:
            warnings.append({"code": "template_cannot_render", "message": f"the chat template cannot render a "
                             f"one-question chat: {e}", "fields": {"detail": str(e)}})
    warnings += [{"code": "refused", "message": f"skipped {row}", "fields": {"row": str(row)}} for row in refused]  # --skip-bad-rows
    for name, enc in (("training", train), ("validation", val)):
        if enc and enc.truncated:
            share = enc.truncated / max(enc.stats["rows"], 1)
            warnings.append({"code": "truncated", "message": (
                f"{enc.truncated} of {enc.stats['rows']} {name} rows ({share:.0%}) lose answer tokens at "
                f"--max-length {cfg.max_length}" + (f" and {enc.dropped} have nothing left (dropped)" if enc.dropped else "")
                + f"; first: {', '.join(enc.truncated_rows[:3])}"),
                # the same in parts, for the web UI to say in its language (locales: engine.truncated)
                "fields": {"split": name, "count": enc.truncated, "rows": enc.stats["rows"], "share": f"{share:.0%}",
                           "max_length": cfg.max_length, "dropped": enc.dropped or 0,
                           "first": ", ".join(enc.truncated_rows[:3])}})
    stats = {"train": train.stats, "val": val.stats if val else None, "replay": len(replayed)}
    # every evaluation reads the whole of Data.val: cap it, so a million-row split does not make
    # each one take an hour
    val_examples = val.examples.spread(cfg.eval_rows) if val else []
    return dict(info=splits.info, train=train.examples, val=val_examples, stats=stats, warnings=warnings)


def _replay(cfg, ws, tokenizer, rows: list) -> list:
    """The replay rows this run trains with (none for a random model, plain text, or --replay 0)."""

    base = model_source.resolve_base(cfg, ws)
    n = replay.count(len(rows), replay.share(cfg, rows, presets.model_kind(model_source.original_model(cfg, ws, base))))
    return replay.records(ws, base, tokenizer, n, cfg.seed) if n else []


def build_trainer(ctx: TrainerContext):
    """A TuneTrainer over the encoded examples (length-grouped batches, loss on trained tokens only)."""
    import torch
    from transformers import TrainingArguments

    from tunestudio.train.batching import Examples, FlatCollator, PadCollator
    from tunestudio.train.trainer import TuneTrainer

    cfg, data, monitor = ctx.cfg, ctx.data, ctx.monitor
    flat, warning = attention.resolve(cfg, ctx.model, ctx.tokenizer.eos_token_id or 0)
    if warning:   # in the run's events, so the Training tab shows it too
        monitor.events.warn("padding_free", warning)
    # a packed row has no padding and no attention mask: every token it holds is counted
    args = TrainingArguments(**training_kwargs(ctx), prediction_loss_only=True, label_names=["labels"],
                             remove_unused_columns=False, include_num_input_tokens_seen="all" if flat else "non_padding")
    collator = FlatCollator() if flat else PadCollator(ctx.tokenizer.pad_token_id, 8 if torch.cuda.is_available() else 1)
    trainer = TuneTrainer(
        model=ctx.model, args=args, data_collator=collator,
        train_dataset=Examples(data.train) if data.train_rows is not None else data.train,  # a stream as it is
        eval_dataset=Examples(data.val) if data.val else None,
        processing_class=ctx.tokenizer, callbacks=[monitor],
        group_by_length=cfg.group_by_length, keep_checkpoints=cfg.keep_checkpoints,
        protected_steps=lambda: {monitor.best_step} if monitor.best_step is not None else set(),
    )
    return quiet(trainer)
