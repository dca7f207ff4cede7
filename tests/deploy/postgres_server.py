"""A throwaway PostgreSQL server for tests: initdb into a temp folder, loopback only, a free port.

PostgreSQL refuses to run as root, so as root every command runs as the `postgres` user
(`runuser -u postgres --`), in a folder that user owns. Nothing listens beyond 127.0.0.1.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

REQUIRE_ENV = "IMPACT_REQUIRE_POSTGRES"
SERVER_USER = "postgres"


@dataclass(frozen=True)
class Server:
    host: str
    port: int
    user: str
    data: Path


def binary(name: str) -> str | None:
    """`name` on the PATH, else in Debian's versioned folder (/usr/lib/postgresql/<v>/bin)."""
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return candidates[-1] if candidates else None


def missing_reason() -> str | None:
    """Why a server cannot be started here, or None."""
    absent = [n for n in ("initdb", "pg_ctl", "postgres") if binary(n) is None]
    if absent:
        return f"PostgreSQL binaries not found ({', '.join(absent)}); add /usr/lib/postgresql/<v>/bin to PATH"
    if os.geteuid() == 0 and shutil.which("runuser") is None:
        return "running as root without runuser: PostgreSQL refuses to run as root"
    return None


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def as_server_user(args: list[str]) -> list[str]:
    return ["runuser", "-u", SERVER_USER, "--", *args] if os.geteuid() == 0 else args


def run(args: list[str]) -> None:
    done = subprocess.run(as_server_user(args), capture_output=True, text=True, timeout=60)
    if done.returncode != 0:
        raise RuntimeError(f"{args[0]} failed ({done.returncode}): {done.stderr.strip()[-1000:]}")


def start() -> Server:
    """initdb + start on a free loopback port; trust auth is fine only because it listens on 127.0.0.1."""
    root = Path(tempfile.mkdtemp(prefix="impact-pg-"))
    data = root / "data"
    if os.geteuid() == 0:
        shutil.chown(root, user=SERVER_USER)
    run([binary("initdb"), "-D", str(data), "-A", "trust", "-U", SERVER_USER, "--no-sync", "-E", "UTF8"])
    port = free_port()
    options = f"-p {port} -k {data} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off"
    run([binary("pg_ctl"), "-D", str(data), "-o", options, "-l", str(root / "server.log"), "-w", "start"])
    return Server("127.0.0.1", port, SERVER_USER, data)


def stop(server: Server) -> None:
    try:
        run([binary("pg_ctl"), "-D", str(server.data), "-m", "fast", "-w", "stop"])
    finally:
        shutil.rmtree(server.data.parent, ignore_errors=True)
