"""The container images (deploy/images/, `make images`) agree with deploy/k8s/.

Static checks, no Docker engine needed: every image a manifest names is one
`make images` builds; every command a manifest runs exists in that image at
the path it uses (executables on the image's PATH from the locked
requirements, modules, files and models under the working directory); the
images install the Makefile's requirement and lock files; the ports they
expose are the manifests' and docs/architecture.md's. Building and running the
images needs an engine (docs/operations.md "Images").
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import tomllib
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import click
import pytest
import yaml

from crm_backend import create_app

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"
MAKEFILE = (ROOT / "Makefile").read_text()

# docs/architecture.md "Ports and settings": CRM_PORT, RASA_PORT and ACTIONS_PORT defaults;
# and its Python versions of the two environments.
DOCUMENTED_PORTS = {"helpdesk-crm": {8000}, "helpdesk-bot": {5005, 5055}}
DOCUMENTED_PYTHON = {"helpdesk-crm": "3.11", "helpdesk-bot": "3.10"}

# Executables the manifests may run, and the distribution whose console
# script it is ("." is this repository's pyproject.toml). A manifest running
# anything else fails here until the image is shown to provide it.
CONSOLE_SCRIPTS = {"crm": ".", "gunicorn": "gunicorn", "rasa": "rasa"}


# ---------------------------------------------------------------- Dockerfiles


@dataclass
class Copy:
    sources: list[str]
    dest: str  # absolute in the image
    from_stage: str | None


@dataclass
class Stage:
    base: str
    name: str | None
    workdir: str = "/"
    env: dict[str, str] = field(default_factory=dict)
    copies: list[Copy] = field(default_factory=list)
    runs: list[tuple[str, str]] = field(default_factory=list)  # (workdir, command)
    expose: set[int] = field(default_factory=set)
    user: str | None = None
    cmd: list[str] | None = None


def _instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs: continuation lines joined, comments dropped."""
    instructions, pending = [], ""
    for line in path.read_text().splitlines():
        if line.lstrip().startswith("#") or not line.strip():
            continue
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        keyword, _, arguments = (pending + line).strip().partition(" ")
        instructions.append((keyword.upper(), arguments.strip()))
        pending = ""
    return instructions


def _substitute(text: str, values: dict[str, str]) -> str:
    return re.sub(r"\$\{(\w+)\}|\$(\w+)", lambda m: values.get(m.group(1) or m.group(2), m.group(0)), text)


def parse_dockerfile(path: Path) -> list[Stage]:
    args: dict[str, str] = {}
    stages: list[Stage] = []
    for keyword, arguments in _instructions(path):
        if keyword == "ARG":
            name, _, default = arguments.partition("=")
            args.setdefault(name, default)
        elif keyword == "FROM":
            words = _substitute(arguments, args).split()
            stages.append(Stage(base=words[0], name=words[2] if len(words) > 2 and words[1].upper() == "AS" else None))
        elif not stages:
            raise AssertionError(f"{path}: {keyword} before FROM")
        elif keyword == "WORKDIR":
            stages[-1].workdir = str(PurePosixPath(stages[-1].workdir, arguments))
        elif keyword == "ENV":
            for assignment in shlex.split(arguments):
                name, _, value = assignment.partition("=")
                stages[-1].env[name] = value
        elif keyword == "COPY":
            words = arguments.split()
            flags = dict(word[2:].split("=", 1) for word in words if word.startswith("--"))
            paths = [word for word in words if not word.startswith("--")]
            dest = paths[-1]
            absolute = str(PurePosixPath(stages[-1].workdir, dest)) + ("/" if dest.endswith("/") else "")
            stages[-1].copies.append(Copy(paths[:-1], absolute, flags.get("from")))
        elif keyword == "RUN":
            stages[-1].runs.append((stages[-1].workdir, arguments))
        elif keyword == "EXPOSE":
            stages[-1].expose |= {int(port.split("/")[0]) for port in arguments.split()}
        elif keyword == "USER":
            stages[-1].user = arguments
        elif keyword == "CMD":
            stages[-1].cmd = json.loads(arguments)
    return stages


def image_to_repo(stage: Stage, image_path: str) -> Path | None:
    """The repository file that the stage's COPY instructions put at image_path, if any."""
    target = PurePosixPath(image_path)
    found = None
    for copy in stage.copies:
        if copy.from_stage:
            continue
        for source in copy.sources:
            source_path = ROOT / source
            if source_path.is_dir():
                base = PurePosixPath(copy.dest)
                if target == base or base in target.parents:
                    found = source_path / target.relative_to(base)
            else:
                landed = PurePosixPath(copy.dest, Path(source).name) if copy.dest.endswith("/") else PurePosixPath(copy.dest)
                if landed == target:
                    found = source_path
    return found


# ------------------------------------------------------------ make images


def makefile_images() -> dict[str, Path]:
    """Image name -> Dockerfile, from the recipe of the Makefile's `images` target."""
    recipe = re.search(r"^images:.*\n((?:\t.*\n)+)", MAKEFILE, re.M)
    assert recipe, "the Makefile has no `images` target"
    built = {}
    for line in recipe.group(1).splitlines():
        match = re.search(r"docker build .*-f (\S+) .*-t \$\(IMAGE_PREFIX\)([\w.-]+):\$\(IMAGE_TAG\) \.$", line)
        if match:
            built[match.group(2)] = ROOT / match.group(1)
    assert built, "`make images` runs no `docker build -f ... -t $(IMAGE_PREFIX)NAME:$(IMAGE_TAG) .`"
    return built


def final_stage(image: str) -> Stage:
    return parse_dockerfile(makefile_images()[image])[-1]


# ----------------------------------------------------------------- manifests


def _documents() -> list[dict]:
    documents = []
    for path in sorted(K8S.glob("*.yaml")):
        if path.name != "kustomization.yaml":
            documents += [doc for doc in yaml.safe_load_all(path.read_text()) if doc]
    return documents


def manifest_containers() -> list[tuple[str, dict, dict]]:
    """(kind/name, container, pod spec) of every pod template in deploy/k8s/."""
    found = []
    for doc in _documents():
        pod = doc.get("spec", {}).get("template", {}).get("spec")
        if pod:
            for container in pod.get("initContainers", []) + pod["containers"]:
                found.append((f"{doc['kind']}/{doc['metadata']['name']}", container, pod))
    assert found
    return found


def _settings_from_config_and_secret() -> set[str]:
    """Keys of the ConfigMap and of the Secret (secret.example.yaml shows what the real one holds)."""
    names = set()
    for doc in _documents():
        names |= set(doc.get("data", {}) or {}) | set(doc.get("stringData", {}) or {})
    return names


def _option(argv: list[str], name: str) -> str | None:
    for position, word in enumerate(argv):
        if word.startswith(name + "="):
            return word.split("=", 1)[1]
        if word == name and position + 1 < len(argv):
            return argv[position + 1]
    return None


def _container_ports(container: dict) -> set[int]:
    return {port["containerPort"] for port in container.get("ports", [])}


# ---------------------------------------------------------------------- tests


def test_every_manifest_image_is_one_make_images_builds():
    built = makefile_images()

    for where, container, _ in manifest_containers():
        assert container["image"] in built, f"{where} runs image {container['image']!r}; `make images` builds {sorted(built)}"
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    for entry in kustomization.get("images", []):
        assert entry["name"] in built
        # `make images IMAGE_PREFIX=<registry path>/` makes exactly the name kustomize substitutes.
        assert entry["newName"].rsplit("/", 1)[-1] == entry["name"], entry


def test_make_images_is_not_part_of_make_run_or_make_test():
    for target in ("run", "test", "setup", "train"):
        prerequisites = re.search(rf"^{target}:(.*)$", MAKEFILE, re.M).group(1).split()
        assert "images" not in prerequisites, target


def test_make_images_says_so_in_one_line_when_no_engine_answers():
    environment = {**os.environ, "DOCKER_HOST": "unix:///nonexistent/docker.sock"}
    environment.pop("DOCKER_CONTEXT", None)

    result = subprocess.run(["make", "--no-print-directory", "images"], cwd=ROOT, env=environment, capture_output=True, text=True, timeout=60)

    assert result.returncode != 0
    assert "docker build" not in result.stdout
    assert result.stderr.splitlines()[0].startswith("error: make images needs a running Docker engine"), result.stderr


@pytest.mark.parametrize("image", sorted(DOCUMENTED_PYTHON))
def test_image_installs_the_makefiles_locked_requirements_on_its_python(image):
    stage = final_stage(image)
    makefile_installs = set(re.findall(r"pip install --quiet -r (\S+) -c (\S+)", MAKEFILE))

    installs = [re.search(r"pip install --quiet -r (\S+) -c (\S+)", command) for _, command in stage.runs]
    installs = {match.groups() for match in installs if match}

    assert stage.base == f"python:{DOCUMENTED_PYTHON[image]}-slim"
    assert len(installs) == 1 and installs <= makefile_installs, installs
    for requirement_file in next(iter(installs)):
        assert (ROOT / requirement_file).is_file(), requirement_file
        assert image_to_repo(stage, f"{stage.workdir}/{requirement_file}") == ROOT / requirement_file


@pytest.mark.parametrize("image", sorted(DOCUMENTED_PORTS))
def test_image_exposes_the_ports_of_its_manifests_and_the_architecture(image):
    stage = final_stage(image)
    manifest_ports = set().union(*(_container_ports(c) for _, c, _ in manifest_containers() if c["image"] == image))

    assert stage.expose == manifest_ports == DOCUMENTED_PORTS[image]


@pytest.mark.parametrize("image", sorted(DOCUMENTED_PORTS))
def test_image_runs_as_the_manifests_non_root_user(image):
    user = final_stage(image).user.split(":")[0]

    assert user.isdigit() and user != "0"
    for where, container, pod in manifest_containers():
        if container["image"] == image:
            assert str(pod["securityContext"]["runAsUser"]) == user, where


def _provided_executable(stage: Stage, executable: str) -> None:
    """The executable is a console script installed into a venv on the image's PATH."""
    assert executable in CONSOLE_SCRIPTS or executable == "python", f"{executable!r}: add how the image provides it to CONSOLE_SCRIPTS"
    venv_bins = [entry for entry in stage.env.get("PATH", "").split(":") if entry.startswith(stage.workdir + "/.venv/")]
    assert venv_bins, "the image puts no environment of its own on PATH"
    venv = os.path.relpath(PurePosixPath(venv_bins[0]).parent, stage.workdir)
    if executable == "python":
        return  # the environment's own interpreter (`python -m module`)
    commands = [command for _, command in stage.runs if f"{venv}/bin/python -m pip install" in command]
    distribution = CONSOLE_SCRIPTS[executable]
    if distribution == ".":
        assert any("--no-deps -e ." in command for command in commands)
        assert executable in tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
        return
    requirement_in, lock = re.search(r"-r (\S+) -c (\S+)", " ".join(commands)).groups()
    assert re.search(rf"^{re.escape(distribution)}\b", (ROOT / requirement_in).read_text(), re.M | re.I), requirement_in
    assert re.search(rf"^{re.escape(distribution)}==", (ROOT / lock).read_text(), re.M | re.I), lock


def _copied_file(stage: Stage, relative: str) -> Path:
    """The repository file copied to WORKDIR/relative; fails when none is."""
    source = image_to_repo(stage, f"{stage.workdir}/{relative}")
    assert source is not None and source.is_file(), f"no file of the repository is copied to {stage.workdir}/{relative}"
    return source


def _check_module(stage: Stage, module: str, attribute: str) -> None:
    source = _copied_file(stage, module.replace(".", "/") + ".py")
    assert re.search(rf"^(def|class) {attribute}\b", source.read_text(), re.M), f"{module} has no {attribute}"


def _check_rasa_yml(stage: Stage, relative: str) -> None:
    """The file is in the image, and every class it names (`type: bot.x.Y`, `bot.x.Y:`) is too."""
    content = yaml.safe_load(_copied_file(stage, relative).read_text()) or {}
    for key, value in content.items():
        names = [key] + ([value["type"]] if isinstance(value, dict) and "type" in value else [])
        for name in names:
            if "." in name:
                module, _, attribute = name.rpartition(".")
                _check_module(stage, module, attribute)


def _check_trained_model(stage: Stage, relative: str, script: str, model_line: str) -> None:
    """A RUN trains the model with the Makefile's script, which writes it where the manifest looks."""
    assert any(script in command for _, command in stage.runs), f"no RUN trains {relative} with {script}"
    assert f"@{script}" in MAKEFILE, f"`make train` no longer runs {script}"
    assert model_line in _copied_file(stage, script).read_text()


def _check_crm_command(argv: list[str]) -> None:
    app = create_app({"TESTING": True, "DATABASE_URL": "sqlite://"})
    command, words = app.cli, list(argv)
    while isinstance(command, click.Group):
        name = words.pop(0)
        command = command.get_command(click.Context(command), name)
        assert command is not None, f"`crm` has no command {' '.join(argv)}"
    command.make_context(argv[-1], words)  # unknown options or missing arguments raise


def test_every_manifest_command_exists_in_its_image():
    settings = _settings_from_config_and_secret()

    for where, container, _ in manifest_containers():
        stage = final_stage(container["image"])
        argv = container.get("command", []) + container.get("args", [])
        assert argv, f"{where} relies on the image's default command"
        for reference in re.findall(r"\$\((\w+)\)", " ".join(argv)):
            defined = {env["name"] for env in container.get("env", [])} | settings
            assert reference in defined, f"{where}: $({reference}) is set nowhere (Kubernetes would pass it literally)"
        _provided_executable(stage, argv[0])
        ports = _container_ports(container)

        if argv[0] == "crm":
            _copied_file(stage, "crm_backend/cli.py")
            _check_crm_command(argv[1:])
        elif argv[0] == "gunicorn":
            module, _, factory = next(word for word in argv[1:] if not word.startswith("-")).partition(":")
            _check_module(stage, module, factory.removesuffix("()"))
            assert {int(_option(argv, "--bind").rsplit(":", 1)[1])} == ports, where
            _check_trained_model(stage, "models/needs.skops", "scripts/train_needs_if_changed.sh", "model=${NEED_MODEL_PATH:-models/needs.skops}")
            for bundle in ("WIDGET_BUNDLE", "DASHBOARD_BUNDLE"):
                path = re.search(rf"^{bundle} := (\S+)$", MAKEFILE, re.M).group(1)
                assert any(copy.from_stage and copy.dest == f"{stage.workdir}/{path}" for copy in stage.copies), path
        elif argv[:3] == ["rasa", "run", "actions"]:
            package = _option(argv, "--actions")
            _copied_file(stage, f"{package}/__init__.py")
            assert {int(_option(argv, "--port"))} == ports, where
        elif argv[:3] == ["python", "-m", "actions.server"]:
            _copied_file(stage, "actions/server.py")
            assert {int(_option(argv, "--port"))} == ports, where
        elif argv[:2] == ["rasa", "run"]:
            model = _option(argv, "--model")
            assert model == "models/helpdesk.tar.gz", model
            _check_trained_model(stage, model, "scripts/train_if_changed.sh", f"model={model}")
            _check_rasa_yml(stage, _option(argv, "--endpoints"))
            _check_rasa_yml(stage, _option(argv, "--credentials"))
            assert {int(_option(argv, "--port"))} == ports, where
        else:
            pytest.fail(f"{where} runs {argv[:2]}, which this test does not know how to check")


@pytest.mark.parametrize("image, workload", [("helpdesk-crm", "Deployment/crm"), ("helpdesk-bot", "Deployment/rasa")])
def test_image_default_command_is_what_its_main_manifest_runs(image, workload):
    cmd = final_stage(image).cmd
    assert cmd[:2] == ["sh", "-c"] and cmd[2].startswith("exec "), cmd
    # The shell's ${NAME:-default} / ${NAME:?message} is Kubernetes' $(NAME).
    default_argv = shlex.split(re.sub(r"\$\{(\w+):[-?][^}]*\}", r"$(\1)", cmd[2].removeprefix("exec ")))

    container = next(c for where, c, _ in manifest_containers() if where == workload)

    assert default_argv == container["command"]


# ------------------------------------------------------------- build context


def _ignore_patterns() -> list[tuple[bool, re.Pattern]]:
    patterns = []
    for line in (ROOT / ".dockerignore").read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        negated = line.startswith("!")
        glob = line.lstrip("!").strip("/")
        regex = re.escape(glob).replace(r"\*\*/", "(?:.*/)?").replace(r"\*\*", ".*").replace(r"\*", "[^/]*").replace(r"\?", "[^/]")
        patterns.append((negated, re.compile(regex + "$")))
    return patterns


def ignored_by_dockerignore(relative: str) -> bool:
    """Docker's rule: the last pattern matching the path or one of its parent directories wins."""
    parts = PurePosixPath(relative).parts
    candidates = ["/".join(parts[: n + 1]) for n in range(len(parts))]
    ignored = False
    for negated, pattern in _ignore_patterns():
        if any(pattern.match(candidate) for candidate in candidates):
            ignored = not negated
    return ignored


@pytest.mark.parametrize(
    "relative",
    [".venv/bot/bin/python", "widget/node_modules/esbuild/package.json", "crm_backend/console/frontend/node_modules/x.js",
     "var/crm.db", "var/scaled/rasa_token", "models/helpdesk.tar.gz", "models/needs.skops", ".rasa/cache/x",
     "crm_backend/__pycache__/db.cpython-311.pyc", ".git/HEAD", "crm_backend/pages/static/widget.js", "secrets.env"],
)
def test_dockerignore_keeps_environments_state_models_and_secrets_out_of_the_context(relative):
    assert ignored_by_dockerignore(relative)


@pytest.mark.parametrize("image", sorted(DOCUMENTED_PORTS))
def test_everything_a_dockerfile_copies_is_in_the_build_context(image):
    stages = parse_dockerfile(makefile_images()[image])
    names = {stage.name for stage in stages}

    for stage in stages:
        for copy in stage.copies:
            if copy.from_stage:
                assert copy.from_stage in names, copy
                producer = next(s for s in stages if s.name == copy.from_stage)
                outputs = {
                    os.path.normpath(PurePosixPath(workdir, out))
                    for workdir, command in producer.runs
                    for out in re.findall(r"node build\.mjs --out (\S+)", command)
                }
                assert set(copy.sources) <= outputs, (copy.sources, outputs)
                continue
            for source in copy.sources:
                assert (ROOT / source).exists(), f"{image}: COPY {source}: no such path in the repository"
                assert not ignored_by_dockerignore(source.rstrip("/")), f"{image}: COPY {source} is excluded by .dockerignore"
