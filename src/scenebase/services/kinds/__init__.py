"""The registry of asset kinds (see :mod:`scenebase.services.kinds.base`)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from scenebase.services.errors import InvalidArgument
from scenebase.services.kinds.annotations import AnnotationKind, ObjectKind
from scenebase.services.kinds.base import (
    AssetKind,
    BytesMedia,
    FileMedia,
    Media,
    MediaError,
    PostIngestJob,
    Probed,
    Rendition,
    StreamMedia,
)
from scenebase.services.kinds.images import ImageKind
from scenebase.services.kinds.lidars import LidarKind
from scenebase.services.kinds.videos import VideoKind


class KindRegistry:
    """The media kinds of one runtime, by asset type."""

    def __init__(self, kinds: Iterable[AssetKind]) -> None:
        self._kinds: dict[str, AssetKind] = {}
        for kind in kinds:
            if kind.asset_type in self._kinds:
                raise ValueError(f"two kinds for asset type {kind.asset_type!r}")
            self._kinds[kind.asset_type] = kind

    def get(self, asset_type: str) -> AssetKind:
        kind = self._kinds.get(asset_type)
        if kind is None:
            raise InvalidArgument(
                f"{asset_type!r} is not a media asset type; media types: {sorted(self._kinds)}", resource=asset_type
            )
        return kind

    def __contains__(self, asset_type: object) -> bool:
        return asset_type in self._kinds

    def __iter__(self) -> Iterator[AssetKind]:
        return iter(self._kinds.values())

    def asset_types(self) -> list[str]:
        return sorted(self._kinds)

    def job_types(self) -> list[str]:
        return sorted({t for k in self._kinds.values() for t in k.job_types})

    def never_indexed(self) -> dict[str, frozenset[str]]:
        """Per asset type, the metadata fields kept out of the search index."""
        return {t: k.never_indexed for t, k in self._kinds.items() if k.never_indexed}


def default_kinds() -> KindRegistry:
    return KindRegistry([ImageKind(), VideoKind(), LidarKind(), AnnotationKind(), ObjectKind()])


__all__ = [
    "AssetKind",
    "BytesMedia",
    "FileMedia",
    "KindRegistry",
    "Media",
    "MediaError",
    "PostIngestJob",
    "Probed",
    "Rendition",
    "StreamMedia",
    "default_kinds",
]
