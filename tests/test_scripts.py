"""The zero-shot script and the results reader, on the simulated benchmark."""
import os
import shutil
import subprocess
import sys

from conftest import ROOT, coop_parse, run_train
from scripts import results


def test_results_reader_agrees_with_coops_parser(tmp_path):
    for seed in (1, 2, 3):
        run_train(["--root", "", "--seed", seed, "--trainer", "ZeroshotCLIP2", "--dataset-config-file",
                   ROOT / "configs/datasets/simulated.yaml", "--output-dir",
                   tmp_path / "simulated" / "ZeroshotCLIP2" / "sim_2shots" / f"seed{seed}", "DATASET.NUM_SHOTS", 2])
    runs = results.scan([tmp_path])
    seed_dirs = sorted((tmp_path / "simulated" / "ZeroshotCLIP2" / "sim_2shots").iterdir())
    assert [p.name for p in seed_dirs] == ["seed1", "seed2", "seed3"] and results.problems(runs) == []
    key = results.RunKey("simulated", "ZeroshotCLIP2", "sim", 2, "")
    values = [run.metrics["accuracy"] for run in results.usable(runs) if run.key == key]
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
