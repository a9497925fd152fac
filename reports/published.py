"""Published numbers (configs/published.yaml) as flat rows, checked when read, and the look-up
that puts a published value beside one of our results.

Every entry names the ``protocol`` its original chose hyper-parameters (and epochs) under, with
the names our runs record in provenance.json: ``strict`` (on the few-shot val split, or nothing
chosen on data), ``full_val`` (on the dataset's full val split, Tip-Adapter's code), ``lpclip``
(CoOp's linear-probe script), or ``unknown`` (the original does not say): a table prints a
delta only where our run's protocol equals it, never against ``unknown``."""
import math
import os
from dataclasses import dataclass

import yaml

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PUBLISHED_FILE = os.path.join(REPO, "configs", "published.yaml")
DATASETS_DIR = os.path.join(REPO, "configs", "datasets")
AVERAGE = "average"  # the dataset name of a published 11-dataset mean
CLAIMED = "claimed, not tabulated"
BACKBONES = {"rn50": "RN50", "rn101": "RN101", "vit_b32": "ViT-B/32", "vit_b16": "ViT-B/16"}  # cfg prefix -> name
VALUE_FIELDS = {"method", "backbone", "label", "source", "protocol", "metric", "shots", "values", "average"}
CLAIM_FIELDS = {"method", "status", "claim", "arxiv", "source", "protocol"}
UNKNOWN_PROTOCOL = "unknown"
PROTOCOLS = ("strict", "full_val", "lpclip", UNKNOWN_PROTOCOL)  # trainers.core.run_provenance.PROTOCOLS + unknown


class PublishedFileError(ValueError):
    """A malformed entry of the published-numbers file (the message names the file and entry)."""


@dataclass(frozen=True)
class PublishedValue:
    method: str
    backbone: str
    dataset: str  # a configs/datasets name, or "average" (the published 11-dataset mean)
    shots: int | None  # None: shot-independent (zero-shot)
    value: float
    source: str
    label: str
    metric: str = "accuracy"
    protocol: str = UNKNOWN_PROTOCOL  # how the original chose its hyper-parameters (PROTOCOLS)


@dataclass(frozen=True)
class Claim:
    """A method whose paper's tables are not transcribed: what it claims, and where."""
    method: str
    claim: str
    arxiv: str
    source: str
    status: str = CLAIMED
    protocol: str = UNKNOWN_PROTOCOL


@dataclass(frozen=True)
class Published:
    values: tuple[PublishedValue, ...]
    claims: tuple[Claim, ...]

    def find(self, method, backbone, dataset, shots, metric="accuracy"):
        """The published value for one of our results, or None; a shot-independent value matches any
        shot count, and the earliest entry of the file wins."""
        for row in self.values:
            if (row.method, row.backbone, row.dataset, row.metric) == (method, backbone, dataset, metric) \
                    and row.shots in (None, shots):
                return row
        return None


def backbone_of_cfg(cfg):
    """``rn50_ep50`` -> ``RN50``, ``vit_b16`` -> ``ViT-B/16``; None for a cfg of no CLIP backbone (``sim``)."""
    for prefix, name in BACKBONES.items():
        if cfg == prefix or cfg.startswith(prefix + "_"):
            return name
    return None


def known_datasets():
    """The dataset names an entry may use: our dataset configs, and ``average``."""
    return {name[:-5] for name in os.listdir(DATASETS_DIR) if name.endswith(".yaml")} | {AVERAGE}


def load_published(path=PUBLISHED_FILE):
    """Read and check the published-numbers file."""
    with open(path) as f:
        data = yaml.safe_load(f)
    if not isinstance(data, dict) or not isinstance(data.get("entries"), list) or set(data) != {"entries"}:
        raise PublishedFileError(f"{path}: expected one top-level key `entries` holding a list")
    values, claims, datasets = [], [], known_datasets()
    for i, entry in enumerate(data["entries"], 1):
        name = f"{path}: entry {i}"
        if isinstance(entry, dict):
            name += " (" + ", ".join(str(entry[k]) for k in ("method", "backbone", "label") if k in entry) + ")"
            if entry.get("status") is not None:
                claims.append(_claim(entry, name))
                continue
        values += _values(entry, name, datasets)
    return Published(tuple(values), tuple(claims))


def _check_fields(entry, name, allowed, required):
    if not isinstance(entry, dict):
        raise PublishedFileError(f"{name}: expected a mapping, got {entry!r}")
    unknown = sorted(map(str, set(entry) - allowed))
    if unknown:
        raise PublishedFileError(f"{name}: unknown field(s) {', '.join(unknown)} "
                                 f"(allowed: {', '.join(sorted(allowed))})")
    missing = [k for k in required if not isinstance(entry.get(k), str) or not entry[k].strip()]
    if missing:
        raise PublishedFileError(f"{name}: missing or empty {', '.join(missing)} (text expected)")
    if entry["protocol"] not in PROTOCOLS:
        raise PublishedFileError(f"{name}: protocol {entry['protocol']!r} is not one of {', '.join(PROTOCOLS)}")


def _claim(entry, name):
    _check_fields(entry, name, CLAIM_FIELDS, ("method", "status", "claim", "arxiv", "source", "protocol"))
    if entry["status"] != CLAIMED:
        raise PublishedFileError(f"{name}: status must be {CLAIMED!r}, got {entry['status']!r}")
    return Claim(entry["method"], entry["claim"].strip(), entry["arxiv"], entry["source"], protocol=entry["protocol"])


def _number(value, name, what):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise PublishedFileError(f"{name}: {what} must be a number, got {value!r}")
    return float(value)


def _per_shot(value, shots, name, what):
    """One number per shot count (a bare number when the entry has no ``shots``)."""
    if shots is None:
        if isinstance(value, list):
            raise PublishedFileError(f"{name}: {what} is a list but the entry has no `shots`")
        return [(None, _number(value, name, what))]
    if not isinstance(value, list) or len(value) != len(shots):
        raise PublishedFileError(f"{name}: {what} needs {len(shots)} value(s), one per shot count {shots}, "
                                 f"got {value!r}")
    return [(k, _number(v, name, what)) for k, v in zip(shots, value)]


def _values(entry, name, datasets):
    _check_fields(entry, name, VALUE_FIELDS, ("method", "backbone", "label", "source", "protocol"))
    shots = entry.get("shots")
    if shots is not None and (not isinstance(shots, list) or not shots or len(set(shots)) != len(shots)
                              or not all(isinstance(k, int) and not isinstance(k, bool) and k > 0 for k in shots)):
        raise PublishedFileError(f"{name}: shots must be a list of distinct positive integers, got {shots!r}")
    if entry["backbone"] not in BACKBONES.values():
        raise PublishedFileError(f"{name}: backbone {entry['backbone']!r} is not one of "
                                 f"{', '.join(BACKBONES.values())}")
    if not isinstance(entry.get("metric", ""), str):
        raise PublishedFileError(f"{name}: metric must be a metric name (accuracy, mAP), got {entry['metric']!r}")
    per_dataset = entry.get("values", {})
    if not isinstance(per_dataset, dict):
        raise PublishedFileError(f"{name}: values must map dataset names to values, got {per_dataset!r}")
    if AVERAGE in per_dataset or (not per_dataset and "average" not in entry):
        raise PublishedFileError(f"{name}: needs `values` per dataset and/or an `average` (not a dataset `average`)")
    unknown = sorted(set(per_dataset) - datasets)
    if unknown:
        raise PublishedFileError(f"{name}: unknown dataset(s) {', '.join(map(str, unknown))} "
                                 f"(names of {DATASETS_DIR}/*.yaml)")
    if "average" in entry:
        per_dataset = {**per_dataset, AVERAGE: entry["average"]}
    common = (entry["method"], entry["backbone"])
    return [PublishedValue(*common, dataset, k, v, entry["source"], entry["label"], entry.get("metric", "accuracy"),
                           entry["protocol"])
            for dataset, value in per_dataset.items() for k, v in _per_shot(value, shots, name, f"{dataset!r}")]
