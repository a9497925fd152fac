"""Results tables, published numbers and plots, on generated Dassl-style run folders: the figures
equal an independent computation and CoOp's parse_test_res.py, and the published file is sound."""
import csv
import io
import json
import os
import re
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest

from conftest import RESULT_BLOCK
from reports import results
from reports.plots import AVERAGE_PANEL, draw, plot_series
from reports.published import PUBLISHED_FILE, PublishedFileError, backbone_of_cfg, load_published
from reports.runs import problems, scan, usable
from reports.tables import FEWSHOT_DATASETS, build_tables, csv_text, format_table, latex_escape, records, wide_table
from trainers.core.run_log import END_SIGNAL, TEST_LOG_SIGNAL, end_signal_of

ARGS = "***************\n** Arguments **\n***************\n"
VAL_BLOCK = "Evaluate on the *val* set\n=> result\n* total: 40\n* correct: 10\n* accuracy: 25.0%\n" \
            "* error: 75.0%\n* macro_f1: 20.0%\n"


def result_block(acc):
    correct = round(acc * 32)
    return (f"=> result\n* total: 3,200\n* correct: {correct:,}\n* accuracy: {acc:.1f}%\n"
            f"* error: {100 - acc:.1f}%\n* macro_f1: {acc - 1.5:.1f}%\n")


def training_log(acc):
    """What train.py writes for a training run: arguments, a val result during training, then the test result."""
    return (f"Setting fixed seed: 1\n{ARGS}eval_only: False\nseed: 1\n"
            f"epoch [1/1] batch [1/1] loss 1.0000 (1.0000) lr 2.0000e-03 eta 0:00:00\n{VAL_BLOCK}"
            f"Finish training\nDeploy the last-epoch model\nEvaluate on the *test* set\n{result_block(acc)}"
            "Elapsed: 0:00:03\n")


def eval_only_log(acc, with_args=True):
    args = f"{ARGS}eval_only: True\n" if with_args else ""
    return f"Setting fixed seed: 1\n{args}Loading weights to prompt_learner\nEvaluate on the *test* set\n" \
           f"{result_block(acc)}"


def retrieval_log(value):
    return (f"{ARGS}eval_only: False\nFinish training\nDeploy the last-epoch model\nEvaluate on the *test* set\n"
            f"=> result\n* total: 500\n* i2t_mAP: {value - 1:.2f}%\n* t2i_mAP: {value + 1:.2f}%\n"
            f"* mAP: {value:.2f}%\nElapsed: 0:00:09\n")


def died_log():
    """A training run that died after a validation result: neither finished nor eval-only."""
    return f"Setting fixed seed: 3\n{ARGS}eval_only: False\n{VAL_BLOCK}Traceback (most recent call last):\n"


def write(root, rel, text):
    path = Path(root) / rel / "log.txt"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def write_provenance(root, rel, origin="published", protocol="strict", split_file="split_zhou_X.json"):
    """The parts of a run's provenance.json that the tables read."""
    record = {"format": 1, "split": {"origin": origin, "file": split_file, "sha256": "0" * 64, "hashed": "file"},
              "selection": {"protocol": protocol, "selected": {}}}
    (Path(root) / rel / "provenance.json").write_text(json.dumps(record))


@pytest.fixture
def tree(tmp_path):
    """Classification (dtd, eurosat), shift (imagenetv2, eval-only) and retrieval runs, with a failed
    seed, a died run and a missing seed; returns (root, {cell folder: {seed: value written}})."""
    root, written = tmp_path / "output", defaultdict(dict)
    rng = np.random.default_rng(0)

    def run(rel, seed, value, text):
        write(root, f"{rel}/seed{seed}", text)
        write_provenance(root, f"{rel}/seed{seed}")
        written[rel][seed] = value

    for dataset in ("dtd", "eurosat"):
        for shots in (1, 16):
            for seed in (1, 2, 3):
                acc = round(float(rng.uniform(40, 80)), 1)
                run(f"{dataset}/CoOp/rn50_ep50_{shots}shots", seed, acc, training_log(acc))
    del written["eurosat/CoOp/rn50_ep50_16shots"][2]  # the missing seed
    (root / "eurosat/CoOp/rn50_ep50_16shots/seed2/log.txt").unlink()
    (root / "eurosat/CoOp/rn50_ep50_16shots/seed2/provenance.json").unlink()
    (root / "eurosat/CoOp/rn50_ep50_16shots/seed2").rmdir()
    del written["dtd/CoOp/rn50_ep50_1shots"][3]  # a failed seed: its log has no result
    write(root, "dtd/CoOp/rn50_ep50_1shots/seed3", "Setting fixed seed: 3\nRuntimeError: CUDA out of memory\n")
    del written["dtd/CoOp/rn50_ep50_16shots"][3]  # died after a val result
    write(root, "dtd/CoOp/rn50_ep50_16shots/seed3", died_log())
    for seed in (1, 2, 3):
        acc = round(float(rng.uniform(40, 60)), 1)
        run("imagenetv2/CoOp/rn50_ep50_16shots", seed, acc, eval_only_log(acc, with_args=seed != 2))
        m = round(float(rng.uniform(30, 60)), 2)
        run("simulated_pairs/FLEXCLIP/sim_4shots", seed, m, retrieval_log(m))
    return root, dict(written)


def tables_of(roots, published=None, **kwargs):
    return {t.metric: t for t in build_tables(usable(scan(roots, **kwargs)), published)}


def row_of(table, dataset, trainer, shots):
    [row] = [r for r in table.rows if (r.dataset, r.trainer, r.shots) == (dataset, trainer, shots)]
    return row


def cell_name(row):
    return f"{row.dataset}/{row.trainer}/{row.cfg}_{row.shots}shots"


def coop_parse_dir(directory, end_signal, keyword):
    """An independent re-implementation of CoOp's parse_test_res.py on one folder of seed folders:
    every metric line after the end signal of each log.txt, then mean and np.std over the folders."""
    regex = re.compile(rf"\* {keyword}: ([\.\deE+-]+)%")
    found = []
    for sub in sorted(p for p in os.listdir(directory) if not p.startswith(".")):
        value, go = None, False
        for line in (Path(directory) / sub / "log.txt").read_text().splitlines():
            line = line.strip()
            go = go or line == end_signal
            match = regex.search(line)
            if match and go:
                value = float(match.group(1))
        if value is not None:
            found.append(value)
    return float(np.mean(found)), float(np.std(found)), len(found)


def test_the_log_fixture_is_what_our_runs_write():
    assert RESULT_BLOCK.search(result_block(53.4))


def test_means_and_stds_equal_numpy_on_the_values_written(tree):
    root, written = tree
    tables = tables_of([root])
    rows = {cell_name(r): r for t in tables.values() for r in t.rows}
    assert set(rows) == set(written)
    for cell, values in written.items():
        row, seeds = rows[cell], sorted(values)
        assert row.seeds == tuple(seeds)
        assert row.mean == pytest.approx(np.mean([values[s] for s in seeds]), abs=1e-12)
        assert row.std == pytest.approx(np.std([values[s] for s in seeds]), abs=1e-12)
    assert tables["mAP"].rows[0].trainer == "FLEXCLIP" and len(tables["accuracy"].rows) == 5


def test_figures_equal_coops_parsing_rules(tree):
    root, _ = tree
    for table in tables_of([root]).values():
        for row in table.rows:
            signal = TEST_LOG_SIGNAL if row.dataset == "imagenetv2" else END_SIGNAL
            mean, std, n = coop_parse_dir(root / cell_name(row), signal, table.metric)
            assert (row.mean, row.std, len(row.seeds)) == (pytest.approx(mean), pytest.approx(std), n)


def test_real_coop_parse_test_res(tree, tmp_path):
    """CoOp's own parse_test_res.py (COOP_ROOT=<a CoOp checkout>) on each cell folder."""
    coop = os.environ.get("COOP_ROOT")
    if not coop or not os.path.isfile(os.path.join(coop, "parse_test_res.py")):
        pytest.skip("set COOP_ROOT to a CoOp checkout to run CoOp's parse_test_res.py")
    shim = tmp_path / "shim" / "dassl"
    shim.mkdir(parents=True)
    (shim / "utils.py").write_text(
        "import os\n\n\ndef check_isfile(fpath):\n    return os.path.isfile(fpath)\n\n\n"
        "def listdir_nohidden(path, sort=False):\n    items = [f for f in os.listdir(path) if not f.startswith('.')]\n"
        "    return sorted(items) if sort else items\n")
    env = dict(os.environ, PYTHONPATH=str(shim.parent))
    root, _ = tree
    for table in tables_of([root]).values():
        for row in table.rows:
            flags = ["--test-log"] if row.dataset == "imagenetv2" else []
            out = subprocess.run([sys.executable, os.path.join(coop, "parse_test_res.py"), str(root / cell_name(row)),
                                  "--keyword", table.metric, *flags], env=env, capture_output=True, text=True,
                                 check=True).stdout
            mean, std = re.search(rf"\* {table.metric}: ([\d.]+)% \+- ([\d.]+)%", out).groups()
            assert f"{row.mean:.2f}" == mean and f"{row.std:.2f}" == std
            assert out.count("file: ") == len(row.seeds)


def test_eval_only_runs_are_told_from_their_logs(tree, tmp_path):
    root, _ = tree
    seeds = root / "imagenetv2/CoOp/rn50_ep50_16shots"
    assert end_signal_of(seeds / "seed1/log.txt") == TEST_LOG_SIGNAL  # eval_only: True
    assert end_signal_of(seeds / "seed2/log.txt") == TEST_LOG_SIGNAL  # no arguments, no Finish training
    assert end_signal_of(root / "dtd/CoOp/rn50_ep50_16shots/seed3/log.txt") == END_SIGNAL  # died after val
    assert [row.eval_only for row in tables_of([root])["accuracy"].rows] == [False] * 4 + [True]
    forced = tables_of([root], test_log=True)["accuracy"]
    assert row_of(forced, "dtd", "CoOp", 16).seeds == (1, 2, 3)  # --test-log reads the died run's val result
    assert row_of(forced, "dtd", "CoOp", 16).values[-1] == 25.0


def test_missing_and_failed_runs_are_listed_by_folder(tree, capsys):
    root, _ = tree
    listed = dict(problems(scan([root])))
    assert set(listed) == {str(root / cell) for cell in ("dtd/CoOp/rn50_ep50_1shots/seed3",
                                                         "dtd/CoOp/rn50_ep50_16shots/seed3",
                                                         "eurosat/CoOp/rn50_ep50_16shots/seed2")}
    assert listed[str(root / "eurosat/CoOp/rn50_ep50_16shots/seed2")].startswith("missing")
    results.main([str(root)])
    out = capsys.readouterr().out
    assert "3 missing or failed run folder(s)" in out and f"{root}/eurosat/CoOp/rn50_ep50_16shots/seed2" in out


def test_published_file_parses_and_every_row_has_a_source():
    published = load_published()
    assert published.values and all(v.source.strip() and v.label.strip() for v in published.values)
    assert {c.method: c.arxiv for c in published.claims} == {"CMM": "2412.20110", "FLEXCLIP": "2411.17454",
                                                             "LPPlusPlus": "2404.02285", "ZSLP": "2312.12730",
                                                             "CLAP": "2312.12730"}
    assert all(c.status == "claimed, not tabulated" and c.claim for c in published.claims)
    assert published.find("CoOp", "RN50", "dtd", 16).value == 63.70
    assert published.find("TipAdapterF", "RN50", "eurosat", 2).value == 66.15
    assert published.find("ZeroshotCLIP", "RN50", "oxford_pets", 0).value == 85.77  # any shots
    assert published.find("CoOp", "RN50", "imagenet_sketch", 16).value == 34.67
    assert published.find("GDA", "ViT-B/16", "average", 16).value == 81.85
    assert published.find("CoOp", "RN50", "dtd", 3) is None and published.find("CMM", "RN50", "dtd", 16) is None
    methods = {v.method for v in published.values}
    assert {"ZeroshotCLIP", "CoOp", "TipAdapter", "TipAdapterF", "CLIPAdapter", "CoCoOp", "APE", "GDA"} <= methods


def test_published_averages_equal_the_mean_of_their_datasets():
    groups = defaultdict(dict)
    for v in load_published().values:
        groups[v.method, v.backbone, v.label, v.shots][v.dataset] = v.value
    checked = 0
    for values in groups.values():
        if "average" in values and all(d in values for d in FEWSHOT_DATASETS):
            assert values["average"] == pytest.approx(np.mean([values[d] for d in FEWSHOT_DATASETS]), abs=0.01)
            checked += 1
    # zero-shot; CoOp, Tip, Tip-F, CLIP-Adapter x 5 shots; GDA ViT-B/16; GDA RN50 x 5 shots; GDA RN101, ViT-B/32
    assert checked == 1 + 4 * 5 + 1 + 5 + 2


@pytest.mark.parametrize("entry, message", [
    ("  - {method: CoOp, backbone: RN50, label: CoOp, protocol: strict, shots: [1, 2], values: {dtd: [1.0, 2.0]}}",
     "missing or empty source"),
    ("  - {method: CoOp, backbone: RN50, label: CoOp, protocol: strict, source: x.log, shots: [1, 2], "
     "values: {dtd: [1.0]}}", "'dtd' needs 2 value(s)"),
    ("  - {method: CoOp, backbone: RN50, label: CoOp, protocol: strict, source: x.log, values: {dtd: 1.0}, shot: [1]}",
     "unknown field(s) shot"),
    ("  - {method: CoOp, backbone: RN50, label: CoOp, protocol: strict, source: x.log, values: {dtdd: 1.0}}",
     "unknown dataset(s) dtdd"),
    ("  - {method: CoOp, backbone: RN50, label: CoOp, source: x.log, values: {dtd: 1.0}}",
     "missing or empty protocol"),
    ("  - {method: CoOp, backbone: RN50, label: CoOp, protocol: test_set, source: x.log, values: {dtd: 1.0}}",
     "protocol 'test_set' is not one of strict, full_val, lpclip, unknown"),
])
def test_a_malformed_entry_is_an_error_naming_it(tmp_path, entry, message):
    path = tmp_path / "published.yaml"
    path.write_text("entries:\n  - {method: ZeroshotCLIP, backbone: RN50, label: ZS, source: a.log, protocol: strict, "
                    f"values: {{dtd: 42.0}}}}\n{entry}\n")
    with pytest.raises(PublishedFileError) as error:
        load_published(path)
    assert f"{path}: entry 2 (CoOp, RN50, CoOp)" in str(error.value) and message in str(error.value)


def test_backbone_from_the_cfg_name():
    assert [backbone_of_cfg(c) for c in ("rn50", "rn50_ep50", "rn101_ep100", "vit_b32", "vit_b16_ctxv1", "sim",
                                         "rn50x4")] == ["RN50", "RN50", "RN101", "ViT-B/32", "ViT-B/16", None, None]


def test_delta_is_ours_minus_published(tree):
    root, _ = tree
    table = tables_of([root], load_published())["accuracy"]
    row = row_of(table, "dtd", "CoOp", 16)
    assert row.published.value == 63.70 and row.delta == pytest.approx(row.mean - 63.70)
    assert row_of(table, "imagenetv2", "CoOp", 16).published.value == 55.40  # TPT's shift row
    record = next(r for r in records(table) if (r["dataset"], r["shots"]) == ("dtd", 16))
    assert record["delta"] == row.delta and record["published_as"] == row.published.label
    assert row_of(tables_of([root], load_published())["mAP"], "simulated_pairs", "FLEXCLIP", 4).published is None


def test_wide_layout_holds_the_long_tables_cells_and_the_published_rows(tree):
    root, _ = tree
    table = tables_of([root], load_published())["accuracy"]
    lines = wide_table(table, "plain").splitlines()
    [ours] = [line for line in lines if line.split()[:3] == ["dtd", "CoOp", "rn50_ep50"]]
    for shots in (1, 16):
        row = row_of(table, "dtd", "CoOp", shots)
        assert f"{row.mean:.2f} ± {row.std:.2f} ({len(row.seeds)})" in ours
    published, delta = lines[lines.index(ours) + 1], lines[lines.index(ours) + 2]
    assert "published:" in published and published.split()[-2:] == ["44.10", "63.70"]  # CoOp DTD, APE notebook
    assert delta.split()[-1] == f"{row_of(table, 'dtd', 'CoOp', 16).delta:+.2f}"
    assert not any("published:" in line for line in wide_table(table, "plain", with_published=False).splitlines())


def test_csv_and_latex_formats(tree, capsys):
    root, _ = tree
    results.main([str(root), "--format", "csv"])
    captured = capsys.readouterr()
    parsed = list(csv.DictReader(io.StringIO(captured.out)))
    assert list(parsed[0]) == ["metric", "dataset", "trainer", "cfg", "shots", "mean", "std", "seeds", "provenance",
                               "published", "delta", "published_as", "caveats"]
    table = tables_of([root], load_published())["accuracy"]
    dtd16 = next(r for r in parsed if (r["dataset"], r["shots"]) == ("dtd", "16"))
    row = row_of(table, "dtd", "CoOp", 16)
    assert (float(dtd16["mean"]), float(dtd16["delta"]), dtd16["seeds"]) == (round(row.mean, 2), round(row.delta, 2),
                                                                              "2")
    assert {r["metric"] for r in parsed} == {"accuracy", "mAP"} and "missing or failed" in captured.err
    latex = format_table(table, "latex")
    assert latex.startswith("\\begin{tabular}") and "imagenetv2" in latex and "63.70" in latex
    mAP = tables_of([root])["mAP"]
    assert "simulated\\_pairs" in format_table(mAP, "latex", with_published=False)
    assert format_table(mAP, "csv", with_published=False) == csv_text([mAP], with_published=False)


def test_published_columns_only_when_a_value_matches(tree, tmp_path, capsys):
    root, _ = tree
    results.main([str(root), "--no-published"])
    assert "published" not in capsys.readouterr().out.splitlines()[2]
    results.main([str(root / "simulated_pairs")])  # nothing published for it: no columns by default
    out = capsys.readouterr().out
    assert "| simulated_pairs | FLEXCLIP" in out and "published" not in out


def eleven_dataset_tree(root, datasets=FEWSHOT_DATASETS):
    rng = np.random.default_rng(1)
    for dataset in datasets:
        for seed in (1, 2):
            acc = round(float(rng.uniform(20, 90)), 1)
            write(root, f"{dataset}/TipAdapterF/rn50_16shots/seed{seed}", training_log(acc))


def test_average_row_only_with_all_eleven_datasets(tmp_path, capsys):
    eleven_dataset_tree(tmp_path / "all")
    table = tables_of([tmp_path / "all"], load_published())["accuracy"]
    [average] = [r for r in table.rows if r.dataset == "average"]
    per_dataset = [r for r in table.rows if r.dataset != "average"]
    assert average.mean == pytest.approx(np.mean([r.mean for r in per_dataset]))
    assert average.std == pytest.approx(np.std([np.mean([r.values[i] for r in per_dataset]) for i in (0, 1)]))
    assert average.published.value == 75.83 and table.incomplete == ()
    eleven_dataset_tree(tmp_path / "ten", [d for d in FEWSHOT_DATASETS if d != "dtd"])
    table = tables_of([tmp_path / "ten"])["accuracy"]
    assert all(r.dataset != "average" for r in table.rows)
    assert table.incomplete == (("TipAdapterF", "rn50", "", 16, "", ("dtd",)),)
    results.main([str(tmp_path / "ten")])
    assert "no 11-dataset average for TipAdapterF rn50 16-shot: missing dtd" in capsys.readouterr().out


def test_plot_data_are_the_tables_numbers(tmp_path, tree):
    eleven_dataset_tree(tmp_path / "all")
    table = tables_of([tmp_path / "all"], load_published())["accuracy"]
    series = plot_series(table)
    ours = {s.panel: s for s in series if not s.published}
    for row in table.rows:
        panel = AVERAGE_PANEL if row.dataset == "average" else row.dataset
        assert ours[panel].means == (pytest.approx(row.mean),) and ours[panel].stds == (pytest.approx(row.std),)
    published = {s.panel: s for s in series if s.published}
    assert published["dtd"].means == (66.55,) and published[AVERAGE_PANEL].means == (pytest.approx(75.83, abs=0.01),)
    root, _ = tree
    shift = plot_series(tables_of([root])["accuracy"])
    curve = next(s for s in shift if s.panel == "dtd")
    assert curve.shots == (1, 16) and curve.means == tuple(
        pytest.approx(row_of(tables_of([root])["accuracy"], "dtd", "CoOp", k).mean) for k in (1, 16))
    assert AVERAGE_PANEL not in {s.panel for s in plot_series(tables_of([root])["mAP"])}  # one dataset: no average
    [average] = [s for s in shift if s.panel == AVERAGE_PANEL and not s.published]  # dtd and eurosat, not imagenetv2
    table = tables_of([root])["accuracy"]
    assert average.shots == (1, 16) and average.means == tuple(pytest.approx(
        (row_of(table, "dtd", "CoOp", k).mean + row_of(table, "eurosat", "CoOp", k).mean) / 2) for k in (1, 16))


def test_zero_shot_eval_only_runs_keep_their_datasets_in_the_average_panel(tmp_path):
    root = tmp_path / "output"
    for dataset, acc in (("dtd", 50.0), ("eurosat", 70.0)):
        write(root, f"{dataset}/ZeroshotCLIP/rn50_0shots/seed1", eval_only_log(acc - 10))
        write(root, f"{dataset}/CMM/rn50_16shots/seed1", training_log(acc))
    write(root, "imagenetv2/CMM/rn50_16shots/seed1", eval_only_log(30.0))  # a shift set: not averaged
    series = plot_series(tables_of([root])["accuracy"])
    average = {s.method: s.means for s in series if s.panel == AVERAGE_PANEL}
    assert average == {"CMM": (60.0,), "ZeroshotCLIP": (50.0,)}


def test_plots_are_written_as_png_and_pdf(tree, tmp_path, capsys):
    root, _ = tree
    dest = tmp_path / "plots" / "fig"
    dest.parent.mkdir()
    results.main([str(root), "--plot", str(dest)])
    for metric in ("accuracy", "mAP"):
        for ext in ("png", "pdf"):
            path = Path(f"{dest}_{metric}.{ext}")
            assert path.is_file() and path.stat().st_size > 1000
    captured = capsys.readouterr()
    assert f"{dest}_accuracy.png" in captured.err and "wrote" not in captured.out  # a console message, not the table
    assert all(os.path.getsize(p) > 0 for p in draw(plot_series(tables_of([root])["mAP"]), "mAP", tmp_path / "one"))


def tip_adapter_cell(root, protocols):
    """TipAdapter RN50 16-shot DTD runs, one seed per protocol recorded (published split)."""
    for seed, protocol in enumerate(protocols, 1):
        rel = f"dtd/TipAdapter/rn50_16shots/seed{seed}"
        write(root, rel, training_log(60.0 + seed))
        write_provenance(root, rel, protocol=protocol)


def test_a_protocol_other_than_the_published_rows_gets_no_delta_and_the_reason(tmp_path, capsys):
    tip_adapter_cell(tmp_path / "strict", ["strict", "strict"])
    [row] = tables_of([tmp_path / "strict"], load_published())["accuracy"].rows
    assert row.published.value == 60.93 and row.published.protocol == "full_val"  # Tip-Adapter chose on full val
    assert row.delta is None and row.mark == "†"
    results.main([str(tmp_path / "strict")])
    out = capsys.readouterr().out
    assert "| 61.50 ± 0.50 (2)† |" in out
    assert ("Cells without a delta against their published row:\n"
            "  dtd TipAdapter rn50 16-shot: protocol strict, the published row's is full_val") in out
    tip_adapter_cell(tmp_path / "full", ["full_val", "full_val"])  # the original's protocol: compared
    [row] = tables_of([tmp_path / "full"], load_published())["accuracy"].rows
    assert row.caveats == () and row.mark == "" and row.delta == pytest.approx(61.5 - 60.93)
    [row] = [r for t in build_tables(usable(scan([tmp_path / "strict"])), load_published(), compare_anyway=True)
             for r in t.rows]
    assert row.compared_anyway and row.delta == pytest.approx(61.5 - 60.93) and row.mark == "†"


def test_seeds_with_different_protocols_make_a_marked_cell(tmp_path):
    tip_adapter_cell(tmp_path, ["full_val", "strict"])
    [row] = tables_of([tmp_path], load_published())["accuracy"].rows
    assert row.mark == "†" and row.delta is None
    assert [why for _, why in row.caveats] == ["seeds used different selection protocols (full_val, strict)"]


def test_a_published_row_of_unknown_protocol_is_never_compared(tmp_path):
    write(tmp_path, "dtd/CLIPAdapter/rn50_16shots/seed1", training_log(60.0))
    write_provenance(tmp_path, "dtd/CLIPAdapter/rn50_16shots/seed1")
    [row] = tables_of([tmp_path], load_published())["accuracy"].rows
    assert row.published.protocol == "unknown" and row.delta is None and row.mark == ""
    assert "does not say on which split" in row.caveats[0][1]


def test_every_published_entry_names_a_valid_protocol():
    from reports.published import PROTOCOLS
    from trainers.core.run_provenance import PROTOCOLS as RUN_PROTOCOLS

    assert PROTOCOLS == (*RUN_PROTOCOLS, "unknown")
    import yaml

    entries = yaml.safe_load(Path(PUBLISHED_FILE).read_text())["entries"]
    assert all(entry.get("protocol") in PROTOCOLS for entry in entries)
    published = load_published()
    protocol = {(v.method, v.label): v.protocol for v in published.values}
    assert protocol["TipAdapter", "Tip-Adapter"] == protocol["TipAdapterF", "Tip-Adapter-F"] == "full_val"
    assert protocol["ZeroshotCLIP", "Zero-shot CLIP (CoOp template)"] == "strict"
    assert protocol["CoOp", "CoOp (M=16, end, shared context)"] == "strict"


def unescaped_specials(tex):
    """``%``, ``_`` and ``&`` that LaTeX would read as commands (a column separator `` & `` aside)."""
    return re.findall(r"(?<!\\)[%_]|(?<![\\ ])&", tex)


def test_report_files_hold_the_tables_only(tree, tmp_path, capsys):
    from experiments.reproduce import write_report

    root, _ = tree
    report = tmp_path / "report"
    write_report(str(root), str(report))
    captured = capsys.readouterr()
    assert f"wrote {report}/curves_accuracy.png" in captured.err  # the console has the plot messages
    for ext in ("md", "csv", "tex"):
        text = (report / f"results.{ext}").read_text()
        assert "wrote" not in text and ".png" not in text
    assert (report / "curves_accuracy.png").is_file()
    tex = (report / "results.tex").read_text()
    assert tex.startswith("accuracy (\\%): mean and std over seeds")
    assert unescaped_specials(tex) == [] and "±" not in tex and "$\\pm$" in tex


@pytest.mark.parametrize("text, tex", [
    ("accuracy (%)", "accuracy (\\%)"), ("oxford_pets", "oxford\\_pets"), ("A & B", "A \\& B"),
    ("62.10 ± 0.50 (3)†", "62.10 $\\pm$ 0.50 (3)\\dag{}"), ("$#{}", "\\$\\#\\{\\}"),
    ("a\\b ~^", "a\\textbackslash{}b \\textasciitilde{}\\textasciicircum{}"),
])
def test_latex_escaping(text, tex):
    assert latex_escape(text) == tex


def test_latex_tables_escape_every_cell(tree, capsys):
    root, _ = tree
    tip_adapter_cell(root, ["strict"])  # a marked cell, with a reason under the table
    results.main([str(root), "--format", "latex", "--layout", "long"])
    out = capsys.readouterr().out
    assert "simulated\\_pairs" in out and "rn50\\_ep50" in out and "\\dag{} published, strict" in out
    assert "protocol strict, the published row's is full\\_val\\par\n" in out  # each note a paragraph
    assert unescaped_specials(out) == [] and "±" not in out and "†" not in out


def test_a_split_of_unknown_origin_gets_no_delta(tmp_path):
    """A plugin run records the split of Dassl's dataset, which does not say whether it was rebuilt."""
    write(tmp_path, "dtd/CoOp/rn50_ep50_16shots/seed1", training_log(60.0))
    write_provenance(tmp_path, "dtd/CoOp/rn50_ep50_16shots/seed1", origin="unknown", split_file=None)
    [row] = tables_of([tmp_path], load_published())["accuracy"].rows
    assert row.published.value == 63.70 and row.delta is None and row.mark == "†"
    assert [why for _, why in row.caveats] == ["split unknown (not the published split)"]


MANY_TRAINERS = ["CMM", "FLEXCLIP", "CoOp", "CoCoOp", "TipAdapter", "TipAdapterF", "CLIPAdapter", "LinearProbe",
                 "ProGrad", "MaPLe", "KgCoOp", "PLOT", "ZeroshotCLIP"]


def test_the_plot_stays_readable_with_thirteen_methods(tmp_path):
    from reports.plots import PUBLISHED_LINESTYLE, figure, styles

    root = tmp_path / "many"
    for i, trainer in enumerate(MANY_TRAINERS):
        for dataset in ("dtd", "eurosat"):
            for k in (1, 16):
                write(root, f"{dataset}/{trainer}/rn50_{k}shots/seed1", training_log(50.0 + i + k / 4))
    series = plot_series(tables_of([root], load_published())["accuracy"])
    ours = [s for s in series if not s.published]
    assert {s.label for s in ours} == set(MANY_TRAINERS)  # "(rn50)", on every label, is left out
    assert any(s.published for s in series)  # CoOp / Tip-Adapter published values: dashed lines too

    fig = figure(series, "accuracy")
    fig.canvas.draw()
    [legend] = fig.legends  # one legend for the whole figure, none per panel
    panels = [ax for ax in fig.axes if ax.get_visible()]
    assert [ax.get_title() for ax in panels] == ["dtd", "eurosat", AVERAGE_PANEL]
    assert all(ax.get_legend() is None for ax in panels)
    box = legend.get_window_extent()
    assert all(box.x0 >= ax.get_window_extent().x1 for ax in panels)  # beside the axes, not over or under them
    handles = dict(zip((t.get_text() for t in legend.get_texts()), legend.legend_handles))
    assert set(handles) == {s.label for s in series}
    dashes = {label: str(style["linestyle"]) for label, style in styles(series).items()}  # matplotlib shows "--"
    look = {label: (h.get_marker(), dashes[label], h.get_color()) for label, h in handles.items()}
    assert len({look[label] for label in MANY_TRAINERS}) == len(MANY_TRAINERS)  # each of ours looks different
    for s in series:
        if s.published:  # dashed, in its method's colour, a dash no line of ours has
            assert dashes[s.label] == str(PUBLISHED_LINESTYLE) and look[s.label][2] == look[s.method][2]
        else:
            assert dashes[s.label] != str(PUBLISHED_LINESTYLE)
    width, height = fig.get_size_inches()
    one = figure([s for s in series if s.panel == "dtd"], "accuracy")
    assert one.get_size_inches()[0] < width - 2 * 3.5  # the figure grows with the panels, not the panels shrink
    assert panels[0].get_window_extent().width / fig.dpi > 3.0  # each panel keeps >3 inches of width
    import matplotlib.pyplot as plt

    plt.close(fig)
    plt.close(one)

    write(root, "dtd/CMM/vit_b16_16shots/seed1", training_log(70.0))  # two configs: the cfg is what tells them apart
    labels = {s.label for s in plot_series(tables_of([root])["accuracy"]) if not s.published}
    assert {"CMM (rn50)", "CMM (vit_b16)"} <= labels


def test_gda_rows_and_average_compare_only_under_gdas_published_protocol(tmp_path):
    """GDA's published RN50 rows chose alpha on the full val split: the rn50_full_val runs (as in
    configs/experiments/rn50_fewshot.yaml) get deltas, per dataset and in the 11-dataset average;
    the strict rn50 runs get the published value beside them and no delta."""
    for cfg, protocol in (("rn50", "strict"), ("rn50_full_val", "full_val")):
        for i, dataset in enumerate(FEWSHOT_DATASETS):
            rel = f"{dataset}/GDA/{cfg}_16shots/seed1"
            write(tmp_path, rel, training_log(50.0 + i))
            write_provenance(tmp_path, rel, protocol=protocol)
    rows = {(r.cfg, r.dataset): r for r in tables_of([tmp_path], load_published())["accuracy"].rows}
    assert rows["rn50_full_val", "dtd"].published.value == 66.51
    assert rows["rn50_full_val", "dtd"].delta == pytest.approx(50.0 + FEWSHOT_DATASETS.index("dtd") - 66.51)
    assert rows["rn50_full_val", "average"].published.value == 76.05
    assert rows["rn50_full_val", "average"].delta == pytest.approx(55.0 - 76.05)
    assert rows["rn50", "average"].published.value == 76.05 and rows["rn50", "average"].delta is None
    assert rows["rn50", "dtd"].delta is None
