"""Fixtures of the pipelines' tests: run configurations on throwaway tracking stores, a real `mlflow server`
(SQLite, then PostgreSQL), and helpers shared by the test modules."""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from loopback import free_port
from pipeline_helpers import PG_BIN, config_document, start_mlflow_server, stop

from pipelines.config import RunConfig, from_dict


@pytest.fixture(scope="session")
def migrated_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An empty, fully migrated SQLite tracking store (creating one runs every MLflow migration: seconds)."""
    import mlflow

    path = tmp_path_factory.mktemp("template") / "mlflow.db"
    mlflow.MlflowClient(f"sqlite:///{path}").search_experiments()
    return path


@pytest.fixture
def workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, migrated_store: Path) -> Path:
    """A temporary working directory with a fresh copy of the migrated store at `mlflow.db`.

    MLflow's default artifact root (`./mlruns`) lands in it too.
    """
    shutil.copyfile(migrated_store, tmp_path / "mlflow.db")
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("SHIPYARD_RUN_CONFIG", raising=False)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    return tmp_path


@pytest.fixture
def make_config(workspace: Path) -> Callable[..., RunConfig]:
    """`make_config(**overrides)`: a validated RunConfig on the workspace's SQLite store."""
    def make(**overrides: Any) -> RunConfig:
        return from_dict(config_document(workspace, **overrides))
    return make


@pytest.fixture
def client_for() -> Callable[[RunConfig], Any]:
    """An MlflowClient on a configuration's tracking store."""
    def make(config: RunConfig) -> Any:
        import mlflow

        return mlflow.MlflowClient(config.tracking_uri, registry_uri=config.tracking_uri)
    return make


# ------------------------------------------------------------------------------------------- real servers

@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory: pytest.TempPathFactory, migrated_store: Path) -> Iterator[str]:
    """A real `mlflow server` on a SQLite backend (a copy of the migrated store); its URL."""
    root = tmp_path_factory.mktemp("mlflow-server")
    shutil.copyfile(migrated_store, root / "mlflow.db")
    url, process = start_mlflow_server(f"sqlite:///{root}/mlflow.db", root)
    yield url
    stop(process)


def _as_postgres(command: list[str]) -> list[str]:
    """initdb and the server refuse root: run them as `postgres` when we are root."""
    return ["runuser", "-u", "postgres", "--", *command] if os.geteuid() == 0 else command


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A throwaway PostgreSQL 15 cluster on loopback (scram auth); a SQLAlchemy URL of a fresh database."""
    if not (PG_BIN / "initdb").is_file():
        pytest.skip(f"PostgreSQL is not installed ({PG_BIN / 'initdb'} missing; apt-get install postgresql)")
    root = Path(tempfile.mkdtemp(prefix="shipyard-pg-"))
    root.chmod(0o755)  # the postgres user must reach the data directory
    data, sock = root / "pgdata", root / "pgsock"
    data.mkdir(mode=0o700)
    sock.mkdir()
    password = secrets.token_urlsafe(18)
    pwfile = root / "pwfile"
    pwfile.write_text(password + "\n")
    pwfile.chmod(0o600)
    if os.geteuid() == 0:
        for path in (data, sock, pwfile):
            shutil.chown(path, "postgres", "postgres")
    port = free_port()
    subprocess.run(_as_postgres([str(PG_BIN / "initdb"), "-D", str(data), "-U", "postgres",
                                 "--auth=scram-sha-256", f"--pwfile={pwfile}", "-E", "UTF8", "--locale=C.UTF-8"]),
                   check=True, capture_output=True)
    subprocess.run(_as_postgres([str(PG_BIN / "pg_ctl"), "-D", str(data), "-l", str(sock / "pg.log"), "-w",
                                 "-o", f"-c listen_addresses=127.0.0.1 -p {port} -k {sock}", "start"]),
                   check=True, capture_output=True)
    try:
        import psycopg2

        connection = psycopg2.connect(host="127.0.0.1", port=port, user="postgres", password=password,
                                      dbname="postgres")
        connection.autocommit = True
        with connection.cursor() as cursor:
            cursor.execute("CREATE DATABASE mlflow")
        connection.close()
        yield f"postgresql+psycopg2://postgres:{password}@127.0.0.1:{port}/mlflow"
    finally:
        subprocess.run(_as_postgres([str(PG_BIN / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"]),
                       capture_output=True)
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def mlflow_server_postgres(postgres_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real `mlflow server` on the PostgreSQL cluster; its URL."""
    root = tmp_path_factory.mktemp("mlflow-server-pg")
    url, process = start_mlflow_server(postgres_url, root)
    yield url
    stop(process)
