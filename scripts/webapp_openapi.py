"""Write the API's ``/openapi.json`` to a file, for the web app's generated types (``npm run gen-types``).

    python scripts/webapp_openapi.py webapp/openapi.json

The document comes from an in-process server on an empty temporary data folder: the same app ``scenebase serve``
builds, so the types follow every route's response model.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

from scenebase.testing import InProcessServer


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python scripts/webapp_openapi.py OUTPUT.json", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as tmp, InProcessServer(Path(tmp), workers=0) as server:
        spec = server.http().get("/openapi.json").json()
    Path(argv[0]).write_text(json.dumps(spec, indent=1, sort_keys=True) + "\n")
    print(f"wrote {argv[0]}: {len(spec.get('paths', {}))} paths")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
