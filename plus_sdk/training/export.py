"""``plus export RUN_DIR adapters/NAME``: a training run's checkpoint as a loadable adapter bundle.

Both kinds of run export: a co-adaptation run (``plus train``: summarizer and reward model) and a
summary-conditioned reward-model run (``plus train-rm`` with ``method: summary``, or ``oracle``
with ``oracle_as_summary: true``: a reward model whose summaries come from the base summarizer, or
from the summarizer adapter it was trained with). The bundle is what
``PersonalizedJudge.from_pretrained("adapters/NAME")`` reads:

* ``card.json`` — base model, prompt version and task, data, training config, metrics;
* ``summarizer/`` — the summarizer's LoRA adapter;
* ``reward/`` — the reward model's LoRA adapter and ``head.safetensors``.

The bundle is built in a staging folder and moved into place, so a reader never sees half of it.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from pathlib import Path
from typing import Any

from plus_sdk import __version__, prompts
from plus_sdk.bundle import card_markdown, portable_base_name, write_card
from plus_sdk.files import atomic_write_text, check_target_folder, staged_dir
from plus_sdk.models import DEFAULT_MODEL
from plus_sdk.training.checkpoint import SUFFIX, read_checkpoint
from plus_sdk.training.config import load_config, read_config_file
from plus_sdk.training.plots import read_metrics
from plus_sdk.training.ppo.coadapt import CHECKPOINT_DIR, CONFIG_FILE, LATEST_FILE, CoAdaptation, CoadaptConfig
from plus_sdk.training.rm.run import RMRunConfig
from plus_sdk.types import AdapterCard

logger = logging.getLogger(__name__)


def checkpoint_path(run_dir: str | os.PathLike[str], which: str = "best") -> Path:
    """``best`` (highest held-out accuracy), ``latest``, or an explicit file."""
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
    ``init_from`` is dropped for the LM roles: the checkpoint holds every trained weight, so the warm-start
    bundle need not exist any more (encoder roles still read their frozen reader and encoder from it).
    ``work_dir`` redirects what the run writes (e.g. evaluation samples).
    """
    run_dir = Path(run_dir)
    config = load_config(CoadaptConfig, run_dir / CONFIG_FILE, overrides or [])
    config.progress = False
    if config.roles == "lm":  # encoder roles read their frozen reader and encoder from the init_from bundle
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
               name: str | None = None, extra_metrics: dict[str, float] | None = None, force: bool = False) -> Path:
    """Write the bundle of one checkpoint of ``run_dir`` to ``out``, atomically. A non-empty ``out`` is
    refused unless ``force`` (then replaced); the current folder never (``plus_sdk.files.staged_dir``)."""
    run_dir, out = Path(run_dir), Path(out)
    check_target_folder(out, force=force)  # before loading anything
    run, state, path = load_checkpoint_run(run_dir, checkpoint)
    config = load_config(CoadaptConfig, run_dir / CONFIG_FILE)  # as trained (init_from kept for the card)
    with staged_dir(out, force=force) as staging:
        summarizer_dir = staging / "summarizer"
        run.policy_base.save_adapter("summarizer", summarizer_dir)
        run.context_prompts.save_pretrained(summarizer_dir)
        run.reward.save_pretrained(staging / "reward")
        portable_base_name(summarizer_dir, config.model.summarizer_base)
        portable_base_name(staging / "reward", config.model.reward_base or config.model.summarizer_base)
        metrics = run_metrics(run_dir, int(state["iteration"]))
        metrics.update(extra_metrics or {})
        write_bundle_card(staging, name=name or out.name, base_model=config.model.summarizer_base or DEFAULT_MODEL,
                          summary_task=config.data.summary_task, trained_on=_data_name(config), metrics=metrics,
                          config={**config.model_dump(mode="json"), "checkpoint": path.name,
                                  "reward_base_model": config.model.reward_base or config.model.summarizer_base
                                  or DEFAULT_MODEL, "summary_max_new_tokens": config.ppo.max_new_tokens})
    logger.info("Exported %s (iteration %d) to %s", path, state["iteration"], out)
    return out


def write_bundle_card(staging: Path, *, name: str, base_model: str, summary_task: str, trained_on: str,
                      metrics: dict[str, float], config: dict[str, Any]) -> AdapterCard:
    """The card of a trained, summary-conditioned bundle (both kinds of run): ``card.json`` and ``README.md``."""
    card = AdapterCard(name=name, base_model=base_model, prompt_version=prompts.PROMPT_VERSION,
                       summary_task=summary_task, context_kind="pairs", trained=True, method="summary",
                       trained_on=trained_on, metrics=metrics, config=config, plus_sdk_version=__version__)
    write_card(staging, card)
    atomic_write_text(staging / "README.md", card_markdown(card))
    return card


def _data_name(config: Any) -> str:
    data = config.data
    if data.dataset == "pets":
        targets = "" if data.pets_targets == "all" else ", dog-vs-cat targets only"
        return f"pets (n_train={data.n_train}, n_context={data.n_context}, seed={data.seed}{targets})"
    if data.dataset in ("styles", "general"):
        mix = f", {data.pets_share:.0%} Pets" if data.dataset == "general" else ""
        return f"styles{mix} (n_train={data.n_train}, n_context={data.n_context}, seed={data.seed})"
    return f"files {data.train_path}"


#: reward-model methods whose heads read a summary exactly as the judge gives it
EXPORTABLE_RM = "method summary, or method oracle with oracle_as_summary: true"


def is_rm_run(run_dir: str | os.PathLike[str]) -> bool:
    """True for a ``plus train-rm`` run folder (its config names a ``method``)."""
    config = Path(run_dir) / "config.yaml"
    return config.exists() and "method" in read_config_file(config)


def summarizer_folder(path: str | os.PathLike[str]) -> Path:
    """The summarizer adapter folder inside ``path``: a bundle (``summarizer/`` in it, as ``plus
    train-summarizer`` writes) or the adapter folder itself; anything else is a ``FileNotFoundError``."""
    path = Path(path)
    for folder in (path / "summarizer", path):
        if (folder / "adapter_config.json").exists() and (folder / "adapter_model.safetensors").exists():
            return folder
    raise FileNotFoundError(f"--summarizer {path}: no summarizer adapter there (adapter_config.json + "
                            "adapter_model.safetensors, or a bundle with summarizer/); pass the run folder of "
                            "`plus train-summarizer`")


def export_rm_run(run_dir: str | os.PathLike[str], out: str | os.PathLike[str], *, checkpoint: str = "best",
                  name: str | None = None, extra_metrics: dict[str, float] | None = None,
                  summarizer: str | os.PathLike[str] | None = None, force: bool = False) -> Path:
    """Write a summary-conditioned ``plus train-rm`` run as a bundle: ``reward/`` (+ ``summarizer/``) + card.

    ``summarizer``: a trained summarizer (a ``plus train-summarizer`` run, or an adapter folder) to
    ship with the reward model, e.g. to warm-start co-adaptation from both roles; by default a
    ``method: summary`` run ships the summarizer it was trained with, an Oracle run none. ``out`` is
    written as in ``export_run`` (non-empty: only with ``force``).
    """
    run_dir, out = Path(run_dir), Path(out)
    check_target_folder(out, force=force)
    config = load_config(RMRunConfig, run_dir / "config.yaml")
    if not (config.method == "summary" or (config.method == "oracle" and config.oracle_as_summary)):
        raise ValueError(f"{run_dir} trains a '{config.method}' reward model, which reads no summary, so no judge "
                         f"can use it; bundles hold summary-conditioned ones ({EXPORTABLE_RM}). Evaluate this run "
                         f"with `plus eval --run {run_dir}`")
    source = run_dir / ("last" if checkpoint == "latest" else checkpoint)
    if not (source / "head.safetensors").exists():
        raise FileNotFoundError(f"{source} holds no reward model (head.safetensors); use --checkpoint best or last")
    if summarizer is not None:
        summarizer = summarizer_folder(summarizer)
    elif config.method == "summary" and config.summary.adapter:
        summarizer = Path(config.summary.adapter)
    results = run_dir / "eval.json"
    metrics = {k: float(v) for k, v in (json.loads(results.read_text(encoding="utf-8")) if results.exists()
                                        else {}).items() if isinstance(v, (int, float))}
    metrics.update(extra_metrics or {})
    with staged_dir(out, force=force) as staging:
        (staging / "reward").mkdir()
        for file in ("adapter_config.json", "adapter_model.safetensors", "head.safetensors"):
            if (source / file).exists():
                shutil.copy2(source / file, staging / "reward" / file)
        portable_base_name(staging / "reward", config.base)
        if summarizer is not None:
            shutil.copytree(summarizer, staging / "summarizer")
        write_bundle_card(staging, name=name or out.name, base_model=config.base or DEFAULT_MODEL,
                          summary_task=config.summary.task if config.method == "summary" else "generic",
                          trained_on=_data_name(config), metrics=metrics,
                          config={**config.model_dump(mode="json"), "checkpoint": source.name, "run_kind": "train-rm"})
    logger.info("Exported reward-model run %s (%s) to %s", run_dir, source.name, out)
    return out
