"""GPU speed of plus-sdk against plain transformers and against the hardware floor, in one command.

Random-weight Qwen-shaped models are built as in ``plus_phases.py`` (a Qwen2.5-3B-shaped
summarizer, a Qwen2.5-0.5B-shaped reward model, bf16, the SmolLM2 tokenizer). The workload is
the one of issue 14: ``--users`` users, each with an 8-pair context (about 1,200 prompt tokens),
``--new-tokens`` new tokens per summary, ``--judge-pairs`` judged pairs. Measured, warm:

- ``Summarizer.summarize_batch`` with default settings (batches follow the device), and with
  ``static_cache=True`` (static KV cache + ``torch.compile``, CUDA only);
- plain ``model.generate`` on the same prompts in one batch (the reference);
- ``PersonalizedJudge.prefer_batch`` on ``--judge-pairs`` pairs with summaries cached, and
  ``prefer`` (one pair, median of ``--prefer-calls``);
- one co-adaptation iteration (``plus_phases.py``'s config) with the PPO update's MFU.

Floors come from this device's measured matmul rate and memory bandwidth (not a spec sheet):
generation = prefill FLOPs / matmul rate + decode steps x (weights + KV) bytes / bandwidth;
scoring = 2 x parameters x distinct tokens / matmul rate; ``prefer`` = reading the reward
model's weights once. MFU = the PPO trainer's own ``update_tflops`` (4 x non-embedding parameters x
tokens / update seconds: forward 2, activation gradients 2; LoRA has no weight gradients of the
base) / the measured matmul rate; ``ppo_update_mfu_spec`` is the trainer's ``mfu`` against the
GPU's spec bf16 peak.

    python benchmarks/gpu_speed.py    # H200: ~5 min (estimate, not yet run) -> results/gpu_speed_<gpu>.json
    python benchmarks/gpu_speed.py --scale tiny --out /tmp/gpu_speed_tiny.json   # CPU check, tiny shapes
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from judge_speed import ASKS, SENTENCES, TOPICS, unavoidable_tokens  # noqa: E402
from plus_phases import SCALES, build_model, run_iterations  # noqa: E402

from plus_sdk.training.ppo.speed import non_embedding_parameters  # noqa: E402

#: The issue's targets, printed next to each figure.
TARGETS = {"summarize_tok_s": ">= 2000 and >= 2x plain generate", "prefer_batch_pairs_s": ">= 1500",
           "prefer_ms": "<= 30", "coadapt_iteration_s": "<= 12", "ppo_mfu": ">= 0.30"}


# ---------------------------------------------------------------------------------------------- workload
def make_contexts(users: int, pairs: int) -> list[dict[str, Any]]:
    """One context per user: ``pairs`` preference pairs of a few sentences each."""
    out = []
    for u in range(users):
        examples = []
        for j in range(pairs):
            t = TOPICS[(u + j) % len(TOPICS)]
            chosen = " ".join(SENTENCES[(j + k) % len(SENTENCES)] for k in range(4))
            rejected = " ".join(SENTENCES[(j + 4 + k) % len(SENTENCES)] for k in range(4))
            examples.append({"prompt": ASKS[(u + j) % len(ASKS)].format(t=t),
                             "chosen": chosen.format(t=t, T=t.capitalize()),
                             "rejected": rejected.format(t=t, T=t.capitalize())})
        out.append({"user_id": f"gpu-{u}", "examples": examples})
    return out


def judge_items(summaries: list[Any], n_pairs: int) -> list[tuple[Any, str, str, str]]:
    """``n_pairs`` items spread over the users, with their cached summaries as the context."""
    items = []
    for j in range(n_pairs):
        summary = summaries[j % len(summaries)]
        t = TOPICS[j % len(TOPICS)]
        a = " ".join(SENTENCES[(j + k) % len(SENTENCES)] for k in range(1 + j % 3))
        b = " ".join(SENTENCES[(j + 3 + k) % len(SENTENCES)] for k in range(1 + (j + 1) % 4))
        prompt = ASKS[(j // len(summaries)) % len(ASKS)].format(t=t)
        items.append((summary, prompt, a.format(t=t, T=t.capitalize()), b.format(t=t, T=t.capitalize())))
    return items


# ---------------------------------------------------------------------------------------------- device
def sync() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def timed(fn: Any, *args: Any, **kwargs: Any) -> tuple[float, Any]:
    sync()
    start = time.perf_counter()
    out = fn(*args, **kwargs)
    sync()
    return time.perf_counter() - start, out


def matmul_flops(device: str, dtype: torch.dtype) -> float:
    """Best measured matmul rate of this device in FLOP/s."""
    size, reps = (8192, 20) if device == "cuda" else (512, 10)
    a = torch.randn(size, size, device=device, dtype=dtype)
    b = torch.randn(size, size, device=device, dtype=dtype)
    best = 0.0
    for _ in range(3):
        seconds, _ = timed(lambda: [a @ b for _ in range(reps)])
        best = max(best, 2 * size**3 * reps / seconds)
    return best


def bandwidth(device: str) -> float:
    """Best measured copy bandwidth in bytes/s (read + write counted)."""
    n = (1 << 30) if device == "cuda" else (1 << 24)
    src = torch.empty(n, dtype=torch.uint8, device=device)
    dst = torch.empty_like(src)
    best = 0.0
    for _ in range(5):
        seconds, _ = timed(dst.copy_, src)
        best = max(best, 2 * n / seconds)
    return best


# ---------------------------------------------------------------------------------------------- phases
def generation_phase(base: Any, contexts: list[dict[str, Any]], new_tokens: int, cuda: bool,
                     peak: float, bw: float) -> dict[str, Any]:
    """summarize_batch (default, static cache) and plain generate on the same prompts."""
    from plus_sdk.backends.local import LocalBackend, LocalModel
    from plus_sdk.inputs import as_context
    from plus_sdk.summarizer import Summarizer
    from plus_sdk.types import SamplingConfig

    sampling = SamplingConfig(max_new_tokens=new_tokens)
    tok = base.tokenizer
    results: dict[str, Any] = {}
    variants = {"summarize_batch": {}, "summarize_batch_static_cache": {"static_cache": True}}
    for name, options in variants.items():
        if options and not cuda:
            continue
        # max_words so large that the stop check runs every step but never fires: every row
        # decodes new_tokens tokens (random weights hardly ever emit end-of-turn), like plain generate.
        summarizer = Summarizer(LocalBackend(LocalModel(base), **options), sampling=sampling, max_words=10**6)
        summarizer.summarize_batch(contexts[: min(8, len(contexts))], use_cache=False)  # warm-up / compile
        seconds, _ = timed(summarizer.summarize_batch, contexts, use_cache=False)
        results[name] = {"seconds": seconds, "tokens_per_s": len(contexts) * new_tokens / seconds,
                         "batch_size": summarizer.backend_batch_size}
    summarizer = Summarizer(LocalBackend(LocalModel(base)), sampling=sampling)
    texts = summarizer.backend.render([summarizer.messages_for(as_context(c)) for c in contexts])
    enc = tok(texts, return_tensors="pt", padding=True, add_special_tokens=False).to(base.device)
    prompt_tokens = int(enc["attention_mask"].sum())

    def plain() -> Any:
        with torch.inference_mode():
            return base.model.generate(**enc, max_new_tokens=new_tokens, min_new_tokens=new_tokens, do_sample=False,
                                       pad_token_id=tok.pad_token_id, temperature=None, top_p=None, top_k=None)

    plain()
    seconds, out = timed(plain)
    generated = (out.shape[1] - enc["input_ids"].shape[1]) * out.shape[0]
    results["plain_generate_one_batch"] = {"seconds": seconds, "tokens_per_s": generated / seconds,
                                           "batch_size": len(texts)}
    params = non_embedding_parameters(base.model)
    weight_bytes = sum(p.numel() * p.element_size() for p in base.model.parameters())
    from plus_sdk import batching

    kv = batching.kv_bytes_per_token(base.model.config, next(base.model.parameters()).element_size())
    mean_len = prompt_tokens / len(texts) + new_tokens / 2
    floor_s = 2 * params * prompt_tokens / peak + new_tokens * (weight_bytes + len(texts) * mean_len * kv) / bw
    results.update(prompt_tokens=prompt_tokens, median_prompt_tokens=statistics.median(
        int(n) for n in enc["attention_mask"].sum(1)), floor_seconds=floor_s,
        floor_tokens_per_s=len(texts) * new_tokens / floor_s)
    return results


def scoring_phase(summary_base: Any, reward_base: Any, contexts: list[dict[str, Any]], n_pairs: int,
                  prefer_calls: int, peak: float, bw: float) -> dict[str, Any]:
    """prefer_batch (warm, summaries cached) and prefer, with their floors."""
    from plus_sdk.backends.local import LocalBackend, LocalModel
    from plus_sdk.judge import PersonalizedJudge
    from plus_sdk.reward import PersonalizedRewardModel, RewardHead
    from plus_sdk.summarizer import Summarizer
    from plus_sdk.types import SamplingConfig

    summarizer = Summarizer(LocalBackend(LocalModel(summary_base)), sampling=SamplingConfig(max_new_tokens=64))
    summaries = summarizer.summarize_batch(contexts)
    head = RewardHead(reward_base.model.config.hidden_size).to(next(reward_base.model.parameters()).dtype)
    judge = PersonalizedJudge(PersonalizedRewardModel(LocalModel(reward_base), head), summarizer)
    items = judge_items(summaries, n_pairs)
    judge.prefer_batch(items)  # warm-up
    seconds, _ = timed(judge.prefer_batch, items)
    latencies = []
    for item in items[: 3 + prefer_calls]:
        latencies.append(timed(judge.prefer, *item)[0])
    latencies = latencies[3:]  # the first calls warm up
    params = non_embedding_parameters(reward_base.model)
    distinct = unavoidable_tokens(judge, items)
    weight_bytes = sum(p.numel() * p.element_size() for p in reward_base.model.parameters())
    floor_s = 2 * params * distinct / peak
    return {"prefer_batch": {"pairs": len(items), "seconds": seconds, "pairs_per_s": len(items) / seconds,
                             "distinct_tokens": distinct, "floor_pairs_per_s": len(items) / floor_s},
            "prefer": {"calls": len(latencies), "p50_ms": 1000 * statistics.median(latencies),
                       "p95_ms": 1000 * sorted(latencies)[int(0.95 * (len(latencies) - 1))],
                       "floor_ms": 1000 * weight_bytes / bw}}


def coadapt_phase(summarizer_dir: Path, reward_dir: Path, work: Path, args: argparse.Namespace,
                  cuda: bool, peak: float) -> dict[str, Any]:
    """One warm co-adaptation iteration at plus_phases.py's settings, and the PPO update's MFU."""
    phase_args = argparse.Namespace(iterations=args.coadapt_iterations, contexts=args.users,
                                    max_new_tokens=2 * args.new_tokens, minibatch=16, micro_batch=4, rm_steps=4,
                                    rm_batch=16, gradient_checkpointing=False)
    _, rows, seconds = run_iterations(summarizer_dir, reward_dir, work / "run", phase_args,
                                      "bfloat16" if cuda else "float32")
    steady = rows[1:] or rows
    tflops = statistics.mean(r["update_tflops"] for r in steady)  # the trainer's own count
    spec = [r["mfu"] for r in steady if "mfu" in r]
    return {"seconds_per_phase": seconds, "iteration_seconds": seconds.get("iteration"),
            "update_tokens": statistics.mean(r["update_tokens"] for r in steady),
            "update_seconds": statistics.mean(r["update_seconds"] for r in steady), "update_tflops": tflops,
            "ppo_update_mfu": tflops * 1e12 / peak, "ppo_update_mfu_spec": statistics.mean(spec) if spec else None}


# ---------------------------------------------------------------------------------------------- report
def table(result: dict[str, Any]) -> str:
    """Markdown table: each figure with its floor and the issue's target."""
    g, s, c = result["generation"], result["scoring"], result.get("coadapt") or {}
    rows = ["| what | measured | floor | target |", "| --- | --- | --- | --- |"]
    floor_gen = f"{g['floor_tokens_per_s']:,.0f} tok/s"
    for name in ("summarize_batch", "summarize_batch_static_cache", "plain_generate_one_batch"):
        if name in g:
            rows.append(f"| `{name}` (batch {g[name]['batch_size']}) | {g[name]['tokens_per_s']:,.0f} tok/s "
                        f"({g[name]['seconds']:.2f} s) | {floor_gen} | "
                        f"{TARGETS['summarize_tok_s'] if name.startswith('summarize') else 'reference'} |")
    pb, p = s["prefer_batch"], s["prefer"]
    rows.append(f"| `prefer_batch`, {pb['pairs']} pairs, warm | {pb['pairs_per_s']:,.0f} pairs/s "
                f"({pb['seconds']:.2f} s) | {pb['floor_pairs_per_s']:,.0f} pairs/s | "
                f"{TARGETS['prefer_batch_pairs_s']} |")
    rows.append(f"| `prefer`, warm | {p['p50_ms']:.1f} ms (p95 {p['p95_ms']:.1f}) | {p['floor_ms']:.2f} ms | "
                f"{TARGETS['prefer_ms']} ms |")
    if c:
        mfu = c["ppo_update_mfu"]
        rows.append(f"| co-adaptation iteration | {c['iteration_seconds']:.1f} s | - | "
                    f"{TARGETS['coadapt_iteration_s']} s |")
        rows.append(f"| PPO update MFU | {mfu:.1%} ({c['update_tflops']:.3g} TFLOP/s, {c['update_seconds']:.1f} s) | "
                    f"100% | "
                    f"{TARGETS['ppo_mfu']} |" if mfu is not None else "| PPO update MFU | n/a | | |")
    return "\n".join(rows)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", choices=sorted(SCALES), default="paper")
    parser.add_argument("--out", default=None, help="default: benchmarks/results/gpu_speed_<gpu>.json")
    parser.add_argument("--work", default="runs/gpu_speed", help="folder for the random models")
    parser.add_argument("--users", type=int, default=None, help="users (64 at paper scale, 4 tiny)")
    parser.add_argument("--pairs", type=int, default=8, help="preference pairs per user context")
    parser.add_argument("--new-tokens", type=int, default=None, help="new tokens per summary (64; 8 tiny)")
    parser.add_argument("--judge-pairs", type=int, default=None, help="pairs for prefer_batch (512; 16 tiny)")
    parser.add_argument("--prefer-calls", type=int, default=None, help="timed prefer calls (20; 3 tiny)")
    parser.add_argument("--coadapt-iterations", type=int, default=2, help="first one is a warm-up; 0 skips")
    args = parser.parse_args()
    tiny = args.scale == "tiny"
    args.users = args.users or (4 if tiny else 64)
    args.new_tokens = args.new_tokens or (8 if tiny else 64)
    args.judge_pairs = args.judge_pairs or (16 if tiny else 512)
    args.prefer_calls = args.prefer_calls or (3 if tiny else 20)

    from plus_sdk.backends.local import SharedBase
    from plus_sdk.models import load_tokenizer

    cuda = torch.cuda.is_available()
    device, dtype = ("cuda", torch.bfloat16) if cuda else ("cpu", torch.float32)
    gpu = torch.cuda.get_device_name(0) if cuda else f"{platform.machine()} CPU"
    started = time.perf_counter()
    peak, bw = matmul_flops(device, dtype), bandwidth(device)
    work = Path(args.work) / args.scale
    tokenizer = load_tokenizer(None)
    summarizer_shape, reward_shape = SCALES[args.scale]
    summarizer_dir = build_model(summarizer_shape, work / summarizer_shape, tokenizer, device, dtype)
    reward_dir = summarizer_dir if reward_shape == summarizer_shape else build_model(
        reward_shape, work / reward_shape, tokenizer, device, dtype)
    summary_base = SharedBase.load(str(summarizer_dir), device=device, dtype=dtype, share=False)
    reward_base = SharedBase.load(str(reward_dir), device=device, dtype=dtype, share=False)
    contexts = make_contexts(args.users, args.pairs)
    result: dict[str, Any] = {"device": gpu, "scale": args.scale, "dtype": str(dtype).removeprefix("torch."),
                              "settings": vars(args), "matmul_tflops": peak / 1e12, "bandwidth_gb_s": bw / 1e9}
    result["generation"] = generation_phase(summary_base, contexts, args.new_tokens, cuda, peak, bw)
    result["scoring"] = scoring_phase(summary_base, reward_base, contexts, args.judge_pairs, args.prefer_calls,
                                      peak, bw)
    del summary_base, reward_base
    if cuda:
        torch.cuda.empty_cache()
    if args.coadapt_iterations > 0:
        result["coadapt"] = coadapt_phase(summarizer_dir, reward_dir, work, args, cuda, peak)
    result["peak_cuda_gb"] = torch.cuda.max_memory_allocated() / 2**30 if cuda else None
    result["seconds_total"] = time.perf_counter() - started
    name = "".join(ch if ch.isalnum() else "_" for ch in gpu.lower()).strip("_")
    out = Path(args.out or HERE / "results" / f"gpu_speed_{name}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    print(table(result))
    print(f"\n{gpu}: matmul {peak / 1e9:,.1f} GFLOP/s, copy {bw / 1e9:.0f} GB/s, "
          f"{result['seconds_total']:.0f} s in all; written {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
