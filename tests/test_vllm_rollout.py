"""Co-adaptation rollouts on vLLM, checked against a stand-in engine (vllm itself cannot run here).

vLLM needs a CUDA GPU and is not installed on this machine, so ``vllm`` is replaced by a small
fake module at that true external edge: its ``LLM`` loads the base from the same folder and the
LoRA adapter from the ``LoRARequest`` path with transformers + peft, and decodes greedily. What
is tested is our side: the adapter published to the engine reproduces the training policy
token for token, a new version is published after each update, sampling settings reach
``SamplingParams``, and completions are packed into the same ``Rollout`` as the HF path.
"""

from __future__ import annotations

import sys
import types
from pathlib import Path
from typing import Any

import pytest
import torch

from plus_sdk.training.ppo import algorithm as ppo
from plus_sdk.training.ppo import rollout as rollouts
from plus_sdk.training.ppo import trainer as ppo_trainer
from plus_sdk.training.ppo.vllm_rollout import VLLMRolloutEngine, pack_rollout

PROMPTS = [[1, 2, 3, 4, 5, 6, 7], [8, 9, 10], [11, 12, 13, 14, 15]]


def _fake_vllm(log: dict[str, Any]) -> dict[str, types.ModuleType]:
    """Modules ``vllm`` and ``vllm.lora.request`` with the parts our engine uses."""

    class SamplingParams:
        def __init__(self, **kw: Any) -> None:
            self.__dict__.update(kw)
            log.setdefault("params", []).append(kw)

    class LoRARequest:
        def __init__(self, lora_name: str, lora_int_id: int, lora_path: str) -> None:
            self.lora_name, self.lora_int_id, self.lora_path = lora_name, lora_int_id, lora_path

    class LLM:
        def __init__(self, **kw: Any) -> None:
            log["init"] = kw
            self.path = kw["model"]

        def generate(self, prompts: list[dict], params: SamplingParams, lora_request: LoRARequest,
                     use_tqdm: bool = False) -> list[Any]:
            from peft import PeftModel
            from transformers import AutoModelForCausalLM

            log.setdefault("lora_ids", []).append(lora_request.lora_int_id)
            model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(self.path), lora_request.lora_path)
            model.eval()
            eos = log["eos_ids"]
            outputs = []
            for prompt in prompts:
                ids = list(prompt["prompt_token_ids"])
                completions = []
                for _ in range(params.n):
                    tokens: list[int] = []
                    with torch.no_grad():
                        for _ in range(params.max_tokens):
                            token = int(model(input_ids=torch.tensor([ids + tokens])).logits[0, -1].argmax())
                            tokens.append(token)
                            if token in eos:
                                break
                    completions.append(types.SimpleNamespace(token_ids=tokens))
                outputs.append(types.SimpleNamespace(outputs=completions))
            return outputs

    vllm = types.ModuleType("vllm")
    vllm.LLM, vllm.SamplingParams = LLM, SamplingParams  # type: ignore[attr-defined]
    lora = types.ModuleType("vllm.lora")
    request = types.ModuleType("vllm.lora.request")
    request.LoRARequest = LoRARequest  # type: ignore[attr-defined]
    return {"vllm": vllm, "vllm.lora": lora, "vllm.lora.request": request}


def _trainer(folder: Path, config: ppo.PPOConfig) -> ppo_trainer.PPOTrainer:
    from peft import LoraConfig

    from plus_sdk.backends.local import SharedBase

    torch.manual_seed(0)
    base = SharedBase.load(str(folder), device="cpu", dtype="float32", share=False)
    base.add_new_adapter("summarizer", LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"]))
    with torch.no_grad():  # a non-zero adapter, so a stale or missing adapter would decode differently
        for name, p in base.model.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.3, generator=torch.Generator().manual_seed(1))
    return ppo_trainer.PPOTrainer(base, config, total_steps=2, seed=0)


def test_pack_rollout_pads_and_masks() -> None:
    prompt_ids, prompt_mask = rollouts.left_pad(PROMPTS[:2], pad_id=0)
    rollout = pack_rollout(prompt_ids, prompt_mask, [[5, 6, 7], [8], [9, 9], []], k=2, pad_id=0)
    assert rollout.response_ids.tolist() == [[5, 6, 7], [8, 0, 0], [9, 9, 0], [0, 0, 0]]
    assert rollout.response_mask.tolist() == [[1, 1, 1], [1, 0, 0], [1, 1, 0], [0, 0, 0]]
    assert rollout.samples_per_prompt == 2
    with pytest.raises(ValueError, match="2 prompts x k=2"):
        pack_rollout(prompt_ids, prompt_mask, [[1]], k=2, pad_id=0)


def test_vllm_rollouts_follow_the_policy_across_updates(tiny_model_dir: Path, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    log: dict[str, Any] = {}
    for name, module in _fake_vllm(log).items():
        monkeypatch.setitem(sys.modules, name, module)
    config = ppo.PPOConfig(samples_per_prompt=2, max_new_tokens=6, temperature=0.8, top_p=0.9,
                           minibatch_size=6, micro_batch_size=6, actor_lr=5e-2)
    trainer = _trainer(tiny_model_dir, config)
    log["eos_ids"] = trainer.eos_ids
    hf_greedy = trainer.generate(PROMPTS, greedy=True)
    engine = VLLMRolloutEngine(str(tiny_model_dir), tmp_path / "adapters", max_lora_rank=4,
                               gpu_memory_utilization=0.3, dtype="float32", seed=7)
    assert log["init"]["enable_lora"] and log["init"]["max_lora_rank"] == 4
    trainer.attach_vllm(engine)
    vllm_greedy = trainer.generate(PROMPTS, greedy=True)
    assert torch.equal(vllm_greedy.response_ids, hf_greedy.response_ids)  # the published adapter is the policy
    assert torch.equal(vllm_greedy.response_mask, hf_greedy.response_mask)
    assert log["params"][-1]["n"] == 1 and log["params"][-1]["temperature"] == 0.0
    sampled = trainer.generate(PROMPTS)  # same policy version: no new adapter folder
    assert sampled.num_responses == 6 and len(log["lora_ids"]) == 2 and log["lora_ids"][0] == log["lora_ids"][1]
    assert log["params"][-1] | {"seed": None} == {"n": 2, "max_tokens": 6, "temperature": 0.8, "top_p": 0.9,
                                                  "seed": None}
    # one update moves the policy; the next rollout must use the new weights under a new adapter id
    experience, _ = trainer.make_experience(sampled, torch.tensor([2.0, -2.0, 1.0, -1.0, 0.5, -0.5]),
                                            trainer.logprobs(sampled, reference=True))
    trainer.update(experience)
    monkeypatch.setattr(trainer, "vllm", None)
    hf_after = trainer.generate(PROMPTS, greedy=True)
    monkeypatch.setattr(trainer, "vllm", engine)
    vllm_after = trainer.generate(PROMPTS, greedy=True)
    assert log["lora_ids"][-1] not in log["lora_ids"][:-1]  # a new id: vLLM caches adapters by id
    assert torch.equal(vllm_after.response_ids, hf_after.response_ids)
    assert sorted(p.name for p in (tmp_path / "adapters").iterdir()) == ["v000001", "v000002"]


def test_missing_vllm_names_the_install_command(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from plus_sdk.backends.vllm import BackendUnavailableError

    monkeypatch.setitem(sys.modules, "vllm", None)  # import vllm -> ImportError
    with pytest.raises(BackendUnavailableError, match=r"pip install 'plus-sdk\[vllm\]'"):
        VLLMRolloutEngine("model", tmp_path, max_lora_rank=8, gpu_memory_utilization=0.3)
