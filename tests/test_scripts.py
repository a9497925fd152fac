"""The zero-shot script and the results reader, on the simulated benchmark."""
import os
import shutil
import subprocess
import sys

from conftest import ROOT, coop_parse, run_train
from reports import runs as runs_module


def test_results_reader_agrees_with_coops_parser(tmp_path):
    for seed in (1, 2, 3):
        run_train(["--root", "", "--seed", seed, "--trainer", "ZeroshotCLIP2", "--dataset-config-file",
                   ROOT / "configs/datasets/simulated.yaml", "--output-dir",
                   tmp_path / "simulated" / "ZeroshotCLIP2" / "sim_2shots" / f"seed{seed}", "DATASET.NUM_SHOTS", 2])
    runs = runs_module.scan([tmp_path])
    seed_dirs = sorted((tmp_path / "simulated" / "ZeroshotCLIP2" / "sim_2shots").iterdir())
    assert [p.name for p in seed_dirs] == ["seed1", "seed2", "seed3"] and runs_module.problems(runs) == []
    key = runs_module.RunKey("simulated", "ZeroshotCLIP2", "sim", 2, "")
    values = [run.metrics["accuracy"] for run in runs_module.usable(runs) if run.key == key]
    assert values == [coop_parse((d / "log.txt").read_text()) for d in seed_dirs] == [62.8] * 3


def test_zero_shot_script_writes_coop_layout_and_skips_a_finished_run(tmp_path):
    shutil.copytree(ROOT, tmp_path / "repo", ignore=shutil.ignore_patterns(".venv", "output", ".git", "__pycache__"))
    env = dict(os.environ, DATA="unused", PYTHON=sys.executable)
    script = tmp_path / "repo" / "scripts" / "zsclip" / "zeroshot.sh"
    subprocess.run(["bash", str(script), "simulated", "sim"], check=True, env=env, capture_output=True)
    log = tmp_path / "repo" / "output" / "simulated" / "ZeroshotCLIP" / "sim_0shots" / "seed1" / "log.txt"
    assert coop_parse(log.read_text()) == 53.4
    again = subprocess.run(["bash", str(script), "simulated", "sim"], check=True, env=env,
                           capture_output=True, text=True)
    assert "The results exist at" in again.stdout


def test_run_scripts_use_the_project_venv_without_activation(tmp_path):
    """PYTHON unset: the method scripts run .venv/bin/python (what `make install` creates), as
    reproduce.sh does; an explicit PYTHON still wins."""
    repo = fake_venv_scripts(tmp_path)
    env = {k: v for k, v in os.environ.items() if k != "PYTHON"} | {"DATA": "/data", "SEEDS": "1"}
    out = subprocess.run(["bash", repo / "scripts/cmm/main.sh", "dtd", "rn50", "4"], check=True, env=env,
                         capture_output=True, text=True).stdout
    assert out.startswith("venv python train.py --root /data --seed 1 --trainer CMM")
    env["PYTHON"] = "echo"
    out = subprocess.run(["bash", repo / "scripts/cmm/main.sh", "dtd", "rn50", "4"], check=True, env=env,
                         capture_output=True, text=True).stdout
    assert "venv python" not in out


def test_results_on_a_missing_folder_says_so(tmp_path):
    missing = tmp_path / "output" / "simulatd"
    done = subprocess.run([sys.executable, ROOT / "scripts/results.py", missing], cwd=ROOT, capture_output=True,
                          text=True)
    assert done.returncode == 1 and done.stderr.strip() == f"no such folder: {missing}"


def test_reproduce_help_names_the_script_the_user_typed():
    done = subprocess.run(["bash", ROOT / "scripts/reproduce.sh", "--help"], capture_output=True, text=True,
                          env=dict(os.environ, PYTHON=sys.executable))
    assert done.returncode == 0 and done.stdout.startswith("usage: scripts/reproduce.sh")


def fake_venv_scripts(tmp_path):
    """A copy of scripts/ whose .venv python says every run is unfinished and echoes train.py's argv."""
    repo = tmp_path / "repo"
    shutil.copytree(ROOT / "scripts", repo / "scripts", ignore=shutil.ignore_patterns("__pycache__"))
    venv_python = repo / ".venv" / "bin" / "python"
    venv_python.parent.mkdir(parents=True)
    venv_python.write_text('#!/bin/sh\n[ "$1 $2" = "-m reports.finished" ] && exit 1\necho "venv python $@"\n')
    venv_python.chmod(0o755)
    return repo


def test_method_scripts_say_when_DATA_is_unset_and_delete_nothing(tmp_path):
    """DATA unset: a dataset read from files stops with one line naming DATA, before the run folder
    is touched; the generated simulated datasets run without it."""
    repo = fake_venv_scripts(tmp_path)
    kept = repo / "output" / "oxford_pets" / "CMM" / "rn50_16shots" / "seed1" / "log.txt"
    kept.parent.mkdir(parents=True)
    kept.write_text("a dead run's log\n")
    env = {k: v for k, v in os.environ.items() if k not in ("DATA", "PYTHON", "OUTPUT")} | {"SEEDS": "1"}
    done = subprocess.run(["bash", repo / "scripts/cmm/main.sh", "oxford_pets", "rn50", "16"], env=env,
                          capture_output=True, text=True)
    assert done.returncode != 0 and "train.py" not in done.stdout
    assert done.stderr.strip() == ("error: DATA is not set: export DATA=/path/to/datasets "
                                   "(the folder holding the CoOp datasets)")
    assert kept.read_text() == "a dead run's log\n"
    out = subprocess.run(["bash", repo / "scripts/cmm/main.sh", "simulated", "sim", "16"], env=env, check=True,
                         capture_output=True, text=True).stdout
    assert out.startswith("venv python train.py --root  --seed 1 --trainer CMM")
    assert "--output-dir output/simulated/CMM/sim_16shots/seed1 " in out


def test_OUTPUT_and_MODELS_choose_the_run_tree_of_every_script(tmp_path):
    """OUTPUT moves the run folders of run_seeds.sh, zeroshot.sh and eval_shift.sh; eval_shift.sh
    reads the trained runs from MODELS (default: OUTPUT)."""
    repo = fake_venv_scripts(tmp_path)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHON", "MODELS")} | {
        "DATA": "/data", "SEEDS": "2", "OUTPUT": "out/tree"}

    def run(*argv, **extra):
        return subprocess.run(["bash", repo / "scripts" / argv[0], *argv[1:]], env=env | extra, check=True,
                              capture_output=True, text=True).stdout

    assert "--output-dir out/tree/dtd/CMM/rn50_4shots/seed2 " in run("cmm/main.sh", "dtd", "rn50", "4")
    assert "--output-dir out/tree/dtd/ZeroshotCLIP/rn50_0shots/seed1\n" in run("zsclip/zeroshot.sh", "dtd", "rn50")
    shift = run("eval_shift.sh", "CMM", "rn50", "16", SHIFT_SETS="imagenetv2")
    assert "--output-dir out/tree/imagenetv2/CMM/rn50_16shots/seed2 --model-dir out/tree/imagenet/CMM/" in shift
    shift = run("eval_shift.sh", "CMM", "rn50", "16", SHIFT_SETS="imagenetv2", MODELS="trained")
    assert "--output-dir out/tree/imagenetv2/CMM/rn50_16shots/seed2 --model-dir trained/imagenet/CMM/" in shift
