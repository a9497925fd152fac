"""Every run folder records what its number was computed from (provenance.json), and the results
table prints a delta against a published row only when split and protocol match it."""
import hashlib
import json
import shutil

import pytest

from conftest import ROOT, read_log, run_train, tiny_args
from reports import results
from reports.provenance import PROVENANCE_FILE as READ_NAME
from reports.provenance import read_provenance
from trainers.core.run_provenance import PROVENANCE_FILE, checked_selection


def sim_run(out, seed=1, *opts, flags=(), dataset="simulated"):
    """train.py: CMM on the simulated benchmark, 2 shots, 2 epochs (flags before KEY VALUE opts)."""
    return run_train(["--root", "", "--seed", seed, "--trainer", "CMM", "--output-dir", out, *flags,
                      "--dataset-config-file", ROOT / f"configs/datasets/{dataset}.yaml",
                      "--config-file", ROOT / "configs/trainers/CMM/sim.yaml",
                      "DATASET.NUM_SHOTS", 2, "OPTIM.MAX_EPOCH", 2, "DATALOADER.TRAIN_X.BATCH_SIZE", 16, *opts])


def read_record(out):
    return json.loads((out / "provenance.json").read_text())


def lines_digest(items):
    """The few-shot digest computed here: SHA-256 of ``path<TAB>label`` lines (simulated items have no folder)."""
    return hashlib.sha256("".join(f"{i.impath}\t{i.label}\n" for i in items).encode()).hexdigest()


def test_a_simulated_training_run_records_its_provenance(tmp_path):
    out = tmp_path / "run"
    trainer = sim_run(out, 1, "TEST.FINAL_MODEL", "best_val")
    record = read_record(out)
    assert (record["trainer"], record["dataset"], record["num_shots"], record["seed"], record["eval_only"]) == \
           ("CMM", "Simulated", 2, 1, False)
    assert record["split"]["origin"] == "generated" and record["split"]["file"] is None
    assert record["fewshot"] == {"train": {"count": 64, "sha256": lines_digest(trainer.dataset.train_x)},
                                 "val": {"count": 64, "sha256": lines_digest(trainer.dataset.val)}}  # 32 classes x 2
    assert record["features"] == trainer.features.identity()
    assert record["selection"] == {"protocol": "strict", "selected": {"epoch": "fewshot_val"}}  # best-val epoch
    log = read_log(out)
    assert log.index("Provenance: split") < log.index("Provenance: protocol strict (epoch on fewshot_val)") \
           < log.index("Finish training")

    other = tmp_path / "seed2"
    sim_run(other, 2)  # last epoch: nothing chosen on data
    second = read_record(other)
    assert second["selection"] == {"protocol": "strict", "selected": {}}
    assert second["split"] == record["split"] and second["fewshot"]["train"] != record["fewshot"]["train"]
    assert READ_NAME == PROVENANCE_FILE and read_provenance(out).protocol == "strict"  # what the tables read
    assert (read_provenance(out).origin, read_provenance(tmp_path).known) == ("generated", False)


def test_an_eval_only_run_takes_the_selection_of_the_run_it_loads(tmp_path):
    trained = tmp_path / "train"
    sim_run(trained, 1, "TEST.FINAL_MODEL", "best_val")
    out = tmp_path / "shift"
    sim_run(out, 1, flags=["--eval-only", "--model-dir", trained], dataset="simulated_shift")
    record = read_record(out)
    assert record["eval_only"] and record["dataset"] == "SimulatedShift"
    assert record["trained"] == {"model_dir": str(trained), "provenance": read_record(trained)}
    assert record["selection"] == {"protocol": "strict", "selected": {"epoch": "fewshot_val"}}


@pytest.mark.parametrize("selection", [{"protocol": "test", "selected": {}}, {"protocol": "strict"}, None])
def test_a_malformed_selection_protocol_names_the_trainer(selection):
    with pytest.raises(ValueError, match="MyTrainer.selection_protocol"):
        checked_selection(selection, "MyTrainer")


def zero_shot_run(tiny_clip, root, output, seed=1):
    """A ZeroshotCLIP run in CoOp's layout whose cfg name (rn50) matches the published RN50 zero-shot row."""
    out = output / "dtd" / "ZeroshotCLIP" / "rn50_2shots" / f"seed{seed}"
    run_train(tiny_args(tiny_clip, root, out, "DATASET.NUM_SHOTS", "2", seed=seed))
    return out


def dtd_cell(text):
    [line] = [line for line in text.splitlines() if line.startswith("| dtd ")]
    return line


def test_a_rebuilt_split_is_recorded_marked_and_never_compared(tiny_clip, dtd_root, tmp_path, capsys):
    published_path = dtd_root / "dtd" / "split_zhou_DescribableTextures.json"
    published_path.unlink()
    out = zero_shot_run(tiny_clip, dtd_root, tmp_path / "output")
    rebuilt = dtd_root / "dtd" / "split_rebuilt_DescribableTextures.json"
    assert rebuilt.is_file() and not published_path.exists()
    assert f"saving it as {rebuilt}" in read_log(out)
    split = read_record(out)["split"]
    assert (split["origin"], split["file"]) == ("rebuilt", rebuilt.name)
    assert split["sha256"] == hashlib.sha256(rebuilt.read_bytes()).hexdigest()

    capsys.readouterr()
    results.main([str(tmp_path / "output"), "--layout", "long"])
    text = capsys.readouterr().out
    cell = dtd_cell(text).split("|")
    assert cell[8].strip() == "† rebuilt, strict" and cell[9].strip() == "42.32" and cell[10].strip() == ""
    assert "† split rebuilt or generated" in text
    assert ("Cells without a delta against their published row:\n  dtd ZeroshotCLIP rn50 2-shot: split rebuilt "
            "from the raw annotations (split_rebuilt_DescribableTextures.json)") in text

    results.main([str(tmp_path / "output"), "--layout", "long", "--compare-anyway"])
    text = capsys.readouterr().out
    cell = dtd_cell(text).split("|")
    assert cell[10].strip() == f"{float(cell[6]) - 42.32:+.2f}" and cell[8].strip().startswith("†")
    assert "Deltas printed anyway (--compare-anyway), although:\n  dtd ZeroshotCLIP rn50 2-shot: split rebuilt" in text


def test_the_same_run_on_the_published_split_gets_its_delta(tiny_clip, dtd_root, tmp_path, capsys):
    out = zero_shot_run(tiny_clip, dtd_root, tmp_path / "output")
    assert read_record(out)["split"]["origin"] == "published"
    results.main([str(tmp_path / "output"), "--layout", "long"])
    cell = dtd_cell(capsys.readouterr().out).split("|")
    assert cell[8].strip() == "published, strict" and cell[10].strip() == f"{float(cell[6]) - 42.32:+.2f}"
    shutil.copytree(out, out.parent / "seed2")  # a seed without a record: the cell's provenance is unknown
    (out.parent / "seed2" / "provenance.json").unlink()
    results.main([str(tmp_path / "output"), "--layout", "long"])
    text = capsys.readouterr().out
    cell = dtd_cell(text).split("|")
    assert cell[8].strip() == "? published, strict; 1 without record" and cell[10].strip() == ""
    assert "dtd ZeroshotCLIP rn50 2-shot: 1 of 2 seed run(s) have no readable provenance.json" in text
