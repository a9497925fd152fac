"""The README's shell commands, run from a fresh copy of the repository in the order a reader
meets them (marker ``readme``: ``make test`` runs it after the default suite).

Every command in the README's ``bash`` blocks, and every command quoted inline in its prose, has
an entry in ``PLAN`` saying how the check treats it:
- ``run``: runs as written; where the README writes a placeholder (DIR, ROOT, RUNS.json, N, the
  train.py arguments) the entry gives the command with it filled in;
- ``shrunk``: ``make demo`` runs as written on the demo's experiment cut to 16 shots (the whole
  demo, with its tables checked digit for digit, is ``pytest -m slow``: tests/test_real_size.py);
  the scale benchmark runs with its options at 1/100 or 1/200 of ImageNet's size, on a few rows;
- ``dry``: needs datasets or CLIP weights that are not here. The scripts run as written with
  ``PYTHON`` (and ``python`` on PATH) a stand-in that, for train.py, parses the command line,
  merges the dataset and method yaml files and the KEY VALUE pairs, checks the trainer and dataset
  names, and stops before any data is read; every other python command runs for real. Dry runs
  take seed 1 only (``SEEDS=1``: the scripts' seeds 2 and 3 differ in nothing the dry run checks);
- ``stops``: needs data here absent; runs as written and must stop at the prerequisite check
  (exit status 2, the missing items listed, nothing run);
- ``cannot``: cannot run here, with the reason.
A README command without an entry, or an entry whose command left the README, fails the check.
``python`` means the project's environment (the README's Running section says the python commands
assume ``.venv/bin/activate``): the check puts ``.venv/bin`` first on PATH, as activation does.
"""
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import ROOT, coop_parse

pytestmark = pytest.mark.readme

DEMO_RUN = "output/demo/simulated/CMM/sim_16shots/seed1"
SIM_ARGS = ("--root '' --seed 1 --trainer CMM --dataset-config-file configs/datasets/simulated.yaml "
            "--config-file configs/trainers/CMM/sim.yaml --output-dir output/extract/seed1 DATASET.NUM_SHOTS 16")
NO_DATA_HERE = "needs the CoOp datasets and CLIP weights, which this machine cannot download"

# README command -> (how, the command run or the reason)
PLAN = {
    "make demo": ("shrunk", "make demo"),
    "OUTPUT=output/demo bash scripts/cmm/main.sh simulated sim 16": ("run", None),  # skips the demo's runs
    "make install": ("run", None),  # .venv is there: nothing to do
    "make test": ("cannot", "it is the suite this check belongs to (CI runs it from a clean clone)"),
    "export DATA=/path/to/datasets": ("dry", None),
    "bash scripts/zsclip/zeroshot.sh oxford_pets rn50": ("dry", None),
    "bash scripts/zsclip/zeroshot.sh imagenet vit_b16 ZeroshotCLIP2": ("dry", None),
    "bash scripts/coop/main.sh caltech101 rn50_ep50 1": ("dry", None),
    "bash scripts/tip_adapter/main.sh eurosat rn50 16 TipAdapterF": ("dry", None),
    "bash scripts/linear_probe/main.sh dtd rn50 16": ("dry", None),
    "bash scripts/clip_adapter/main.sh food101 rn50 16": ("dry", None),
    "bash scripts/cmm/main.sh oxford_pets rn50 16": ("dry", None),
    "bash scripts/cmm/main.sh imagenet rn50 16 && bash scripts/cmm/eval.sh rn50 16": ("dry", None),
    "python scripts/cmm/ablation.py --dataset dtd --cfg rn50 --root $DATA": (
        "cannot", f"trains 9 variants x 3 seeds on DTD: {NO_DATA_HERE}; the same script runs on the simulated "
                  "benchmark below (--variants full gda_init)"),
    "bash scripts/gda/main.sh dtd rn50 16": ("dry", None),
    "bash scripts/lp_plus_plus/main.sh dtd rn50 16": ("dry", None),
    "bash scripts/clap/main.sh dtd rn50 16 CLAP": ("dry", None),
    "bash scripts/zsclip/retrieval.sh wikipedia vit_b16": ("dry", None),
    "bash scripts/flex_clip/retrieval.sh wikipedia vit_b16 4": ("dry", None),
    "bash scripts/flex_clip/main.sh oxford_pets rn50 16": ("dry", None),
    "python scripts/flex_clip/ablation.py --dataset pascal_sentence --cfg vit_b16 --root $DATA": (
        "cannot", f"trains FLEX-CLIP's variants on Pascal Sentence: {NO_DATA_HERE}; the variants' switches "
                  "are tested on the simulated pairs in tests/test_flex_clip.py"),
    "python train.py --root $DATA --seed 1 --trainer CMM --dataset-config-file configs/datasets/dtd.yaml "
    "--config-file configs/trainers/CMM/rn50.yaml --output-dir output/dtd/CMM/rn50_16shots/seed1 "
    "DATASET.NUM_SHOTS 16": ("dry", None),
    "python scripts/results.py output/": ("run", None),
    "bash scripts/reproduce.sh simulated --jobs 2": ("run", None),  # = make demo: every run is finished now
    "DATA=/data bash scripts/reproduce.sh rn50_fewshot --dry-run": ("stops", None),
    "DATA=/data bash scripts/reproduce.sh rn50_fewshot --jobs 4 --extract-procs 4": ("stops", None),
    "DATA=/data bash scripts/reproduce.sh rn50_fewshot --launcher slurm --partition gpu --time 240": ("stops", None),
    "python -m reports.finished DIR [DIR ...]": ("run", f"python -m reports.finished {DEMO_RUN} {DEMO_RUN}"),
    "python -m reports.finished DIR": ("run", f"python -m reports.finished {DEMO_RUN}"),
    "python -m reports.finished DIR -- <train.py arguments>": (
        "run", f"python -m reports.finished {DEMO_RUN} -- --seed 1 --trainer CMM --dataset-config-file "
               "configs/datasets/simulated.yaml --config-file configs/trainers/CMM/sim.yaml DATASET.NUM_SHOTS 16"),
    "python scripts/results.py ROOT [ROOT ...]": ("run", "python scripts/results.py output/demo"),
    "DATA=/data bash scripts/tip_adapter/main.sh oxford_pets rn50_full_val 16": ("dry", None),
    "MODELS=output/demo SOURCE=simulated SHIFT_SETS=simulated_shift bash scripts/eval_shift.sh CMM sim 16": (
        "run", None),
    "python scripts/results.py output/simulated_shift": ("run", None),
    "python scripts/cmm/ablation.py --variants full gda_init": ("run", None),
    "python scripts/bench_scale.py --scale 1": (
        "shrunk", "python scripts/bench_scale.py --scale 0.005 --trainers ZeroshotCLIP TipAdapter LinearProbe"),
    "python scripts/bench_scale.py --scale 0.1": ("shrunk", "python scripts/bench_scale.py --scale 0.01 --trainers GDA"),
    "python scripts/bench_scale.py --scale 1 --trainers CMM CMM-search CLIPAdapter CLAP ZSLP FLEXCLIP "
    "--opts OPTIM.MAX_STEPS 2000": (
        "shrunk", "python scripts/bench_scale.py --scale 0.005 --trainers CMM CLAP --opts OPTIM.MAX_STEPS 5"),
    "python scripts/bench_scale.py --scale 1 --trainers FLEXCLIP CMM-search --opts OPTIM.MAX_STEPS 2000": (
        "shrunk", "python scripts/bench_scale.py --scale 0.005 --trainers FLEXCLIP --opts OPTIM.MAX_STEPS 5 "
                  "TRAINER.FLEXCLIP.NUM_THREADS 0"),
    "VARIANT=steps2000 DATA=/data bash scripts/cmm/main.sh imagenet rn50 16 OPTIM.MAX_STEPS 2000": ("dry", None),
    "python extract_features.py --runs RUNS.json": ("run", "python extract_features.py --runs RUNS.json"),
    "python extract_features.py <train.py arguments>": ("run", f"python extract_features.py {SIM_ARGS}"),
    "torchrun --standalone --nproc_per_node N extract_features.py --runs RUNS.json": (
        "run", "torchrun --standalone --nproc_per_node 2 extract_features.py --runs RUNS.json"),
    "export PYTHONPATH=/path/to/this/repo": ("cannot", "plugin mode: needs a CoOp checkout and Dassl.pytorch "
                                                       "(not on PyPI); tests/test_dassl_plugin.py runs it where "
                                                       "COOP_ROOT and Dassl are present"),
    "python train.py --root $DATA --seed 1 --trainer CMM --dataset-config-file configs/datasets/dtd.yaml "
    "--config-file /path/to/this/repo/configs/trainers/CMM/rn50.yaml "
    "--output-dir output/dtd/CMM/rn50_16shots/seed1 DATASET.NUM_SHOTS 16": (
        "cannot", "plugin mode, run inside a CoOp checkout (see export PYTHONPATH)"),
    "python parse_test_res.py output/dtd/CMM/rn50_16shots": ("cannot", "CoOp's script, in a CoOp checkout"),
    "python train.py": ("cannot", "names the entry point in a sentence; its full commands are above"),
    "pytest -q": ("cannot", "the default suite, which `make test` runs"),
    "pytest -q -n 0": ("cannot", "the default suite again, in one process (`make test` runs it in parallel)"),
    "pytest -m readme": ("cannot", "this check"),
    ".venv/bin/python -m pytest -m slow": ("cannot", "the real-size checks (the whole demo, and more): "
                                                     "run by hand, outside CI's time"),
    ".venv/bin/python -m pytest -m gpu": ("cannot", "needs a CUDA device"),
    "python3 -m venv .venv && .venv/bin/pip install -r requirements.txt": (
        "cannot", "a 3 GB install; `make test` (CI's command) has just made the same .venv from requirements.txt"),
}

COMMAND_START = re.compile(r"^(?:[A-Z_]+=\S* )*(?:make|bash|python3?|\.venv/bin/\S+|torchrun|pytest|export)\b")
DRY_TRAIN = ("import sys; from trainers.core import run as train; "
             "a = train.build_parser().parse_args(sys.argv[1:]); cfg, _ = train.setup_cfg(a); "
             "train.check_registered(cfg); a.eval_only or a.no_train or train.refuse_test_only_training(cfg); "
             "print(f'dry run: {cfg.TRAINER.NAME} on {cfg.DATASET.NAME}, {cfg.DATASET.NUM_SHOTS} shots, '"
             "f'seed {cfg.SEED} -> {cfg.OUTPUT_DIR}' + (' (eval-only)' if a.eval_only else ''))")


def readme_commands(text):
    """The README's commands in reading order, each once: ``bash`` block lines (continuations
    joined, comments dropped) and inline code spans (a span may wrap onto the next line) that start
    like a command and have arguments (a bare ``python`` names a program)."""
    commands, block, prose = [], None, []
    for line in text.splitlines() + ["```"]:
        if block is None and not line.startswith("```") and line.strip():
            prose.append(line)
            continue
        spans = re.findall(r"`([^`]+)`", " ".join(prose))
        commands += [span for span in spans if COMMAND_START.match(span) and " " in span]
        prose = []
        if line.startswith("```"):
            block = line[3:].strip() if block is None else None
        elif block == "bash":
            commands.append(line)
    joined = re.sub(r"\\\n\s*", "", "\n".join(commands)).splitlines()
    seen = []
    for command in (re.sub(r"\s+#.*$|^#.*$", "", c).strip() for c in joined):
        if command and command not in seen:
            seen.append(command)
    return seen


def test_every_readme_command_has_a_plan():
    commands = readme_commands((ROOT / "README.md").read_text())
    assert [c for c in commands if c not in PLAN] == [], "README commands the check does not know: add them to PLAN"
    assert [c for c in PLAN if c not in commands] == [], "PLAN entries no longer in the README"
    assert all(how in ("run", "shrunk", "dry", "stops") or reason for how, reason in PLAN.values())


def fresh_copy(dest):
    """The repository's files as a clone has them (tracked, plus new files git does not ignore),
    with the environment ``make test`` made as its .venv."""
    listed = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=ROOT, check=True,
                            capture_output=True).stdout.decode().split("\0")
    for name in filter(None, listed):
        if (ROOT / name).is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, dest / name)
    venv = Path(sys.prefix)
    if not (venv / ".installed").is_file():
        pytest.fail(f"run the README check with the project's environment (`make test`), not {sys.executable}")
    (dest / ".venv").symlink_to(venv)
    return dest


def shrink_demo(repo):
    """The demo's experiment at 16 shots only (CMM's 16-shot models, which the shift example reads)."""
    path = repo / "configs/experiments/simulated.yaml"
    text, count = re.subn(r"shots: \[1, 2, 4, 8, 16\]", "shots: [16]", path.read_text())
    assert count >= 2, f"{path}: the demo's shot lists changed; update shrink_demo"
    path.write_text(text)


def dry_python(repo):
    """A `python` that stops train.py after its config is built (see the module docstring)."""
    shim = repo / "dry_bin" / "python"
    shim.parent.mkdir()
    real = repo / ".venv" / "bin" / "python"
    shim.write_text(f'#!/bin/sh\nif [ "$1" = train.py ]; then shift; exec "{real}" -c "{DRY_TRAIN}" "$@"; fi\n'
                    f'exec "{real}" "$@"\n')
    shim.chmod(0o755)
    return shim


def test_readme_commands_run_from_a_fresh_copy(tmp_path):
    repo = fresh_copy(tmp_path / "repo")
    shrink_demo(repo)
    shim = dry_python(repo)
    second = SIM_ARGS.replace("--seed 1", "--seed 2").replace("seed1", "seed2")
    (repo / "RUNS.json").write_text(json.dumps([shlex.split(SIM_ARGS), shlex.split(second)]))
    base = {k: v for k, v in os.environ.items() if k not in ("PYTHON", "DATA", "OUTPUT", "MODELS", "VIRTUAL_ENV")}
    base |= {"HF_HUB_OFFLINE": "1", "PATH": f"{repo / '.venv' / 'bin'}:{os.environ['PATH']}"}
    dry_env = base | {"PYTHON": str(shim), "PATH": f"{shim.parent}:{base['PATH']}", "SEEDS": "1"}
    seen = []
    for command in readme_commands((ROOT / "README.md").read_text()):
        how, detail = PLAN[command]
        if how == "cannot":
            continue
        if how == "dry" and command.startswith("export "):
            dry_env |= dict([command.removeprefix("export ").split("=", 1)])
            continue
        line = detail or command
        started = time.monotonic()
        done = subprocess.run(["bash", "-c", line], cwd=repo, env=dry_env if how == "dry" else base,
                              capture_output=True, text=True, timeout=900)
        out = done.stdout + done.stderr
        if how == "stops":
            assert done.returncode == 2 and "missing" in out.lower(), f"{line}\n{out[-3000:]}"
            assert not (repo / "output" / "rn50_fewshot").exists()
        else:
            assert done.returncode == 0, f"{line} exited {done.returncode}\n{out[-3000:]}"
        if how == "dry":
            trains = out.count("dry run: ")
            assert trains >= 1, f"{line}: no train.py run reached\n{out[-2000:]}"
        seen.append((how, line, out))
        print(f"{how:7s} {time.monotonic() - started:6.1f} s  {line}")
    check_outputs(repo, dict((line, out) for _, line, out in seen))


def check_outputs(repo, outputs):
    """What the runs left is what the README says they leave."""
    demo = repo / "output" / "demo"
    assert coop_parse((demo / "simulated/CMM/sim_16shots/seed1/log.txt").read_text()) > 80
    assert (demo / "report" / "results.md").is_file() and (demo / "report" / "provenance.json").is_file()
    assert outputs["OUTPUT=output/demo bash scripts/cmm/main.sh simulated sim 16"].count("The results exist at") == 3
    again = outputs["bash scripts/reproduce.sh simulated --jobs 2"]
    assert re.search(r"0 run\(s\) done, \d+ already finished, 0 failed", again), again[-2000:]
    shift = repo / "output/simulated_shift/CMM/sim_16shots"
    assert sorted(p.name for p in shift.iterdir()) == ["seed1", "seed2", "seed3"]
    assert re.search(r"\| gda_init +\| \d", outputs["python scripts/cmm/ablation.py --variants full gda_init"])
    assert "simulated_shift" in outputs["python scripts/results.py output/simulated_shift"]
    assert "missing or failed" not in outputs["python scripts/results.py output/"]
    bench = {line: out for line, out in outputs.items() if line.startswith("python scripts/bench_scale.py")}
    for line, out in bench.items():
        rows = line.split("--trainers ")[1].split(" --")[0].split()
        printed = [r.split()[0] for r in out.splitlines() if re.match(r"\S+ +0\.0\d+ +\d", r)]
        assert printed == rows, f"{line}: every row must print figures (not failed / timeout)\n{out}"
    assert "every row with OPTIM.MAX_STEPS 5" in "".join(bench.values())
    assert not (repo / "output/simulated/CMM/sim_16shots/seed1").exists()  # no second copy of a demo run
    dry = [out for line, out in outputs.items() if line.startswith("bash scripts/") and "dry run:" in out]
    assert len(dry) >= 9 and not (repo / "output" / "oxford_pets").exists()  # dry runs write nothing
