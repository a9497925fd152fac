"""Scale benchmark: every feature-level trainer on the simulated benchmark at ImageNet size.

    python scripts/bench_scale.py                          # scales 0.1 and 1, every trainer
    python scripts/bench_scale.py --scale 0.1 --trainers TipAdapter GDA --timeout 300
    python scripts/bench_scale.py --repo /tmp/base         # the same table for another checkout (before/after)
    python scripts/bench_scale.py --scale 1 --trainers CMM CMM-search --opts OPTIM.MAX_STEPS 1000

Scale 1 is issue 14's ImageNet size: DATASET.SIMULATED.NUM_CLASSES 1000, DIM 1024, TRAIN_PER_CLASS
20, VAL_PER_CLASS 4, TEST_PER_CLASS 50, DATASET.NUM_SHOTS 16, each trainer's ``sim.yaml`` if any (a
16,000-image few-shot set, 4,000 val and 50,000 test features); ``--scale s`` multiplies the number
of classes by s and keeps every other size. The trainers are the registry's feature-level ones
(``FeatureTrainer.feature_level``), plus CMM with TRAINER.CMM.SEARCH on (``CMM-search``).

Each run is its own subprocess (``--timeout`` seconds, then reported as ``timeout``), which times
its phases in-process:
  load      building the trainer and every feature the run reads (``prepare_features``: on the
            simulated benchmark, generating them; on images, reading the feature cache); each
            distinct feature request is served once, later requests get the same tensor;
  fit       ``train()`` without the final test: the fit / search of a training-free trainer, the
            epochs (and any search) of a trained one;
  evaluate  the final test.
and reports its peak RSS (``ru_maxrss``) and test accuracy. The floor is the time of reading the
run's feature tensors once from the feature cache: the child stores every tensor the run read as
feature cache entries (fp16, ``trainers.features.feature_cache``) and times loading them back (checksums
included). ``total`` is load + fit + evaluate on the simulated benchmark, whose load generates the
features; ``cached`` is floor + fit + evaluate, the same run reading a warm feature cache instead
(as every run on real images does once its features are extracted), and ``x floor`` is cached / floor.
``--opts KEY VALUE ...`` applies to every row (e.g. ``OPTIM.MAX_STEPS``, the step budget).
"""
import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FULL_SIZE = {"NUM_CLASSES": 1000, "DIM": 1024, "TRAIN_PER_CLASS": 20, "VAL_PER_CLASS": 4, "TEST_PER_CLASS": 50}
SHOTS = 16
VARIANTS = {"CMM": {"CMM": [], "CMM-search": ["TRAINER.CMM.SEARCH", "True"]}}  # trainer -> {row name: opts}


def simulated_opts(scale):
    """The KEY VALUE options of one size: classes scaled, every other size as at scale 1."""
    sizes = dict(FULL_SIZE, NUM_CLASSES=max(2, round(FULL_SIZE["NUM_CLASSES"] * scale)))
    return [str(x) for key, value in sizes.items() for x in (f"DATASET.SIMULATED.{key}", value)] + \
        ["DATASET.NUM_SHOTS", str(SHOTS)]


def feature_level_rows(repo):
    """``{row name: (trainer, extra opts)}`` of every feature-level trainer registered in ``repo``."""
    code = ("import json, trainers\ntry:\n    from trainers.core.registry import TRAINER_REGISTRY\n"
            "except ImportError:  # a checkout before the trainers/ split\n"
            "    from trainers.registry import TRAINER_REGISTRY\n"
            "print(json.dumps([c.__name__ for c in TRAINER_REGISTRY.classes() if c.feature_level]))")
    names = json.loads(subprocess.run([sys.executable, "-c", code], cwd=repo, check=True, capture_output=True,
                                      text=True, env=child_env(repo)).stdout)
    rows = {}
    for name in names:
        for row, opts in VARIANTS.get(name, {name: []}).items():
            rows[row] = (name, opts)
    return rows


def child_env(repo):
    return dict(os.environ, PYTHONPATH=os.pathsep.join([repo, os.environ.get("PYTHONPATH", "")]))


# --- the child: one timed run -------------------------------------------------------------------------
def call_key(name, args, kwargs):
    """What identifies one feature request: the method, its items (by path) and its other arguments."""
    def part(arg):
        if isinstance(arg, (list, tuple)) and arg and hasattr(arg[0], "impath"):
            return tuple(item.impath for item in arg)
        return tuple(arg) if isinstance(arg, list) else repr(arg)
    return name, tuple(part(a) for a in args), tuple(sorted((k, repr(v)) for k, v in kwargs.items()))


class RecordingSource:
    """Wraps a FeatureSource: each distinct image / text feature request is served once and kept,
    as a warm feature cache would serve it (``served``: the run's feature tensors, for the floor)."""

    METHODS = ("image_features", "augmented_image_features", "text_features", "pair_text_features")

    def __init__(self, source):
        self.source, self.served = source, {}

    def __getattr__(self, name):
        attr = getattr(self.source, name)
        if name not in self.METHODS:
            return attr

        def served_once(*args, **kwargs):
            key = call_key(name, args, kwargs)
            if key not in self.served:
                self.served[key] = attr(*args, **kwargs)
            return self.served[key]
        return served_once


def floor_seconds(tensors, folder):
    """Seconds to load ``tensors`` back once as feature cache entries (written first, untimed)."""
    try:
        from trainers.features.feature_cache import FeatureCache
    except ImportError:  # a checkout before the trainers/ split
        from trainers.feature_cache import FeatureCache
    cache = FeatureCache(folder)
    entries = []
    for i, tensor in enumerate(tensors):
        paths = [f"item{j}" for j in range(tensor.shape[0])]
        cache.save("bench", f"tensor{i}", f"{i:064x}", paths, tensor, meta={})
        entries.append((f"tensor{i}", f"{i:064x}", paths))
    start = time.perf_counter()
    for label, key, paths in entries:
        cache.load("bench", label, key, paths)
    return time.perf_counter() - start


def layout_modules():
    """The registry, the cached-feature base and the run pipeline: from this layout, or from a
    checkout before trainers/ was split into core/ and features/ (``--repo`` for a before table)."""
    import importlib

    try:
        names = ("trainers.core.registry", "trainers.features.feature_trainer", "trainers.core.run")
        return tuple(importlib.import_module(name) for name in names)
    except ImportError:
        names = ("trainers.registry", "trainers.feature_trainer", "train")
        return tuple(importlib.import_module(name) for name in names)


def run_child(repo, trainer_name, opts, out_dir, result_path):
    """One run of ``repo``'s train.py main, its phases timed by wrapping the trainer's methods."""
    registry, feature_trainer, train = layout_modules()

    phases = {"load": 0.0, "fit": 0.0, "evaluate": 0.0}
    state = {}
    build, build_source = registry.build_trainer, feature_trainer.build_feature_source

    def recording_source(cfg, dataset):
        state["source"] = RecordingSource(build_source(cfg, dataset))
        return state["source"]

    def timed_build(cfg):
        start = time.perf_counter()
        trainer = build(cfg)
        trainer.prepare_features()
        phases["load"] = time.perf_counter() - start
        train_all, test = trainer.train, trainer.test

        def timed_test(split=None):
            start = time.perf_counter()
            result = test(split)
            if split in (None, cfg.TEST.SPLIT):
                phases["evaluate"] += time.perf_counter() - start
                state["accuracy"] = result
            return result

        def timed_train():
            start = time.perf_counter()
            train_all()
            phases["fit"] = time.perf_counter() - start - phases["evaluate"]
        trainer.train, trainer.test = timed_train, timed_test
        return trainer

    registry.build_trainer, feature_trainer.build_feature_source = timed_build, recording_source
    method_config = os.path.join(repo, f"configs/trainers/{trainer_name}/sim.yaml")  # absent: the defaults
    argv = ["--root", "", "--seed", "1", "--trainer", trainer_name, "--output-dir", os.path.join(out_dir, "run"),
            "--dataset-config-file", os.path.join(repo, "configs/datasets/simulated.yaml"),
            *(["--config-file", method_config] if os.path.exists(method_config) else []), *opts]
    train.main(argv, echo=False)
    peak_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2 ** 20  # Linux: KiB
    floor = floor_seconds(list(state["source"].served.values()), os.path.join(out_dir, "floor"))
    with open(result_path, "w") as f:
        json.dump({**phases, "peak_gb": peak_gb, "accuracy": state.get("accuracy"), "floor": floor}, f)


# --- the parent: subprocesses and the table ----------------------------------------------------------
def run_row(repo, trainer_name, opts, scale, timeout):
    """The child's measurements, or ``{"status": "timeout" | "failed: ..."}``."""
    with tempfile.TemporaryDirectory(prefix="bench_scale_") as tmp:
        result = os.path.join(tmp, "result.json")
        command = [sys.executable, os.path.abspath(__file__), "--child", trainer_name, "--repo", repo,
                   "--result", result, "--out", tmp, "--", *simulated_opts(scale), *opts]
        start = time.perf_counter()
        try:
            done = subprocess.run(command, cwd=repo, env=child_env(repo), capture_output=True, text=True,
                                  timeout=timeout)
        except subprocess.TimeoutExpired:
            return {"status": "timeout"}
        if done.returncode != 0 or not os.path.exists(result):
            lines = (done.stderr or done.stdout).strip().splitlines()
            return {"status": f"failed: {lines[-1] if lines else done.returncode}"}
        with open(result) as f:
            return {"status": "ok", "wall": time.perf_counter() - start, **json.load(f)}


def format_row(name, scale, r):
    head = f"{name:<13} {scale:>5g}"
    if r["status"] != "ok":
        return f"{head}  {r['status']}"
    total = r["load"] + r["fit"] + r["evaluate"]
    cached = r["floor"] + r["fit"] + r["evaluate"]
    acc = "-" if r["accuracy"] is None else f"{r['accuracy']:.2f}"
    return (f"{head} {r['load']:8.1f} {r['fit']:8.1f} {r['evaluate']:8.1f} {total:8.1f} {r['peak_gb']:8.2f} "
            f"{acc:>7} {r['floor']:7.2f} {cached:8.1f} {cached / max(r['floor'], 1e-9):8.1f}")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--trainers", nargs="+", help="rows to run (default: every feature-level trainer)")
    p.add_argument("--scale", type=float, nargs="+", default=[0.1, 1.0], help="fractions of the ImageNet size")
    p.add_argument("--timeout", type=float, default=900.0, help="seconds per run before it is reported as timeout")
    p.add_argument("--repo", default=REPO, help="the checkout to benchmark (e.g. a worktree of an older commit)")
    p.add_argument("--opts", nargs="+", default=[], metavar="KEY VALUE", dest="extra_opts",
                   help="config options added to every row (e.g. OPTIM.MAX_STEPS 1000)")
    p.add_argument("--child", help=argparse.SUPPRESS)
    p.add_argument("--result", help=argparse.SUPPRESS)
    p.add_argument("--out", help=argparse.SUPPRESS)
    p.add_argument("opts", nargs="*", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    repo = os.path.abspath(args.repo)
    if args.child:
        sys.path.insert(0, repo)
        return run_child(repo, args.child, args.opts, args.out, args.result)
    if min(args.scale) <= 0:
        p.error(f"--scale must be positive, got {args.scale}")
    if len(args.extra_opts) % 2:
        p.error(f"--opts must be KEY VALUE pairs, got {args.extra_opts}")
    rows = feature_level_rows(repo)
    chosen = args.trainers or list(rows)
    unknown = [name for name in chosen if name not in rows]
    if unknown:
        p.error(f"--trainers: unknown {unknown}; feature-level rows here: {', '.join(rows)}")
    print(f"Simulated benchmark at ImageNet size x scale ({FULL_SIZE}, {SHOTS} shots), {repo}, "
          f"{os.cpu_count()} CPU(s), timeout {args.timeout:g} s per run"
          + (f", every row with {' '.join(args.extra_opts)}" if args.extra_opts else ""))
    print(f"{'trainer':<13} {'scale':>5} {'load s':>8} {'fit s':>8} {'eval s':>8} {'total s':>8} {'RSS GB':>8} "
          f"{'acc %':>7} {'floor s':>7} {'cached s':>8} {'x floor':>8}", flush=True)
    for scale in args.scale:
        for name in chosen:
            trainer_name, opts = rows[name]
            result = run_row(repo, trainer_name, [*opts, *args.extra_opts], scale, args.timeout)
            print(format_row(name, scale, result), flush=True)


if __name__ == "__main__":
    main()
