"""ImageNet -> V2 / Sketch / A / R: the shipped 200-class wnid lists, the folder check, class ids
(wnids) on the REAL 1000-class list with CLIP's duplicate names ("missile", "sunglasses"),
checkpoints matched by wnid through an eval-only run, and the refusal to train on a test-only set.

References, independent of the code under test: open_clip ships CLIP's 1000 ImageNet names (which
CoOp's classnames.txt copies) and timm the 1000 wnids in the same order, plus the A and R wnid
lists. The generated tree has one tiny image per ImageNet class; the variants' class folders are
symlinks to those folders, so the 1000-class layouts cost one set of 1000 images.
"""
import os
import re
from pathlib import Path

import pytest
import timm.data
import torch
from open_clip.zero_shot_metadata import IMAGENET_CLASSNAMES

from conftest import ROOT, read_log, run_train, tiny_args
from coop_layouts import LAYOUTS, build, write_image, write_lines
from datasets.base import DatasetLayoutError
from datasets.imagenet import IMAGENET_200_WNIDS
from datasets.registry import DATASET_REGISTRY
from test_linear_probe import sim_args
from trainers.core.checkpoint import save_checkpoint
from trainers.core.class_map import ClassList, ClassMismatchError, class_index_map, dataset_class_ids
from trainers.core.registry import TRAINER_REGISTRY

WNIDS = timm.data.ImageNetInfo().label_names()  # ImageNet's labels 0..999 (sorted wnids)
TIMM_INFO = Path(timm.data.__file__).parent / "_info"
MISSILE = "n03773504"  # label 657, the missile ImageNet-R holds (the other one is n04008634, label 744)


def timm_wnids(name):
    return (TIMM_INFO / name).read_text().split()


# dataset -> (folder, image folder, its labels' wnids per the references, folder name of label n)
VARIANTS = {
    "ImageNetV2": ("imagenetv2", "imagenetv2-matched-frequency-format-val", WNIDS, lambda n, wnid: str(n)),
    "ImageNetSketch": ("imagenet-sketch", "images", WNIDS, lambda n, wnid: wnid),
    "ImageNetA": ("imagenet-adversarial", "imagenet-a", sorted(timm_wnids("imagenet_a_synsets.txt")),
                  lambda n, wnid: wnid),
    "ImageNetR": ("imagenet-rendition", "imagenet-r", sorted(timm_wnids("imagenet_r_synsets.txt")),
                  lambda n, wnid: wnid),
}


def classes_of(dataset):
    return ClassList(dataset.classnames, dataset_class_ids(dataset))


# --- the shipped 200-class lists and the folder check --------------------------------------------
@pytest.mark.parametrize("name, synsets", [("ImageNetA", "imagenet_a_synsets.txt"),
                                           ("ImageNetR", "imagenet_r_synsets.txt")])
def test_shipped_lists_are_the_published_200_wnids(name, synsets):
    wnids = IMAGENET_200_WNIDS[name]
    assert len(wnids) == len(set(wnids)) == 200 and wnids == sorted(wnids)
    assert wnids == sorted(timm_wnids(synsets)) and set(wnids) <= set(WNIDS)


def test_the_two_lists_overlap_as_published():
    assert len(set(IMAGENET_200_WNIDS["ImageNetA"]) & set(IMAGENET_200_WNIDS["ImageNetR"])) == 86


@pytest.mark.parametrize("name, folder, image_folder",
                         [("ImageNetA", "imagenet-adversarial", "imagenet-a"),
                          ("ImageNetR", "imagenet-rendition", "imagenet-r")])
def test_a_folder_outside_the_200_classes_is_an_error(tmp_path, name, folder, image_folder):
    LAYOUTS[name](tmp_path)
    write_image(os.path.join(tmp_path, folder, image_folder, "n99999999", "0.jpg"))
    with pytest.raises(DatasetLayoutError, match=r"n99999999.*not among the 200"):
        build(tmp_path, name)


# --- the real 1000-class list ----------------------------------------------------------------------
@pytest.fixture(scope="module")
def real_root(tmp_path_factory):
    """ImageNet with CoOp's real classnames.txt (wnid + CLIP name, 1000 lines) and one image per
    class (val = the same folders); each variant with the same classnames.txt and its class folders
    as symlinks to ImageNet's (V2: folder n -> line n's wnid)."""
    root = tmp_path_factory.mktemp("real_imagenet")
    lines = [f"{wnid} {name}" for wnid, name in zip(WNIDS, IMAGENET_CLASSNAMES)]
    train = root / "imagenet" / "images" / "train"
    write_lines(root / "imagenet" / "classnames.txt", lines)
    for wnid in WNIDS:
        write_image(str(train / wnid / f"{wnid}_0.JPEG"))
    (root / "imagenet" / "images" / "val").symlink_to(train)
    for folder, image_folder, wnids, folder_of in VARIANTS.values():
        write_lines(root / folder / "classnames.txt", lines)
        (root / folder / image_folder).mkdir(parents=True)
        for n, wnid in enumerate(wnids):
            (root / folder / image_folder / folder_of(n, wnid)).symlink_to(train / wnid)
    return root


@pytest.fixture(scope="module")
def real_imagenet(real_root):
    return build(real_root, "ImageNet")


def test_imagenet_labels_carry_their_wnids_beside_clips_duplicate_names(real_imagenet):
    assert real_imagenet.classnames == list(IMAGENET_CLASSNAMES) and real_imagenet.class_ids == WNIDS
    names = real_imagenet.classnames
    assert [i for i, n in enumerate(names) if n == "missile"] == [657, 744]
    assert [i for i, n in enumerate(names) if n == "sunglasses"] == [836, 837]
    assert real_imagenet.class_ids[657] == MISSILE


@pytest.mark.parametrize("name", list(VARIANTS))
def test_full_index_map_from_imagenet_selects_by_wnid(real_root, real_imagenet, name):
    variant = build(real_root, name)
    expected = [WNIDS.index(wnid) for wnid in VARIANTS[name][2]]
    assert variant.class_ids == VARIANTS[name][2]
    index = class_index_map(classes_of(real_imagenet), classes_of(variant)).tolist()
    assert index == expected
    assert [IMAGENET_CLASSNAMES[i] for i in index] == variant.classnames  # each label keeps its own name
    if name in ("ImageNetV2", "ImageNetSketch"):  # the same classes: a checkpoint loads without remapping
        assert index == list(range(1000)) and classes_of(real_imagenet).same_classes(classes_of(variant))
    if name == "ImageNetR":
        assert index[variant.class_ids.index(MISSILE)] == 657 and variant.classnames.count("missile") == 1


def test_checkpoints_without_ids_match_by_name_unless_a_name_is_ambiguous(real_root, real_imagenet):
    old = ClassList(real_imagenet.classnames)  # a checkpoint saved before class ids were recorded
    a, r = build(real_root, "ImageNetA"), build(real_root, "ImageNetR")
    assert class_index_map(old, classes_of(a)).tolist() == class_index_map(classes_of(real_imagenet),
                                                                           classes_of(a)).tolist()
    with pytest.raises(ClassMismatchError, match=r"'missile' \(trained labels \[657, 744\]\).*retrain"):
        class_index_map(old, classes_of(r))
    names_as_ids = ClassList(old.names, old.names)  # datasets without wnids (Dassl's own, in plugin mode)
    with pytest.raises(ClassMismatchError, match=r"'missile' .*no ids other than their names"):
        class_index_map(names_as_ids, ClassList(r.classnames, r.classnames))


def test_foreign_or_missing_ids_are_named(real_imagenet):
    trained = classes_of(real_imagenet)
    with pytest.raises(ClassMismatchError, match=r"2 evaluation class id\(s\) were not trained on \(the model has "
                                                 r"1000 classes\), e.g. 'n99999999' \(made up\), 'banded'"):
        class_index_map(trained, ClassList(["tench", "made up", "banded"], ["n01440764", "n99999999", "banded"]))
    partial = ClassList(trained.names[:10], trained.ids[:10])  # a model of 10 classes, evaluated on R
    r_wnids = IMAGENET_200_WNIDS["ImageNetR"]
    r = ClassList([IMAGENET_CLASSNAMES[WNIDS.index(w)] for w in r_wnids], r_wnids)
    missing = [w for w in r_wnids if w not in WNIDS[:10]]
    first = re.escape(f"'{missing[0]}' ({IMAGENET_CLASSNAMES[WNIDS.index(missing[0])]})")
    message = rf"{len(missing)} evaluation class id\(s\) were not trained on \(the model has 10 .*{first}"
    with pytest.raises(ClassMismatchError, match=message):
        class_index_map(partial, r)


# --- a checkpoint through an eval-only run -----------------------------------------------------------
def probe_args(tiny_clip, root, out, dataset, *opts, flags=()):
    args = tiny_args(tiny_clip, root, out, *opts, flags=flags, trainer="LinearProbe")
    args[args.index(str(ROOT / "configs/datasets/dtd.yaml"))] = str(ROOT / f"configs/datasets/{dataset}.yaml")
    return args + ["DATALOADER.TEST.BATCH_SIZE", "256"]


@pytest.fixture(scope="module")
def imagenet_probe(tiny_clip, real_root, tmp_path_factory):
    """A LinearProbe checkpoint of the 1000 ImageNet classes, written by the trainer's own save_model,
    whose row i is recognisable: bias i, weights drawn from a fixed seed."""
    run = tmp_path_factory.mktemp("imagenet_probe")
    trainer = run_train(probe_args(tiny_clip, real_root, run, "imagenet", "DATASET.NUM_SHOTS", "0",
                                   flags=["--no-train"]))
    generator = torch.Generator().manual_seed(0)
    trainer.head.set_weights(torch.randn(1000, trainer.head.weight.shape[1], generator=generator),
                             torch.arange(1000, dtype=torch.float32))
    trainer.save_model(0, run)
    return trainer, run


@pytest.mark.parametrize("name, dataset", [("ImageNetA", "imagenet_a"), ("ImageNetR", "imagenet_r")])
def test_eval_only_puts_each_wnids_row_in_its_place(tiny_clip, real_root, imagenet_probe, tmp_path, name, dataset):
    trained, run = imagenet_probe
    ckpt = torch.load(run / "linear_probe" / "model.pth.tar-1", weights_only=True)
    assert ckpt["class_ids"] == WNIDS and ckpt["classnames"] == list(IMAGENET_CLASSNAMES)
    out = tmp_path / name
    evaluated = run_train(probe_args(tiny_clip, real_root, out, dataset, flags=["--eval-only", "--model-dir", run]))
    expected = [WNIDS.index(wnid) for wnid in VARIANTS[name][2]]
    assert evaluated.head.bias.tolist() == expected
    assert torch.equal(evaluated.head.weight, trained.head.weight[expected])
    if name == "ImageNetR":
        assert evaluated.head.bias[evaluated.class_ids.index(MISSILE)] == 657
    test = evaluated.split_features("test")
    with torch.no_grad():
        logits, trained_logits = evaluated.model_inference(test.features), trained.model_inference(test.features)
    assert torch.allclose(logits, trained_logits[:, expected], rtol=1e-5, atol=1e-6)  # the same rows, any BLAS
    assert "Evaluating 200 classes with a model trained on 1000 (classes matched by id)" in read_log(out)


def test_an_old_checkpoint_without_ids_stops_on_imagenet_r_asking_to_retrain(tiny_clip, real_root, imagenet_probe,
                                                                               tmp_path):
    _, run = imagenet_probe
    ckpt = torch.load(run / "linear_probe" / "model.pth.tar-1", weights_only=True)
    del ckpt["class_ids"]  # as saved before class ids were recorded
    old = tmp_path / "old"
    save_checkpoint(ckpt, str(old / "linear_probe"))
    with pytest.raises(ClassMismatchError, match=r"'missile' \(trained labels \[657, 744\]\).*retrain the model"):
        run_train(probe_args(tiny_clip, real_root, tmp_path / "r", "imagenet_r",
                             flags=["--eval-only", "--model-dir", old]))


# --- no training on a test-only set ------------------------------------------------------------------
TRAINING_FREE = {"ZeroshotCLIP", "ZeroshotCLIP2"}  # fit nothing on train_x


@pytest.mark.parametrize("dataset", ["ImageNetV2", "ImageNetSketch", "ImageNetA", "ImageNetR", "SimulatedShift"])
def test_every_trainer_that_reads_train_refuses_a_test_only_set(dataset):
    dataset_cls = DATASET_REGISTRY.get(dataset)
    refused = set()
    for trainer_name in TRAINER_REGISTRY.names():
        try:
            TRAINER_REGISTRY.get(trainer_name).check_trains_on(dataset_cls)
        except ValueError as e:
            refused.add(trainer_name)
            source = "Simulated" if dataset == "SimulatedShift" else "ImageNet"
            assert f"{dataset} is a test-only set" in str(e) and f"Train on {source}, then evaluate here with " \
                   "--eval-only --model-dir" in str(e)
    assert refused == set(TRAINER_REGISTRY.names()) - TRAINING_FREE
    for trainer_name in TRAINER_REGISTRY.names():  # a dataset with its own training split: nobody refuses
        TRAINER_REGISTRY.get(trainer_name).check_trains_on(DATASET_REGISTRY.get("ImageNet"))


def test_a_training_run_on_a_test_only_set_stops_before_writing_anything(tmp_path):
    out = tmp_path / "refused"
    with pytest.raises(ValueError, match="SimulatedShift is a test-only set .* LinearProbe fits on the training split"):
        run_train(sim_args(out, "LinearProbe", 4, dataset="simulated_shift"))
    assert not out.exists()
    # training-free: allowed, and evaluated
    zero_shot = run_train(sim_args(tmp_path / "zs", "ZeroshotCLIP", 4, dataset="simulated_shift"))
    assert "Finish training" in read_log(tmp_path / "zs") and zero_shot.test() > 0
    assert zero_shot.class_ids == zero_shot.classnames  # datasets other than ImageNet's: ids are the names
    built = run_train(sim_args(tmp_path / "built", "LinearProbe", 4, dataset="simulated_shift",
                               flags=["--no-train"]))  # building is allowed
    with pytest.raises(ValueError, match="SimulatedShift is a test-only set"):
        built.train()  # and train() itself refuses, whoever calls it (Dassl's train.py in plugin mode)
