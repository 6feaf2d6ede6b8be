"""End-to-end helpers: ``scenebase serve`` and ``scenebase worker`` as real subprocesses on loopback.

Every process gets its own stdout/stderr files under the test's temp folder, binds 127.0.0.1 on a free port,
and is stopped by PID (SIGTERM, then SIGKILL) when the test ends. The package is run from ``src/`` through
``PYTHONPATH`` (computed from this file), so the tests work without ``pip install``.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import httpx
import pytest

from scenebase.clients.job import Job
from scenebase.clients.scene_engine_client import SceneEngineClient
from servers import free_port

REPO_ROOT = Path(__file__).resolve().parents[2]
SRC_DIR = REPO_ROOT / "src"
HOST = "127.0.0.1"
ADMIN_TOKEN = "default-admin-e2e-token"
STARTUP_TIMEOUT_S = 30.0
STOP_GRACE_S = 15.0
#: the first start's admin token: one line framed by lines of "=" (printed to stderr, after the startup log)
TOKEN_BLOCK = re.compile(r"^(=+)\nscenebase admin token \(shown once\): (\S+)\n(=+)$", re.M)


def subprocess_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """This process's environment without any ``SCENEBASE_*`` variable, plus ``extra`` and ``src`` on the path."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SCENEBASE_")}
    paths = [str(SRC_DIR), *[p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]]
    env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(paths))
    env["PYTHONUNBUFFERED"] = "1"  # keep the log complete even when a test kills the process with SIGKILL
    env.update(extra or {})
    return env


def _tail(path: Path, lines: int = 60) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError as exc:
        return f"(cannot read {path}: {exc})"
    return "\n".join(text.splitlines()[-lines:]) or "(empty)"


class ScenebaseProcess:
    """One ``scenebase serve`` or ``scenebase worker`` subprocess."""

    def __init__(self, name: str, args: list[str], env: dict[str, str], workdir: Path, port: int | None = None) -> None:
        self.name = name
        self.args = args
        self.port = port
        self.stdout_path = workdir / f"{name}.stdout"
        self.stderr_path = workdir / f"{name}.stderr"
        with self.stdout_path.open("wb") as out, self.stderr_path.open("wb") as err:
            self.proc = subprocess.Popen(
                args, cwd=workdir, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=err, start_new_session=True
            )

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def url(self) -> str:
        if self.port is None:
            raise AttributeError(f"{self.name} serves no HTTP")
        return f"http://{HOST}:{self.port}"

    def stdout(self) -> str:
        return self.stdout_path.read_text(errors="replace")

    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def log_tail(self, lines: int = 60) -> str:
        return (
            f"--- {self.name} stdout ({self.stdout_path}) ---\n{_tail(self.stdout_path, lines)}\n"
            f"--- {self.name} stderr ({self.stderr_path}) ---\n{_tail(self.stderr_path, lines)}"
        )

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self, grace_s: float = STOP_GRACE_S) -> int:
        """SIGTERM, then SIGKILL after ``grace_s``; returns the exit status (negative: killed by that signal)."""
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=grace_s)
            except subprocess.TimeoutExpired:
                self.kill()
        return int(self.proc.wait(timeout=30))

    def kill(self) -> int:
        """SIGKILL (a crash: no shutdown code runs) and reap."""
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.proc.pid, signal.SIGKILL)
        return int(self.proc.wait(timeout=30))

    def __repr__(self) -> str:
        return f"ScenebaseProcess({self.name!r}, pid={self.pid}, port={self.port})"


def wait_for(
    what: str, check: Callable[[], bool], timeout_s: float, proc: ScenebaseProcess | None = None, interval: float = 0.1
) -> None:
    """Poll ``check`` until it is true; fail with the process log when ``proc`` dies or ``timeout_s`` passes."""
    deadline = time.monotonic() + timeout_s
    while True:
        if check():
            return
        if proc is not None and not proc.alive():
            pytest.fail(f"{proc.name} exited with status {proc.proc.returncode} while waiting for {what}:\n"
                        f"{proc.log_tail()}")  # fmt: skip
        if time.monotonic() > deadline:
            tail = f":\n{proc.log_tail()}" if proc is not None else ""
            pytest.fail(f"timed out after {timeout_s:.0f} s waiting for {what}{tail}")
        time.sleep(interval)


class Launcher:
    """Starts scenebase processes for one test (or module) and stops every one of them in ``close()``."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.processes: list[ScenebaseProcess] = []
        self._count = 0

    def _name(self, kind: str) -> str:
        self._count += 1
        return f"{kind}-{self._count}"

    def serve(
        self,
        data_dir: Path,
        env: Mapping[str, str] | None = None,
        port: int | None = None,
        timeout_s: float = STARTUP_TIMEOUT_S,
    ) -> ScenebaseProcess:
        """Start ``scenebase serve`` and wait until ``GET /status`` answers 200."""
        port = port or free_port()
        args = [sys.executable, "-m", "scenebase.cli.main", "serve", "--data-dir", str(data_dir)]
        args += ["--host", HOST, "--port", str(port)]
        proc = ScenebaseProcess(self._name("serve"), args, subprocess_env(env), self.workdir, port)
        self.processes.append(proc)

        def answers() -> bool:
            try:
                return httpx.get(f"{proc.url}/status", timeout=1.0).status_code == 200
            except httpx.HTTPError:
                return False

        wait_for(f"GET {proc.url}/status", answers, timeout_s, proc)
        return proc

    def worker(
        self, data_dir: Path, env: Mapping[str, str] | None = None, timeout_s: float = STARTUP_TIMEOUT_S
    ) -> ScenebaseProcess:
        """Start ``scenebase worker`` and wait until it reports its threads on stdout."""
        args = [sys.executable, "-m", "scenebase.cli.main", "worker", "--data-dir", str(data_dir)]
        proc = ScenebaseProcess(self._name("worker"), args, subprocess_env(env), self.workdir)
        self.processes.append(proc)
        wait_for("the worker's start line", lambda: "scenebase worker:" in proc.stdout(), timeout_s, proc)
        return proc

    def close(self) -> None:
        for proc in reversed(self.processes):
            proc.stop()


def client(server: ScenebaseProcess, token: str) -> SceneEngineClient:
    """A client of ``server`` (use it in a ``with`` block so that its connections are closed)."""
    return SceneEngineClient(auth_token=token, scene_engine_url=server.url)


def wait_job(c: SceneEngineClient, job_id: str, timeout_s: float = 60.0) -> Job:
    """``Job.wait`` without a progress bar; raises ``JobError`` if the job is aborted or does not end in time."""
    return c.get_job(job_id).wait(timeout=timeout_s, show_progress=False)


def poll_job(
    c: SceneEngineClient, job_id: str, until: Callable[[Job], bool], what: str, timeout_s: float = 30.0
) -> Job:
    """Poll a job until ``until(job)`` holds (bounded)."""
    deadline = time.monotonic() + timeout_s
    while True:
        job = c.get_job(job_id)
        if until(job):
            return job
        if time.monotonic() > deadline:
            pytest.fail(f"job {job_id} never reached {what} within {timeout_s:.0f} s; last: {job!r}")
        time.sleep(0.05)


def envelope(resp: httpx.Response) -> dict[str, Any]:
    """The ``error`` member of a JSON error envelope, checked for its four keys."""
    body = resp.json()
    assert set(body) == {"error"}, body
    err = body["error"]
    assert set(err) == {"code", "message", "details", "resource"}, err
    assert isinstance(err["code"], str) and err["code"]
    assert isinstance(err["message"], str) and err["message"]
    return dict(err)
