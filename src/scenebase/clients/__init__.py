"""The scenebase SDK. Talks HTTP only; imports nothing from the server side."""

from scenebase.clients.job import Job
from scenebase.clients.kv_store import InMemoryKVStore, KVStore
from scenebase.clients.scene_engine_client import SceneEngineClient

__all__ = ["InMemoryKVStore", "Job", "KVStore", "SceneEngineClient"]
