"""Use cases. Services raise :mod:`scenebase.services.errors`; only ``api/`` knows HTTP."""
