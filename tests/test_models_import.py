"""`tunestudio models import FILE.gguf`, the Model tab's Import, and `--model FILE.gguf`.

The GGUF file is written here, offline, with the gguf package's own writer: a tiny random Llama
(grouped-query attention, untied output layer) with the demo's byte-level BPE tokenizer, its tensors
named and its q/k weights permuted as llama.cpp's converter does. Importing it must give back the same
model: the same logits and greedy tokens in plain transformers.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest
from helpers import run_cli

from tunestudio.cli import main as cli
from tunestudio.core.errors import UserError
from tunestudio.core.workspace import Workspace

HEADS, KV_HEADS, LAYERS, HIDDEN = 4, 2, 2, 64
PROMPT = "the cat sat on the mat"   # no digits: the demo tokenizer splits those, a plain gpt2 one does not
LAYER_NAMES = {"self_attn.q_proj": "attn_q", "self_attn.k_proj": "attn_k", "self_attn.v_proj": "attn_v",
               "self_attn.o_proj": "attn_output", "mlp.gate_proj": "ffn_gate", "mlp.up_proj": "ffn_up",
               "mlp.down_proj": "ffn_down", "input_layernorm": "attn_norm", "post_attention_layernorm": "ffn_norm"}


def _permute(w, n_head: int):
    """llama.cpp's q/k permutation (transformers' LlamaTensorProcessor reverses it on reading)."""
    return w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def write_llama_gguf(model, tokenizer, path: Path, arch: str = "llama") -> Path:
    """`model` (a LlamaForCausalLM) and its byte-level BPE `tokenizer` as an F32 GGUF file."""
    import gguf
    import numpy as np

    cfg = model.config
    w = gguf.GGUFWriter(str(path), arch)
    w.add_name("tiny-test")
    w.add_context_length(cfg.max_position_embeddings)
    w.add_embedding_length(cfg.hidden_size)
    w.add_block_count(cfg.num_hidden_layers)
    w.add_feed_forward_length(cfg.intermediate_size)
    w.add_head_count(cfg.num_attention_heads)
    w.add_head_count_kv(cfg.num_key_value_heads)
    w.add_layer_norm_rms_eps(cfg.rms_norm_eps)
    w.add_rope_freq_base(10000.0)
    w.add_rope_dimension_count(cfg.hidden_size // cfg.num_attention_heads)
    w.add_vocab_size(len(tokenizer))
    w.add_file_type(gguf.LlamaFileType.ALL_F32)
    spec = json.loads(tokenizer.backend_tokenizer.to_str())
    tokens = [None] * len(tokenizer)
    for token, i in spec["model"]["vocab"].items():
        tokens[i] = token
    for added in spec["added_tokens"]:
        tokens[added["id"]] = added["content"]
    special = {a["id"] for a in spec["added_tokens"] if a["special"]}
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("default")
    w.add_token_list(tokens)
    w.add_token_types([gguf.TokenType.CONTROL if i in special else gguf.TokenType.NORMAL for i in range(len(tokens))])
    w.add_token_merges([m if isinstance(m, str) else " ".join(m) for m in spec["model"]["merges"]])
    w.add_bos_token_id(tokenizer.bos_token_id)
    w.add_eos_token_id(tokenizer.eos_token_id)
    w.add_pad_token_id(tokenizer.pad_token_id)
    w.add_add_bos_token(False)
    w.add_chat_template(tokenizer.chat_template)
    names = {"model.embed_tokens.weight": "token_embd.weight", "model.norm.weight": "output_norm.weight",
             "lm_head.weight": "output.weight"}
    for i in range(cfg.num_hidden_layers):
        names.update({f"model.layers.{i}.{hf}.weight": f"blk.{i}.{g}.weight" for hf, g in LAYER_NAMES.items()})
    for hf, name in names.items():
        a = model.state_dict()[hf].detach().float().numpy()
        if ".attn_q." in name:
            a = _permute(a, cfg.num_attention_heads)
        elif ".attn_k." in name:
            a = _permute(a, cfg.num_key_value_heads)
        w.add_tensor(name, np.ascontiguousarray(a, dtype=np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path


@pytest.fixture(scope="session")
def tiny_gguf(tmp_path_factory) -> tuple[Path, Path]:
    """(the source model folder, its GGUF file Tiny-Test.Q8_0.gguf): written once per session."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from tunestudio.demo.model import train_tokenizer

    root = tmp_path_factory.mktemp("gguf")
    tok = train_tokenizer(["the cat sat on the mat and the dog sat on the log",
                           "a quick brown fox jumps over the lazy dog"] * 20)
    cfg = LlamaConfig(vocab_size=len(tok), hidden_size=HIDDEN, intermediate_size=2 * HIDDEN, num_hidden_layers=LAYERS,
                      num_attention_heads=HEADS, num_key_value_heads=KV_HEADS, max_position_embeddings=256,
                      bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id,
                      tie_word_embeddings=False, rms_norm_eps=1e-5)
    torch.manual_seed(0)
    model = LlamaForCausalLM(cfg).eval()
    src = root / "source"
    model.save_pretrained(src)
    tok.save_pretrained(src)
    # named as a quantised download is: the default model name drops the suffix
    return src, write_llama_gguf(model, tok, root / "Tiny-Test.Q8_0.gguf")


def _models_state(ws: Path) -> dict:
    """Every entry under models/ (hidden ones too) with its size and mtime: what must not change."""
    return {str(p.relative_to(ws)): (p.stat().st_size, p.stat().st_mtime_ns) for p in sorted((ws / "models").rglob("*"))}


def _cli(capsys, *args) -> tuple[int, str, str]:
    code = cli.main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def _error_line(err: str) -> str:
    """The one error line a refusal prints (transformers' progress bars aside), no traceback."""
    assert "Traceback" not in err, err
    lines = [ln for ln in err.splitlines() if ln.startswith("error:")]
    assert len(lines) == 1, err
    return lines[0]


def test_import_gives_the_same_model_in_plain_transformers(workspace, tiny_gguf):
    """The command a user types: one JSON object on stdout; a folder that loads in plain
    transformers, tokenizes alike, gives the source's logits and greedy tokens, stops at the end of
    a turn, and names its file and sha256 in SOURCE.md."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    src, gguf_file = tiny_gguf
    r = run_cli("models", "import", gguf_file, "--name", "tiny", "--dtype", "fp32", "--json", ws=workspace, timeout=300)
    assert r.returncode == 0, r.stderr
    result = json.loads(r.stdout)   # exactly one JSON object
    digest = hashlib.sha256(gguf_file.read_bytes()).hexdigest()
    assert (result["name"], result["architecture"], result["sha256"], result["dtype"]) == ("tiny", "llama", digest, "fp32")
    folder = workspace / "models" / "tiny"
    assert Path(result["folder"]) == folder
    assert sorted(p.name for p in (workspace / "models").iterdir()) == ["tiny"]   # no temporary folder left

    tok_a, tok_b = AutoTokenizer.from_pretrained(src), AutoTokenizer.from_pretrained(folder)
    a = AutoModelForCausalLM.from_pretrained(src).eval()
    b = AutoModelForCausalLM.from_pretrained(folder).eval()
    ids = tok_a(PROMPT, return_tensors="pt")["input_ids"]
    assert tok_b(PROMPT)["input_ids"] == ids[0].tolist()
    assert tok_b.chat_template == tok_a.chat_template
    with torch.no_grad():
        torch.testing.assert_close(b(ids).logits, a(ids).logits, atol=1e-4, rtol=1e-4)
        same = dict(max_new_tokens=12, do_sample=False, eos_token_id=None, pad_token_id=tok_a.pad_token_id)
        assert b.generate(ids, **same).tolist() == a.generate(ids, **same).tolist()
    eos = b.generation_config.eos_token_id
    assert tok_b.convert_tokens_to_ids("<|im_end|>") in (eos if isinstance(eos, list) else [eos])

    source = (folder / "SOURCE.md").read_text(encoding="utf-8")
    assert "Tiny-Test.Q8_0.gguf" in source and digest in source and "dequantised" in source

    r = run_cli("models", "list", "--json", ws=workspace)
    listed = json.loads(r.stdout)["models"]
    assert [(m["name"], m["gguf"]["file"], m["gguf"]["sha256"]) for m in listed] == [("tiny", gguf_file.name, digest)]


def test_default_name_and_precision_come_from_the_file(workspace, tiny_gguf, capsys):
    """No --name: the file name without its quantisation suffix; no --dtype: bf16 weights. A file
    under models/ is found by its name alone, and `models list` says which model it became."""
    import shutil

    from tunestudio.core.workspace import gguf_model_name

    assert gguf_model_name(Path("SmolLM2-135M-Instruct.Q4_1.gguf")) == "smollm2-135m-instruct"
    assert gguf_model_name(Path("Llama-3.2-1B-Instruct-Q4_K_M.gguf")) == "llama-3.2-1b-instruct"
    shutil.copy(tiny_gguf[1], workspace / "models" / tiny_gguf[1].name)
    code, out, err = _cli(capsys, "models", "import", tiny_gguf[1].name, "--workspace", workspace)
    assert code == 0, err
    assert "importing Tiny-Test.Q8_0.gguf" in out and "models/tiny-test" in out
    config = json.loads((workspace / "models" / "tiny-test" / "config.json").read_text())
    assert config["dtype"] == "bfloat16"
    code, out, _ = _cli(capsys, "models", "list", "--workspace", workspace)
    assert "from Tiny-Test.Q8_0.gguf" in out and "imported as tiny-test" in out


def _not_gguf(root: Path, _src: Path) -> Path:
    path = root / "notes.gguf"
    path.write_text("these are notes, not a model\n", encoding="utf-8")
    return path


def _truncated(root: Path, src: Path) -> Path:
    path = root / "cut.gguf"
    data = src.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


def _rwkv(root: Path, _src: Path) -> Path:
    import gguf
    import numpy as np

    path = root / "rwkv.gguf"
    w = gguf.GGUFWriter(str(path), "rwkv7")
    w.add_block_count(1)
    w.add_tensor("token_embd.weight", np.zeros((4, 4), dtype=np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path


@pytest.mark.parametrize("make, says", [(_not_gguf, "not a GGUF file"), (_truncated, "truncated"),
                                         (_rwkv, "architecture 'rwkv7'")], ids=["not-gguf", "truncated", "rwkv7"])
def test_a_file_that_cannot_be_imported_is_refused_and_models_is_unchanged(workspace, tiny_gguf, capsys, tmp_path,
                                                                          make, says):
    (workspace / "models" / "keep").mkdir()
    (workspace / "models" / "keep" / "config.json").write_text("{}", encoding="utf-8")
    before = _models_state(workspace)
    bad = make(tmp_path, tiny_gguf[1])
    code, _, err = _cli(capsys, "models", "import", bad, "--workspace", workspace)
    assert code == 1
    line = _error_line(err)
    assert bad.name in line and says in line, line
    assert _models_state(workspace) == before


def test_an_existing_name_is_refused_without_touching_it(workspace, tiny_gguf, capsys):
    taken = workspace / "models" / "taken"
    taken.mkdir()
    (taken / "notes.txt").write_text("mine\n", encoding="utf-8")
    before = _models_state(workspace)
    code, _, err = _cli(capsys, "models", "import", tiny_gguf[1], "--name", "taken", "--workspace", workspace)
    assert code == 1
    assert "taken already exists" in _error_line(err)
    assert _models_state(workspace) == before and (taken / "notes.txt").read_text() == "mine\n"
    code, _, err = _cli(capsys, "models", "import", tiny_gguf[1], "--name", "../out", "--workspace", workspace)
    assert code == 1 and "letters, digits" in _error_line(err)
    code, _, err = _cli(capsys, "models", "import", tiny_gguf[1], "--dtype", "fp8", "--workspace", workspace)
    assert code == 1 and "--dtype must be one of bf16, fp32" in _error_line(err)
    assert _models_state(workspace) == before


def test_an_interrupted_import_leaves_nothing_behind(workspace, tiny_gguf, monkeypatch):
    """Ctrl-C (or the UI's process ending) in the middle of writing: no folder, no temporary one."""
    from tunestudio.models import gguf_import

    def half_written(path, out, dtype):
        out.mkdir(parents=True)
        (out / "config.json").write_text("{}", encoding="utf-8")
        raise KeyboardInterrupt

    monkeypatch.setattr(gguf_import, "_convert", half_written)
    with pytest.raises(KeyboardInterrupt):
        gguf_import.import_gguf(Workspace(workspace), tiny_gguf[1])
    assert list((workspace / "models").iterdir()) == []


def test_model_flag_given_a_gguf_file_says_how_to_import_it(workspace, tiny_gguf, capsys):
    """--model x.gguf (train, chat...), or a folder holding only a GGUF: one line with the command
    that imports it and the name to use after; once imported, the name to use; never a hub lookup."""
    import shutil

    ws = Workspace(workspace)
    shutil.copy(tiny_gguf[1], workspace / "models" / "x.gguf")
    (workspace / "models" / "dl").mkdir()
    shutil.copy(tiny_gguf[1], workspace / "models" / "dl" / "dl.Q4_0.gguf")
    (workspace / "training" / "datasets" / "d.jsonl").write_text('{"prompt": "q", "completion": "a"}\n' * 8)

    code, _, err = _cli(capsys, "train", "--model", "x.gguf", "--dataset", "d.jsonl", "--workspace", workspace)
    assert code == 1
    assert _error_line(err) == ("error: models/x.gguf is a GGUF file: import it first with `tunestudio models import "
                                "models/x.gguf` (or the Model tab's Import), then use --model x")
    assert not (workspace / "training" / "runs").exists() or not any((workspace / "training" / "runs").iterdir())
    code, _, err = _cli(capsys, "chat", "--model", "models/x.gguf", "--prompt", "hi", "--workspace", workspace)
    assert code == 1 and "tunestudio models import models/x.gguf" in _error_line(err)

    # the folder's own name is taken (by the folder): the command names another
    with pytest.raises(UserError) as e:
        ws.model_path_or_id("dl")
    assert e.value.code == "model_folder_gguf"
    assert "`tunestudio models import models/dl/dl.Q4_0.gguf --name dl-hf`" in str(e.value)
    assert "then use --model dl-hf" in str(e.value)
    with pytest.raises(UserError) as e:
        ws.model_path_or_id("gone.gguf")
    assert e.value.code == "model_gguf_missing"

    assert cli.main(["models", "import", "x.gguf", "--workspace", str(workspace)]) == 0
    capsys.readouterr()
    with pytest.raises(UserError) as e:
        ws.model_path_or_id("x.gguf")
    assert (e.value.code, str(e.value)) == ("model_gguf_imported", "models/x.gguf is a GGUF file, already imported "
                                                                  "as models/x: use --model x")
    assert ws.model_path_or_id("x") == str((workspace / "models" / "x").resolve())


def test_model_tab_imports_a_file_from_models_and_refreshes_every_model_list(workspace, tiny_gguf):
    """The Model tab's Import: the button goes off and says what runs at once, the import picks the
    new model, the button comes back, and every other tab's model list holds the new model; a
    refusal is said in the UI language; a second import while one runs is refused."""
    import shutil

    from tunestudio.webui.app import build_app
    from tunestudio.webui.i18n.texts import t
    from tunestudio.webui.tabs import model as tab_model

    ws = Workspace(workspace)
    shutil.copy(tiny_gguf[1], workspace / "models" / tiny_gguf[1].name)
    demo = build_app(ws)
    by_id = {getattr(c, "elem_id", None): c for c in demo.blocks.values()}
    fns = list(demo.fns.values())

    def after(d):
        return next(x for x in fns if x.trigger_after == d._id)

    start = next(d for d in fns if (by_id["model-import-button"]._id, "click") in [tuple(x) for x in d.targets])
    shown, _, button = start.fn("tet", tiny_gguf[1].name, None, "")
    assert shown == t("tet", "model.importing", file=tiny_gguf[1].name) and button["interactive"] is False
    work = after(start)
    out = dict(zip([o.elem_id for o in work.outputs], work.fn("tet", tiny_gguf[1].name, None, " ui-model ")))
    assert out["model-import-message"].startswith("✅") and "models/**ui-model**" in out["model-import-message"]
    assert out["model-select"]["value"] == "ui-model" and "ui-model" in out["model-select"]["choices"]
    assert (workspace / "models" / "ui-model" / "config.json").is_file()
    ended = after(work)
    assert ended.fn()["interactive"] is True
    lists = after(ended)
    updates = dict(zip([o.elem_id for o in lists.outputs], lists.fn("en")))
    assert {"chat-source", "bench-models", "rewards-model"} <= set(updates), sorted(updates)
    for elem_id, update in updates.items():
        values = [c[1] if isinstance(c, (list, tuple)) else c for c in update["choices"]]
        assert "ui-model" in values or "model:ui-model" in values, (elem_id, values)

    again = work.fn("tet", tiny_gguf[1].name, None, "ui-model")[0]
    assert again == "❌ " + t("tet", "engine.model_exists", folder=str(ws.models_dir / "ui-model"), name="ui-model")
    assert work.fn("en", None, None, "")[0] == t("en", "model.import_pick_first")
    with tab_model._IMPORTING:   # another browser's import is running
        spec, done = tab_model.import_work(ws, tiny_gguf[1].name, None, "other")
    assert done is None and spec == [("t", "model.import_busy", {})]
    assert not (workspace / "models" / "other").exists()
    assert sorted(os.listdir(workspace / "models")) == [tiny_gguf[1].name, "ui-model"]
