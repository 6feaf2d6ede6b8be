"""``Embedding`` (FACTS 7.1): inputs, float32, ndim checks, deterministic ids and the index_name rule."""

from __future__ import annotations

import hashlib
import io
import json
import random

import numpy as np
import pytest

from scenebase.domain.embeddings import decode_vectors, embedding_id, encode_vector, index_name_for
from scenebase.errors import EmbeddingError
from scenebase.models.assets import Embedding


def test_bytes_numpy_and_lists_give_the_same_float32_embedding() -> None:
    values = [0.5, -1.25, 3.0]
    as_list = Embedding(values, "img_1")
    as_numpy = Embedding(np.array(values, dtype=np.float64), "img_1")
    as_bytes = Embedding(np.array(values, dtype=np.float32).tobytes(), "img_1")
    as_stream = Embedding(io.BytesIO(np.array(values, dtype=np.float64).tobytes()), "img_1", dtype=np.float64)
    for e in (as_list, as_numpy, as_bytes, as_stream):
        assert e.vector.dtype == np.float32 and e.vector.tolist() == values
        assert e.data == np.array(values, "<f4").tobytes() and e.ndim == 3
    assert len({e.id for e in (as_list, as_numpy, as_bytes, as_stream)}) == 1


def test_id_is_the_absolute_signed_64_bit_md5_of_the_identity() -> None:
    e = Embedding([1.0, 2.0], "img_1", model="clip", version="v2", layer="fc7")
    identity = json.dumps({"asset_id": "img_1", "layer": "fc7", "model": "clip", "ndim": 2, "version": "v2"},
                          sort_keys=True)  # fmt: skip
    low = int(hashlib.md5(identity.encode()).hexdigest(), 16) % 2**64
    assert e.id == str(abs(int(np.array(low, dtype=np.uint64).astype(np.int64))))
    assert e.id == embedding_id("img_1", "fc7", "clip", 2, "v2")
    assert Embedding([1.0, 2.0], "img_1", model="clip", version="v2").id != e.id  # the layer is part of it
    assert e.metadata()["tags"] == ["fc7"] and e.metadata()["index_name"] == "similarity_images_clip_v2"


def test_index_name_rule_and_explicit_name() -> None:
    assert index_name_for("objects", "Mask RCNN", "R_50.FPN") == "similarity_objects_mask_rcnn_r_50_fpn"
    assert Embedding([1.0], "o1", asset_type="objects", model="m.1").index_name == "similarity_objects_m_1_v1"
    assert Embedding([1.0], "o1", index_name="My Space").index_name == "my_space"


@pytest.mark.parametrize(
    ("data", "kwargs", "message"),
    [
        ([], {}, "empty"),
        (np.zeros(8193), {}, "8193 dimensions"),
        ([1.0, 2.0], {"ndim": 3}, "ndim is 3"),
        ([1.0, float("nan")], {}, "NaN"),
        ([1.0, float("inf")], {}, "NaN or infinite"),
        (np.zeros((2, 2)), {}, "one-dimensional"),
        (["a", "b"], {}, "not a vector"),
        (b"\x00\x00\x00", {}, "cannot be read"),
    ],
)
def test_bad_vectors_raise_embedding_error(data: object, kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(EmbeddingError, match=message):
        Embedding(data, "img_1", **kwargs)  # type: ignore[arg-type]


def test_asset_id_must_be_standardized() -> None:
    with pytest.raises(EmbeddingError, match="'img 1' is not standardized; use 'img_1'"):
        Embedding([1.0], "img 1")


def test_vector_bytes_round_trip() -> None:
    m = np.arange(12, dtype=np.float32).reshape(3, 4)
    assert decode_vectors(encode_vector(m.reshape(-1)), 4, 3).tolist() == m.tolist()
    with pytest.raises(ValueError, match="not a whole number"):
        decode_vectors(encode_vector(m.reshape(-1)), 5)


def test_embedding_ids_are_the_md5_of_the_sorted_json_identity_for_any_text() -> None:
    """``embedding_id`` writes the JSON identity out by hand (speed): it must equal ``json.dumps(sort_keys=True)``."""

    def reference(asset_id: str, layer: str | None, model: str, ndim: int, version: str) -> str:
        identity = json.dumps({"asset_id": asset_id, "layer": layer, "model": model, "ndim": ndim,
                               "version": version}, sort_keys=True)  # fmt: skip
        value = int(hashlib.md5(identity.encode("utf-8")).hexdigest(), 16) & 0xFFFF_FFFF_FFFF_FFFF
        return str(abs(value - (1 << 64) if value >= 1 << 63 else value))

    rng = random.Random(7)

    def text() -> str:
        return "".join(chr(rng.choice([rng.randint(32, 126), rng.randint(0, 0x2FFF), 0x1F600, 10, 34, 92]))
                       for _ in range(rng.randint(0, 8)))  # fmt: skip

    cases = [("img_1", None, "default", 512, "v1"), ('é"\\x\n\u2028', 'l"1', "m/ü", 3, "v.1")]
    cases += [(text(), rng.choice([None, text()]), text(), rng.randint(1, 8192), text()) for _ in range(500)]
    for case in cases:
        assert embedding_id(*case) == reference(*case), case
