"""Fill the feature cache for a list of train.py runs before any of them trains (extract_features.py).

Each run's trainer is built exactly as train.py builds it (its parser, config merge and seed,
so the same few-shot sample) and asked to ``prepare_features()``; an --eval-only run (e.g. on
ImageNet-A, whose "train" split is its test set) needs only what the build loads. Identical
configs are done once. Under torchrun the ranks share every encoding (``trainers.features.distributed``);
only rank 0 prints.
"""
import shlex
import tempfile
import time
from dataclasses import dataclass

from tqdm import tqdm
from yacs.config import CfgNode

from datasets.registry import DATASET_REGISTRY

from ..core.logger import log_to
from ..core.registry import TRAINER_REGISTRY, build_trainer
from ..core.run import build_parser, setup_cfg
from ..core.seeding import rng_state, set_random_seed, set_rng_state
from . import distributed


class RunError(ValueError):
    """A run that cannot be prepared; the message names the run."""


@dataclass
class Plan:
    """One run to prepare: its config, whether it trains (not --eval-only / --no-train), and why
    it is skipped ("" when it is not)."""

    name: str
    cfg: CfgNode
    trains: bool
    skip: str = ""


def extract_for_runs(runs, echo=True):
    """Prepare the features of ``runs`` (train.py argument lists). Returns the counts of the
    summary line: runs ``prepared``, ``skipped`` and ``duplicates`` (the same config again), the
    feature caches' ``hits``, ``misses`` and ``encoded`` items (this rank's), and ``seconds``.
    Every config is checked before anything is encoded."""
    start = time.time()
    echo = echo and distributed.is_main()
    plans = [plan_run(argv, f"run {i + 1} of {len(runs)}") for i, argv in enumerate(runs)]
    counts = dict.fromkeys(("prepared", "skipped", "duplicates", "hits", "misses", "encoded"), 0)
    done = set()
    saved_rng = rng_state()  # an in-process caller's random numbers are left as they were
    try:
        for plan in tqdm(plans, desc="Extracting features", unit="run", disable=None if echo else True):
            if plan.skip:
                counts["skipped"] += 1
                if echo:
                    tqdm.write(f"{plan.name}: skipped, {plan.skip}")
                continue
            key = (plan.cfg.dump(), plan.trains)
            if key in done:
                counts["duplicates"] += 1
                continue
            done.add(key)
            cache = prepare_run(plan)
            counts["prepared"] += 1
            for field in ("hits", "misses", "encoded"):
                counts[field] += getattr(cache, field, 0)
    finally:
        set_rng_state(saved_rng)
    counts["seconds"] = round(time.time() - start, 1)
    if echo:
        print(summary(counts))
    return counts


def plan_run(argv, name):
    """The Plan of one run: train.py's parser and config merge (its run folder is ignored)."""
    if isinstance(argv, str) or not all(isinstance(a, (str, int, float)) for a in argv):
        raise RunError(f"{name}: expected a list of train.py arguments, got {argv!r}")
    argv = [str(a) for a in argv]
    name = f"{name} [{shlex.join(argv)}]"
    parser = build_parser()
    parser.error = _fail  # argparse would print its usage and exit
    try:
        args = parser.parse_args(argv)
        args.output_dir = args.resume = ""
        cfg, drew_seed = setup_cfg(args)
        if not cfg.TRAINER.NAME:
            raise ValueError("no trainer given: pass --trainer NAME")
        trainer_cls = TRAINER_REGISTRY.get(cfg.TRAINER.NAME)
        dataset_cls = DATASET_REGISTRY.get(cfg.DATASET.NAME)
    except Exception as e:
        raise RunError(f"{name}: {e}") from e
    plan = Plan(name, cfg, trains=not (args.eval_only or args.no_train))
    if drew_seed:
        plan.skip = "its seed is negative (random), so its few-shot sample is drawn when it runs"
    elif not getattr(trainer_cls, "extractable", lambda _: False)(cfg):
        plan.skip = f"{cfg.TRAINER.NAME} is not feature-level here (it encodes images while it trains)"
    elif hasattr(dataset_cls, "feature_source"):
        plan.skip = f"{cfg.DATASET.NAME} generates its features when it runs (nothing to cache)"
    return plan


def prepare_run(plan):
    """Build the run's trainer as train.py does, console silenced; a training run also prepares
    what training reads (an evaluation reads only what the build loaded: test split, class texts).
    Returns the trainer's feature cache (None for a dataset that serves its own features)."""
    try:
        with tempfile.TemporaryDirectory() as quiet_dir, log_to(quiet_dir, echo=False):
            set_random_seed(plan.cfg.SEED)
            trainer = build_trainer(plan.cfg)
            if plan.trains:
                trainer.prepare_features()
    except Exception as e:
        raise RunError(f"{plan.name}: {e}") from e
    return getattr(trainer.features, "cache", None)


def summary(counts):
    processes = distributed.world_size()
    on = f" on {processes} processes" if processes > 1 else ""
    return (f"Feature extraction{on}: {counts['prepared']} run(s) prepared, {counts['skipped']} skipped, "
            f"{counts['duplicates']} duplicate(s); feature cache {counts['hits']} hit(s), {counts['misses']} miss(es), "
            f"{counts['encoded']:,} item(s) encoded; {counts['seconds']:.1f} s")


def _fail(message):
    raise ValueError(message)
