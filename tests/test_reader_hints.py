"""Hints of the encoder-path summarizer: the known descriptions nearest to ê, written as text after the
soft tokens; the bank they come from (built by ``ReaderTraining`` with ``hints`` > 0, saved with the
reader, loaded by ``Summarizer.from_pretrained``), and the PPO role's prompts that carry them. A reader
without a bank (every bundle made before hints) renders exactly the prompt it always did.

The encoder is the real all-MiniLM-L6-v2; the LM is the suite's tiny random Llama (plumbing, not quality).
"""

from __future__ import annotations

import json
import random
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
import torch

from plus_sdk import prompts
from plus_sdk.bundle import write_card
from plus_sdk.context_reader import (
    HINTS_LEAD,
    INSTRUCTION,
    READER_SPEC,
    SLOT,
    SOFT_TOKENS,
    SYSTEM,
    ContextReader,
    PromptCache,
    ReaderBackend,
    load_reader,
    prompt_ids,
    save_reader,
)
from plus_sdk.encoder import SentenceEncoder
from plus_sdk.encoder_reward import EncoderScorer
from plus_sdk.models import load_tokenizer
from plus_sdk.summarizer import Summarizer
from plus_sdk.training.data.pets import build_pets
from plus_sdk.training.ppo.roles import ReaderPrompts
from plus_sdk.training.reader import ReaderConfig, ReaderTraining
from plus_sdk.types import AdapterCard

SHIPPED = Path(__file__).resolve().parents[1] / "adapters" / "general-smollm2" / "summarizer"


def legacy_prompt_ids(tokenizer: Any, vocab: int, slot: int, k: int = SOFT_TOKENS) -> list[int]:
    """The prompt as it was rendered before hints existed (a copy of the old ``prompt_ids``)."""
    messages = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": INSTRUCTION}]
    text = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    before, after = text.split(SLOT)
    ids_before = tokenizer(before, add_special_tokens=False)["input_ids"]
    ids_after = tokenizer(after, add_special_tokens=False)["input_ids"]
    return ids_before + [vocab + slot * k + j for j in range(k)] + ids_after


def hinted_reader() -> ContextReader:
    """A small reader with a hand-built bank of four entries (two share a text) in a 3-d space."""
    reader = ContextReader(3, 6, k=2, hidden=16, pair_hidden=5)
    vectors = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.9, 0.1, 0.0], [0.0, 0.0, 1.0]])
    reader.set_hints(["likes cats", "likes dogs", "likes cats", "likes birds"], vectors, 2)
    return reader


def text_of(tokenizer: Any, ids: list[int], vocab: int) -> str:
    """The prompt's text, soft tokens left out."""
    return str(tokenizer.decode([i for i in ids if i < vocab]))


def test_hints_are_the_texts_of_the_nearest_bank_entries_distinct_and_best_first() -> None:
    reader = hinted_reader()
    described = torch.tensor([[1.0, 0.2, 0.0], [0.0, 0.1, 1.0], [0.0, 2.0, 0.5]])
    # row 0: cats (0.98), cats again (0.99: first, but counted once), then dogs; row 1: birds, then dogs
    assert reader.hints(described) == [["likes cats", "likes dogs"], ["likes birds", "likes dogs"],
                                       ["likes dogs", "likes birds"]]
    assert reader.hints(described, 1) == [["likes cats"], ["likes birds"], ["likes dogs"]]
    assert reader.hints(described, 5)[0] == ["likes cats", "likes dogs", "likes birds"]  # only 3 distinct texts
    assert reader.hints(described, 0) == [[], [], []]
    assert ContextReader(3, 6, hidden=16, pair_hidden=5).hints(described) == [[], [], []]  # no bank, no hints
    with pytest.raises(ValueError, match="hint bank of 2 texts"):
        reader.set_hints(["a", "b"], torch.zeros(3, 3), 1)


def test_a_reader_without_a_bank_prompts_as_before_and_the_shipped_old_reader_loads(tiny_model_dir: Path) -> None:
    tok = load_tokenizer(str(tiny_model_dir))
    vocab = len(tok)
    cache = PromptCache(tok, vocab)
    for slot in (0, 3):
        assert prompt_ids(tok, vocab, slot) == legacy_prompt_ids(tok, vocab, slot)
        assert cache.ids(slot) == cache.ids(slot, []) == legacy_prompt_ids(tok, vocab, slot)
    spec = json.loads((SHIPPED / READER_SPEC).read_text(encoding="utf-8"))
    assert "hint_texts" not in spec  # a bundle made before hints
    reader, encoder_name = load_reader(SHIPPED)
    assert encoder_name == "all-minilm-l6-v2" and reader.hint_texts == [] and "bank" not in reader.state_dict()
    assert reader.spec() == {k: v for k, v in spec.items() if k != "encoder"}
    assert reader.hints(torch.randn(2, reader.dim)) == [[], []]


def test_a_hinted_reader_saved_and_loaded_gives_the_same_hints_and_prompts(tiny_model_dir: Path,
                                                                          tmp_path: Path) -> None:
    reader = hinted_reader()
    save_reader(reader, "all-minilm-l6-v2", tmp_path)
    loaded, _ = load_reader(tmp_path)
    assert loaded.hint_texts == reader.hint_texts and loaded.hint_count == 2
    assert torch.equal(loaded.get_buffer("bank"), reader.get_buffer("bank"))
    described = torch.randn(5, 3)
    assert loaded.hints(described) == reader.hints(described)
    tok = load_tokenizer(str(tiny_model_dir))
    vocab = len(tok)
    hints = loaded.hints(torch.tensor([[1.0, 0.2, 0.0]]))[0]
    ids = PromptCache(tok, vocab, loaded.k).ids(1, hints)
    assert ids == prompt_ids(tok, vocab, 1, reader.k, hints)
    assert [i for i in ids if i >= vocab] == [vocab + 2, vocab + 3]  # slot 1 of k = 2
    assert f"{HINTS_LEAD} 1) likes cats 2) likes dogs" in text_of(tok, ids, vocab)


@pytest.fixture(scope="module")
def trained(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> ReaderTraining:
    """A few steps of both stages with ``hints: 2`` on Pets users (two dataset descriptions)."""
    data = build_pets(24, 4, 2, 0)
    encoder = SentenceEncoder.load(cache_folder=tmp_path_factory.mktemp("embeddings"))
    config = ReaderConfig.model_validate({
        "base": str(tiny_model_dir), "hints": 2, "regress_steps": 5, "regress_batch": 8, "decode_steps": 1,
        "decode_batch": 4, "eval_every": 1, "eval_users": 2, "wording_variants": 2, "max_contexts": 20,
        "hidden": 16, "max_new_tokens": 8})
    training = ReaderTraining(config, data["train"], data["test"], run_dir=tmp_path_factory.mktemp("reader"),
                              progress=False, encoder=encoder)
    training.regress()
    training.decode()
    return training


def test_reader_training_with_hints_builds_a_bank_of_the_train_descriptions_and_prompts_with_it(
        trained: ReaderTraining, monkeypatch: pytest.MonkeyPatch) -> None:
    reader, tok, vocab = trained.reader, trained.base.tokenizer, trained.embedding.vocab
    assert reader.hint_texts == sorted({r.oracle for r in trained.train if r.oracle}) and reader.hint_count == 2
    assert reader.spec()["hints"] == 2
    batch, described = trained.decode_batch(0, random.Random(0))
    for row, hints in zip(batch["input_ids"].tolist(), reader.hints(described), strict=True):
        assert len(hints) == 2 and f"{HINTS_LEAD} 1) {hints[0]} 2) {hints[1]}" in text_of(tok, row, vocab)
    seen: list[list[int]] = []
    prompt = ReaderBackend.prompt

    def spy(self: ReaderBackend, slot: int, hints: Sequence[str] = ()) -> list[int]:
        seen.append(prompt(self, slot, hints))
        return seen[-1]

    monkeypatch.setattr(ReaderBackend, "prompt", spy)
    records = trained.train[:2]
    assert len(trained.summaries(records)) == 2
    with torch.no_grad():
        expected = reader.hints(reader.describe(reader.features(trained.encoder, [r.context for r in records])))
    assert len(seen) == 2
    for ids, hints in zip(seen, expected, strict=True):
        assert f"{HINTS_LEAD} 1) {hints[0]} 2) {hints[1]}" in text_of(tok, ids, vocab)


def test_a_hinted_bundle_loads_as_a_summarizer_with_hinted_prompts(trained: ReaderTraining, tiny_model_dir: Path,
                                                                   tmp_path: Path) -> None:
    bundle = tmp_path / "bundle"
    trained.save(bundle / "summarizer")
    write_card(bundle, AdapterCard(name="hinted", base_model=str(tiny_model_dir),
                                   prompt_version=prompts.PROMPT_VERSION, method="summary"))
    summarizer = Summarizer.from_pretrained(bundle, quiet=True, cache_dir=tmp_path / "cache")
    backend = summarizer.backend
    assert isinstance(backend, ReaderBackend)
    assert backend.reader.hint_texts == trained.reader.hint_texts
    assert torch.equal(backend.reader.get_buffer("bank"), trained.reader.get_buffer("bank"))
    record = trained.held_out[0]
    ids = backend.prompt(0, backend.reader.hints(backend.reader.describe(
        backend.reader.features(backend.encoder, [record.context])))[0])
    assert HINTS_LEAD in text_of(backend.model.tokenizer, ids, backend.embedding.vocab)
    summarizer.save_pretrained(tmp_path / "again")  # a Summarizer saves its reader (and bank) with the adapter
    assert load_reader(tmp_path / "again")[0].hint_texts == trained.reader.hint_texts


def test_the_ppo_role_prompts_carry_the_hints_of_each_records_context(trained: ReaderTraining) -> None:
    role = ReaderPrompts(trained.base, trained.reader, EncoderScorer.create(trained.encoder))
    records = [trained.train[0], trained.train[1], trained.train[0]]
    ids = role.prompt_ids(records)
    reader, tok, vocab = trained.reader, trained.base.tokenizer, trained.embedding.vocab
    with torch.no_grad():
        expected = reader.hints(reader.describe(reader.features(trained.encoder, [r.context for r in records])))
    for row, hints in zip(ids, expected, strict=True):
        assert f"{HINTS_LEAD} 1) {hints[0]} 2) {hints[1]}" in text_of(tok, row, vocab)
    assert ids[2] == ids[0]  # the same context: the same slot and hints
    plain = ReaderPrompts(trained.base, ContextReader(reader.dim, reader.d_model, hidden=16), EncoderScorer.create(
        trained.encoder))
    assert plain.prompt_ids(records[:2]) == [legacy_prompt_ids(tok, vocab, slot) for slot in (0, 1)]
