"""Media and format code: a plain library that knows nothing of the catalog, HTTP or settings.

Submodules are imported explicitly (``from scenebase.media import images``) so that importing one format's code
does not pull in the libraries of the others.
"""
