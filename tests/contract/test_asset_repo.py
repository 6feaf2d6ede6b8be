"""Contract tests for :class:`AssetRepo` (documents + search index) on every catalog backend.

A few hundred generated documents with realistic fields go into two organizations; every search feature is then
checked against a pure-Python reference evaluator written here (the oracle), which reads the documents directly
and knows nothing of ``asset_terms``. The planner has two strategies (drive from a small posting list, or walk
the timestamp/pk index with EXISTS probes); ``DRIVE_LIMIT`` is forced to 0 and to a huge value so that both run
every query, and both must agree with the oracle. A search sorted by time in one organization can also walk a
posting list in time order; the sorted tests cover it.

Nested filters (``nested_filters``) bind their conditions to one element of a list of objects; the oracle
evaluates each condition on each element of the list at the path as if the element were the whole value there.
"""

from __future__ import annotations

import functools
import math
import random
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from scenebase.domain.ids import standardize_id
from scenebase.domain.search import QueryError, parse_query
from scenebase.domain.timeutil import looks_like_iso, to_epoch, to_iso
from scenebase.storage import asset_repo as asset_repo_module
from scenebase.storage.asset_repo import MAX_RESULT_WINDOW, AssetRepo
from scenebase.storage.catalog import Catalog
from scenebase.storage.scope import Scope
from scenebase.storage.tables import asset_element_terms, asset_terms, assets
from servers import PostgresServer

ORG_A = "org_a"
ORG_B = "org_b"
TYPE = "images"
BASE = 1_600_000_000.0
N_A = 220
N_B = 90
SEED = 20240611

SENSORS = ["cam_front", "cam_rear", "lidar_top"]
TAGS = ["day", "night", "urban", "highway", "rain"]
SETS = ["set_a", "set_b", "set_c"]
WEATHER = ["rain", "sun", "snow", "fog"]
LABELS = ["car", "bus", "person", "bike"]
PROVIDERS = ["p1", "p2", "p3"]
ANN_TYPES = ["box", "polygon"]
DEEP = ["x", "y", "z"]

#: top-level keys that describe bytes or ownership and are never searchable (FACTS 1.4)
NOT_SEARCHABLE = {"object_access", "thumbnails", "owner", "id"}
ID_FIELDS = {"id", "sets", "session_uid", "annotations", "asset_id", "annotations_meta.id"}
KNOWN_KEYS = {"filters", "exists_filters", "ranges", "time_range", "source_selected_fields", "nested_filters"}
MAX_TERM = 512

# ------------------------------------------------------------------------------------------------ documents


def _iso(offset_s: float) -> str:
    return to_iso(BASE + offset_s)


def make_doc(rng: random.Random, doc_id: str) -> dict[str, Any]:
    doc: dict[str, Any] = {"id": doc_id, "timestamp": _iso(rng.randrange(0, 150) * 60.5)}  # duplicates on purpose
    if rng.random() < 0.9:
        doc["sensor"] = rng.choice(SENSORS)
    doc["tags"] = rng.sample(TAGS, rng.randrange(0, 3))
    if rng.random() < 0.85:
        doc["sets"] = rng.sample(SETS, rng.randrange(0, 3))
    aux: dict[str, Any] = {}
    if rng.random() < 0.8:
        aux["weather"] = rng.choice(WEATHER)
    r = rng.random()
    if r < 0.6:
        aux["speed"] = round(rng.uniform(0, 40), 1)
    elif r < 0.8:
        aux["speed"] = rng.randrange(0, 40)
    if rng.random() < 0.9:
        aux["labels"] = rng.sample(LABELS, rng.randrange(0, 4))
    r = rng.random()
    if r < 0.7:
        aux["flag"] = rng.random() < 0.5
    elif r < 0.8:
        aux["flag"] = None
    r = rng.random()
    if r < 0.6:
        aux["nested"] = {"deep": rng.choice(DEEP), "level": rng.randrange(0, 5)}
    elif r < 0.7:
        aux["nested"] = {"other": [rng.randrange(0, 3)]}
    elif r < 0.8:
        aux["nested"] = {"deep": None}
    if rng.random() < 0.7:
        aux["recorded_at"] = _iso(rng.randrange(0, 100) * 3600)
    if rng.random() < 0.5:
        aux["grid"] = [rng.randrange(0, 10) for _ in range(rng.randrange(1, 4))]
    if rng.random() < 0.05:
        aux["note"] = "n" * (MAX_TERM + 10)  # stored, never searchable
    doc["aux"] = aux
    if rng.random() < 0.75:
        doc["annotations_meta"] = [
            {"provider": rng.choice(PROVIDERS), "type": rng.choice(ANN_TYPES), "version": rng.randrange(1, 3)}
            for _ in range(rng.randrange(0, 4))
        ]
        for entry in doc["annotations_meta"]:
            if rng.random() < 0.3:
                entry["labels"] = rng.sample(LABELS, rng.randrange(1, 3))  # a list inside an element
    if rng.random() < 0.6:  # a list of objects below a dict: "a car with score > 0.8" is one object
        aux["objects"] = [
            {"label": rng.choice(LABELS), "score": round(rng.random(), 2), "box": {"w": rng.randrange(1, 9)}}
            for _ in range(rng.randrange(0, 4))
        ]
    doc["object_access"] = {"filename": f"{doc_id}.png", "url": f"http://example.com/{doc_id}.png"}
    doc["thumbnails"] = {"small": {"filename": f"{doc_id}_s.png", "resolution": {"height": 8, "width": 8}}}
    return doc


# ------------------------------------------------------------------------------------------------ the oracle


def _is_num(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def _descend(value: Any, parts: list[str]) -> Iterator[Any]:
    """Every value reached by a dotted path; lists are transparent at every level."""
    if isinstance(value, list):
        for item in value:
            yield from _descend(item, parts)
        return
    if not parts:
        yield value
        return
    if isinstance(value, dict) and parts[0] in value:
        yield from _descend(value[parts[0]], parts[1:])


def _scalars(value: Any) -> Iterator[Any]:
    if isinstance(value, list):
        for item in value:
            yield from _scalars(item)
    elif isinstance(value, dict):
        for item in value.values():
            yield from _scalars(item)
    else:
        yield value


def _leaf_keys(leaf: Any) -> tuple[str | None, float | None] | None:
    """What one stored scalar can be matched as: (string form, numeric form), or None when not searchable."""
    if isinstance(leaf, bool):
        return ("true" if leaf else "false"), None
    if _is_num(leaf):
        return (None, float(leaf)) if math.isfinite(leaf) else None
    if isinstance(leaf, str):
        if len(leaf) > MAX_TERM:
            return None
        num = None
        if looks_like_iso(leaf):
            try:
                num = to_epoch(leaf)
            except ValueError:
                num = None
        return leaf, num
    return None


def leaf_values(doc: dict[str, Any], path: str) -> list[tuple[str | None, float | None]]:
    parts = path.split(".")
    if parts[0] in NOT_SEARCHABLE:
        return []
    out = []
    for v in _descend(doc, parts):
        if isinstance(v, dict):
            continue
        keys = _leaf_keys(v)
        if keys is not None:
            out.append(keys)
    return out


def o_exists(doc: dict[str, Any], path: str) -> bool:
    if path in ("id", "timestamp"):
        return True
    parts = path.split(".")
    if parts[0] in NOT_SEARCHABLE:
        return False
    return any(_leaf_keys(s) is not None for v in _descend(doc, parts) for s in _scalars(v))


def o_values(doc: dict[str, Any], path: str, values: list[Any]) -> bool:
    if path == "id":
        return doc["id"] in {standardize_id(v) for v in values if isinstance(v, str)}
    if path == "timestamp":
        return to_epoch(doc["timestamp"]) in {to_epoch(v) for v in values}
    strings = set()
    numbers = set()
    for v in values:
        if isinstance(v, bool):
            strings.add("true" if v else "false")
        elif _is_num(v):
            numbers.add(float(v))
        else:
            strings.add(standardize_id(v) if path in ID_FIELDS else v)
    return any(s in strings or (n is not None and n in numbers) for s, n in leaf_values(doc, path))


def o_range(doc: dict[str, Any], path: str, low: Any, high: Any) -> bool:
    lo = None if low is None else to_epoch(low)
    hi = None if high is None else to_epoch(high)

    def inside(n: float) -> bool:
        return (lo is None or n >= lo) and (hi is None or n <= hi)

    if path == "timestamp":
        return inside(to_epoch(doc["timestamp"]))
    return any(n is not None and inside(n) for _, n in leaf_values(doc, path))


def o_elements(doc: dict[str, Any], path: str) -> list[dict[str, Any]]:
    """The objects of the list at ``path`` (reached through objects only), each wrapped back into the path so
    the flat evaluators see it as the only value there."""
    value: Any = doc
    for part in path.split("."):
        if not isinstance(value, dict) or part not in value:
            return []
        value = value[part]
    if not isinstance(value, list):
        return []
    out = []
    for element in value:
        if not isinstance(element, dict):
            continue
        wrapped: Any = element
        for part in reversed(path.split(".")):
            wrapped = {part: wrapped}
        out.append(wrapped)
    return out


def o_nested(doc: dict[str, Any], nested: dict[str, Any]) -> bool:
    path = nested["path"]

    def full(f: str) -> str:
        return f if f.startswith(path + ".") else f"{path}.{f}"

    def holds(element: dict[str, Any]) -> bool:
        for f in nested.get("filters", []):
            vals = f["values"] if isinstance(f["values"], list) else [f["values"]]
            if o_values(element, full(f["field"]), vals) == f.get("filter_out", False):
                return False
        for r in nested.get("ranges", []):
            if o_range(element, full(r["field"]), r.get("min"), r.get("max")) == r.get("filter_out", False):
                return False
        for e in nested.get("exists_filters", []):
            if o_exists(element, full(e["field"])) == e.get("filter_out", False):
                return False
        return True

    found = any(holds(e) for e in o_elements(doc, path))
    return found != nested.get("filter_out", False)


def o_matches(doc: dict[str, Any], query: dict[str, Any]) -> bool:
    for key, vals in query.items():
        if key not in KNOWN_KEYS and not o_values(doc, key, vals if isinstance(vals, list) else [vals]):
            return False
    for f in query.get("filters", []):
        vals = f["values"] if isinstance(f["values"], list) else [f["values"]]
        if o_values(doc, f["field"], vals) == f.get("filter_out", False):
            return False
    for e in query.get("exists_filters", []):
        if o_exists(doc, e["field"]) == e.get("filter_out", False):
            return False
    for r in query.get("ranges", []):
        if o_range(doc, r["field"], r.get("min"), r.get("max")) == r.get("filter_out", False):
            return False
    for n in query.get("nested_filters", []):
        if not o_nested(doc, n):
            return False
    tr = query.get("time_range")
    return not tr or o_range(doc, "timestamp", tr.get("start_time"), tr.get("end_time"))


@dataclass
class Stored:
    pk_rank: int  # insertion order == primary-key order
    owner: str
    doc: dict[str, Any]

    @property
    def key(self) -> tuple[str, str]:
        return self.owner, self.doc["id"]


def _cmp(a: Any, b: Any) -> int:
    return (a > b) - (a < b)


def o_sort(rows: list[Stored], sort_field: str | None, sort_order: str | None) -> list[Stored]:
    """The documented order: the sort key, then insertion order, both in the requested direction; documents
    without the sort field come last in either direction; a multi-valued field sorts by its smallest value."""
    desc = (sort_order or "asc").lower() == "desc"
    sign = -1 if desc else 1

    def key_of(s: Stored) -> tuple[Any, ...]:
        if sort_field in (None, ""):
            return ()
        if sort_field == "timestamp":
            return (to_epoch(s.doc["timestamp"]),)
        if sort_field == "id":
            return (s.doc["id"],)
        leaves = leaf_values(s.doc, sort_field)
        nums = [n for t, n in leaves if n is not None]
        strs = [t for t, n in leaves if t is not None]
        return (min(nums) if nums else None, min(strs) if strs else None)

    def compare(a: Stored, b: Stored) -> int:
        for x, y in zip(key_of(a), key_of(b), strict=True):
            if x is None or y is None:
                if x is None and y is None:
                    continue
                return 1 if x is None else -1  # missing last, whatever the direction
            c = _cmp(x, y)
            if c:
                return sign * c
        return sign * _cmp(a.pk_rank, b.pk_rank)

    return sorted(rows, key=functools.cmp_to_key(compare))


# ------------------------------------------------------------------------------------------------ fixtures


def _new_catalog(request: pytest.FixtureRequest, backend: str, path: Path) -> tuple[Catalog, Callable[[], None]]:
    if backend == "sqlite":
        cat = Catalog(f"sqlite:///{path / 'catalog.db'}")
        return cat, cat.dispose
    server: PostgresServer = request.getfixturevalue("postgres_server")
    name = f"t_{uuid.uuid4().hex}"
    cat = Catalog(server.create_database(name))

    def cleanup() -> None:
        cat.dispose()
        server.drop_database(name)

    return cat, cleanup


@dataclass
class World:
    repo: AssetRepo
    catalog: Catalog
    rows: list[Stored]

    def visible(self, scope: Scope) -> list[Stored]:
        return [r for r in self.rows if r.owner in scope.readable]


@pytest.fixture(
    scope="module",
    params=[
        pytest.param("sqlite", id="sqlite"),
        pytest.param("postgres", id="postgres", marks=pytest.mark.postgres),
    ],
)
def world(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    """Two organizations' documents, written once per backend; tests that write use other asset types."""
    catalog, cleanup = _new_catalog(request, request.param, tmp_path_factory.mktemp("assets"))
    try:
        catalog.migrate()
        repo = AssetRepo(catalog, nested={TYPE: frozenset({"aux.objects"})})  # a declared list of objects in aux
        rng = random.Random(SEED)
        # org B reuses some of org A's ids: ids are unique per organization only
        plan = [(ORG_A, f"img_{i:04d}") for i in range(N_A)] + [
            (ORG_B, f"img_{i:04d}" if i < 30 else f"b_img_{i:04d}") for i in range(N_B)
        ]
        rng.shuffle(plan)
        rows: list[Stored] = []
        for start in range(0, len(plan), 37):  # several transactions, interleaving the organizations
            chunk = plan[start : start + 37]
            for owner in (ORG_A, ORG_B):
                docs = [make_doc(rng, doc_id) for o, doc_id in chunk if o == owner]
                if not docs:
                    continue
                stored = repo.upsert(Scope.of(owner), TYPE, docs)
                for d in stored:
                    rows.append(Stored(len(rows), owner, d))
        with catalog.read() as conn:
            in_db = [(r.owner, r.id) for r in conn.execute(select(assets.c.owner, assets.c.id).order_by(assets.c.pk))]
        assert in_db == [r.key for r in rows], "primary keys follow insertion order"
        yield World(repo, catalog, rows)
    finally:
        cleanup()


@pytest.fixture(params=["walk", "drive"])
def plan(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Force one planner strategy: DRIVE_LIMIT 0 walks the index, a huge one always drives from postings."""
    monkeypatch.setattr(asset_repo_module, "DRIVE_LIMIT", 0 if request.param == "walk" else 10**9)
    return str(request.param)


@pytest.fixture
def fresh(world: World) -> tuple[AssetRepo, str]:
    """The world's repository with an organization of its own for tests that write."""
    return world.repo, f"org_{uuid.uuid4().hex[:12]}"


SCOPES = {
    "a": Scope.of(ORG_A),
    "b": Scope.of(ORG_B),
    "a+b": Scope.of(ORG_A, also_readable={ORG_B}),
}

# ------------------------------------------------------------------------------------------------ random queries


def _pick_values(rng: random.Random, pool: list[Any], extra: Any) -> list[Any]:
    vals = rng.sample(pool, rng.randrange(1, min(3, len(pool)) + 1))
    if rng.random() < 0.15:
        vals.append(extra)
    return vals


def random_nested(rng: random.Random) -> dict[str, Any]:
    """Two or three conditions on one element of annotations_meta or aux.objects; some negated, one positive."""
    filters: list[dict[str, Any]] = []
    ranges: list[dict[str, Any]] = []
    exists: list[dict[str, Any]] = []
    if rng.random() < 0.6:
        path = "annotations_meta"
        options: list[Callable[[bool], None]] = [
            lambda neg: filters.append({"field": "provider", "values": _pick_values(rng, PROVIDERS, "p9"),
                                        "filter_out": neg}),
            lambda neg: filters.append({"field": "annotations_meta.type", "values": [rng.choice(ANN_TYPES)],
                                        "filter_out": neg}),
            lambda neg: ranges.append({"field": "version", "min": rng.randrange(1, 3), "filter_out": neg}),
            lambda neg: filters.append({"field": "labels", "values": [rng.choice(LABELS)], "filter_out": neg}),
            lambda neg: exists.append({"field": "labels", "filter_out": neg}),
        ]  # fmt: skip
    else:
        path = "aux.objects"
        options = [
            lambda neg: filters.append({"field": "label", "values": _pick_values(rng, LABELS, "zebra"),
                                        "filter_out": neg}),
            lambda neg: ranges.append({"field": "score", "min": round(rng.random(), 2), "filter_out": neg}),
            lambda neg: ranges.append({"field": "aux.objects.box.w", "max": rng.randrange(1, 9), "filter_out": neg}),
            lambda neg: exists.append({"field": "box", "filter_out": neg}),
        ]  # fmt: skip
    chosen = rng.sample(options, rng.randrange(2, 4))
    for i, add in enumerate(chosen):
        add(i > 0 and rng.random() < 0.3)  # the first condition stays positive
    nested: dict[str, Any] = {"path": path, "filter_out": rng.random() < 0.2}
    for key, items in (("filters", filters), ("ranges", ranges), ("exists_filters", exists)):
        if items:
            nested[key] = items
    return nested


def random_clause(rng: random.Random, rows: list[Stored]) -> tuple[str, Any]:
    neg = rng.random() < 0.3
    kind = rng.randrange(0, 19)
    if kind in (17, 18):
        return "nested_filters", random_nested(rng)
    if kind == 0:
        return "filters", {"field": "sensor", "values": _pick_values(rng, SENSORS, "cam_none"), "filter_out": neg}
    if kind == 1:
        return "filters", {"field": "tags", "values": _pick_values(rng, TAGS, "nope"), "filter_out": neg}
    if kind == 2:
        vals = _pick_values(rng, SETS, "set_z")
        if rng.random() < 0.3:
            vals = [v.upper() for v in vals]  # set ids are standardized like ids
        return "filters", {"field": "sets", "values": vals, "filter_out": neg}
    if kind == 3:
        return "filters", {"field": "aux.weather", "values": _pick_values(rng, WEATHER, "hail"), "filter_out": neg}
    if kind == 4:
        return "filters", {"field": "aux.labels", "values": _pick_values(rng, LABELS, "truck"), "filter_out": neg}
    if kind == 5:
        return "filters", {"field": "aux.flag", "values": [rng.random() < 0.5], "filter_out": neg}
    if kind == 6:
        field = rng.choice(["annotations_meta.provider", "annotations_meta.type"])
        pool = PROVIDERS if field.endswith("provider") else ANN_TYPES
        return "filters", {"field": field, "values": _pick_values(rng, pool, "zz"), "filter_out": neg}
    if kind == 7:
        return "filters", {"field": "aux.nested.deep", "values": _pick_values(rng, DEEP, "w"), "filter_out": neg}
    if kind == 8:
        speeds = sorted({d for r in rows for _, d in leaf_values(r.doc, "aux.speed") if d is not None})
        return "filters", {"field": "aux.speed", "values": _pick_values(rng, speeds, 1234.5), "filter_out": neg}
    if kind == 9:
        ids = [r.doc["id"] for r in rng.sample(rows, 5)]
        vals = rng.sample(ids, rng.randrange(1, 5)) + (["IMG_0001"] if rng.random() < 0.3 else [])
        return "filters", {"field": "id", "values": vals, "filter_out": neg}
    if kind == 10:
        ts = [r.doc["timestamp"] for r in rng.sample(rows, 3)]
        return "filters", {"field": "timestamp", "values": ts, "filter_out": neg}
    if kind == 11:
        field = rng.choice(
            [
                "aux.nested",
                "aux.nested.deep",
                "aux.flag",
                "aux.speed",
                "aux.labels",
                "annotations_meta",
                "annotations_meta.provider",
                "sensor",
                "aux.note",
                "aux.missing",
                "sets",
                "timestamp",
                "id",
                "object_access",
            ]
        )
        return "exists_filters", {"field": field, "filter_out": neg}
    if kind == 12:
        lo = round(rng.uniform(-5, 40), 1)
        r: dict[str, Any] = {"field": "aux.speed", "filter_out": neg}
        shape = rng.randrange(3)
        if shape in (0, 2):
            r["min"] = lo
        if shape in (1, 2):
            r["max"] = lo + round(rng.uniform(0, 20), 1) if shape == 2 else lo
        return "ranges", r
    if kind == 13:
        a, b = sorted([rng.randrange(0, 150) * 60.5, rng.randrange(0, 150) * 60.5])
        return "ranges", {"field": "timestamp", "min": _iso(a), "max": _iso(b), "filter_out": neg}
    if kind == 14:
        a, b = sorted([rng.randrange(0, 100) * 3600, rng.randrange(0, 100) * 3600])
        return "ranges", {"field": "aux.recorded_at", "min": _iso(a), "max": _iso(b), "filter_out": neg}
    if kind == 15:
        lo, hi = sorted([rng.randrange(0, 10), rng.randrange(0, 10)])
        return "ranges", {"field": "aux.grid", "min": lo, "max": hi, "filter_out": neg}
    a, b = sorted([rng.randrange(0, 150) * 60.5, rng.randrange(0, 150) * 60.5])
    return "time_range", {"start_time": _iso(a), "end_time": _iso(b)}


def random_query(rng: random.Random, rows: list[Stored]) -> dict[str, Any]:
    q: dict[str, Any] = {}
    for _ in range(rng.randrange(1, 4)):
        key, clause = random_clause(rng, rows)
        if key == "time_range":
            q[key] = clause
        elif key == "filters" and rng.random() < 0.2 and not clause["filter_out"] and clause["field"] not in q:
            q[clause["field"]] = clause["values"]  # the {field: [values]} shorthand
        else:
            q.setdefault(key, []).append(clause)
    return q


# ------------------------------------------------------------------------------------------------ search


@pytest.mark.parametrize("scope_name", list(SCOPES))
def test_random_queries_match_the_oracle_in_both_plans(world: World, plan: str, scope_name: str) -> None:
    scope = SCOPES[scope_name]
    visible = world.visible(scope)
    rng = random.Random(f"{SEED}-{scope_name}")
    nonempty = 0
    for _ in range(120):
        raw = random_query(rng, visible)
        query = parse_query(raw)
        expected = [r.key for r in visible if o_matches(r.doc, raw)]
        nonempty += bool(expected)
        got = world.repo.search(scope, TYPE, query, size=MAX_RESULT_WINDOW)
        assert [(d["owner"], d["id"]) for d in got] == expected, (plan, raw)
        assert world.repo.count(scope, TYPE, query) == len(expected), (plan, raw)
        ids = world.repo.search(scope, TYPE, query, size=MAX_RESULT_WINDOW, ids_only=True)
        assert ids == [k[1] for k in expected], (plan, raw)
    assert nonempty > 60  # the generator produces selective but not empty queries


@pytest.mark.parametrize("scope_name", list(SCOPES))
def test_nested_filters_match_the_oracle_and_differ_from_flat_ones(world: World, plan: str, scope_name: str) -> None:
    scope = SCOPES[scope_name]
    visible = world.visible(scope)
    rng = random.Random(f"{SEED}-nested-{scope_name}")
    nonempty = differs = 0
    for _ in range(80):
        nested = random_nested(rng)
        raw = {"nested_filters": [nested]}
        expected = [r.key for r in visible if o_matches(r.doc, raw)]
        got = world.repo.search(scope, TYPE, parse_query(raw), size=MAX_RESULT_WINDOW)
        assert [(d["owner"], d["id"]) for d in got] == expected, (plan, raw)
        assert world.repo.count(scope, TYPE, parse_query(raw)) == len(expected), (plan, raw)
        nonempty += bool(expected)
        # the same conditions as plain filters match any element each
        full = [{**f, "field": f["field"] if "." in f["field"] else f"{nested['path']}.{f['field']}"}
                for f in nested.get("filters", [])]  # fmt: skip
        flat = [r.key for r in visible if o_matches(r.doc, {"filters": full})] if full else expected
        differs += flat != expected and not nested["filter_out"]
    assert nonempty > 30 and differs > 5, (nonempty, differs)


def test_only_declared_lists_are_indexed_by_element(world: World) -> None:
    """Element positions cost index rows: lists of objects are numbered only where declared (annotations by
    default, SCENEBASE_NESTED_FIELDS for others); a nested filter elsewhere is an error, not a silent no-match."""
    repo = AssetRepo(world.catalog)  # nothing declared beyond the defaults
    scope = Scope.of(f"org_{uuid.uuid4().hex[:12]}")
    repo.upsert(scope, "images", [{"id": "x", "timestamp": _iso(1),
                                   "annotations_meta": [{"provider": "p1"}, {"provider": "p2"}],
                                   "aux": {"objects": [{"label": "car"}, {"label": "bus"}]}}])  # fmt: skip
    with repo.catalog.read() as conn:
        fields = set(conn.execute(select(asset_element_terms.c.field).where(
            asset_element_terms.c.owner == scope.org_id)).scalars())  # fmt: skip
    assert fields == {"annotations_meta.provider"}
    undeclared = {"path": "aux.objects", "filters": [{"field": "label", "values": ["car"]}]}
    with pytest.raises(QueryError, match=r"'aux.objects' is not a nested field of images.*SCENEBASE_NESTED_FIELDS"):
        repo.search(scope, "images", parse_query({"nested_filters": [undeclared]}))
    assert repo.search(scope, "images", parse_query({"aux.objects.label": ["car"]}), ids_only=True) == ["x"]


def test_nested_filters_bind_conditions_to_one_element(fresh: tuple[AssetRepo, str], plan: str) -> None:
    repo, org = fresh
    scope = Scope.of(org)
    docs = [
        {"id": "mixed", "timestamp": _iso(1), "annotations_meta": [
            {"provider": "p1", "type": "box"}, {"provider": "p2", "type": "polygon"}]},
        {"id": "both", "timestamp": _iso(2), "annotations_meta": [{"provider": "p1", "type": "polygon"}]},
        {"id": "cars", "timestamp": _iso(3), "aux": {"objects": [
            {"label": "car", "score": 0.5}, {"label": "bus", "score": 0.9}]}},
        {"id": "sure_car", "timestamp": _iso(4), "aux": {"objects": [{"label": "car", "score": 0.95}]}},
        {"id": "one_object", "timestamp": _iso(5), "aux": {"objects": {"label": "car", "score": 0.99}}},
    ]  # fmt: skip
    repo.upsert(scope, "images", docs)

    def find(raw: dict[str, Any]) -> list[str]:
        return repo.search(scope, "images", parse_query(raw), ids_only=True, sort_field="timestamp")

    p1_polygon = {"path": "annotations_meta", "filters": [{"field": "provider", "values": ["p1"]},
                                                          {"field": "type", "values": ["polygon"]}]}  # fmt: skip
    assert find({"nested_filters": [p1_polygon]}) == ["both"]
    flat = [{"field": "annotations_meta.provider", "values": ["p1"]},
            {"field": "annotations_meta.type", "values": ["polygon"]}]  # fmt: skip
    assert find({"filters": flat}) == ["mixed", "both"]  # plain filters: each may hold for another element
    assert find({"nested_filters": [{**p1_polygon, "filter_out": True}]}) == ["mixed", "cars", "sure_car",
                                                                               "one_object"]  # fmt: skip
    not_polygon = {
        "path": "annotations_meta",
        "filters": [
            {"field": "provider", "values": ["p1"]},
            {"field": "type", "values": ["polygon"], "filter_out": True},
        ],
    }
    assert find({"nested_filters": [not_polygon]}) == ["mixed"]
    sure_car = {"path": "aux.objects", "filters": [{"field": "label", "values": ["car"]}],
                "ranges": [{"field": "score", "min": 0.8}]}  # fmt: skip
    # a single object is not a list of objects: nested filters bind elements of lists only
    assert find({"nested_filters": [sure_car]}) == ["sure_car"]
    # writes keep the element index current
    repo.upsert(scope, "images", [{"id": "cars", "aux": {"objects": [{"label": "car", "score": 0.85}]}}],
                mode="merge_replace_lists")  # fmt: skip
    assert find({"nested_filters": [sure_car]}) == ["cars", "sure_car"]
    repo.delete(scope, "images", ["sure_car"])
    assert find({"nested_filters": [sure_car]}) == ["cars"]
    with repo.catalog.read() as conn:
        left = conn.execute(select(func.count()).select_from(asset_element_terms).where(
            asset_element_terms.c.owner == org)).scalar()  # fmt: skip
    assert left == 4 + 2 + 2  # element terms: mixed 2 elements x 2 fields, both 1 x 2, cars 1 x 2 (one_object none)
    summary = repo.summary(scope, "images", parse_query({"nested_filters": [p1_polygon]}), ["annotations_meta.type"])
    assert summary["total"] == 1


def test_both_plans_agree_on_every_generated_query(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    """Direct A/B comparison of the two strategies, including limits in between (small postings drive)."""
    scope = SCOPES["a+b"]
    rng = random.Random(f"{SEED}-ab")
    for _ in range(60):
        query = parse_query(random_query(rng, world.visible(scope)))
        results = []
        for limit in (0, 5, 40, 10**9):
            monkeypatch.setattr(asset_repo_module, "DRIVE_LIMIT", limit)
            results.append(world.repo.search(scope, TYPE, query, size=500, sort_field="timestamp", sort_order="desc"))
        assert all(r == results[0] for r in results[1:])


def test_empty_query_returns_everything_in_pk_order(world: World, plan: str) -> None:
    for scope in SCOPES.values():
        expected = [r.key for r in world.visible(scope)]
        got = world.repo.search(scope, TYPE, parse_query(None), size=MAX_RESULT_WINDOW)
        assert [(d["owner"], d["id"]) for d in got] == expected
        assert world.repo.count(scope, TYPE, parse_query({})) == len(expected)


def test_documents_come_back_as_stored(world: World) -> None:
    scope = SCOPES["a"]
    by_id = {r.doc["id"]: r.doc for r in world.visible(scope)}
    got = world.repo.search(scope, TYPE, parse_query({"id": ["img_0003", "img_0004"]}))
    assert got == [by_id["img_0003"], by_id["img_0004"]]
    assert all(d["owner"] == ORG_A for d in got)


def test_values_within_a_filter_are_ored_and_filters_anded(world: World, plan: str) -> None:
    scope = SCOPES["a"]
    rows = world.visible(scope)

    def ids(q: dict[str, Any]) -> set[str]:
        return set(world.repo.search(scope, TYPE, parse_query(q), size=MAX_RESULT_WINDOW, ids_only=True))

    rain = ids({"aux.weather": ["rain"]})
    snow = ids({"aux.weather": ["snow"]})
    assert rain and snow
    assert ids({"aux.weather": ["rain", "snow"]}) == rain | snow
    front = ids({"sensor": ["cam_front"]})
    both = ids(
        {"filters": [{"field": "aux.weather", "values": ["rain"]}, {"field": "sensor", "values": ["cam_front"]}]}
    )
    assert both == rain & front
    not_rain = ids({"filters": [{"field": "aux.weather", "values": ["rain"], "filter_out": True}]})
    assert not_rain == {r.doc["id"] for r in rows} - rain
    # a list field matches when any element matches; nested lists of dicts too
    car = ids({"aux.labels": ["car"]})
    assert car == {r.doc["id"] for r in rows if "car" in r.doc["aux"].get("labels", [])}
    p2 = ids({"annotations_meta.provider": ["p2"]})
    assert p2 == {r.doc["id"] for r in rows if any(a["provider"] == "p2" for a in r.doc.get("annotations_meta", []))}
    # booleans match as true/false, whether given as JSON booleans or strings
    assert ids({"aux.flag": [True]}) == ids({"aux.flag": ["true"]}) != set()
    # long strings and byte references are stored but never searchable
    noted = [r for r in rows if "note" in r.doc["aux"]]
    assert noted
    assert ids({"exists_filters": [{"field": "aux.note"}]}) == set()
    assert ids({"object_access.filename": [f"{rows[0].doc['id']}.png"]}) == set()


@pytest.mark.parametrize("scope_name", ["a", "a+b"])
@pytest.mark.parametrize(
    "sort_field", [None, "timestamp", "id", "aux.speed", "sensor", "aux.recorded_at", "annotations_meta.version"]
)
@pytest.mark.parametrize("sort_order", ["asc", "desc"])
def test_sorting_and_offset_paging_follow_the_oracle(
    world: World, plan: str, scope_name: str, sort_field: str | None, sort_order: str
) -> None:
    scope = SCOPES[scope_name]
    visible = world.visible(scope)
    rng = random.Random(f"{SEED}-{sort_field}-{sort_order}-{scope_name}")
    queries: list[dict[str, Any]] = [{}] + [random_query(rng, visible) for _ in range(4)]
    for raw in queries:
        query = parse_query(raw)
        expected = [r.key for r in o_sort([r for r in visible if o_matches(r.doc, raw)], sort_field, sort_order)]
        size = rng.randrange(5, 40)
        pages: list[tuple[str, str]] = []
        offset = 0
        while True:
            page = world.repo.search(scope, TYPE, query, size, offset, sort_field, sort_order)
            pages.extend((d["owner"], d["id"]) for d in page)
            if len(page) < size:
                break
            offset += size
        assert pages == expected, (raw, sort_field, sort_order)
        # a random window equals the oracle's slice
        off = rng.randrange(0, max(1, len(expected)))
        window = world.repo.search(scope, TYPE, query, 7, off, sort_field, sort_order)
        assert [(d["owner"], d["id"]) for d in window] == expected[off : off + 7]


ONE_STRING = {"sensor": SENSORS, "tags": TAGS, "aux.weather": WEATHER, "sets": SETS, "aux.labels": LABELS}


@pytest.mark.parametrize("sort_order", ["desc", "asc"])
@pytest.mark.parametrize("scope_name", ["a", "b"])
def test_one_string_filters_sorted_by_time_leapfrog_as_the_oracle_says(
    world: World, scope_name: str, sort_order: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two or three one-string filters sorted by time in one organization: SQLite intersects their posting lists
    by leapfrogging (``storage/leapfrog.py``); PostgreSQL walks one and probes the others. Every page and window
    equals the oracle's."""
    monkeypatch.setattr(asset_repo_module, "DRIVE_LIMIT", 0)  # no list is small enough to drive
    calls: list[int] = []
    real = asset_repo_module.leapfrog_query

    def counted(lists: Any, *args: Any) -> Any:
        calls.append(len(lists))
        return real(lists, *args)

    monkeypatch.setattr(asset_repo_module, "leapfrog_query", counted)
    scope = SCOPES[scope_name]
    visible = world.visible(scope)
    rng = random.Random(f"{SEED}-leapfrog-{scope_name}-{sort_order}")
    nonempty = 0
    for _ in range(40):
        fields = rng.sample(sorted(ONE_STRING), rng.randrange(2, 4))
        raw = {"filters": [{"field": f, "values": [rng.choice(ONE_STRING[f])]} for f in fields]}
        query = parse_query(raw)
        expected = [r.key for r in o_sort([r for r in visible if o_matches(r.doc, raw)], "timestamp", sort_order)]
        nonempty += bool(expected)
        got = world.repo.search(scope, TYPE, query, MAX_RESULT_WINDOW, 0, "timestamp", sort_order)
        assert [(d["owner"], d["id"]) for d in got] == expected, raw
        size = rng.randrange(1, 6)
        for off in range(0, len(expected) + 1, size):
            ids = world.repo.search(scope, TYPE, query, size, off, "timestamp", sort_order, ids_only=True)
            assert ids == [k[1] for k in expected[off : off + size]], (raw, off)
    assert nonempty > 20
    assert bool(calls) == (world.catalog.dialect == "sqlite")


@pytest.mark.parametrize("sort_order", ["desc", "asc"])
def test_leapfrog_keeps_every_asset_of_one_time(
    fresh: tuple[AssetRepo, str], sort_order: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Hits that share a timestamp (and neighbouring keys) are all found, in key order; runs of non-matching
    assets between them are skipped."""
    monkeypatch.setattr(asset_repo_module, "DRIVE_LIMIT", 0)
    repo, org = fresh
    scope = Scope.of(org)
    docs = [{"id": f"d{i:03d}", "timestamp": _iso(60.0 * (i // 4)), "sensor": "cam",
             "tags": ["night"] if i % 7 < 5 else ["day"]} for i in range(60)]  # fmt: skip
    repo.upsert(scope, "images", docs)
    query = parse_query({"sensor": ["cam"], "tags": ["night"]})
    night = [d for d in docs if "night" in d["tags"]]  # inserted in (time, id) order: their keys follow it
    expected = [d["id"] for d in (reversed(night) if sort_order == "desc" else night)]
    got = [d["id"] for d in repo.search(scope, "images", query, 100, 0, "timestamp", sort_order)]
    assert got == expected
    assert repo.search(scope, "images", query, 3, 5, "timestamp", sort_order, ids_only=True) == expected[5:8]


def test_sort_order_is_validated(world: World) -> None:
    with pytest.raises(QueryError, match="sort_order"):
        world.repo.search(SCOPES["a"], TYPE, parse_query(None), sort_field="timestamp", sort_order="up")
    upper = world.repo.search(SCOPES["a"], TYPE, parse_query(None), sort_field="timestamp", sort_order="DESC")
    lower = world.repo.search(SCOPES["a"], TYPE, parse_query(None), sort_field="timestamp", sort_order="desc")
    assert upper == lower


@pytest.mark.parametrize("scope_name", list(SCOPES))
def test_scan_returns_every_match_once_in_pk_order(world: World, plan: str, scope_name: str) -> None:
    scope = SCOPES[scope_name]
    visible = world.visible(scope)
    rng = random.Random(f"{SEED}-scan-{scope_name}")
    for raw in [{}] + [random_query(rng, visible) for _ in range(15)]:
        query = parse_query(raw)
        expected = [r.key for r in visible if o_matches(r.doc, raw)]
        batches = list(world.repo.scan(scope, TYPE, query, batch=7))
        assert all(1 <= len(b) <= 7 for b in batches)
        assert all(len(b) == 7 for b in batches[:-1])
        got = [(d["owner"], d["id"]) for b in batches for d in b]
        assert got == expected, raw
        ids = [i for b in world.repo.scan(scope, TYPE, query, ids_only=True, batch=7) for i in b]
        assert ids == [k[1] for k in expected]


def test_scan_of_a_batch_multiple_ends_cleanly(world: World) -> None:
    scope = SCOPES["b"]
    n = len(world.visible(scope))
    batches = list(world.repo.scan(scope, TYPE, parse_query(None), batch=n))
    assert [len(b) for b in batches] == [n]
    assert list(world.repo.scan(scope, TYPE, parse_query({"sensor": ["nothing"]}), batch=7)) == []


def test_result_window_is_capped_for_plain_search(world: World) -> None:
    scope = SCOPES["a"]
    q = parse_query(None)
    assert len(world.repo.search(scope, TYPE, q, size=MAX_RESULT_WINDOW)) == N_A
    world.repo.search(scope, TYPE, q, size=10, offset=MAX_RESULT_WINDOW - 10)  # exactly at the limit is fine
    for size, offset in [(MAX_RESULT_WINDOW + 1, 0), (5000, 5001), (1, MAX_RESULT_WINDOW)]:
        with pytest.raises(QueryError, match="10000") as info:
            world.repo.search(scope, TYPE, q, size=size, offset=offset)
        assert "scan" in str(info.value)
    with pytest.raises(QueryError):
        world.repo.search(scope, TYPE, q, size=-1)
    # scans have no window
    assert sum(len(b) for b in world.repo.scan(scope, TYPE, q)) == N_A


def test_range_on_id_is_a_query_error(world: World) -> None:
    with pytest.raises(QueryError, match="id"):
        world.repo.search(SCOPES["a"], TYPE, parse_query({"ranges": [{"field": "id", "min": 1}]}))


# ------------------------------------------------------------------------------------------------ summaries


def o_summary(rows: list[Stored], raw: dict[str, Any] | None, dims: list[str]) -> tuple[int, dict[str, Counter]]:
    hits = [r for r in rows if o_matches(r.doc, raw or {})]
    out: dict[str, Counter] = {}
    for dim in dims:
        counter: Counter = Counter()
        for r in hits:
            keys = {s if s is not None else n for s, n in leaf_values(r.doc, dim)}
            counter.update(keys)
        out[dim] = counter
    return len(hits), out


@pytest.mark.parametrize("scope_name", list(SCOPES))
def test_summary_totals_and_buckets_follow_the_oracle(world: World, plan: str, scope_name: str) -> None:
    scope = SCOPES[scope_name]
    visible = world.visible(scope)
    rng = random.Random(f"{SEED}-summary-{scope_name}")
    dims = ["sensor", "sets", "tags", "aux.weather", "aux.labels", "aux.flag", "aux.nested.deep", "aux.speed"]
    nested = ["annotations_meta.provider", "annotations_meta.type"]
    for raw in [None, {"aux.weather": ["rain"]}] + [random_query(rng, visible) for _ in range(12)]:
        summary = world.repo.summary(scope, TYPE, parse_query(raw), dims + nested, max_buckets=1000)
        total, expected = o_summary(visible, raw, dims + nested)
        assert summary["total"] == total, raw
        assert [a["dimension"] for a in summary["aggregations"]] == dims + nested
        for agg in summary["aggregations"]:
            buckets = agg["buckets"]
            counts = [b["doc_count"] for b in buckets]
            assert counts == sorted(counts, reverse=True), agg
            assert {b["key"]: b["doc_count"] for b in buckets} == dict(expected[agg["dimension"]]), (raw, agg)
            assert len(buckets) == len(expected[agg["dimension"]])


def test_summary_keys_and_bucket_limit(world: World) -> None:
    scope = SCOPES["a"]
    summary = world.repo.summary(scope, TYPE, parse_query(None), ["aux.flag", "aux.nested.level", "sensor"], 2)
    flag, level, sensor = summary["aggregations"]
    assert {b["key"] for b in flag["buckets"]} == {"true", "false"}
    assert all(isinstance(b["key"], int) for b in level["buckets"])  # whole numbers come back as ints
    _, expected = o_summary(world.visible(scope), None, ["sensor"])
    assert len(sensor["buckets"]) == 2
    top = sorted(expected["sensor"].values(), reverse=True)
    assert [b["doc_count"] for b in sensor["buckets"]] == top[:2]
    # no dimensions: just the count
    assert world.repo.summary(scope, TYPE, parse_query({"sensor": ["cam_front"]}), []) == {
        "total": expected["sensor"]["cam_front"],
        "aggregations": [],
    }
    with pytest.raises(QueryError):
        world.repo.summary(scope, TYPE, parse_query(None), ["timestamp"])


def test_count_strings_counts_each_value_in_its_postings(world: World) -> None:
    for name, scope in SCOPES.items():
        _, expected = o_summary(world.visible(scope), None, ["sensor"])
        values = [*expected["sensor"], "no-such-sensor"]
        counts = world.repo.count_strings(scope, TYPE, "sensor", values)
        assert counts == dict(expected["sensor"]), name  # the absent value is left out, as a summary leaves it
        assert world.repo.count_strings(scope, TYPE, "sensor", []) == {}
        assert world.repo.count_strings(scope, "videos", "sensor", values) == {}


# ------------------------------------------------------------------------------------------------ statistics


def test_field_statistics_types_counts_and_bounds(world: World) -> None:
    scope = SCOPES["a"]
    rows = world.visible(scope)
    stats = world.repo.field_statistics(scope, TYPE)
    assert not {"id", "owner", "object_access", "thumbnails"} & set(stats)
    assert not any(f.startswith(("object_access.", "thumbnails.")) for f in stats)
    assert "aux.note" not in stats  # only over-long values

    def docs_with(field: str) -> list[Stored]:
        return [r for r in rows if leaf_values(r.doc, field)]

    speed = stats["aux.speed"]
    speeds = [n for r in rows for _, n in leaf_values(r.doc, "aux.speed")]
    assert speed["type"] == "number"
    assert speed["count"] == len(docs_with("aux.speed"))
    assert speed["min"] == pytest.approx(min(speeds)) and speed["max"] == pytest.approx(max(speeds))

    rec = stats["aux.recorded_at"]
    times = [n for r in rows for _, n in leaf_values(r.doc, "aux.recorded_at")]
    assert rec["type"] == "time"
    assert to_epoch(rec["min"]) == pytest.approx(min(times)) and to_epoch(rec["max"]) == pytest.approx(max(times))

    ts = stats["timestamp"]
    epochs = [to_epoch(r.doc["timestamp"]) for r in rows]
    assert ts["type"] == "time" and ts["count"] == len(rows)
    assert to_epoch(ts["min"]) == pytest.approx(min(epochs)) and to_epoch(ts["max"]) == pytest.approx(max(epochs))

    assert stats["aux.flag"]["type"] == "boolean"
    assert stats["aux.flag"]["count"] == len(docs_with("aux.flag"))
    for field, pool in [("sensor", SENSORS), ("aux.weather", WEATHER), ("annotations_meta.provider", PROVIDERS)]:
        entry = stats[field]
        assert entry["type"] == "tag"
        assert entry["count"] == len(docs_with(field))
        _, expected = o_summary(rows, None, [field])
        assert {v["key"]: v["doc_count"] for v in entry["values"]} == dict(expected[field])
        assert set(expected[field]) <= set(pool)
    assert stats["annotations_meta.version"]["type"] == "number"
    assert list(stats) == sorted(stats)


def test_field_statistics_of_mixed_fields(fresh: tuple[AssetRepo, str]) -> None:
    """A field with as many plain strings as numbers is not a time field; numbers alone are not booleans."""
    repo, org = fresh
    scope = Scope.of(org)
    docs = [
        {"id": "m1", "timestamp": _iso(0), "aux": {"code": 1, "when": _iso(10), "mix": 5}},
        {"id": "m2", "timestamp": _iso(1), "aux": {"code": 2, "when": _iso(20), "mix": _iso(30)}},
        {"id": "m3", "timestamp": _iso(2), "aux": {"code": "a", "when": _iso(30)}},
        {"id": "m4", "timestamp": _iso(3), "aux": {"code": "b"}},
    ]
    repo.upsert(scope, "objects", docs)
    stats = repo.field_statistics(scope, "objects")
    assert stats["aux.when"]["type"] == "time"
    assert stats["aux.code"]["type"] == "tag"
    assert {v["key"] for v in stats["aux.code"]["values"]} == {"a", "b"}
    assert stats["aux.mix"]["type"] != "boolean"
    assert stats["aux.code"]["count"] == 4


@pytest.mark.parametrize("scope_name", list(SCOPES))
def test_field_names_are_the_field_statistics_keys(world: World, scope_name: str) -> None:
    scope = SCOPES[scope_name]
    names = world.repo.field_names(scope, TYPE)
    assert names == list(world.repo.field_statistics(scope, TYPE))
    assert {"sensor", "aux.weather", "annotations_meta.provider"} <= set(names)
    assert world.repo.field_names(scope, "videos") == []
    assert world.repo.field_names(Scope.of("org_nobody"), TYPE) == []


# ------------------------------------------------------------------------------------------------ tenancy


def test_org_b_never_sees_org_a(world: World, plan: str) -> None:
    scope = SCOPES["b"]
    q = parse_query(None)
    assert {d["owner"] for d in world.repo.search(scope, TYPE, q, size=MAX_RESULT_WINDOW)} == {ORG_B}
    assert world.repo.count(scope, TYPE, q) == N_B
    assert {d["owner"] for b in world.repo.scan(scope, TYPE, q) for d in b} == {ORG_B}
    a_only = [r.doc["id"] for r in world.rows if r.owner == ORG_A and r.doc["id"].startswith("img_0")][-5:]
    a_only = [i for i in a_only if not any(r.owner == ORG_B and r.doc["id"] == i for r in world.rows)]
    assert a_only
    assert world.repo.get_many(scope, TYPE, a_only) == {}
    assert world.repo.get(scope, TYPE, a_only[0]) is None
    assert world.repo.search(scope, TYPE, parse_query({"id": a_only}), ids_only=True) == []
    summary = world.repo.summary(scope, TYPE, q, ["sensor"])
    assert summary["total"] == N_B
    assert sum(b["doc_count"] for b in summary["aggregations"][0]["buckets"]) == sum(
        1 for r in world.rows if r.owner == ORG_B and "sensor" in r.doc
    )
    stats = world.repo.field_statistics(scope, TYPE)
    assert stats["timestamp"]["count"] == N_B
    # another asset type of the same organization is another namespace
    assert world.repo.count(scope, "videos", q) == 0


def test_shared_scope_sees_both_and_prefers_its_own_documents(world: World) -> None:
    scope = SCOPES["a+b"]
    shared_ids = [f"img_{i:04d}" for i in range(30)]
    got = world.repo.get_many(scope, TYPE, shared_ids)
    assert set(got) == set(shared_ids)
    assert all(d["owner"] == ORG_A for d in got.values())
    got_b = world.repo.get_many(Scope.of(ORG_B, also_readable={ORG_A}), TYPE, shared_ids)
    assert all(d["owner"] == ORG_B for d in got_b.values())
    b_only = next(r.doc["id"] for r in world.rows if r.owner == ORG_B and r.doc["id"].startswith("b_"))
    assert world.repo.get(scope, TYPE, b_only)["owner"] == ORG_B  # type: ignore[index]
    assert world.repo.count(scope, TYPE, parse_query(None)) == N_A + N_B
    hits = world.repo.search(scope, TYPE, parse_query({"id": ["img_0001"]}))
    assert sorted(d["owner"] for d in hits) == [ORG_A, ORG_B]


# ------------------------------------------------------------------------------------------------ writes


def _terms_of(catalog: Catalog, owner: str, asset_type: str, asset_id: str) -> set[tuple[str, Any, Any]]:
    with catalog.read() as conn:
        pk = conn.execute(
            select(assets.c.pk).where(
                assets.c.owner == owner, assets.c.asset_type == asset_type, assets.c.id == asset_id
            )
        ).scalar()
        if pk is None:
            return set()
        rows = conn.execute(
            select(asset_terms.c.field, asset_terms.c.vstr, asset_terms.c.vnum).where(asset_terms.c.asset_pk == pk)
        )
        return {tuple(r) for r in rows}


def test_upsert_modes(fresh: tuple[AssetRepo, str], plan: str) -> None:
    repo, org = fresh
    scope = Scope.of(org)
    t = "videos"

    def find(q: dict[str, Any]) -> list[str]:
        return repo.search(scope, t, parse_query(q), ids_only=True)

    base = {
        "id": "v1",
        "timestamp": _iso(0),
        "sensor": "cam_front",
        "sets": ["s1"],
        "aux": {"labels": ["car"], "weather": "rain", "deep": {"a": 1}},
    }
    (stored,) = repo.upsert(scope, t, [base])
    assert stored["owner"] == org
    assert find({"aux.labels": ["car"]}) == ["v1"]

    # merge: dicts merged, lists unioned, scalars overwritten, index follows
    repo.upsert(
        scope,
        t,
        [{"id": "v1", "sets": ["s2"], "aux": {"labels": ["bus"], "deep": {"b": 2}}, "sensor": "cam_rear"}],
        mode="merge",
    )
    doc = repo.get(scope, t, "v1")
    assert doc is not None
    assert doc["sets"] == ["s1", "s2"]
    assert doc["aux"] == {"labels": ["car", "bus"], "weather": "rain", "deep": {"a": 1, "b": 2}}
    assert doc["sensor"] == "cam_rear" and doc["timestamp"] == _iso(0)
    assert find({"aux.labels": ["bus"]}) == find({"aux.labels": ["car"]}) == ["v1"]
    assert find({"sensor": ["cam_front"]}) == []
    assert find({"aux.deep.b": [2]}) == ["v1"]

    # merge_replace_lists: lists in the payload overwrite
    repo.upsert(scope, t, [{"id": "v1", "aux": {"labels": ["person"]}, "sets": []}], mode="merge_replace_lists")
    doc = repo.get(scope, t, "v1")
    assert doc is not None
    assert doc["aux"]["labels"] == ["person"] and doc["sets"] == []
    assert doc["aux"]["weather"] == "rain"
    assert find({"aux.labels": ["car"]}) == [] and find({"aux.labels": ["person"]}) == ["v1"]
    assert find({"sets": ["s1"]}) == []

    # replace: the document is replaced wholesale, terms too
    repo.upsert(scope, t, [{"id": "v1", "timestamp": _iso(50), "aux": {"speed": 3.5}}], mode="replace")
    doc = repo.get(scope, t, "v1")
    assert doc == {"id": "v1", "timestamp": _iso(50), "aux": {"speed": 3.5}, "owner": org}
    assert find({"aux.weather": ["rain"]}) == [] and find({"aux.speed": [3.5]}) == ["v1"]
    assert repo.search(scope, t, parse_query({"time_range": {"start_time": _iso(50)}}), ids_only=True) == ["v1"]
    assert _terms_of(repo.catalog, org, t, "v1") == {("timestamp", _iso(50), BASE + 50), ("aux.speed", None, 3.5)}
    assert repo.count(scope, t, parse_query(None)) == 1

    # a write of the same id by another organization is another document
    other = Scope.of(org + "_x")
    repo.upsert(other, t, [{"id": "v1", "timestamp": _iso(0), "aux": {"speed": 9}}], mode="merge")
    assert repo.get(scope, t, "v1") == doc
    assert repo.get(other, t, "v1") == {"id": "v1", "timestamp": _iso(0), "aux": {"speed": 9}, "owner": org + "_x"}

    with pytest.raises(ValueError, match="duplicate"):
        repo.upsert(scope, t, [{"id": "d", "timestamp": _iso(0)}, {"id": "d", "timestamp": _iso(0)}])


def test_delete_removes_document_and_terms(fresh: tuple[AssetRepo, str], plan: str) -> None:
    repo, org = fresh
    scope = Scope.of(org)
    t = "lidars"
    docs = [
        {"id": f"l{i}", "timestamp": _iso(i), "aux": {"unique": f"u{i}", "labels": ["x", f"y{i}"]}} for i in range(5)
    ]
    repo.upsert(scope, t, docs)
    assert repo.search(scope, t, parse_query({"aux.unique": ["u2"]}), ids_only=True) == ["l2"]
    # another organization cannot delete it
    assert repo.delete(Scope.of(org + "_other", also_readable={org}), t, ["l2"]) == 0
    assert repo.delete(scope, t, ["l2", "l3", "missing"]) == 2
    assert repo.delete(scope, t, ["l2"]) == 0
    assert repo.get(scope, t, "l2") is None
    assert repo.search(scope, t, parse_query({"aux.unique": ["u2"]}), ids_only=True) == []
    assert repo.search(scope, t, parse_query({"aux.labels": ["x"]}), ids_only=True) == ["l0", "l1", "l4"]
    assert repo.count(scope, t, parse_query({"exists_filters": [{"field": "aux.unique"}]})) == 3
    assert _terms_of(repo.catalog, org, t, "l2") == set()
    summary = repo.summary(scope, t, parse_query(None), ["aux.labels"])
    assert {b["key"]: b["doc_count"] for b in summary["aggregations"][0]["buckets"]} == {
        "x": 3,
        "y0": 1,
        "y1": 1,
        "y4": 1,
    }
    with repo.catalog.read() as conn:
        n_terms = conn.execute(select(func.count()).select_from(asset_terms).where(asset_terms.c.owner == org)).scalar()
    assert n_terms == sum(len(_terms_of(repo.catalog, org, t, f"l{i}")) for i in (0, 1, 4))


# ------------------------------------------------------------------------------------------------ planned writes


def _index_rows(catalog: Catalog, owner: str, asset_type: str, asset_id: str) -> tuple[set[Any], set[Any], float]:
    """Every flat and element index row of one document, as stored, and its ``assets.timestamp``; each flat
    row's ``ts`` must be that timestamp."""
    with catalog.read() as conn:
        pk, ts = conn.execute(
            select(assets.c.pk, assets.c.timestamp).where(
                assets.c.owner == owner, assets.c.asset_type == asset_type, assets.c.id == asset_id
            )
        ).one()
        t = asset_terms
        flat = {tuple(r) for r in conn.execute(select(t.c.field, t.c.vstr, t.c.vnum, t.c.ts).where(t.c.asset_pk == pk))}
        e = asset_element_terms
        q = select(e.c.field, e.c.vstr, e.c.vnum, e.c.pos).where(e.c.asset_pk == pk)
        elements = {tuple(r) for r in conn.execute(q)}
    assert {row[3] for row in flat} <= {ts}, "every index row repeats its document's time"
    return {row[:3] for row in flat}, elements, ts


def _floats(rng: random.Random, n: int) -> list[float]:
    """Doubles SQLite 3.40 reads back wrongly from text (about one in ten random ones), across the whole
    exponent range: the packed path must store every one bit for bit, and the few out of its range go row by
    row."""
    out = [rng.random() for _ in range(n)] + [round(rng.random(), 3) for _ in range(n)]
    out += [rng.uniform(-1e12, 1e12), 1_700_000_000 + rng.random(), -rng.random() * 1e-5]
    out += [2.0**-71, 2.0**-72, 2.0**114 * 1.5, 2.0**115, 0.0, -2.5, 1e-300, 1.7976931348623157e308, 5e-324]
    return out


def test_every_write_path_stores_floats_and_times_bit_for_bit(fresh: tuple[AssetRepo, str]) -> None:
    """New and changed documents, flat and element rows, and a batch with floats out of the packed range (row by
    row): the stored index equals ``indexed_terms`` exactly, and an exact range on each value finds it."""
    from scenebase.domain.metadata import DEFAULT_NESTED_FIELDS, indexed_terms

    repo, org = fresh
    scope = Scope.of(org)
    t = "annotations"
    rng = random.Random(7)

    def doc(i: int, values: list[float]) -> dict[str, Any]:
        entities = [{"label": f"l{k}", "confidence": v} for k, v in enumerate(values[:6])]
        return {"id": f"f{i}", "timestamp": to_iso(BASE + rng.random() * 1e6), "aux": {"values": values},
                "annotation_entities": entities}  # fmt: skip

    in_range = [v for v in _floats(rng, 40) if v == 0.0 or 2.0**-72 < abs(v) < 2.0**115]
    out_of_range = _floats(rng, 3)
    batches = {
        "new": [doc(0, in_range), doc(1, in_range[::-1])],
        "new, row by row": [doc(2, out_of_range)],
    }
    for docs in batches.values():
        repo.upsert(scope, t, docs)
    # changed documents: a merge adds values (added and kept rows), a replace drops some (gone rows) and one moves
    # in time (all its rows again)
    repo.upsert(scope, t, [{"id": "f0", "timestamp": repo.get(scope, t, "f0")["timestamp"],  # type: ignore[index]
                            "aux": {"values": [rng.random() for _ in range(20)]}}], mode="merge")  # fmt: skip
    repo.upsert(scope, t, [doc(1, in_range[:10]), doc(2, out_of_range[:5])], mode="replace")
    for asset_id in ("f0", "f1", "f2"):
        stored = repo.get(scope, t, asset_id)
        assert stored is not None
        flat, elements = indexed_terms(stored, frozenset(), DEFAULT_NESTED_FIELDS)
        got_flat, got_elements, ts = _index_rows(repo.catalog, org, t, asset_id)
        assert got_flat == flat, asset_id
        assert got_elements == elements, asset_id
        assert ts == to_epoch(stored["timestamp"])
        for value in stored["aux"]["values"][:12]:
            q = parse_query({"ranges": [{"field": "aux.values", "min": value, "max": value}]})
            assert asset_id in repo.search(scope, t, q, ids_only=True), (asset_id, value)


def test_a_plan_from_a_snapshot_writes_only_what_it_read(fresh: tuple[AssetRepo, str]) -> None:
    """A plan made outside the transaction is refused (StalePlan, nothing written) when one of its documents
    changed, went or appeared since the snapshot; otherwise it writes what ``upsert`` would."""
    from scenebase.storage.asset_repo import StalePlan

    repo, org = fresh
    scope = Scope.of(org)
    t = "images"
    repo.upsert(scope, t, [{"id": "a", "timestamp": _iso(1), "tags": ["x"]},
                           {"id": "b", "timestamp": _iso(2), "tags": ["y"]}])  # fmt: skip

    def planned(ids: list[str]) -> Any:
        snapshot = repo.snapshot(scope, t, ids)
        patches = [{"id": i, "timestamp": _iso(3), "tags": ["z"]} for i in ids]
        return repo.plan(scope, t, patches, "merge", snapshot)

    def apply(plan: Any) -> None:
        with repo.catalog.write() as conn:
            repo.apply(conn, plan)

    # unchanged since the snapshot: written, as a merge in the transaction would
    apply(planned(["a"]))
    assert repo.get(scope, t, "a")["tags"] == ["x", "z"]  # type: ignore[index]
    assert repo.search(scope, t, parse_query({"tags": ["z"]}), ids_only=True) == ["a"]

    cases: dict[str, Callable[[], Any]] = {
        "changed": lambda: repo.upsert(scope, t, [{"id": "b", "timestamp": _iso(2), "tags": ["w"]}], mode="merge"),
        "deleted": lambda: repo.delete(scope, t, ["b"]),
        "appeared": lambda: repo.upsert(scope, t, [{"id": "c", "timestamp": _iso(5), "tags": ["v"]}]),
    }
    for name, concurrent in cases.items():
        plan = planned(["c"] if name == "appeared" else ["b"])
        concurrent()
        before = {i: repo.get(scope, t, i) for i in ("b", "c")}
        with pytest.raises(StalePlan):
            apply(plan)
        assert {i: repo.get(scope, t, i) for i in ("b", "c")} == before, name
        assert repo.search(scope, t, parse_query({"tags": ["z"]}), ids_only=True) == ["a"], name


def test_two_plans_from_one_snapshot_apply_in_one_transaction(fresh: tuple[AssetRepo, str]) -> None:
    """Ingestion plans the replaced and the merged documents of one batch from one snapshot; each plan checks only
    its own documents, so the first one's writes do not make the second one stale."""
    repo, org = fresh
    scope = Scope.of(org)
    t = "images"
    repo.upsert(scope, t, [{"id": "r", "timestamp": _iso(1), "tags": ["x"]},
                           {"id": "m", "timestamp": _iso(2), "tags": ["y"]}])  # fmt: skip
    snapshot = repo.snapshot(scope, t, ["r", "m", "n"])
    replaced = repo.plan(scope, t, [{"id": "r", "timestamp": _iso(1), "tags": ["r2"]},
                                    {"id": "n", "timestamp": _iso(4), "tags": ["n"]}], "replace", snapshot)  # fmt: skip
    merged = repo.plan(scope, t, [{"id": "m", "timestamp": _iso(2), "tags": ["m2"]}], "merge", snapshot)
    with repo.catalog.write() as conn:
        repo.apply(conn, replaced)
        repo.apply(conn, merged)
    assert repo.get(scope, t, "r")["tags"] == ["r2"]  # type: ignore[index]
    assert repo.get(scope, t, "m")["tags"] == ["y", "m2"]  # type: ignore[index]
    assert sorted(repo.search(scope, t, parse_query({"tags": ["r2", "m2", "n"]}), ids_only=True)) == ["m", "n", "r"]
