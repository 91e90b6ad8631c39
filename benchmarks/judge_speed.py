"""Judge speed: PLUS's fast path against the naive way, on the causal-LM bundle ``pets-smollm2``.

The fast path measured here (prefix-shared scoring by the LM reward model) is the paper's design;
the encoder-path default ``general-smollm2`` is timed through the public API by
``benchmarks/default_speed.py``.

For each configuration (pairs per user x users) one fresh subprocess measures, back to back:

- **fast, cold**: ``judge.prefer_batch`` on all items with an empty summary cache (each
  user summarized once, in batches), then prefix-shared scoring;
- **fast, warm**: the same call again with the summaries cached (the steady state);
- **fast, prefer**: one ``judge.prefer`` call per pair (warm);
- **naive**: for each pair, summarize the context again (plain ``generate``), then two
  independent full forward passes of a plain ``transformers.AutoModel`` + the same head.
  Its cost per pair does not depend on the other pairs, so it is timed on a sample of
  pairs (one per round) and its pairs/s is 1 / median seconds per pair.

Peak memory is ``resource.getrusage(RUSAGE_SELF).ru_maxrss`` (torch allocations are
invisible to tracemalloc): the fast numbers are read before the naive models are loaded,
and the naive peak comes from its own subprocess. The floor is
2 x non-embedding parameters x unavoidable tokens (each user's common head once, each distinct
prompt rest once, each response suffix once) / the matmul GFLOP/s measured by a
``torch.matmul`` microbenchmark in the same process. ``os.getloadavg()`` is recorded because the machine is shared.

    .venv/bin/python benchmarks/judge_speed.py                 # full grid (20+ min on a busy 2-core box)
    .venv/bin/python benchmarks/judge_speed.py --quick --out /tmp/judge_speed_quick.json   # smoke run
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import torch

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
#: (pairs per user, users), most important first. "Many users" is 16, not 50: on the shared
#: 2-core machine (load 5-10 during development) 50 users would take well over 10 minutes.
DEFAULT_CONFIGS = [(64, 1), (1, 1), (8, 1), (1, 16), (8, 16)]

TOPICS = ["cats", "dogs", "parrots", "rabbits", "goldfish", "hamsters", "tortoises", "horses"]
ASKS = ["Tell me something interesting about {t}.", "Give me one practical tip for owners of {t}.",
        "What do {t} need to stay healthy?", "Explain how {t} show that they are happy.",
        "How much exercise do {t} need each day?", "What should a first-time owner of {t} buy?",
        "Describe a typical day in the life of {t}.", "What mistakes do people make when caring for {t}?"]
SENTENCES = ["{T} are curious animals that explore every corner of a new home.",
             "Keep fresh water available at all times and clean the bowl daily.",
             "A regular routine helps {t} feel safe and reduces stress.",
             "Ask a veterinarian about vaccinations during the first month.",
             "Many owners find that {t} respond well to gentle, consistent training.",
             "Toys that change every week keep {t} from getting bored.",
             "Watch for changes in appetite, which are often the first sign of illness.",
             "{T} usually sleep more than people expect, so give them a quiet corner."]


#: The bundle whose LM reward model this benchmark times (the paper's design).
LM_BUNDLE = "pets-smollm2"


# ---------------------------------------------------------------------------------------------- workload
def make_workload(users: int, pairs: int) -> list[tuple[dict[str, Any], str, str, str]]:
    """Deterministic judging items: ``pairs`` distinct prompts per user, responses of varied length."""
    demo = [u for u in json.loads((ROOT / "plus_sdk" / "data" / "demo_users.json").read_text())["users"]
            if u["context"].get("examples")]  # users described by preference pairs
    items = []
    for u in range(users):
        context = json.loads(json.dumps(demo[u % len(demo)]["context"]))
        context["user_id"] = f"bench-{u}"
        topic = TOPICS[u % len(TOPICS)]
        context["examples"].append({"prompt": f"Which animal should I read about (note {u})?",
                                    "chosen": f"Read about {topic}.", "rejected": "Read about insects."})
        for j in range(pairs):  # distinct prompts for up to 64 pairs per user
            t = TOPICS[(u + j // len(ASKS)) % len(TOPICS)]
            prompt = ASKS[j % len(ASKS)].format(t=t)
            a = " ".join(SENTENCES[(j + k) % len(SENTENCES)] for k in range(1 + j % 3))
            b = " ".join(SENTENCES[(j + 3 + k) % len(SENTENCES)] for k in range(1 + (j + 1) % 4))
            items.append((context, prompt, a.format(t=t, T=t.capitalize()), b.format(t=t, T=t.capitalize())))
    return items


# ---------------------------------------------------------------------------------------------- measures
def matmul_gflops(size: int = 1024, reps: int = 20) -> float:
    """Best-of-three fp32 ``torch.matmul`` throughput of this machine, in GFLOP/s."""
    a, b = torch.randn(size, size), torch.randn(size, size)
    for _ in range(3):
        a @ b
    best = 0.0
    for _ in range(3):
        start = time.perf_counter()
        for _ in range(reps):
            a @ b
        best = max(best, 2 * size**3 * reps / (time.perf_counter() - start) / 1e9)
    return best


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def summary_stats(latencies: list[float], pairs_per_call: int) -> dict[str, float]:
    return {"calls": len(latencies), "pairs_per_call": pairs_per_call,
            "pairs_per_s": pairs_per_call / statistics.median(latencies),
            "p50_s": statistics.median(latencies), "p95_s": pct(latencies, 0.95)}


# ---------------------------------------------------------------------------------------------- naive way
class Naive:
    """Plain transformers: summarize every pair again, then two full forward passes."""

    def __init__(self, head_state: dict[str, torch.Tensor]) -> None:
        from transformers import AutoModel, AutoModelForCausalLM, AutoTokenizer

        from plus_sdk.models import default_model_dir

        folder = default_model_dir()
        self.tok = AutoTokenizer.from_pretrained(folder)
        self.lm = AutoModelForCausalLM.from_pretrained(folder).eval()
        self.body = AutoModel.from_pretrained(folder).eval()
        self.head = torch.nn.Linear(self.body.config.hidden_size, head_state["linear.weight"].shape[0])
        self.head.load_state_dict({k.removeprefix("linear."): v for k, v in head_state.items()})

    @torch.no_grad()
    def summarize(self, messages: list[dict[str, str]]) -> str:
        from plus_sdk import prompts

        ids = self.tok.apply_chat_template(messages, add_generation_prompt=True, return_tensors="pt",
                                           return_dict=True)
        out = self.lm.generate(**ids, max_new_tokens=96, do_sample=False, pad_token_id=self.tok.pad_token_id)
        return prompts.extract_summary(self.tok.decode(out[0, ids["input_ids"].shape[1]:], skip_special_tokens=True))

    @torch.no_grad()
    def reward(self, summary: str, prompt: str, response: str) -> float:
        from plus_sdk import prompts

        messages = prompts.reward_messages(prompt, response, condition=prompts.summary_condition(summary))
        ids = self.tok.apply_chat_template(messages, return_tensors="pt", return_dict=True)["input_ids"]
        hidden = self.body(input_ids=ids).last_hidden_state[:, -1]
        return float(self.head(hidden)[0, 0])

    def prefer(self, summarizer_messages: list[dict[str, str]], prompt: str, a: str, b: str) -> tuple[float, float]:
        """Seconds spent (summarizing, scoring) on one pair."""
        start = time.perf_counter()
        summary = self.summarize(summarizer_messages)
        mid = time.perf_counter()
        self.reward(summary, prompt, a)
        self.reward(summary, prompt, b)
        return mid - start, time.perf_counter() - mid


# ---------------------------------------------------------------------------------------------- worker
def unavoidable_tokens(judge: Any, items: list[tuple[Any, str, str, str]]) -> int:
    """Distinct prefix tokens + every response suffix, with the summaries the judge uses."""
    summaries = [judge.summary_for(ctx) for ctx, *_ in items]
    triples = [(s, p, r) for s, (_, p, a, b) in zip(summaries, items, strict=True) for r in (a, b)]
    pairs = judge.reward_model.encode_items(triples)
    return sum(len(p) for p in {tuple(p) for p, _ in pairs}) + sum(len(s) for _, s in pairs)


def timed(fn: Any, *args: Any) -> float:
    start = time.perf_counter()
    fn(*args)
    return time.perf_counter() - start


def tree_tokens(judge: Any, items: list[tuple[Any, str, str, str]]) -> int:
    """Tokens the three-level tree must encode: each user's common head once, each distinct
    prompt rest once, every response suffix (mirrors ``score_prefix_shared``)."""
    from plus_sdk.fast_scoring import common_length

    summaries = [judge.summary_for(ctx) for ctx, *_ in items]
    rm = judge.reward_model
    triples = [(s, p, r) for s, (_, p, a, b) in zip(summaries, items, strict=True) for r in (a, b)]
    pairs = rm.encode_items(triples)
    by_key: dict[Any, set[tuple[int, ...]]] = {}
    for (summary, _, _), (prefix, _) in zip(triples, pairs, strict=True):
        by_key.setdefault(rm.condition_for(summary), set()).add(tuple(prefix))
    total = sum(len(s) for _, s in pairs)
    for distinct in by_key.values():
        head = common_length(list(distinct))
        total += head + sum(len(p) - head for p in distinct) if head else sum(len(p) for p in distinct)
    return total


def run_worker(args: argparse.Namespace) -> dict[str, Any]:
    """One configuration, in rounds: each round times fast (cold, warm, ``prefer``) then naive.

    Interleaving the two ways round by round means a change of load on the shared machine
    hits both alike; medians over rounds are reported.
    """
    from plus_sdk.cache import SummaryCache
    from plus_sdk.judge import PersonalizedJudge

    torch.manual_seed(0)
    torch.set_num_threads(args.threads)
    load_start = os.getloadavg()
    gflops = matmul_gflops()
    items = make_workload(args.users, args.pairs)
    n = len(items)
    judge = PersonalizedJudge.from_pretrained(LM_BUNDLE)
    rm, summarizer = judge.reward_model, judge.summarizer
    assert rm is not None and summarizer is not None
    judge.prefer_batch(items[:1])  # warm-up: kernels, tokenizer, one summary
    out: dict[str, Any] = {"pairs_per_user": args.pairs, "users": args.users, "pairs": n, "rounds": args.rounds,
                           "threads": args.threads, "matmul_gflops": gflops, "rss_after_load_mb": peak_rss_mb()}
    naive: Naive | None = None
    cold: list[float] = []
    warm: list[float] = []
    unshared: list[float] = []
    single: list[float] = []
    summarize_s: list[float] = []
    score_s: list[float] = []
    singles = items[: args.single_sample]
    for r in range(args.rounds):
        summarizer.cache = SummaryCache()
        cold.append(timed(judge.prefer_batch, items))
        out["summaries_generated_cold"] = summarizer.cache.misses
        start = time.perf_counter()
        fast_prefs = judge.prefer_batch(items)
        warm.append(time.perf_counter() - start)
        out["summaries_generated_after_warm"] = summarizer.cache.misses  # unchanged: all cached
        if args.unshared and r == 0:
            rm.prefix_sharing = False
            unshared.append(timed(judge.prefer_batch, items))
            rm.prefix_sharing = True
        single += [timed(judge.prefer, *item) for item in singles]
        if naive is None:
            out["fast_peak_rss_mb"] = peak_rss_mb()  # before the naive models exist
            naive = Naive({k: v.float() for k, v in rm.head.state_dict().items()})
        for k in range(args.naive_per_round):
            ctx, prompt, a, b = items[(r * args.naive_per_round + k) * 7 % n]
            s, sc = naive.prefer(summarizer_messages(ctx), prompt, a, b)
            summarize_s.append(s)
            score_s.append(sc)
    assert naive is not None
    out["fast_batch_cold"] = summary_stats(cold, n)
    out["fast_batch_warm"] = summary_stats(warm, n)
    if unshared:
        out["sdk_batch_warm_unshared"] = summary_stats(unshared, n)
    out["fast_prefer_warm"] = summary_stats(single, 1)
    total = [a + b for a, b in zip(summarize_s, score_s, strict=True)]
    out["naive"] = {**summary_stats(total, 1), "summarize_s_median": statistics.median(summarize_s),
                    "score_s_median": statistics.median(score_s),
                    "scoring_only_pairs_per_s": 1 / statistics.median(score_s)}
    gaps = []  # same summary, same ids: the naive rewards must equal the fast ones
    for (_, prompt, a, b), pref in list(zip(items, fast_prefs, strict=True))[:2]:
        text = pref.summary.text if pref.summary else ""
        gaps += [abs(naive.reward(text, prompt, a) - pref.rewards[0]),
                 abs(naive.reward(text, prompt, b) - pref.rewards[1])]
    out["naive_vs_fast_max_abs_reward_gap"] = max(gaps)

    from plus_sdk.training.ppo.speed import non_embedding_parameters

    tokens = tree_tokens(judge, items)
    params = non_embedding_parameters(rm.model.base.model)
    floor_s = 2 * params * tokens / (gflops * 1e9)
    out["floor"] = {"unavoidable_tokens": tokens, "prefix_level_tokens": unavoidable_tokens(judge, items),
                    "non_embedding_params": params, "floor_s": floor_s,
                    "floor_pairs_per_s": n / floor_s,
                    "fast_warm_over_floor": out["fast_batch_warm"]["p50_s"] / floor_s}
    naive_pps = out["naive"]["pairs_per_s"]
    out["ratios"] = {
        "batch_cold_vs_naive": out["fast_batch_cold"]["pairs_per_s"] / naive_pps,
        "batch_warm_vs_naive": out["fast_batch_warm"]["pairs_per_s"] / naive_pps,
        "prefer_warm_vs_naive": out["fast_prefer_warm"]["pairs_per_s"] / naive_pps,
        "batch_warm_vs_naive_scoring_only": out["fast_batch_warm"]["pairs_per_s"]
        / out["naive"]["scoring_only_pairs_per_s"],
    }
    if unshared:
        out["ratios"]["batch_warm_shared_vs_unshared"] = (out["fast_batch_warm"]["pairs_per_s"]
                                                         / out["sdk_batch_warm_unshared"]["pairs_per_s"])
    out["loadavg_start"] = list(load_start)
    out["loadavg_end"] = list(os.getloadavg())
    return out


def summarizer_messages(context: dict[str, Any]) -> list[dict[str, str]]:
    """The summarizer prompt the naive way uses (the SDK's template, no truncation)."""
    from plus_sdk import prompts
    from plus_sdk.inputs import as_context

    return prompts.summarizer_messages(as_context(context), "generic")


def run_naive_memory(args: argparse.Namespace) -> dict[str, Any]:
    """Peak memory of the naive way alone (its own process, two pairs)."""
    from plus_sdk.reward import RewardHead

    torch.set_num_threads(args.threads)
    naive = Naive(RewardHead(576).state_dict())
    for ctx, prompt, a, b in make_workload(1, 1):
        naive.prefer(summarizer_messages(ctx), prompt, a, b)
    return {"naive_peak_rss_mb": peak_rss_mb()}


# ---------------------------------------------------------------------------------------------- driver
def spawn(extra: list[str], timeout: float) -> dict[str, Any]:
    cmd = [sys.executable, str(Path(__file__).resolve()), *extra]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=ROOT, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(extra)} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def markdown_table(results: list[dict[str, Any]]) -> str:
    head = ("| pairs/user x users | naive pairs/s | fast `prefer_batch` cold pairs/s (ratio) | "
            "warm pairs/s (ratio) | warm p50 / p95 s | `prefer` warm pairs/s (ratio) | `prefer` p50 / p95 s | "
            "floor pairs/s (warm / floor) | peak RSS fast MB | loadavg |\n|" + " --- |" * 10)
    rows = [head]
    for r in results:
        ra = r["ratios"]
        rows.append(
            f"| {r['pairs_per_user']} x {r['users']} | {r['naive']['pairs_per_s']:.2f} | "
            f"{r['fast_batch_cold']['pairs_per_s']:.2f} ({ra['batch_cold_vs_naive']:.1f}x) | "
            f"{r['fast_batch_warm']['pairs_per_s']:.2f} ({ra['batch_warm_vs_naive']:.1f}x) | "
            f"{r['fast_batch_warm']['p50_s']:.2f} / {r['fast_batch_warm']['p95_s']:.2f} | "
            f"{r['fast_prefer_warm']['pairs_per_s']:.2f} ({ra['prefer_warm_vs_naive']:.1f}x) | "
            f"{r['fast_prefer_warm']['p50_s']:.2f} / {r['fast_prefer_warm']['p95_s']:.2f} | "
            f"{r['floor']['floor_pairs_per_s']:.1f} ({r['floor']['fast_warm_over_floor']:.2f}x) | "
            f"{r['fast_peak_rss_mb']:.0f} | {r['loadavg_start'][0]:.1f}-{r['loadavg_end'][0]:.1f} |")
    return "\n".join(rows)


def save(out: Path, results: list[dict[str, Any]], naive_rss: float | None, started: float) -> Path:
    """Write the report atomically (after every configuration, so a cut run keeps its rows)."""
    report = {"machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "torch": torch.__version__},
              "model": "smollm2-135m-instruct (embedded default, untrained head, fp32, SDPA)",
              "naive_peak_rss_mb": naive_rss, "configs": results, "wall_s": time.time() - started}
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp")
    tmp.write_text(json.dumps(report, indent=2))
    os.replace(tmp, out)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worker", action="store_true", help="internal: run one configuration, print JSON")
    parser.add_argument("--naive-memory", action="store_true", help="internal: naive peak memory, print JSON")
    parser.add_argument("--pairs", type=int, default=8, help="pairs per user (worker)")
    parser.add_argument("--users", type=int, default=1, help="users (worker)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds per configuration (medians taken)")
    parser.add_argument("--single-sample", type=int, default=4, help="prefer() calls timed per round")
    parser.add_argument("--naive-per-round", type=int, default=1, help="naive pairs timed per round")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads; 1 is several times faster than 2 on an oversubscribed machine")
    parser.add_argument("--unshared", action="store_true", help="also time prefix_sharing=False")
    parser.add_argument("--configs", default="", help="e.g. '1x1,64x1'; default: the full grid")
    parser.add_argument("--quick", action="store_true", help="tiny grid for a smoke run")
    parser.add_argument("--out", default=str(RESULTS / "judge_speed.json"), help="result JSON path")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    if args.worker:
        print(json.dumps(run_worker(args)))
        return
    if args.naive_memory:
        print(json.dumps(run_naive_memory(args)))
        return
    configs = DEFAULT_CONFIGS
    if args.quick:
        configs = [(1, 1)]
    if args.configs:
        configs = [tuple(int(x) for x in c.split("x")) for c in args.configs.split(",")]  # type: ignore[misc]
    results = []
    started = time.time()
    for pairs, users in configs:
        rounds = args.rounds if pairs * users <= 16 else max(1, args.rounds - 1)
        extra = ["--worker", "--pairs", str(pairs), "--users", str(users), "--rounds", str(rounds),
                 "--single-sample", str(args.single_sample), "--naive-per-round", str(args.naive_per_round),
                 "--threads", str(args.threads)]
        if (pairs, users) == (64, 1) or args.unshared:
            extra.append("--unshared")
        result = spawn(extra, timeout=3600)
        results.append(result)
        save(Path(args.out), results, None, started)
        print(f"{pairs}x{users}: naive {result['naive']['pairs_per_s']:.2f} pairs/s, fast warm "
              f"{result['fast_batch_warm']['pairs_per_s']:.2f}, cold {result['fast_batch_cold']['pairs_per_s']:.2f} "
              f"({time.time() - started:.0f}s)", flush=True)
    memory = spawn(["--naive-memory", "--threads", str(args.threads)], timeout=1800)
    out = save(Path(args.out), results, memory["naive_peak_rss_mb"], started)
    print(markdown_table(results))
    print(f"naive peak RSS: {memory['naive_peak_rss_mb']:.0f} MB; written {out}")


if __name__ == "__main__":
    main()
