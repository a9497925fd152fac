"""Real-size checks, outside the default run (pyproject's addopts deselects the markers):
``pytest -m slow`` (minutes on a CPU) and ``pytest -m gpu`` (needs a CUDA device)."""
import os
import re
import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F

from conftest import ROOT, run_train, tiny_args


@pytest.mark.slow
def test_the_demo_prints_the_readme_tables_digit_for_digit(tmp_path):
    """`make demo`'s experiment (210 runs, about 3 minutes on 2 cores) against the tables the README shows."""
    readme = (ROOT / "README.md").read_text()
    shown = [line for line in readme.splitlines() if re.match(r"^\| simulated(_pairs)? +\| ", line)]
    assert len(shown) == 14  # 12 classification rows (the 11 trainers and the ensemble), 2 retrieval rows
    subprocess.run(["bash", ROOT / "scripts/reproduce.sh", "simulated", "--jobs", "2", "--output", tmp_path / "demo"],
                   check=True, capture_output=True, env=dict(os.environ, PYTHON=sys.executable))
    printed = (tmp_path / "demo" / "report" / "results.md").read_text().splitlines()
    assert [line for line in shown if line not in printed] == []


@pytest.mark.gpu
@pytest.mark.parametrize("precision, min_cosine", [("fp32", 0.9999), ("amp", 0.99)])
def test_cuda_features_match_the_cpu_ones(tiny_clip, dtd_root, tmp_path, precision, min_cosine):
    """The tiny model's test features on the GPU (CLIP.PRECISION fp32 / amp) against the CPU's."""
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    features = {}
    for device, use_cuda in (("cpu", "False"), ("cuda", "True")):
        trainer = run_train(tiny_args(tiny_clip, dtd_root, tmp_path / device, "USE_CUDA", use_cuda,
                                      "CLIP.PRECISION", precision, "FEATURES.CACHE_DIR", tmp_path / f"cache_{device}",
                                      flags=["--no-train"]))
        features[device] = trainer.split_features("test").features.float().cpu()
    cosine = F.cosine_similarity(features["cpu"], features["cuda"], dim=-1)
    assert cosine.min().item() > min_cosine
