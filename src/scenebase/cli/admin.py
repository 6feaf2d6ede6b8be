"""``scenebase admin``: recover access on the server machine, straight against the catalog (no server needed).

``scenebase admin create-token --username admin --data-dir D`` gives an existing user a new token (the old one
stops working); ``--create-superadmin NAME`` adds a superadmin instead. The token goes to stdout alone, so that
``TOKEN=$(scenebase admin create-token ...)`` works; what happened goes to stderr.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from sqlalchemy.engine import make_url

from scenebase.domain.ids import new_token
from scenebase.domain.roles import Role
from scenebase.services.identity import AUTH_CACHE_SECONDS, DEFAULT_ORG, hash_token, token_hint
from scenebase.storage.catalog import Catalog
from scenebase.storage.identity_repo import DuplicateError, IdentityRepo


class AdminCommandError(Exception):
    """A ``scenebase admin`` command cannot do what was asked; the message says why and what to do."""


def add_admin_parser(sub: Any) -> None:
    p_admin = sub.add_parser("admin", help="administration on the server machine (recover access)")
    admin_sub = p_admin.add_subparsers(dest="admin_command", required=True)
    p_token = admin_sub.add_parser(
        "create-token",
        help="print a new token for a user (the old one stops working), or create a superadmin",
        description="Run on the server machine with the server's --data-dir (or --catalog-url).",
    )
    who = p_token.add_mutually_exclusive_group(required=True)
    who.add_argument("--username", help="existing user that gets a new token")
    who.add_argument("--create-superadmin", metavar="NAME", help="create superadmin NAME and print its token")
    p_token.add_argument(
        "--organization", default=DEFAULT_ORG, help=f"organization id of a new superadmin (default: {DEFAULT_ORG})"
    )
    p_token.add_argument("--data-dir", type=Path, help="the server's data folder (SCENEBASE_DATA_DIR)")
    p_token.add_argument("--catalog-url", help="the server's catalog, sqlite:///PATH or postgresql://...")
    p_token.set_defaults(func=create_token)


def _shown(url: str) -> str:
    return make_url(url).render_as_string(hide_password=True)


def open_existing_catalog(url: str) -> Catalog:
    """The catalog at ``url``; an error (never a new empty catalog) when no scenebase server has created it."""
    sa_url = make_url(url)
    if sa_url.get_backend_name() == "sqlite" and not (sa_url.database and Path(sa_url.database).is_file()):
        raise AdminCommandError(
            f"no scenebase catalog at {sa_url.database}: give the server's --data-dir (or --catalog-url)"
        )
    catalog = Catalog(url)
    if catalog.current_revision() is None:
        catalog.dispose()
        raise AdminCommandError(f"{_shown(url)} is not a scenebase catalog (no schema): start scenebase serve once")
    return catalog


def issue_token(repo: IdentityRepo, username: str) -> tuple[str, dict[str, Any]]:
    """Give ``username`` a new token (replacing its old one). Returns the token and the user's row."""
    user = repo.get_user(username)
    if user is None:
        known = ", ".join(u["username"] for u in repo.list_users()[:20]) or "none"
        raise AdminCommandError(f"no user {username!r} in this catalog; users: {known}")
    token = new_token(user["organization_id"], username)
    repo.update_user(
        username, token_hash=hash_token(token), token_hint=token_hint(token, user["organization_id"], username)
    )
    return token, user


def create_superadmin(repo: IdentityRepo, username: str, org_id: str) -> str:
    """Add superadmin ``username`` to organization ``org_id``. Returns its token."""
    if repo.get_organization(org_id) is None:
        raise AdminCommandError(f"no organization {org_id!r} in this catalog (--organization takes an id)")
    token = new_token(org_id, username)
    try:
        repo.add_user(
            username, None, Role.SUPERADMIN.value, org_id, hash_token(token), token_hint(token, org_id, username)
        )
    except DuplicateError:
        raise AdminCommandError(f"user {username!r} exists; give it a new token with --username {username}") from None
    return token


def create_token(args: argparse.Namespace) -> int:
    from scenebase.cli.main import _settings

    url = _settings(args).resolved_catalog_url()
    try:
        catalog = open_existing_catalog(url)
        try:
            repo = IdentityRepo(catalog)
            if args.create_superadmin:
                token = create_superadmin(repo, args.create_superadmin, args.organization)
                note = f"created superadmin {args.create_superadmin!r} in organization {args.organization!r}"
            else:
                token, user = issue_token(repo, args.username)
                note = (
                    f"new token for {args.username!r} ({user['role']}, organization {user['organization_id']!r}); "
                    f"the old token no longer works (running servers may accept it for {AUTH_CACHE_SECONDS:g} s more)"
                )
        finally:
            catalog.dispose()
    except AdminCommandError as e:
        print(f"scenebase admin create-token: {e}", file=sys.stderr)
        return 2
    print(f"scenebase ({_shown(url)}): {note}", file=sys.stderr)
    print(token, flush=True)
    return 0
