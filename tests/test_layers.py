"""The layers of README "Layout": no module imports from a later layer, at module level or inside
a function (a registry's lookup of a name is the only way down to a trainer or dataset module)."""
import ast

from conftest import ROOT

LAYERS = [  # bottom up; a module may import from its own layer and the ones before it
    ("common",),
    ("methods",),
    ("datasets",),
    ("trainers.core",),
    ("trainers.features",),
    ("trainers",),  # the method trainers
    ("reports",),
    ("experiments",),
    ("train", "extract_features", "scripts", "dassl_plugin"),
]


def layer_of(module):
    """The index in LAYERS of a dotted module name of ours, or None (a third-party module)."""
    best = None
    for index, prefixes in enumerate(LAYERS):
        for prefix in prefixes:
            if module == prefix or module.startswith(prefix + "."):
                if best is None or len(prefix) > best[1]:
                    best = (index, len(prefix))
    return None if best is None else best[0]


def module_name(path):
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(path):
    """Every module ``path`` imports, anywhere in the file, as absolute dotted names."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            yield from ([base] if node.module else [f"{base}.{alias.name}" for alias in node.names])


def library_files():
    tops = {prefix.split(".")[0] for prefixes in LAYERS for prefix in prefixes}
    for path in sorted(ROOT.rglob("*.py")):
        rel = path.relative_to(ROOT)
        if rel.parts[0] in tops or rel.stem in tops and len(rel.parts) == 1:
            yield path


def test_no_module_imports_from_a_later_layer():
    upward = []
    for path in library_files():
        own = layer_of(module_name(path))
        for target in imported_modules(path):
            theirs = layer_of(target)
            if theirs is not None and theirs > own:
                upward.append(f"{path.relative_to(ROOT)} imports {target}")
    assert upward == []


def test_the_check_reads_function_level_and_relative_imports():
    """The walk reaches imports inside functions and resolves relative ones."""
    probe = ROOT / "trainers" / "core" / "run.py"
    found = set(imported_modules(probe))
    assert {"trainers.core.config", "trainers.core.logger", "datasets.registry"} <= found
    assert layer_of("trainers.cmm") > layer_of("trainers.features.clip_features") > layer_of("trainers.core.run")
    assert layer_of("reports.runs") > layer_of("trainers.cmm")
