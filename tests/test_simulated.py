"""The simulated benchmark: deterministic, CLIP-like, and usable by every feature trainer."""
import random

import numpy as np
import pytest
import torch

from conftest import ROOT, read_log, run_train
from datasets.datum import Datum
from datasets.simulated import SimulatedWorld, SimulationSpec, world_for
from trainers.core.config import get_cfg_default


def spec(**changes):
    cfg = get_cfg_default()
    for key, value in changes.items():
        cfg.DATASET.SIMULATED[key.upper()] = value
    return SimulationSpec.from_cfg(cfg.DATASET.SIMULATED)


def zs_args(out, *opts, dataset="simulated", trainer="ZeroshotCLIP", flags=()):
    return [*flags, "--root", "", "--seed", "1", "--trainer", trainer,
            "--dataset-config-file", ROOT / f"configs/datasets/{dataset}.yaml", "--output-dir", out, *opts]


def test_same_seed_same_world_other_seed_other_world():
    a, b, c = SimulatedWorld(spec()), SimulatedWorld(spec()), SimulatedWorld(spec(seed=1))
    for split in SimulatedWorld.SPLITS:
        assert np.array_equal(a.features[split], b.features[split])
        assert not np.allclose(a.features[split], c.features[split])
    assert np.array_equal(a.text_features(a.classnames, "x {}"), b.text_features(b.classnames, "x {}"))


def test_world_has_a_modality_gap_and_misalignment():
    w = SimulatedWorld(spec())
    images, texts = w.features["test"], w.text_prototypes
    gap = np.linalg.norm(images.mean(0) - texts.mean(0))
    labels = np.repeat(np.arange(w.spec.num_classes), w.spec.test_per_class)
    own = np.mean(np.sum(images * texts[labels], axis=1))
    assert gap > 0.5 and own < 0.6  # image and text features live apart, as in CLIP
    aligned = SimulatedWorld(spec(gap=0.0, rotation=0.0))
    assert np.linalg.norm(aligned.features["test"].mean(0) - texts.mean(0)) < gap / 2


def test_zero_shot_on_simulated_is_moderate_and_the_ensemble_helps(tmp_path):
    custom = run_train(zs_args(tmp_path / "custom")).test()
    ensemble = run_train(zs_args(tmp_path / "ens", trainer="ZeroshotCLIP2")).test()
    shifted = run_train(zs_args(tmp_path / "shift", dataset="simulated_shift", flags=["--eval-only"])).test()
    assert 40.0 < custom < 70.0  # well above chance (3.1%), far from solved
    assert ensemble > custom  # averaging templates removes template noise
    assert shifted < custom - 5.0  # the shifted test set is harder
    assert "Prompt ensembling (n=8)" in read_log(tmp_path / "ens")


def test_fewshot_sampling_on_simulated_follows_the_protocol(tmp_path):
    trainer = run_train(zs_args(tmp_path / "run", "DATASET.NUM_SHOTS", "4", flags=["--no-train"]))
    world = world_for(trainer.cfg)
    random.seed(1)
    expected = []
    for label in range(world.spec.num_classes):
        group = [d for d in world.items("train") if d.label == label]
        expected.extend(random.sample(group, 4))
    assert trainer.dataset.train_x == expected
    assert len(trainer.dataset.val) == 4 * world.spec.num_classes


def test_augmented_views_are_deterministic_and_distinct(tmp_path):
    trainer = run_train(zs_args(tmp_path / "run", "DATASET.NUM_SHOTS", "2", flags=["--no-train"]))
    views = trainer.augmented_train_features(num_views=3).features
    again = trainer.augmented_train_features(num_views=3).features
    assert views.shape[0] == 3 and torch.equal(views, again)
    assert not torch.allclose(views[0], views[1])
    plain = trainer.split_features("train").features
    assert torch.nn.functional.cosine_similarity(views[0], plain).min() > 0.9  # jitter, not new images


def test_unknown_item_is_a_clear_error(tmp_path):
    trainer = run_train(zs_args(tmp_path / "run", flags=["--no-train"]))
    with pytest.raises(KeyError, match="not an item of the simulated dataset"):
        trainer.features.image_features([Datum("sim/train/nope/0000", 0)], "train")
