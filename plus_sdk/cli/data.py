"""``plus data build NAME --out DIR`` and ``plus data stats DIR``: build and inspect training datasets."""

from __future__ import annotations

import argparse
import json
from typing import Any

from plus_sdk.console import emit_error
from plus_sdk.files import check_target_folder
from plus_sdk.models import load_tokenizer
from plus_sdk.training.config import ConfigError, load_config
from plus_sdk.training.data.build import DATASETS, build_dataset, config_class, write_dataset
from plus_sdk.training.data.contexts import CONTEXT_KINDS
from plus_sdk.training.data.records import validate_jsonl
from plus_sdk.training.data.stats import dataset_stats
from plus_sdk.training.data.upstream import SourceError

#: CLI flag -> config field, per dataset family (None: the flag does not apply)
_FLAGS: dict[str, dict[str, str]] = {
    "pets": {"seed": "seed", "n_train": "n_train", "n_test": "n_test", "n_ood": "n_ood", "n_context": "n_context"},
    "styles": {"seed": "seed", "n_train": "n_train", "n_test": "n_test", "n_context": "n_context"},
    "uf": {
        "seed": "seed",
        "source": "source",
        "max_train": "max_train",
        "max_test": "max_test",
        "max_rows": "max_rows",
    },
    "prism": {
        "seed": "seed",
        "source": "source",
        "max_train": "max_train",
        "max_test": "max_test",
        "n_context": "n_context",
    },
}


def _family(dataset: str) -> str:
    if dataset == "styles":
        return "styles"
    return "pets" if dataset.startswith("pets") else "uf" if dataset.startswith("uf") else "prism"


def _overrides(args: argparse.Namespace) -> list[str]:
    """Dotted overrides from the convenience flags, then ``--set`` items."""
    family = _family(args.dataset)
    overrides = []
    for flag in ("seed", "n_train", "n_test", "n_ood", "n_context", "source", "max_train", "max_test", "max_rows"):
        value = getattr(args, flag)
        if value is None:
            continue
        if flag == "n_context" and family == "uf":
            low = value if args.dataset == "uf-p2" else min(2, value)
            overrides += [f"n_context_min={low}", f"n_context_max={value}"]
            continue
        if flag not in _FLAGS[family]:
            usable = ", ".join("--" + f.replace("_", "-") for f in _FLAGS[family])
            raise ValueError(f"--{flag.replace('_', '-')} does not apply to {args.dataset}; its flags: {usable}")
        overrides.append(f"{_FLAGS[family][flag]}={json.dumps(value) if isinstance(value, str) else value}")
    return overrides + list(getattr(args, "overrides", None) or []) + list(args.set or [])


def cmd_data_build(args: argparse.Namespace) -> int:
    try:
        check_target_folder(args.out, force=args.force)  # refuse at once, before building
        config = load_config(config_class(args.dataset), args.config, _overrides(args))
        result = build_dataset(args.dataset, config, context_kind=args.context_kind, guideline=args.guideline)
    except (ConfigError, SourceError, ValueError) as exc:
        emit_error(f"error: {exc}")
        return 2
    report = write_dataset(result, args.out, fmt=args.format, force=args.force)
    print(json.dumps({k: report[k] for k in ("dataset", "sizes", "skipped", "files", "context_kind")}, indent=2))
    return 0


def _print_table(stats: dict[str, Any]) -> None:
    preset = next((info["preset"] for info in stats.values() if info.get("preset")), None)
    if preset:
        print(f"preset {preset.get('name')}: " + " ".join(f"{k}={v}" for k, v in preset.get("chose", {}).items()))
    for split, info in stats.items():
        print(
            f"[{split}] rows {info['rows']}, users {info['users']} {info['users_per_type']}, "
            f"controversial {info['controversial_share']:.1%}"
        )
        for key in ("rows_per_axis", "rows_per_side", "rows_per_domain"):
            if info.get(key):
                print(f"    {key:<26} " + " ".join(f"{name} {count}" for name, count in info[key].items()))
        for key in ("context_pairs", "context_conversations", "context_tokens", "summarizer_prompt_tokens",
                    "response_tokens"):
            if info.get(key, {}).get("max"):  # skip absent or all-zero distributions
                values = " ".join(f"{name} {value:g}" for name, value in info[key].items())
                print(f"    {key:<26} {values}")
        if info.get("build_counts"):
            print(f"    {'build_counts':<26} " + " ".join(f"{k} {v}" for k, v in info["build_counts"].items()))


def cmd_data_stats(args: argparse.Namespace) -> int:
    tokenizer = None
    if not args.no_tokens:
        tokenizer = load_tokenizer(args.tokenizer)
    try:
        stats = dataset_stats(args.dir, tokenizer)
    except FileNotFoundError as exc:
        emit_error(f"error: {exc}")
        return 2
    if args.json:
        print(json.dumps(stats, indent=2))
    else:
        _print_table(stats)
    return 0


def cmd_data_validate(args: argparse.Namespace) -> int:
    """``plus data validate FILE...``: every bad row of every file, with its line and field."""
    status = 0
    for path in args.files:
        try:
            rows, problems = validate_jsonl(path)
        except FileNotFoundError:
            print(f"{path}: does not exist")
            status = 2
            continue
        for problem in problems[: args.max_problems]:
            print(f"{path}: {problem}")
        if len(problems) > args.max_problems:
            print(f"{path}: ... and {len(problems) - args.max_problems} more problems")
        bad_rows = len({p.line for p in problems})
        print(f"{path}: {rows} rows, {bad_rows} bad" + ("" if bad_rows else " - ready to train on"))
        status = max(status, 2 if problems else 0)
    return status


def add_data_commands(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Register ``plus data build`` and ``plus data stats``."""
    data = sub.add_parser("data", help="Build training datasets and show their statistics.")
    actions = data.add_subparsers(dest="data_command", required=True)

    build = actions.add_parser("build", help="Build a dataset into DIR (train/test/ood .jsonl + build.json).")
    build.add_argument("dataset", choices=DATASETS, help="Which dataset to build.")
    build.add_argument("overrides", nargs="*", metavar="KEY=VALUE",
                       help="Builder settings, e.g. source=vpl vpl_path=DIR (same as --set; before the flags).")
    build.add_argument("--out", required=True, help="Output folder.")
    build.add_argument("--seed", type=int, help="Seed of the builder.")
    build.add_argument("--n-train", type=int, help="Pets: train rows.")
    build.add_argument("--n-test", type=int, help="Pets: held-out rows.")
    build.add_argument("--n-ood", type=int, help="Pets-OOD: bird/rabbit rows (ood.jsonl).")
    build.add_argument("--n-context", type=int, help="Context pairs (Pets, PRISM; UF: the most pairs).")
    build.add_argument("--source", help="UF/PRISM: hub name or local file/folder in the upstream format.")
    build.add_argument("--max-train", type=int, help="UF/PRISM: cap on train records.")
    build.add_argument("--max-test", type=int, help="UF/PRISM: cap on test records.")
    build.add_argument("--max-rows", type=int, help="UF: read at most this many upstream rows.")
    build.add_argument("--context-kind", choices=CONTEXT_KINDS, default="pairs", help="How contexts are shown.")
    build.add_argument("--guideline", help="Guideline text for --context-kind guideline (default: per dataset).")
    build.add_argument("--format", choices=("jsonl", "arrow"), default="jsonl", help="Output format.")
    build.add_argument("--force", action="store_true", help="Replace --out if it is a non-empty folder (never the "
                                                            "current folder).")
    build.add_argument("--config", help="YAML file with builder settings.")
    build.add_argument("--set", action="append", metavar="KEY=VALUE", help="Override any builder setting.")
    build.set_defaults(func=cmd_data_build)

    validate = actions.add_parser("validate", help="Check record files (JSONL) row by row before training.")
    validate.add_argument("files", nargs="+", help="JSONL record files (see docs/own_users.md).")
    validate.add_argument("--max-problems", type=int, default=200, help="Problems printed per file at most.")
    validate.set_defaults(func=cmd_data_validate)

    stats = actions.add_parser("stats", help="Rows, users per type, controversial share, context lengths.")
    stats.add_argument("dir", help="A folder written by `plus data build`.")
    stats.add_argument("--tokenizer", default=None, help="Tokenizer for token counts (default: embedded SmolLM2).")
    stats.add_argument("--no-tokens", action="store_true", help="Skip token counts (no tokenizer needed).")
    stats.add_argument("--json", action="store_true", help="Print JSON instead of a table.")
    stats.set_defaults(func=cmd_data_stats)
