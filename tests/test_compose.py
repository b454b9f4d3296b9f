"""docker-compose.yaml and the Dockerfile, checked without a Docker engine.

The compose file is validated against the Compose Specification's JSON schema (vendored in
tests/data/, see its README), and everything it names must exist: bind-mounted paths and the
build context in the repository, Airflow and ``cm`` commands in their command-line parsers,
Airflow configuration options in Airflow's configuration, the Celery config object.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from cm_devtools.cli import build_parser as build_dev_parser
from consumption_monitor.cli import build_parser

REPO = Path(__file__).resolve().parent.parent
COMPOSE = REPO / "docker-compose.yaml"
SCHEMA = Path(__file__).resolve().parent / "data" / "compose-spec.json"
PROJ_DIR = "${AIRFLOW_PROJ_DIR:-.}/"
AIRFLOW_IMAGE_SERVICES = {
    "airflow-apiserver",
    "airflow-scheduler",
    "airflow-dag-processor",
    "airflow-worker",
    "airflow-triggerer",
    "airflow-init",
}
PROJECT_MOUNTS = {"dags", "plugins", "include", "sql", "expectations"}


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))  # resolves anchors and <<


def _validator() -> jsonschema.protocols.Validator:
    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema)


def test_compose_file_follows_the_compose_specification(compose: dict[str, Any]) -> None:
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in _validator().iter_errors(compose)]
    assert errors == []


@pytest.mark.parametrize(
    "breakage",
    [
        lambda c: c["services"]["airflow-worker"].update(commandd="celery worker"),
        lambda c: c["services"]["postgres"].update(healthcheck={"interval": 10}),
        lambda c: c["services"]["redis"].update(ports="6379"),
    ],
    ids=["unknown-key", "wrong-type", "ports-not-a-list"],
)
def test_schema_check_catches_a_broken_file(compose: dict[str, Any], breakage) -> None:
    broken = json.loads(json.dumps(compose))
    breakage(broken)
    assert list(_validator().iter_errors(broken))


def test_topology_has_every_component(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert AIRFLOW_IMAGE_SERVICES | {"postgres", "redis", "feed-server"} <= set(services)
    worker = services["airflow-worker"]
    assert "container_name" not in worker and "ports" not in worker, "workers must scale"
    env = worker["environment"]
    assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
    assert env["AIRFLOW__CELERY__BROKER_URL"].startswith("redis://")
    metadata_db = env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].rsplit("/", 1)[1]
    warehouse_db = env["AIRFLOW_CONN_CM_WAREHOUSE"].rsplit("/", 1)[1]
    assert metadata_db != warehouse_db, "metadata and warehouse are separate databases"
    init = " ".join(services["airflow-init"]["command"])
    assert "airflow db migrate" in init and "consumption_monitor migrate" in init


def _bind_sources(service: dict[str, Any]) -> list[str]:
    out = []
    for volume in service.get("volumes", []):
        if not isinstance(volume, str):
            volume = volume.get("source", "")
        for prefix in (PROJ_DIR, "./"):
            if volume.startswith(prefix):  # the prefix has a ':' of its own
                out.append(volume.removeprefix(prefix).split(":", 1)[0])
    return out


def test_every_mounted_path_and_the_build_exist(compose: dict[str, Any]) -> None:
    mounted: set[str] = set()
    for name, service in compose["services"].items():
        for source in _bind_sources(service):
            assert (REPO / source).exists(), f"{name} mounts missing {source}"
            mounted.add(source)
        build = service.get("build")
        if build:
            assert (REPO / build["context"] / build["dockerfile"]).is_file()
    assert mounted >= PROJECT_MOUNTS
    init_script = REPO / "deploy/postgres/init-warehouse.sh"
    assert os.access(init_script, os.X_OK), "the postgres entrypoint runs *.sh only if executable"


def test_dockerfile_copies_existing_paths() -> None:
    text = (REPO / "Dockerfile").read_text(encoding="utf-8")
    sources = [
        part
        for line in text.splitlines()
        if line.startswith("COPY ")
        for part in shlex.split(line)[1:-1]
        if not part.startswith("--")
    ]
    assert sources
    for source in sources:
        assert (REPO / source).exists(), source
    # the image ships the runtime package only; the dev tools (sample feed server) come with
    # the include/ mount of docker-compose.yaml
    copied = {s.strip("/") for s in sources}
    assert PROJECT_MOUNTS - {"include"} <= copied and "include/consumption_monitor" in copied
    assert not any(s.startswith("include/cm_devtools") for s in copied)
    pinned = re.search(r"ARG AIRFLOW_VERSION=(\S+)", text)
    requirements = (REPO / "requirements.txt").read_text(encoding="utf-8")
    assert pinned and f"apache-airflow=={pinned.group(1)}\n" in requirements


def _commands(
    compose: dict[str, Any],
) -> tuple[list[list[str]], list[list[str]], list[list[str]]]:
    """(Airflow CLI argvs, cm argvs, dev-tools argvs) from commands, the init script and
    health checks."""
    airflow: list[list[str]] = []
    cm: list[list[str]] = []
    dev: list[list[str]] = []
    for service in compose["services"].values():
        entry = service.get("entrypoint")
        command = service.get("command")
        lines: list[str] = []
        if isinstance(command, str):
            lines.append(command if entry else f"airflow {command}")
        elif isinstance(command, list) and entry == "python":
            lines.append(shlex.join(["python", *command]))
        elif isinstance(command, list) and command[:1] == ["-c"]:
            lines.extend(command[1].replace("\\\n", " ").splitlines())
        test = (service.get("healthcheck") or {}).get("test") or []
        lines.extend(test[1:] if test[:1] == ["CMD-SHELL"] else [])
        for line in lines:
            line = line.replace("$${HOSTNAME}", "host")
            for part in line.split("||"):
                argv = shlex.split(part.strip())
                if argv[:1] == ["airflow"]:
                    airflow.append(argv[1:])
                elif argv[:3] == ["python", "-m", "consumption_monitor"]:
                    cm.append(argv[3:])
                elif argv[:3] == ["python", "-m", "cm_devtools"]:
                    dev.append(argv[3:])
    return airflow, cm, dev


_AIRFLOW_PARSE = r"""
import json, sys
from airflow.cli.cli_parser import get_parser
bad = []
for argv in json.loads(sys.argv[1]):
    try:
        get_parser().parse_args(argv)
    except SystemExit:
        bad.append(argv)
print(json.dumps(bad))
"""


@pytest.mark.airflow
def test_every_command_exists(compose: dict[str, Any], tmp_path: Path) -> None:
    airflow, cm, dev = _commands(compose)
    assert ["celery", "worker"] in airflow and ["db", "migrate"] in airflow
    assert ["migrate"] in cm and dev and dev[0][0] == "feed-server"
    for argv in cm:
        build_parser(argv).parse_args(argv)  # SystemExit on an unknown command or option
    for argv in dev:  # the sample feed server runs from the dev tools, not the runtime CLI
        build_dev_parser().parse_args(argv)
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")},
        "AIRFLOW_HOME": str(tmp_path),
        "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",  # `airflow celery` exists only then
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
    }
    out = subprocess.run(
        [sys.executable, "-c", _AIRFLOW_PARSE, json.dumps(airflow)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []


# In a subprocess: importing Airflow here would fix its home for later tests in this process.
_AIRFLOW_OPTIONS = r"""
import importlib, json, sys
from airflow.configuration import conf
known = conf.configuration_description  # core and provider options, defaults or not
missing = [
    [s, k] for s, k in json.loads(sys.argv[1]) if k not in known.get(s, {}).get("options", {})
]
module, _, attr = sys.argv[2].rpartition(".")
if not isinstance(getattr(importlib.import_module(module), attr), dict):
    missing.append(["celery_config_options", sys.argv[2]])
print(json.dumps(missing))
"""


@pytest.mark.airflow
def test_every_airflow_option_exists(compose: dict[str, Any], tmp_path: Path) -> None:
    env = compose["x-airflow-common"]["environment"]
    options = [
        [section.lower(), key.lower()]
        for name in env
        if name.startswith("AIRFLOW__") and not name.startswith("AIRFLOW__CELERY_BROKER_")
        for section, key in [name.removeprefix("AIRFLOW__").split("__", 1)]
    ]
    assert len(options) > 10
    clean = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
    out = subprocess.run(
        [
            sys.executable,
            "-c",
            _AIRFLOW_OPTIONS,
            json.dumps(options),
            env["AIRFLOW__CELERY__CELERY_CONFIG_OPTIONS"],
        ],
        capture_output=True,
        text=True,
        env={**clean, "AIRFLOW_HOME": str(tmp_path)},
        timeout=300,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []


def test_helm_values_describe_the_same_topology(compose: dict[str, Any]) -> None:
    values = yaml.safe_load((REPO / "deploy/helm/values.yaml").read_text(encoding="utf-8"))
    env = compose["x-airflow-common"]["environment"]
    requirements = (REPO / "requirements.txt").read_text(encoding="utf-8")
    assert values["executor"] == env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
    assert f"apache-airflow=={values['airflowVersion']}\n" in requirements
    assert (
        values["config"]["celery"]["celery_config_options"]
        == env["AIRFLOW__CELERY__CELERY_CONFIG_OPTIONS"]
    )
    assert {"name": "CM_CELERY_PRELOAD", "value": "1"} in values["workers"]["env"]
    secret_envs = {s["envName"] for s in values["secret"]}
    assert {"AIRFLOW_CONN_CM_WAREHOUSE", "AIRFLOW_CONN_CM_FEED"} <= secret_envs
    assert "consumption_monitor migrate" in " ".join(values["migrateDatabaseJob"]["args"])
    assert values["postgresql"]["enabled"] is False and values["dagProcessor"]["enabled"]
