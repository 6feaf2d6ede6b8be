"""UMAP maps, set comparisons and the histogram model through the client against an in-process server (issue 10):
create_umap (fit, transform_only, after add_embeddings), compare_sets / get_comparison_matrix checked against the
distance computed locally, model_inference(model='histogram') giving working similarity search, and bad input."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image as PILImage

from scenebase.clients import SceneEngineClient
from scenebase.domain.set_distance import pairwise_sliced_wasserstein
from scenebase.errors import EmbeddingError, InvalidArgumentsError, JobError, SceneBaseError, SetsError
from scenebase.media.histogram_embedding import histogram_embedding
from scenebase.models.assets import Embedding, Image

N = 40
DIM = 16
SPACE = "similarity_images_default_v1"
HISTOGRAM_SPACE = "similarity_images_histogram_intensities"


def _png(colour: tuple[int, int, int], seed: int) -> bytes:
    """A 24x24 image of one colour with a little noise (so that every image is different)."""
    rng = np.random.default_rng(seed)
    pixels = np.clip(np.array(colour) + rng.normal(0, 12, (24, 24, 3)), 0, 255).astype(np.uint8)
    out = io.BytesIO()
    PILImage.fromarray(pixels).save(out, "PNG")
    return out.getvalue()


def _clusters() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(4, DIM)) * 8
    labels = np.arange(N) % 4
    return (centres[labels] + rng.normal(size=(N, DIM))).astype(np.float32), labels


def _a_set(client: SceneEngineClient) -> str:
    return client.create_set("uploads", "images")


@pytest.fixture
def embedded(admin: SceneEngineClient) -> tuple[np.ndarray, np.ndarray]:
    x, labels = _clusters()
    admin.add_images([Image(id=f"img_{i}", bytes=_png((i * 6, 0, 0), i)) for i in range(N)], _a_set(admin))
    admin.add_embeddings([Embedding(v, f"img_{i}") for i, v in enumerate(x)], create_umap=False,
                         wait_for_completion=True)  # fmt: skip
    return x, labels


def _points(client: SceneEngineClient, space: str = SPACE) -> np.ndarray:
    docs = [client.get_metadata(f"img_{i}", "images") for i in range(N)]
    return np.array([d["umap"][space]["coordinates"] for d in docs], dtype=np.float64)


def _clusters_apart(points: np.ndarray, labels: np.ndarray) -> None:
    centres = np.array([points[labels == c].mean(axis=0) for c in range(4)])
    nearest = np.linalg.norm(points[:, None] - centres[None], axis=2).argmin(axis=1)
    assert (nearest == labels).all()


def test_create_umap_stores_a_point_on_every_asset_and_transform_only_reuses_the_map(
    admin: SceneEngineClient, embedded: tuple[np.ndarray, np.ndarray]
) -> None:
    _, labels = embedded
    progress: list[float] = []
    job_id = admin.create_umap("images", SPACE, n_neighbors=5, train_size=20, wait_for_completion=True,
                               progress_callback=progress.append)  # fmt: skip
    job = admin.get_job(job_id)
    assert job.status == "finished" and job.result["mapped"] == N and job.result["trained_on"] == 20
    assert progress and progress[-1] == 100.0
    points = _points(admin)
    assert points.shape == (N, 2) and np.isfinite(points).all()
    _clusters_apart(points, labels)
    # the 2-D points come back as embeddings of model "umap"
    umap = {e.asset_id: e.vector for e in admin.get_embeddings(SPACE, use_umap_as_embedding=True)}
    assert np.allclose(umap["img_3"], points[3])

    # transform_only: placed on the saved map, only for the assets of the search
    first_half = {"filters": [{"field": "id", "values": [f"img_{i}" for i in range(N // 2)]}]}
    job_id = admin.create_umap("images", SPACE, search_dic=first_half, transform_only=True, wait_for_completion=True)
    assert admin.get_job(job_id).result == {"index_name": SPACE, "asset_type": "images", "mapped": N // 2,
                                            "trained_on": 0, "transform_only": True}  # fmt: skip
    _clusters_apart(_points(admin), labels)


def test_add_embeddings_with_create_umap_makes_the_map(admin: SceneEngineClient) -> None:
    x, labels = _clusters()
    admin.add_images([Image(id=f"img_{i}", bytes=_png((0, i * 6, 0), i)) for i in range(N)], _a_set(admin))
    admin.add_embeddings([Embedding(v, f"img_{i}", model="m") for i, v in enumerate(x)], wait_for_completion=True,
                         umap_params={"n_neighbors": 5})  # fmt: skip
    _clusters_apart(_points(admin, "similarity_images_m_v1"), labels)


def test_compare_sets_stores_one_document_per_pair(
    admin: SceneEngineClient, embedded: tuple[np.ndarray, np.ndarray]
) -> None:
    x, labels = embedded
    members = {name: [i for i in range(N) if labels[i] in cs] for name, cs in
               (("a", (0,)), ("b", (0, 1)), ("c", (2, 3)))}  # fmt: skip
    set_ids = {}
    for name, rows in members.items():
        set_ids[name] = admin.create_set(f"set {name}", "images")
        admin.add_assets_to_set(set_ids[name], ids=[f"img_{i}" for i in rows], wait_for_completion=True)
    ordered = [set_ids[n] for n in "abc"]
    admin.compare_sets(ordered, SPACE, metric_params={"num_projections": 10, "num_seeds": 5})
    matrix = admin.get_comparison_matrix(index_name=SPACE)
    assert len(matrix) == 3
    expected = pairwise_sliced_wasserstein([x[members[n]] for n in "abc"], 10, 5)
    by_pair = {tuple(d["sets"]): d for d in matrix}
    for pair in expected:
        doc = by_pair[(ordered[pair.first], ordered[pair.second])]
        assert doc["value"] == pytest.approx(pair.mean, rel=1e-6)
        assert doc["std"] == pytest.approx(pair.std, rel=1e-6, abs=1e-9)
        assert doc["metric_type"] == "wasserstein"
        assert doc["metric_params"] == {"num_projections": 10, "num_seeds": 5}
    near, far = by_pair[(ordered[0], ordered[1])]["value"], by_pair[(ordered[0], ordered[2])]["value"]
    assert near < far
    # compared again (default parameters): the pair documents are replaced, not added
    admin.compare_sets(ordered[:2], SPACE)
    matrix = admin.get_comparison_matrix(index_name=SPACE)
    assert len(matrix) == 3
    again = next(d for d in matrix if d["sets"] == ordered[:2])
    assert again["metric_params"] == {"num_projections": 25, "num_seeds": 50}
    assert admin.get_comparison_matrix(index_name="other_space") == []
    search = {"filters": [{"field": "sets", "values": [ordered[2]]}]}
    assert len(admin.get_comparison_matrix(search=search)) == 2


def test_histogram_inference_gives_working_similarity_search(admin: SceneEngineClient) -> None:
    colours = {"red": (220, 30, 30), "green": (30, 200, 40), "blue": (20, 40, 210)}
    files = {f"{name}_{k}": _png(colour, 10 * k + j) for j, (name, colour) in enumerate(colours.items())
             for k in range(4)}  # fmt: skip
    admin.add_images([Image(id=name, bytes=data) for name, data in files.items()], _a_set(admin))
    progress: list[float] = []
    job_id = admin.model_inference(ids=sorted(files), model="histogram", obtain_embeddings=True, obtain_mask=True,
                                   wait_for_completion=True, progress_callback=progress.append)  # fmt: skip
    job = admin.get_job(job_id)
    assert job.result["embeddings"] == len(files) and job.result["failed"] == []
    assert any("obtain_mask" in str(note) for note in job.notes)
    assert progress[-1] == 100.0
    admin.get_job(job.result["index_job_id"]).wait()
    got = {e.asset_id: e.vector for e in admin.get_embeddings(HISTOGRAM_SPACE)}
    assert set(got) == set(files)
    assert np.allclose(got["red_2"], histogram_embedding(files["red_2"]))
    for name in ("red_0", "green_1", "blue_3"):
        similar = admin.search_similar_assets(name, similar_asset_count=3)
        assert all(s.split("_")[0] == name.split("_")[0] for s in similar), similar


def test_bad_input_is_a_clear_error(admin: SceneEngineClient, embedded: tuple[np.ndarray, np.ndarray]) -> None:
    one = admin.create_set("one", "images")
    two = admin.create_set("two", "images")
    with pytest.raises(InvalidArgumentsError, match="at least two different sets"):
        admin.compare_sets([one], SPACE)
    with pytest.raises(InvalidArgumentsError, match="at least two different sets"):
        admin.compare_sets([one, one], SPACE)
    # the server refuses it too, for clients that do not check
    with pytest.raises(SceneBaseError, match="at least two different sets"):
        admin._request("POST", "/v1/sets_comparisons/compare_sets/", json={"sets": [one], "index_name": SPACE})
    with pytest.raises(SceneBaseError, match="no embedding space 'nowhere'"):
        admin.compare_sets([one, two], "nowhere")
    with pytest.raises(SetsError, match="unknown metric_type 'cosine'"):
        admin.compare_sets([one, two], SPACE, metric_type="cosine")
    with pytest.raises(SetsError, match=r"metric_params\.num_seeds must be an integer"):
        admin.compare_sets([one, two], SPACE, metric_params={"num_seeds": 0})
    with pytest.raises(SetsError, match="no set with id 'ghost'"):
        admin.compare_sets([one, "ghost"], SPACE)
    admin.add_assets_to_set(one, ids=["img_1"], wait_for_completion=True)
    with pytest.raises(SetsError, match=f"set '{two}' \\('two'\\) is empty"):
        admin.compare_sets([one, two], SPACE)
    admin.add_images([Image(id="plain", bytes=_png((1, 2, 3), 0))], two)  # an image without an embedding
    with pytest.raises(JobError, match=f"set '{two}' has no images with an embedding in '{SPACE}'"):
        admin.compare_sets([one, two], SPACE)  # the job fails, naming the set
    with pytest.raises(SceneBaseError, match="no embedding space 'nowhere'"):
        admin.create_umap("images", "nowhere")
    with pytest.raises(EmbeddingError, match="min_dist must be between 0 and 1"):
        admin.create_umap("images", SPACE, min_dist=3.0)
    with pytest.raises(EmbeddingError, match="no saved map"):
        admin.create_umap("images", SPACE, transform_only=True)
    with pytest.raises(EmbeddingError, match="asset_type must be one of"):
        admin.create_umap("videos", SPACE)
    with pytest.raises(NotImplementedError, match="mask_rcnn"):
        admin.model_inference(ids=["img_1"], model="mask_rcnn", obtain_mask=True)
    with pytest.raises(SceneBaseError, match="not available on this server yet"):
        admin._request("POST", "/v1/models/model_inference/", json={"model": "stardist", "ids": ["img_1"]})
    with pytest.raises(SceneBaseError, match="unknown model 'clip'"):
        admin.model_inference(ids=["img_1"], model="clip", obtain_embeddings=True)
    with pytest.raises(SceneBaseError, match="only computes embeddings"):
        admin.model_inference(ids=["img_1"], model="histogram")
    with pytest.raises(InvalidArgumentsError, match="give ids or a search"):
        admin.model_inference(model="histogram", obtain_embeddings=True)
    # an id that is not an image fails that item only
    no_index = {"similarity_ingest": False}
    job_id = admin.model_inference(ids=["img_1", "ghost"], model="histogram", obtain_embeddings=True,
                                   additional_params=no_index, wait_for_completion=True)  # fmt: skip
    job = admin.get_job(job_id)
    assert job.result["embeddings"] == 1 and job.result["failed"] == ["ghost"] and job.result["index_job_id"] is None
