"""Is a run finished? The shell runners' question, answered by ``trainers.core.run_log.run_status``:

    python -m reports.finished DIR [DIR ...] [--test-log] [--quiet]

Exit status 0 when every DIR is finished, 1 when one is not (a run to do or redo), 2 on a usage
error or an unreadable log. One line per DIR says which and why. It imports no torch (a few
tens of milliseconds), so ``scripts/run_lib.sh`` can ask it before every run.
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


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folders", nargs="+", metavar="DIR", help="run folder (the one holding log.txt)")
    parser.add_argument("--test-log", action="store_true",
                        help="read every log as eval-only (end signal '=> result'); default: told from each log")
    parser.add_argument("-q", "--quiet", action="store_true", help="only the exit status")
    args = parser.parse_args(argv)
    try:
        statuses = [run_status(folder, TEST_LOG_SIGNAL if args.test_log else None) for folder in args.folders]
    except (OSError, UnicodeDecodeError) as e:
        print(f"error: cannot read a run's log: {e}", file=sys.stderr)
        return 2
    if not args.quiet:
        print("\n".join(describe(s) for s in statuses))
    return 0 if all(s.finished for s in statuses) else 1


if __name__ == "__main__":
    sys.exit(main())
