"""Is a run finished? The shell runners' question, answered by ``trainers.core.run_log.run_status``:

    python -m reports.finished DIR [DIR ...] [--test-log] [--quiet] [-- TRAIN.PY ARGUMENTS]

Exit status 0 when every DIR is finished, 1 when one is not (a run to do or redo), 2 on a usage
error or an unreadable log. One line per DIR says which and why. After ``--``, the train.py
arguments the runner would run DIR with (without ``--output-dir``): a finished run whose
config.yaml is not the config they build now is stale and counts as unfinished; its line is
printed even with ``--quiet`` (a result about to be redone). It imports no torch (a few tens of
milliseconds; building a finished run's config adds a few hundred), so ``scripts/run_lib.sh``
asks it before every run.
"""
import argparse
import sys

from trainers.core.run_log import TEST_LOG_SIGNAL, run_status


def describe(status):
    if status.finished:
        figures = ", ".join(f"{name} {value:g}%" for name, value in status.metrics.items()
                            if name in ("accuracy", "mAP"))
        return f"finished: {status.folder} ({figures})"
    return f"unfinished: {status.folder} ({status.why})"


def status_of(folder, end_signal, train_args):
    if train_args is None:
        return run_status(folder, end_signal)
    from trainers.core.run import current_status

    return current_status(folder, train_args, end_signal)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    train_args = argv[argv.index("--") + 1:] if "--" in argv else None
    own = argv[:argv.index("--")] if "--" in argv else argv
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folders", nargs="+", metavar="DIR", help="run folder (the one holding log.txt)")
    parser.add_argument("--test-log", action="store_true",
                        help="read every log as eval-only (end signal '=> result'); default: told from each log")
    parser.add_argument("-q", "--quiet", action="store_true", help="only the exit status (and stale runs' lines)")
    args = parser.parse_args(own)
    try:
        statuses = [status_of(folder, TEST_LOG_SIGNAL if args.test_log else None, train_args)
                    for folder in args.folders]
    except (OSError, UnicodeDecodeError) as e:
        print(f"error: cannot read a run's log: {e}", file=sys.stderr)
        return 2
    except ValueError as e:  # the train.py arguments do not build a config (unknown key, bad yaml)
        print(f"error: {e}", file=sys.stderr)
        return 2
    shown = statuses if not args.quiet else [s for s in statuses if s.stale]
    if shown:
        print("\n".join(describe(s) for s in shown))
    return 0 if all(s.finished for s in statuses) else 1


if __name__ == "__main__":
    sys.exit(main())
