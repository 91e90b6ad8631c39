"""The supervised warm start of a summarizer: masking, targets, and a run a co-adaptation can start from."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from plus_sdk import prompts
from plus_sdk.bundle import read_card
from plus_sdk.training.data.styles import StylesConfig, build_styles
from plus_sdk.training.sft import SFTConfig, batch_tensors, encode, target_text, train_summarizer


def test_only_the_answer_tokens_carry_labels_and_padding_is_masked() -> None:
    batch = batch_tensors([([5, 6, 7, 8], 2), ([9, 10, 11], 1)], pad_id=0)
    assert batch["input_ids"].tolist() == [[5, 6, 7, 8], [9, 10, 11, 0]]
    assert batch["labels"].tolist() == [[-100, -100, 7, 8], [-100, 10, 11, -100]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1, 1], [1, 1, 1, 0]]


def test_the_target_is_the_marker_then_the_users_true_description() -> None:
    record = build_styles(StylesConfig(n_train=4, n_test=4, n_context=2))["train"][0]
    assert target_text(record) == f"{prompts.SUMMARY_MARKER} {record.oracle}"
    with pytest.raises(ValueError, match="oracle"):
        target_text(record.model_copy(update={"oracle": None}))


def test_encoding_masks_exactly_the_summarizer_prompt(tiny_model_dir: Path) -> None:
    from plus_sdk.models import load_tokenizer

    tokenizer = load_tokenizer(str(tiny_model_dir))
    record = build_styles(StylesConfig(n_train=4, n_test=4, n_context=2))["train"][0]
    ids, n_prompt = encode(record, tokenizer, "generic", 4096)
    answer = tokenizer.decode(ids[n_prompt:])
    assert answer.startswith(target_text(record)) and "Compare the replies" in tokenizer.decode(ids[:n_prompt])
    short_ids, _ = encode(record, tokenizer, "generic", 200)  # too long: the oldest pair goes
    assert len(short_ids) < len(ids)


def test_a_short_run_lowers_the_loss_and_writes_a_bundle_with_a_summarizer(tiny_model_dir: Path,
                                                                          tmp_path: Path) -> None:
    config = SFTConfig(run_dir=str(tmp_path / "sft"), base=str(tiny_model_dir), steps=6, batch_size=2, lr=3e-3,
                       data={"dataset": "styles", "n_train": 8, "n_test": 4, "n_context": 2})
    torch.manual_seed(0)
    result = train_summarizer(config)
    losses = [json.loads(line)["loss"] for line in (tmp_path / "sft" / "metrics.jsonl").read_text().splitlines()]
    assert len(losses) == 6 and result["final_loss"] == pytest.approx(sum(losses[-10:]) / len(losses[-10:]))
    assert min(losses[-2:]) < losses[0]
    assert (tmp_path / "sft" / "summarizer" / "adapter_model.safetensors").exists()
    assert read_card(tmp_path / "sft").summary_task == "generic"
