"""The feature cache: encode once, re-encode on any change, never trust a half-written entry."""
import errno
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from PIL import Image

from conftest import ROOT, read_log, run_train, tiny_args, write_dtd
from trainers.features.feature_cache import CacheNotWritableError, file_identities, payload_checksum


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
        "from trainers.core import run as train\n"
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
    from common.atomic_io import write_json

    old = os.umask(0o022)
    try:
        write_json({"a": 1}, tmp_path / "entry.json")
    finally:
        os.umask(old)
    assert (tmp_path / "entry.json").stat().st_mode & 0o777 == 0o644  # a cache shared on a cluster stays readable


# --- identity of the images behind an entry -------------------------------------------------
def accuracy_line(out):
    return [line for line in (Path(out) / "log.txt").read_text().splitlines() if line.startswith("* accuracy:")]


def rotate_test_images(base, transform=None):
    """Give each test image of class c the bytes of the same-numbered test image of class c+1
    (so cached features of the original copy would be wrong); returns {relpath: its source}."""
    split = json.loads((base / "split_zhou_DescribableTextures.json").read_text())
    by_class = {}
    for rel, label, _ in split["test"]:
        by_class.setdefault(label, []).append(rel)
    labels = sorted(by_class)
    source = {rel: by_class[labels[(k + 1) % len(labels)]][i]
              for k, label in enumerate(labels) for i, rel in enumerate(by_class[label])}
    contents = {rel: (base / "images" / src).read_bytes() for rel, src in source.items()}
    for rel, data in contents.items():
        (base / "images" / rel).write_bytes(data)
    return source


def rows_of(trainer, base):
    return {os.path.relpath(item.impath, base / "images"): i for i, item in enumerate(trainer.dataset.test)}


def test_another_copy_with_other_images_is_encoded_not_reused(tiny_clip, dtd_root, tmp_path):
    """Issue 12: a second dataset root, same relative paths, other images, one shared cache."""
    first = run_train(tiny_args(tiny_clip, dtd_root, tmp_path / "a"))
    other_root = tmp_path / "other_copy"
    rotate_test_images(write_dtd(other_root))
    second = run_train(tiny_args(tiny_clip, other_root, tmp_path / "b"))
    n_test = len(second.dataset.test)
    assert (cache_of(second).hits, cache_of(second).misses, cache_of(second).encoded) == (1, 1, n_test)
    fresh = run_train(tiny_args(tiny_clip, other_root, tmp_path / "fresh", "FEATURES.CACHE_DIR", tmp_path / "new"))
    assert cache_of(fresh).hits == 0
    features = second.split_features("test").features
    assert torch.equal(features, fresh.split_features("test").features)
    assert not torch.equal(features, first.split_features("test").features)
    assert accuracy_line(tmp_path / "b") == accuracy_line(tmp_path / "fresh")


def test_identity_changes_with_size_or_mtime_and_reencodes(tiny_clip, dtd_root, tmp_path):
    image = next((dtd_root / "dtd" / "images").rglob("*.jpg"))
    stat_before = file_identities([image], "stat")
    os.utime(image, ns=(image.stat().st_atime_ns, image.stat().st_mtime_ns + 1))
    assert file_identities([image], "stat") != stat_before
    touched = file_identities([image], "stat")
    with open(image, "ab") as f:
        f.write(b"\0")  # a byte after the JPEG's end: same picture, other size
    assert file_identities([image], "stat")[0][0] == touched[0][0] + 1

    first = run_train(tiny_args(tiny_clip, dtd_root, tmp_path / "a"))
    test_image = Path(first.dataset.test[0].impath)
    os.utime(test_image, ns=(test_image.stat().st_atime_ns, test_image.stat().st_mtime_ns + 10**9))
    again = run_train(tiny_args(tiny_clip, dtd_root, tmp_path / "b"))
    assert (cache_of(again).hits, cache_of(again).encoded) == (1, len(again.dataset.test))
    assert torch.equal(again.split_features("test").features, first.split_features("test").features)


def test_sha256_identity_detects_same_size_same_mtime_other_bytes(tiny_clip, dtd_root, tmp_path):
    """``stat`` cannot see such a copy (the documented trade-off); ``sha256`` re-encodes it."""
    base = dtd_root / "dtd"
    split = json.loads((base / "split_zhou_DescribableTextures.json").read_text())
    for rel, _, _ in split["test"]:  # uncompressed BMP bytes under the .jpg names: every file the same size
        path = base / "images" / rel
        with Image.open(path) as img:
            img.save(path, format="BMP")
    other = tmp_path / "copy" / "dtd"
    shutil.copytree(base, other)  # copy2: same modification times
    source = rotate_test_images(other)
    for rel in source:
        st = (base / "images" / rel).stat()
        os.utime(other / "images" / rel, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert file_identities([base / "images" / r for r in source], "stat") == \
        file_identities([other / "images" / r for r in source], "stat")

    sha = ("FEATURES.IMAGE_IDENTITY", "sha256")
    by_stat = run_train(tiny_args(tiny_clip, dtd_root, tmp_path / "a"))
    by_hash = run_train(tiny_args(tiny_clip, dtd_root, tmp_path / "b", *sha))
    assert cache_of(by_hash).encoded == len(by_hash.dataset.test)  # the two modes never share an entry
    stale = run_train(tiny_args(tiny_clip, other.parent, tmp_path / "c"))
    assert cache_of(stale).encoded == 0  # stat mode: reused (the limitation the README states)
    checked = run_train(tiny_args(tiny_clip, other.parent, tmp_path / "d", *sha))
    assert (cache_of(checked).hits, cache_of(checked).encoded) == (1, len(checked.dataset.test))
    original = by_stat.split_features("test").features
    assert torch.equal(stale.split_features("test").features, original)
    rows = rows_of(by_stat, base)
    expected = original[[rows[source[rel]] for rel in rows_of(checked, other)]]
    assert torch.equal(checked.split_features("test").features, expected)


# --- integrity of entries and side files ------------------------------------------------------
def test_flipped_bytes_in_an_entry_payload_are_detected_named_and_reencoded(tiny_clip, dtd_root, tmp_path):
    first = run_train(tiny_args(tiny_clip, dtd_root, tmp_path / "a"))
    image_entry = next(p for p in entry_files(cache_of(first).directory) if "/text/" not in p)
    payload = torch.load(image_entry, weights_only=True)["features"].numpy().tobytes()
    raw = bytearray(Path(image_entry).read_bytes())
    at = raw.find(payload) + len(payload) // 2
    assert raw.find(payload) > 0
    raw[at:at + 3] = bytes(b ^ 0x40 for b in raw[at:at + 3])
    Path(image_entry).write_bytes(bytes(raw))
    assert not torch.equal(torch.load(image_entry, weights_only=True)["features"].float(),
                           first.split_features("test").features)  # torch.load itself does not notice

    rerun = run_train(tiny_args(tiny_clip, dtd_root, tmp_path / "b"))
    assert (cache_of(rerun).hits, cache_of(rerun).misses, cache_of(rerun).encoded) == (1, 1, len(rerun.dataset.test))
    assert f"Feature cache entry {image_entry} fails its checksum" in read_log(tmp_path / "b")
    assert torch.equal(rerun.split_features("test").features, first.split_features("test").features)
    rewritten = torch.load(image_entry, weights_only=True)
    assert rewritten["checksum"] == payload_checksum(rewritten["features"])


@pytest.mark.parametrize("side_file", ["weights_digests.json", "model.json"])
def test_a_truncated_side_file_is_named_and_rebuilt(tiny_clip, dtd_root, tmp_path, side_file):
    first = run_train(tiny_args(tiny_clip, dtd_root, tmp_path / "a"))
    root = Path(os.environ["FEWSHOT_CLIP_CACHE"]) / "features"
    path = root / side_file if side_file == "weights_digests.json" else Path(cache_of(first).directory) / side_file
    good = json.loads(path.read_text())
    path.write_text(path.read_text()[:8])  # '{\n    "...' : the issue's "Unterminated string"

    rerun = run_train(tiny_args(tiny_clip, dtd_root, tmp_path / "b"))
    name = "Weights digest memo" if side_file == "weights_digests.json" else "Model card"
    assert f"{name} {path} is unreadable (JSONDecodeError" in read_log(tmp_path / "b")
    assert json.loads(path.read_text()) == good
    assert accuracy_line(tmp_path / "b") == accuracy_line(tmp_path / "a")
    assert cache_of(rerun).encoded == 0


@pytest.mark.parametrize("cause", ["read-only folder", "a file in the path"])
def test_an_unwritable_cache_folder_says_how_to_choose_another(tiny_clip, dtd_root, tmp_path, cause):
    if cause == "read-only folder":
        if os.geteuid() == 0:
            pytest.skip("root writes into a read-only folder anyway")
        folder = tmp_path / "readonly"
        folder.mkdir()
        folder.chmod(0o555)
    else:
        (tmp_path / "a_file").write_text("")
        folder = tmp_path / "a_file" / "cache"
    with pytest.raises(CacheNotWritableError) as error:
        run_train(tiny_args(tiny_clip, dtd_root, tmp_path / "a", "FEATURES.CACHE_DIR", folder))
    message = str(error.value)
    assert f"feature cache folder {folder}" in message
    assert "FEATURES.CACHE_DIR" in message and "FEWSHOT_CLIP_CACHE" in message


def test_a_disk_full_while_writing_an_entry_leaves_nothing_half_written(tiny_clip, dtd_root, tmp_path, monkeypatch):
    real_save = torch.save

    def full_disk(obj, path, *args, **kwargs):
        real_save(obj, path, *args, **kwargs)
        with open(path, "r+b") as f:
            f.truncate(100)
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(torch, "save", full_disk)
    with pytest.raises(CacheNotWritableError, match="FEWSHOT_CLIP_CACHE"):
        run_train(tiny_args(tiny_clip, dtd_root, tmp_path / "a"))
    cache_dir = os.environ["FEWSHOT_CLIP_CACHE"]
    assert not [f for _, _, files in os.walk(cache_dir) for f in files if ".pt" in f]


# --- what a run's features were --------------------------------------------------------------
def test_identity_names_the_backbone_and_every_entry_used(tiny_clip, dtd_root, tmp_path):
    trainer = run_train(tiny_args(tiny_clip, dtd_root, tmp_path / "a"))
    identity = json.loads(json.dumps(trainer.features.identity()))
    spec = trainer.features.spec
    assert (identity["weights_digest"], identity["precision"], identity["image_identity"]) == \
        (spec.digest, "fp32", "stat")
    assert identity["cache_dir"] == cache_of(trainer).directory
    files = entry_files(identity["cache_dir"])
    assert sorted(identity["entries"]) == ["DescribableTextures/test-eval", "text/prompts"]
    for name, key in identity["entries"].items():  # entry files are <group>/<label>-<key[:24]>.pt
        group, label = name.split("/")
        assert len(key) == 16 and any(p.startswith(os.path.join(identity["cache_dir"], group, f"{label}-{key}"))
                                      for p in files)
    warm = run_train(tiny_args(tiny_clip, dtd_root, tmp_path / "b"))
    assert warm.features.identity() == trainer.features.identity()  # hits are recorded like writes


def test_simulated_identity_names_the_generator_and_its_config(tmp_path):
    from datasets.simulated import SimulatedFeatures, world_for
    from datasets.simulated_pairs import SimulatedPairs
    from trainers.core.config import get_cfg_default

    cfg = get_cfg_default()
    identity = SimulatedFeatures(world_for(cfg)).identity()
    assert (identity["generator"], identity["seed"]) == ("SimulatedWorld", 0)
    cfg.DATASET.SIMULATED.NOISE = 1.0
    assert SimulatedFeatures(world_for(cfg)).identity()["config_digest"] != identity["config_digest"]
    cfg.DATASET.NAME = "SimulatedPairs"
    pairs = SimulatedPairs(cfg).feature_source(cfg).identity()
    assert pairs["generator"] == "PairedWorld" and json.loads(json.dumps(pairs)) == pairs
