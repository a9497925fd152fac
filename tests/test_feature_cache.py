"""The feature cache: encode once, re-encode on any change, never trust a half-written entry."""
import os
import subprocess
import sys

import torch

from conftest import ROOT, run_train, tiny_args


def cache_of(trainer):
    return trainer.features.cache


def entry_files(cache_dir):
    return sorted(os.path.join(d, f) for d, _, files in os.walk(cache_dir) for f in files if f.endswith(".pt"))


def test_second_run_encodes_nothing_and_gives_the_same_features(tiny_clip, dtd_root, tmp_path):
    first = run_train(tiny_args(tiny_clip, dtd_root, tmp_path / "a"))
    assert cache_of(first).encoded > 0 and cache_of(first).hits == 0
    second = run_train(tiny_args(tiny_clip, dtd_root, tmp_path / "b"))
    cache = cache_of(second)
    assert (cache.encoded, cache.misses) == (0, 0) and cache.hits == cache_of(first).misses
    assert torch.equal(first.split_features("test").features, second.split_features("test").features)
    assert "Feature cache: 2 hit(s), 0 miss(es), 0 item(s) encoded" in (tmp_path / "b" / "log.txt").read_text()


def test_changed_backbone_weights_reencode_everything(tiny_clip, dtd_root, tmp_path):
    first = run_train(tiny_args(tiny_clip, dtd_root, tmp_path / "a"))
    other = run_train(tiny_args(tiny_clip, dtd_root, tmp_path / "b", weights=tiny_clip.other_weights))
    assert cache_of(other).hits == 0 and cache_of(other).encoded == cache_of(first).encoded
    assert cache_of(other).directory != cache_of(first).directory


def test_changed_transform_reencodes_images_but_reuses_text(tiny_clip, dtd_root, tmp_path):
    run_train(tiny_args(tiny_clip, dtd_root, tmp_path / "a"))
    changed = run_train(tiny_args(tiny_clip, dtd_root, tmp_path / "b", "INPUT.INTERPOLATION", "bilinear"))
    n_test = len(changed.dataset.test)
    assert cache_of(changed).encoded == n_test  # the test images again; the prompts came from the cache
    assert cache_of(changed).hits == 1


def test_changed_sample_list_never_reuses_features(tiny_clip, dtd_root, tmp_path):
    trainer = run_train(tiny_args(tiny_clip, dtd_root, tmp_path / "a", flags=["--no-train"]))
    items = trainer.dataset.train_x
    source = trainer.features
    hits, encoded = source.cache.hits, source.cache.encoded
    three = source.image_features(items[:3], "train")
    four = source.image_features(items[:4], "train")
    swapped = source.image_features([items[1], items[0], items[2]], "train")
    assert source.cache.hits == hits and source.cache.encoded - encoded == 10
    assert torch.equal(four[:3], three) and torch.equal(swapped[[1, 0, 2]], three)


def test_augmented_views_are_cached_per_view_and_deterministic(tiny_clip, dtd_root, tmp_path):
    trainer = run_train(tiny_args(tiny_clip, dtd_root, tmp_path / "a", flags=["--no-train"]))
    items, source = trainer.dataset.train_x, trainer.features
    encoded = source.cache.encoded
    three = source.augmented_image_features(items, "train", 3)
    assert source.cache.encoded - encoded == 3 * len(items)
    five = source.augmented_image_features(items, "train", 5)
    assert source.cache.encoded - encoded == 5 * len(items)  # only views 3 and 4 were new
    assert torch.equal(five[:3], three)
    assert not torch.allclose(three[0], three[1])  # distinct views
    source.cache.directory = str(tmp_path / "fresh_cache")  # recompute from scratch: same views
    assert torch.equal(source.augmented_image_features(items, "train", 3), three)


def test_interrupted_write_leaves_no_entry_and_is_redone(tiny_clip, dtd_root, tmp_path, monkeypatch):
    real_save = torch.save

    def dying_save(obj, path, *args, **kwargs):
        real_save(obj, path, *args, **kwargs)
        with open(path, "r+b") as f:
            f.truncate(100)  # half-written...
        raise KeyboardInterrupt  # ...and killed

    monkeypatch.setattr(torch, "save", dying_save)
    try:
        run_train(tiny_args(tiny_clip, dtd_root, tmp_path / "a"))
    except KeyboardInterrupt:
        pass
    monkeypatch.setattr(torch, "save", real_save)
    cache_dir = os.environ["FEWSHOT_CLIP_CACHE"]
    assert entry_files(cache_dir) == []
    rerun = run_train(tiny_args(tiny_clip, dtd_root, tmp_path / "b"))
    assert cache_of(rerun).encoded > 0 and len(entry_files(cache_dir)) == 2


def test_killed_process_leaves_only_temporary_files_that_are_never_read(tiny_clip, dtd_root, tmp_path):
    """A SIGKILL-like death (os._exit) in the middle of writing an entry."""
    argv = tiny_args(tiny_clip, dtd_root, tmp_path / "a")
    script = (
        "import os, sys, torch\n"
        f"sys.path.insert(0, {str(ROOT)!r}); sys.path.insert(0, {str(ROOT / 'tests')!r})\n"
        "real = torch.save\n"
        "def die(obj, path, *a, **k):\n"
        "    real(obj, path, *a, **k)\n"
        "    open(path, 'r+b').truncate(64)\n"
        "    os._exit(9)\n"
        "torch.save = die\n"
        "import train\n"
        f"train.main({[str(a) for a in argv]!r}, echo=False)\n"
    )
    proc = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=dict(os.environ))
    assert proc.returncode == 9
    cache_dir = os.environ["FEWSHOT_CLIP_CACHE"]
    leftovers = [f for _, _, files in os.walk(cache_dir) for f in files if ".pt" in f]
    assert leftovers and all(".tmp-" in f for f in leftovers)
    rerun = run_train(tiny_args(tiny_clip, dtd_root, tmp_path / "b"))
    assert cache_of(rerun).hits == 0 and cache_of(rerun).encoded > 0


def test_corrupt_or_foreign_entry_is_reencoded_not_trusted(tiny_clip, dtd_root, tmp_path):
    first = run_train(tiny_args(tiny_clip, dtd_root, tmp_path / "a"))
    text_entry, image_entry = sorted(entry_files(cache_of(first).directory), key=lambda p: "/text/" in p)
    with open(image_entry, "r+b") as f:
        f.truncate(50)
    entry = torch.load(text_entry, weights_only=True)
    entry["paths"] = entry["paths"][::-1]  # a different prompt list under this key
    torch.save(entry, text_entry)
    rerun = run_train(tiny_args(tiny_clip, dtd_root, tmp_path / "b"))
    assert cache_of(rerun).hits == 0 and cache_of(rerun).misses == 2
    log = (tmp_path / "b" / "log.txt").read_text()
    assert f"Feature cache entry {image_entry} is unreadable" in log
    assert f"Feature cache entry {text_entry} does not match its key" in log
    assert torch.equal(rerun.split_features("test").features, first.split_features("test").features)


def test_a_cold_and_a_warm_cache_give_the_same_training_run(tiny_clip, dtd_root, tmp_path):
    """Encoding must not consume the run's random numbers (it used to, via the DataLoader)."""
    opts = ["DATASET.NUM_SHOTS", "4", "OPTIM.NAME", "adamw", "OPTIM.MAX_EPOCH", "2", "FEATURES.AUG_VIEWS", "2",
            "DATALOADER.TRAIN_X.BATCH_SIZE", "4", "TRAINER.CMM.TEMPLATES", "custom", "TRAINER.CMM.NEGATIVE", "random"]
    cold = run_train(tiny_args(tiny_clip, dtd_root, tmp_path / "cold", *opts, trainer="CMM"))
    warm = run_train(tiny_args(tiny_clip, dtd_root, tmp_path / "warm", *opts, trainer="CMM"))
    assert cache_of(cold).encoded > 0 and cache_of(warm).encoded == 0
    for key, value in cold.head.state_dict().items():
        assert torch.equal(value, warm.head.state_dict()[key]), key


def test_atomic_writes_get_the_usual_permissions_not_mkstemps_0600(tmp_path):
    from datasets.atomic_io import write_json

    old = os.umask(0o022)
    try:
        write_json({"a": 1}, tmp_path / "entry.json")
    finally:
        os.umask(old)
    assert (tmp_path / "entry.json").stat().st_mode & 0o777 == 0o644  # a cache shared on a cluster stays readable
