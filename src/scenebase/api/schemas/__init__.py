"""Typed request and response models of the API, for ``/openapi.json`` and the interactive docs."""
