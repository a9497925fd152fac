"""The results table (reports/results.py): read CoOp-layout run folders and print mean ± std over
seeds beside the published numbers.

    python scripts/results.py ROOT [ROOT ...] [--format plain|github|latex|csv] [--layout wide|long]
                              [--test-log] [--metric accuracy mAP] [--no-published] [--compare-anyway]
                              [--plot DEST]

A run folder is ``.../<dataset>/<Trainer>/<cfg>_<K>shots[/<variant>]/seed<S>/log.txt``. A run's
figures are read exactly as CoOp's ``parse_test_res.py`` reads them: the ``* <metric>: x%`` lines
after the end signal (``Finish training``; ``=> result`` for an eval-only run, told from its log
or forced with ``--test-log``); the spread is NumPy's population std, as there. One table per
metric (accuracy for classification and distribution shift, mAP for retrieval), with an average
row over the 11 few-shot datasets where all 11 are present, the published value of the same
method, backbone (from the cfg name: rn50, rn101, vit_b32, vit_b16), dataset and shots
(configs/published.yaml) and ours − published. A delta is printed only where every seed's
provenance.json records the published split and the published entry's selection protocol
(``--compare-anyway`` prints it regardless); marked cells and cells without a delta are listed
under the table with the reason. Seed folders without a result and seeds missing from a cell are
listed. ``--plot DEST`` writes ``DEST_<metric>.png`` and ``.pdf`` (and says so on stderr).
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from reports.results import main  # noqa: E402

if __name__ == "__main__":
    main()
