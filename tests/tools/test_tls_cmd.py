"""`pullprint tls` and `pullprint cloud serve --tls...`: what an operator runs on the cloud host."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.cloud.test_tls import write_pair
from tools.cli import main


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    directory = tmp_path / "data"
    assert main(["cloud", "init", "--data-dir", str(directory)]) == 0
    monkeypatch.setenv("PULLPRINT_TLS", "self-signed")
    monkeypatch.setenv("PULLPRINT_TLS_HOSTNAMES", "print.example.org,127.0.0.1")
    return directory


def test_renew_moves_the_expiry_forward_and_status_shows_it(
    data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["tls", "renew", "--data-dir", str(data_dir)]) == 0
    first = capsys.readouterr().out
    assert main(["tls", "renew", "--data-dir", str(data_dir)]) == 0
    second = capsys.readouterr().out

    def expiry(text: str) -> datetime:
        line = next(line for line in text.splitlines() if "valid:" in line)
        return datetime.fromisoformat(line.split("..")[1].strip())

    assert expiry(second) > expiry(first)
    assert main(["tls", "status", "--data-dir", str(data_dir)]) == 0
    status = capsys.readouterr().out
    assert "print.example.org" in status
    assert "last served: expires" in status


def test_check_refuses_a_replacement_that_expires_sooner(
    data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["tls", "renew", "--data-dir", str(data_dir)]) == 0
    capsys.readouterr()
    now = datetime.now(UTC)
    names = ("print.example.org", "127.0.0.1")
    cert, key = write_pair(tmp_path / "soon", now + timedelta(days=3), names)
    assert main(["tls", "check", str(cert), str(key), "--data-dir", str(data_dir)]) == 1
    assert "not after the current one" in capsys.readouterr().err
    cert, key = write_pair(tmp_path / "later", now + timedelta(days=3000), names)
    assert main(["tls", "check", str(cert), str(key), "--data-dir", str(data_dir)]) == 0


def test_serve_refuses_half_configured_tls_with_one_line(
    data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cert, _ = write_pair(tmp_path / "pair", datetime.now(UTC) + timedelta(days=30))
    argv = [
        "cloud",
        "serve",
        "--data-dir",
        str(data_dir),
        "--tls",
        "files",
        "--tls-cert",
        str(cert),
    ]
    assert main(argv) == 1
    assert "needs both tls_cert_file and tls_key_file" in capsys.readouterr().err
