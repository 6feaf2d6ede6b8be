"""Regenerate src/scenebase/clients/_seed_surface.py from the seed's method signatures.

Usage: python scripts/gen_missing_mixin.py ../shared/seed/scenebox_client_api.txt
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

HEADER = '''"""Every method of the seed's ``SceneEngineClient``, generated from its signatures by
``scripts/gen_missing_mixin.py``. ``SceneEngineClient`` overrides the methods that are built; the rest raise
``NotImplementedError`` and are marked missing in the README's status table (checked by a test).
"""

from __future__ import annotations

from typing import Any


def _missing(name: str) -> NotImplementedError:
    return NotImplementedError(
        f"SceneEngineClient.{name} is not built yet in scenebase; see the README's method status table"
    )


class SeedSurface:
    """Placeholders for seed methods not built yet. Each raises ``NotImplementedError``."""

'''


def main(seed: str) -> None:
    lines = Path(seed).read_text().splitlines()
    sigs: dict[str, str] = {}
    for line in lines:
        m = re.fullmatch(r"([a-z_]+)\((.*)\)", line)
        if m and m.group(1) not in sigs:
            sigs[m.group(1)] = m.group(2)
    sigs.setdefault("is_coco_annotation_file_valid", "file_path")
    out = [HEADER]
    for name in sorted(sigs):
        params = sigs[name]
        params = "self" + (", " + params if params else "")
        params = params.replace("**kwarg", "**kwarg: Any")
        out.append(f"    def {name}({params}) -> Any:\n")
        out.append(f'        raise _missing("{name}")\n\n')
    target = Path(__file__).resolve().parents[1] / "src/scenebase/clients/_seed_surface.py"
    target.write_text("".join(out).rstrip() + "\n")
    print(f"{len(sigs)} methods written to {target}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "../shared/seed/scenebox_client_api.txt")
