"""Which seed methods work, which are partial, which are missing. The README's table is generated from
here (``scenebase docs methods``) and tests check it against the code: a method listed as works/partial
must be implemented by ``SceneEngineClient``; every other seed method must raise ``NotImplementedError``."""

from __future__ import annotations

from scenebase.clients._seed_surface import SeedSurface

#: method -> (status, note). Methods absent here are missing.
BUILT: dict[str, tuple[str, str]] = {
    "whoami": ("works", "`GET /auth`"),
    "with_auth": ("works", ""),
    "get_platform_version": ("works", "`GET /status`"),
    "update_artifact_path": ("works", ""),
    "get_job": ("works", "`Job` with status/progress/stage/notes and `wait()`"),
    "add_user": ("works", "token returned once; stored hashed"),
    "modify_user": ("works", ""),
    "list_users": ("partial", "tokens are stored hashed, so `token` shows only its public prefix"),
    "add_organization": ("works", "superadmin only"),
    "list_organizations": ("works", "superadmin sees all, others their own"),
    "modify_organization": ("works", "superadmin only"),
    "list_ownerships": ("works", "plus `add_ownership` / `revoke_ownership`"),
    "clear_cache": ("works", "clears the server's derived-data caches"),
    "display_image": ("partial", "returns the web-app URL; the web app itself is not built yet"),
    "display_video": ("partial", "returns the web-app URL; the web app itself is not built yet"),
    "display_object": ("partial", "returns the web-app URL; the web app itself is not built yet"),
    "display_lidar": ("partial", "returns the web-app URL; the web app itself is not built yet"),
    "display_session": ("partial", "returns the web-app URL; the web app itself is not built yet"),
    "display_set": ("partial", "returns the web-app URL; the web app itself is not built yet"),
    "display_projects": ("partial", "returns the web-app URL; the web app itself is not built yet"),
    "display_dashboard": ("partial", "returns the web-app URL; the web app itself is not built yet"),
}


def seed_methods() -> list[str]:
    return sorted(n for n, v in vars(SeedSurface).items() if callable(v) and not n.startswith("_"))


def method_status() -> dict[str, tuple[str, str]]:
    return {name: BUILT.get(name, ("missing", "")) for name in seed_methods()}


def status_table() -> str:
    rows = ["| method | status | notes |", "|---|---|---|"]
    for name, (status, note) in method_status().items():
        rows.append(f"| `{name}` | {status} | {note} |")
    counts = {s: sum(1 for v in method_status().values() if v[0] == s) for s in ("works", "partial", "missing")}
    summary = ", ".join(f"{n} {s}" for s, n in counts.items())
    return "\n".join(rows) + f"\n\n{len(seed_methods())} seed methods: {summary}.\n"
