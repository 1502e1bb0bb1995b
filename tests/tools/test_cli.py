"""The `pullprint` command: demo, cloud init/serve, submit, bench, printer_sim."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from tools.cli import main
from tools.procs import free_tcp_port


def test_demo_json_reports_identical_bytes_and_destroyed_content(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["demo", "--json", "--out", str(tmp_path / "frames")]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["ok"] is True
    assert len(summary["documents"]) == 2
    for doc in summary["documents"]:
        assert doc["sha256_printed"] == doc["sha256_submitted"]
        assert doc["content_held"] is False
    assert set(summary["timings_ms"]) == {
        "tap_to_list",
        "print_to_first_byte",
        "print_to_completed",
    }
    assert all(v is not None and v > 0 for v in summary["timings_ms"].values())
    pngs = sorted((tmp_path / "frames").glob("frame-*.png"))
    assert [p.name for p in pngs] == [Path(p).name for p in summary["screens"]]
    assert any("jobs" in p.name for p in pngs) and any("done" in p.name for p in pngs)


def test_demo_interactive_reads_keys(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import io

    monkeypatch.setattr(sys, "stdin", io.StringIO("x\nt\np\n\nq\n"))
    assert main(["demo", "--interactive", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "Badge not recognised" in out
    assert "the printer received 2 document(s)" in out


def test_cloud_init_writes_private_secrets_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["cloud", "init", "--data-dir", str(tmp_path)]) == 0
    secrets = tmp_path / "secrets.toml"
    assert stat.S_IMODE(secrets.stat().st_mode) == 0o600
    before = secrets.read_bytes()
    assert main(["cloud", "init", "--data-dir", str(tmp_path)]) == 1
    assert "refusing" in capsys.readouterr().err
    assert secrets.read_bytes() == before


def test_cloud_serve_without_secrets_fails_with_one_clear_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("PULLPRINT_MASTER_KEY", "PULLPRINT_PEPPER", "PULLPRINT_ADMIN_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    assert main(["cloud", "serve", "--data-dir", str(tmp_path), "--port", "0"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("pullprint: ") and "Traceback" not in err


def test_cloud_serve_and_submit_end_to_end(tmp_path: Path) -> None:
    """`pullprint cloud serve` in its own process, then `pullprint submit` a file to it."""
    data_dir = tmp_path / "cloud"
    assert main(["cloud", "init", "--data-dir", str(data_dir)]) == 0
    from cloud.config import load_config

    admin_token = load_config(None, {"PULLPRINT_DATA_DIR": str(data_dir)}).admin_token
    port = free_tcp_port()
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tools.cli",
            "cloud",
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--data-dir",
            str(data_dir),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if requests.get(url + "/healthz", timeout=1).ok:
                    break
            except requests.ConnectionError:
                pass
            assert server.poll() is None, server.stderr.read() if server.stderr else ""
            assert time.monotonic() < deadline, "cloud serve did not come up"
            time.sleep(0.1)
        user = requests.post(
            url + "/api/v1/admin/users",
            timeout=10,
            headers={"Authorization": f"Bearer {admin_token}"},
            json={"email": "cli@example.org", "display_name": "CLI"},
        ).json()
        doc = tmp_path / "hello.txt"
        doc.write_text("hello\n" * 50_000)  # ~300 KB: several chunks, streamed
        assert main(["submit", str(doc), "--cloud", url, "--token", user["api_token"]]) == 0
        jobs = requests.get(
            url + "/api/v1/jobs",
            timeout=10,
            headers={"Authorization": f"Bearer {user['api_token']}"},
        ).json()
        [job] = jobs["jobs"]
        assert job["name"] == "hello.txt" and job["format"] == "text/plain"
        assert job["size_bytes"] == doc.stat().st_size
        # A wrong token is one clear line and exit 1, not a traceback.
        assert main(["submit", str(doc), "--cloud", url, "--token", "ppu_bad.token"]) == 1
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(15)
    assert not any("Traceback" in line for line in (server.stderr.read() if server.stderr else ""))


def test_submit_to_nowhere_is_one_clear_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    doc = tmp_path / "a.pdf"
    doc.write_bytes(b"%PDF-1.4\n")
    url = f"http://127.0.0.1:{free_tcp_port()}"
    assert main(["submit", str(doc), "--cloud", url, "--token", "ppu_x.y"]) == 1
    assert "cannot reach the cloud" in capsys.readouterr().err


def test_bench_runs_small_and_prints_its_figures(capsys: pytest.CaptureFixture[str]) -> None:
    assert (
        main(
            [
                "bench",
                "--runs",
                "3",
                "--big-mb",
                "3",
                "--seed-users",
                "50",
                "--seed-jobs",
                "500",
                "--json",
            ]
        )
        == 0
    )
    figures = json.loads(capsys.readouterr().out)
    assert figures["latency"]["runs"] == 3
    assert figures["latency"]["seeded_held_jobs"] == 500  # counted in the database
    assert figures["latency"]["seeded_users"] == 51  # and the bench user
    assert figures["latency"]["tap_to_list_ms"]["p50"] > 0
    assert figures["streaming"]["printer_bytes"] == 3 * 1024 * 1024
    assert figures["streaming"]["end_to_end_mb_per_s"] > 0


def test_printer_sim_reports_each_job(tmp_path: Path) -> None:
    from hardware.printers.ipp import IppPrinterTransport
    from hardware.printers.transport import PrintJob

    proc = subprocess.Popen(
        [sys.executable, "-m", "tools.printer_sim", "--port", "0", "--discard"],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ},
    )
    try:
        assert proc.stdout is not None
        uri = proc.stdout.readline().strip()
        assert uri.startswith("ipp://127.0.0.1:")
        transport = IppPrinterTransport(uri, timeout_s=10)
        result = transport.deliver(PrintJob("release-1", "ada"), [b"x" * 1000, b"y" * 24])
        transport.close()
        assert result.bytes_sent == 1024
        line = proc.stdout.readline()
        assert "state=completed" in line and "bytes=1024" in line and "name=release-1" in line
    finally:
        proc.terminate()
        proc.wait(10)


@pytest.mark.parametrize(
    ("size", "extra", "mode"),
    [("128x64", [], "1"), ("320x240", ["--high-contrast"], "RGB"), ("480x320", [], "RGB")],
)
def test_station_screens_writes_every_screen(
    tmp_path: Path, size: str, extra: list[str], mode: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from PIL import Image

    from station.samples import sample_screens

    assert main(["station", "screens", "--size", size, "--out", str(tmp_path), *extra]) == 0
    written = sorted(tmp_path.glob("*.png"))
    assert len(written) == len(sample_screens())
    width, height = (int(n) for n in size.split("x"))
    for path in written:
        with Image.open(path) as image:
            assert image.size == (width, height)
            assert image.mode == mode
            assert image.convert("L").getextrema() != (0, 0), f"{path.name} is blank"
    assert capsys.readouterr().out.count(".png") == len(written)


def test_station_screens_refuses_a_bad_size(tmp_path: Path, capsys) -> None:
    assert main(["station", "screens", "--size", "big", "--out", str(tmp_path)]) == 2
    assert "--size" in capsys.readouterr().err


def test_a_command_whose_extra_is_missing_says_so_and_spares_the_others(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A station image has no bench or cloud packages: one command module failing to import
    must not break `pullprint` (the first-boot image test found two that did)."""
    import sys

    monkeypatch.setitem(sys.modules, "psutil", None)  # import psutil -> ImportError
    monkeypatch.delitem(sys.modules, "tools.bench_throughput", raising=False)
    assert main(["bench-throughput", "--seconds", "1"]) != 0
    err = capsys.readouterr().err
    assert "bench-throughput needs psutil" in err and "pip install" in err
    # Every other command still parses and runs.
    with pytest.raises(SystemExit) as help_exit:
        main(["labels", "--help"])
    assert help_exit.value.code == 0
