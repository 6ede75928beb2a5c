"""A throwaway PostgreSQL server for tests: Debian's binaries, a temporary cluster on 127.0.0.1.

``make test`` runs ``scripts/ensure_postgres.sh`` first, which installs Debian's ``postgresql``
when ``initdb`` is missing and we are root. Without a usable server the tests that need one skip
with the reason, or fail when ``CI=true``.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest


@dataclass(frozen=True)
class PostgresServer:
    host: str
    port: int
    user: str

    def url(self, password: str | None = None, database: str = "postgres") -> str:
        auth = self.user + (f":{password}" if password else "")
        return f"postgresql://{auth}@{self.host}:{self.port}/{database}"


def unavailable(reason: str) -> None:
    """Skip, or fail under CI=true, where a missing server must not pass silently."""
    reason = f"PostgreSQL test server unavailable: {reason}"
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason} (CI=true, so this is a failure, not a skip)", pytrace=False)
    pytest.skip(reason)


def find_binary(name: str) -> str | None:
    """``name`` from PATH or the newest /usr/lib/postgresql/<version>/bin (where Debian puts it)."""
    found = shutil.which(name)
    if found:
        return found
    candidates = glob.glob(f"/usr/lib/postgresql/*/bin/{name}")

    def version(path: str) -> tuple[int, ...]:
        v = Path(path).parent.parent.name
        return tuple(int(p) for p in v.split(".") if p.isdigit())

    return max(candidates, key=version) if candidates else None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _as_owner(cmd: list[str], owner: str | None) -> list[str]:
    """Postgres refuses to run as root: run ``cmd`` as ``owner`` (runuser, else su) when we are root."""
    if owner is None:
        return cmd
    runuser = shutil.which("runuser")
    if runuser:
        return [runuser, "-u", owner, "--", *cmd]
    import shlex

    return ["su", owner, "-s", "/bin/sh", "-c", shlex.join(cmd)]


def _tail(path: Path, n: int = 3) -> str:
    try:
        return " | ".join(path.read_text(errors="replace").strip().splitlines()[-n:])
    except OSError:
        return ""


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    initdb, pg_ctl = find_binary("initdb"), find_binary("pg_ctl")
    if not initdb or not pg_ctl:
        unavailable("initdb/pg_ctl not found on PATH or under /usr/lib/postgresql/*/bin; install Debian's "
                    "postgresql (scripts/ensure_postgres.sh does it as root; `make test` runs it)")
    owner = None
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            unavailable("running as root and there is no `postgres` OS user to run the server as "
                        "(Debian's postgresql package creates it)")
        owner = "postgres"
    root = Path(tempfile.mkdtemp(prefix="churn-pg-"))
    data, log = root / "data", root / "server.log"
    try:
        if owner:
            shutil.chown(root, user=owner, group=None)
            os.chmod(root, 0o700)
        init = subprocess.run(_as_owner([initdb, "-D", str(data), "-A", "trust", "-U", "postgres", "-E", "UTF8",
                                         "--no-locale", "--no-sync"], owner),
                              capture_output=True, text=True, timeout=120)
        if init.returncode != 0:
            unavailable(f"initdb failed: {(init.stderr or init.stdout).strip().splitlines()[-1:]}")
        port = None
        for _ in range(3):  # a free port can be taken between the probe and the start
            candidate = _free_port()
            options = (f"-c listen_addresses=127.0.0.1 -p {candidate} -k {root} -c fsync=off "
                       "-c synchronous_commit=off -c full_page_writes=off -c max_connections=30")
            start = subprocess.run(_as_owner([pg_ctl, "-D", str(data), "-l", str(log), "-o", options, "-w", "-t", "60",
                                              "start"], owner), capture_output=True, text=True, timeout=90)
            if start.returncode == 0:
                port = candidate
                break
        if port is None:
            unavailable(f"the server did not start: {_tail(log)}")
        try:
            yield PostgresServer("127.0.0.1", port, "postgres")
        finally:
            subprocess.run(_as_owner([pg_ctl, "-D", str(data), "-m", "immediate", "-w", "stop"], owner),
                           capture_output=True, timeout=60)
    finally:
        shutil.rmtree(root, ignore_errors=True)
