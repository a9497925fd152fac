"""FLEX-CLIP: the gradient penalty, the gate wiring, the science on the simulated paired
benchmark (beats zero-shot retrieval, class-faithful generation, no test pair in training),
the classification row, an end-to-end image-text run with the tiny CLIP model, seeded runs
bit-identical under any torch thread count, and the selection record."""
import json
import subprocess
import sys

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from conftest import ROOT, read_log, run_train, tiny_args
from datasets.simulated_pairs import SimulatedPairFeatures
from methods.flex_clip import GatedProjection, alignment_loss, class_alignment_loss, gradient_penalty
from pair_layouts import pascal_sentence

SIM_CFG = ROOT / "configs/trainers/FLEXCLIP/sim.yaml"


def pairs_args(out, *opts, trainer="FLEXCLIP", shots=16, flags=(), dataset="simulated_pairs"):
    cfg = ["--config-file", SIM_CFG] if trainer == "FLEXCLIP" else []
    return [*flags, "--root", "", "--seed", "1", "--trainer", trainer,
            "--dataset-config-file", ROOT / f"configs/datasets/{dataset}.yaml", *cfg, "--output-dir", out,
            "DATASET.NUM_SHOTS", shots, *opts]


class LinearCritic(nn.Module):
    """D(x, a) = x.w + a.u: its input gradient is w everywhere, so the penalty is (|w| - 1)^2."""

    def __init__(self, w, u):
        super().__init__()
        self.w, self.u = w, u

    def forward(self, x, a):
        return x @ self.w + a @ self.u


def test_gradient_penalty_of_a_linear_critic_is_known_in_closed_form():
    torch.manual_seed(0)
    w, u = torch.tensor([3.0, 4.0, 0.0]), torch.randn(3)  # |w| = 5
    real, fake, a = torch.randn(16, 3), torch.randn(16, 3), torch.randn(16, 3)
    assert gradient_penalty(LinearCritic(w, u), real, fake, a).item() == pytest.approx(16.0)
    unit_w = LinearCritic(torch.tensor([0.6, 0.8, 0.0]), u)
    assert gradient_penalty(unit_w, real, fake, a).item() == pytest.approx(0.0, abs=1e-10)


def close_gates(projection):
    with torch.no_grad():
        projection.gate.weight.zero_()
        projection.gate.bias.fill_(float("-inf"))


def test_a_closed_gate_returns_the_clip_feature_and_zero_shot_retrieval(tmp_path):
    projection = GatedProjection(8, 16)
    close_gates(projection)
    x = torch.randn(5, 8)
    assert torch.equal(projection(x), F.normalize(F.normalize(x, dim=-1), dim=-1))
    zero_shot = run_train(pairs_args(tmp_path / "zs", trainer="ZeroshotCLIP", shots=4)).test()
    flex = run_train(pairs_args(tmp_path / "flex", shots=4, flags=["--no-train"]))
    close_gates(flex.stage2["image"])
    close_gates(flex.stage2["text"])
    # equal up to the float32 rounding of one more L2 normalisation of the same features
    assert flex.test() == pytest.approx(zero_shot, rel=1e-6)


def test_ablation_projections():
    torch.manual_seed(0)
    x = torch.randn(4, 8)
    no_gate, no_fusion = GatedProjection(8, 16, "no_gate"), GatedProjection(8, 16, "no_fusion")
    v = F.normalize(x, dim=-1)
    assert torch.allclose(no_gate(x), F.normalize(0.5 * no_gate.projector(v) + 0.5 * v, dim=-1))
    assert torch.allclose(no_fusion(x), F.normalize(no_fusion.projector(v), dim=-1))


def test_alignment_never_repels_pairs_of_the_same_class():
    image = F.normalize(torch.randn(4, 8), dim=-1)
    labels = torch.tensor([0, 0, 1, 1])
    duplicated = image[[0, 0, 2, 2]]  # two identical pairs per class: only the other class repels
    loss = alignment_loss(duplicated, duplicated, labels, "contrastive", 0.07)
    logits = duplicated @ duplicated.t() / 0.07
    expected = -torch.log_softmax(logits[[0, 2]][:, [0, 2]], dim=1).diag().mean()
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)


@pytest.mark.parametrize("shots, margin", [(1, 6.0), (16, 30.0)])  # observed (seed 1): +13.0 and +45.1
def test_flex_clip_beats_zero_shot_retrieval_on_simulated_pairs(tmp_path, shots, margin):
    zero_shot = run_train(pairs_args(tmp_path / "zs", trainer="ZeroshotCLIP", shots=shots)).test()
    flex = run_train(pairs_args(tmp_path / "flex", shots=shots)).test()
    assert flex > zero_shot + margin
    assert "* i2t_mAP:" in read_log(tmp_path / "flex") and (tmp_path / "flex" / "retrieval_results.json").is_file()


def test_generated_features_lie_closest_to_their_own_class(tmp_path):
    trainer = run_train(pairs_args(tmp_path / "flex", shots=16, flags=["--no-train"]))
    trainer.fit_stage1(*trainer.real_training_data())
    pseudo_image, pseudo_text, pseudo_labels = trainer.pseudo_pairs()
    test = trainer.dataset.test
    labels = torch.tensor([p.label for p in test])
    for pseudo, real in ((pseudo_image, trainer.split_features("test").features),
                         (pseudo_text, trainer.split_texts("test"))):
        real = F.normalize(real, dim=-1).to(pseudo.device)
        for k in trainer.dataset.target_labels:
            mean_sim = {j: (pseudo[pseudo_labels == k] @ real[labels == j].t()).mean().item()
                        for j in trainer.dataset.target_labels}
            assert max(mean_sim, key=mean_sim.get) == k


def test_target_test_pairs_never_reach_training(tmp_path, monkeypatch):
    requested = []
    for name in ("image_features", "pair_text_features"):
        real = getattr(SimulatedPairFeatures, name)

        def recording(self, items, split, *args, _real=real, **kwargs):
            requested.append((split, {item.uid for item in items}))
            return _real(self, items, split, *args, **kwargs)

        monkeypatch.setattr(SimulatedPairFeatures, name, recording)
    trainer = run_train(pairs_args(tmp_path / "flex", shots=2))
    test_uids = {p.uid for p in trainer.dataset.test}
    read_for_training = set().union(*(uids for split, uids in requested if split == "train"))
    assert read_for_training and not read_for_training & test_uids
    assert {split for split, _ in requested} == {"train", "test"}
    assert all(uids <= test_uids for split, uids in requested if split == "test")


def test_classification_row_beats_zero_shot(tmp_path):
    zero_shot = run_train(pairs_args(tmp_path / "zs", trainer="ZeroshotCLIP", dataset="simulated")).test()
    flex = run_train(pairs_args(tmp_path / "flex", dataset="simulated")).test()
    assert flex > zero_shot + 20.0  # observed (seed 1): 84.3 vs 53.4


def test_classification_step_projects_each_class_prompt_once_for_the_same_loss(tmp_path):
    """Stage 2 (classification) projects the class prompts once per step and indexes each image's
    text from them: the loss is the one of projecting every image's prompt as its own text row."""
    trainer = run_train(pairs_args(tmp_path / "flex", "TRAINER.FLEXCLIP.GENERATE", "False", dataset="simulated",
                                   flags=["--no-train"]))
    image, text, labels = trainer.real_training_data()
    assert text is None  # the loader carries no per-image copy of the prompts
    image, labels = image[:64], labels[:64]
    c, stage2 = trainer.cfg.TRAINER.FLEXCLIP, trainer.stage2
    with torch.no_grad():
        f_image, f_text = stage2["image"](image), stage2["text"](trainer.class_embeddings[labels])
        ce = F.cross_entropy(stage2["classifier"](f_image), labels) + \
            F.cross_entropy(stage2["classifier"](f_text), labels)
        align = class_alignment_loss(f_image, stage2["text"](trainer.class_embeddings), labels, c.TEMPERATURE)
    trainer.build_stage2_optimizer(len(labels))
    losses = trainer.forward_backward((image, labels))
    assert losses["ce"] == pytest.approx(ce.item(), rel=1e-5)
    assert losses["align"] == pytest.approx(align.item(), rel=1e-5)
    assert losses["loss"] == pytest.approx((ce + c.ALIGN_WEIGHT * align).item(), rel=1e-5)


def test_end_to_end_image_text_retrieval_with_the_tiny_model(tiny_clip, tmp_path):
    root = tmp_path / "data"
    pascal_sentence(root)
    opts = ["DATASET.NUM_SHOTS", "2", "OPTIM.MAX_EPOCH", "2", "DATALOADER.TRAIN_X.BATCH_SIZE", "8",
            "TRAINER.FLEXCLIP.STAGE1_STEPS", "5", "TRAINER.FLEXCLIP.N_CRITIC", "1", "TRAINER.FLEXCLIP.HIDDEN", "32",
            "TRAINER.FLEXCLIP.PROJ_HIDDEN", "32", "TRAINER.FLEXCLIP.NUM_GENERATED", "4"]
    args = tiny_args(tiny_clip, root, tmp_path / "run", *opts, trainer="FLEXCLIP")
    args[args.index("--dataset-config-file") + 1] = str(ROOT / "configs/datasets/pascal_sentence.yaml")
    trained = run_train(args).test()
    log = read_log(tmp_path / "run")
    assert "Finish training\nDeploy the last-epoch model\nEvaluate on the *test* set\n=> result\n* total: 4" in log
    assert (tmp_path / "run" / "stage1" / "model.pth.tar-2").is_file()
    assert (tmp_path / "run" / "stage2" / "model.pth.tar-2").is_file()
    eval_args = tiny_args(tiny_clip, root, tmp_path / "eval", *opts, trainer="FLEXCLIP",
                          flags=["--eval-only", "--model-dir", str(tmp_path / "run")])
    eval_args[eval_args.index("--dataset-config-file") + 1] = str(ROOT / "configs/datasets/pascal_sentence.yaml")
    assert run_train(eval_args).test() == trained


# One seeded run in a fresh process under ``torch.set_num_threads(argv[1])``: its retrieval
# figures, a digest of every trained weight, and the thread count it leaves behind.
THREADED_RUN = """
import hashlib, json, sys
import torch
torch.set_num_threads(int(sys.argv[1]))
from trainers.core import run as train
trainer = train.main(sys.argv[3:], echo=False)
digest = hashlib.sha256()
for name, model in (("stage1", trainer.vaegans), ("stage2", trainer.stage2)):
    for key, tensor in model.state_dict().items():
        digest.update(f"{name}.{key}".encode() + tensor.cpu().numpy().tobytes())
with open(sys.argv[2], "w") as f:
    json.dump({"weights": digest.hexdigest(), "threads_after": torch.get_num_threads()}, f)
"""


def test_seeded_runs_are_identical_under_any_torch_thread_count(tmp_path):
    """Unpinned (NUM_THREADS 0), 1 and 4 threads train different last bits on this config's stage
    2 (observed); the default pin to 1 thread makes the weights and figures identical."""
    opts = ["TRAINER.FLEXCLIP.STAGE1_STEPS", "5", "TRAINER.FLEXCLIP.N_CRITIC", "1", "OPTIM.MAX_EPOCH", "1",
            "DATASET.SIMULATED_PAIRS.NUM_CLASSES", "20", "DATASET.SIMULATED_PAIRS.TEST_PER_CLASS", "10"]
    runs = {threads: tmp_path / f"threads{threads}" for threads in (1, 4)}
    children = [subprocess.Popen([sys.executable, "-c", THREADED_RUN, str(threads), str(out) + ".json",
                                  *map(str, pairs_args(out, *opts, shots=4))], cwd=ROOT,
                                 stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
                for threads, out in runs.items()]
    for child in children:
        assert child.wait(timeout=600) == 0, child.stderr.read()[-2000:]
    records = {t: json.loads((tmp_path / f"threads{t}.json").read_text()) for t in runs}
    figures = {t: json.loads((out / "retrieval_results.json").read_text()) for t, out in runs.items()}
    assert records[1]["weights"] == records[4]["weights"]
    assert figures[1] == figures[4]
    assert [records[t]["threads_after"] for t in runs] == [1, 4]  # the caller's setting is restored


def test_selection_protocol_names_the_defaults_chosen_on_the_fewshot_val_split(tmp_path):
    trainer = run_train(pairs_args(tmp_path / "flex", shots=2, flags=["--no-train"]))
    selection = trainer.selection_protocol()
    assert selection["protocol"] == "strict"
    assert selection["selected"] and set(selection["selected"].values()) == {"fewshot_val"}
    assert set(selection["selected"]) <= set(trainer.cfg.TRAINER.FLEXCLIP)
    changed = run_train(pairs_args(tmp_path / "mse", "TRAINER.FLEXCLIP.ALIGN", "mse", shots=2, flags=["--no-train"]))
    assert set(changed.selection_protocol()["selected"]) == set(selection["selected"]) - {"ALIGN"}
    classification = run_train(pairs_args(tmp_path / "cls", dataset="simulated", flags=["--no-train"]))
    assert classification.selection_protocol() == {"protocol": "strict", "selected": {"NUM_GENERATED_CLS": "fewshot_val"}}
