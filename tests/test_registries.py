"""The lazy registries: a run imports only the trainer and dataset it names, an unknown name gets
"did you mean" with every registered name, and the name -> module tables agree with the modules."""
import json
import subprocess
import sys

from conftest import ROOT
from datasets.registry import DATASET_MODULES
from trainers.core.config import get_cfg_default
from trainers.core.registry import TRAINER_MODULES
from trainers.core.trainer_nodes import TRAINER_NODES


def loaded_after(code):
    """The sorted module names in ``sys.modules`` after running ``code`` in a fresh interpreter."""
    probe = f"import json, sys\n{code}\nprint(json.dumps(sorted(sys.modules)))\n"
    done = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return set(json.loads(done.stdout.splitlines()[-1]))


def modules_of(package, table):
    return {f"{package}.{module}" for module in table.values()}


def test_building_one_trainer_imports_no_other_trainer_or_dataset(tmp_path):
    argv = ["--no-train", "--seed", "1", "--trainer", "CMM", "--output-dir", str(tmp_path / "run"),
            "--dataset-config-file", "configs/datasets/simulated.yaml",
            "--config-file", "configs/trainers/CMM/sim.yaml", "DATASET.NUM_SHOTS", "1"]
    loaded = loaded_after(f"from trainers.core.run import main\nmain({argv!r}, echo=False)")
    assert "trainers.cmm" in loaded and "datasets.simulated" in loaded
    assert not (modules_of("trainers", TRAINER_MODULES) - {"trainers.cmm"}) & loaded
    assert not (modules_of("datasets", DATASET_MODULES) - {"datasets.simulated"}) & loaded


def test_importing_the_core_and_the_config_imports_no_trainer_or_dataset():
    loaded = loaded_after("import trainers.core.registry, trainers.core.config, datasets.registry\n"
                          "trainers.core.config.get_cfg_default()")
    assert not modules_of("trainers", TRAINER_MODULES) & loaded
    assert not modules_of("datasets", DATASET_MODULES) & loaded


def test_an_unknown_name_gets_did_you_mean_and_every_name_without_importing_them():
    code = ("from trainers.core.registry import TRAINER_REGISTRY\nfrom datasets.registry import DATASET_REGISTRY\n"
            "for registry, name in ((TRAINER_REGISTRY, 'CMMM'), (DATASET_REGISTRY, 'Simulatd')):\n"
            "    try:\n        registry.get(name)\n    except KeyError as e:\n        print(e.args[0])")
    probe = subprocess.run([sys.executable, "-c", code + "\nimport sys; print(sorted(m for m in sys.modules "
                            "if m.startswith(('trainers.', 'datasets.'))))"],
                           cwd=ROOT, capture_output=True, text=True, check=True).stdout.splitlines()
    assert probe[0] == f"unknown trainer 'CMMM'. Did you mean CMM? Registered: {', '.join(sorted(TRAINER_MODULES))}"
    assert probe[1].startswith("unknown dataset 'Simulatd'. Did you mean Simulated")
    assert probe[1].endswith(f"Registered: {', '.join(sorted(DATASET_MODULES))}")
    assert not (modules_of("trainers", TRAINER_MODULES) | modules_of("datasets", DATASET_MODULES)) & set(eval(probe[2]))


def test_the_tables_name_exactly_what_each_module_registers():
    """Import every module of both packages: the registered classes are the tables' names, each
    defined in the module its table names, and every trainer has its config node."""
    code = ("import importlib, pkgutil, trainers, datasets\n"
            "for package in (trainers, datasets):\n"
            "    for info in pkgutil.walk_packages(package.__path__, package.__name__ + '.'):\n"
            "        importlib.import_module(info.name)\n"
            "from trainers.core.registry import TRAINER_REGISTRY\nfrom datasets.registry import DATASET_REGISTRY\n"
            "print(json.dumps({r.kind: {n: c.__module__ for n, c in r._classes.items()} "
            "for r in (TRAINER_REGISTRY, DATASET_REGISTRY)}))")
    probe = f"import json\n{code}"
    registered = json.loads(subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True,
                                           check=True).stdout)
    assert registered["trainer"] == {name: f"trainers.{module}" for name, module in TRAINER_MODULES.items()}
    assert registered["dataset"] == {name: f"datasets.{module}" for name, module in DATASET_MODULES.items()}
    assert set(TRAINER_NODES) == set(TRAINER_MODULES)
    cfg = get_cfg_default()
    for name, nodes in TRAINER_NODES.items():
        for node in nodes:
            assert node.__name__.removesuffix("_node").replace("_", "").upper() in cfg.TRAINER, name
