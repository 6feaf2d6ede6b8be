"""Client-side models with the seed's module paths (``scenebase.models.assets``, ...)."""
