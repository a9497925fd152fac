"""Plugin mode (dassl_plugin): our trainers and extra datasets inside Dassl / a CoOp checkout.

The tests need `dassl` (pip install -e Dassl.pytorch) and are skipped without it, except the one
that checks the message of ``import dassl_plugin`` where Dassl is missing. The CoOp tests also
need COOP_ROOT, a CoOp checkout: they copy it, add README's one line to its train.py and run it.

Accuracy against our standalone train.py on the same features and seed: equal for training-free
trainers, and within TRAINED_TOLERANCE for trained ones. It is 0 points: the plugin runs our
trainer's own loop after the same seeding, so it draws the same random numbers (CPU).
"""
import importlib
import importlib.util
import os
import pickle
import re
import shutil
import subprocess
import sys
from types import SimpleNamespace

import pytest

from conftest import RESULT_BLOCK, ROOT, coop_parse, read_log, run_train, tiny_args

HAS_DASSL = importlib.util.find_spec("dassl") is not None
COOP_ROOT = os.environ.get("COOP_ROOT", "")
needs_dassl = pytest.mark.skipif(not HAS_DASSL, reason="plugin mode: Dassl.pytorch is not installed")
needs_coop = pytest.mark.skipif(not (HAS_DASSL and COOP_ROOT), reason="plugin mode: set COOP_ROOT to a CoOp checkout")
TRAINED_TOLERANCE = 0.0  # accuracy points between a plugin run and a standalone run of a trained method
COOP_LINE = "    import dassl_plugin; dassl_plugin.extend_cfg(cfg)\n"  # README: "Inside a CoOp checkout"
FAST = {  # trainer options that keep a tiny run short; the same in both modes
    "CMM": ["OPTIM.MAX_EPOCH", "5"],
    "FLEXCLIP": ["OPTIM.MAX_EPOCH", "3", "TRAINER.FLEXCLIP.STAGE1_STEPS", "20", "TRAINER.FLEXCLIP.N_CRITIC", "1",
                 "TRAINER.FLEXCLIP.HIDDEN", "32", "TRAINER.FLEXCLIP.PROJ_HIDDEN", "32"],
    "LPPlusPlus": ["TRAINER.LPPLUSPLUS.EPOCHS", "30"],
    "ZSLP": ["OPTIM.MAX_EPOCH", "30"],
    "CLAP": ["OPTIM.MAX_EPOCH", "30"],
}


def config_file(trainer):
    return str(ROOT / "configs" / "trainers" / trainer / "sim.yaml")


def dassl_name(trainer):
    import dassl_plugin

    return dassl_plugin.TRAINER_NAMES[trainer]


@pytest.mark.skipif(HAS_DASSL, reason="Dassl is installed: the plugin imports")
def test_import_without_dassl_says_what_is_missing():
    with pytest.raises(ImportError, match=r"needs the `dassl` package .*this repository's own train.py"):
        importlib.import_module("dassl_plugin")


# --- registration and config -----------------------------------------------------------------
@needs_dassl
def test_trainers_and_extra_datasets_are_registered_in_dassl():
    from dassl.data.datasets import DATASET_REGISTRY
    from dassl.engine import TRAINER_REGISTRY, TrainerX

    import dassl_plugin
    from dassl_plugin.core import ours

    our_trainers, our_datasets = ours.trainers.core.registry.TRAINER_REGISTRY, ours.datasets.registry.DATASET_REGISTRY
    assert dassl_plugin.TRAINER_NAMES == {
        "CLAP": "CLAP", "CLIPAdapter": "CLIPAdapter", "CMM": "CMM", "FLEXCLIP": "FLEXCLIP", "GDA": "GDA",
        "LinearProbe": "LinearProbe", "LPPlusPlus": "LPPlusPlus", "TipAdapter": "TipAdapter",
        "TipAdapterF": "TipAdapterF", "ZSLP": "ZSLP",
        "ZeroshotCLIP": "ZeroshotCLIPOC", "ZeroshotCLIP2": "ZeroshotCLIP2OC"}  # CoOp's checkout has ZeroshotCLIP(2)
    for name, registered_as in dassl_plugin.TRAINER_NAMES.items():
        cls = TRAINER_REGISTRY.get(registered_as)
        assert issubclass(cls, TrainerX) and issubclass(cls, our_trainers.get(name)) and cls.__name__ == registered_as
    ours_in_dassl = {name for name in DATASET_REGISTRY.registered_names()
                     if name in our_datasets and DATASET_REGISTRY.get(name) is our_datasets.get(name)}
    assert ours_in_dassl == {"Simulated", "SimulatedShift", "SimulatedPairs", "Wikipedia", "PascalSentence",
                             "ManifestPairs", "NUSWIDE10k", "XMediaNet"}  # CoOp's classification datasets stay CoOp's


@needs_dassl
def test_extend_cfg_adds_our_nodes_to_dassl_config():
    from dassl.config import get_cfg_default

    import dassl_plugin

    cfg = get_cfg_default()
    dassl_plugin.extend_cfg(cfg)
    assert "COOP" not in cfg.TRAINER  # CoOp's own node stays CoOp's
    for node in ("CMM", "FLEXCLIP", "TIPADAPTER", "ZEROSHOTCLIP", "LINEARPROBE", "CLIPADAPTER"):
        assert node in cfg.TRAINER
    assert cfg.CLIP.PRECISION == "amp" and cfg.FEATURES.AUG_VIEWS == 10 and "SIMULATED" in cfg.DATASET
    for trainer in ("CMM", "FLEXCLIP", "TipAdapter", "ZeroshotCLIP"):
        cfg.merge_from_file(config_file(trainer))  # our yaml files merge into Dassl's config


@needs_dassl
def test_a_checkout_dataset_whose_val_is_its_test_is_never_searched_on():
    """CoOp's ImageNet passes its test list as val: reading val is refused, test still works."""
    from dassl.config import get_cfg_default
    from dassl.engine import TRAINER_REGISTRY

    trainer = object.__new__(TRAINER_REGISTRY.get("TipAdapter"))
    trainer.cfg = get_cfg_default()
    test = ["test image"]
    trainer.dataset = SimpleNamespace(train_x=["train image"], val=test, test=test)
    assert trainer.split_items("test") == test
    with pytest.raises(ValueError, match="uses its test set as the validation set"):
        trainer.split_items("val")
    trainer.dataset = SimpleNamespace(train_x=["train image"], val=["val image"], test=test)
    assert trainer.split_items("val") == ["val image"]


# --- our packages beside a checkout's trainers / datasets -----------------------------------------
def fake_checkout(tmp_path):
    """A folder with CoOp's top-level package names, each with a ``coop`` module."""
    checkout = tmp_path / "checkout"
    for package in ("trainers", "datasets"):
        (checkout / package).mkdir(parents=True)
        (checkout / package / "__init__.py").write_text("")
        (checkout / package / "coop.py").write_text(f"OWNER = 'checkout {package}'\n")
    return checkout


def run_in_checkout(checkout, script, **kwargs):
    """``python -c script`` as CoOp's train.py runs: the checkout first on sys.path, then this repository."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(checkout), str(ROOT)])}
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, cwd=checkout, env=env, **kwargs)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout


@needs_dassl
def test_checkout_packages_stay_while_ours_run(tmp_path, tiny_clip):
    """A CoOp-like checkout first on sys.path: its ``trainers`` / ``datasets`` stay in place, and our
    lazy ``from .clip_features import ...`` (in build_feature_source) still finds our module."""
    checkout = fake_checkout(tmp_path)
    script = f"""
import sys
from types import SimpleNamespace
import trainers.coop, datasets.coop
before = {{name: module for name, module in sys.modules.items() if name.split('.')[0] in ('trainers', 'datasets')}}
import dassl_plugin
from dassl.config import get_cfg_default
from dassl_plugin.core import ours
after = {{name: module for name, module in sys.modules.items() if name.split('.')[0] in ('trainers', 'datasets')}}
assert after == before, sorted(set(after) ^ set(before))
import trainers.coop
assert trainers.coop.OWNER == 'checkout trainers'
cfg = get_cfg_default()
dassl_plugin.extend_cfg(cfg)
cfg.MODEL.BACKBONE.NAME, cfg.CLIP.PRETRAINED = {tiny_clip.config!r}, {tiny_clip.weights!r}
features = ours.trainers.features
source = features.feature_trainer.build_feature_source(cfg, SimpleNamespace(dataset_dir={str(tmp_path)!r}))
assert type(source) is sys.modules['dassl_plugin._trainers.features.clip_features'].CLIPFeatureSource
print('ok', type(source).__name__)
"""
    assert run_in_checkout(checkout, script, text=True).split()[-2:] == ["ok", "CLIPFeatureSource"]


@needs_dassl
def test_our_objects_unpickle_in_a_fresh_process(tmp_path):
    """What a DataLoader worker started by spawn / forkserver does with what it is sent: a fresh
    process, with the checkout's packages first on sys.path, unpickles our objects."""
    from dassl_plugin.core import ours

    seeds = ours.trainers.features.clip_features.ViewSeeds(3, 1, ["images/a.jpg", "images/b.jpg"])
    datum = ours.datasets.datum.Datum("images/a.jpg", 2, "banded")
    script = """
import pickle, sys
import trainers.coop
seeds, datum = pickle.loads(sys.stdin.buffer.read())
assert trainers.coop.OWNER == 'checkout trainers'
print(seeds(0), seeds(1), datum.label, type(seeds).__module__)
"""
    out = run_in_checkout(fake_checkout(tmp_path), script, input=pickle.dumps((seeds, datum))).decode().split()
    assert out == [str(seeds(0)), str(seeds(1)), "2", "dassl_plugin._trainers.features.clip_features"]


# --- Dassl's own build_trainer on a generated dataset ----------------------------------------------
def dassl_run(trainer, dataset, out, opts, capsys):
    """Dassl's path: its config + ours, its seeding, its build_trainer, then ``train()``; the log text."""
    from dassl.config import get_cfg_default
    from dassl.engine import TrainerX, build_trainer
    from dassl.utils import set_random_seed

    import dassl_plugin

    cfg = get_cfg_default()
    dassl_plugin.extend_cfg(cfg)
    cfg.merge_from_file(str(ROOT / "configs" / "datasets" / f"{dataset}.yaml"))
    cfg.merge_from_file(config_file(trainer))
    cfg.merge_from_list(["SEED", 1, "OUTPUT_DIR", str(out), "TRAINER.NAME", dassl_name(trainer), *opts])
    cfg.freeze()
    set_random_seed(cfg.SEED)
    capsys.readouterr()
    built = build_trainer(cfg)
    assert isinstance(built, TrainerX)
    built.train()
    return capsys.readouterr().out


@needs_dassl
@pytest.mark.parametrize("trainer,dataset,metric", [
    ("CMM", "simulated", "accuracy"), ("TipAdapter", "simulated", "accuracy"),
    ("ZeroshotCLIP", "simulated_pairs", "mAP"), ("FLEXCLIP", "simulated", "accuracy"),
    ("GDA", "simulated", "accuracy"), ("LPPlusPlus", "simulated", "accuracy"), ("ZSLP", "simulated", "accuracy"),
    ("CLAP", "simulated", "accuracy"),
])
def test_dassl_build_trainer_equals_standalone_on_simulated(trainer, dataset, metric, tmp_path, capsys):
    opts = ["DATASET.NUM_SHOTS", "2", "DATALOADER.NUM_WORKERS", "0", *FAST.get(trainer, [])]
    plugin = coop_parse(dassl_run(trainer, dataset, tmp_path / "plugin", opts, capsys), keyword=metric)
    run_train(["--seed", 1, "--trainer", trainer, "--output-dir", tmp_path / "standalone",
               "--dataset-config-file", ROOT / "configs" / "datasets" / f"{dataset}.yaml",
               "--config-file", config_file(trainer), *opts])
    standalone = coop_parse(read_log(tmp_path / "standalone"), keyword=metric)
    assert plugin is not None and plugin == pytest.approx(standalone, abs=TRAINED_TOLERANCE)


# --- a real CoOp checkout: its train.py with README's line, its parse_test_res.py ---------------------
@pytest.fixture(scope="module")
def coop_checkout(tmp_path_factory):
    """A copy of COOP_ROOT whose train.py has README's one line, at the end of its config setup."""
    checkout = tmp_path_factory.mktemp("coop") / "CoOp"
    shutil.copytree(COOP_ROOT, checkout, ignore=shutil.ignore_patterns(".git", "output", "__pycache__"))
    train_py = checkout / "train.py"
    anchor = "    extend_cfg(cfg)\n"
    assert anchor in train_py.read_text(), "CoOp's train.py changed: README's instructions need an update"
    train_py.write_text(train_py.read_text().replace(anchor, anchor + COOP_LINE, 1))
    return checkout


def parse_test_res(checkout, folder):
    """CoOp's parse_test_res.py on ``folder`` (its seed folders): the mean it prints."""
    proc = subprocess.run([sys.executable, "parse_test_res.py", str(folder)], capture_output=True, text=True,
                          cwd=checkout)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return float(re.findall(r"\* accuracy: ([\d.]+)% \+- ", proc.stdout)[-1])


@needs_coop
@pytest.mark.parametrize("trainer", [
    "ZeroshotCLIP", "TipAdapter", "CMM", "FLEXCLIP", "GDA", "LPPlusPlus", "ZSLP", "CLAP"])
def test_coop_train_py_runs_our_trainer_like_standalone(trainer, coop_checkout, tiny_clip, dtd_root, tmp_path):
    plugin_out = tmp_path / "coop" / trainer / "seed1"
    args = tiny_args(tiny_clip, dtd_root, plugin_out, "DATASET.NUM_SHOTS", "2", *FAST.get(trainer, []),
                     trainer=dassl_name(trainer), flags=["--config-file", config_file(trainer)])
    env = {**os.environ, "PYTHONPATH": str(ROOT)}  # FEWSHOT_CLIP_CACHE: this test's cache, shared by both runs
    proc = subprocess.run([sys.executable, "train.py", *map(str, args)], capture_output=True, text=True,
                          cwd=coop_checkout, env=env)
    plugin_log = read_log(plugin_out)
    assert proc.returncode == 0, (proc.stderr + plugin_log)[-3000:]
    assert "Loading dataset: DescribableTextures" in plugin_log  # Dassl's DataManager, CoOp's dataset class
    assert "shot_2-seed_1.pkl" in plugin_log  # CoOp's own few-shot file

    standalone_out = tmp_path / "standalone" / trainer / "seed1"
    run_train(tiny_args(tiny_clip, dtd_root, standalone_out, "DATASET.NUM_SHOTS", "2", *FAST.get(trainer, []),
                        trainer=trainer, flags=["--config-file", config_file(trainer)]))
    standalone_log = read_log(standalone_out)
    # the same feature cache entries (same sample lists, transforms and weights): the plugin run filled them
    assert re.search(r"Feature cache: [1-9]\d* hit\(s\), 0 miss\(es\)", standalone_log), standalone_log[-2000:]
    accuracy = parse_test_res(coop_checkout, plugin_out.parent)
    training_free = trainer in ("ZeroshotCLIP", "TipAdapter", "GDA")
    assert accuracy == pytest.approx(coop_parse(standalone_log), abs=0 if training_free else TRAINED_TOLERANCE)
    if training_free:  # the whole result block: total, correct, accuracy, error, macro-F1
        assert RESULT_BLOCK.findall(plugin_log) == RESULT_BLOCK.findall(standalone_log)
