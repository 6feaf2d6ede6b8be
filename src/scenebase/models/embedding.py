"""``Embedding``: one vector of an asset for ``SceneEngineClient.add_embeddings`` (seed: ``scenebox.models.assets``,
FACTS 2.13 and 7.1). Importable as ``scenebase.models.assets.Embedding``."""

from __future__ import annotations

import io
from datetime import datetime
from typing import Any

import numpy as np

from scenebase.domain.embeddings import InvalidVector, as_float32, embedding_id, encode_vector, index_name_for
from scenebase.domain.ids import standardize_id
from scenebase.errors import EmbeddingError


class Embedding:
    """A vector (``bytes``/``BytesIO`` decoded with ``dtype``, a numpy array or a list of numbers; always stored as
    float32) of the asset ``asset_id``. The id is deterministic (FACTS 7.1): adding the same asset, layer, model,
    version and ``ndim`` again replaces the embedding. ``index_name`` (an extension of the seed) overrides the
    space name ``similarity_<asset_type>_<model>_<version>``."""

    def __init__(
        self,
        data: Any,
        asset_id: str,
        asset_type: str = "images",
        model: str = "default",
        version: str = "v1",
        timestamp: datetime | str | None = None,
        layer: str | None = None,
        dtype: Any = np.float32,
        ndim: int | None = None,
        session_uid: str | None = None,
        index_name: str | None = None,
    ) -> None:
        if not isinstance(asset_id, str) or not asset_id:
            raise EmbeddingError(f"asset_id must be a non-empty string, got {asset_id!r}")
        if standardize_id(asset_id) != asset_id:
            raise EmbeddingError(
                f"asset_id {asset_id!r} is not standardized; use {standardize_id(asset_id)!r} (the asset's stored id)"
            )
        where = f"embedding of {asset_id!r}"
        if isinstance(data, io.IOBase):
            data = data.read()
        if isinstance(data, bytes | bytearray | memoryview):
            try:
                data = np.frombuffer(bytes(data), dtype=dtype)
            except (TypeError, ValueError) as e:
                raise EmbeddingError(f"{where}: bytes cannot be read as {dtype}: {e}") from None
        if ndim is not None and (isinstance(ndim, bool) or not isinstance(ndim, int)):
            raise EmbeddingError(f"{where}: ndim must be an integer, got {ndim!r}")
        try:
            vector = as_float32(data, where, ndim)
        except InvalidVector as e:
            raise EmbeddingError(str(e)) from None
        self.asset_id = asset_id
        self.asset_type = asset_type
        self.model = model
        self.version = version
        self.timestamp = timestamp
        self.layer = layer
        self.ndim = int(vector.shape[0])
        self.session_uid = session_uid
        self.vector = vector
        #: raw little-endian float32 bytes, what is stored (FACTS 2.6)
        self.data = vector.astype("<f4").tobytes()
        self.id = embedding_id(asset_id, layer, model, self.ndim, version)
        self.index_name = standardize_id(index_name) if index_name else index_name_for(asset_type, model, version)

    def metadata(self) -> dict[str, Any]:
        """The embedding document (FACTS 2.6) without its vector."""
        ts = self.timestamp.isoformat() if isinstance(self.timestamp, datetime) else self.timestamp
        meta = {"id": self.id, "timestamp": ts, "tags": [self.layer] if self.layer else [],
                "media_type": self.asset_type, "asset_id": self.asset_id, "model": self.model,
                "version": self.version, "ndim": self.ndim, "index_name": self.index_name,
                "layer": self.layer, "session_uid": self.session_uid}  # fmt: skip
        return {k: v for k, v in meta.items() if v is not None}

    def encoded(self) -> str:
        """The vector as base64 of its float32 bytes."""
        return encode_vector(self.vector)

    def __repr__(self) -> str:
        return f"Embedding(id={self.id!r}, asset_id={self.asset_id!r}, ndim={self.ndim}, index={self.index_name!r})"
