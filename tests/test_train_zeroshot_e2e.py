"""End to end: ``python train.py --trainer ZeroshotCLIP`` on a generated image dataset with the
tiny CLIP model writes Dassl's result block, and its accuracy equals an independent computation."""
import re
import subprocess
import sys

import open_clip
import torch
import torch.nn.functional as F
from PIL import Image
from torchvision import transforms as T

from conftest import DTD_CLASSES, RESULT_BLOCK, ROOT, coop_parse, read_log, run_train, tiny_args


def independent_zero_shot_accuracy(root, weights, config):
    """Zero-shot accuracy on the DTD copy's test split, computed without the project's code."""
    import json

    open_clip.add_model_config(config)
    model = open_clip.create_model("TinyCLIP", pretrained=None)
    model.load_state_dict(torch.load(weights, weights_only=True))
    model.eval()
    tokenizer = open_clip.get_tokenizer("TinyCLIP")
    transform = T.Compose([
        T.Resize(32, interpolation=T.InterpolationMode.BICUBIC), T.CenterCrop((32, 32)), T.ToTensor(),
        T.Normalize((0.48145466, 0.4578275, 0.40821073), (0.26862954, 0.26130258, 0.27577711)),
    ])
    split = json.loads((root / "dtd" / "split_zhou_DescribableTextures.json").read_text())
    with torch.no_grad():  # features rounded to fp16, the precision the feature cache stores
        text = model.encode_text(tokenizer([f"{c} texture." for c in DTD_CLASSES])).half().float()
        images = torch.stack([transform(Image.open(root / "dtd" / "images" / rel).convert("RGB"))
                              for rel, _, _ in split["test"]])
        image_features = model.encode_image(images).half().float()
        logits = F.normalize(image_features, dim=-1) @ F.normalize(text, dim=-1).t()
    labels = torch.tensor([label for _, label, _ in split["test"]])
    correct = int((logits.argmax(1) == labels).sum())
    return correct, len(labels)


def test_cli_run_writes_dassl_result_block_with_independent_accuracy(tiny_clip, dtd_root, tmp_path):
    out = tmp_path / "output" / "dtd" / "ZeroshotCLIP" / "tiny" / "seed1"
    cmd = [sys.executable, str(ROOT / "train.py"), *tiny_args(tiny_clip, dtd_root, out, flags=["--eval-only"])]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    log = read_log(out)
    blocks = list(RESULT_BLOCK.finditer(log))
    assert len(blocks) == 1, log[-2000:]
    block = blocks[0]
    correct, total = independent_zero_shot_accuracy(dtd_root, tiny_clip.weights, tiny_clip.config)
    assert block["total"] == f"{total:,}" and block["correct"] == f"{correct:,}"
    assert block["acc"] == f"{100.0 * correct / total:.1f}"
    assert block["err"] == f"{100.0 - 100.0 * correct / total:.1f}"
    assert "Evaluate on the *test* set\n=> result" in log
    assert coop_parse(log, end_signal="=> result") == float(block["acc"])  # parse_test_res --test-log


def test_training_free_run_prints_coop_end_signal(tiny_clip, dtd_root, tmp_path):
    out = tmp_path / "seed1"
    run_train(tiny_args(tiny_clip, dtd_root, out))
    log = read_log(out)
    lines = log.splitlines()
    start = lines.index("Finish training")
    assert lines[start + 1:start + 4] == ["Deploy the last-epoch model", "Evaluate on the *test* set", "=> result"]
    assert coop_parse(log) == float(RESULT_BLOCK.search(log)["acc"])


def test_rerun_into_same_folder_keeps_the_first_log(tiny_clip, dtd_root, tmp_path):
    out = tmp_path / "seed1"
    run_train(tiny_args(tiny_clip, dtd_root, out))
    first = read_log(out)
    run_train(tiny_args(tiny_clip, dtd_root, out))
    assert read_log(out) == first
    reruns = [p.name for p in out.iterdir() if p.name.startswith("log.txt-")]
    assert len(reruns) == 1 and re.fullmatch(r"log\.txt-\d{4}-\d\d-\d\d-\d\d-\d\d-\d\d", reruns[0])


def test_seed_zero_is_honoured_and_negative_seed_is_drawn_and_logged(tiny_clip, dtd_root, tmp_path):
    trainer = run_train(tiny_args(tiny_clip, dtd_root, tmp_path / "zero", seed=0))
    assert trainer.cfg.SEED == 0
    assert "Setting fixed seed: 0" in read_log(tmp_path / "zero")
    trainer = run_train(tiny_args(tiny_clip, dtd_root, tmp_path / "random", seed=-1))
    drawn = trainer.cfg.SEED
    assert drawn >= 0
    assert f"drew seed {drawn}; rerun with --seed {drawn}" in read_log(tmp_path / "random")
