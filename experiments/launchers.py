"""Where the runs of an experiment execute: this machine (``--jobs N`` worker processes) or a
job array through submitit (SLURM, or submitit's local executor, the same code path on one
machine). Every launcher skips finished runs (``trainers.core.run_log.run_status``, the rule every
tool uses, with the run's current config: a run finished under another config is stale) and reruns
dead or stale ones from a clean folder (``experiments.runner.run_if_needed``), so resubmitting an
experiment only does what is left."""
import multiprocessing
import os
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass

import torch
from threadpoolctl import threadpool_limits
from tqdm import tqdm

from experiments.runner import run_if_needed
from trainers.core.run import current_status

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@dataclass(frozen=True)
class RunResult:
    out: str
    status: str  # "done" | "skipped" | "failed"
    seconds: float = 0.0
    error: str = ""


def task(run, root):
    """What a worker needs to execute ``run``: plain data, picklable for any launcher."""
    return run.argv(root), run.out, run.end_signal


def execute(argv, out, end_signal):
    """One run in this process; a failure is reported, not raised (its traceback is in log.txt)."""
    start = time.time()
    try:
        ran = run_if_needed(argv, out, end_signal)
    except Exception as e:
        return RunResult(out, "failed", time.time() - start, f"{type(e).__name__}: {e}".splitlines()[0])
    return RunResult(out, "done" if ran else "skipped", time.time() - start)


def execute_batch(tasks):
    """A submitit job: several runs one after the other (fewer, longer array tasks)."""
    return [execute(*t) for t in tasks]


def init_worker(threads, gpus):
    """Share the cores between the workers (torch's threads and numpy's BLAS / OpenMP pools: two
    workers each running OpenBLAS on every core slow each other's small products many-fold) and
    give each its own GPU (if any)."""
    torch.set_num_threads(threads)
    threadpool_limits(limits=threads)
    if gpus is not None and not gpus.empty():
        os.environ["CUDA_VISIBLE_DEVICES"] = str(gpus.get())


def run_local(runs, root, jobs=1, desc="runs"):
    """Execute ``runs`` here: in this process for ``jobs=1``, else in a pool of ``jobs`` processes."""
    tasks = [task(r, root) for r in runs]
    if jobs <= 1:
        return [execute(*t) for t in tqdm(tasks, desc=desc, unit="run")]
    ctx = multiprocessing.get_context("spawn")
    gpus = None
    if torch.cuda.is_available():
        gpus = ctx.Queue()
        for i in range(jobs):
            gpus.put(i % torch.cuda.device_count())
    threads = max(1, (os.cpu_count() or 1) // jobs)
    results = {}
    with ProcessPoolExecutor(jobs, mp_context=ctx, initializer=init_worker, initargs=(threads, gpus)) as pool:
        futures = {pool.submit(execute, *t): t[1] for t in tasks}
        for future in tqdm(as_completed(futures), total=len(futures), desc=desc, unit="run"):
            results[futures[future]] = future.result()
    return [results[t[1]] for t in tasks]


def submitit_executor(folder, cluster, params):
    import submitit

    executor = submitit.AutoExecutor(folder=folder, cluster=cluster)
    executor.update_parameters(**params)
    return executor


def run_submitit(runs, root, folder, cluster="slurm", params=None, runs_per_job=1, desc="runs"):
    """Submit the unfinished ``runs`` as one job array (``runs_per_job`` runs per array task)
    and wait for it; finished runs are skipped without a job."""
    results = {r.out: RunResult(r.out, "skipped") for r in runs
               if current_status(r.out, r.argv(root), r.end_signal).finished}
    todo = [task(r, root) for r in runs if r.out not in results]
    if todo:
        chunks = [todo[i:i + runs_per_job] for i in range(0, len(todo), runs_per_job)]
        executor = submitit_executor(folder, cluster, params or {})
        jobs = executor.map_array(execute_batch, chunks)
        print(f"Submitted {len(jobs)} {cluster} job(s) for {len(todo)} run(s) (job {jobs[0].job_id.split('_')[0]}); "
              f"logs in {folder}")
        for job, chunk in tqdm(list(zip(jobs, chunks)), desc=desc, unit="job"):
            try:
                batch = job.result()
            except Exception as e:  # the job itself died (time limit, node failure): its runs are redone next time
                reason = (str(e).strip().splitlines() or [type(e).__name__])[-1]
                batch = [RunResult(t[1], "failed", error=f"job {job.job_id}: {reason}") for t in chunk]
            results.update({r.out: r for r in batch})
    return [results[r.out] for r in runs]


def submitit_params(args, name):
    """submitit's parameters from the command line (SLURM partition, time, GPUs, CPUs)."""
    params = {"name": name, "timeout_min": args.time, "gpus_per_node": args.gpus_per_job,
              "cpus_per_task": args.cpus_per_job, "slurm_array_parallelism": args.array_parallelism}
    if args.partition:
        params["slurm_partition"] = args.partition
    return params
