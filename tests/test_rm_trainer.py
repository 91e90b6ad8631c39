"""RewardTrainer on a tiny real Llama: loss falls, only the reward adapter moves, resume is exact."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from plus_sdk.backends.local import SharedBase
from plus_sdk.reward import PersonalizedRewardModel
from plus_sdk.training.checkpoint import read_checkpoint, write_checkpoint
from plus_sdk.training.config import LoraSettings
from plus_sdk.training.rm.trainer import (
    RewardTrainer,
    RMExample,
    RMTrainConfig,
    adapter_parameters,
    add_reward_lora,
)

EXAMPLES = [
    RMExample(condition=None, prompt="Talk about a pet.", chosen="Cats purr softly.", rejected="Dogs bark loudly."),
    RMExample(condition=None, prompt="Tell me about an animal.", chosen="A cat naps.", rejected="A dog runs."),
    RMExample(condition="About me: I like cats.", prompt="Say something.", chosen="Cats are calm.",
              rejected="Dogs are loud."),
    RMExample(condition=None, prompt="Any pet facts?", chosen="Cats see in the dark.", rejected="Dogs dig holes."),
]


def fresh_base(folder: Path) -> SharedBase:
    return SharedBase.load(str(folder), device="cpu", dtype="float32", share=False)


def config(**kw: object) -> RMTrainConfig:
    return RMTrainConfig(lr=3e-3, batch_size=4, warmup_ratio=0.0, **kw)


def test_loss_falls_and_accumulation(tiny_model_dir: Path) -> None:
    rm = add_reward_lora(fresh_base(tiny_model_dir), config(grad_accum=2))
    trainer = RewardTrainer(rm, config(grad_accum=2), total_steps=12)
    before = trainer.evaluate(EXAMPLES)["loss"]
    for _ in range(12):
        out = trainer.step(EXAMPLES)
    assert set(out) >= {"loss", "accuracy", "margin", "lr", "grad_norm"}
    after = trainer.evaluate(EXAMPLES)
    assert after["loss"] < before - 0.05
    assert after["accuracy"] == 1.0
    assert trainer.step_count == 12


def test_only_reward_adapter_changes(tiny_model_dir: Path) -> None:
    from peft import LoraConfig

    base = fresh_base(tiny_model_dir)
    base.add_new_adapter("summarizer", LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"],
                                                 init_lora_weights=False))
    rm = add_reward_lora(base, config())
    snapshot = {n: p.detach().clone() for n, p in base.model.named_parameters()}
    head_before = rm.head.linear.weight.detach().clone()
    trainer = RewardTrainer(rm, config(), total_steps=3)
    for _ in range(3):
        trainer.step(EXAMPLES)
    reward_names = {n for n, _ in adapter_parameters(base.model, "reward")}
    changed = {n for n, p in base.model.named_parameters() if not torch.equal(p, snapshot[n])}
    assert changed, "nothing trained"
    assert changed <= reward_names
    assert not any(".summarizer." in n for n in changed)
    assert not torch.equal(rm.head.linear.weight, head_before)
    assert len(trainer.params) == len(reward_names) + 2


def test_resume_same_step_same_loss(tiny_model_dir: Path, tmp_path: Path) -> None:
    batches = [EXAMPLES[:2], EXAMPLES[2:], EXAMPLES[1:3], EXAMPLES[::2], EXAMPLES[:3]]
    rm = add_reward_lora(fresh_base(tiny_model_dir), config(lora=LoraSettings(r=8, alpha=16, dropout=0.1)))
    trainer = RewardTrainer(rm, config(lora=LoraSettings(r=8, alpha=16, dropout=0.1)), total_steps=5)
    for batch in batches[:3]:
        trainer.step(batch)
    write_checkpoint(tmp_path / "state.safetensors", trainer.state_dict())
    rm.save_pretrained(tmp_path / "adapter")
    reference = [trainer.step(b)["loss"] for b in batches[3:]]

    rm2 = add_reward_lora(fresh_base(tiny_model_dir), config(lora=LoraSettings(r=8, alpha=16, dropout=0.1)))
    resumed = RewardTrainer(rm2, config(lora=LoraSettings(r=8, alpha=16, dropout=0.1)), total_steps=5)
    resumed.load_state_dict(read_checkpoint(tmp_path / "state.safetensors"))
    assert resumed.step_count == 3
    again = [resumed.step(b)["loss"] for b in batches[3:]]
    assert again == pytest.approx(reference, abs=1e-6)
    assert resumed.step_count == 5


def test_saved_adapter_loads_in_personalized_reward_model(tiny_model_dir: Path, tmp_path: Path) -> None:
    rm = add_reward_lora(fresh_base(tiny_model_dir), config())
    trainer = RewardTrainer(rm, config(), total_steps=2)
    trainer.step(EXAMPLES)
    rm.save_pretrained(tmp_path / "rm")
    expected = rm.score_batch([(None, "Talk about a pet.", "Cats purr softly.")], prefix_sharing=False)[0]
    loaded = PersonalizedRewardModel.from_pretrained(str(tiny_model_dir), tmp_path / "rm", device="cpu",
                                                     dtype="float32")
    got = loaded.score_batch([(None, "Talk about a pet.", "Cats purr softly.")], prefix_sharing=False)[0]
    assert got == pytest.approx(expected, abs=1e-4)


def test_head_size_must_match_method(tiny_model_dir: Path) -> None:
    from plus_sdk.training.rm.dpl import DPLMeanVar

    rm = add_reward_lora(fresh_base(tiny_model_dir), config())
    with pytest.raises(ValueError, match="2 outputs"):
        RewardTrainer(rm, config(), total_steps=1, method=DPLMeanVar())


def _ddp_worker(rank: int, folder: str, init: str, out: str) -> None:
    import torch.distributed as dist

    dist.init_process_group("gloo", init_method=init, rank=rank, world_size=2)
    torch.set_num_threads(1)
    rm = add_reward_lora(fresh_base(Path(folder)), config())
    trainer = RewardTrainer(rm, config(), total_steps=2)
    for _ in range(2):
        trainer.step(EXAMPLES[rank * 2 : rank * 2 + 2])  # each rank its own half of the batch
    torch.save({n: p.detach() for n, p in trainer.named}, f"{out}/rank{rank}.pt")
    dist.destroy_process_group()


def test_ddp_gradients_are_averaged_across_processes(tiny_model_dir: Path, tmp_path: Path) -> None:
    import torch.multiprocessing as mp

    init = f"file://{tmp_path / 'rendezvous'}"
    mp.spawn(_ddp_worker, args=(str(tiny_model_dir), init, str(tmp_path)), nprocs=2, join=True)
    a, b = torch.load(tmp_path / "rank0.pt"), torch.load(tmp_path / "rank1.pt")
    assert a.keys() == b.keys()
    for name in a:  # different data on each rank, yet identical weights: gradients were all-reduced
        assert torch.equal(a[name], b[name]), name
    # and equal to one process stepping on the whole batch (mean of the halves' gradients)
    single = RewardTrainer(add_reward_lora(fresh_base(tiny_model_dir), config()), config(), total_steps=2)
    for _ in range(2):
        single.step(EXAMPLES)
    for name, p in single.named:
        assert torch.allclose(p.detach(), a[name], atol=1e-5), name


def test_lora_top_layers_put_the_adapter_on_the_last_layers_only() -> None:
    assert LoraSettings(top_layers=2).peft(30).layers_to_transform == [28, 29]
    assert RMTrainConfig().lora.peft(30).layers_to_transform is None
    assert (RMTrainConfig().lora.r, RMTrainConfig().lora.alpha) == (8, 16)  # the reward adapter's own defaults


def test_top_layers_follow_the_loaded_model_for_every_adapter(tiny_model_dir: Path) -> None:
    base = fresh_base(tiny_model_dir)
    layers = base.model.config.num_hidden_layers
    assert LoraSettings(top_layers=1).peft_for(base.model).layers_to_transform == [layers - 1]
    base.add_new_adapter("summarizer", LoraSettings(top_layers=1).peft_for(base.model))
    adapted = {name.split(".layers.")[1].split(".")[0] for name, _ in base.model.named_parameters()
               if ".summarizer." in name}
    assert adapted == {str(layers - 1)}
