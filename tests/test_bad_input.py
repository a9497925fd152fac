"""Bad input through train.py: a clear error naming the file, key or class, nothing half-written."""
import os
import subprocess
import sys

import pytest

from conftest import ROOT, run_train, tiny_args
from datasets.base import DatasetLayoutError
from datasets.image_loading import ImageReadError


def test_missing_dataset_folder_names_the_folder(tiny_clip, tmp_path):
    with pytest.raises(DatasetLayoutError, match=f"DescribableTextures dataset folder not found: {tmp_path}/empty/dtd"):
        run_train(tiny_args(tiny_clip, tmp_path / "empty", tmp_path / "out"))


def test_missing_split_file_and_images_name_the_paths(tiny_clip, dtd_root, tmp_path):
    (dtd_root / "dtd" / "split_zhou_DescribableTextures.json").unlink()
    for image in (dtd_root / "dtd" / "images").rglob("*.jpg"):
        image.unlink()
    for folder in sorted((dtd_root / "dtd" / "images").iterdir()):
        folder.rmdir()
    (dtd_root / "dtd" / "images").rmdir()
    with pytest.raises(FileNotFoundError, match=str(dtd_root / "dtd" / "images")):
        run_train(tiny_args(tiny_clip, dtd_root, tmp_path / "out"))
    assert not (dtd_root / "dtd" / "split_zhou_DescribableTextures.json").exists()


def test_shots_beyond_every_class_is_an_error(tiny_clip, dtd_root, tmp_path):
    with pytest.raises(ValueError, match=r"NUM_SHOTS=64 exceeds the training images of every class"):
        run_train(tiny_args(tiny_clip, dtd_root, tmp_path / "out", "DATASET.NUM_SHOTS", "64"))
    assert not (dtd_root / "dtd" / "split_fewshot" / "shot_64-seed_1.json").exists()


@pytest.mark.parametrize("workers", ["0", "2"])
def test_corrupt_image_names_the_file_and_caches_nothing(tiny_clip, dtd_root, tmp_path, workers):
    bad = dtd_root / "dtd" / "images" / "bubbly" / "bubbly_0009.jpg"  # a test image
    bad.write_bytes(b"\xff\xd8 not really a jpeg")
    with pytest.raises(ImageReadError) as err:
        run_train(tiny_args(tiny_clip, dtd_root, tmp_path / "out", "DATALOADER.NUM_WORKERS", workers))
    assert str(err.value).startswith(f"cannot read image {bad}: ") and "\n" not in str(err.value)
    cache = os.environ["FEWSHOT_CLIP_CACHE"]
    images = [f for _, _, files in os.walk(cache) for f in files if f.startswith("test-")]
    assert images == []


def test_cli_errors_are_one_clear_line_with_the_traceback_in_the_log(tiny_clip, tmp_path):
    out = tmp_path / "out"
    cmd = [sys.executable, "train.py", *tiny_args(tiny_clip, tmp_path / "nowhere", out)]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines()[-1].startswith("error: DescribableTextures dataset folder not found")
    assert "Traceback" in (out / "log.txt").read_text()


def test_unknown_trainer_fails_before_anything_runs(tmp_path):
    with pytest.raises(KeyError, match="unknown trainer 'CMMM'"):
        run_train(["--trainer", "CMMM", "--dataset-config-file", ROOT / "configs/datasets/simulated.yaml",
                   "--output-dir", tmp_path / "out"])
