r"""Entry point with CoOp's command line:

    python train.py --root DATA --seed 1 --trainer ZeroshotCLIP \
        --dataset-config-file configs/datasets/oxford_pets.yaml \
        --config-file configs/trainers/ZeroshotCLIP/rn50.yaml \
        --output-dir output/oxford_pets/ZeroshotCLIP/rn50/seed1 [--eval-only] [KEY VALUE ...]

Config merge order (Dassl / CoOp): defaults -> our nodes and every trainer's node ->
dataset yaml -> method yaml -> flags -> trailing KEY VALUE pairs. Unlike CoOp, ``--seed 0``
is honoured; a negative seed draws a random one and logs it.

The run folder gets ``log.txt`` (headed by the environment: date, host, command, git commit,
versions, hardware), ``config.yaml`` (the resolved config, reloadable over the defaults with
``merge_from_file``), Dassl's ``tensorboard/`` scalars and the trainer's checkpoints.

A rerun into a folder whose ``log.txt`` is finished (``trainers.core.run_log.run_status``) writes
``log.txt-<timestamp>`` and ``config-<timestamp>.yaml`` as Dassl does, so the result that counts
never changes. A rerun into a folder whose ``log.txt`` did not finish (a run that died) resumes
from the folder's checkpoints and continues ``log.txt`` after a ``===== resumed <date> ... =====``
line (Dassl would start ``log.txt-<timestamp>``), so the result the resume completes is read from
``log.txt`` by every tool here and by CoOp's ``parse_test_res.py``; ``config.yaml`` is rewritten.
An unknown trainer or dataset name stops the run before anything is written.
"""
import argparse
import datetime
import functools
import shlex
import sys
import traceback
from pathlib import Path

from common.atomic_io import atomic_path
from datasets.registry import DATASET_REGISTRY

from .registry import TRAINER_REGISTRY
from .run_log import resumed_line, run_status, stale_if_changed

# torch, open_clip, the config, the trainer and the dataset are imported inside the functions that use
# them, so `python train.py --help` answers at once.
ENTRY_POINT = str(Path(__file__).resolve().parents[2] / "train.py")  # the command a log records


def build_parser():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--root", type=str, default="", help="path to the datasets folder")
    p.add_argument("--output-dir", type=str, default="", help="output directory")
    p.add_argument("--resume", type=str, default="", help="checkpoint directory to resume training from")
    p.add_argument("--seed", type=int, default=None, help="random seed (0 works; negative = random)")
    p.add_argument("--source-domains", type=str, nargs="+", help="source domains (Dassl DA/DG)")
    p.add_argument("--target-domains", type=str, nargs="+", help="target domains (Dassl DA/DG)")
    p.add_argument("--transforms", type=str, nargs="+", help="data augmentation methods")
    p.add_argument("--config-file", type=str, default="", help="path to the method config file")
    p.add_argument("--dataset-config-file", type=str, default="", help="path to the dataset config file")
    p.add_argument("--trainer", type=str, default="", help="name of the trainer")
    p.add_argument("--backbone", type=str, default="", help="CLIP backbone (RN50, ViT-B/16, open_clip name)")
    p.add_argument("--head", type=str, default="", help="name of the head (Dassl)")
    p.add_argument("--eval-only", action="store_true", help="evaluation only")
    p.add_argument("--model-dir", type=str, default="", help="load the model from this directory (eval-only)")
    p.add_argument("--load-epoch", type=int, help="load the model weights of this epoch (eval-only)")
    p.add_argument("--no-train", action="store_true", help="build everything but do not train")
    p.add_argument("opts", default=None, nargs=argparse.REMAINDER, help="KEY VALUE pairs to override the config")
    return p


def setup_cfg(args):
    from .config import get_cfg_default, merge_file, merge_opts, resolve_seed

    cfg = get_cfg_default()
    if args.dataset_config_file:
        merge_file(cfg, args.dataset_config_file)
    if args.config_file:
        merge_file(cfg, args.config_file)
    flags = {
        "DATASET.ROOT": args.root, "OUTPUT_DIR": args.output_dir, "RESUME": args.resume,
        "DATASET.SOURCE_DOMAINS": args.source_domains, "DATASET.TARGET_DOMAINS": args.target_domains,
        "INPUT.TRANSFORMS": args.transforms, "TRAINER.NAME": args.trainer,
        "MODEL.BACKBONE.NAME": args.backbone, "MODEL.HEAD.NAME": args.head,
    }
    for key, value in flags.items():
        if value:
            *parents, leaf = key.split(".")
            functools.reduce(getattr, parents, cfg)[leaf] = value
    if args.seed is not None:
        cfg.SEED = args.seed
    merge_opts(cfg, args.opts or [])
    drew_seed = resolve_seed(cfg)
    cfg.freeze()
    return cfg, drew_seed


def current_config(argv, out):
    """The dump of the config ``train.py --output-dir out argv`` would run with now, and the keys
    that may differ between two such builds without changing the run (a seed drawn at random).
    Torch-free: it reads only yaml and the config nodes."""
    cfg, drew_seed = setup_cfg(build_parser().parse_args(["--output-dir", out, *argv]))
    return cfg.dump(), ("SEED",) if drew_seed else ()


def current_status(out, argv, end_signal=None):
    """``run_status`` of ``out``; a finished run whose config.yaml is not what ``argv`` builds now
    is stale (unfinished), so the runners redo it (the config is built only for a finished run)."""
    status = run_status(out, end_signal)
    if not status.finished:
        return status
    return stale_if_changed(status, *current_config(argv, out))


def print_args(args, cfg):
    print("***************\n** Arguments **\n***************")
    for key in sorted(vars(args)):
        print(f"{key}: {getattr(args, key)}")
    print("************\n** Config **\n************")
    print(cfg)


def save_config(cfg, path):
    """The resolved config as yaml (``merge_file(get_cfg_default(), path)`` rebuilds it), atomically."""

    with atomic_path(path) as tmp, open(tmp, "w") as f:
        f.write(cfg.dump())


def check_registered(cfg):
    """Before any output is written: the trainer and the dataset are registered names, else the
    registry's one-line KeyError with the close names ("did you mean")."""

    for registry, name, how in ((TRAINER_REGISTRY, cfg.TRAINER.NAME, "--trainer NAME"),
                                (DATASET_REGISTRY, cfg.DATASET.NAME, "--dataset-config-file <yaml> or DATASET.NAME")):
        if not name:
            raise ValueError(f"no {registry.kind} given: pass {how} (registered: {', '.join(registry.names())})")
        registry.get(name)


def log_continuation(output_dir):
    """The ``resumed_line`` to continue ``log.txt`` after when it holds a run that did not finish,
    else None (a fresh folder gets ``log.txt``; a finished one ``log.txt-<timestamp>``)."""

    status = run_status(output_dir)
    if not status.has_log or status.finished:
        return None
    return resumed_line(datetime.datetime.now().astimezone().isoformat(sep=" ", timespec="seconds"))


def refuse_test_only_training(cfg):
    """Before any output is written: a trainer that fits on the training split refuses a test-only
    set (``TrainerBase.check_trains_on``); the names are known to be registered (``check_registered``)."""

    TRAINER_REGISTRY.get(cfg.TRAINER.NAME).check_trains_on(DATASET_REGISTRY.get(cfg.DATASET.NAME))


def run(cfg, args, drew_seed, log, command):
    from .environment import collect_env_info, environment_summary
    from .registry import build_trainer
    from .run_provenance import write_run_provenance
    from .seeding import set_random_seed

    print(f"{environment_summary(command)}\n")
    save_config(cfg, log.companion("config.yaml"))
    if drew_seed:
        print(f"Seed was negative (random): drew seed {cfg.SEED}; rerun with --seed {cfg.SEED} to repeat this run")
    print(f"Setting fixed seed: {cfg.SEED}")
    set_random_seed(cfg.SEED)
    print_args(args, cfg)
    print("Collecting env info ...")
    print(f"** System info **\n{collect_env_info()}\n")
    trainer = build_trainer(cfg)
    if args.eval_only:
        trainer.load_model(args.model_dir, epoch=args.load_epoch)
        write_run_provenance(trainer, eval_only=True, model_dir=args.model_dir)
        with trainer.writing_scalars():
            trainer.test()
    elif not args.no_train:
        trainer.train()
    trainer.report()
    return trainer


def main(argv=None, echo=True):
    """Run one experiment; everything printed also goes to ``<OUTPUT_DIR>/log.txt``."""
    argv = sys.argv[1:] if argv is None else [str(a) for a in argv]
    args = build_parser().parse_args(argv)
    from .logger import log_to  # after parsing: --help imports no torch
    cfg, drew_seed = setup_cfg(args)
    check_registered(cfg)
    if not (args.eval_only or args.no_train):
        refuse_test_only_training(cfg)
    command = shlex.join([sys.executable, ENTRY_POINT, *argv])
    with log_to(cfg.OUTPUT_DIR, echo=echo, continue_with=log_continuation(cfg.OUTPUT_DIR)) as log:
        try:
            return run(cfg, args, drew_seed, log, command)
        except Exception:
            log.write_file_only(traceback.format_exc())
            raise


def cli_main():
    """``python train.py``: a failure prints one clear line (the traceback is in log.txt)."""
    try:
        main()
    except Exception as e:
        print(f"error: {e.args[0] if isinstance(e, KeyError) and e.args else e}", file=sys.stderr)
        sys.exit(1)
