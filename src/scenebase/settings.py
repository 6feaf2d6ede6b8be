"""Server settings: one object, read from ``SCENEBASE_*`` environment variables; CLI flags override.

The README's configuration table is generated from this class (``scenebase config-table``) and a test
fails when they disagree.
"""

from __future__ import annotations

import re
from ipaddress import IPv4Network, IPv6Network, ip_network
from pathlib import Path

from pydantic import Field, field_validator
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
    job_max_running_per_org: int = Field(
        default=0,
        ge=0,
        description="Jobs one organization may run at once across all workers (0: no cap). Workers always take the "
        "next job of the organization running the fewest; set this below the total of worker threads so that one "
        "organization's long jobs can never occupy every worker.",
    )
    job_stop_grace_seconds: float = Field(
        default=10.0,
        ge=0,
        description="On a graceful stop, how long a server or worker waits for its running jobs before it "
        "interrupts them (they are queued again for another worker).",
    )
    sweep_interval_seconds: float = Field(
        default=3600.0,
        description="How often each server removes blobs no document points at and stale temporary files (left "
        "by killed processes); 0: never.",
    )
    sweep_grace_seconds: float = Field(
        default=3600.0,
        description="Age below which the sweep leaves an unreferenced blob or temporary file alone (an ingest, "
        "download or zip may still be writing it); keep it above the longest ingest batch and zip.",
    )
    nested_fields: str = Field(
        default="",
        description="Lists of objects indexed element by element so that `nested_filters` can bind conditions to "
        "one element, beyond `annotations_meta` and `annotation_entities` (always): `TYPE=FIELD,FIELD;TYPE=FIELD`, "
        "e.g. `images=aux.detections`. Declare them before ingesting: a document is indexed for them when written.",
    )
    log_level: str = Field(default="info", description="Log level of the server and workers.")
    allowed_file_roots: str = Field(
        default="",
        description="Folders each organization may reference as `file://` URIs: `ORG=PATH:PATH;ORG=PATH` with "
        "organization ids, e.g. `default=/data/a:/data/b;acme=/mnt/acme`; empty: none. A bare path list (the old "
        "format) is refused at startup, since it would let every organization read the folders.",
    )
    allowed_s3_buckets: str = Field(
        default="",
        description="Buckets each organization may reference as `s3://` URIs (read with the server's own keys): "
        "`ORG=BUCKET,BUCKET;ORG=BUCKET`, e.g. `default=raw,labels;acme=acme-data`; empty: none.",
    )
    max_file_bytes: int = Field(
        default=16 * 1024**3,
        description="Largest media file accepted or fetched (images have their own 512 MiB cap); an uploaded file "
        "stops being stored once it passes this, and its item is refused.",
    )
    max_request_bytes: int = Field(
        default=16 * 1024 * 1024,
        description="Largest request body other than an upload (JSON searches, id lists, job records); a larger "
        "one is refused with 413, by its `Content-Length` before it is read, else while it arrives.",
    )
    max_upload_bytes: int = Field(
        default=16 * 1024**3 + 64 * 1024**2,
        description="Largest multipart upload request (all files of one batch together); refused with 413 like "
        "`SCENEBASE_MAX_REQUEST_BYTES`.",
    )
    decode_memory_bytes: int = Field(
        default=2 * 1024 * 1024 * 1024,
        description="Memory the image decoders of one server process may use at once (each decode reserves its "
        "peak, estimated from the header, first); an image needing more is refused at ingest, and a thumbnail "
        "needing more is a 415.",
    )
    decodes_per_process: int = Field(
        default=4, description="Images one server process decodes at once (thumbnails, properties); others wait."
    )
    decode_wait_seconds: float = Field(
        default=30.0,
        description="How long a decode waits for memory or a turn (`SCENEBASE_DECODE_MEMORY_BYTES`, "
        "`SCENEBASE_DECODES_PER_PROCESS`) before the request fails with 503 (retry later).",
    )
    url_fetch_timeout_seconds: float = Field(
        default=30.0,
        description="Longest wait for one network step of a URL or S3 fetch (connecting, each read); the whole "
        "fetch is bounded by `SCENEBASE_FETCH_DEADLINE_SECONDS`.",
    )
    fetch_deadline_seconds: float = Field(
        default=300.0,
        description="Longest time one download of referenced media (`http(s)://`, `s3://`) may take, redirects "
        "included; a slower one fails.",
    )
    fetch_threads: int = Field(
        default=16,
        description="Threads downloading referenced media for API requests (a pool of their own, so slow URLs "
        "cannot starve the threads that answer requests).",
    )
    fetches_per_org: int = Field(
        default=4,
        description="Downloads of referenced media one organization may have in flight per server process; "
        "further ones wait up to `SCENEBASE_FETCH_WAIT_SECONDS`, then fail with 503 (retry later).",
    )
    fetch_wait_seconds: float = Field(
        default=30.0, description="How long a download waits for one of its organization's fetch slots."
    )
    url_allowed_networks: str = Field(
        default="",
        description="Non-public addresses media URLs may reach, as comma-separated CIDRs (e.g. `10.2.0.0/16,"
        "127.0.0.1/32`); empty: public addresses only. Loopback, private, link-local, multicast, reserved and "
        "cloud-metadata addresses are refused on every redirect hop unless listed here.",
    )
    s3_endpoint: str | None = Field(
        default=None,
        description="Endpoint of the S3-compatible store that `s3://` media URIs point to (keys from AWS_* vars).",
    )

    session_resolution_debounce_seconds: float = Field(
        default=1.0,
        description="Entities written without `urgent` make their session resolve by itself once writes to it "
        "pause for this long.",
    )
    session_column_cache_mb: int = Field(
        default=512,
        description="Memory per server process for decoded resolved timelines (scenario search reads them).",
    )
    weather_url: str | None = Field(
        default=None,
        description="Base URL of an Open-Meteo-compatible historical weather API (e.g. "
        "`https://archive-api.open-meteo.com`) for the `weather` enrichment of sessions; unset: not configured.",
    )

    @field_validator("allowed_file_roots")
    @classmethod
    def _check_file_roots(cls, value: str) -> str:
        for org, paths in parse_org_lists(value, "SCENEBASE_ALLOWED_FILE_ROOTS", ":").items():
            for path in paths:
                if not Path(path).is_absolute():
                    raise ValueError(f"SCENEBASE_ALLOWED_FILE_ROOTS: {path!r} (organization {org!r}) is not absolute")
        return value

    @field_validator("allowed_s3_buckets")
    @classmethod
    def _check_s3_buckets(cls, value: str) -> str:
        for org, buckets in parse_org_lists(value, "SCENEBASE_ALLOWED_S3_BUCKETS", ",").items():
            for bucket in buckets:
                if not _BUCKET.fullmatch(bucket):
                    raise ValueError(
                        f"SCENEBASE_ALLOWED_S3_BUCKETS: {bucket!r} (organization {org!r}) is not a bucket name"
                    )
        return value

    @field_validator("url_allowed_networks")
    @classmethod
    def _check_networks(cls, value: str) -> str:
        parse_networks(value)
        return value

    @field_validator("fetch_deadline_seconds", "url_fetch_timeout_seconds", "fetch_wait_seconds", "decode_wait_seconds")
    @classmethod
    def _check_positive_seconds(cls, value: float) -> float:
        if not value > 0:
            raise ValueError("must be a positive number of seconds")
        return value

    @field_validator(
        "fetch_threads",
        "fetches_per_org",
        "max_file_bytes",
        "max_request_bytes",
        "max_upload_bytes",
        "decode_memory_bytes",
        "decodes_per_process",
    )
    @classmethod
    def _check_positive_count(cls, value: int) -> int:
        if value < 1:
            raise ValueError("must be at least 1")
        return value

    @field_validator("sweep_grace_seconds")
    @classmethod
    def _check_grace(cls, value: float) -> float:
        if value < 60:
            raise ValueError("must be at least 60 seconds: a shorter grace would remove the blobs of ingests in flight")
        return value

    @field_validator("sweep_interval_seconds")
    @classmethod
    def _check_interval(cls, value: float) -> float:
        if value < 0:
            raise ValueError("must be 0 (never) or a positive number of seconds")
        return value

    def file_roots(self, org_id: str) -> list[Path]:
        """The folders ``org_id`` may reference as ``file://`` URIs, symlinks resolved."""
        paths = parse_org_lists(self.allowed_file_roots, "SCENEBASE_ALLOWED_FILE_ROOTS", ":").get(org_id, [])
        return [Path(p).resolve() for p in paths]

    def nested_field_map(self) -> dict[str, frozenset[str]]:
        """Asset type -> the extra nested fields of ``SCENEBASE_NESTED_FIELDS``."""
        parsed = parse_org_lists(self.nested_fields, "SCENEBASE_NESTED_FIELDS", ",")
        return {asset_type: frozenset(fields) for asset_type, fields in parsed.items()}

    def s3_buckets(self, org_id: str) -> frozenset[str]:
        """The buckets ``org_id`` may reference as ``s3://`` URIs."""
        return frozenset(parse_org_lists(self.allowed_s3_buckets, "SCENEBASE_ALLOWED_S3_BUCKETS", ",").get(org_id, []))

    def allowed_networks(self) -> list[IPv4Network | IPv6Network]:
        return parse_networks(self.url_allowed_networks)

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


_BUCKET = re.compile(r"[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9]")


def parse_org_lists(text: str, variable: str, separator: str) -> dict[str, list[str]]:
    """Parse ``ORG=ITEM<sep>ITEM;ORG=ITEM`` (organization ids, e.g. ``default``) into ``{org: [items]}``."""
    out: dict[str, list[str]] = {}
    for entry in (e.strip() for e in text.split(";")):
        if not entry:
            continue
        org, eq, items = entry.partition("=")
        org = org.strip()
        if not eq or not org:
            raise ValueError(
                f"{variable}: {entry!r} names no organization; the format is ORG=ITEM{separator}ITEM;ORG=ITEM with "
                f"organization ids, e.g. 'default={entry.split(separator)[0]}'"
            )
        if org in out:
            raise ValueError(f"{variable}: organization {org!r} appears twice")
        out[org] = [i.strip() for i in items.split(separator) if i.strip()]
    return out


def parse_networks(text: str) -> list[IPv4Network | IPv6Network]:
    out = []
    for item in (i.strip() for i in text.split(",")):
        if item:
            try:
                out.append(ip_network(item, strict=False))
            except ValueError:
                raise ValueError(f"SCENEBASE_URL_ALLOWED_NETWORKS: {item!r} is not a CIDR like 10.0.0.0/8") from None
    return out


def config_table() -> str:
    """Markdown table of every setting (embedded in the README)."""
    rows = ["| variable | default | meaning |", "|---|---|---|"]
    for name, field in Settings.model_fields.items():
        default = field.default
        shown = "unset" if default is None else f"`{default}`"
        rows.append(f"| `SCENEBASE_{name.upper()}` | {shown} | {field.description} |")
    return "\n".join(rows) + "\n"
