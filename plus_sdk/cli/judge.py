"""``plus summarize``, ``plus judge`` and ``plus demo``: the PLUS classes from the shell."""

from __future__ import annotations

import argparse
import json
import time
from importlib import resources
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from plus_sdk.bundle import DEFAULT_BUNDLE
from plus_sdk.cli.spinner import Spinner
from plus_sdk.console import emit, readable_errors
from plus_sdk.inputs import check_item
from plus_sdk.judge import PersonalizedJudge
from plus_sdk.summarizer import Summarizer
from plus_sdk.types import UserContext


def _read_json(path: str) -> Any:
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ValueError(f"--context {path} does not exist") from None
    except IsADirectoryError:
        raise ValueError(f"--context {path} is a folder; give a UserContext JSON file") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"--context {path} is not valid JSON ({exc})") from None


def _load_context_or_summary(args: argparse.Namespace) -> Any:
    """The validated --summary text or --context file; checked before any model loads."""

    if getattr(args, "summary", None) is not None:
        if not args.summary.strip():
            raise ValueError("--summary is empty: give a summary text, or --context FILE")
        return args.summary
    try:
        return UserContext.model_validate(_read_json(args.context))
    except ValidationError as exc:
        raise ValueError(f"--context {args.context} is not a valid UserContext:\n{readable_errors(exc)}") from None


def cmd_summarize(args: argparse.Namespace) -> int:
    context = _load_context_or_summary(args)
    with Spinner() as spin:
        spin.phase("loading the summarizer")
        summarizer = Summarizer.from_pretrained(args.model, device=args.device)
        spin.phase("summarizing")
        summary = summarizer.summarize(context)
    emit(summary.model_dump_json(indent=2))
    return 0


def cmd_judge(args: argparse.Namespace) -> int:
    personal = _load_context_or_summary(args)
    check_item(args.prompt, args.a, args.b)
    with Spinner() as spin:
        spin.phase("loading the judge")
        judge = PersonalizedJudge.from_pretrained(args.model, device=args.device)
        if not isinstance(personal, str):
            spin.phase("summarizing the context")
            personal = judge.summary_for(personal) or personal
        spin.phase("scoring")
        preference = judge.prefer(personal, args.prompt, args.a, args.b)
    emit(preference.model_dump_json(indent=2))
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    users = json.loads(resources.files("plus_sdk.data").joinpath("demo_users.json").read_text(encoding="utf-8"))
    start = time.perf_counter()
    with Spinner() as spin:
        spin.phase("loading the judge")
        judge = PersonalizedJudge.from_pretrained(args.model, device=args.device)
    loaded = time.perf_counter() - start
    if judge.trained:
        card = judge.reward_model.card  # type: ignore[union-attr]
        print(f"Using trained adapters '{card.name}' on {card.base_model} (trained on {card.trained_on}).")
    else:
        print("NOTE: no trained adapters found. This runs the base model with an UNTRAINED reward head:\n"
              "      summaries come from the plain instruct model and the choices below are not meaningful.\n"
              "      Train adapters with `plus train` (see docs/training.md) to get real predictions.")
    print(f"Loaded in {loaded:.1f} s.\n")
    report = []
    for user in users["users"]:
        context = UserContext.model_validate(user["context"])
        t0 = time.perf_counter()
        summary = judge.summary_for(context)
        t_sum = time.perf_counter() - t0
        print(f"== {user['name']} (truly {user['truth']})\nsummary ({t_sum:.1f} s): {summary.text if summary else '-'}")
        for pair in user["pairs"]:
            t0 = time.perf_counter()
            pref = judge.prefer(context, pair["prompt"], pair["a"], pair["b"])
            t_pref = time.perf_counter() - t0
            right = pref.choice == pair["expected"]
            verdict = "a TIE (balanced evidence)" if pref.choice == "tie" else pref.choice.upper()
            picked = pair.get(pref.choice, "-").replace("\n", " / ")
            print(f"  Q: {pair['prompt']}\n  {'✓' if right else '✗'} prefers {verdict} "
                  f"(p={pref.confidence:.2f}, {t_pref * 1000:.0f} ms; truth {pair['expected'].upper()}): "
                  f"{picked[:110]}{'...' if len(picked) > 110 else ''}")
            report.append({"user": user["name"], "truth": user["truth"], "prompt": pair["prompt"],
                           "choice": pref.choice, "expected": pair["expected"], "correct": right,
                           "probability_a": pref.probability, "summary": summary.text if summary else None,
                           "latency_s": t_pref})
        print()
    total = time.perf_counter() - start
    n_right = sum(item["correct"] for item in report)
    print(f"Accuracy: {n_right}/{len(report)} = {n_right / len(report):.0%} right over {len(users['users'])} users "
          f"({total:.1f} s in all).")
    if args.json:
        Path(args.json).write_text(json.dumps({"trained": judge.trained, "total_s": total, "correct": n_right,
                                               "items": report}, indent=2), encoding="utf-8")
    return 0


def _model_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", default=None, help="bundle name or folder, or a base model (default: the default "
                                                  f"bundle, currently {DEFAULT_BUNDLE})")
    p.add_argument("--device", default=None, help="cpu, cuda, cuda:1 ... (default: auto)")


def add_judge_commands(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Register ``plus summarize``, ``plus judge`` and ``plus demo``."""
    p = sub.add_parser("summarize", help="summarize a user's context (JSON UserContext file)")
    p.add_argument("--context", required=True, help="path to a UserContext JSON file")
    _model_arguments(p)
    p.set_defaults(func=cmd_summarize)

    p = sub.add_parser("judge", help="which of two responses does the user prefer?")
    group = p.add_mutually_exclusive_group(required=True)
    group.add_argument("--context", help="path to a UserContext JSON file")
    group.add_argument("--summary", help="a summary text to use instead of a context")
    p.add_argument("--prompt", required=True, help="the user's request")
    p.add_argument("-a", required=True, help="response a")
    p.add_argument("-b", required=True, help="response b")
    _model_arguments(p)
    p.set_defaults(func=cmd_judge)

    p = sub.add_parser("demo", help="summarize and judge a few example users on the default model")
    p.add_argument("--json", default=None, help="also write the results to this JSON file")
    _model_arguments(p)
    p.set_defaults(func=cmd_demo)
