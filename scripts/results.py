"""The results table: ``python scripts/results.py ROOT [ROOT ...] [options]`` (``--help``; the
rules and the options are in reports/results.py)."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from reports.results import main  # noqa: E402

if __name__ == "__main__":
    main()
