"""The method code (``methods/``) is plain torch: importing every module of it loads neither our
trainer core and datasets nor Dassl, so our trainers and the Dassl plugin are layers over it."""
import json
import subprocess
import sys

from conftest import ROOT

SCRIPT = """
import importlib, json, pkgutil, sys
import methods
names = [f"methods.{info.name}" for info in pkgutil.iter_modules(methods.__path__)]
for name in names:
    importlib.import_module(name)
frameworks = sorted(n for n in sys.modules if n.split(".")[0] in ("trainers", "datasets", "dassl", "dassl_plugin"))
print(json.dumps({"modules": names, "frameworks": frameworks}))
"""


def test_method_modules_import_no_trainer_framework():
    proc = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.splitlines()[-1])
    assert {"methods.cmm", "methods.flex_clip", "methods.tip_adapter", "methods.clip_adapter"} <= set(result["modules"])
    assert result["frameworks"] == []
