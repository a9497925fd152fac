"""CMM's ablation grid on one dataset: the full method, one switch off at a time and a
GDA-initialised map, over seeds, printed as one table (accuracy, change from the full method,
modality gap before -> after).

    python scripts/cmm/ablation.py                                   # the simulated benchmark
    python scripts/cmm/ablation.py --dataset dtd --cfg rn50 --root $DATA --shots 16

Runs go to output/<dataset>/CMM/<cfg>_<K>shots/ablation_<variant>/seed<S> (finished runs skipped).
"""
import argparse
import json
import os
import sys

import numpy as np
from tabulate import tabulate

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from experiments.ablation_grid import add_arguments, run_variant, summary_cells  # noqa: E402

# variant -> overrides; each turns one of the paper's ingredients off, except gda_init, which
# starts the map from GDA's closed form (methods/cmm.py gda_map_init) instead of zero
VARIANTS = {
    "full": [],
    "no_triplet": ["TRAINER.CMM.LAMBDA", "0.0", "TRAINER.CMM.SEARCH_LAMBDA", "[0.0]"],
    "no_residual": ["TRAINER.CMM.RESIDUAL", "False"],
    "frozen_prototypes": ["TRAINER.CMM.TRAIN_PROTOTYPES", "False"],
    "no_fusion": ["TRAINER.CMM.FUSION", "False"],
    "random_negative": ["TRAINER.CMM.NEGATIVE", "random"],
    "cosine_distance": ["TRAINER.CMM.DISTANCE", "cosine"],
    "gda_init": ["TRAINER.CMM.MAP_INIT", "gda"],  # the map starts from GDA's closed form, not zero
}


def mean_gap(folders):
    gaps = [json.load(open(os.path.join(f, "modality_gap.json"))) for f in folders]
    return (np.mean([g["before"]["modality_gap"] for g in gaps]), np.mean([g["after"]["modality_gap"] for g in gaps]))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(parser, default_dataset="simulated")
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    args = parser.parse_args(argv)

    rows, reference = [], None
    for name in args.variants:
        folders = run_variant(args, name, "CMM", VARIANTS[name])
        mean, cell, delta = summary_cells(folders, reference)
        reference = mean if name == "full" else reference
        before, after = mean_gap(folders)
        rows.append([name, cell, delta, f"{before:.3f} -> {after:.3f}"])
    print(f"\nCMM ablations on {args.dataset}, {args.shots} shots, cfg {args.cfg} (mean ± std over seeds)\n")
    print(tabulate(rows, headers=["variant", "accuracy (%)", "vs full", "modality gap (test)"], tablefmt=args.format,
                   disable_numparse=True))


if __name__ == "__main__":
    main()
