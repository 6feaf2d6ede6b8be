"""Pydantic models of the API's response bodies: they type ``/openapi.json`` (the web app generates its types
from it). Request bodies are declared next to their routes."""
