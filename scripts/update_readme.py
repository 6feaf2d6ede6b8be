"""Rewrite the generated parts of README.md (between <!-- BEGIN x --> and <!-- END x --> markers).

Usage: python scripts/update_readme.py   (tests/test_docs.py fails when the README is stale)
"""

from __future__ import annotations

import re
from pathlib import Path

from scenebase.clients.method_status import status_table
from scenebase.settings import config_table

README = Path(__file__).resolve().parents[1] / "README.md"


def main() -> None:
    text = README.read_text()
    for name, body in {"config": config_table(), "methods": status_table()}.items():
        pattern = re.compile(rf"(<!-- BEGIN {name} -->\n).*?(<!-- END {name} -->)", re.S)
        text, n = pattern.subn(lambda m, b=body: m.group(1) + b + m.group(2), text)
        if n != 1:
            raise SystemExit(f"README.md lacks the {name} markers")
    README.write_text(text)
    print("README.md updated")


if __name__ == "__main__":
    main()
