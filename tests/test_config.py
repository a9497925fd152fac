"""Config: Dassl key names, merge order, and errors that name the key and the file."""
import subprocess
import sys

import pytest

from conftest import ROOT
from trainers.core import run as train
from trainers.core.config import ConfigError


def setup(argv):
    return train.setup_cfg(train.build_parser().parse_args(argv))[0]


def test_unknown_key_in_a_yaml_names_the_key_and_the_file(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("OPTIM:\n  LR: 0.1\n  LEARNING_RATE: 0.1\n")
    with pytest.raises(ConfigError, match=rf"{bad}: unknown config key 'OPTIM.LEARNING_RATE'"):
        setup(["--config-file", str(bad)])


def test_unknown_key_and_odd_pairs_on_the_command_line():
    with pytest.raises(ConfigError, match=r"command line: unknown config key 'TRAINER.COOP.NCTX'"):
        setup(["--trainer", "ZeroshotCLIP", "TRAINER.COOP.NCTX", "4"])
    with pytest.raises(ConfigError, match="KEY VALUE pairs"):
        setup(["DATASET.NUM_SHOTS"])


def test_wrong_type_names_the_file(tmp_path):
    bad = tmp_path / "typed.yaml"
    bad.write_text("DATASET:\n  NUM_SHOTS: sixteen\n")
    with pytest.raises(ConfigError, match=rf"{bad}: .*NUM_SHOTS"):
        setup(["--config-file", str(bad)])


def test_yaml_syntax_error_names_the_file(tmp_path):
    bad = tmp_path / "broken.yaml"
    bad.write_text("DATASET:\n  NUM_SHOTS: [1, 2\nOPTIM:\n  LR: 0.1\n")
    with pytest.raises(ConfigError, match=rf"{bad} is not valid YAML: .*line"):
        setup(["--config-file", str(bad)])


def test_unknown_key_suggests_the_closest_keys():
    with pytest.raises(ConfigError, match=r"unknown config key 'DATASET.NUM_SHOT' \(did you mean DATASET.NUM_SHOTS\?"):
        setup(["DATASET.NUM_SHOT", "4"])


def test_missing_config_file_is_named(tmp_path):
    with pytest.raises(ConfigError, match="config file not found: .*nope.yaml"):
        setup(["--config-file", str(tmp_path / "nope.yaml")])


def test_merge_order_dataset_yaml_then_method_yaml_then_flags_then_opts(tmp_path):
    dataset_yaml = tmp_path / "d.yaml"
    dataset_yaml.write_text('DATASET:\n  NAME: "DescribableTextures"\n  NUM_SHOTS: 2\nOPTIM:\n  LR: 0.5\n')
    method_yaml = tmp_path / "m.yaml"
    method_yaml.write_text('OPTIM:\n  LR: 0.25\nMODEL:\n  BACKBONE:\n    NAME: "RN50"\n')
    cfg = setup(["--dataset-config-file", str(dataset_yaml), "--config-file", str(method_yaml),
                 "--backbone", "ViT-B/16", "--seed", "0", "--root", "/data", "DATASET.NUM_SHOTS", "16"])
    assert (cfg.DATASET.NAME, cfg.OPTIM.LR, cfg.MODEL.BACKBONE.NAME) == ("DescribableTextures", 0.25, "ViT-B/16")
    assert (cfg.DATASET.NUM_SHOTS, cfg.SEED, cfg.DATASET.ROOT) == (16, 0, "/data")
    assert cfg.is_frozen()


def test_help_imports_no_torch_and_shows_the_usage_example_as_written():
    probe = ("import runpy, sys\nsys.argv = ['train.py', '--help']\ntry:\n    runpy.run_path('train.py', "
             "run_name='__main__')\nexcept SystemExit:\n    pass\nprint('torch imported:', 'torch' in sys.modules)\n")
    done = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True)
    assert done.stdout.rstrip().endswith("torch imported: False")
    assert "--trainer ZeroshotCLIP \\\n        --dataset-config-file configs/datasets/oxford_pets.yaml \\\n" in done.stdout
