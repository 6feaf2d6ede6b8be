"""The embedded vector index: one FAISS index per (organization, index_name), persisted in the data folder.

A space below :data:`IVF_MIN_SIZE` vectors is an HNSW graph; from that size on it is an inverted-file index
(``IndexIVFFlat``: k-means lists trained on a sample; a query scans its ``nprobe`` nearest lists exactly), which at
1,000,000 clustered 512-d vectors reached the recall of the HNSW graph in a fraction of its query and build time
(docs/architecture.md, "Vector search"). A write that makes a space cross that size rebuilds it as an IVF, and one
that grows it past the range of its lists retrains it with more (:func:`nlist_for`).

Rows are never reused (HNSW cannot remove a vector; the IVF keeps the same scheme so that both share one code
path): a deleted or replaced key's row becomes a tombstone that every search excludes (``IDSelectorNot``), and the
index is rebuilt from the live rows when tombstones outnumber them. Files per space
(``<root>/<org>/<index_name>/``): ``index-<generation>.faiss`` and ``keys.json`` (generation, dimension, the key of
each row, null for tombstones). A write saves a new generation and replaces ``keys.json`` last (atomic rename), so
a reader sees the old space or the new one, never half of one. Writers in several server processes take an
exclusive ``flock``; each process reloads a space when its generation changed.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import math
import os
import shutil
import threading
from collections.abc import Collection, Iterator, Sequence
from pathlib import Path
from typing import Any

import faiss
import numpy as np

from scenebase.domain.embeddings import normalized
from scenebase.storage.vectors import EXACT_FILTER_LIMIT, Hit, check_matrix

#: HNSW parameters for spaces below IVF_MIN_SIZE (measured on clustered 512-d vectors: docs/architecture.md)
HNSW_M = 16
EF_CONSTRUCTION = 128
EF_SEARCH = 128
#: from this many vectors a space is an IVF index: an HNSW graph's recall at a fixed efSearch falls as it grows
#: (0.985 at 100,000, 0.745 at 1,000,000 with efSearch 128) and its build costs ~10x the IVF's
IVF_MIN_SIZE = 50_000
#: k-means sample per list (FAISS warns below 39; more costs training time for no measurable recall)
TRAIN_POINTS_PER_LIST = 40
#: lists scanned per query; the scan touches nprobe * size / nlist vectors (docs/benchmarks.md: nprobe sweep)
NPROBE = 16


def nlist_for(size: int) -> int:
    """Inverted lists for ``size`` vectors: the power of two nearest 4 * sqrt(size) (FAISS's usual range starts
    there; a power of two so a growing space is retrained only when its size roughly quadruples), at most
    ``size / TRAIN_POINTS_PER_LIST`` so every centroid has enough training points."""
    wanted = 2 ** round(math.log2(4 * math.sqrt(max(size, 1))))
    cap = 2 ** int(math.log2(max(size // TRAIN_POINTS_PER_LIST, 1)))
    return max(1, min(wanted, cap))


def layout_for(size: int) -> int:
    """The index layout for ``size`` vectors: 0 for an HNSW graph, else the IVF's number of lists."""
    return nlist_for(size) if size >= IVF_MIN_SIZE else 0


def _safe(name: str) -> str:
    """A file name for an organization id or index name (both standardized ids; anything else is encoded)."""
    if name and all(c.isalnum() or c in "_-.~@#!" for c in name) and name not in (".", ".."):
        return name
    return "%" + name.encode("utf-8").hex()


class _Space:
    """One loaded space: the graph, the key of each row (None: tombstone) and the row of each live key."""

    def __init__(self, dim: int, index: Any, keys: list[str | None], generation: int) -> None:
        self.dim = dim
        self.index = index
        self.keys = keys
        self.rows = {k: i for i, k in enumerate(keys) if k is not None}
        self.generation = generation
        #: (inode, mtime, size) of the keys.json this state was read from or written to
        self.signature: tuple[int, int, int] | None = None
        self._dead_rows: np.ndarray | None = None

    @property
    def dead(self) -> int:
        return len(self.keys) - len(self.rows)

    def dead_rows(self) -> np.ndarray:
        """The tombstones' row numbers (ascending), remembered until the rows change (a scan of a million keys
        per query would cost more than the query)."""
        # tombstones only accumulate between rebuilds (which call forget_dead_rows): their count tells staleness
        if self._dead_rows is None or len(self._dead_rows) != self.dead:
            self._dead_rows = np.array([i for i, key in enumerate(self.keys) if key is None], dtype=np.int64)
        return self._dead_rows

    def forget_dead_rows(self) -> None:
        self._dead_rows = None

    @property
    def layout(self) -> int:
        """0 for an HNSW graph, else the IVF's number of lists (see :func:`layout_for`)."""
        return int(self.index.nlist) if isinstance(self.index, faiss.IndexIVF) else 0


def _new_index(dim: int, layout: int, vectors: np.ndarray) -> Any:
    """An empty index of ``layout`` (:func:`layout_for`); an IVF is trained on a seeded sample of ``vectors``."""
    if not layout:
        graph = faiss.IndexHNSWFlat(dim, HNSW_M, faiss.METRIC_INNER_PRODUCT)
        graph.hnsw.efConstruction = EF_CONSTRUCTION
        return graph
    quantizer = faiss.IndexFlatIP(dim)
    ivf = faiss.IndexIVFFlat(quantizer, dim, layout, faiss.METRIC_INNER_PRODUCT)
    ivf.cp.spherical = True  # unit centroids: inner-product assignment then agrees with k-means' clusters
    wanted = min(len(vectors), layout * TRAIN_POINTS_PER_LIST)
    sample = np.random.default_rng(0).choice(len(vectors), wanted, replace=False) if wanted < len(vectors) else None
    ivf.train(vectors if sample is None else vectors[np.sort(sample)])
    ivf.make_direct_map()  # reconstruct rows: exact filtered search and rebuilds
    return ivf


class FaissVectorIndex:
    kind = "faiss"

    def __init__(self, root: Path, ef_search: int = EF_SEARCH, nprobe: int = NPROBE) -> None:
        self.root = root
        #: search width of an HNSW space (below IVF_MIN_SIZE)
        self.ef_search = ef_search
        #: lists scanned per query in an IVF space
        self.nprobe = nprobe
        self._spaces: dict[tuple[str, str], _Space] = {}
        self._locks: dict[tuple[str, str], threading.RLock] = {}
        self._guard = threading.Lock()

    # ------------------------------------------------------------------ files and locks

    def _dir(self, org: str, index_name: str) -> Path:
        return self.root / _safe(org) / _safe(index_name)

    @contextlib.contextmanager
    def _locked(self, org: str, index_name: str, exclusive: bool) -> Iterator[Path]:
        with self._guard:
            lock = self._locks.setdefault((org, index_name), threading.RLock())
        folder = self._dir(org, index_name)
        with lock:
            if not exclusive and not folder.exists():
                yield folder
                return
            folder.mkdir(parents=True, exist_ok=True)
            with (folder / "lock").open("a") as fh:
                fcntl.flock(fh, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
                try:
                    yield folder
                finally:
                    fcntl.flock(fh, fcntl.LOCK_UN)

    def _load(self, org: str, index_name: str, folder: Path) -> _Space | None:
        """The space as on disk (reloaded when another process saved a newer generation)."""
        cached = self._spaces.get((org, index_name))
        try:
            stat = (folder / "keys.json").stat()
        except FileNotFoundError:
            self._spaces.pop((org, index_name), None)
            return None
        # every save replaces keys.json by a new file (a new inode): unchanged stat, unchanged space
        signature = (stat.st_ino, stat.st_mtime_ns, stat.st_size)
        if cached is not None and cached.signature == signature:
            return cached
        meta = json.loads((folder / "keys.json").read_text("utf-8"))
        if cached is not None and cached.generation == meta["generation"]:
            cached.signature = signature
            return cached
        index = faiss.read_index(str(folder / f"index-{meta['generation']}.faiss"))
        space = _Space(int(meta["dim"]), index, list(meta["keys"]), int(meta["generation"]))
        space.signature = signature
        self._spaces[(org, index_name)] = space
        return space

    def _save(self, org: str, index_name: str, folder: Path, space: _Space) -> None:
        space.generation += 1
        path = folder / f"index-{space.generation}.faiss"
        faiss.write_index(space.index, str(path) + ".tmp")
        os.replace(str(path) + ".tmp", path)
        meta = {"generation": space.generation, "dim": space.dim, "keys": space.keys}
        (folder / "keys.json.tmp").write_text(json.dumps(meta), "utf-8")
        os.replace(folder / "keys.json.tmp", folder / "keys.json")
        stat = (folder / "keys.json").stat()
        space.signature = (stat.st_ino, stat.st_mtime_ns, stat.st_size)
        for old in folder.glob("index-*.faiss"):
            if old != path:
                old.unlink(missing_ok=True)
        self._spaces[(org, index_name)] = space

    # ------------------------------------------------------------------ writes

    def upsert(self, org: str, index_name: str, keys: Sequence[str], vectors: np.ndarray) -> None:
        if not len(keys):
            return
        with self._locked(org, index_name, exclusive=True) as folder:
            space = self._load(org, index_name, folder)
            arr = normalized(check_matrix(keys, vectors, space.dim if space else None))
            if space is None:
                space = _Space(arr.shape[1], None, [], 0)
            with self._reloaded_on_error(org, index_name):
                for key in keys:
                    row = space.rows.pop(key, None)
                    if row is not None:
                        space.keys[row] = None
                if space.index is None or layout_for(len(space.rows) + len(keys)) > space.layout:
                    # a new space, or one grown out of its layout: rebuilt from its live rows and the new vectors
                    self._rebuild(space, arr, list(keys))
                else:
                    start = len(space.keys)
                    space.index.add(arr)
                    space.keys.extend(keys)
                    space.rows.update({k: start + i for i, k in enumerate(keys)})
                    self._compact_if_needed(space)
                self._save(org, index_name, folder, space)

    def delete(self, org: str, index_name: str, keys: Sequence[str]) -> int:
        with self._locked(org, index_name, exclusive=True) as folder:
            space = self._load(org, index_name, folder)
            if space is None:
                return 0
            removed = 0
            with self._reloaded_on_error(org, index_name):
                for key in keys:
                    row = space.rows.pop(key, None)
                    if row is not None:
                        space.keys[row] = None
                        removed += 1
                if removed:
                    self._compact_if_needed(space)
                    self._save(org, index_name, folder, space)
            return removed

    @contextlib.contextmanager
    def _reloaded_on_error(self, org: str, index_name: str) -> Iterator[None]:
        """A write that fails half-way (a full disk, no memory for a rebuild) leaves the loaded space half-changed:
        forget it, so that the next use reads the files, which still hold the space as it was."""
        try:
            yield
        except BaseException:
            self._spaces.pop((org, index_name), None)
            raise

    def _compact_if_needed(self, space: _Space) -> None:
        """Rebuild the index from the live rows once tombstones outnumber them (searches skip tombstones, but
        they still cost memory and walk time); the layout follows the live size, so a shrunken space may become
        a graph again."""
        if space.dead > max(1000, len(space.rows)):
            self._rebuild(space, np.zeros((0, space.dim), np.float32), [])

    def _rebuild(self, space: _Space, added: np.ndarray, added_keys: list[str]) -> None:
        """Replace the index by a new one holding the live rows (renumbered in order) and then ``added``, in the
        layout for their total size; the space changes only once the new index is complete."""
        live = np.fromiter(space.rows.values(), dtype=np.int64, count=len(space.rows))
        live.sort()
        parts = [space.index.reconstruct_batch(live)] if len(live) else []
        vectors = np.concatenate([*parts, added]) if parts else added
        index = _new_index(space.dim, layout_for(len(vectors)), vectors)
        if len(vectors):
            index.add(vectors)
        space.keys = [*(space.keys[int(r)] for r in live), *added_keys]
        space.rows = {k: i for i, k in enumerate(space.keys) if k is not None}
        space.index = index
        space.forget_dead_rows()

    def drop(self, org: str, index_name: str) -> bool:
        with self._locked(org, index_name, exclusive=True) as folder:
            existed = (folder / "keys.json").exists()
            self._spaces.pop((org, index_name), None)
            shutil.rmtree(folder, ignore_errors=True)
            return existed

    # ------------------------------------------------------------------ reads

    def _space(self, org: str, index_name: str) -> _Space | None:
        with self._locked(org, index_name, exclusive=False) as folder:
            return self._load(org, index_name, folder)

    def count(self, org: str, index_name: str) -> int:
        space = self._space(org, index_name)
        return len(space.rows) if space else 0

    def dim(self, org: str, index_name: str) -> int | None:
        space = self._space(org, index_name)
        return space.dim if space else None

    def contains(self, org: str, index_name: str, keys: Sequence[str]) -> set[str]:
        space = self._space(org, index_name)
        return {k for k in keys if k in space.rows} if space else set()

    def search(
        self,
        org: str,
        index_name: str,
        query: np.ndarray,
        k: int,
        allowed: Collection[str] | None = None,
        exclude: Collection[str] = (),
    ) -> list[Hit]:
        # under the space's lock: FAISS does not support a search while another thread adds to the same graph
        with self._locked(org, index_name, exclusive=False) as folder:
            space = self._load(org, index_name, folder)
            if space is None or k <= 0:
                return []
            return self._search(space, query, k, allowed, exclude)

    def _search(
        self, space: _Space, query: np.ndarray, k: int, allowed: Collection[str] | None, exclude: Collection[str]
    ) -> list[Hit]:
        q = normalized(check_matrix(["query"], np.asarray(query, dtype=np.float32).reshape(1, -1), space.dim))
        excluded = {space.rows[key] for key in exclude if key in space.rows}
        selector: Any
        if allowed is not None:
            rows = np.array(sorted({space.rows[a] for a in allowed if a in space.rows} - excluded), dtype=np.int64)
            if len(rows) <= EXACT_FILTER_LIMIT:
                return self._exact(space, q, k, rows)
            selector = faiss.IDSelectorBatch(rows)
        else:
            blocked = space.dead_rows() if space.dead else np.zeros(0, np.int64)
            if excluded:
                blocked = np.union1d(blocked, np.fromiter(excluded, np.int64, len(excluded)))
            selector = faiss.IDSelectorNot(faiss.IDSelectorBatch(blocked)) if len(blocked) else None
            rows = None
        params: Any
        if space.layout:
            params = faiss.SearchParametersIVF()
            # enough lists to hold ~2k candidates (a large k would otherwise end in the exact fallback over every
            # row), and for a filter keeping a fraction f of the rows 1/f times as many: the scan skips the other
            # rows by id before computing a distance, so the extra lists cost little
            live = max(len(space.rows), 1)
            widen = 1 if rows is None else -(-live // max(len(rows), 1))
            params.nprobe = min(max(self.nprobe, -(-2 * k * space.layout // live)) * widen, space.layout)
        else:
            params = faiss.SearchParametersHNSW()  # type: ignore[attr-defined]
            params.efSearch = max(self.ef_search, k)
        if selector is not None:
            params.sel = selector
        scores, found = space.index.search(q, k, params=params)
        hits = [Hit(str(space.keys[int(r)]), float(s)) for r, s in zip(found[0], scores[0], strict=True) if r >= 0]
        wanted = min(k, len(space.rows) - len(excluded) if rows is None else len(rows))
        if len(hits) < wanted:  # a filtered walk or list scan that ran out of candidates: answer exactly
            if rows is None:
                rows = np.array(sorted(set(space.rows.values()) - excluded), dtype=np.int64)
            return self._exact(space, q, k, rows)
        return hits

    def _exact(self, space: _Space, q: np.ndarray, k: int, rows: np.ndarray) -> list[Hit]:
        if not len(rows):
            return []
        scores = space.index.reconstruct_batch(rows) @ q[0]
        top = np.argsort(-scores, kind="stable")[:k]
        return [Hit(str(space.keys[int(rows[i])]), float(scores[i])) for i in top]
