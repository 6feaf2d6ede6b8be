"""Pydantic models of the API's request and response bodies: they type ``/openapi.json`` (the web app generates
its types from it) and the interactive docs."""
