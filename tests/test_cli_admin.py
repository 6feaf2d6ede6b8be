"""``scenebase admin create-token``: recovering access on the server machine, against the catalog directly."""

from __future__ import annotations

from pathlib import Path

import pytest

from scenebase.cli.main import main
from scenebase.errors import InvalidAuthorization
from scenebase.testing import ADMIN_TOKEN, InProcessServer


def _run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["admin", "create-token", *args])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    data = tmp_path / "data"
    with InProcessServer(data, workers=0) as server:  # bootstraps organization default and superadmin admin
        server.client().add_user("bob@example.com", "bob", "data_user", "default")
    return data


def test_new_token_replaces_the_old_one(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = _run(capsys, "--username", "admin", "--data-dir", str(data_dir))
    assert code == 0, err
    token = out.strip()
    assert out == token + "\n" and token.startswith("default-admin-"), "stdout holds the token alone"
    assert "new token for 'admin' (superadmin, organization 'default')" in err and token not in err
    with InProcessServer(data_dir, workers=0) as server:
        assert server.client(token).whoami()["username"] == "admin"
        with pytest.raises(InvalidAuthorization):
            server.client(ADMIN_TOKEN).whoami()


def test_catalog_url_works_like_the_data_dir(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"sqlite:///{data_dir / 'catalog.db'}"
    code, out, err = _run(capsys, "--username", "bob", "--catalog-url", url)
    assert code == 0, err
    with InProcessServer(data_dir, workers=0) as server:
        me = server.client(out.strip()).whoami()
        assert (me["username"], me["role"]) == ("bob", "data_user")


def test_create_superadmin(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = _run(capsys, "--create-superadmin", "rescue", "--data-dir", str(data_dir))
    assert code == 0, err
    with InProcessServer(data_dir, workers=0) as server:
        me = server.client(out.strip()).whoami()
        assert (me["username"], me["role"], me["organization_id"]) == ("rescue", "superadmin", "default")
        assert server.client().whoami()["username"] == "admin"  # the old admin token still works
    code, out, err = _run(capsys, "--create-superadmin", "rescue", "--data-dir", str(data_dir))
    assert (code, out) == (2, "")
    assert "user 'rescue' exists; give it a new token with --username rescue" in err


def test_errors_name_the_problem_and_create_nothing(
    data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = _run(capsys, "--username", "nobody", "--data-dir", str(data_dir))
    assert (code, out) == (2, "")
    assert "no user 'nobody' in this catalog; users: admin, bob" in err

    code, out, err = _run(capsys, "--create-superadmin", "x", "--organization", "nope", "--data-dir", str(data_dir))
    assert (code, out) == (2, "")
    assert "no organization 'nope'" in err

    empty = tmp_path / "not-a-data-dir"
    code, out, err = _run(capsys, "--username", "admin", "--data-dir", str(empty))
    assert (code, out) == (2, "")
    assert f"no scenebase catalog at {empty.resolve() / 'catalog.db'}" in err
    assert not empty.exists(), "a wrong --data-dir must not create an empty catalog"

    stray = tmp_path / "stray.db"
    stray.write_bytes(b"")
    code, out, err = _run(capsys, "--username", "admin", "--catalog-url", f"sqlite:///{stray}")
    assert (code, out) == (2, "")
    assert "is not a scenebase catalog (no schema)" in err


def test_username_or_create_superadmin_is_required(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        main(["admin", "create-token", "--data-dir", "x"])
    assert caught.value.code == 2
    assert "one of the arguments --username --create-superadmin is required" in capsys.readouterr().err
