"""``scenebase`` command line."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from scenebase import __version__


def _settings(args: argparse.Namespace) -> Any:
    from scenebase.settings import Settings

    overrides = {
        k: v
        for k, v in {
            "data_dir": args.data_dir,
            "host": getattr(args, "host", None),
            "port": getattr(args, "port", None),
            "processes": getattr(args, "processes", None),
            "catalog_url": args.catalog_url,
            "blob_url": getattr(args, "blob_url", None),
            "queue_url": getattr(args, "queue_url", None),
            "workers": getattr(args, "workers", None),
            "log_level": getattr(args, "log_level", None),
        }.items()
        if v is not None
    }
    return Settings(**overrides)


def settings_environment(settings: Any) -> dict[str, str]:
    """``SCENEBASE_*`` variables that reproduce ``settings`` in a child process."""
    out = {}
    for name, value in settings.model_dump().items():
        if value is not None:
            out[f"SCENEBASE_{name.upper()}"] = str(value)
    return out


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data-dir", type=Path, help="data folder (SCENEBASE_DATA_DIR)")
    p.add_argument("--catalog-url", help="sqlite:///PATH or postgresql://... (SCENEBASE_CATALOG_URL)")
    p.add_argument("--blob-url", help="file:///PATH or s3://BUCKET?endpoint=URL (SCENEBASE_BLOB_URL)")
    p.add_argument("--queue-url", help="sqlite:///PATH or redis://HOST:PORT/DB (SCENEBASE_QUEUE_URL)")
    p.add_argument("--workers", type=int, help="job worker threads (SCENEBASE_WORKERS)")
    p.add_argument("--log-level", help="debug, info, warning, error (SCENEBASE_LOG_LEVEL)")


def _configure_logging(level: str) -> None:
    from scenebase.api.log_redaction import redact_root_handlers

    logging.basicConfig(
        level=getattr(logging, level.upper(), logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    redact_root_handlers()


def admin_token_block(token: str, settings: Any) -> str:
    """The first start's admin token, framed on its own so that no log line runs into it."""
    rule = "=" * 78
    where = "--catalog-url URL" if settings.catalog_url else f"--data-dir {settings.data_dir.resolve()}"
    return (
        f"\n{rule}\nscenebase admin token (shown once): {token}\n{rule}\n"
        "Superadmin 'admin' of organization 'default' was created; the catalog keeps only the token's hash.\n"
        f"Lost it? On this machine: scenebase admin create-token --username admin {where}\n\n"
    )


def _announce(token: str | None, settings: Any, serving: Callable[[], bool], stop: threading.Event) -> None:
    """Print a generated admin token (the catalog keeps only its hash) once ``serving()`` says the server has
    started, so that the block comes after the startup log lines, not among them."""
    if not token:
        return

    def wait_and_print() -> None:
        while not stop.wait(0.05):
            if serving():
                sys.stderr.write(admin_token_block(token, settings))
                sys.stderr.flush()
                return

    threading.Thread(target=wait_and_print, name="admin-token", daemon=True).start()


def _answers_status(settings: Any) -> Callable[[], bool]:
    """For several processes, whose startup this process cannot see: true once one of them answers /status."""
    host = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(settings.host, settings.host)
    url = f"http://{f'[{host}]' if ':' in host else host}:{settings.port}/status"

    def check() -> bool:
        try:
            with urllib.request.urlopen(url, timeout=1.0) as resp:
                return bool(resp.status == 200)
        except OSError:
            return False

    return check


def serve(args: argparse.Namespace) -> int:
    import uvicorn

    from scenebase.api.app import create_app
    from scenebase.api.log_redaction import uvicorn_log_config
    from scenebase.runtime import Runtime

    settings = _settings(args)
    _configure_logging(settings.log_level)
    runtime = Runtime(settings)
    processes = max(1, settings.processes)
    # migrate and bootstrap here, once, even when worker processes serve the requests
    token = runtime.start(workers=None if processes == 1 else 0, reaper=processes == 1)
    where = f"http://{settings.host}:{settings.port}"
    print(f"scenebase {__version__} serving on {where} with {processes} process(es) (data: {settings.data_dir})")
    # uvicorn shuts down gracefully on SIGTERM, then restores this handler and re-raises the signal: with the
    # default handler the process would die there, before runtime.stop() lets in-flight jobs finish.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    common: dict[str, Any] = {
        "host": settings.host,
        "port": settings.port,
        "log_level": settings.log_level.lower(),
        "log_config": uvicorn_log_config(),
    }
    stop_announcing = threading.Event()
    try:
        if processes == 1:
            server = uvicorn.Server(uvicorn.Config(create_app(runtime, freeze_heap=True), **common))
            _announce(token, settings, lambda: bool(server.started), stop_announcing)
            server.run()
            if not server.started:
                return 3  # uvicorn's startup failure (e.g. the port is taken); it logged why
        else:
            # each process builds its own runtime (workers, reaper) from the same settings, passed by environment
            runtime.stop()
            os.environ.update(settings_environment(settings))
            _announce(token, settings, _answers_status(settings), stop_announcing)
            uvicorn.run("scenebase.api.app:app_from_environment", factory=True, workers=processes, **common)
    finally:
        stop_announcing.set()
        runtime.stop()
    return 0


def worker(args: argparse.Namespace) -> int:
    from scenebase.runtime import Runtime

    settings = _settings(args)
    _configure_logging(settings.log_level)
    runtime = Runtime(settings)
    runtime.start(workers=max(1, settings.workers))
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    print(f"scenebase worker: {max(1, settings.workers)} threads on {settings.resolved_queue_url()}", flush=True)
    stop.wait()
    # runtime.stop() logs the jobs it waits for, and interrupts (re-queues) those still running after the grace
    print(f"scenebase worker: stopping (grace {settings.job_stop_grace_seconds:.0f} s for running jobs)", flush=True)
    runtime.stop()
    return 0


def docs(args: argparse.Namespace) -> int:
    """Print a generated documentation fragment (used to keep the README honest)."""
    from scenebase.clients.method_status import status_table
    from scenebase.domain.roles import matrix_markdown
    from scenebase.settings import config_table

    print({"config": config_table, "methods": status_table, "permissions": matrix_markdown}[args.what](), end="")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="scenebase", description="scenebase: perception data platform")
    parser.add_argument("--version", action="version", version=f"scenebase {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    p_serve = sub.add_parser("serve", help="start the API server (and in-process job workers)")
    _common(p_serve)
    p_serve.add_argument("--host", help="bind address (SCENEBASE_HOST)")
    p_serve.add_argument("--port", type=int, help="port (SCENEBASE_PORT)")
    p_serve.add_argument("--processes", type=int, help="server processes sharing the port (SCENEBASE_PROCESSES)")
    p_serve.set_defaults(func=serve)

    p_worker = sub.add_parser("worker", help="run job workers only (for the networked queue)")
    _common(p_worker)
    p_worker.set_defaults(func=worker)

    p_docs = sub.add_parser("docs", help="print a generated docs table")
    p_docs.add_argument("what", choices=["config", "methods", "permissions"])
    p_docs.set_defaults(func=docs)

    from scenebase.cli.admin import add_admin_parser

    add_admin_parser(sub)

    args = parser.parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
