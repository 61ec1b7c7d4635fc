"""The tiny demo model: a random-initialised Llama with a byte-level BPE tokenizer trained here.

Everything is made offline and from a fixed seed, so two machines get the same model. Sizes come
from docs/dev/pitfalls.md: hidden 256, 4 layers, vocab 2048 (~4M parameters) learns the demo tasks in
minutes on 2 CPU cores; a larger model learns less in the same time.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from tunestudio.core.errors import UserError
from tunestudio.data.chat.template import CHATML_COMPACT_TOOLS

VOCAB_SIZE = 2048
BOS, EOS, PAD = "<|startoftext|>", "<|im_end|>", "<|pad|>"
IM_START, ENDOFTEXT = "<|im_start|>", "<|endoftext|>"
SPECIAL_TOKENS = [PAD, BOS, ENDOFTEXT, IM_START, EOS]  # ids 0..4, in this order
# What makes a saved folder whole: written last-to-first would not matter, the rename is atomic.
REQUIRED_FILES = ("config.json", "model.safetensors", "generation_config.json",
                  "tokenizer.json", "tokenizer_config.json")


def train_tokenizer(texts: list[str]):
    """A byte-level BPE (any text encodes, no unknown token) wrapped for transformers."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    # One token per digit (as Llama 3 and Qwen do): dates and times are then copied digit by
    # digit with the same tokens on both sides, which the tiny model learns far faster than a
    # mapping from "2024" to " 2024" (measured: dates at 0.05 exact match after 2 epochs without).
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Digits(individual_digits=True),
        pre_tokenizers.ByteLevel(add_prefix_space=False),
    ])
    tok.decoder = decoders.ByteLevel()
    # trim_offsets=False: a token's offsets cover its leading space, so offsets tile the text
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB_SIZE, min_frequency=2, special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False,
    )
    tok.train_from_iterator(texts, trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token=BOS, eos_token=EOS, pad_token=PAD,
        extra_special_tokens=[IM_START, ENDOFTEXT],
        model_max_length=1024, padding_side="right",
    )
    fast.chat_template = CHATML_COMPACT_TOOLS   # ChatML; tools listed compactly (template.py)
    return fast


def build_model(tokenizer, seed: int = 0):
    import torch
    from transformers import GenerationConfig, LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=256, intermediate_size=768, num_hidden_layers=4,
        num_attention_heads=4, num_key_value_heads=4, max_position_embeddings=1024,
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id, tie_word_embeddings=False,
    )
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config)
    model.generation_config = GenerationConfig(
        bos_token_id=tokenizer.bos_token_id, pad_token_id=tokenizer.pad_token_id,
        # stop at the end of a turn, and at a document end for plain-text models
        eos_token_id=[tokenizer.eos_token_id, tokenizer.convert_tokens_to_ids(ENDOFTEXT)],
        do_sample=False, max_new_tokens=64,
    )
    return model


def is_complete(folder: Path) -> bool:
    return all((folder / name).is_file() for name in REQUIRED_FILES)


def write_model(folder: Path, texts: list[str], seed: int = 0) -> bool:
    """Write the model to `folder` unless it is already there. True when written now.

    Built in a temporary sibling folder and renamed into place, so an interrupted run never leaves
    a half-written model that a later run would take for a whole one.
    """
    if is_complete(folder):
        return False
    if folder.exists():
        raise UserError(f"{folder} exists but is not a complete model (missing one of "
                        f"{', '.join(REQUIRED_FILES)}): move it away and run `tunestudio demo` again",
                        "demo_model_incomplete", folder=str(folder), files=", ".join(REQUIRED_FILES))
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = folder.parent / f".{folder.name}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        tokenizer = train_tokenizer(texts)
        model = build_model(tokenizer, seed)
        model.save_pretrained(tmp)  # safetensors is the default
        tokenizer.save_pretrained(tmp)
        try:
            os.rename(tmp, folder)
        except OSError:
            if not is_complete(folder):  # someone else finished first: keep theirs
                raise
            return False
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return True
