"""Server settings: one object, read from ``SCENEBASE_*`` environment variables; CLI flags override.

The README's configuration table is generated from this class (``scenebase config-table``) and a test
fails when they disagree.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SCENEBASE_", extra="ignore")

    data_dir: Path = Field(
        default=Path("./scenebase-data"),
        description="Folder for the embedded catalog, blobs and queue (created if missing).",
    )
    host: str = Field(default="127.0.0.1", description="Address `scenebase serve` binds.")
    port: int = Field(default=8080, description="Port `scenebase serve` binds.")
    catalog_url: str | None = Field(
        default=None,
        description="`sqlite:///PATH` or `postgresql://...`; default: SQLite file `catalog.db` in the data dir.",
    )
    blob_url: str | None = Field(
        default=None,
        description="`file:///PATH` or `s3://BUCKET?endpoint=URL&region=R` (keys from `AWS_ACCESS_KEY_ID`/"
        "`AWS_SECRET_ACCESS_KEY`); default: folder `blobs` in the data dir.",
    )
    queue_url: str | None = Field(
        default=None,
        description="`sqlite:///PATH` (embedded huey) or `redis://HOST:PORT/DB`; default: `queue.db` in the data dir.",
    )
    processes: int = Field(
        default=1,
        description="`scenebase serve` processes sharing the port (each with its own job workers); more than one "
        "uses more cores for requests.",
    )
    workers: int = Field(
        default=2, description="Job worker threads inside `scenebase serve` (0: run no jobs in this process)."
    )
    admin_token: str | None = Field(
        default=None,
        description="Token given to the `admin` superadmin created on first start; random (printed once) if unset.",
    )
    api_url: str | None = Field(
        default=None,
        description="Public base URL of the API, reported by `/status`; default http://HOST:PORT.",
    )
    frontend_url: str | None = Field(
        default=None,
        description="Public URL of the web app, reported by `/status`; default `<api_url>/app/`.",
    )
    job_lease_seconds: float = Field(
        default=30.0,
        description="A running job's lease; a worker renews it every third of this. An expired lease means the "
        "worker died.",
    )
    job_max_attempts: int = Field(
        default=2, description="Runs of a job whose worker died before it is marked `aborted` with a note."
    )
    reaper_interval_seconds: float = Field(
        default=5.0, description="How often each server or worker looks for jobs with expired leases."
    )
    log_level: str = Field(default="info", description="Log level of the server and workers.")
    allowed_file_roots: str = Field(
        default="",
        description="Folders (separated by `:`) whose files may be referenced as `file://` URIs; empty: none.",
    )
    max_file_bytes: int = Field(default=512 * 1024 * 1024, description="Largest media file accepted or fetched.")
    url_fetch_timeout_seconds: float = Field(
        default=30.0, description="Timeout when the server reads media referenced by `http(s)://` URLs."
    )
    s3_endpoint: str | None = Field(
        default=None,
        description="Endpoint of the S3-compatible store that `s3://` media URIs point to (keys from AWS_* vars).",
    )

    def file_roots(self) -> list[Path]:
        return [Path(p).resolve() for p in self.allowed_file_roots.split(":") if p.strip()]

    def resolved_catalog_url(self) -> str:
        return self.catalog_url or f"sqlite:///{(self.data_dir / 'catalog.db').resolve()}"

    def resolved_blob_url(self) -> str:
        return self.blob_url or (self.data_dir / "blobs").resolve().as_uri()

    def resolved_queue_url(self) -> str:
        return self.queue_url or f"sqlite:///{(self.data_dir / 'queue.db').resolve()}"

    def resolved_api_url(self) -> str:
        return (self.api_url or f"http://{self.host}:{self.port}").rstrip("/")

    def resolved_frontend_url(self) -> str:
        return self.frontend_url or f"{self.resolved_api_url()}/app/"


def config_table() -> str:
    """Markdown table of every setting (embedded in the README)."""
    rows = ["| variable | default | meaning |", "|---|---|---|"]
    for name, field in Settings.model_fields.items():
        default = field.default
        shown = "unset" if default is None else f"`{default}`"
        rows.append(f"| `SCENEBASE_{name.upper()}` | {shown} | {field.description} |")
    return "\n".join(rows) + "\n"
