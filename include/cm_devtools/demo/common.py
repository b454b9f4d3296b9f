"""What every part of the demo shares: the repository, where state lives, the DAG ids, the error.

Everything the demo writes lives under the (git-ignored) directories of ``Layout``;
``topology.settings.StateLayout`` moves them under another folder.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path

DAG_ID = "retail_monthly"  # listed first; the summary's indicators come from it
CATCHUP_DAG_ID = "feed_catchup"
SNAPSHOT_DAG_ID = "indicator_snapshots"
REPO_DIR = Path(__file__).resolve().parents[3]  # include/cm_devtools/demo/common.py -> repo


class DemoError(RuntimeError):
    """A demo step failed; the message is shown to the operator as is."""


@dataclass(frozen=True)
class Layout:
    """Where the demo keeps its state; everything lives under the (git-ignored) repo dirs."""

    repo: Path
    venv_bin: Path = field(default_factory=lambda: Path(sys.executable).parent)

    @property
    def airflow_home(self) -> Path:
        return self.repo / ".airflow"

    @property
    def dags(self) -> Path:
        return self.repo / "dags"

    @property
    def plugins(self) -> Path:
        return self.repo / "plugins"

    @property
    def data(self) -> Path:
        return self.repo / "data"

    @property
    def demo(self) -> Path:
        return self.data / "demo"

    @property
    def warehouse_path(self) -> Path:
        return self.data / "warehouse.db"

    @property
    def warehouse_url(self) -> str:
        return f"sqlite:///{self.warehouse_path}"

    @property
    def airflow_cfg(self) -> Path:
        return self.airflow_home / "airflow.cfg"

    @property
    def password_file(self) -> Path:
        return self.airflow_home / "simple_auth_manager_passwords.json"

    @property
    def token_file(self) -> Path:
        return self.demo / "feed_token"

    @property
    def pii_key_file(self) -> Path:
        return self.demo / "pii_key"

    @property
    def task_logs(self) -> Path:
        return self.airflow_home / "logs"

    def pid_file(self, service: str) -> Path:
        return self.demo / f"{service}.pid"

    def log_file(self, service: str) -> Path:
        return self.demo / f"{service}.log"
