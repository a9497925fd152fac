"""Texts longer than CLIP's context: the windows each FEATURES.LONG_TEXT mode encodes, their
average, and the feature cache keying on the mode."""
import open_clip
import pytest
import torch
import torch.nn.functional as F

from conftest import ROOT, run_train, tiny_args
from pair_layouts import pascal_sentence
from trainers.features.text_encoding import mean_of_windows, text_windows

LONG = " ".join(f"word{i} is here." for i in range(60))  # far beyond 77 tokens


@pytest.fixture(scope="module")
def tokenizer():
    return open_clip.get_tokenizer("RN50")  # CLIP's BPE tokenizer; no weights needed


def test_truncate_is_clips_own_tokenisation(tokenizer):
    assert torch.equal(text_windows(tokenizer, LONG, "truncate", 32), tokenizer([LONG]))


def test_chunk_mean_covers_every_token_in_order(tokenizer):
    ids = tokenizer.encode(LONG)
    windows = text_windows(tokenizer, LONG, "chunk_mean", 32)
    width = tokenizer.context_length - 2
    assert len(windows) == -(-len(ids) // width) > 1
    inner = []
    for row in windows:
        row = row.tolist()
        end = row.index(tokenizer.eot_token_id)
        assert row[0] == tokenizer.sot_token_id and all(t == 0 for t in row[end + 1:])
        inner += row[1:end]
    assert inner == ids
    assert len(text_windows(tokenizer, LONG, "chunk_mean", 2)) == 2  # MAX_TEXT_CHUNKS caps it


def test_sentence_mean_has_one_window_per_sentence(tokenizer):
    text = "A dog runs. A cat sleeps! Does it rain?"
    assert torch.equal(text_windows(tokenizer, text, "sentence_mean", 32),
                       tokenizer(["A dog runs.", "A cat sleeps!", "Does it rain?"]))
    with pytest.raises(ValueError, match="FEATURES.LONG_TEXT must be one of"):
        text_windows(tokenizer, text, "summary", 32)


def test_windows_are_averaged_after_normalisation():
    feats = torch.tensor([[3.0, 0.0], [0.0, 1.0], [2.0, 2.0]])
    out = mean_of_windows(feats, [2, 1])
    assert torch.allclose(out[0], torch.tensor([0.5, 0.5])) and torch.allclose(out[1], F.normalize(feats[2], dim=0))


def test_the_feature_cache_keys_on_the_long_text_mode(tiny_clip, tmp_path):
    root = tmp_path / "data"
    pascal_sentence(root)

    def run(out, mode):
        args = tiny_args(tiny_clip, root, tmp_path / out, "FEATURES.LONG_TEXT", mode, "DATASET.NUM_SHOTS", "2",
                         flags=["--no-train"])
        args[args.index("--dataset-config-file") + 1] = str(ROOT / "configs/datasets/pascal_sentence.yaml")
        return run_train(args).features.cache

    chunked = run("a", "chunk_mean")
    assert (chunked.hits, chunked.misses) == (0, 3)  # test images, prompts, test texts
    truncated = run("b", "truncate")
    assert (truncated.hits, truncated.misses) == (2, 1)  # only the texts are encoded again
    assert run("c", "truncate").misses == 0
