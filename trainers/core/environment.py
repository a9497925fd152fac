"""What a run ran on, for the log: a short summary that heads every log.txt, and Dassl's long
"System info" report (torch's collect_env plus Pillow).

Neither may stop a run: whatever cannot be found out reads "unknown".
"""
import datetime
import functools
import os
import platform
import socket
import subprocess
from importlib import metadata

import torch

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def package_version(name):
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "not installed"


def git_commit(path=REPO):
    """``git rev-parse HEAD`` of the checkout at ``path``, marked "+dirty" when tracked files have
    uncommitted changes (as ``git describe --dirty``); "unknown" without git or a checkout."""
    def git(*args):
        return subprocess.run(["git", *args], cwd=path, capture_output=True, text=True, timeout=10,
                              check=True).stdout.strip()
    try:
        head = git("rev-parse", "HEAD")
        dirty = git("status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.SubprocessError):
        return "unknown (no git, or not a git checkout)"
    return head + ("+dirty" if dirty else "")


def cuda_summary():
    if not torch.cuda.is_available():
        built = f"torch built with CUDA {torch.version.cuda}" if torch.version.cuda else "CPU-only torch"
        return f"not available ({built})"
    names = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    return (f"available (CUDA {torch.version.cuda}, cuDNN {torch.backends.cudnn.version()}), "
            f"{len(names)} device(s): {', '.join(names)}")


def cpu_summary():
    total = os.cpu_count()
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else total
    return f"{total}" if usable == total else f"{total} ({usable} usable by this process)"


def environment_summary(command):
    """The lines that head log.txt: date, host, command line, code version, library versions and
    hardware (a few milliseconds; ``command`` is the command line as one string)."""
    now = datetime.datetime.now().astimezone()
    lines = [
        f"Date: {now.isoformat(sep=' ', timespec='seconds')}",
        f"Host: {socket.gethostname()}",
        f"Command: {command}",
        f"Working directory: {os.getcwd()}",
        f"Git commit: {git_commit()}",
        f"Python: {platform.python_version()} ({platform.python_implementation()}, {platform.platform()})",
        f"Packages: torch {torch.__version__}, torchvision {package_version('torchvision')}, "
        f"open_clip {package_version('open_clip_torch')}, Pillow {package_version('pillow')}",
        f"CUDA: {cuda_summary()}",
        f"CPUs: {cpu_summary()}",
    ]
    return "*****************\n** Environment **\n*****************\n" + "\n".join(lines)


@functools.lru_cache(maxsize=None)
def collect_env_info():
    """Dassl's "System info": torch's collect_env report and the Pillow version. It runs pip,
    nvidia-smi and conda as subprocesses (0.2-0.4 s on a 2-core CPU machine without conda), so a
    process collects it once: a launcher's worker running many runs writes the same report into
    each run's log without paying for it again (a third of a zero-shot run's time)."""
    from torch.utils.collect_env import get_pretty_env_info

    try:
        report = get_pretty_env_info()
    except Exception as e:  # an extra for the log, never a reason to stop the run
        report = f"unknown (torch.utils.collect_env failed: {e})"
    return f"{report}\n        Pillow ({package_version('pillow')})"
