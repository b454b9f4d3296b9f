"""The demo's Airflow home: ``airflow.cfg``, its secrets, the admin login, process environments.

* Airflow is configured in ``<repo>/.airflow/airflow.cfg`` (not only environment variables),
  so ``AIRFLOW_HOME=.airflow airflow ...`` by hand sees the same setup. Its secrets (fernet
  key, JWT secret, API secret) are generated once and kept: all components must share them.
* The admin password is written by us into the simple auth manager's password file and kept
  across demos, so the summary can always print the login.
* Two task slots (``[core] parallelism``) on the 2-core reference machine; the scheduler's
  LocalExecutor uses the ``forkserver`` start method with Great Expectations and the other
  heavy libraries preloaded (``[scheduler] mp_forkserver_preload``, Airflow >= 3.3), so the
  validate task takes ~3 s instead of ~14 s and the import is paid once per demo.
"""

from __future__ import annotations

import base64
import configparser
import contextlib
import io
import json
import os
import secrets
from collections.abc import Callable, Mapping
from pathlib import Path

from cm_devtools.demo.common import Layout
from cm_devtools.demo.processes import OWNER_ENV

ADMIN_USER = "admin"
SIMPLE_AUTH_MANAGER = (
    "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager"
)
# Concurrent task processes. Two cores: more parallel tasks only add contention (measured).
PARALLELISM = 2
# Imported once in the executor's fork server so task processes inherit them (see the module
# docstring). Third-party libraries and Airflow's task runtime only: preloading project code
# would make tasks run stale code after an edit until Airflow restarts.
PRELOAD_MODULES = (
    "airflow.executors.local_executor",
    "airflow.sdk.execution_time.task_runner",
    "airflow.serialization.serialized_objects",
    "great_expectations",
    "pandas",
    "sqlalchemy",
    "requests",
)


def airflow_settings(layout: Layout, *, port_ui: int) -> dict[str, dict[str, str]]:
    """The airflow.cfg options the demo owns; everything else keeps Airflow's defaults."""
    return {
        "core": {
            "dags_folder": str(layout.dags),
            "plugins_folder": str(layout.plugins),
            "load_examples": "False",
            "executor": "LocalExecutor",
            "parallelism": str(PARALLELISM),
            "auth_manager": SIMPLE_AUTH_MANAGER,
            "simple_auth_manager_users": f"{ADMIN_USER}:admin",
            "simple_auth_manager_passwords_file": str(layout.password_file),
            # Task processes reach the API server here (default assumes port 8080).
            "execution_api_server_url": f"http://127.0.0.1:{port_ui}/execution/",
        },
        "database": {
            "sql_alchemy_conn": f"sqlite:///{layout.airflow_home / 'airflow.db'}",
        },
        "api": {"host": "127.0.0.1", "port": str(port_ui), "workers": "1"},
        "scheduler": {
            "mp_start_method": "forkserver",
            "mp_forkserver_preload": ",".join(PRELOAD_MODULES),
            # A restarted demo must not wait the default 5 minutes for tasks that were
            # running when the previous scheduler was stopped.
            "task_instance_heartbeat_timeout": "60",
            "orphaned_tasks_check_interval": "30",
        },
        "dag_processor": {"parsing_processes": "1"},
    }


def _fernet_key() -> str:
    return base64.urlsafe_b64encode(os.urandom(32)).decode()


def _random_b64() -> str:
    return base64.b64encode(os.urandom(16)).decode()


SECRET_OPTIONS: dict[tuple[str, str], Callable[[], str]] = {
    ("core", "fernet_key"): _fernet_key,
    ("api_auth", "jwt_secret"): _random_b64,
    ("api", "secret_key"): _random_b64,
}


def merge_airflow_cfg(existing: str | None, settings: Mapping[str, Mapping[str, str]]) -> str:
    """airflow.cfg text with ``settings`` applied over ``existing``.

    Options we do not manage are kept (a user's own tweaks survive a demo); secrets are
    generated only when absent, because changing them invalidates tokens and encrypted values
    of components or connections created earlier.
    """
    parser = configparser.ConfigParser(interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]  # keep case
    if existing:
        parser.read_string(existing)
    for section, options in settings.items():
        if not parser.has_section(section):
            parser.add_section(section)
        for key, value in options.items():
            parser.set(section, key, value)
    for (section, key), make in SECRET_OPTIONS.items():
        if not parser.has_section(section):
            parser.add_section(section)
        if not parser.get(section, key, fallback="").strip():
            parser.set(section, key, make())
    out = io.StringIO()
    out.write("# Written by `python -m consumption_monitor demo`; demo-managed options are\n")
    out.write("# overwritten on every demo, other options and the secrets are kept.\n")
    parser.write(out)
    return out.getvalue()


def write_private(path: Path, text: str) -> None:
    """Write a file only the owner can read (tokens, passwords, Airflow secrets)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)
    os.chmod(path, 0o600)  # O_CREAT's mode does not apply to an existing file


def ensure_admin_password(path: Path) -> str:
    """The admin password, generated on first use and kept so operators can reuse it."""
    passwords: dict[str, str] = {}
    with contextlib.suppress(OSError, ValueError):
        loaded = json.loads(path.read_text(encoding="utf-8") or "{}")
        if isinstance(loaded, dict):
            passwords = {str(k): str(v) for k, v in loaded.items()}
    if not passwords.get(ADMIN_USER):
        passwords[ADMIN_USER] = secrets.token_urlsafe(12)
    write_private(path, json.dumps(passwords) + "\n")
    return passwords[ADMIN_USER]


def new_feed_token(path: Path) -> str:
    """A fresh bearer token for this demo's feed server, stored with mode 600."""
    token = secrets.token_urlsafe(24)
    write_private(path, token + "\n")
    return token


def demo_pii_key(path: Path) -> str:
    """The demo's pseudonymisation key (trade-in feed): generated once, kept with mode 600
    so pseudonyms stay the same across demo runs. Production sets CM_PII_KEY or cm_pii."""
    if path.exists() and path.read_text(encoding="utf-8").strip():
        return path.read_text(encoding="utf-8").strip()
    key = secrets.token_urlsafe(32)
    write_private(path, key + "\n")
    return key


def process_env(layout: Layout, *, port_feed: int, token: str) -> dict[str, str]:
    """Environment of every background process: Airflow config location plus the CM_* contract."""
    env = dict(os.environ)
    for key in [k for k in env if k.startswith("AIRFLOW__")]:
        del env[key]  # airflow.cfg is the single source of the demo's Airflow settings
    env.update(
        {
            "AIRFLOW_HOME": str(layout.airflow_home),
            "AIRFLOW_CONFIG": str(layout.airflow_cfg),
            "CM_WAREHOUSE_URL": layout.warehouse_url,
            "CM_FEED_BASE_URL": f"http://127.0.0.1:{port_feed}",
            "CM_FEED_TOKEN": token,
            "CM_PII_KEY": env.get("CM_PII_KEY") or demo_pii_key(layout.pii_key_file),
            "CM_DATA_DIR": str(layout.data),
            "GX_ANALYTICS_ENABLED": "false",
            "NO_COLOR": "1",
            "PYTHONUNBUFFERED": "1",
            "PATH": f"{layout.venv_bin}{os.pathsep}{env.get('PATH', '')}",
            OWNER_ENV: str(layout.demo),
        }
    )
    return env
