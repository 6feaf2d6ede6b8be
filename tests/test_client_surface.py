"""The client has every seed method with the seed's parameters and defaults; missing ones say so.

The seed's signatures come from the committed facts file ``tests/data/seed_methods.json`` (so this runs on a
clone without ../shared); where the seed itself is beside the checkout, a test checks that the facts file is
what ``scripts/seed_facts.py`` makes from it.
"""

from __future__ import annotations

import ast
import importlib.util
import inspect
import json
from pathlib import Path
from types import ModuleType

import pytest

from scenebase.clients import SceneEngineClient
from scenebase.clients._seed_surface import SeedSurface
from scenebase.clients.method_status import BUILT, method_status, seed_methods

REPO = Path(__file__).resolve().parents[1]
FACTS = REPO / "tests" / "data" / "seed_methods.json"
SEED = REPO.parent / "shared" / "seed" / "scenebox_client_api.txt"


def _seed_signatures() -> dict[str, str]:
    methods: dict[str, str] = json.loads(FACTS.read_text())["methods"]
    return methods


def _facts_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("seed_facts", REPO / "scripts" / "seed_facts.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _params(sig_text: str) -> list[tuple[str, object]]:
    fn = ast.parse(f"def f({sig_text}): pass").body[0]
    assert isinstance(fn, ast.FunctionDef)
    args = fn.args
    defaults = [None] * (len(args.args) - len(args.defaults)) + list(args.defaults)
    out: list[tuple[str, object]] = []
    for a, d in zip(args.args, defaults, strict=True):
        out.append((a.arg, ast.literal_eval(d) if d is not None else inspect.Parameter.empty))
    if args.kwarg:
        out.append(("**" + args.kwarg.arg, inspect.Parameter.empty))
    return out


def test_facts_file_matches_the_seed() -> None:
    if not SEED.is_file():
        pytest.skip(f"needs ../shared/seed (looked for {SEED}): not present beside this checkout")
    script = _facts_script()
    assert FACTS.read_text() == script.render(script.facts(SEED)), "regenerate with: python scripts/seed_facts.py"


def test_facts_script_reads_signature_lines_only() -> None:
    text = "Intro text(with parens)\nwhoami()\n  indented(x)\nget_job(job_id)\nget_job(other)\nadd(a, b=[1, 2])\n"
    assert _facts_script().seed_signatures(text) == {"whoami": "", "get_job": "job_id", "add": "a, b=[1, 2]"}


def test_every_seed_method_has_the_seed_signature() -> None:
    sigs = _seed_signatures()
    assert len(sigs) >= 107
    for name, text in sigs.items():
        method = getattr(SceneEngineClient, name)
        actual = []
        for p in list(inspect.signature(method).parameters.values())[1:]:
            if p.kind is p.KEYWORD_ONLY:  # scenebase's extras: after the seed's parameters, never positional
                assert p.default is not p.empty, f"{name}: keyword-only extra {p.name!r} needs a default"
                continue
            key = "**" + p.name if p.kind is p.VAR_KEYWORD else p.name
            actual.append((key, p.default))
        assert actual == _params(text), name


def test_constructor_matches_seed() -> None:
    params = inspect.signature(SceneEngineClient.__init__).parameters
    assert list(params)[1:] == [
        "auth_token", "scene_engine_url", "asset_manager_url", "environment", "artifacts_path", "kv_store",
        "num_threads",
    ]  # fmt: skip
    assert params["scene_engine_url"].default == "https://scene-engine.demo.scenebox.ai/"
    assert params["artifacts_path"].default == "."
    assert params["num_threads"].default == 20


def test_status_table_matches_code() -> None:
    overridden = {n for n in seed_methods() if getattr(SceneEngineClient, n) is not getattr(SeedSurface, n)}
    assert set(BUILT) == overridden, "BUILT in method_status.py must list exactly the implemented methods"
    assert all(status in ("works", "partial") for status, _ in BUILT.values())


@pytest.mark.parametrize("name", [n for n, (s, _) in method_status().items() if s == "missing"])
def test_missing_methods_raise_not_implemented(name: str) -> None:
    client = SceneEngineClient(scene_engine_url="http://127.0.0.1:9")
    method = getattr(client, name)
    sig = inspect.signature(method)
    args = [None for p in sig.parameters.values() if p.default is p.empty and p.kind is p.POSITIONAL_OR_KEYWORD]
    with pytest.raises(NotImplementedError, match=f"{name} is not built yet"):
        method(*args)
