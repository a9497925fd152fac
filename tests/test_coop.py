"""CoOp on the tiny CLIP model and the generated DTD copy: training lowers the loss on both
image paths (online augmentation, cached views), only the context is learned and saved, the
checkpoint reloads on other class lists, the prompt layouts, and the zero-shot wiring check."""
import math
import os
import re
import shutil
import subprocess
import sys

import open_clip
import pytest
import torch
from torchvision import transforms as T

from conftest import DTD_CLASSES, ROOT, read_log, run_train, tiny_args
from methods.prompt_learner import PromptLearner, text_encoder
from methods.zero_shot import clip_logits
from trainers.core.class_map import ClassMismatchError

CFG = ROOT / "configs/trainers/CoOp/vit_b16_ep50.yaml"
COOP_INPUT = ("INPUT.TRANSFORMS", '["random_resized_crop", "random_flip", "normalize"]',
              "INPUT.RRCROP_SCALE", "(0.5, 1.0)")


def coop_args(tiny_clip, root, out, *opts, flags=()):
    """CoOp's config file, shrunk: 4 shots x 4 classes, batch 8, 4 context vectors, 4 epochs."""
    return tiny_args(tiny_clip, root, out, *COOP_INPUT, "DATASET.NUM_SHOTS", "4", "DATALOADER.TRAIN_X.BATCH_SIZE", "8",
                     "OPTIM.MAX_EPOCH", "4", "OPTIM.LR", "0.5", "TRAIN.PRINT_FREQ", "1", "TRAINER.COOP.N_CTX", "4",
                     *opts, flags=["--config-file", CFG, *flags], trainer="CoOp")


def epoch_losses(log):
    """The running mean loss at the last logged batch of each epoch."""
    per_epoch = dict(re.findall(r"^epoch \[(\d+)/\d+\] batch \[\d+/\d+\] .* loss \S+ \((\S+)\)", log, re.M))
    return [float(per_epoch[e]) for e in sorted(per_epoch, key=int)]


def test_online_augmentation_lowers_the_loss_and_learns_only_the_context(tiny_clip, dtd_root, tmp_path):
    out = tmp_path / "run"
    trainer = run_train(coop_args(tiny_clip, dtd_root, out))
    log = read_log(out)
    assert "Initializing a generic context" in log and 'Initial context: "X X X X"' in log
    assert isinstance(trainer.train_loader_x.loader.dataset.views[0][0].transforms[0], T.RandomResizedCrop)
    losses = epoch_losses(log)
    assert len(losses) == 4 and losses[-1] < min(0.85 * losses[0], math.log(4)), losses  # below chance

    saved = torch.load(tiny_clip.weights, weights_only=True)
    clip_state = trainer.features.model().state_dict()
    assert all(torch.equal(clip_state[k], v) for k, v in saved.items())
    assert trainer.text_encoder.transformer is trainer.features.model().transformer  # shared, fp32 on CPU
    assert sorted(p.name for p in out.iterdir() if p.is_dir()) == ["prompt_learner", "tensorboard"]  # no CLIP weights
    ckpt = torch.load(out / "prompt_learner" / "model.pth.tar-4", weights_only=True)
    assert list(ckpt["state_dict"]) == ["ctx"] and ckpt["state_dict"]["ctx"].shape == (4, 32)


def train_with_cached_views(tiny_clip, dtd_root, out, *opts):
    return run_train(coop_args(tiny_clip, dtd_root, out, "TRAINER.COOP.FEATURE_VIEWS", "3", *opts))


def test_cached_views_lower_the_loss(tiny_clip, dtd_root, tmp_path):
    out = tmp_path / "run"
    train_with_cached_views(tiny_clip, dtd_root, out)
    log = read_log(out)
    assert "Training on 3 cached augmented views per image" in log
    losses = epoch_losses(log)
    assert losses[-1] < min(0.85 * losses[0], math.log(4)), losses


@pytest.mark.parametrize("csc", [False, True])
def test_checkpoint_reloads_on_the_same_and_on_other_classes(tiny_clip, dtd_root, tmp_path, csc):
    out = tmp_path / "run"
    trained = train_with_cached_views(tiny_clip, dtd_root, out, "TRAINER.COOP.CSC", csc, "OPTIM.MAX_EPOCH", "2")
    trained_acc = trained.test()
    reload = ["--eval-only", "--model-dir", out]
    same = run_train(coop_args(tiny_clip, dtd_root, tmp_path / "same", "TRAINER.COOP.CSC", csc, flags=reload))
    assert same.test() == trained_acc

    new = run_train(coop_args(tiny_clip, dtd_root, tmp_path / "new", "TRAINER.COOP.CSC", csc,
                              "DATASET.SUBSAMPLE_CLASSES", "new", flags=reload))
    assert new.classnames == DTD_CLASSES[2:]
    assert "Evaluating 2 classes with a model trained on 4" in read_log(tmp_path / "new")
    assert new.prompt_learner.token_prefix.shape[0] == 2  # the class prompts are rebuilt for the new names
    ctx = trained.prompt_learner.ctx.detach()
    assert torch.equal(new.prompt_learner.ctx.detach(), ctx[2:] if csc else ctx)
    features = new.split_features("test").features
    with torch.no_grad():
        expected = trained.model_inference(features)[:, 2:]
        assert torch.allclose(new.model_inference(features), expected, atol=1e-5)

    init = ("MODEL.INIT_WEIGHTS", out / "prompt_learner" / "model.pth.tar-2")
    warm_start = run_train(coop_args(tiny_clip, dtd_root, tmp_path / "init", "TRAINER.COOP.CSC", csc, *init,
                                     flags=["--no-train"]))
    assert torch.equal(warm_start.prompt_learner.ctx.detach(), ctx)
    with pytest.raises(ValueError, match="use the TRAINER.COOP.N_CTX / CSC / CTX_INIT of training"):
        run_train(coop_args(tiny_clip, dtd_root, tmp_path / "other", "TRAINER.COOP.CSC", not csc, flags=reload))


def no_train_trainer(tiny_clip, dtd_root, tmp_path, *opts):
    return run_train(coop_args(tiny_clip, dtd_root, tmp_path / "run", *opts, flags=["--no-train"]))


@pytest.mark.parametrize("position, template", [("end", "a photo of a {}."), ("front", "{} a photo of a."),
                                                ("middle", "a photo {} of a.")])
def test_prompt_layout_places_the_class_name(tiny_clip, dtd_root, tmp_path, position, template):
    """Initialised from words, the learned prompt is exactly the embedding of a sentence."""
    trainer = no_train_trainer(tiny_clip, dtd_root, tmp_path, "TRAINER.COOP.CTX_INIT", "a_photo_of_a",
                               "TRAINER.COOP.CLASS_TOKEN_POSITION", position)
    learner = trainer.prompt_learner
    tokens = open_clip.get_tokenizer("TinyCLIP")([template.format(c) for c in DTD_CLASSES])
    assert learner.n_ctx == 4 and torch.equal(learner.tokenized_prompts, tokens)
    embedding = trainer.features.model().token_embedding
    with torch.no_grad():
        assert torch.equal(learner(), embedding(tokens))


@pytest.mark.parametrize("position", ["end", "front", "middle"])
def test_random_context_sits_where_the_position_says(tiny_clip, dtd_root, tmp_path, position):
    trainer = no_train_trainer(tiny_clip, dtd_root, tmp_path, "TRAINER.COOP.N_CTX", "3", "TRAINER.COOP.CSC", "True",
                               "TRAINER.COOP.CLASS_TOKEN_POSITION", position)
    learner = trainer.prompt_learner
    tokenizer = open_clip.get_tokenizer("TinyCLIP")
    x_id = int(tokenizer(["X"])[0, 1])
    with torch.no_grad():
        prompts = learner()
        words = trainer.features.model().token_embedding(learner.tokenized_prompts)
    for c, name in enumerate(DTD_CLASSES):
        name_ids = tokenizer([name])[0, 1:1 + learner.name_lens[c]]
        k = len(name_ids)
        ctx_slots = {"end": [1, 2, 3], "front": [1 + k, 2 + k, 3 + k], "middle": [1, 2 + k, 3 + k]}[position]
        name_start = {"end": 4, "front": 1, "middle": 2}[position]  # middle: the context splits at 3 // 2
        row = learner.tokenized_prompts[c]
        assert row[ctx_slots].tolist() == [x_id] * 3
        assert torch.equal(row[name_start:name_start + len(name_ids)], name_ids)
        assert int(row.argmax()) == 1 + 3 + len(name_ids) + 1  # EOT after the name, the context and "."
        assert torch.equal(prompts[c, ctx_slots], learner.ctx[c].detach())
        others = [j for j in range(row.shape[0]) if j not in ctx_slots]
        assert torch.equal(prompts[c, others], words[c, others])


def test_untrained_photo_context_gives_zero_shot_clip_logits(tiny_clip, dtd_root, tmp_path):
    trainer = no_train_trainer(tiny_clip, dtd_root, tmp_path, "TRAINER.COOP.CTX_INIT", "a photo of a")
    model = trainer.features.model()
    features = trainer.split_features("test").features
    tokens = open_clip.get_tokenizer("TinyCLIP")([f"a photo of a {c}." for c in DTD_CLASSES])
    with torch.no_grad():
        text = torch.nn.functional.normalize(model.encode_text(tokens), dim=-1)
        expected = clip_logits(features, text, model.logit_scale.exp().item())
        assert torch.allclose(trainer.model_inference(features), expected, atol=1e-4)
    assert trainer.test() == pytest.approx(100.0 * float((expected.argmax(1) == trainer.split_features("test")
                                                           .labels).float().mean()), abs=0.05)


def test_fp16_prompts_run_on_a_private_half_copy_of_the_text_tower(tiny_clip):
    """PREC fp16 (GPU only in the trainer): CoOp's half-precision context and text encoder."""
    open_clip.add_model_config(tiny_clip.config)
    model = open_clip.create_model("TinyCLIP")
    model.load_state_dict(torch.load(tiny_clip.weights, weights_only=True))
    model.eval().requires_grad_(False)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    tokenizer = open_clip.get_tokenizer("TinyCLIP")
    encoder = text_encoder(model, torch.float16)
    learner = PromptLearner(DTD_CLASSES, tokenizer, model.token_embedding, ctx_init="a photo of a", dtype=torch.float16)
    features = encoder(learner(), learner.tokenized_prompts)
    assert features.dtype == learner.ctx.dtype == torch.float16 and encoder.transformer is not model.transformer
    with torch.no_grad():
        expected = model.encode_text(tokenizer([f"a photo of a {c}." for c in DTD_CLASSES]))
    assert torch.allclose(features.float(), expected, atol=0.01 * float(expected.abs().max()))
    features.float().pow(2).sum().backward()
    assert learner.ctx.grad.abs().sum() > 0
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())  # the fp32 model is untouched


def test_simulated_features_are_refused_with_a_clear_error(tmp_path):
    argv = ["--root", "", "--seed", "1", "--trainer", "CoOp", "--dataset-config-file",
            ROOT / "configs/datasets/simulated.yaml", "--output-dir", tmp_path / "run"]
    with pytest.raises(ValueError, match="serves features without a CLIP model"):
        run_train(argv)


def test_main_script_writes_coops_variant_folder(tiny_clip, dtd_root, tmp_path):
    env = dict(os.environ, DATA=str(dtd_root), PYTHON=sys.executable, SEEDS="1")
    argv = [str(a) for a in coop_args(tiny_clip, dtd_root, tmp_path)]
    opts = argv[argv.index("--output-dir") + 2:]  # the KEY VALUE pairs
    repo = tmp_path / "repo"
    shutil.copytree(ROOT, repo, ignore=shutil.ignore_patterns(".venv", "output", ".git", "__pycache__"))
    proc = subprocess.run(["bash", str(repo / "scripts/coop/main.sh"), "dtd", "vit_b16_ep50", "2", "4", "True",
                           "middle", "MODEL.BACKBONE.NAME", tiny_clip.config, *opts, "OPTIM.MAX_EPOCH", "1"],
                          env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    run = repo / "output/dtd/CoOp/vit_b16_ep50_2shots/nctx4_cscTrue_ctpmiddle/seed1"
    log = read_log(run)
    assert "Initializing class-specific contexts" in log and "* accuracy:" in log


def test_shared_context_evaluates_on_classes_never_trained_on(tiny_clip, dtd_root, tmp_path):
    """CoCoOp's base-to-new protocol: a shared context fits any class list; CSC cannot."""
    for csc in ("False", "True"):
        run = tmp_path / f"base_csc{csc}"
        train_with_cached_views(tiny_clip, dtd_root, run, "DATASET.SUBSAMPLE_CLASSES", "base", "TRAINER.COOP.CSC", csc)
        new = coop_args(tiny_clip, dtd_root, tmp_path / f"new_csc{csc}", "DATASET.SUBSAMPLE_CLASSES", "new",
                        "TRAINER.COOP.CSC", csc, flags=["--eval-only", "--model-dir", run])
        if csc == "False":
            assert 0.0 <= run_train(new).test() <= 100.0
        else:
            with pytest.raises(ClassMismatchError, match="were not trained on"):
                run_train(new)
