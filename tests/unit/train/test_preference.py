"""Preference data (every accepted shape, every error by file:line), its encoding with the SFT
template, the preference objectives on a tiny model (dpo, ipo, orpo, simpo, kto: finite loss,
metrics in events.jsonl, a result that loads in plain peft), and preference_accuracy on a model
whose answer probabilities are known (the CLI on pairs: test_preference_e2e.py)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
from workspaces import pairs_file, tiny_config

from tunestudio.core.errors import UserError
from tunestudio.data.preference import _Bad, load_pref_file, parse_row

SYS = {"role": "system", "content": "Classify the review."}
USER = {"role": "user", "content": "It is great."}


# ---- shapes ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("row, prompt, chosen, rejected", [
    ({"prompt": "It is great.", "chosen": "positive", "rejected": "negative"},
     [USER], "positive", "negative"),
    ({"prompt": [SYS, USER], "chosen": [{"role": "assistant", "content": "positive"}],
      "rejected": [{"role": "assistant", "content": "negative"}]}, [SYS, USER], "positive", "negative"),
    # TRL's implicit prompt: whole conversations, the shared first turns are the prompt
    ({"chosen": [USER, {"role": "assistant", "content": "positive"}],
      "rejected": [USER, {"role": "assistant", "content": "negative"}]}, [USER], "positive", "negative"),
    # LLaMA-Factory's ShareGPT ranking shape
    ({"conversations": [{"from": "human", "value": "It is great."}], "chosen": {"from": "gpt", "value": "positive"},
      "rejected": {"from": "gpt", "value": "negative"}}, [USER], "positive", "negative"),
    ({"messages": [SYS, USER], "chosen": "positive", "rejected": "negative"}, [SYS, USER], "positive", "negative"),
    ({"instruction": "Classify.", "input": "It is great.", "chosen": "positive", "rejected": "negative"},
     [{"role": "user", "content": "Classify.\n\nIt is great."}], "positive", "negative"),
    ({"system": "Classify the review.", "instruction": "It is great.", "chosen": "positive", "rejected": "negative"},
     [SYS, USER], "positive", "negative"),
])
def test_every_pair_shape_gives_prompt_chosen_rejected(row, prompt, chosen, rejected):
    r = parse_row("f.jsonl", 3, row, "pairs")
    assert (r.prompt, r.chosen, r.rejected) == (prompt, chosen, rejected)


@pytest.mark.parametrize("row, label", [
    ({"prompt": "It is great.", "completion": "positive", "label": True}, True),
    ({"messages": [USER], "output": "negative", "kto_tag": False}, False),
    ({"instruction": "It is great.", "response": "negative", "label": "false"}, False),
])
def test_unpaired_rows_keep_their_label(row, label):
    r = parse_row("f.jsonl", 1, row, "unpaired")
    assert r.prompt == [USER] and r.label is label and not r.is_pair


@pytest.mark.parametrize("row, message", [
    ({"prompt": "q", "chosen": "same", "rejected": " same "}, "are the same answer"),
    ({"prompt": "q", "chosen": "a", "rejected": None}, "'rejected' is null"),
    ({"prompt": "q", "chosen": "a", "rejected": 3}, "'rejected' must be text"),
    ({"chosen": "a", "rejected": "b"}, "no prompt"),
    ({"prompt": "q", "chosen": "", "rejected": "b"}, "'chosen' is empty"),
    ({"prompt": [{"role": "wizard", "content": "q"}], "chosen": "a", "rejected": "b"}, "unknown role"),
    ({"prompt": [USER, {"role": "assistant", "content": "x"}], "chosen": "a", "rejected": "b"}, "ends with an assistant"),
])
def test_bad_pairs_say_what_is_wrong(row, message):
    with pytest.raises(_Bad, match=message):
        parse_row("f.jsonl", 1, row, "pairs")


def test_unpaired_label_must_be_boolean():
    with pytest.raises(_Bad, match="'label' must be true or false"):
        parse_row("f.jsonl", 1, {"prompt": "q", "completion": "a", "label": "maybe"}, "unpaired")


def test_file_errors_carry_their_line(tmp_path):
    f = tmp_path / "p.jsonl"
    f.write_text(json.dumps({"prompt": "q", "chosen": "a", "rejected": "b"}) + "\n"
                 + json.dumps({"prompt": "q", "chosen": "a", "rejected": "a"}) + "\n"
                 + "{not json\n")
    ld = load_pref_file(f)
    assert ld.kind == "pairs" and len(ld.records) == 1
    where = {p.line: p.message for p in ld.errors}
    assert "same answer" in where[2] and 3 in where


def test_csv_pairs_and_parquet_kto_rows(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    from tunestudio.data.preference import sniff

    (tmp_path / "p.csv").write_text("instruction,chosen,rejected\nq,a,b\nq2,c,c\n")
    ld = load_pref_file(tmp_path / "p.csv")
    assert sniff(tmp_path / "p.csv") == "pairs" and len(ld.records) == 1 and ld.errors[0].line == 3
    pq.write_table(pa.table({"prompt": ["q", "r"], "completion": ["a", "b"], "kto_tag": [True, False]}),
                   tmp_path / "k.parquet")
    ld = load_pref_file(tmp_path / "k.parquet")
    assert sniff(tmp_path / "k.parquet") == "unpaired" and [r.label for r in ld.records] == [True, False]


# ---- encoding: the SFT template, turn end and truncation ---------------------------------------------

@pytest.fixture(scope="module")
def demo_tok(demo_template):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(demo_template / "models" / "tiny-demo")


def test_answers_are_the_tokens_sft_trains(demo_tok):
    from tunestudio.data.encoding.encode import last_answer_tokens
    from tunestudio.data.encoding.pref_encode import encode_prefs

    rec = parse_row("f.jsonl", 1, {"prompt": [SYS, USER], "chosen": "positive", "rejected": "negative"}, "pairs")
    (ex,) = encode_prefs([rec], demo_tok, 256).examples
    for answer, key in (("positive", "chosen_ids"), ("negative", "rejected_ids")):
        ids, start, end = last_answer_tokens(demo_tok, [SYS, USER, {"role": "assistant", "content": answer}])
        assert ex["prompt_ids"] == ids[:start]          # the prompt exactly as SFT renders it
        assert ex[key] == ids[start:end]                # the answer + the template's turn end
    # the last answer token is the model's turn end, which generation stops on
    from tunestudio.data.chat import turns

    assert ex["chosen_ids"][-1] in turns.stop_token_ids(demo_tok)


def test_pair_identical_once_cut_is_an_error(demo_tok):
    from tunestudio.data.encoding.pref_encode import encode_prefs

    long = "the same long start of an answer " * 8
    rec = parse_row("f.jsonl", 7, {"prompt": "q", "chosen": long + "good", "rejected": long + "bad"}, "pairs")
    prompt_len = len(encode_prefs([rec], demo_tok, 512).examples[0]["prompt_ids"])
    enc = encode_prefs([rec], demo_tok, prompt_len + 10)
    assert not enc.examples and "f.jsonl:7" in str(enc.errors[0]) and "identical once cut" in str(enc.errors[0])
    enc = encode_prefs([rec], demo_tok, prompt_len)  # the prompt alone fills the limit: dropped, reported
    assert enc.dropped == ["f.jsonl:7"] and not enc.errors


# ---- preference_accuracy on a model with known probabilities ----------------------------------------

class FixedLM(torch.nn.Module):
    """Whatever the input, the next token is 5 with log-prob LP5 and 6 with log-prob LP6."""

    def __init__(self):
        super().__init__()
        self.logits = torch.nn.Parameter(torch.tensor([0.0, 0, 0, 0, 0, 3.0, 2.5, 0]))

    def forward(self, input_ids, attention_mask=None):
        from types import SimpleNamespace

        return SimpleNamespace(logits=self.logits.expand(*input_ids.shape, -1))


def test_preference_accuracy_is_length_normalised():
    from tunestudio.evaluate.pref_scoring import score_pairs

    lp = torch.log_softmax(FixedLM().logits.detach(), -1)
    lp5, lp6 = float(lp[5]), float(lp[6])
    examples = [
        # summed, the short rejected answer wins; per token, the chosen one (all 5s) does
        {"prompt_ids": [1, 2], "chosen_ids": [5] * 6, "rejected_ids": [5, 6]},
        {"prompt_ids": [1], "chosen_ids": [6, 6], "rejected_ids": [5]},          # rejected is likelier
        {"prompt_ids": [3], "chosen_ids": [5], "rejected_ids": [6, 6, 6]},       # chosen is likelier
    ]
    assert 6 * lp5 < lp5 + lp6  # the first pair really is the length trap
    s = score_pairs(FixedLM(), examples, batch_size=2)
    assert s["metrics"]["preference_accuracy"] == pytest.approx(2 / 3)
    assert s["margins"][0] == pytest.approx(lp5 - (lp5 + lp6) / 2)
    assert s["margins"][1] == pytest.approx(lp6 - lp5)
    assert s["chosen"][2] == (pytest.approx(lp5), 1)


# ---- training: each objective on a tiny model ------------------------------------------------------


def _check_run(ws, result, objective):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    assert result["status"] == "completed"
    run_dir = ws.runs_dir / result["run_id"]
    events = [json.loads(line) for line in (run_dir / "events.jsonl").read_text().splitlines()]
    train_events = [e for e in events if e["type"] == "train"]
    assert train_events and all(math.isfinite(e["loss"]) for e in train_events)
    assert "rewards/margins" in train_events[-1] and "rewards/chosen" in train_events[-1]
    # every objective counts the tokens it trains on (CPO/ORPO batches have no input_ids: they read 0)
    assert all(e["tokens_per_second"] > 0 and e["tokens_seen"] > 0 for e in train_events), train_events
    evals = [e for e in events if e["type"] == "eval"]
    assert evals and "eval_rewards/margins" in evals[-1]
    final = Path(result["output_dir"])
    assert (final / "adapter_model.safetensors").is_file()
    base = AutoModelForCausalLM.from_pretrained(ws.models_dir / "tiny")
    model = PeftModel.from_pretrained(base, final)
    out = model(input_ids=torch.tensor([[1, 2, 3]]))
    assert torch.isfinite(out.logits).all()


def test_dpo_trains_logs_its_metrics_and_saves_a_peft_adapter(tiny_ws):
    from tunestudio.train.run import train

    cfg = tiny_config(dataset=pairs_file(tiny_ws), objective="dpo", method="lora", max_steps=4, eval_steps=2,
                      lr=1e-2, beta=0.5)
    result = train(cfg, tiny_ws)
    _check_run(tiny_ws, result, "dpo")
    # eval on the run's held-out pairs, against the model it started from
    from tunestudio.evaluate.preference import evaluate_preferences

    out = evaluate_preferences(tiny_ws, run=result["run_id"], split="val", compare_base=True)
    assert out["n"] > 0 and 0 <= out["metrics"]["preference_accuracy"] <= 1
    assert {"margin_mean", "reward_margin_mean", "reward_accuracy"} <= set(out["metrics"])
    assert "preference_accuracy" in out["base_metrics"] and Path(out["output_dir"], "summary.json").is_file()


@pytest.mark.parametrize("objective", ["orpo", "simpo"])
def test_orpo_and_simpo_report_tokens_per_second(tiny_ws, objective):
    from tunestudio.train.run import train

    cfg = tiny_config(dataset=pairs_file(tiny_ws), objective=objective, method="lora", max_steps=2,
                      logging_steps=1, val_split=0, batch_size=2)
    result = train(cfg, tiny_ws)
    run_dir = tiny_ws.runs_dir / result["run_id"]
    train_events = [e for e in map(json.loads, (run_dir / "events.jsonl").read_text().splitlines())
                    if e["type"] == "train"]
    assert len(train_events) == 2 and all(e["tokens_per_second"] > 0 for e in train_events), train_events
    assert train_events[-1]["tokens_seen"] > train_events[0]["tokens_seen"] > 0
    assert result["metrics"]["tokens_per_second"] > 0


def test_pair_tokens_counts_non_padding_of_one_side():
    from types import SimpleNamespace

    from tunestudio.train.preference import pair_tokens

    batch = {"chosen_input_ids": torch.tensor([[4, 5, 0], [4, 0, 0]]),
             "chosen_attention_mask": torch.tensor([[1, 1, 0], [1, 0, 0]]),
             "rejected_input_ids": torch.tensor([[4, 6, 7], [4, 6, 0]])}
    assert pair_tokens(batch, "chosen", None) == 3
    assert pair_tokens(batch, "rejected", SimpleNamespace(pad_token_id=0)) == 5   # no mask: ids != pad


@pytest.mark.slow
@pytest.mark.parametrize("objective, extra", [
    ("dpo", {"pref_loss": "ipo"}), ("dpo", {"reference": "none"}), ("orpo", {}), ("simpo", {}), ("kto", {}),
    ("dpo", {"pref_loss": "robust", "label_smoothing": 0.1, "method": "dora"}),
])
def test_each_preference_objective_trains(tiny_ws, objective, extra):
    from tunestudio.train.run import train

    data = pairs_file(tiny_ws, unpaired=objective == "kto")
    cfg = tiny_config(dataset=data, objective=objective, max_steps=2, eval_steps=2, lr=1e-2,
                      batch_size=4, **{"method": "lora", **extra})
    result = train(cfg, tiny_ws)
    if objective == "kto":  # KTO logs its own set: rewards of desirable/undesirable rows and the KL term
        events = [json.loads(x) for x in (tiny_ws.runs_dir / result["run_id"] / "events.jsonl").read_text().splitlines()]
        assert any("kl" in e or "rewards/chosen" in e for e in events if e["type"] == "train")
        assert result["status"] == "completed"
    else:
        _check_run(tiny_ws, result, objective)


def test_kto_refuses_pairs_and_dpo_refuses_labelled_rows(tiny_ws):
    from tunestudio.train.run import train

    with pytest.raises(UserError, match="use --objective dpo"):
        train(tiny_config(dataset=pairs_file(tiny_ws), objective="kto"), tiny_ws)
    with pytest.raises(UserError, match="use --objective kto"):
        train(tiny_config(dataset=pairs_file(tiny_ws, unpaired=True), objective="dpo"), tiny_ws)


# ---- UI pieces: the preference plot's data, the Datasets tab's pair preview --------------------------

def test_preference_plot_frame_takes_train_and_eval_metrics():
    from tunestudio.webui.tabs.training.pref_plot import preference_frame

    events = [{"type": "train", "step": 1, "loss": 0.7, "rewards/margins": 0.1, "rewards/accuracies": 0.5,
               "rewards/chosen": 0.3, "rewards/rejected": 0.2},
              {"type": "eval", "step": 2, "eval_loss": 0.6, "eval_rewards/accuracies": 0.75},
              {"type": "checkpoint", "step": 2}]
    df = preference_frame(events)
    assert sorted(df["series"]) == ["training accuracy", "training margin", "training rewards/chosen",
                                    "training rewards/rejected", "validation accuracy"]
    assert df.set_index("series").loc["training rewards/rejected", "value"] == 0.2
    from tunestudio.webui.tabs.training.pref_plot import series_colours

    colours = series_colours(df)   # one fixed colour per series shown, none for those absent
    assert set(colours) == set(df["series"]) and len(set(colours.values())) == 5
    assert "akurasia validasaun" in set(preference_frame(events, "tet")["series"])
    assert preference_frame([{"type": "train", "step": 1, "loss": 2.0}]) is None  # an SFT run: no plot
    from tunestudio.webui.tabs.training.pref_plot import has_training_points

    assert has_training_points(events) and not has_training_points(events[1:])   # the step-0 eval alone: wait


def test_datasets_tab_previews_a_pair(demo_ws):
    from tunestudio.core.workspace import Workspace
    from tunestudio.webui.tabs.datasets import pref_preview

    ws = Workspace(demo_ws)
    assert pref_preview.is_preference(ws, "demo-prefs.jsonl") and not pref_preview.is_preference(ws, "demo-reviews.jsonl")
    head, pieces = pref_preview.preview(ws, "demo-prefs.jsonl", "tiny-demo", 1, 512)
    labels = {label for _, label in pieces}
    assert labels == {None, "chosen", "rejected"} and "demo-prefs.jsonl:1" in head
    assert {label for _, label in pref_preview.preview(ws, "demo-prefs.jsonl", "tiny-demo", 1, 512, "tet")[1]} \
        == {None, "hili", "rejeita"}   # the marks are said in the UI's language
    report = pref_preview.check(ws, "demo-prefs.jsonl", None)   # the shape `data check --json` prints
    assert (report["format"], report["rows"], report["errors"]) == ("pairs", 1200, [])


def test_training_tab_precheck_reads_pairs_as_pairs(demo_ws):
    """Start on the Training tab checks the rows as the objective reads them: a pair file passes for
    dpo (it was refused as SFT rows lacking an answer column), a bad pair is named by file:line."""
    from tunestudio.config.run_config import RunConfig
    from tunestudio.core.workspace import Workspace
    from tunestudio.webui.tabs.training.tab import precheck

    ws = Workspace(demo_ws)
    assert precheck(ws, RunConfig(model="tiny-demo", dataset="demo-prefs.jsonl", objective="dpo")) is None
    assert precheck(ws, RunConfig(model="tiny-demo", dataset="demo-prefs.jsonl"))[0] > 0   # SFT: no answers
    rows = [json.dumps({"prompt": f"q{i}", "chosen": f"good {i}", "rejected": f"bad {i}"}) for i in range(5)]
    rows[3] = json.dumps({"prompt": "q3", "chosen": "same", "rejected": "same"})
    (ws.datasets_dir / "pairs-bad.jsonl").write_text("\n".join(rows) + "\n")
    n, listed = precheck(ws, RunConfig(model="tiny-demo", dataset="pairs-bad.jsonl", objective="orpo"))
    assert n == 1 and (listed[0]["file"], listed[0]["line"], listed[0]["code"]) == ("pairs-bad.jsonl", 4, "pref_same_answer"), listed
    assert precheck(ws, RunConfig(model="tiny-demo", dataset="demo-rewards.jsonl", objective="grpo",
                                  rewards="exact_match")) is None


# ---- eval on unpaired (KTO) rows -----------------------------------------------------------------------

def test_unpaired_metrics_by_hand():
    from tunestudio.evaluate.kto import unpaired_metrics

    # desirable rows score -1.0 and -3.0, undesirable -2.0 and -3.0 (nats per token)
    m = unpaired_metrics([-1.0, -3.0, -2.0, -3.0], [True, True, False, False])
    assert m["desirable_logp_mean"] == -2.0 and m["undesirable_logp_mean"] == -2.5 and m["logp_margin"] == 0.5
    # (d, u) pairs: (-1,-2) win, (-1,-3) win, (-3,-2) loss, (-3,-3) tie = (1 + 1 + 0 + 0.5) / 4
    assert m["separation"] == 0.625
    assert "reward_accuracy" not in m
    # against a base that scored every row -2.0: rewards +1, -1 (desirable), 0, -1 (undesirable)
    m = unpaired_metrics([-1.0, -3.0, -2.0, -3.0], [True, True, False, False], base=[-2.0] * 4)
    assert (m["reward_desirable_mean"], m["reward_undesirable_mean"], m["reward_margin_mean"]) == (0.0, -0.5, 0.5)
    # right side: the +1 desirable and the -1 undesirable; a reward of exactly 0 separates nothing
    assert m["reward_accuracy"] == 0.5
    one_label = unpaired_metrics([-1.0, -2.0], [True, True])
    assert set(one_label) == {"desirable_logp_mean"}
    with pytest.raises(UserError, match="no labelled answers"):
        unpaired_metrics([], [])


def test_score_unpaired_is_the_mean_log_prob_per_answer_token():
    from tunestudio.evaluate.kto import score_unpaired

    lp = torch.log_softmax(FixedLM().logits.detach(), -1)
    lp5, lp6 = float(lp[5]), float(lp[6])
    examples = [{"prompt_ids": [1, 2], "completion_ids": [5, 6, 6], "label": True},
                {"prompt_ids": [3], "completion_ids": [6], "label": False}]
    assert score_unpaired(FixedLM(), examples, batch_size=1) == [pytest.approx((lp5 + 2 * lp6) / 3),
                                                                 pytest.approx(lp6)]


def test_eval_of_a_kto_run_against_its_base(tiny_ws):
    from tunestudio.evaluate.preference import evaluate_preferences
    from tunestudio.train.run import train

    cfg = tiny_config(dataset=pairs_file(tiny_ws, unpaired=True), objective="kto", method="lora", max_steps=2,
                      lr=1e-2, batch_size=4, val_split=0.25)
    result = train(cfg, tiny_ws)
    assert result["status"] == "completed"
    out = evaluate_preferences(tiny_ws, run=result["run_id"], split="val", compare_base=True, save=False)
    m, base = out["metrics"], out["base_metrics"]
    assert out["n"] == 10 and 0 <= m["reward_accuracy"] <= 1 and 0 <= m["separation"] <= 1
    assert set(base) == {"desirable_logp_mean", "undesirable_logp_mean", "logp_margin", "separation"}
    # each row's reward is its score minus the base's, and the metrics follow from the rows
    from tunestudio.evaluate.kto import unpaired_metrics

    rows = out["rows"]
    assert all(r["reward"] == pytest.approx(r["logp"] - r["base_logp"], abs=2e-4) for r in rows)
    again = unpaired_metrics([r["logp"] for r in rows], [r["label"] for r in rows], [r["base_logp"] for r in rows])
    assert again["reward_accuracy"] == m["reward_accuracy"]
    assert out["deltas"]["separation"] == pytest.approx(m["separation"] - base["separation"])
