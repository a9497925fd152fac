"""An experiment file as a list of runs: trainers x datasets x configs x shots x seeds, in
CoOp's folder layout ``<output>/<dataset>/<Trainer>/<cfg>_<K>shots/seed<S>``.

The folder is named by the group's ``cfg``; ``config_by_shots`` picks another method config
file for some shot counts (CoOp's recipe: ``rn50_ep50`` at 1 shot, ``rn50_ep100`` at 2 and 4)
so one table row holds every shot count. A group may evaluate every model it trains on other
datasets (``eval_on``: the ImageNet shift sets), which adds eval-only runs that read the trained
run's checkpoint; those form a second stage. ``eval_only`` groups (zero-shot CLIP) train nothing.
"""
import os
from dataclasses import dataclass, field

import yaml

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXPERIMENTS_DIR = os.path.join(REPO, "configs", "experiments")
TRAIN_END, EVAL_END = "Finish training", "=> result"  # the end signals CoOp's parse_test_res.py reads
GROUP_KEYS = {"datasets", "trainers", "cfg", "shots", "seeds", "opts", "eval_only", "eval_on", "config_from",
              "config_by_shots"}
EXPERIMENT_KEYS = {"description", "output", "disk_gb", "groups"}


class ExperimentError(ValueError):
    """A malformed experiment file; the message names the file and the key."""


@dataclass(frozen=True)
class Run:
    dataset: str  # config name: configs/datasets/<dataset>.yaml
    trainer: str
    cfg: str
    shots: int
    seed: int
    out: str
    method_config: str
    opts: tuple = ()
    model_dir: str = ""  # eval-only: the trained run whose checkpoint is evaluated
    eval_only: bool = False

    @property
    def dataset_config(self):
        return os.path.join(REPO, "configs", "datasets", f"{self.dataset}.yaml")

    @property
    def end_signal(self):
        return EVAL_END if self.eval_only else TRAIN_END

    @property
    def stage(self):
        """Runs of stage 1 read checkpoints written in stage 0."""
        return 1 if self.model_dir else 0

    def argv(self, root):
        """train.py's arguments (flags before the KEY VALUE opts), without --output-dir."""
        argv = ["--root", root, "--seed", str(self.seed), "--trainer", self.trainer,
                "--dataset-config-file", self.dataset_config, "--config-file", self.method_config]
        if self.eval_only:
            argv.append("--eval-only")
        if self.model_dir:
            argv += ["--model-dir", self.model_dir]
        if self.shots > 0:
            argv += ["DATASET.NUM_SHOTS", str(self.shots)]
        return argv + list(self.opts)


@dataclass
class Experiment:
    name: str
    path: str
    description: str
    output: str
    disk_gb: float
    runs: list = field(default_factory=list)

    def stages(self):
        """The runs in dependency order: [[stage 0 runs], [stage 1 runs]] (empty stages dropped)."""
        stages = [[r for r in self.runs if r.stage == s] for s in (0, 1)]
        return [s for s in stages if s]


def experiment_path(name):
    """``configs/experiments/<name>.yaml``, or ``name`` itself when it is a file."""
    if os.path.isfile(name):
        return name
    path = os.path.join(EXPERIMENTS_DIR, f"{name}.yaml")
    if not os.path.isfile(path):
        known = sorted(os.path.splitext(f)[0] for f in os.listdir(EXPERIMENTS_DIR) if f.endswith(".yaml"))
        raise ExperimentError(f"no experiment {name!r}: {path} does not exist (known: {', '.join(known)})")
    return path


def load_experiment(name, output=None):
    """Read an experiment file into its runs; ``output`` overrides the file's output folder."""
    path = experiment_path(name)
    with open(path) as f:
        data = yaml.safe_load(f) or {}
    unknown = set(data) - EXPERIMENT_KEYS
    if unknown:
        raise ExperimentError(f"{path}: unknown key(s) {sorted(unknown)} (allowed: {sorted(EXPERIMENT_KEYS)})")
    if not data.get("groups"):
        raise ExperimentError(f"{path}: no 'groups'")
    exp = Experiment(name=os.path.splitext(os.path.basename(path))[0], path=path,
                     description=str(data.get("description", "")).strip(),
                     output=output or data.get("output") or os.path.join("output", name),
                     disk_gb=float(data.get("disk_gb", 1)))
    for i, group in enumerate(data["groups"]):
        exp.runs += group_runs(group, exp.output, f"{path}: groups[{i}]")
    outs = [r.out for r in exp.runs]
    if len(set(outs)) != len(outs):
        raise ExperimentError(f"{path}: two groups write the same run folder")
    return exp


def group_runs(group, output, where):
    unknown = set(group) - GROUP_KEYS
    if unknown:
        raise ExperimentError(f"{where}: unknown key(s) {sorted(unknown)} (allowed: {sorted(GROUP_KEYS)})")
    missing = {"datasets", "trainers", "cfg", "shots", "seeds"} - set(group)
    if missing:
        raise ExperimentError(f"{where}: missing key(s) {sorted(missing)}")
    opts = tuple(str(o) for o in group.get("opts", []))
    if len(opts) % 2:
        raise ExperimentError(f"{where}: 'opts' must be KEY VALUE pairs, got {list(opts)}")
    cfg, eval_only = group["cfg"], bool(group.get("eval_only", False))
    runs = []
    by_shots = {int(k): v for k, v in (group.get("config_by_shots") or {}).items()}
    for trainer in group["trainers"]:
        for dataset in group["datasets"]:
            for shots in group["shots"]:
                method_config = os.path.join(REPO, "configs", "trainers", group.get("config_from", trainer),
                                             f"{by_shots.get(int(shots), cfg)}.yaml")
                for seed in group["seeds"]:
                    train = Run(dataset, trainer, cfg, int(shots), int(seed),
                                run_dir(output, dataset, trainer, cfg, shots, seed), method_config, opts,
                                eval_only=eval_only)
                    runs.append(train)
                    runs += [Run(target, trainer, cfg, int(shots), int(seed),
                                 run_dir(output, target, trainer, cfg, shots, seed), method_config, opts,
                                 model_dir=train.out, eval_only=True)
                             for target in group.get("eval_on", [])]
    return runs


def run_dir(output, dataset, trainer, cfg, shots, seed):
    return os.path.join(output, dataset, trainer, f"{cfg}_{shots}shots", f"seed{seed}")
