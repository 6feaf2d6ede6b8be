"""Embedding rules shared by the client and the server (FACTS 7.1): ids, index names, vector checks and bytes.

A vector travels and is stored as raw little-endian float32 bytes (``ndim * 4`` bytes; base64 inside JSON). Every
check here names the embedding it is about, so an error in a batch of thousands points at the culprit.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Sequence

import numpy as np

from scenebase.domain.ids import standardize_id

#: dimensions of one vector (FACTS 7.1, C:586)
MIN_NDIM = 1
MAX_NDIM = 8192
#: asset types that can own embeddings (FACTS 7.1)
EMBEDDING_ASSET_TYPES = ("images", "objects")


_json_string = json.encoder.encode_basestring_ascii


class InvalidVector(ValueError):
    """A vector is unusable (empty, wrong size, NaN or infinite values); the message names it."""


def embedding_id(asset_id: str, layer: str | None, model: str, ndim: int, version: str) -> str:
    """The deterministic id of an embedding (FACTS 7.1): the decimal absolute value of the md5 of its identity
    read as a signed 64-bit integer (its low 64 bits), so adding the same embedding again replaces it."""
    # json.dumps(..., sort_keys=True) of {asset_id, layer, model, ndim, version}, written out: the same text (its
    # C string encoder, default separators) at a third of the cost, which counts at 100,000 embeddings per call
    if (
        isinstance(ndim, bool)
        or not isinstance(ndim, int)
        or not all(isinstance(v, str) for v in (asset_id, model, version))
    ):
        identity = json.dumps(
            {"asset_id": asset_id, "layer": layer, "model": model, "ndim": ndim, "version": version}, sort_keys=True
        )
    else:
        text = _json_string
        shown = "null" if layer is None else text(layer) if isinstance(layer, str) else json.dumps(layer)
        identity = (f'{{"asset_id": {text(asset_id)}, "layer": {shown}, "model": {text(model)}, "ndim": {ndim}, '
                    f'"version": {text(version)}}}')  # fmt: skip
    value = int(hashlib.md5(identity.encode("utf-8")).hexdigest(), 16) & 0xFFFF_FFFF_FFFF_FFFF
    signed = value - (1 << 64) if value >= 1 << 63 else value
    return str(abs(signed))


def index_name_for(asset_type: str, model: str, version: str) -> str:
    """``similarity_<asset_type>_<model>_<version>`` standardized, dots replaced by ``_`` (FACTS 7.1)."""
    return standardize_id(f"similarity_{asset_type}_{model}_{version}").replace(".", "_")


def check_index_name(index_name: object, where: str = "index_name") -> str:
    if not isinstance(index_name, str) or not index_name.strip():
        raise InvalidVector(f"{where} must be a non-empty string, got {index_name!r}")
    name = standardize_id(index_name.strip())
    if len(name) > 200:
        raise InvalidVector(f"{where} has at most 200 characters, got {len(name)}")
    return name


def as_float32(values: object, where: str, ndim: int | None = None) -> np.ndarray:
    """One vector as a contiguous float32 array, checked: 1-D, ``MIN_NDIM..MAX_NDIM`` values, all finite, and
    ``ndim`` values when given."""
    try:
        arr = np.asarray(values, dtype=np.float32)
    except (TypeError, ValueError) as e:
        raise InvalidVector(f"{where}: not a vector of numbers ({e})") from None
    if arr.ndim != 1:
        arr = arr.reshape(-1) if arr.ndim > 1 and 1 in arr.shape else arr
    if arr.ndim != 1:
        raise InvalidVector(f"{where}: a vector must be one-dimensional, got shape {tuple(arr.shape)}")
    check_vectors(arr[None, :] if arr.size else arr.reshape(1, 0), [where], ndim)
    return np.ascontiguousarray(arr)


def check_vectors(vectors: np.ndarray, names: Sequence[str], ndim: int | None = None) -> None:
    """Check a ``(n, d)`` float32 matrix whose rows are the vectors ``names``: non-empty, ``MIN_NDIM..MAX_NDIM``
    wide, ``ndim`` wide when given, finite."""
    if vectors.ndim != 2:
        raise InvalidVector(f"vectors must form a 2-D matrix, got shape {tuple(vectors.shape)}")
    width = vectors.shape[1]
    if width == 0:
        raise InvalidVector(f"{names[0] if names else 'vector'}: the vector is empty")
    if not MIN_NDIM <= width <= MAX_NDIM:
        raise InvalidVector(f"{names[0] if names else 'vector'}: {width} dimensions; at most {MAX_NDIM}")
    if ndim is not None and width != ndim:
        raise InvalidVector(f"{names[0] if names else 'vector'}: {width} values, but ndim is {ndim}")
    finite = np.isfinite(vectors).all(axis=1)
    if not finite.all():
        bad = [names[i] if i < len(names) else f"#{i}" for i in np.flatnonzero(~finite)[:5]]
        raise InvalidVector(f"{bad} contain NaN or infinite values")


def encode_vector(vector: np.ndarray) -> str:
    """base64 of the raw little-endian float32 bytes."""
    return base64.b64encode(np.ascontiguousarray(vector, dtype="<f4").tobytes()).decode("ascii")


def decode_vectors(data: str | bytes, ndim: int, count: int | None = None, where: str = "vectors") -> np.ndarray:
    """A ``(n, ndim)`` float32 matrix from base64 text (or raw bytes) of little-endian float32 values."""
    # strict C-level validation: base64.b64decode(validate=True) checks with a regular expression first, which
    # costs more than the decoding of a 10 MB request
    try:
        raw = binascii.a2b_base64(data.encode("ascii"), strict_mode=True) if isinstance(data, str) else data
    except (binascii.Error, UnicodeEncodeError) as e:
        raise InvalidVector(f"{where}: not base64 of float32 values ({e})") from None
    if ndim <= 0 or len(raw) % (4 * ndim):
        raise InvalidVector(f"{where}: {len(raw)} bytes is not a whole number of {ndim}-dimensional float32 vectors")
    out = np.frombuffer(raw, dtype="<f4").reshape(-1, ndim)
    if count is not None and out.shape[0] != count:
        raise InvalidVector(f"{where}: {out.shape[0]} vectors of {ndim} values for {count} embeddings")
    return out.astype(np.float32, copy=False)


def normalized(vectors: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (cosine similarity becomes inner product); zero rows stay zero."""
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return np.ascontiguousarray(vectors / norms, dtype=np.float32)
