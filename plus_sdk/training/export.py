"""``plus export RUN_DIR adapters/NAME``: a co-adaptation checkpoint as a loadable adapter bundle.

The bundle is what ``PersonalizedJudge.from_pretrained("adapters/NAME")`` reads:

* ``card.json`` — base model, prompt version and task, data, training config, metrics;
* ``summarizer/`` — the summarizer's LoRA adapter;
* ``reward/`` — the reward model's LoRA adapter and ``head.safetensors``.

The bundle is built in a staging folder and moved into place, so a reader never sees half of it.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

from plus_sdk import prompts
from plus_sdk.console import emit
from plus_sdk.training.checkpoint import SUFFIX, read_checkpoint

logger = logging.getLogger(__name__)


def checkpoint_path(run_dir: str | os.PathLike[str], which: str = "best") -> Path:
    """``best`` (highest held-out accuracy), ``latest``, or an explicit file."""
    from plus_sdk.training.coadapt import CHECKPOINT_DIR, LATEST_FILE

    folder = Path(run_dir) / CHECKPOINT_DIR
    if which == "best":
        path = folder / f"best{SUFFIX}"
        if path.exists():
            return path
        logger.warning("%s has no best%s; exporting the latest checkpoint", folder, SUFFIX)
        which = "latest"
    if which == "latest":
        latest = folder / LATEST_FILE
        if not latest.exists():
            raise FileNotFoundError(f"{folder} has no {LATEST_FILE}: the run wrote no checkpoint yet")
        return folder / json.loads(latest.read_text(encoding="utf-8"))["checkpoint"]
    path = Path(which)
    if not path.exists():
        raise FileNotFoundError(f"checkpoint {which} does not exist (use best, latest or a {SUFFIX} file)")
    return path


def load_checkpoint_run(run_dir: str | os.PathLike[str], checkpoint: str = "best", *,
                        work_dir: str | os.PathLike[str] | None = None,
                        threads: int | None = None,
                        overrides: list[str] | None = None) -> tuple[Any, dict[str, Any], Path]:
    """Rebuild a run from its config and load one checkpoint: (CoAdaptation, checkpoint state, path).

    ``overrides`` (``key=value``) change settings that do not touch the weights, e.g.
    ``eval.final_test_rows=200``.
    ``init_from`` is dropped: the checkpoint holds every trained weight, so the warm-start bundle
    need not exist any more. ``work_dir`` redirects what the run writes (e.g. evaluation samples).
    """
    from plus_sdk.training.coadapt import CONFIG_FILE, CoAdaptation, CoadaptConfig
    from plus_sdk.training.config import load_config

    run_dir = Path(run_dir)
    config = load_config(CoadaptConfig, run_dir / CONFIG_FILE, overrides or [])
    config.progress = False
    config.init_from = None
    if work_dir is not None:
        config.run_dir = str(work_dir)
    if threads:
        config.model.threads = threads
    path = checkpoint_path(run_dir, checkpoint)
    run = CoAdaptation(config)
    state = read_checkpoint(path)
    run.load_state_dict(state)
    return run, state, path


def run_metrics(run_dir: str | os.PathLike[str], iteration: int) -> dict[str, float]:
    """Metrics worth a card: before training, at the exported iteration, and the final evaluation."""
    from plus_sdk.training.plots import read_metrics

    path = Path(run_dir) / "metrics.jsonl"
    if not path.exists():
        return {}
    out: dict[str, float] = {}
    for row in read_metrics(path):
        evals = {k: float(v) for k, v in row.items()
                 if k.startswith(("test_", "ood_")) and isinstance(v, (int, float))}
        if row.get("before_training"):
            out.update({f"untrained_{k}": v for k, v in evals.items()})
        elif row.get("phase") == "final":
            out.update({f"final_{k}": v for k, v in evals.items()})
        elif row.get("iteration") == iteration and evals:
            out.update(evals)
    out["iteration"] = float(iteration)
    return out


def export_run(run_dir: str | os.PathLike[str], out: str | os.PathLike[str], *, checkpoint: str = "best",
               name: str | None = None, extra_metrics: dict[str, float] | None = None) -> Path:
    """Write the bundle of one checkpoint of ``run_dir`` to ``out`` (replacing it atomically)."""
    from plus_sdk import __version__
    from plus_sdk.models import DEFAULT_MODEL, atomic_write_text, staged_dir, write_card
    from plus_sdk.training.coadapt import CONFIG_FILE, CoadaptConfig
    from plus_sdk.training.config import load_config
    from plus_sdk.types import AdapterCard

    run_dir, out = Path(run_dir), Path(out)
    run, state, path = load_checkpoint_run(run_dir, checkpoint)
    config = load_config(CoadaptConfig, run_dir / CONFIG_FILE)  # as trained (init_from kept for the card)
    with staged_dir(out) as staging:
        summarizer_dir = staging / "summarizer"
        run.policy_base.save_adapter("summarizer", summarizer_dir)
        run.reward_model.save_pretrained(staging / "reward")
        _portable_base_name(summarizer_dir, config.model.summarizer_base)
        _portable_base_name(staging / "reward", config.model.reward_base or config.model.summarizer_base)
        metrics = run_metrics(run_dir, int(state["iteration"]))
        metrics.update(extra_metrics or {})
        card = AdapterCard(
            name=name or out.name, base_model=config.model.summarizer_base or DEFAULT_MODEL,
            prompt_version=prompts.PROMPT_VERSION, summary_task=config.data.summary_task, context_kind="pairs",
            trained=True, method="summary", trained_on=_data_name(config), metrics=metrics,
            config={**config.model_dump(mode="json"), "checkpoint": path.name,
                    "reward_base_model": config.model.reward_base or config.model.summarizer_base or DEFAULT_MODEL,
                    "summary_max_new_tokens": config.ppo.max_new_tokens},
            plus_sdk_version=__version__,
        )
        write_card(staging, card)
        atomic_write_text(staging / "README.md", card_markdown(card))
    logger.info("Exported %s (iteration %d) to %s", path, state["iteration"], out)
    return out


def card_markdown(card: Any) -> str:
    """The human-readable card (``README.md``) of a bundle: what it is, how it was trained, how it scores."""
    cfg = card.config
    iterations = int(card.metrics.get("iterations", card.metrics.get("iteration", 0)))
    lines = [
        f"# {card.name}",
        "",
        "A plus-sdk adapter bundle: a summarizer LoRA adapter (`summarizer/`) and a reward-model LoRA adapter "
        "with its head (`reward/`), trained together by PLUS co-adaptation. Load it with "
        "`PersonalizedJudge.from_pretrained(path_to_this_folder)`.",
        "",
        f"- Base model (both roles): `{card.base_model}`"
        + (f"; reward model on `{cfg['reward_base_model']}`" if cfg.get("reward_base_model", card.base_model)
           != card.base_model else ""),
        f"- Trained on: {card.trained_on}; summarizer prompt family `{card.summary_task}`, "
        f"prompt version {card.prompt_version}, context kind `{card.context_kind}`",
        f"- Iterations: {iterations or '?'}; checkpoint `{cfg.get('checkpoint', '?')}`"
        + (f"; warm-started from `{cfg['init_from']}`" if cfg.get("init_from") else "")
        + (f" ({' and '.join(cfg['init_roles'])} only)"
           if cfg.get("init_from") and len(cfg.get("init_roles", ())) == 1 else ""),
        f"- Written by plus-sdk {card.plus_sdk_version} on {card.created_at:%Y-%m-%d}",
        "",
        "| metric | value |",
        "| --- | --- |",
    ]
    lines += [f"| {key} | {value:.4g} |" for key, value in sorted(card.metrics.items())]
    lines += ["", "`card.json` holds the same facts and the whole training configuration.", ""]
    return "\n".join(lines)


def _portable_base_name(folder: Path, base: str | None) -> None:
    """Name the base in ``adapter_config.json`` by its id, not by this machine's cache path."""
    from plus_sdk.models import DEFAULT_HUB_ID, atomic_write_text, is_default

    path = folder / "adapter_config.json"
    if path.exists():
        data = json.loads(path.read_text(encoding="utf-8"))
        data["base_model_name_or_path"] = DEFAULT_HUB_ID if is_default(base) else str(base)
        atomic_write_text(path, json.dumps(data, indent=2))


def _data_name(config: Any) -> str:
    data = config.data
    if data.dataset == "pets":
        targets = "" if data.pets_targets == "all" else ", dog-vs-cat targets only"
        return f"pets (n_train={data.n_train}, n_context={data.n_context}, seed={data.seed}{targets})"
    return f"jsonl {data.train_path}"


def cmd_export(args: Any) -> int:
    extra = json.loads(Path(args.metrics).read_text(encoding="utf-8")) if args.metrics else None
    if extra is not None:
        extra = {k: float(v) for k, v in extra.items() if isinstance(v, (int, float))}
    out = export_run(args.run_dir, args.out, checkpoint=args.checkpoint, name=args.name, extra_metrics=extra)
    emit(json.dumps({"bundle": str(out)}))
    return 0


def add_export_command(sub: Any) -> None:
    """Register ``plus export``."""
    p = sub.add_parser("export", help="write a run's checkpoint as an adapter bundle (card + summarizer + reward)")
    p.add_argument("run_dir")
    p.add_argument("out", help="bundle folder, e.g. adapters/pets-smollm2")
    p.add_argument("--checkpoint", default="best", help="best (default), latest, or a checkpoint .pt file")
    p.add_argument("--name", default=None, help="bundle name in the card (default: the folder name)")
    p.add_argument("--metrics", default=None, help="JSON file of extra flat metrics to put in the card")
    p.set_defaults(func=cmd_export)
