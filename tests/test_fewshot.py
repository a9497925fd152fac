"""Few-shot sampling on a dataset in CoOp's layout equals the protocol computed independently
(random.seed, per label random.sample in order of first appearance, train K then val
min(K, 4)); the JSON cache, its invalidation, too-large K and base/new subsampling."""
import json
import os
import random

import pytest

from coop_layouts import DTD_CLASSES, as_tuples, build, dtd, reference_fewshot

COUNTS = (40, 12, 5, 3, 10)  # images per class; the written split gives these train sizes:
TRAIN_PER_CLASS = (24, 8, 3, 1, 6)
NAME = "DescribableTextures"


@pytest.fixture
def root(tmp_path):
    dtd(tmp_path, split_file=True, counts=COUNTS)
    return tmp_path


def split_path(root):
    return os.path.join(root, "dtd", "split_zhou_DescribableTextures.json")


def expected_fewshot(root, seed, num_shots):
    """Straight from the split file: seed, sample train with K, then val with min(K, 4)."""
    image_dir = os.path.join(root, "dtd", "images")
    with open(split_path(root)) as f:
        split = json.load(f)
    lists = {key: [(os.path.join(image_dir, rel), label, name) for rel, label, name in records]
             for key, records in split.items()}
    random.seed(seed)
    train = reference_fewshot(lists["train"], num_shots)
    val = reference_fewshot(lists["val"], min(num_shots, 4))
    return train, val


@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.parametrize("num_shots", [1, 2, 4, 16])
def test_sample_matches_protocol(root, seed, num_shots):
    ds = build(root, NAME, num_shots=num_shots, seed=seed)
    train, val = expected_fewshot(root, seed, num_shots)
    assert as_tuples(ds.train_x) == train
    assert as_tuples(ds.val) == val
    assert len(train) == sum(min(num_shots, n) for n in TRAIN_PER_CLASS)
    assert len(ds.test) == sum(max(1, n // 5) for n in COUNTS)  # test is never sampled


def test_seeds_draw_different_images(root):
    samples = [as_tuples(build(root, NAME, num_shots=4, seed=seed).train_x) for seed in (1, 2)]
    assert samples[0] != samples[1]


def test_classes_smaller_than_k_are_kept_whole_with_a_warning(root, capsys):
    ds = build(root, NAME, num_shots=16, seed=1)
    per_class = [sum(item.label == label for item in ds.train_x) for label in range(len(COUNTS))]
    assert per_class == [16, 8, 3, 1, 6]
    assert "braided (3)" in capsys.readouterr().out


def test_second_build_reads_the_json_cache(root, monkeypatch):
    first = build(root, NAME, num_shots=4, seed=2)
    cache = os.path.join(root, "dtd", "split_fewshot", "shot_4-seed_2.json")
    with open(cache) as f:
        cached = json.load(f)
    assert len(cached["train"]) == len(first.train_x) and not os.path.isabs(cached["train"][0][0])

    def fail(*args, **kwargs):
        raise AssertionError("sampled again instead of reading the cache")

    monkeypatch.setattr(random, "sample", fail)
    second = build(root, NAME, num_shots=4, seed=2)
    assert as_tuples(second.train_x) == as_tuples(first.train_x)
    assert as_tuples(second.val) == as_tuples(first.val)


def test_cache_of_a_changed_split_is_ignored(root):
    stale = build(root, NAME, num_shots=2, seed=1)
    dropped = os.path.relpath(stale.train_x[0].impath, os.path.join(root, "dtd", "images"))
    with open(split_path(root)) as f:
        split = json.load(f)
    split["train"] = [record for record in split["train"] if record[0] != dropped]
    with open(split_path(root), "w") as f:
        json.dump(split, f)
    ds = build(root, NAME, num_shots=2, seed=1)
    assert stale.train_x[0].impath not in {item.impath for item in ds.train_x}
    assert (as_tuples(ds.train_x), as_tuples(ds.val)) == expected_fewshot(root, 1, 2)


def test_k_larger_than_every_class_fails(root):
    with pytest.raises(ValueError, match="NUM_SHOTS=50"):
        build(root, NAME, num_shots=50, seed=1)


@pytest.mark.parametrize("subsample, kept", [("base", [0, 1, 2]), ("new", [3, 4])])
def test_base_new_subsampling_relabels(root, subsample, kept):
    """Base = the first ceil(5 / 2) = 3 labels, new = the other 2, renumbered from 0; the
    few-shot sample is drawn on all classes first, as in CoOp."""
    full = build(root, NAME, num_shots=2, seed=1)
    ds = build(root, NAME, num_shots=2, seed=1, subsample=subsample)
    relabel = {old: new for new, old in enumerate(kept)}

    def expected(items):
        return [(path, relabel[label], name) for path, label, name in as_tuples(items) if label in relabel]

    assert as_tuples(ds.train_x) == expected(full.train_x)
    assert as_tuples(ds.val) == expected(full.val)
    assert as_tuples(ds.test) == expected(full.test)
    assert ds.classnames == [DTD_CLASSES[i] for i in kept]
    assert ds.num_classes == len(kept)
