"""Asset descriptions for the bulk ``add_*`` methods (seed: ``scenebox.models.assets``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


@dataclass
class Image:
    """One image for ``SceneEngineClient.add_images``: exactly one of ``image_path``, ``image_url``,
    ``image_uri`` or ``image_bytes``, plus optional metadata."""

    id: str | None = None
    image_path: str | None = None
    image_url: str | None = None
    image_uri: str | None = None
    image_bytes: bytes | None = None
    sensor: str | None = None
    timestamp: datetime | str | None = None
    session_uid: str | None = None
    set_id: str | list[str] | None = None
    annotations: list[Any] | None = None
    preprocesses: list[str] | None = None
    aux_metadata: dict[str, Any] | None = None
    tags: list[str] | None = None
    geo_field: str | None = None
    shape_group_field: str | None = None
    nested_fields: list[str] | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def sources(self) -> list[str]:
        """Names of the sources that are set (exactly one is valid)."""
        given = {
            "image_path": self.image_path,
            "image_url": self.image_url,
            "image_uri": self.image_uri,
            "image_bytes": self.image_bytes,
        }
        return [k for k, v in given.items() if v is not None]
