"""``python train.py``: one run with CoOp's command line (``--help``; the parser, the config
merge and the run live in trainers/core/run.py)."""
from trainers.core.run import cli_main

if __name__ == "__main__":
    cli_main()
