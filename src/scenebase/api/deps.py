"""Request dependencies: the runtime, the caller, and permission checks.

Each protected route declares ``dependencies=[requires(Permission.X)]``; ``requires`` tags the dependency
with its permission so tests and docs can enumerate every route's permission.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import Depends, Request
from fastapi.security import APIKeyQuery, HTTPAuthorizationCredentials, HTTPBearer

from scenebase.domain.roles import Permission, allows
from scenebase.runtime import Runtime
from scenebase.services.errors import Forbidden
from scenebase.services.identity import Principal

# Declared for /openapi.json only (Swagger UI's "Authorize" and generated clients): with auto_error=False they
# never answer by themselves, and _token_from below still decides which token a request carries.
bearer_token = HTTPBearer(
    scheme_name="bearer",
    description="A personal token: `Authorization: Bearer <token>`.",
    auto_error=False,
)
query_token = APIKeyQuery(
    name="token",
    scheme_name="token_query",
    description="The same token as `?token=<token>`, for links that cannot carry a header (downloads, media).",
    auto_error=False,
)


def get_runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


def _token_from(request: Request) -> str | None:
    auth = request.headers.get("authorization")
    if auth:
        scheme, _, value = auth.partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip()
    return request.query_params.get("token")


def get_principal(request: Request) -> Principal:
    cached = getattr(request.state, "principal", None)
    if cached is not None:
        return cached
    principal = get_runtime(request).identity.authenticate(_token_from(request))
    request.state.principal = principal
    return principal


def requires(permission: Permission) -> Any:
    def check(
        principal: Principal = Depends(get_principal),
        _bearer: HTTPAuthorizationCredentials | None = Depends(bearer_token),
        _query: str | None = Depends(query_token),
    ) -> Principal:
        if not allows(principal.role, permission):
            raise Forbidden(f"role {principal.role.value!r} lacks permission {permission.value!r}")
        return principal

    setattr(check, "permission", permission)  # noqa: B010  (read back by route_permission)
    return Depends(check)


def route_permission(dependencies: list[Any]) -> Permission | None:
    """The permission a route declared (used by the role-matrix test and the docs)."""
    for dep in dependencies:
        call: Callable[..., Any] | None = getattr(dep, "call", None) or getattr(dep, "dependency", None)
        perm = getattr(call, "permission", None)
        if perm is not None:
            return perm
    return None
