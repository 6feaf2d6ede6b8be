"""A server process (``freeze_heap``) hides its start-up objects from the cyclic collector and collects the
young generation less often; apps built for tests leave the process's collector alone."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from scenebase.api.app import GC_YOUNG_THRESHOLD, create_app
from scenebase.testing import InProcessServer


@pytest.fixture
def restored_gc() -> Iterator[None]:
    threshold = gc.get_threshold()
    try:
        yield
    finally:
        gc.unfreeze()
        gc.set_threshold(*threshold)


@pytest.mark.parametrize("freeze_heap", [True, False])
def test_a_server_process_tunes_the_collector(tmp_path: Path, restored_gc: None, freeze_heap: bool) -> None:
    gc.unfreeze()
    gc.set_threshold(700, 10, 10)
    with InProcessServer(tmp_path / "data") as server, TestClient(create_app(server.runtime, freeze_heap=freeze_heap)):
        if freeze_heap:
            assert gc.get_threshold() == (GC_YOUNG_THRESHOLD, 10, 10)
            assert gc.get_freeze_count() > 0
        else:
            assert gc.get_threshold() == (700, 10, 10)
            assert gc.get_freeze_count() == 0
