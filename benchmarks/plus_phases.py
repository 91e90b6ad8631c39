"""Benchmark: time and memory per phase of one PLUS iteration at the paper's scale (random weights).

The device machine cannot fetch weights, so the paper's pair of models is built from their
architectures with random weights: a Qwen2.5-3B-Instruct-shaped summarizer and a
Qwen2.5-0.5B-Instruct-shaped reward model (two bases, bf16, LoRA), with the SmolLM2 tokenizer (its
ids fit both vocabularies). Random weights cost the same per token as trained ones. They almost
never emit an end-of-turn token, so every summary runs to ``max_new_tokens``: a fixed, worst-case
length. Each iteration runs every phase of Algorithm 1: sampling, reward scoring, reference and
policy log-probs, the PPO update (GAE with a critic, as in the paper), and the reward-model NLL
steps. The first iteration is a warm-up. The later ones are reported as seconds per phase,
generated tokens/s, and peak GPU memory.

    python benchmarks/plus_phases.py --scale paper --out benchmarks/results/plus_phases_gpu.json  # GPU
    python benchmarks/plus_phases.py --scale tiny --out /tmp/phases.json                          # CPU check
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from pathlib import Path
from typing import Any

import torch

#: Architectures of the paper's models (public Qwen2.5 configs), and a tiny one for CPU checks.
SHAPES: dict[str, dict[str, Any]] = {
    "qwen2.5-3b": {"hidden_size": 2048, "intermediate_size": 11008, "num_hidden_layers": 36,
                   "num_attention_heads": 16, "num_key_value_heads": 2, "vocab_size": 151936},
    "qwen2.5-0.5b": {"hidden_size": 896, "intermediate_size": 4864, "num_hidden_layers": 24,
                     "num_attention_heads": 14, "num_key_value_heads": 2, "vocab_size": 151936},
    "tiny": {"hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 4,
             "num_key_value_heads": 2, "vocab_size": 49152},
}
SCALES = {"paper": ("qwen2.5-3b", "qwen2.5-0.5b"), "tiny": ("tiny", "tiny")}


def build_model(shape: str, folder: Path, tokenizer: Any, device: str, dtype: torch.dtype) -> Path:
    """Save a random-weight Qwen2 model of ``shape`` (+ tokenizer) into ``folder``."""
    from transformers import Qwen2Config, Qwen2ForCausalLM

    config = Qwen2Config(**SHAPES[shape], max_position_embeddings=32768, rope_theta=1e6, rms_norm_eps=1e-6,
                         tie_word_embeddings=True, torch_dtype=dtype,
                         bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                         pad_token_id=tokenizer.pad_token_id)
    torch.manual_seed(0)
    with torch.device(device):
        model = Qwen2ForCausalLM(config).to(dtype)
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    del model
    return folder


def run_config(summarizer: Path, reward: Path, run_dir: Path, args: argparse.Namespace, dtype: str) -> dict[str, Any]:
    """A co-adaptation config with the paper's shape of iteration (GAE + critic, LoRA, two bases)."""
    return {
        "run_dir": str(run_dir), "seed": 0, "iterations": args.iterations, "progress": False,
        "contexts_per_iteration": args.contexts, "rm_steps": args.rm_steps, "rm_batch_size": args.rm_batch,
        "checkpoint_every": 10_000,
        "model": {"summarizer_base": str(summarizer), "reward_base": str(reward), "dtype": dtype,
                  "summarizer_lora": {"r": 16, "alpha": 32}, "critic_lora": {"r": 16, "alpha": 32},
                  "gradient_checkpointing": args.gradient_checkpointing},
        "data": {"dataset": "pets", "n_train": 400, "n_test": 8, "n_ood": 0, "n_context": 3},
        "eval": {"every": 10_000, "test_rows": 4, "ood_rows": 0, "final_test_rows": 4, "final_ood_rows": 0,
                 "batch_size": 4, "samples_logged": 0},
        "ppo": {"estimator": "gae", "samples_per_prompt": 1, "max_new_tokens": args.max_new_tokens,
                "temperature": 1.0, "minibatch_size": args.minibatch, "micro_batch_size": args.micro_batch,
                "epochs": 1, "actor_lr": 5e-7, "critic_lr": 9e-7, "kl_coef": 0.01},
        "rm": {"lr": 9e-6, "lora": {"r": 16, "alpha": 32}, "batch_size": args.rm_batch,
               "grad_accum": max(args.rm_batch // args.micro_batch, 1), "bf16": dtype == "bfloat16"},
    }


def run_iterations(summarizer: Path, reward: Path, run_dir: Path, args: argparse.Namespace,
                   dtype: str) -> tuple[Any, list[dict[str, float]], dict[str, float]]:
    """Run ``args.iterations`` co-adaptation iterations: (the run, their metrics, mean seconds per
    phase over all but the first, which is a warm-up)."""
    from plus_sdk.training.ppo.coadapt import CoAdaptation, CoadaptConfig

    run = CoAdaptation(CoadaptConfig.model_validate(run_config(summarizer, reward, run_dir, args, dtype)))
    rows = []
    for _ in range(args.iterations):
        rows.append(run.iterate())
        run.iteration += 1
    steady = rows[1:] or rows
    phases = sorted(k for k in steady[0] if k.startswith("time_"))
    return run, rows, {k.removeprefix("time_"): statistics.mean(r[k] for r in steady) for k in phases}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", choices=sorted(SCALES), default="paper")
    parser.add_argument("--out", default="benchmarks/results/plus_phases_gpu.json")
    parser.add_argument("--work", default="runs/plus_phases", help="folder for the random models and the run")
    parser.add_argument("--iterations", type=int, default=3, help="iterations (the first is a warm-up)")
    parser.add_argument("--contexts", type=int, default=64, help="contexts (summaries) per iteration")
    parser.add_argument("--max-new-tokens", type=int, default=128, help="summary length (random models use all)")
    parser.add_argument("--minibatch", type=int, default=16)
    parser.add_argument("--micro-batch", type=int, default=4)
    parser.add_argument("--rm-steps", type=int, default=4)
    parser.add_argument("--rm-batch", type=int, default=16)
    parser.add_argument("--gradient-checkpointing", action="store_true")
    args = parser.parse_args()

    from plus_sdk.models import load_tokenizer

    cuda = torch.cuda.is_available()
    device, dtype = ("cuda", torch.bfloat16) if cuda else ("cpu", torch.float32)
    work = Path(args.work)
    tokenizer = load_tokenizer(None)  # the embedded SmolLM2 tokenizer
    summarizer_shape, reward_shape = SCALES[args.scale]
    started = time.perf_counter()
    summarizer = build_model(summarizer_shape, work / summarizer_shape, tokenizer, device, dtype)
    reward = summarizer if reward_shape == summarizer_shape else build_model(reward_shape, work / reward_shape,
                                                                              tokenizer, device, dtype)
    build_seconds = time.perf_counter() - started
    if cuda:
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    _, rows, per_phase = run_iterations(summarizer, reward, work / "run", args, "bfloat16" if cuda else "float32")
    steady = rows[1:] or rows
    tokens = args.contexts * statistics.mean(r["summary_tokens"] for r in steady)
    result = {
        "what": "one PLUS iteration (Algorithm 1, GAE + critic) at the paper's model sizes, random weights",
        "device": torch.cuda.get_device_name(0) if cuda else f"{platform.machine()} CPU",
        "summarizer": summarizer_shape, "reward_model": reward_shape, "dtype": str(dtype).removeprefix("torch."),
        "settings": vars(args),
        "seconds_per_phase": per_phase,
        "generated_tokens_per_iteration": tokens,
        "generation_tokens_per_second": tokens / per_phase["generation"],
        "peak_cuda_gb": torch.cuda.max_memory_allocated() / 2**30 if cuda else None,
        "peak_rss_mb": steady[-1].get("peak_rss_mb"),
        "model_build_seconds": build_seconds,
        "iterations": rows,
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    print(json.dumps({k: result[k] for k in ("device", "seconds_per_phase", "generation_tokens_per_second",
                                             "peak_cuda_gb", "peak_rss_mb")}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
