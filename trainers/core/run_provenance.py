"""What a run's number was computed from: ``<OUTPUT_DIR>/provenance.json`` beside ``log.txt``.

A results table may print ``ours - published`` only when our number and the published one come
from the same experiment; this record is what it checks (``reports/provenance.py`` reads it):

- ``split``: ``origin`` (``published``: CoOp's ``split_zhou_*.json`` or the dataset's official
  lists / folders; ``rebuilt``: built here because the published file is missing; ``generated``:
  the simulated benchmark; ``unknown``: a dataset that does not say, e.g. Dassl's in plugin mode),
  the split file's name and the SHA-256 of its bytes (of the split's records when there is no file);
- ``fewshot``: SHA-256 of the ordered ``relpath<TAB>label`` lines of the few-shot train and val
  lists, with their sizes (the same images under any DATASET.ROOT give the same digest);
- ``features``: the feature cache's identity (``trainer.features.identity()``), when it has one;
- ``selection``: ``trainer.selection_protocol()``: the protocol name and, per value chosen on
  data, the split it was chosen on. An eval-only run takes the selection of the training run
  whose ``provenance.json`` is in ``--model-dir`` (copied under ``trained``);
- ``step_budget``: None when the run trained the recipe's epochs; otherwise how OPTIM.MAX_STEPS
  cut them (``max_steps``, ``epochs`` / ``recipe_epochs``, ``steps`` / ``recipe_steps``), so a
  table never compares such a run with a published row. An eval-only run takes its training run's.

The record is written atomically and summed up in two log lines, before ``Finish training``
(or, eval-only, before the result block), so CoOp's parse_test_res.py reads the log unchanged.
"""
import hashlib
import json
import os

from common.atomic_io import write_json
from datasets.split_io import items_sha256, split_record

PROVENANCE_FILE = "provenance.json"
FORMAT = 1
# strict: every choice on the few-shot val split (min(K, 4) per class) or no choice at all;
# full_val: Tip-Adapter(-F)'s original, the dataset's full val split; lpclip: CoOp's linear probe.
PROTOCOLS = ("strict", "full_val", "lpclip")


def split_of(dataset):
    """The dataset's ``split_provenance`` (``DatasetBase.setup_splits``); otherwise a digest of the
    lists it holds now, with the origin it declares (``unknown`` for a dataset of another code base)."""
    record = getattr(dataset, "split_provenance", None)
    if record is not None:
        return dict(record)
    record = split_record(getattr(dataset, "split_origin", "unknown"), "", getattr(dataset, "train_x", None),
                          getattr(dataset, "val", None), getattr(dataset, "test", None),
                          getattr(dataset, "image_dir", ""))
    return {**record, "hashed": "loaded lists"}


def fewshot_of(dataset):
    """Digest and size of the train and val lists the run sampled (``train_x``, ``val``)."""
    image_dir = getattr(dataset, "image_dir", "")
    out = {}
    for name, attr in (("train", "train_x"), ("val", "val")):
        items = getattr(dataset, attr, None)
        out[name] = None if items is None else {"count": len(items), "sha256": items_sha256(items, image_dir)}
    return out


def features_of(trainer):
    """``trainer.features.identity()`` when the feature source has one, else None. A failure is
    recorded (and printed) rather than raised: the run's result does not depend on it."""
    identity = getattr(getattr(trainer, "features", None), "identity", None)
    if not callable(identity):
        return None
    try:
        return identity()
    except Exception as e:  # noqa: BLE001  (recorded in the file and the log)
        print(f"Warning: the feature cache identity could not be read ({e!r}); provenance.json records the error")
        return {"error": repr(e)}


def checked_selection(selection, who):
    """``{"protocol": one of PROTOCOLS, "selected": {value: split}}``, or a ValueError naming ``who``."""
    if not isinstance(selection, dict) or selection.get("protocol") not in PROTOCOLS \
            or not isinstance(selection.get("selected"), dict):
        raise ValueError(f"{who}.selection_protocol() must return {{'protocol': one of {PROTOCOLS}, "
                         f"'selected': {{value: split}}}}, got {selection!r}")
    return selection


def trained_record(model_dir):
    """The training run's provenance.json from ``model_dir`` (None when absent or unreadable)."""
    path = os.path.join(model_dir, PROVENANCE_FILE) if model_dir else ""
    if not path or not os.path.isfile(path):
        return None
    try:
        with open(path) as f:
            return json.load(f)
    except ValueError as e:
        print(f"Warning: {path} is not valid JSON ({e}); this run's selection is its own trainer's")
        return None


def collect(trainer, eval_only=False, model_dir=""):
    """The provenance record of ``trainer``'s run (see the module docstring)."""
    cfg, dataset = trainer.cfg, getattr(trainer, "dataset", None)
    selection = checked_selection(trainer.selection_protocol(), type(trainer).__name__)
    record = {"format": FORMAT, "trainer": cfg.TRAINER.NAME, "dataset": cfg.DATASET.NAME,
              "num_shots": cfg.DATASET.NUM_SHOTS, "seed": cfg.SEED, "eval_only": bool(eval_only),
              "split": split_of(dataset), "fewshot": fewshot_of(dataset), "features": features_of(trainer),
              "selection": selection, "step_budget": getattr(trainer, "step_budget_cut", None)}
    if eval_only:
        trained = trained_record(model_dir)
        record["trained"] = {"model_dir": os.path.abspath(model_dir) if model_dir else None, "provenance": trained}
        if trained and isinstance(trained.get("selection"), dict):
            record["selection"] = trained["selection"]
        if trained:
            record["step_budget"] = trained.get("step_budget")
    return record


def short(digest):
    return (digest or "none")[:12]


def log_lines(record, path):
    """Two lines that sum the record up for log.txt (a third when a step budget cut the recipe)."""
    split, fewshot, selection = record["split"], record["fewshot"], record["selection"]
    shots = ", ".join(f"{k} {short(v['sha256'])} ({v['count']})" for k, v in fewshot.items() if v)
    chosen = ", ".join(f"{k} on {v}" for k, v in selection["selected"].items()) or "nothing chosen on data"
    features = record["features"]
    feature_text = "none" if features is None else short(hashlib.sha256(
        json.dumps(features, sort_keys=True, default=str).encode()).hexdigest())
    split_name = split["file"] or f"without a file (digest of its {split['hashed']})"
    lines = [f"Provenance: split {split_name} ({split['origin']}, sha256 {short(split['sha256'])}); "
             f"few-shot {shots or 'none'}",
             f"Provenance: protocol {selection['protocol']} ({chosen}); feature cache identity {feature_text}; "
             f"recorded in {path or '(no OUTPUT_DIR: not written)'}"]
    if record.get("step_budget"):
        lines.append(f"Provenance: step budget {budget_text(record['step_budget'])}: not the published recipe")
    return lines


def budget_text(cut):
    """``OPTIM.MAX_STEPS 2000 (8 of 50 epochs)`` from a record's ``step_budget``."""
    return f"OPTIM.MAX_STEPS {cut['max_steps']} ({cut['epochs']} of {cut['recipe_epochs']} epochs)"


def write_run_provenance(trainer, eval_only=False, model_dir=""):
    """Collect, write ``<OUTPUT_DIR>/provenance.json`` atomically, print the summary; return the record."""
    record = collect(trainer, eval_only, model_dir)
    output_dir = trainer.cfg.OUTPUT_DIR
    path = os.path.join(output_dir, PROVENANCE_FILE) if output_dir else ""
    if path:
        write_json(record, path)
    for line in log_lines(record, path):
        print(line)
    return record
