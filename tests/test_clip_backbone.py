"""Backbone names, weight resolution without a network, and loading every weights format."""
import os
import time

import open_clip
import pytest
import torch

from trainers.core.config import get_cfg_default
from trainers.features import clip_backbone
from trainers.features.clip_backbone import (
    BackboneError,
    WeightsUnavailableError,
    load_clip,
    offline_reason,
    resolve_backbone,
)


def backbone_cfg(name, pretrained="", cache_dir=""):
    cfg = get_cfg_default()
    cfg.MODEL.BACKBONE.NAME = name
    cfg.CLIP.PRETRAINED = pretrained
    cfg.CLIP.CACHE_DIR = cache_dir
    cfg.CLIP.DOWNLOAD_TIMEOUT = 2.0
    return cfg


@pytest.mark.parametrize("coop_name, expected", [
    ("RN50", "RN50-quickgelu"), ("RN101", "RN101-quickgelu"),
    ("ViT-B/32", "ViT-B-32-quickgelu"), ("ViT-B/16", "ViT-B-16-quickgelu"),
])
def test_coop_names_map_to_quickgelu_openai_weights_found_in_the_openai_cache(coop_name, expected, tmp_path):
    url = open_clip.get_pretrained_url(expected, "openai")
    (tmp_path / os.path.basename(url)).write_bytes(b"weights")  # where OpenAI's clip package keeps them
    spec = resolve_backbone(backbone_cfg(coop_name, cache_dir=str(tmp_path)))
    assert (spec.model_name, spec.pretrained) == (expected, "openai")
    assert spec.weights_file == str(tmp_path / os.path.basename(url))


def test_offline_download_fails_fast_and_says_how_to_supply_weights(tmp_path, monkeypatch):
    openai_cache = tmp_path / "openai_clip_cache"
    monkeypatch.setattr(clip_backbone, "OPENAI_CLIP_CACHE", str(openai_cache))
    start = time.monotonic()
    with pytest.raises(WeightsUnavailableError) as err:
        resolve_backbone(backbone_cfg("RN50", cache_dir=str(tmp_path)))
    assert time.monotonic() - start < 30  # no retry loop against an unreachable hub
    message = str(err.value)
    assert "HF_HUB_OFFLINE" in message and "RN50.pt" in message and str(openai_cache) in message
    assert "CLIP.PRETRAINED" in message and "timm/resnet50_clip.openai" in message


def test_unreachable_host_is_reported_within_the_timeout(monkeypatch):
    monkeypatch.delenv("HF_HUB_OFFLINE")
    start = time.monotonic()
    reason = offline_reason("unreachable.invalid", timeout=2.0)
    assert reason and "unreachable.invalid" in reason
    assert time.monotonic() - start < 10


def test_unknown_backbone_and_unknown_tag_are_clear_errors(tiny_clip):
    with pytest.raises(BackboneError, match="unknown backbone 'ResNet9000'.*RN50"):
        resolve_backbone(backbone_cfg("ResNet9000"))
    with pytest.raises(BackboneError, match="'laion9b' is neither a file nor a pretrained tag of ViT-B-32"):
        resolve_backbone(backbone_cfg("ViT-B-32", pretrained="laion9b"))
    with pytest.raises(BackboneError, match="needs CLIP.PRETRAINED"):
        resolve_backbone(backbone_cfg(tiny_clip.config))


def test_local_checkpoint_loads_exactly_and_digest_tracks_the_weights(tiny_clip):
    spec = resolve_backbone(backbone_cfg(tiny_clip.config, pretrained=tiny_clip.weights))
    model = load_clip(spec)
    saved = torch.load(tiny_clip.weights, weights_only=True)
    assert all(torch.equal(model.state_dict()[k], v) for k, v in saved.items())
    other = resolve_backbone(backbone_cfg(tiny_clip.config, pretrained=tiny_clip.other_weights))
    assert other.digest != spec.digest
    assert resolve_backbone(backbone_cfg(tiny_clip.config, pretrained=tiny_clip.weights)).digest == spec.digest


def test_openai_torchscript_archive_loads(tiny_clip, tmp_path):
    """OpenAI's clip package stores TorchScript archives (RN50.pt); CoOp users have those."""
    spec = resolve_backbone(backbone_cfg(tiny_clip.config, pretrained=tiny_clip.weights))
    model = load_clip(spec)
    example = (torch.zeros(1, 3, 32, 32), torch.zeros(1, 77, dtype=torch.long))
    archive = tmp_path / "TinyCLIP-openai.pt"
    torch.jit.save(torch.jit.trace(model, example, strict=False, check_trace=False), archive)
    from_archive = load_clip(resolve_backbone(backbone_cfg(tiny_clip.config, pretrained=str(archive))))
    assert all(torch.equal(from_archive.state_dict()[k], v) for k, v in model.state_dict().items())


def test_random_init_is_a_fixed_model(tiny_clip):
    a = load_clip(resolve_backbone(backbone_cfg(tiny_clip.config, pretrained="none")))
    b = load_clip(resolve_backbone(backbone_cfg(tiny_clip.config, pretrained="none")))
    assert all(torch.equal(a.state_dict()[k], v) for k, v in b.state_dict().items())
