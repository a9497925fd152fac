"""The CLIP backbone on open_clip: name mapping, offline-safe weight resolution, loading.

``MODEL.BACKBONE.NAME`` accepts
- CoOp / OpenAI names (``RN50``, ``RN101``, ``ViT-B/32``, ``ViT-B/16``, ...): open_clip's
  ``-quickgelu`` architecture with the ``openai`` weights (OpenAI trained with QuickGELU);
- any open_clip model name (``ViT-B-16-SigLIP``, ``MobileCLIP-S2``, ...) with
  ``CLIP.PRETRAINED`` naming a pretrained tag;
- a path to an open_clip model-config JSON (the tests' tiny model).
``CLIP.PRETRAINED`` may also be a checkpoint file (open_clip state dicts, safetensors, or
OpenAI's TorchScript ``RN50.pt`` as the ``clip`` package stores it) or ``none`` (random init).

Weights are looked up locally first (OpenAI's ``~/.cache/clip``, open_clip's URL cache, the
Hugging Face cache). A download is attempted only when a quick connection probe succeeds
and ``HF_HUB_OFFLINE`` is unset, so an offline machine fails in seconds with a message
that says how to supply the weights.
"""
import hashlib
import json
import logging
import os
import socket
import threading
import zipfile
from contextlib import contextmanager
from dataclasses import dataclass
from urllib.parse import urlparse

import open_clip
import torch
from huggingface_hub import try_to_load_from_cache
from open_clip import pretrained as oc_pretrained

from common.atomic_io import write_json
from common.hashing import file_sha256

from .feature_cache import writing_to

COOP_NAMES = {
    "RN50": "RN50-quickgelu",
    "RN101": "RN101-quickgelu",
    "RN50x4": "RN50x4-quickgelu",
    "RN50x16": "RN50x16-quickgelu",
    "RN50x64": "RN50x64-quickgelu",
    "ViT-B/32": "ViT-B-32-quickgelu",
    "ViT-B/16": "ViT-B-16-quickgelu",
    "ViT-L/14": "ViT-L-14-quickgelu",
    "ViT-L/14@336px": "ViT-L-14-336-quickgelu",
}
OPENAI_CLIP_CACHE = os.path.expanduser("~/.cache/clip")
OPENAI_META_KEYS = {"input_resolution", "context_length", "vocab_size"}
HF_DEFAULT_FILES = ("open_clip_model.safetensors", "open_clip_pytorch_model.bin")


class BackboneError(ValueError):
    """Unknown backbone name or pretrained tag."""


class WeightsUnavailableError(RuntimeError):
    """The weights are not on this machine and cannot be downloaded now."""


@dataclass(frozen=True)
class BackboneSpec:
    name: str  # as configured (MODEL.BACKBONE.NAME)
    model_name: str  # open_clip architecture
    pretrained: str  # tag, file or "none"
    weights_file: str  # local file with the weights; "" for random init
    digest: str  # identifies architecture + weights: the feature cache keys on it

    @property
    def slug(self):
        """A folder-safe name for the cache, e.g. ``RN50-openai-1a2b3c4d5e6f``."""
        shown = self.model_name if self.name.endswith(".json") else self.name
        safe = "".join(ch if ch.isalnum() or ch in "-_." else "-" for ch in shown)
        tag = "file" if os.path.isfile(self.pretrained) else self.pretrained
        return f"{safe}-{tag}-{self.digest[:12]}"


def resolve_backbone(cfg, digest_memo=None):
    """Find the architecture and a local weights file for the configured backbone (no model
    is built; downloads happen only when the weights are missing and the network answers)."""
    name = cfg.MODEL.BACKBONE.NAME
    if not name:
        raise BackboneError("MODEL.BACKBONE.NAME is empty: pass --backbone (e.g. RN50, ViT-B/16)")
    model_name, config_digest = architecture_of(name)
    pretrained = pretrained_of(cfg)
    if not pretrained:
        raise BackboneError(
            f"backbone {name!r} needs CLIP.PRETRAINED: a pretrained tag "
            f"({', '.join(open_clip.list_pretrained_tags_by_model(model_name)) or 'none known'}), "
            "a checkpoint file, or none"
        )
    if pretrained == "none":
        weights_file = ""
        digest = sha256_text(f"random-init:{model_name}:{config_digest}:torch-{torch.__version__}")
    else:
        if os.path.isfile(pretrained):
            weights_file = os.path.abspath(pretrained)
        else:
            weights_file = locate_or_download(model_name, pretrained, cfg.CLIP.CACHE_DIR, cfg.CLIP.DOWNLOAD_TIMEOUT)
        digest = sha256_text(f"{model_name}:{config_digest}:{file_digest(weights_file, digest_memo)}")
    return BackboneSpec(name=name, model_name=model_name, pretrained=pretrained,
                        weights_file=weights_file, digest=digest)


def pretrained_of(cfg):
    """CLIP.PRETRAINED, or OpenAI's weights for a CoOp backbone name ("" when neither)."""
    return cfg.CLIP.PRETRAINED or ("openai" if cfg.MODEL.BACKBONE.NAME in COOP_NAMES else "")


def missing_weights(cfg):
    """Why the configured weights are not on this machine ("" when they are), without
    downloading anything: the prerequisite check of ``reproduce.sh``."""
    try:
        model_name, _ = architecture_of(cfg.MODEL.BACKBONE.NAME)
    except BackboneError as e:
        return str(e)
    pretrained = pretrained_of(cfg)
    if pretrained == "none" or os.path.isfile(pretrained):
        return ""
    pcfg = oc_pretrained.get_pretrained_cfg(model_name, pretrained) if pretrained else None
    if not pcfg:
        return f"CLIP.PRETRAINED {pretrained!r} of backbone {cfg.MODEL.BACKBONE.NAME} is neither a file nor a " \
               f"pretrained tag of {model_name}"
    if find_local_weights(pcfg, cfg.CLIP.CACHE_DIR):
        return ""
    reason = offline_reason(download_host(pcfg), cfg.CLIP.DOWNLOAD_TIMEOUT)
    return how_to_supply(model_name, pretrained, pcfg, reason) if reason else ""  # else the first run downloads


def architecture_of(name):
    """(open_clip model name, digest of its config) for a configured backbone name."""
    if name.endswith(".json"):
        if not os.path.isfile(name):
            raise BackboneError(f"backbone model config not found: {name}")
        open_clip.add_model_config(name)
        model_name = os.path.splitext(os.path.basename(name))[0]
    else:
        model_name = COOP_NAMES.get(name, name)
    config = open_clip.get_model_config(model_name)
    if config is None:
        raise BackboneError(
            f"unknown backbone {name!r}: not a CoOp name ({', '.join(COOP_NAMES)}), not an open_clip "
            "model (see open_clip.list_models()) and not a model-config .json file"
        )
    return model_name, sha256_text(json.dumps(config, sort_keys=True))


def sha256_text(text):
    return hashlib.sha256(text.encode()).hexdigest()


def file_digest(path, memo_path=None):
    """SHA-256 of a weights file, remembered in ``memo_path`` by (path, size, mtime)."""
    stat = os.stat(path)
    key = f"{os.path.realpath(path)}:{stat.st_size}:{stat.st_mtime_ns}"
    memo = read_digest_memo(memo_path) if memo_path else {}
    if key in memo:
        return memo[key]
    digest = file_sha256(path, block_size=1 << 22)
    if memo_path:
        memo[key] = digest
        with writing_to(os.path.dirname(os.path.abspath(memo_path))):
            write_json(memo, memo_path)
    return digest


def read_digest_memo(memo_path):
    """The memo's ``{path:size:mtime: digest}``; a corrupt memo (a truncated copy, an edit) is
    named and rebuilt, since it only saves re-hashing weights files."""
    if not os.path.isfile(memo_path):
        return {}
    try:
        with open(memo_path) as f:
            memo = json.load(f)
        if isinstance(memo, dict) and all(isinstance(v, str) for v in memo.values()):
            return memo
        problem = "is not a JSON object of digests"
    except (OSError, ValueError) as e:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        problem = f"is unreadable ({type(e).__name__}: {e})"
    print(f"Weights digest memo {memo_path} {problem}: rebuilding it")
    return {}


# --- locating and downloading weights ---------------------------------------------------
def locate_or_download(model_name, tag, cache_dir, timeout):
    pcfg = oc_pretrained.get_pretrained_cfg(model_name, tag)
    if not pcfg:
        tags = open_clip.list_pretrained_tags_by_model(model_name)
        raise BackboneError(f"CLIP.PRETRAINED {tag!r} is neither a file nor a pretrained tag of {model_name} "
                            f"(tags: {', '.join(tags) or 'none'})")
    local = find_local_weights(pcfg, cache_dir)
    if local:
        return local
    reason = offline_reason(download_host(pcfg), timeout)
    if reason:
        raise WeightsUnavailableError(how_to_supply(model_name, tag, pcfg, reason))
    print(f"Downloading CLIP weights {model_name} ({tag}) ...")
    with socket_timeout(timeout):
        return oc_pretrained.download_pretrained(pcfg, cache_dir=cache_dir or None)


def download_host(pcfg):
    return "huggingface.co" if pcfg.get("hf_hub") else urlparse(pcfg.get("url", "")).hostname


def find_local_weights(pcfg, cache_dir):
    url = pcfg.get("url", "")
    if url:
        for folder in filter(None, (cache_dir, OPENAI_CLIP_CACHE)):
            path = os.path.join(os.path.expanduser(folder), os.path.basename(url))
            if os.path.isfile(path):
                return path
    hub = pcfg.get("hf_hub", "")
    if hub:
        repo_id, filename = os.path.split(hub)  # "org/repo/" means open_clip's default file names
        for candidate in ([filename] if filename else HF_DEFAULT_FILES):
            path = try_to_load_from_cache(repo_id, candidate, cache_dir=cache_dir or None)
            if isinstance(path, str) and os.path.isfile(path):
                return path
    return ""


def offline_reason(host, timeout):
    """Why a download cannot work now ("" if the host answers within ``timeout`` seconds)."""
    if os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on"):
        return "HF_HUB_OFFLINE is set"
    if not host:
        return "the pretrained config has no download address"
    outcome = {}

    def probe():
        try:
            socket.create_connection((host, 443), timeout=timeout).close()
            outcome["ok"] = True
        except OSError as e:
            outcome["error"] = e

    thread = threading.Thread(target=probe, daemon=True)
    thread.start()
    thread.join(timeout)  # bounds the DNS lookup too, which has no timeout of its own
    if outcome.get("ok"):
        return ""
    return f"cannot reach {host} ({outcome.get('error', f'no answer in {timeout:g}s')})"


def how_to_supply(model_name, tag, pcfg, reason):
    ways = ["set CLIP.PRETRAINED to a local checkpoint file (.pt, .bin or .safetensors)"]
    if pcfg.get("url"):
        ways.append(f"put the file {os.path.basename(pcfg['url'])} in {OPENAI_CLIP_CACHE} or in CLIP.CACHE_DIR "
                    "(OpenAI's clip package and CoOp store it there)")
    if pcfg.get("hf_hub"):
        ways.append(f"point CLIP.CACHE_DIR at a Hugging Face cache holding {pcfg['hf_hub'].rstrip('/')}")
    listed = "".join(f"\n  - {w}" for w in ways)
    return f"CLIP weights {model_name} ({tag}) are not on this machine and cannot be downloaded: {reason}. " \
           f"Supply them one of these ways:{listed}"


@contextmanager
def socket_timeout(seconds):
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(seconds)
    try:
        yield
    finally:
        socket.setdefaulttimeout(previous)


# --- building the model -----------------------------------------------------------------
def load_clip(spec, device="cpu"):
    """The frozen open_clip model for ``spec``, in eval mode, fp32 on ``device``."""
    with torch.random.fork_rng(devices=[]), quiet_root_logger():
        torch.manual_seed(0)  # random init ("none") is a fixed model
        model = open_clip.create_model(spec.model_name, pretrained=None, device="cpu")
    if spec.weights_file:
        load_weights(model, spec.weights_file)
    model.eval().requires_grad_(False)
    return model.to(device)


@contextmanager
def quiet_root_logger():
    """open_clip warns "initialized randomly" on the root logger; the weights come next."""
    previous = logging.root.manager.disable
    logging.disable(logging.WARNING)
    try:
        yield
    finally:
        logging.disable(previous)


def load_weights(model, path):
    try:
        if is_torchscript_archive(path):  # OpenAI's clip package format (RN50.pt, ...)
            state = torch.jit.load(path, map_location="cpu").state_dict()
            unsaved = {name for name, _ in model.named_buffers()} - set(model.state_dict())
            model.load_state_dict({k: v for k, v in state.items() if k not in OPENAI_META_KEYS | unsaved})
        else:
            open_clip.load_checkpoint(model, path)
    except Exception as e:
        raise BackboneError(f"cannot load CLIP weights from {path} into {type(model).__name__}: {e}") from e


def is_torchscript_archive(path):
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as archive:
        return any(name.endswith("constants.pkl") or "/code/" in name for name in archive.namelist())
