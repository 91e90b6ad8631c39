"""Shared fixtures: tiny random-init Llama models with the real SmolLM2 tokenizer.

The tokenizer comes from the embedded default model (converted once into the plus-sdk
cache); the weights are random and tiny so backend tests run in seconds.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import torch
from pg_server import PostgresServer, why_no_postgres
from torch_threads import THREADS_ENV, threads_under_test

from plus_sdk.cli import main
from plus_sdk.models import default_model_dir
from plus_sdk.server import ServeConfig, Services
from plus_sdk.types import PreferenceExample, UserContext


def pytest_configure(config: pytest.Config) -> None:
    """With ``$PLUS_TEST_THREADS`` set, torch computes with that many CPU threads (see ``torch_threads``)."""
    import os

    if os.environ.get(THREADS_ENV):
        torch.set_num_threads(threads_under_test())


TINY_CONFIG = dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                   num_key_value_heads=2, max_position_embeddings=4096, tie_word_embeddings=True)


def build_tiny_model(folder: Path, seed: int = 0) -> Path:
    """Save a tiny random Llama causal LM + the SmolLM2 tokenizer into ``folder``."""
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    tokenizer = AutoTokenizer.from_pretrained(default_model_dir())
    torch.manual_seed(seed)
    config = LlamaConfig(vocab_size=len(tokenizer), bos_token_id=tokenizer.bos_token_id,
                         eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id, **TINY_CONFIG)
    model = LlamaForCausalLM(config)
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("tiny-llama"))


@pytest.fixture()
def cat_context() -> UserContext:
    return UserContext(user_id="u-cat", examples=[
        PreferenceExample(prompt="Talk about a pet.", chosen="Cats purr when content.", rejected="Dogs fetch sticks."),
        PreferenceExample(prompt="Tell me about pets.", chosen="A cat naps in the sun.", rejected="A dog barks."),
    ])


@pytest.fixture()
def dog_context() -> UserContext:
    return UserContext(user_id="u-dog", examples=[
        PreferenceExample(prompt="Talk about a pet.", chosen="Dogs fetch sticks.", rejected="Cats purr when content."),
    ])


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """A real PostgreSQL server on 127.0.0.1 for the whole run (data in a temp folder); skips without one."""
    reason = why_no_postgres()
    if reason is not None:
        pytest.skip(reason)
    with PostgresServer() as server:
        yield server


@pytest.fixture(params=["sqlite", "postgres"])
def new_store_location(request: pytest.FixtureRequest, tmp_path: Path) -> Callable[[], str]:
    """Makes fresh, empty store locations on the backend under test: SQLite files, or PostgreSQL databases."""
    if request.param == "postgres":
        return request.getfixturevalue("postgres_server").new_database
    counter = itertools.count()
    return lambda: str(tmp_path / f"store-{next(counter)}.sqlite3")


@pytest.fixture(scope="module")
def services(tiny_model_dir: Path) -> Services:
    """The models ``plus serve`` holds on the tiny model, shared by a module's servers."""
    return Services(ServeConfig(model=str(tiny_model_dir), served_model_name="tiny"))


@pytest.fixture(scope="session")
def general_run(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small ``plus train general`` run on the tiny LM (the bundle is ``general_run / 'bundle'``)."""
    run = tmp_path_factory.mktemp("general")
    code = main(["train", "general", f"run_dir={run}", "rm_steps=30", "data.n_train=160", "data.n_test=24",
                 "data.n_ood=8", "data.n_context=2", "reader.regress_steps=20", "reader.decode_steps=2",
                 "reader.eval_every=2", "reader.eval_users=4", "reader.max_contexts=40",
                 f"reader.base={tiny_model_dir}", "reader.wording_variants=2", "eval_rows=24", "progress=false"])
    assert code == 0
    return run
