"""Identifier rules shared by the client and the server (FACTS 1.1)."""

from __future__ import annotations

import secrets
import uuid

# Characters that SceneBox replaces by "_" in every asset id. Dots, "~", "@", "#", "!" survive.
_REPLACED = set(",*\\<|>/?{}$^%():+-' ")
_TRANSLATION = str.maketrans({c: "_" for c in _REPLACED})


def standardize_id(raw: str) -> str:
    """Lower-case ``raw`` and replace the characters SceneBox forbids in ids by ``_``.

    >>> standardize_id("sOmE id . ~")
    'some_id_._~'
    """
    if not isinstance(raw, str):
        raise TypeError(f"an id must be a string, not {type(raw).__name__}")
    return raw.lower().translate(_TRANSLATION)


def new_id() -> str:
    """A fresh UUID4 with ``-`` replaced by ``_``, as SceneBox generates ids."""
    return str(uuid.uuid4()).replace("-", "_")


def token_prefix(org_id: str, username: str) -> str:
    """The public ``<org prefix>-<user prefix>`` that starts a personal token of this user."""
    org_part = "".join(c for c in org_id.lower() if c.isalnum())[:8] or "org"
    user_part = "".join(c for c in username.lower() if c.isalnum())[:8] or "user"
    return f"{org_part}-{user_part}"


def new_token(org_id: str, username: str) -> str:
    """A personal token ``<org prefix>-<user prefix>-<secret>`` (FACTS 13).

    The first two parts only partition client caches; the secret carries 256 bits of entropy.
    """
    return f"{token_prefix(org_id, username)}-{secrets.token_urlsafe(32).replace('-', 'x')}"
