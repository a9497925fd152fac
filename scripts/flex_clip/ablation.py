"""FLEX-CLIP's ablation table on one dataset: zero-shot CLIP, the projection trained on real
features only (no generation), the full method, and the full method without the gate, without
the fusion with CLIP's features, or without the cross-modal terms (stage 1's consistency and
stage 2's alignment), over seeds.

    python scripts/flex_clip/ablation.py                       # simulated paired benchmark, 16 shots
    python scripts/flex_clip/ablation.py --dataset wikipedia --cfg rn50 --root $DATA --shots 4

Runs go to output/<dataset>/<Trainer>/<cfg>_<K>shots/ablation_<variant>/seed<S> (finished runs skipped).
"""
import argparse
import os
import sys

from tabulate import tabulate

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from experiments.ablation_grid import add_arguments, metric_name, run_variant, summary_cells  # noqa: E402

# variant -> (trainer, overrides)
VARIANTS = {
    "zero_shot": ("ZeroshotCLIP", []),
    "no_generation": ("FLEXCLIP", ["TRAINER.FLEXCLIP.GENERATE", "False"]),
    "full": ("FLEXCLIP", []),
    "no_gate": ("FLEXCLIP", ["TRAINER.FLEXCLIP.PROJECTION", "no_gate"]),
    "no_fusion": ("FLEXCLIP", ["TRAINER.FLEXCLIP.PROJECTION", "no_fusion"]),
    "no_cross_modal": ("FLEXCLIP", ["TRAINER.FLEXCLIP.ALIGN_WEIGHT", "0.0",
                                    "TRAINER.FLEXCLIP.CROSS_MODAL_WEIGHT", "0.0"]),
}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(parser, default_dataset="simulated_pairs")
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    args = parser.parse_args(argv)

    folders = {name: run_variant(args, name, *VARIANTS[name]) for name in args.variants}
    results = {name: summary_cells(runs) for name, runs in folders.items()}
    reference = results["full"][0] if "full" in results else None
    rows = [[name, cell, "" if reference is None or name == "full" else f"{mean - reference:+.2f}"]
            for name, (mean, cell, _) in results.items()]
    metric = metric_name(next(iter(folders.values()))[0])
    print(f"\nFLEX-CLIP ablations on {args.dataset}, {args.shots} shots, cfg {args.cfg} (mean ± std over seeds)\n")
    print(tabulate(rows, headers=["variant", f"{metric} (%)", "vs full"], tablefmt=args.format,
                   disable_numparse=True))

if __name__ == "__main__":
    main()
