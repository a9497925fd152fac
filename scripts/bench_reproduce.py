"""Benchmark of ``reproduce.sh`` on an experiment (default: the simulated one), from empty
output folders and an empty feature cache: total wall time, its split into extraction, runs
and report, and the speed-up of ``--jobs N`` over ``--jobs 1`` measured in the same call.

    python scripts/bench_reproduce.py [--experiment simulated] [--jobs 2]
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def reproduce(experiment, jobs, workdir):
    """One cold ``reproduce.sh`` run; returns (wall seconds, the phase timings it recorded)."""
    out = os.path.join(workdir, f"jobs{jobs}")
    env = dict(os.environ, FEWSHOT_CLIP_CACHE=os.path.join(workdir, f"cache{jobs}"), PYTHON=sys.executable)
    start = time.time()
    subprocess.run(["bash", os.path.join(REPO, "scripts", "reproduce.sh"), experiment, "--output", out,
                    "--jobs", str(jobs)], check=True, env=env, stdout=subprocess.DEVNULL)
    wall = time.time() - start
    with open(os.path.join(out, "report", "provenance.json")) as f:
        provenance = json.load(f)["invocations"][-1]  # this cold run's record
    return wall, provenance["seconds"], provenance["runs"]["done"]


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--experiment", default="simulated")
    parser.add_argument("--jobs", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as workdir:
        rows = {jobs: reproduce(args.experiment, jobs, workdir) for jobs in (1, args.jobs)}
    print(f"reproduce.sh {args.experiment} on {os.cpu_count()} CPU(s), cold output and cache:")
    print(f"{'jobs':>4} {'runs':>5} {'wall s':>8} {'extract s':>10} {'runs s':>8} {'report s':>9}")
    for jobs, (wall, phases, done) in rows.items():
        print(f"{jobs:>4} {done:>5} {wall:8.1f} {phases['extraction']:10.1f} {phases['runs']:8.1f} "
              f"{phases['report']:9.1f}")
    (wall1, phases1, _), (wall_n, phases_n, _) = rows[1], rows[args.jobs]
    print(f"speed-up of --jobs {args.jobs} over --jobs 1: {wall1 / wall_n:.2f}x wall, "
          f"{phases1['runs'] / phases_n['runs']:.2f}x on the runs phase")


if __name__ == "__main__":
    main()
