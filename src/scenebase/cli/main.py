"""``scenebase`` command line."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
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
            "blob_url": args.blob_url,
            "queue_url": args.queue_url,
            "workers": args.workers,
            "log_level": args.log_level,
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
    logging.basicConfig(
        level=getattr(logging, level.upper(), logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


def serve(args: argparse.Namespace) -> int:
    import uvicorn

    from scenebase.api.app import create_app
    from scenebase.runtime import Runtime

    settings = _settings(args)
    _configure_logging(settings.log_level)
    runtime = Runtime(settings)
    processes = max(1, settings.processes)
    # migrate and bootstrap here, once, even when worker processes serve the requests
    token = runtime.start(workers=None if processes == 1 else 0, reaper=processes == 1)
    if token:
        # printed once: the catalog keeps only its hash
        print(f"scenebase: created superadmin 'admin' in organization 'default'; token: {token}", flush=True)
    where = f"http://{settings.host}:{settings.port}"
    print(f"scenebase {__version__} serving on {where} with {processes} process(es) (data: {settings.data_dir})")
    # uvicorn shuts down gracefully on SIGTERM, then restores this handler and re-raises the signal: with the
    # default handler the process would die there, before runtime.stop() lets in-flight jobs finish.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    log_level = settings.log_level.lower()
    try:
        if processes == 1:
            uvicorn.run(create_app(runtime), host=settings.host, port=settings.port, log_level=log_level)
        else:
            # each process builds its own runtime (workers, reaper) from the same settings, passed by environment
            runtime.stop()
            os.environ.update(settings_environment(settings))
            uvicorn.run(
                "scenebase.api.app:app_from_environment", factory=True, workers=processes,
                host=settings.host, port=settings.port, log_level=log_level,
            )  # fmt: skip
    finally:
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

    args = parser.parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
