"""PPO math on hand-computed tensors, and rollouts / updates on a tiny random model."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
import torch

from plus_sdk.training.ppo import algorithm as ppo
from plus_sdk.training.ppo import rollout as rollouts
from plus_sdk.training.ppo import speed
from plus_sdk.training.ppo import trainer as ppo_trainer

# ---------------------------------------------------------------------------------------
# GAE, whitening, baselines
# ---------------------------------------------------------------------------------------


def test_gae_matches_hand_computed_values() -> None:
    rewards = torch.tensor([[0.0, 0.0, 1.0], [0.5, 0.0, 0.0]])
    values = torch.tensor([[0.5, 0.4, 0.3], [0.2, 9.0, 9.0]])  # 9.0 sits on padding and must be ignored
    mask = torch.tensor([[1, 1, 1], [1, 0, 0]])
    advantages, returns = ppo.gae(rewards, values, mask, gamma=1.0, lam=0.95)
    # row 0: δ2 = 1 − 0.3 = 0.7; δ1 = 0.3 − 0.4 = −0.1; δ0 = 0.4 − 0.5 = −0.1
    #        A2 = 0.7, A1 = −0.1 + 0.95·0.7 = 0.565, A0 = −0.1 + 0.95·0.565 = 0.43675
    expected = torch.tensor([[0.43675, 0.565, 0.7], [0.3, 0.0, 0.0]])
    assert torch.allclose(advantages, expected, atol=1e-6)
    assert torch.allclose(returns, torch.tensor([[0.93675, 0.965, 1.0], [0.5, 0.0, 0.0]]), atol=1e-6)


def test_gae_with_discount() -> None:
    rewards = torch.tensor([[1.0, 2.0]])
    values = torch.tensor([[0.0, 1.0]])
    advantages, _ = ppo.gae(rewards, values, torch.ones(1, 2), gamma=0.5, lam=0.5)
    # δ1 = 2 − 1 = 1, δ0 = 1 + 0.5·1 − 0 = 1.5; A1 = 1, A0 = 1.5 + 0.25·1 = 1.75
    assert torch.allclose(advantages, torch.tensor([[1.75, 1.0]]))


def test_whiten_matches_hand_computed_values() -> None:
    x = torch.tensor([[1.0, 2.0], [3.0, 4.0]])
    out = ppo.whiten(x, torch.ones_like(x))
    std = math.sqrt(5.0 / 3.0)  # unbiased variance of 1..4 is 5/3
    expected = torch.tensor([[-1.5, -0.5], [0.5, 1.5]]) / std
    assert torch.allclose(out, expected, atol=1e-5)
    masked = ppo.whiten(torch.tensor([[1.0, 3.0, 100.0]]), torch.tensor([[1, 1, 0]]))
    assert torch.allclose(masked, torch.tensor([[-1 / math.sqrt(2), 1 / math.sqrt(2), 0.0]]), atol=1e-5)
    kept = ppo.whiten(x, torch.ones_like(x), shift_mean=False)
    assert torch.allclose(kept.mean(), torch.tensor(2.5))


def test_rloo_and_group_baselines() -> None:
    assert ppo.rloo_advantages(torch.tensor([1.0, 3.0, 2.0, 6.0]), 2).tolist() == [-2.0, 2.0, -4.0, 4.0]
    assert torch.allclose(ppo.rloo_advantages(torch.tensor([1.0, 2.0, 3.0]), 3), torch.tensor([-1.5, 0.0, 1.5]))
    group = ppo.group_advantages(torch.tensor([1.0, 3.0]), 2)
    assert torch.allclose(group, torch.tensor([-1.0, 1.0]) / math.sqrt(2), atol=1e-5)
    with pytest.raises(ValueError, match="samples_per_prompt"):
        ppo.rloo_advantages(torch.tensor([1.0]), 1)


# ---------------------------------------------------------------------------------------
# KL estimators, controllers, rewards
# ---------------------------------------------------------------------------------------


def test_kl_estimators_on_known_values() -> None:
    logp, ref = torch.tensor([math.log(0.5)]), torch.tensor([math.log(0.25)])
    r = math.log(2.0)
    assert ppo.kl_estimate(logp, ref, "k1").item() == pytest.approx(r)
    assert ppo.kl_estimate(logp, ref, "k2").item() == pytest.approx(0.5 * r * r)
    assert ppo.kl_estimate(logp, ref, "k3").item() == pytest.approx(0.5 - 1 + r)
    with pytest.raises(ValueError, match="k1, k2 or k3"):
        ppo.kl_estimate(logp, ref, "k4")  # type: ignore[arg-type]


def test_k1_and_k3_are_unbiased_estimates_of_kl() -> None:
    p = torch.tensor([0.6, 0.3, 0.1])
    q = torch.tensor([0.2, 0.5, 0.3])
    true_kl = float((p * (p / q).log()).sum())
    samples = torch.multinomial(p, 200_000, replacement=True, generator=torch.Generator().manual_seed(0))
    logp, logq = p.log()[samples], q.log()[samples]
    assert ppo.kl_estimate(logp, logq, "k1").mean().item() == pytest.approx(true_kl, abs=0.01)
    assert ppo.kl_estimate(logp, logq, "k3").mean().item() == pytest.approx(true_kl, abs=0.01)
    assert (ppo.kl_estimate(logp, logq, "k3") >= 0).all()


def test_kl_controllers() -> None:
    fixed = ppo.FixedKLController(0.02)
    fixed.update(100.0, 10)
    assert fixed.value == 0.02
    adaptive = ppo.AdaptiveKLController(0.1, target=1.0, horizon=10)
    adaptive.update(current_kl=2.0, n_steps=5)  # error clipped to +0.2: 0.1·(1 + 0.2·5/10)
    assert adaptive.value == pytest.approx(0.11)
    adaptive.update(current_kl=0.9, n_steps=10)  # error −0.1: 0.11·(1 − 0.1)
    assert adaptive.value == pytest.approx(0.099)
    restored = ppo.AdaptiveKLController(1.0, 1.0, 1)
    restored.load_state_dict(adaptive.state_dict())
    assert restored.value == pytest.approx(0.099)


def test_token_rewards_put_clipped_score_on_last_token() -> None:
    kl = torch.tensor([[0.5, 0.5, 0.5], [1.0, 1.0, 0.0]])
    mask = torch.tensor([[1.0, 1.0, 1.0], [1.0, 1.0, 0.0]])
    rewards = ppo.token_rewards(torch.tensor([2.0, -50.0]), kl, mask, kl_coef=0.1, clip=10.0)
    assert torch.allclose(rewards, torch.tensor([[-0.05, -0.05, 1.95], [-0.1, -10.1, 0.0]]))


def test_running_moments_match_batch_statistics() -> None:
    stats = ppo.RunningMoments()
    data = torch.arange(10, dtype=torch.float32)
    stats.update(data[:4])
    stats.update(data[4:])
    assert stats.mean == pytest.approx(4.5, abs=1e-6)
    assert stats.std == pytest.approx(float(data.var(unbiased=False).sqrt()), abs=1e-4)


# ---------------------------------------------------------------------------------------
# Losses
# ---------------------------------------------------------------------------------------


def test_policy_loss_clips_the_ratio() -> None:
    logp = torch.tensor([[math.log(1.5), math.log(1.5), math.log(0.5), math.log(0.5)]], requires_grad=True)
    old = torch.zeros(1, 4)
    advantages = torch.tensor([[1.0, -1.0, 1.0, -1.0]])
    out = ppo.policy_loss(logp, old, advantages, torch.ones(1, 4), clip_eps=0.2)
    # per token max(−Aρ, −A·clip(ρ)): −1.2, 1.5, −0.5, 0.8
    assert out.loss.item() == pytest.approx((-1.2 + 1.5 - 0.5 + 0.8) / 4)
    assert out.clip_fraction.item() == pytest.approx(0.5)
    out.loss.backward()
    grad = logp.grad[0]
    assert grad[0] == 0 and grad[3] == 0  # clipped tokens pass no gradient
    assert grad[1].item() == pytest.approx(1.5 / 4) and grad[2].item() == pytest.approx(-0.5 / 4)


def test_policy_loss_is_minus_mean_advantage_at_ratio_one() -> None:
    logp = torch.tensor([[-1.0, -2.0, -3.0]])
    out = ppo.policy_loss(logp, logp.clone(), torch.tensor([[1.0, 2.0, 9.0]]), torch.tensor([[1, 1, 0]]), 0.2)
    assert out.loss.item() == pytest.approx(-1.5)
    assert out.approx_kl.item() == 0.0 and out.ratio_mean.item() == 1.0


def test_value_loss_clips_around_old_values() -> None:
    loss, fraction = ppo.value_loss(torch.tensor([[1.0]]), torch.tensor([[0.5]]), torch.tensor([[2.0]]),
                                    torch.ones(1, 1), clip=0.2)
    # clipped value 0.7: max((1 − 2)², (0.7 − 2)²) = 1.69
    assert loss.item() == pytest.approx(0.5 * 1.69)
    assert fraction.item() == 1.0
    loss, fraction = ppo.value_loss(torch.tensor([[0.6]]), torch.tensor([[0.5]]), torch.tensor([[2.0]]),
                                    torch.ones(1, 1), clip=0.2)
    assert loss.item() == pytest.approx(0.5 * 1.4**2) and fraction.item() == 0.0


def test_entropy_of_uniform_logits_is_log_of_the_vocabulary() -> None:
    uniform = rollouts.entropy_from_logits(torch.zeros(1, 4))
    assert uniform.item() == pytest.approx(math.log(4))


def test_optimizer_steps_per_iteration_count_epochs_times_minibatches() -> None:
    # 5 prompts, k=2, minibatch 4 responses = 2 prompt groups: ceil(5 / 2) = 3 minibatches, × 2 epochs
    config = ppo.PPOConfig(samples_per_prompt=2, minibatch_size=4, epochs=2)
    assert ppo.optimizer_steps_per_iteration(config, 5) == 6
    # a minibatch smaller than one group still holds one whole group
    assert ppo.optimizer_steps_per_iteration(ppo.PPOConfig(samples_per_prompt=4, minibatch_size=2), 3) == 3


# ---------------------------------------------------------------------------------------
# Rollouts and updates on a tiny random model
# ---------------------------------------------------------------------------------------


def _tiny_trainer(folder: Path, config: ppo.PPOConfig, *, critic: bool = False,
                  gradient_checkpointing: ppo_trainer.Checkpointing = False) -> ppo_trainer.PPOTrainer:
    from peft import LoraConfig

    from plus_sdk.backends.local import SharedBase
    from plus_sdk.reward import RewardHead

    torch.manual_seed(0)
    base = SharedBase.load(str(folder), share=False)
    lora = LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], lora_dropout=0.0)
    base.add_new_adapter("summarizer", lora)
    with torch.no_grad():  # a non-zero adapter, so policy and reference differ
        for name, p in base.model.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.05, generator=torch.Generator().manual_seed(1))
    value = None
    if critic:
        base.add_new_adapter("critic", lora)
        value = ppo_trainer.Critic(base, "critic", RewardHead(base.model.config.hidden_size, 1))
    return ppo_trainer.PPOTrainer(base, config, total_steps=2, critic=value, seed=0,
                                  gradient_checkpointing=gradient_checkpointing)


PROMPTS = [[1, 2, 3, 4, 5, 6, 7], [8, 9, 10], [11, 12, 13, 14, 15]]


@pytest.mark.numeric
def test_shared_prefix_logprobs_equal_full_sequence_logprobs(tiny_model_dir: Path) -> None:
    trainer = _tiny_trainer(tiny_model_dir, ppo.PPOConfig(samples_per_prompt=2, max_new_tokens=6, temperature=0.7))
    rollout = trainer.generate(PROMPTS)
    assert rollout.response_ids.shape[0] == 6
    shared = trainer.logprobs(rollout, reference=False)
    reference = trainer.logprobs(rollout, reference=True)
    assert not torch.allclose(shared, reference)  # the adapter matters
    with trainer.base.use("summarizer") as model, torch.no_grad():
        for row in range(rollout.num_responses):
            prompt = PROMPTS[row // 2]
            response = rollout.response_ids[row][rollout.response_mask[row].bool()].tolist()
            logits = model(input_ids=torch.tensor([prompt + response])).logits[0, len(prompt) - 1:-1] / 0.7
            full = torch.log_softmax(logits.float(), -1).gather(-1, torch.tensor(response)[:, None]).squeeze(-1)
            assert torch.allclose(shared[row, : len(response)], full, atol=1e-4)


def test_rollout_stops_at_eos_and_masks_the_rest(tiny_model_dir: Path) -> None:
    trainer = _tiny_trainer(tiny_model_dir, ppo.PPOConfig(samples_per_prompt=2, max_new_tokens=8))
    first = trainer.generate(PROMPTS[:1], greedy=True)
    stop_token = int(first.response_ids[0, 2])
    trainer.eos_ids = [stop_token]
    again = trainer.generate(PROMPTS[:1], greedy=True)
    ids = again.response_ids[0].tolist()
    stop = ids.index(stop_token)
    assert again.response_mask[0].tolist() == [1] * (stop + 1) + [0] * (len(ids) - stop - 1)
    assert all(t == trainer.pad_id for t in ids[stop + 1:])


@pytest.mark.numeric
def test_sampling_is_reproducible_from_the_generator_state(tiny_model_dir: Path) -> None:
    trainer = _tiny_trainer(tiny_model_dir, ppo.PPOConfig(samples_per_prompt=2, max_new_tokens=5))
    state = trainer.sampler.get_state()
    a = trainer.generate(PROMPTS)
    trainer.sampler.set_state(state)
    b = trainer.generate(PROMPTS)
    assert torch.equal(a.response_ids, b.response_ids)


@pytest.mark.numeric
def test_a_fused_update_equals_the_unfused_one(tiny_model_dir: Path) -> None:
    config = ppo.PPOConfig(samples_per_prompt=2, max_new_tokens=5, minibatch_size=6, micro_batch_size=6,
                           whiten_advantages=True, kl_coef=0.1)
    first = _tiny_trainer(tiny_model_dir, config)
    second = _tiny_trainer(tiny_model_dir, config)
    rollout = first.generate(PROMPTS)
    scores = torch.tensor([0.5, -1.0, 2.0, 0.0, -0.5, 1.5])
    ref = first.logprobs(rollout, reference=True)
    assert first.can_fuse(rollout.num_responses)
    experience, _ = first.make_experience(rollout, scores, ref)
    assert experience.live is not None  # fused by default when one step covers the batch
    fused = first.update(experience)
    experience, _ = second.make_experience(rollout, scores, ref, fuse=False)
    assert experience.live is None
    plain = second.update(experience)
    assert fused["policy_loss"] == pytest.approx(plain["policy_loss"], abs=1e-5)
    for a, b in zip(first.actor_params, second.actor_params, strict=True):
        assert torch.allclose(a, b, atol=1e-6)


def test_gae_update_trains_actor_and_critic_over_minibatches(tiny_model_dir: Path) -> None:
    config = ppo.PPOConfig(estimator="gae", samples_per_prompt=1, max_new_tokens=5, epochs=2, minibatch_size=2,
                           micro_batch_size=1, actor_lr=1e-2, critic_lr=1e-2)
    trainer = _tiny_trainer(tiny_model_dir, config, critic=True)
    assert trainer.critic is not None
    actor_before = [p.detach().clone() for p in trainer.actor_params]
    critic_before = [p.detach().clone() for p in trainer.critic.parameters()]
    rollout = trainer.generate(PROMPTS)
    experience, metrics = trainer.make_experience(rollout, torch.tensor([1.0, -1.0, 0.5]),
                                                  trainer.logprobs(rollout, reference=True))
    assert experience.old_values is not None and "kl" in metrics
    out = trainer.update(experience)
    assert trainer.step_count == 4  # 2 epochs × 2 minibatches (groups of 2, then 1)
    assert trainer.step_count == ppo.optimizer_steps_per_iteration(config, len(PROMPTS))
    assert out["value_loss"] > 0 and 0.0 <= out["clip_fraction"] <= 1.0
    assert any(not torch.equal(a, b) for a, b in zip(actor_before, trainer.actor_params, strict=True))
    assert any(not torch.equal(a, b) for a, b in zip(critic_before, trainer.critic.parameters(), strict=True))


def test_trainer_rejects_bad_settings(tiny_model_dir: Path) -> None:
    with pytest.raises(ValueError, match="needs a critic"):
        _tiny_trainer(tiny_model_dir, ppo.PPOConfig(estimator="gae"))
    with pytest.raises(ValueError, match="samples_per_prompt >= 2"):
        _tiny_trainer(tiny_model_dir, ppo.PPOConfig(estimator="rloo", samples_per_prompt=1))


def test_last_token_index_finds_the_last_real_token_under_any_padding() -> None:
    from plus_sdk.reward import last_token_index

    right = torch.tensor([[1, 1, 1, 0], [1, 0, 0, 0], [0, 0, 0, 0]])
    left = torch.tensor([[0, 1, 1, 1], [0, 0, 0, 1]])
    assert last_token_index(right).tolist() == [2, 0, 0]  # an empty row points at 0
    assert last_token_index(left).tolist() == [3, 3]


# ---------------------------------------------------------------------------------------
# Speed: autocast, sync-free statistics, checkpointing, throughput
# ---------------------------------------------------------------------------------------


def test_autocast_is_bf16_on_request_and_auto_only_over_fp32_weights_on_a_bf16_gpu() -> None:
    fp32, bf16 = torch.float32, torch.bfloat16
    assert speed.autocast_dtype("bf16", "cpu", fp32, False) is bf16  # CPU autocast, so it is testable here
    assert speed.autocast_dtype("off", "cuda", fp32, True) is None
    assert speed.autocast_dtype("auto", "cuda", fp32, True) is bf16
    assert speed.autocast_dtype("auto", "cuda", bf16, True) is None  # already bf16 weights
    assert speed.autocast_dtype("auto", "cuda", fp32, False) is None  # no bf16 on that GPU
    assert speed.autocast_dtype("auto", "cpu", fp32, False) is None


def test_activation_estimate_on_hand_computed_values() -> None:
    # 2 layers x 2 bytes x (10 tokens x (8*4 + 4*8) + 6 cached x 2*2) + 3 response tokens x 5 vocab x 16 bytes
    estimate = speed.activation_bytes(layers=2, hidden=4, intermediate=8, kv_dim=2, vocab=5, body_tokens=10,
                                      cached_tokens=6, response_tokens=3, element_bytes=2)
    assert estimate == 2 * 2 * (10 * 64 + 6 * 4) + 3 * 5 * 16 == 2896
    assert speed.needs_checkpointing(2896, free_bytes=3000)  # more than 80 % of what is free
    assert not speed.needs_checkpointing(2896, free_bytes=4000)


def test_update_tflops_and_known_peaks() -> None:
    assert speed.update_tflops(params=10**9, tokens=1000, seconds=2.0) == pytest.approx(2.0)  # 4e12 / 2 s
    assert speed.peak_tflops_of("NVIDIA H200") == 989.4
    assert speed.peak_tflops_of("NVIDIA H100 PCIe") == 756.0
    assert speed.peak_tflops_of("NVIDIA H100 80GB HBM3") == 989.4
    assert speed.peak_tflops_of("Tesla T4") is None


def test_step_statistics_are_token_weighted_and_averaged_over_steps() -> None:
    t = torch.tensor
    steps = [([({"policy_loss": t(2.0)}, 0.25), ({"policy_loss": t(4.0)}, 0.75)], t(1.0), 0.1),
             ([({"policy_loss": t(-1.0)}, 1.0)], t(3.0), 0.2)]
    out = ppo_trainer.PPOTrainer._mean_stats(steps, t(0.5))
    assert out == {"policy_loss": (0.5 + 3.0 - 1.0) / 2, "actor_lr": pytest.approx(0.15), "grad_norm": 2.0,
                   "sequence_kl": 0.5}


def _one_update(folder: Path, config: ppo.PPOConfig, scores: torch.Tensor,
                **options: Any) -> tuple[ppo_trainer.PPOTrainer, dict[str, float]]:
    trainer = _tiny_trainer(folder, config, **options)
    torch.manual_seed(3)
    rollout = trainer.generate(PROMPTS)
    experience, _ = trainer.make_experience(rollout, scores, trainer.logprobs(rollout, reference=True))
    return trainer, trainer.update(experience)


UNFUSED = ppo.PPOConfig(samples_per_prompt=2, max_new_tokens=5, minibatch_size=4, micro_batch_size=2, kl_coef=0.1)
SCORES = torch.tensor([0.5, -1.0, 2.0, 0.0, -0.5, 1.5])


def test_a_bf16_autocast_update_on_cpu_is_close_to_the_fp32_one(tiny_model_dir: Path) -> None:
    full, plain = _one_update(tiny_model_dir, UNFUSED, SCORES)
    half, autocast = _one_update(tiny_model_dir, UNFUSED.model_copy(update={"autocast": "bf16"}), SCORES)
    assert half.autocast is torch.bfloat16 and full.autocast is None
    # bf16 keeps ~3 significant digits: entropies (~ln 49k = 10.8) agree to 0.05, the rest to 0.02
    assert autocast["entropy"] == pytest.approx(plain["entropy"], abs=0.05)
    for key in ("policy_loss", "approx_kl", "clip_fraction"):
        assert autocast[key] == pytest.approx(plain[key], abs=0.02), key
    assert autocast["grad_norm"] == pytest.approx(plain["grad_norm"], rel=0.1)
    for a, b in zip(full.actor_params, half.actor_params, strict=True):
        assert torch.allclose(a, b, atol=2e-3)  # one Adam step of lr 3e-4 moves weights by about lr


def test_a_checkpointed_update_equals_the_shared_prefix_one(tiny_model_dir: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    import torch.utils.checkpoint as ckpt

    calls = []
    original = ckpt.checkpoint
    monkeypatch.setattr(ckpt, "checkpoint", lambda *a, **k: calls.append(1) or original(*a, **k))
    plain_trainer, plain = _one_update(tiny_model_dir, UNFUSED, SCORES)
    modes = [m.training for m in plain_trainer.base.model.modules()]
    assert not calls
    ckpt_trainer, checkpointed = _one_update(tiny_model_dir, UNFUSED, SCORES, gradient_checkpointing=True)
    assert len(calls) == 2 * 3  # 2 layers x 3 micro-batches (2 minibatches: 2 groups, then 1)
    for key in ("policy_loss", "entropy", "approx_kl", "grad_norm"):
        assert checkpointed[key] == pytest.approx(plain[key], abs=1e-5), key
    for a, b in zip(plain_trainer.actor_params, ckpt_trainer.actor_params, strict=True):
        assert torch.allclose(a, b, atol=1e-6)
    assert [m.training for m in ckpt_trainer.base.model.modules()] == modes  # layer flags restored


def test_auto_checkpointing_never_runs_on_cpu(tiny_model_dir: Path) -> None:
    trainer = _tiny_trainer(tiny_model_dir, UNFUSED, gradient_checkpointing="auto")
    rollout = trainer.generate(PROMPTS)
    assert trainer.activation_estimate(rollout) > 0
    assert trainer.plan_checkpointing(rollout) is False


def test_the_update_reports_its_tokens_and_throughput(tiny_model_dir: Path) -> None:
    config = UNFUSED.model_copy(update={"peak_tflops": 2.0})
    trainer, out = _one_update(tiny_model_dir, config, SCORES)
    torch.manual_seed(3)
    rollout = _tiny_trainer(tiny_model_dir, config).generate(PROMPTS)  # the same rollout again
    assert out["update_tokens"] == int(rollout.prompt_mask.sum() + rollout.response_mask.sum())
    assert out["update_tflops"] == pytest.approx(4 * trainer.params * out["update_tokens"] / out["update_seconds"]
                                                 / 1e12)
    assert out["mfu"] == pytest.approx(out["update_tflops"] / 2.0)
    assert trainer.params == sum(p.numel() for p in trainer.base.model.parameters()) - \
        trainer.base.model.get_input_embeddings().weight.numel()


def test_an_update_reads_no_device_value_per_micro_batch(tiny_model_dir: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    import traceback

    trainer = _tiny_trainer(tiny_model_dir, UNFUSED)
    rollout = trainer.generate(PROMPTS)
    experience, _ = trainer.make_experience(rollout, SCORES, trainer.logprobs(rollout, reference=True))
    readers: list[str] = []  # the file of each caller that turned a tensor into a Python value
    step = trainer._minibatch_step

    def watched(*args: Any) -> Any:
        for name in ("item", "tolist", "__float__", "__int__", "__bool__"):
            original = getattr(torch.Tensor, name)

            def read(self: torch.Tensor, *a: Any, _original: Any = original) -> Any:
                readers.append(traceback.extract_stack()[-2].filename)
                return _original(self, *a)

            monkeypatch.setattr(torch.Tensor, name, read)
        try:
            return step(*args)
        finally:
            monkeypatch.undo()

    trainer._minibatch_step = watched  # type: ignore[method-assign]
    trainer.update(experience)
    assert readers, "the watch saw nothing (transformers and torch.optim do read some values)"
    assert [f for f in readers if "plus_sdk" in f] == []
