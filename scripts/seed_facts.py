"""Write tests/data/seed_methods.json: every seed method's name and signature (parameters and defaults), read
from the seed's API listing, so that tests check the client's surface on a clone without ../shared.

Usage: python scripts/seed_facts.py [SEED]  (default: ../shared/seed/scenebox_client_api.txt beside the checkout)
A test regenerates the facts from the seed, when the seed is there, and fails if the committed file differs.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
DEFAULT_SEED = REPO.parent / "shared" / "seed" / "scenebox_client_api.txt"
FACTS = REPO / "tests" / "data" / "seed_methods.json"
SIGNATURE = re.compile(r"([a-z_]+)\((.*)\)")


def seed_signatures(seed_text: str) -> dict[str, str]:
    """Method name -> parameter list as the seed writes it (``name(a, b=1)`` lines; the first one counts)."""
    sigs: dict[str, str] = {}
    for line in seed_text.splitlines():
        m = SIGNATURE.fullmatch(line)
        if m:
            sigs.setdefault(m.group(1), m.group(2))
    return sigs


def facts(seed: Path) -> dict[str, Any]:
    return {
        "source": "../shared/seed/" + seed.name,
        "generated_by": "scripts/seed_facts.py",
        "methods": seed_signatures(seed.read_text()),
    }


def render(data: dict[str, Any]) -> str:
    return json.dumps(data, indent=1, sort_keys=False) + "\n"


def main(argv: list[str]) -> int:
    seed = Path(argv[0]) if argv else DEFAULT_SEED
    if not seed.is_file():
        print(f"seed not found: {seed}", file=sys.stderr)
        return 2
    FACTS.parent.mkdir(parents=True, exist_ok=True)
    FACTS.write_text(render(facts(seed)))
    print(f"wrote {FACTS.relative_to(REPO)}: {len(facts(seed)['methods'])} methods")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
