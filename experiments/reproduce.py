"""Reproduce a named experiment end to end:

    bash scripts/reproduce.sh NAME [--root DATA] [--dry-run] [--jobs N] [--launcher local|slurm|submitit-local]

1. check everything the experiment needs (datasets, split files, weights, disk) and list what is
   missing all at once, before any work;
2. extract the frozen features of every unfinished run once (``--extract-procs N``: sharded with
   torchrun);
3. run everything: finished runs are skipped (``trainers.core.run_log.run_status``: log.txt has the test
   result), a folder left half-written is redone from scratch; the end prints each trainer's
   share of the run time;
4. write ``<output>/report/``: the results table (md, csv, tex), the curves (png, pdf),
   ``provenance.json`` (one record per invocation: git commit, packages, config hashes, device,
   timings, the run folders it ran) and ``made_by.md`` (which invocation made which cell).
Names are files in ``configs/experiments/``; ``--dry-run`` prints the runs and the extraction.
"""
import argparse
import contextlib
import io
import json
import os
import subprocess
import sys
import time

from .launchers import run_local, run_submitit, submitit_params
from .plan import extraction_lines, run_lines
from .prerequisites import missing_prerequisites
from .provenance import invocation_record, now, read_history, write_provenance
from .spec import REPO, ExperimentError, load_experiment

LAUNCHERS = {"local": None, "slurm": "slurm", "submitit-local": "local"}  # -> submitit cluster


def build_parser():
    p = argparse.ArgumentParser(prog="scripts/reproduce.sh", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("name", help="experiment: configs/experiments/<name>.yaml (or a path to such a file)")
    p.add_argument("--root", default=os.environ.get("DATA", ""), help="datasets root (default: $DATA)")
    p.add_argument("--output", help="output folder (default: the experiment's 'output')")
    p.add_argument("--dry-run", action="store_true", help="print the runs and the extraction; run nothing")
    p.add_argument("--jobs", type=int, default=1, help="parallel runs on this machine (local launcher)")
    p.add_argument("--launcher", choices=list(LAUNCHERS), default="local",
                   help="local: this machine; slurm: a submitit job array; submitit-local: the same array "
                        "with submitit's local executor (to try the cluster path on a laptop)")
    p.add_argument("--extract-procs", type=int, default=1, help="processes (GPUs) that share feature extraction")
    p.add_argument("--partition", default="", help="SLURM partition")
    p.add_argument("--time", type=int, default=240, help="minutes per array task (SLURM)")
    p.add_argument("--gpus-per-job", type=int, default=1, help="GPUs per array task (SLURM)")
    p.add_argument("--cpus-per-job", type=int, default=8, help="CPUs per array task (SLURM)")
    p.add_argument("--runs-per-job", type=int, default=1, help="runs per array task (SLURM)")
    p.add_argument("--array-parallelism", type=int, default=64, help="array tasks running at once (SLURM)")
    p.add_argument("--no-extract", action="store_true", help="skip the extraction phase (runs encode what they need)")
    return p


def cache_root():
    from trainers.features.feature_cache import default_cache_root

    return default_cache_root()


def extract(runs, root, args, submitit_folder):
    """Phase 2: every feature the unfinished runs read, encoded once into the cache."""
    argvs = [r.argv(root) for r in runs]
    if args.launcher != "local":
        from .launchers import submitit_executor

        params = submitit_params(args, "extract") | {"tasks_per_node": args.extract_procs,
                                                      "gpus_per_node": args.extract_procs}
        job = submitit_executor(submitit_folder, LAUNCHERS[args.launcher], params).submit(extract_job, argvs)
        print(f"Feature extraction: job {job.job_id}")
        return job.result()
    if args.extract_procs > 1:
        runs_file = os.path.join(submitit_folder, "extract_runs.json")
        os.makedirs(submitit_folder, exist_ok=True)
        with open(runs_file, "w") as f:
            json.dump(argvs, f)
        subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone",
                        f"--nproc_per_node={args.extract_procs}", os.path.join(REPO, "extract_features.py"),
                        "--runs", runs_file], check=True)
        return None
    from trainers.features.extraction import extract_for_runs

    return extract_for_runs(argvs)


def extract_job(argvs):
    """A submitit job (one task per GPU): torch.distributed's environment, then extraction."""
    import submitit

    from trainers.features import distributed
    from trainers.features.extraction import extract_for_runs

    if submitit.JobEnvironment().num_tasks > 1:
        submitit.helpers.TorchDistributedEnvironment().export()
        distributed.init_from_env()
    return extract_for_runs(argvs)


def execute(stages, root, args, submitit_folder):
    results = []
    for i, runs in enumerate(stages):
        desc = f"stage {i + 1}/{len(stages)}" if len(stages) > 1 else "runs"
        if args.launcher == "local":
            results += run_local(runs, root, args.jobs, desc)
        else:
            results += run_submitit(runs, root, submitit_folder, LAUNCHERS[args.launcher],
                                    submitit_params(args, "runs"), args.runs_per_job, desc)
    return results


def write_report(output, report_dir):
    """The results table in three formats and the curves, from the same reader as results.py. The
    files hold the tables and their notes only: the plot messages go to the console, and the CSV
    run's notes (printed to stderr, the same as results.md's) are dropped."""
    from reports import results

    os.makedirs(report_dir, exist_ok=True)
    for fmt, ext in (("github", "md"), ("csv", "csv"), ("latex", "tex")):
        text = io.StringIO()
        quiet = contextlib.redirect_stderr(io.StringIO()) if fmt == "csv" else contextlib.nullcontext()
        with contextlib.redirect_stdout(text), quiet:
            results.main([output, "--format", fmt] + (["--plot", os.path.join(report_dir, "curves")]
                                                      if fmt == "github" else []))
        with open(os.path.join(report_dir, f"results.{ext}"), "w") as f:
            f.write(text.getvalue())
    with open(os.path.join(report_dir, "results.md")) as f:
        return f.read()


def main(argv=None):
    args = build_parser().parse_args(argv)
    try:
        experiment = load_experiment(args.name, args.output)
    except ExperimentError as e:
        sys.exit(f"error: {e}")
    root = os.path.abspath(os.path.expanduser(args.root)) if args.root else ""
    print(f"Experiment {experiment.name}: {experiment.description}\n{len(experiment.runs)} runs under "
          f"{experiment.output}")
    missing = missing_prerequisites(experiment, root, cache_root())
    if args.dry_run:
        print("\n".join(run_lines(experiment, root)))
        print("Feature extraction:\n" + "\n".join(extraction_lines(experiment.runs, root)))
    if missing:
        print(f"\nMissing prerequisites ({len(missing)}); nothing was run:", file=sys.stderr)
        print("\n".join("  - " + m.replace("\n", "\n    ") for m in missing), file=sys.stderr)
        sys.exit(2)
    if args.dry_run:
        return None

    report_dir = os.path.join(experiment.output, "report")
    try:
        history = read_history(os.path.join(report_dir, "provenance.json"))
    except ExperimentError as e:
        sys.exit(f"error: {e}")
    submitit_folder = os.path.join(experiment.output, "submitit")
    start, started_at = time.time(), now()
    from trainers.core.run import current_status

    unfinished = [r for r in experiment.runs if not current_status(r.out, r.argv(root), r.end_signal).finished]
    extraction = extract(unfinished, root, args, submitit_folder) if unfinished and not args.no_extract else None
    extracted = time.time()
    results = execute(experiment.stages(), root, args, submitit_folder)
    trained = time.time()
    table = write_report(experiment.output, report_dir)
    timings = {"extraction": round(extracted - start, 2), "runs": round(trained - extracted, 2),
               "report": round(time.time() - trained, 2), "total": round(time.time() - start, 2)}
    launch = {"launcher": args.launcher, "jobs": args.jobs, "extract_procs": args.extract_procs, "root": root,
              "output": os.path.abspath(experiment.output), "feature_cache": cache_root(), "extraction": extraction}
    record = invocation_record(len(history) + 1, started_at, experiment, launch, timings, results)
    write_provenance(report_dir, experiment, history, record)
    failed = [r for r in results if r.status == "failed"]
    print(f"\n{table}")
    shares = trainer_time_shares(experiment.runs, results)
    if shares:
        print(shares)
    print(f"{sum(r.status == 'done' for r in results)} run(s) done, {sum(r.status == 'skipped' for r in results)} "
          f"already finished, {len(failed)} failed; extraction {timings['extraction']:.1f}s, runs "
          f"{timings['runs']:.1f}s, total {timings['total']:.1f}s.\nReport: {report_dir} (invocation "
          f"#{record['number']}; made_by.md says which invocation made which cell)")
    if failed:
        print("Failed runs (the traceback is in each folder's log.txt):", file=sys.stderr)
        print("\n".join(f"  {r.out}: {r.error}" for r in failed), file=sys.stderr)
        sys.exit(1)
    return results, timings


def trainer_time_shares(runs, results):
    """One line: each trainer's share of the time this invocation's runs took (runs done here,
    seconds summed over the parallel workers), largest first; "" when nothing ran."""
    trainer_of = {run.out: run.trainer for run in runs}
    seconds = {}
    for result in results:
        if result.status == "done":
            seconds[trainer_of[result.out]] = seconds.get(trainer_of[result.out], 0.0) + result.seconds
    total = sum(seconds.values())
    if not total:
        return ""
    ranked = sorted(seconds.items(), key=lambda item: -item[1])
    return "Run time per trainer: " + ", ".join(f"{name} {100 * s / total:.0f}% ({s:.1f}s)" for name, s in ranked)


if __name__ == "__main__":
    main()
