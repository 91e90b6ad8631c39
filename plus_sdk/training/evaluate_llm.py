"""Evaluations of PLUS summaries on models that are never fine-tuned (paper App. D–E).

- ``plus eval-judge``: an LLM judge picks the preferred response of each held-out pair, once
  with the user's summary in its prompt and once without. Which response is shown first is
  drawn per item (seeded) and is the same in both conditions, so the only difference between
  them is the summary.
- ``plus eval-generate``: a model answers each (user, prompt) twice, with and without the
  summary (under a word budget); a given reward model (e.g. one conditioned on the user's
  stated preferences through ``prompts.oracle_condition``) scores both; the win rate of the
  personalized reply is reported.

Both read ``TrainingRecord`` JSONL files, show progress bars, and write into an output folder:
``items.jsonl`` (one line per finished item, appended as it goes; a rerun skips the items
already there, so an interrupted run resumes), ``results.json`` and ``results.md``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import random
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, Literal

from pydantic import Field
from tqdm.auto import tqdm

from plus_sdk import prompts
from plus_sdk.backends import make_backend
from plus_sdk.backends.base import ChatBackend
from plus_sdk.backends.local import LocalBackend, LocalModel
from plus_sdk.bundle import find_bundle
from plus_sdk.files import atomic_write_text
from plus_sdk.generator import PersonalizedGenerator
from plus_sdk.inputs import resolve_summaries
from plus_sdk.judge import PersonalizedJudge
from plus_sdk.reward import PersonalizedRewardModel
from plus_sdk.summarizer import Summarizer
from plus_sdk.training.config import StrictConfig
from plus_sdk.training.data.records import TrainingRecord, read_jsonl
from plus_sdk.types import SamplingConfig

logger = logging.getLogger(__name__)

ITEMS_FILE = "items.jsonl"
RESULTS_JSON = "results.json"
RESULTS_MD = "results.md"


# ---------------------------------------------------------------------------------------
# Configs
# ---------------------------------------------------------------------------------------


class _EvalConfig(StrictConfig):
    data: str = Field(description="TrainingRecord JSONL file to evaluate on.")
    out: str = Field(description="Output folder (items.jsonl, results.json, results.md); reruns resume here.")
    split: str | None = Field(default="test", description="Keep only records of this split (None: all).")
    limit: int | None = Field(default=None, ge=1, description="Evaluate at most this many records (first ones).")
    backend: Literal["local", "openai", "vllm"] = Field(default="local", description="Engine of the evaluated LLM.")
    model: str | None = Field(default=None, description="Model of the evaluated LLM (name/folder; None: default).")
    base_url: str | None = Field(default=None, description="OpenAI-compatible server URL (backend=openai).")
    api_key_env: str = Field(default="OPENAI_API_KEY", description="Environment variable holding the API key.")
    concurrency: int = Field(default=8, ge=1, description="Requests in flight (backend=openai).")
    summarizer: str | None = Field(default=None, description="Summarizer bundle or base model (None: the default "
                                                             "base model, untrained).")
    summary_task: str = Field(default="generic", description="Summarizer prompt family (e.g. 'pets').")
    device: str | None = Field(default=None, description="Torch device of local models (None: auto).")
    batch_size: int = Field(default=16, ge=1, description="Items per step (and per results flush).")
    seed: int = Field(default=0, description="Seed of the option order.")


class JudgeEvalConfig(_EvalConfig):
    """Settings of ``plus eval-judge``."""

    debias: bool = Field(default=False, description="Ask both option orders and average (cancels position bias).")
    summary_source: Literal["summarizer", "oracle"] = Field(
        default="summarizer", description="Where the 'with summary' text comes from: the summarizer run on the "
                                          "record's context, or the record's true description (an upper bound).")
    max_new_tokens: int = Field(default=32, ge=1, description="Tokens of the judge's answer.")


class GenerateEvalConfig(_EvalConfig):
    """Settings of ``plus eval-generate``."""

    reward_model: str | None = Field(
        default=None, description="Scoring reward model: a bundle or a folder with a LoRA + head.safetensors "
                                  "(None: default base, untrained).")
    condition: Literal["oracle", "summary", "none"] = Field(
        default="oracle", description="How the scoring RM is conditioned: the record's stated preferences "
                                      "(oracle), the generated summary, or nothing.")
    max_words: int = Field(default=100, ge=1, description="Word budget of each reply.")
    max_new_tokens: int = Field(default=192, ge=1, description="Token cap of each reply.")


# ---------------------------------------------------------------------------------------
# Shared plumbing: records, resumable item files, builders
# ---------------------------------------------------------------------------------------


def item_key(index: int, record: TrainingRecord) -> str:
    """A stable id of one evaluated record (position + content), used to resume."""
    blob = "\x1f".join([record.user_id, record.prompt, record.chosen, record.rejected]).encode()
    return f"{index:06d}-{hashlib.sha256(blob).hexdigest()[:10]}"


def load_records(config: _EvalConfig) -> list[TrainingRecord]:
    """The records to evaluate: the split filter, then the limit."""
    records = read_jsonl(config.data)
    if config.split is not None:
        records = [r for r in records if r.split == config.split]
    if not records:
        raise ValueError(f"{config.data} has no records with split={config.split!r}; set split= to one it has")
    return records[: config.limit] if config.limit else records


def read_done(folder: Path) -> dict[str, dict[str, Any]]:
    """Finished items of an earlier run (a torn last line, from a crash, is ignored)."""
    path = folder / ITEMS_FILE
    done: dict[str, dict[str, Any]] = {}
    if not path.exists():
        return done
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            logger.warning("ignoring a torn line in %s", path)
            continue
        done[row["key"]] = row
    return done


def append_items(folder: Path, rows: Iterable[dict[str, Any]]) -> None:
    """Append finished items and flush them to disk."""
    with (folder / ITEMS_FILE).open("a", encoding="utf-8") as handle:
        for row in rows:
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")
        handle.flush()
        os.fsync(handle.fileno())


def make_eval_backend(config: _EvalConfig) -> ChatBackend:
    """The evaluated LLM."""
    if config.backend == "openai":
        if not config.model:
            raise ValueError("backend=openai needs model= (the server's model name)")
        return make_backend("openai", model=config.model, base_url=config.base_url, api_key_env=config.api_key_env,
                            concurrency=config.concurrency)
    if config.backend == "vllm":
        return make_backend("vllm", model=config.model)
    return make_backend("local", model=config.model, device=config.device, batch_size=config.batch_size)


def make_summarizer(config: _EvalConfig) -> Summarizer:
    """The summarizer: a bundle's, or the plain base model with the configured prompt family."""
    bundle = find_bundle(config.summarizer)
    if bundle is not None:
        return Summarizer.from_pretrained(bundle, device=config.device)

    model = LocalModel.load(config.summarizer, device=config.device)
    return Summarizer(LocalBackend(model, batch_size=config.batch_size), task=config.summary_task)


def run_items(records: list[TrainingRecord], folder: Path, batch_size: int, desc: str,
              step: Callable[[list[tuple[str, TrainingRecord]]], list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """Apply ``step`` to the unfinished items in batches, appending results; returns every item's row."""
    folder.mkdir(parents=True, exist_ok=True)
    done = read_done(folder)
    keyed = [(item_key(i, r), r) for i, r in enumerate(records)]
    todo = [(k, r) for k, r in keyed if k not in done]
    if done:
        logger.info("resuming: %d of %d items already done", len(keyed) - len(todo), len(keyed))
    bar = tqdm(total=len(keyed), initial=len(keyed) - len(todo), desc=desc, unit="item")
    for start in range(0, len(todo), batch_size):
        rows = step(todo[start : start + batch_size])
        append_items(folder, rows)
        done.update({row["key"]: row for row in rows})
        bar.update(len(rows))
    bar.close()
    return [done[k] for k, _ in keyed]


def _rate(values: list[float]) -> float | None:
    return round(sum(values) / len(values), 4) if values else None


def write_results(folder: Path, results: dict[str, Any], markdown: str) -> None:
    atomic_write_text(folder / RESULTS_JSON, json.dumps(results, indent=2))
    atomic_write_text(folder / RESULTS_MD, markdown)


# ---------------------------------------------------------------------------------------
# Judge accuracy with vs without summaries
# ---------------------------------------------------------------------------------------


def chosen_shown_first(seed: int, key: str) -> bool:
    """Whether the chosen response is Option 1 for this item (same in both conditions)."""
    return random.Random(f"{seed}/{key}").random() < 0.5


def _correct(p_chosen: float) -> float:
    """1 if the judge picked the chosen response, 0 if the other, 0.5 for a tie or no answer."""
    return 1.0 if p_chosen > 0.5 else 0.0 if p_chosen < 0.5 else 0.5


def _outcome(p_a: float, chosen_first: bool) -> dict[str, Any]:
    """One condition's result; ``a`` was shown as Option 1 (``picked_option_1`` is None for a tie)."""
    p_chosen = p_a if chosen_first else 1.0 - p_a
    picked_1 = None if p_a == 0.5 else p_a > 0.5
    return {"p_chosen": p_chosen, "correct": _correct(p_chosen), "picked_option_1": picked_1}


def personal_input(record: TrainingRecord, source: str) -> Any:
    """What the judge gets in the 'with summary' condition: the context, or the true description."""
    if source == "oracle":
        if not record.oracle:
            raise ValueError(f"record of user {record.user_id} has no 'oracle' text; use summary_source=summarizer")
        return record.oracle
    return record.context


def judge_step(judge: Any, seed: int, source: str = "summarizer") -> Callable[[list[tuple[str, TrainingRecord]]],
                                                                               list[dict[str, Any]]]:
    """One batch of the judge evaluation: both conditions on the same option order."""

    def step(batch: list[tuple[str, TrainingRecord]]) -> list[dict[str, Any]]:
        orders = [chosen_shown_first(seed, key) for key, _ in batch]
        pairs = [(r.chosen, r.rejected) if first else (r.rejected, r.chosen)
                 for (_, r), first in zip(batch, orders, strict=True)]
        with_summary = judge.prefer_batch([(personal_input(r, source), r.prompt, a, b)
                                           for (_, r), (a, b) in zip(batch, pairs, strict=True)])
        without = judge.prefer_batch([(None, r.prompt, a, b) for (_, r), (a, b) in zip(batch, pairs, strict=True)])
        rows = []
        for (key, record), first, pref_s, pref_n in zip(batch, orders, with_summary, without, strict=True):
            rows.append({
                "key": key, "user_id": record.user_id, "user_type": record.user_type,
                "controversial": record.controversial, "chosen_first": first,
                "summary": pref_s.summary.text if pref_s.summary else None,
                "with_summary": _outcome(pref_s.probability, first),
                "without_summary": _outcome(pref_n.probability, first),
            })
        return rows

    return step


def summarize_judge_items(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Accuracies (ties count half) overall, on controversial pairs and per user type."""

    def block(subset: list[dict[str, Any]]) -> dict[str, Any]:
        out: dict[str, Any] = {"n": len(subset)}
        for cond in ("with_summary", "without_summary"):
            out[cond] = {
                "accuracy": _rate([r[cond]["correct"] for r in subset]),
                "ties": _rate([1.0 if r[cond]["correct"] == 0.5 else 0.0 for r in subset]),
                "option_1_rate": _rate([float(r[cond]["picked_option_1"]) for r in subset
                                        if r[cond]["picked_option_1"] is not None]),
            }
        return out

    result = {"all": block(rows), "controversial": block([r for r in rows if r["controversial"]])}
    for user_type in sorted({str(r["user_type"]) for r in rows if r["user_type"] is not None}):
        result[f"user_type={user_type}"] = block([r for r in rows if r["user_type"] == user_type])
    return result


def judge_markdown(results: dict[str, Any]) -> str:
    lines = ["| subset | n | accuracy with summary | accuracy without | ties with / without | "
             "Option-1 rate with / without |", "| --- | --- | --- | --- | --- | --- |"]
    for name, b in results["metrics"].items():
        w, n = b["with_summary"], b["without_summary"]
        lines.append(f"| {name} | {b['n']} | {w['accuracy']} | {n['accuracy']} | {w['ties']} / {n['ties']} | "
                     f"{w['option_1_rate']} / {n['option_1_rate']} |")
    return (f"# LLM-judge accuracy: {results['judge']} on {results['data']}\n\n" + "\n".join(lines) + "\n\n"
            "Ties (no parsable answer, or the two orders disagreeing under debias) count as half right; "
            "the Option-1 rate (position bias) is over non-tied answers.\n")


def evaluate_judge(config: JudgeEvalConfig, *, backend: ChatBackend | None = None,
                   summarizer: Summarizer | None = None) -> dict[str, Any]:
    """Judge accuracy with vs without summaries; writes items.jsonl, results.json, results.md."""
    records = load_records(config)
    backend = backend or make_eval_backend(config)
    if summarizer is None and config.summary_source == "summarizer":
        summarizer = make_summarizer(config)
    judge = PersonalizedJudge(backend=backend, summarizer=summarizer, debias=config.debias,
                              sampling=SamplingConfig(max_new_tokens=config.max_new_tokens))
    folder = Path(config.out)
    rows = run_items(records, folder, config.batch_size, "eval-judge",
                     judge_step(judge, config.seed, config.summary_source))
    results = {"kind": "llm_judge", "judge": backend.model_id,
               "summarizer": summarizer.summarizer_id if summarizer else config.summary_source,
               "data": config.data, "config": config.model_dump(mode="json"),
               "metrics": summarize_judge_items(rows)}
    usage = getattr(backend, "usage", None)
    if usage is not None:
        results["usage"] = usage.as_dict()
    write_results(folder, results, judge_markdown(results))
    return results


# ---------------------------------------------------------------------------------------
# Generation win rate: personalized vs default replies
# ---------------------------------------------------------------------------------------


def scoring_condition(mode: str, record: TrainingRecord, summary_text: str | None) -> str | None:
    """The conditioning turn of the scoring reward model."""
    if mode == "oracle":
        if not record.oracle:
            raise ValueError(f"record of user {record.user_id} has no 'oracle' description; use condition=summary")
        return prompts.oracle_condition(record.oracle)
    if mode == "summary":
        return prompts.summary_condition(summary_text) if summary_text else None
    return None


def generate_step(generator: Any, reward_model: Any, mode: str) -> Callable[[list[tuple[str, TrainingRecord]]],
                                                                             list[dict[str, Any]]]:
    """One batch of the generation evaluation."""

    def step(batch: list[tuple[str, TrainingRecord]]) -> list[dict[str, Any]]:
        summaries = resolve_summaries([r.context for _, r in batch], generator.summarizer)
        personal = generator.generate_batch([(s, r.prompt) for s, (_, r) in zip(summaries, batch, strict=True)])
        default = generator.generate_batch([(None, r.prompt) for _, r in batch])
        sequences = []
        for (_, record), summary, p_text, d_text in zip(batch, summaries, personal, default, strict=True):
            condition = scoring_condition(mode, record, summary.text if summary else None)
            sequences += [reward_model.encode(record.prompt, p_text or " ", condition),
                          reward_model.encode(record.prompt, d_text or " ", condition)]
        rewards = reward_model.score_ids(sequences).tolist()
        rows = []
        for i, ((key, record), summary) in enumerate(zip(batch, summaries, strict=True)):
            r_p, r_d = rewards[2 * i], rewards[2 * i + 1]
            win = 0.5 if personal[i] == default[i] or r_p == r_d else float(r_p > r_d)
            rows.append({"key": key, "user_id": record.user_id, "user_type": record.user_type,
                         "prompt": record.prompt, "summary": summary.text if summary else None,
                         "personalized": personal[i], "default": default[i],
                         "reward_personalized": r_p, "reward_default": r_d, "win": win})
        return rows

    return step


def unique_prompts(records: list[TrainingRecord]) -> list[TrainingRecord]:
    """One record per (user, prompt): a reply is generated once per user and request."""
    seen: set[tuple[str, str]] = set()
    kept = []
    for record in records:
        if (record.user_id, record.prompt) not in seen:
            seen.add((record.user_id, record.prompt))
            kept.append(record)
    return kept


def generate_markdown(results: dict[str, Any]) -> str:
    m = results["metrics"]
    return (f"# Personalized generation: {results['generator']} on {results['data']}\n\n"
            "| n | win rate (personalized) | ties | mean reward personalized | mean reward default |\n"
            "| --- | --- | --- | --- | --- |\n"
            f"| {m['n']} | {m['win_rate']} | {m['ties']} | {m['mean_reward_personalized']} | "
            f"{m['mean_reward_default']} |\n\nScored by {results['reward_model']} conditioned on "
            f"'{results['config']['condition']}'; a tie counts as half a win.\n")


def evaluate_generation(config: GenerateEvalConfig, *, backend: ChatBackend | None = None,
                        summarizer: Summarizer | None = None, reward_model: Any = None) -> dict[str, Any]:
    """Win rate of personalized over default replies; writes items.jsonl, results.json, results.md."""
    records = unique_prompts(load_records(config))
    backend = backend or make_eval_backend(config)
    summarizer = summarizer or make_summarizer(config)
    if reward_model is None:
        reward_model = PersonalizedRewardModel.from_pretrained(config.reward_model, device=config.device)
    generator = PersonalizedGenerator(backend, summarizer, max_words=config.max_words,
                                      sampling=SamplingConfig(max_new_tokens=config.max_new_tokens))
    folder = Path(config.out)
    rows = run_items(records, folder, config.batch_size, "eval-generate",
                     generate_step(generator, reward_model, config.condition))
    metrics = {
        "n": len(rows),
        "win_rate": _rate([r["win"] for r in rows]),
        "ties": _rate([1.0 if r["win"] == 0.5 else 0.0 for r in rows]),
        "mean_reward_personalized": _rate([r["reward_personalized"] for r in rows]),
        "mean_reward_default": _rate([r["reward_default"] for r in rows]),
        "mean_words_personalized": _rate([float(len(r["personalized"].split())) for r in rows]),
        "mean_words_default": _rate([float(len(r["default"].split())) for r in rows]),
    }
    results = {"kind": "generation_win_rate", "generator": backend.model_id, "summarizer": summarizer.summarizer_id,
               "reward_model": reward_model.model_id, "data": config.data, "config": config.model_dump(mode="json"),
               "metrics": metrics}
    write_results(folder, results, generate_markdown(results))
    return results
