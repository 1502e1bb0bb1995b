"""Operators' views: users, jobs and audit through the admin API and `pullprint admin`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.cloud.conftest import TestClient, World, admin_headers
from tools.cli import main


def test_admin_lists_users_jobs_and_audit(world: World, client: TestClient) -> None:
    job = world.submit(b"%PDF-1.4 payroll figures", name="payroll.pdf")
    world.submit(b"second", name="b.txt")

    users = client.get("/api/v1/admin/users", headers=admin_headers())
    assert users.status_code == 200
    [ada] = users.json()["users"]
    assert (ada["email"], ada["cards"], ada["held_jobs"]) == ("ada@example.org", 1, 2)
    assert ada["held_bytes"] > 0
    assert "api_token" not in ada and world.tag not in users.text

    jobs = client.get("/api/v1/admin/jobs", headers=admin_headers()).json()["jobs"]
    assert {j["id"] for j in jobs} >= {job["id"]}
    assert all(j["owner_email"] == "ada@example.org" and j["state"] == "held" for j in jobs)
    listing = client.get("/api/v1/admin/jobs", headers=admin_headers()).text
    assert "payroll" not in listing  # names are not part of the admin list

    held = client.get("/api/v1/admin/jobs", params={"state": "printed"}, headers=admin_headers())
    assert held.json()["jobs"] == []
    other = client.get("/api/v1/admin/jobs", params={"owner": "bob@x"}, headers=admin_headers())
    assert other.json()["jobs"] == []

    events = client.get("/api/v1/admin/audit", headers=admin_headers()).json()["events"]
    kinds = [e["kind"] for e in events]
    assert kinds.count("job-submitted") == 2, kinds
    ids = [e["id"] for e in events]
    assert ids == sorted(ids)
    # Paging: after the first id, the first event is gone.
    paged = client.get(
        "/api/v1/admin/audit", params={"after": ids[0]}, headers=admin_headers()
    ).json()["events"]
    assert [e["id"] for e in paged] == ids[1:]
    about = client.get(
        "/api/v1/admin/audit", params={"job_id": job["id"]}, headers=admin_headers()
    ).json()["events"]
    assert about and all(e["job_id"] == job["id"] for e in about)


@pytest.mark.parametrize(
    "path", ["/api/v1/admin/users", "/api/v1/admin/jobs", "/api/v1/admin/audit"]
)
def test_admin_lists_need_the_admin(world: World, client: TestClient, path: str) -> None:
    assert client.get(path).status_code == 401
    assert client.get(path, headers=world.user).status_code == 401


def test_admin_list_limits_are_checked(world: World, client: TestClient) -> None:
    for params in ({"limit": 0}, {"limit": 1001}, {"after": -1}):
        response = client.get("/api/v1/admin/audit", params=params, headers=admin_headers())
        assert response.status_code == 422, params


def test_cli_lists_as_table_and_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "cloud"
    assert main(["cloud", "init", "--data-dir", str(data)]) == 0
    assert main(["admin", "user", "add", "ada@example.org", "--data-dir", str(data)]) == 0
    token = capsys.readouterr().out.split("API token:")[1].strip()
    assert token

    assert main(["admin", "user", "list", "--data-dir", str(data)]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].split()[:3] == ["ID", "EMAIL", "NAME"]
    assert "ada@example.org" in table[2]
    assert token not in "\n".join(table)

    assert main(["admin", "user", "list", "--json", "--data-dir", str(data)]) == 0
    users = json.loads(capsys.readouterr().out)["users"]
    assert [u["email"] for u in users] == ["ada@example.org"]

    assert (
        main(["admin", "audit", "--json", "--kind", "user-created", "--data-dir", str(data)]) == 0
    )
    events = json.loads(capsys.readouterr().out)["events"]
    assert [e["user_id"] for e in events] == [users[0]["id"]]

    assert main(["admin", "job", "list", "--data-dir", str(data)]) == 0
    assert capsys.readouterr().out.strip() == "(none)"

    assert main(["admin", "audit", "--job", "not-a-uuid", "--data-dir", str(data)]) != 0
    assert "--job takes a job id" in capsys.readouterr().err


def test_cloud_migrate_reports_and_upgrades(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "cloud"
    assert main(["cloud", "init", "--data-dir", str(data)]) == 0
    capsys.readouterr()
    assert main(["cloud", "migrate", "--check", "--data-dir", str(data)]) == 1
    assert "database at empty" in capsys.readouterr().out
    assert main(["cloud", "migrate", "--data-dir", str(data)]) == 0
    assert "migrated empty database ->" in capsys.readouterr().out
    assert main(["cloud", "migrate", "--check", "--data-dir", str(data)]) == 0
    assert main(["cloud", "migrate", "--data-dir", str(data)]) == 0
    assert "nothing to do" in capsys.readouterr().out


def test_cloud_migrate_without_secrets_says_how(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["cloud", "migrate", "--data-dir", str(tmp_path / "none")]) != 0
    assert "secret master_key is not set" in capsys.readouterr().err
