"""`pip install .` gives a working `crm`: pyproject.toml declares what the backend needs.

The backend environment is installed from requirements/backend.in (runtime
needs and test tools) with the project on top without its dependencies, so a
dependency missing from pyproject.toml goes unnoticed there; these checks
catch it where `make test` runs.
"""

from __future__ import annotations

import fnmatch
import re
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

import grimp
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())


def normalised(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def declared() -> set[str]:
    return {normalised(Requirement(line).name) for line in PYPROJECT["project"]["dependencies"]}


def test_every_distribution_the_backend_imports_is_a_declared_dependency():
    graph = grimp.build_graph("crm_backend", include_external_packages=True, cache_dir=None)
    imported = {
        module
        for module in graph.modules
        if not module.startswith("crm_backend") and graph.is_module_squashed(module)
    } - set(sys.stdlib_module_names) - {"__future__"}
    distributions = packages_distributions()

    undeclared = {
        module: distributions.get(module, ["?"])
        for module in imported
        if not {normalised(name) for name in distributions.get(module, [])} & declared()
    }

    assert not undeclared, f"imported by crm_backend but not in pyproject.toml's dependencies: {undeclared}"


def test_every_declared_dependency_is_pinned_in_the_lock():
    locked = {
        normalised(line.split("==")[0])
        for line in (ROOT / "requirements" / "backend.lock").read_text().splitlines()
        if "==" in line and not line.startswith("#")
    }

    assert declared() <= locked, declared() - locked


def test_every_file_the_backend_reads_at_run_time_is_package_data():
    patterns = PYPROJECT["tool"]["setuptools"]["package-data"]["crm_backend"]
    package = ROOT / "crm_backend"
    # The console's chart sources are built into console/static/dashboard.js (make setup).
    sources = package / "console" / "frontend"
    data_files = [
        path.relative_to(package).as_posix()
        for path in package.rglob("*")
        if path.is_file()
        and path.suffix not in {".py", ".pyc"}
        and sources not in path.parents
    ]

    left_out = [name for name in data_files if not any(fnmatch.fnmatch(name, pattern) for pattern in patterns)]

    assert not left_out, f"not in pyproject.toml's package-data, so missing after `pip install .`: {left_out}"
