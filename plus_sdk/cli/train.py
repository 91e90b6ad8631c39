"""``plus train``, ``train-rm``, ``eval``, ``eval-judge``, ``eval-generate``, ``plot`` and ``export``.

Needs the training extras (torch, peft, ...): ``plus_sdk.cli`` skips these commands when the
imports below fail. Several processes run ``python -m plus_sdk.cli train CONFIG`` under
``accelerate launch`` or ``torch.distributed.run``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import yaml

from plus_sdk.cli.config_arg import add_config_arguments
from plus_sdk.console import emit
from plus_sdk.files import check_target_folder
from plus_sdk.models import user_bundles_dir
from plus_sdk.training.config import load_config, read_config_file
from plus_sdk.training.distributed import dist_info
from plus_sdk.training.evaluate import markdown_header, markdown_row, write_results
from plus_sdk.training.evaluate_llm import (
    GenerateEvalConfig,
    JudgeEvalConfig,
    evaluate_generation,
    evaluate_judge,
    generate_markdown,
    judge_markdown,
)
from plus_sdk.training.export import export_rm_run, export_run, is_rm_run
from plus_sdk.training.general import GeneralConfig, run_general
from plus_sdk.training.plots import plot_run
from plus_sdk.training.ppo.coadapt import CoadaptConfig, run
from plus_sdk.training.recipes import resolve_recipe
from plus_sdk.training.rm.run import RMRunConfig, evaluate_run, train_rm
from plus_sdk.training.sft import SFTConfig, train_summarizer

# ---------------------------------------------------------------------------------------
# plus train (PLUS co-adaptation)
# ---------------------------------------------------------------------------------------


def add_train_arguments(parser: argparse.ArgumentParser) -> None:
    """The arguments of ``plus train``."""
    parser.add_argument("config", help="YAML recipe: a file, or a shipped recipe's name (styles, pets/oracle, ...)")
    parser.add_argument("overrides", nargs="*", help="dotted overrides, e.g. iterations=50 ppo.actor_lr=1e-4")
    parser.add_argument("--resume", action="store_true", help="continue from RUN_DIR/checkpoints/latest.json")
    parser.add_argument("--run-dir", default=None, help="override run_dir")
    parser.add_argument("--show", action="store_true",
                        help="print the resolved recipe (YAML, overrides applied) and exit without training")


def cmd_train(args: argparse.Namespace) -> int:
    """``plus train CONFIG [--resume] [key=value ...]``; a recipe with ``kind: encoder`` runs ``plus train general``."""
    recipe = resolve_recipe(args.config)
    encoder = read_config_file(recipe).get("kind") == "encoder"
    config = load_config(GeneralConfig if encoder else CoadaptConfig, recipe, list(args.overrides))
    if args.run_dir:
        config.run_dir = args.run_dir
    if getattr(args, "show", False):
        emit(yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False).rstrip("\n"))
        return 0
    if isinstance(config, GeneralConfig):
        emit(json.dumps(run_general(config), indent=2))
        return 0
    final = run(config, resume=args.resume)
    if dist_info()[0] == 0:
        emit(json.dumps(final, indent=2))
    return 0


# ---------------------------------------------------------------------------------------
# plus train-rm / plus eval (reward models)
# ---------------------------------------------------------------------------------------


def cmd_train_rm(args: argparse.Namespace) -> int:
    config = load_config(RMRunConfig, resolve_recipe(args.config) if args.config else None, args.overrides)
    results = train_rm(config)

    emit(markdown_header())
    emit(markdown_row(config.method, results))
    emit(f"run folder: {config.run_dir}")
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    run_dir = Path(args.run)
    config = load_config(RMRunConfig, run_dir / "config.yaml", args.overrides)
    results = evaluate_run(config, checkpoint=run_dir / args.checkpoint)
    path = write_results(results, run_dir if args.out is None else Path(args.out), config.method)
    if args.json:
        emit(json.dumps(results, indent=2, sort_keys=True))
    else:
        emit(markdown_header())
        emit(markdown_row(config.method, results))
        emit(f"results: {path}")
    return 0


# ---------------------------------------------------------------------------------------
# plus eval-judge / plus eval-generate (LLM judge and generation)
# ---------------------------------------------------------------------------------------


def _print_table(results: dict[str, Any], markdown: str, as_json: bool) -> None:
    emit(json.dumps(results, indent=2) if as_json else markdown)


def cmd_eval_judge(args: argparse.Namespace) -> int:
    config = load_config(JudgeEvalConfig, args.config, args.overrides)
    results = evaluate_judge(config)
    _print_table(results, judge_markdown(results), args.json)
    return 0


def cmd_eval_generate(args: argparse.Namespace) -> int:
    config = load_config(GenerateEvalConfig, args.config, args.overrides)
    results = evaluate_generation(config)
    _print_table(results, generate_markdown(results), args.json)
    return 0


# ---------------------------------------------------------------------------------------
# plus plot / plus export (a finished run)
# ---------------------------------------------------------------------------------------


def cmd_plot(args: argparse.Namespace) -> int:
    files = plot_run(args.run_dir, args.out, args.metrics.split(",") if args.metrics else None)

    emit(json.dumps([str(f) for f in files], indent=2))
    return 0


def export_target(out: str, user_bundles: bool) -> Path:
    """Where ``plus export RUN OUT`` writes: the folder OUT, or with ``--user-bundles`` the bundle NAME OUT
    in the user bundle folder (``PLUS_SDK_BUNDLES``, default ``<cache>/bundles``), found by name from anywhere."""
    if not user_bundles:
        return Path(out)
    if not out or "/" in out or "\\" in out or out.startswith((".", "~")):
        raise ValueError(f"--user-bundles takes a bundle NAME as OUT (no slash), not {out!r}: e.g. "
                         "`plus export runs/my-bundle my-bundle --user-bundles`")
    return user_bundles_dir() / out


def cmd_export(args: argparse.Namespace) -> int:
    args.out = export_target(args.out, getattr(args, "user_bundles", False))
    check_target_folder(args.out, force=args.force)  # refuse at once, before reading the run
    extra = json.loads(Path(args.metrics).read_text(encoding="utf-8")) if args.metrics else None
    if extra is not None:
        extra = {k: float(v) for k, v in extra.items() if isinstance(v, (int, float))}
    if is_rm_run(args.run_dir):
        out = export_rm_run(args.run_dir, args.out, checkpoint=args.checkpoint, name=args.name, extra_metrics=extra,
                            summarizer=args.summarizer, force=args.force)
    elif args.summarizer is not None:
        raise ValueError(f"--summarizer applies to `plus train-rm` runs; {args.run_dir} is a co-adaptation run, "
                         "whose bundle already holds its own trained summarizer")
    else:
        out = export_run(args.run_dir, args.out, checkpoint=args.checkpoint, name=args.name, extra_metrics=extra,
                         force=args.force)
    emit(json.dumps({"bundle": str(out)}))
    return 0


def cmd_train_summarizer(args: argparse.Namespace) -> int:
    """``plus train-summarizer CONFIG [key=value ...]``."""
    config = load_config(SFTConfig, resolve_recipe(args.config), list(args.overrides))
    emit(json.dumps(train_summarizer(config), indent=2))
    return 0


# ---------------------------------------------------------------------------------------
# Registration
# ---------------------------------------------------------------------------------------


def add_train_commands(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Register every training command on ``sub``."""
    for name, func, model, text in (
        ("eval-judge", cmd_eval_judge, JudgeEvalConfig, "LLM-judge accuracy with vs without summaries"),
        ("eval-generate", cmd_eval_generate, GenerateEvalConfig, "win rate of personalized vs default replies"),
    ):
        fields = ", ".join(model.model_fields)
        p = sub.add_parser(name, help=text, description=f"{text}. Settings (YAML or key=value): {fields}.")
        add_config_arguments(p, "eval.yaml", "data=test.jsonl out=runs/eval")
        p.add_argument("--json", action="store_true", help="print the results as JSON instead of a table")
        p.set_defaults(func=func)

    p = sub.add_parser("train-rm", help="train a reward model (btl, dpl-*, icl, summary, oracle, vpl)",
                       description="Train a reward model. Settings: " + ", ".join(RMRunConfig.model_fields))
    add_config_arguments(p, "training/pets/btl.yaml", "steps=20 train.lr=3e-4")
    p.set_defaults(func=cmd_train_rm)

    p = sub.add_parser("train-summarizer", help="supervised warm start of a summarizer on true user descriptions",
                       description="Teach a summarizer to write each user's oracle description (optional step "
                                   "before `plus train`). Settings: " + ", ".join(SFTConfig.model_fields))
    p.add_argument("config", help="YAML recipe: a file or a shipped name, e.g. styles/summarizer")
    p.add_argument("overrides", nargs="*", help="settings as key=value, e.g. steps=50 run_dir=runs/sft")
    p.set_defaults(func=cmd_train_summarizer)

    p = sub.add_parser("eval", help="evaluate a trained reward model (accuracy, per type, OOD, margin, ECE)")
    p.add_argument("--run", required=True, help="run folder written by `plus train-rm`")
    p.add_argument("--checkpoint", default="best", help="checkpoint sub-folder: best (default) or last")
    p.add_argument("--out", default=None, help="folder for eval.json / eval.md (default: the run folder)")
    p.add_argument("--json", action="store_true", help="print the results as JSON instead of a table row")
    p.add_argument("overrides", nargs="*", help="config overrides as key=value, e.g. data.n_test=100")
    p.set_defaults(func=cmd_eval)

    p = sub.add_parser("train", help="PLUS co-adaptation: PPO summarizer + NLL reward model (Algorithm 1)")
    add_train_arguments(p)
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("plot", help="PNG curves of a training run (RUN_DIR/metrics.jsonl)")
    p.add_argument("run_dir")
    p.add_argument("--out", default=None, help="output folder (default RUN_DIR/plots)")
    p.add_argument("--metrics", default=None, help="comma-separated metric names (default: the usual ones)")
    p.set_defaults(func=cmd_plot)

    p = sub.add_parser("export", help="write a run's checkpoint as an adapter bundle (card + summarizer + reward); "
                                      "takes `plus train` runs and summary-conditioned `plus train-rm` runs")
    p.add_argument("run_dir")
    p.add_argument("out", help="bundle folder, e.g. adapters/my-bundle (found by name from that folder's parent), or "
                               "with --user-bundles a bare NAME")
    p.add_argument("--user-bundles", action="store_true",
                   help="write the bundle NAME (OUT) into the user bundle folder (PLUS_SDK_BUNDLES, default "
                        "<cache>/bundles), so from_pretrained(NAME) finds it from any folder")
    p.add_argument("--checkpoint", default="best", help="best (default), latest, or a checkpoint .safetensors file")
    p.add_argument("--name", default=None, help="bundle name in the card (default: the folder name)")
    p.add_argument("--force", action="store_true", help="replace OUT if it is a non-empty folder (never the "
                                                        "current folder)")
    p.add_argument("--metrics", default=None, help="JSON file of extra flat metrics to put in the card")
    p.add_argument("--summarizer", default=None, help="train-rm runs: a trained summarizer to ship with the reward "
                                                      "model (a `plus train-summarizer` run folder)")
    p.set_defaults(func=cmd_export)
