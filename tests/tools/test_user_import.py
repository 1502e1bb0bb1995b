"""`pullprint admin user import`: printed badge numbers to the station's tags, per-row errors,
dry runs, idempotent re-runs, and the CLI around it."""

from __future__ import annotations

import csv
import io
import secrets
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from cloud.config import generate_secrets, load_config
from cloud.service import CloudService
from hardware.readers.formats import corp1000, h10301, iclass_csn, mifare_uid
from hardware.readers.text import ReaderFormat, parse_reader_text
from station.credentials import credential_tag
from tools.cli import main
from tools.user_import import badge_credential, badge_format, import_users, read_rows

SITE_KEY = secrets.token_bytes(32)
H = h10301(90, 324)
H_BITS = int.from_bytes(H.raw, "big")
C = corp1000(1234, 567890)
C_BITS = int.from_bytes(C.raw, "big")
UID7 = bytes.fromhex("04a1b2c3d4e5f6")


@pytest.mark.parametrize(
    ("number", "spec", "badge"),
    [
        ("90:324", "h10301/fn", H),
        ("090-00324", "h10301/fn", H),
        ("90 / 324", "h10301/fn", H),
        (str(H_BITS), "h10301/decimal", H),
        (f"0x{H_BITS:07X}", "h10301/hex", H),
        (str((90 << 16) | 324), "h10301/decimal/stripped", H),
        ("1234:567890", "corp1000/fn", C),
        (f"{C_BITS:09x}", "CORP1000/HEX", C),
        ("04:A1:B2:C3:D4:E5:F6", "mifare/hex", mifare_uid(UID7)),
        (str(int.from_bytes(UID7[::-1], "big")), "mifare/decimal/reversed", mifare_uid(UID7)),
        ("E012FFFFF5A8B2C1", "iclass/hex", iclass_csn(bytes.fromhex("c1b2a8f5ffff12e0"))),
    ],
)
def test_every_printed_form_gives_the_tag_a_station_computes(
    number: str, spec: str, badge: object
) -> None:
    ours = credential_tag(SITE_KEY, badge_credential(number, badge_format(spec)))
    assert ours == credential_tag(SITE_KEY, badge)  # type: ignore[arg-type]


def test_the_tag_equals_a_wedge_readers_tap_of_the_same_card() -> None:
    """A pcProx printing the full 26-bit frame in decimal, as a station reads it."""
    tapped = parse_reader_text(f"{H_BITS}\n", ReaderFormat(technology="h10301"))
    imported = badge_credential("90:324", badge_format("h10301/fn"))
    assert credential_tag(SITE_KEY, tapped) == credential_tag(SITE_KEY, imported)


@pytest.mark.parametrize(
    "spec", ["h10301", "h10301/octal", "prox/fn", "mifare/fn", "h10301/hex/reversed", "x/y/z"]
)
def test_bad_formats_are_refused(spec: str) -> None:
    with pytest.raises(ValueError, match=r"format|reversed|facility"):
        badge_format(spec)


def csv_lines(*rows: str, header: str = "email,name,badge,format,label") -> Iterator[str]:
    return iter(io.StringIO("\n".join([header, *rows]) + "\n"))


def test_every_bad_row_is_reported_by_line_and_never_quotes_the_number() -> None:
    rows, errors = read_rows(
        csv_lines(
            "ada@example.org,Ada,90:324,h10301/fn,blue",  # line 2: fine
            "not-an-email,X,,,",  # 3
            "bob@example.org,Bob,987654321987,h10301/decimal,",  # 4: too big for 26 bits
            f"cy@example.org,Cy,{H_BITS ^ 1},h10301/decimal,",  # 5: bad parity
            "di@example.org,Di,4242,,",  # 6: no format
            "ed@example.org,Ed,,mifare/hex,",  # 7: format without badge
            "fa@example.org,Fa,90-324,h10301/fn,",  # 8: the badge of line 2 again
            "gi@example.org,Gi,12,h10301/fn,x,extra",  # 9: too many cells
        ),
        SITE_KEY,
    )
    by_line = {error.line: error.message for error in errors}
    assert sorted(by_line) == [3, 4, 5, 6, 7, 8, 9]
    assert "line 2" in by_line[8]
    for message in by_line.values():
        for secret in ("987654321987", str(H_BITS ^ 1), "4242", "90", "324"):
            assert secret not in message.replace("line 2", "")
    assert [row.line for row in rows] == [2, 8]  # line 8 parsed, then caught as a duplicate


def test_header_problems_stop_the_file() -> None:
    from tools.user_import import ImportFileError

    with pytest.raises(ImportFileError, match="email"):
        read_rows(csv_lines(header="name,badge"), SITE_KEY)
    with pytest.raises(ImportFileError, match="unknown column"):
        read_rows(csv_lines(header="email,card"), SITE_KEY)


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    data = tmp_path / "cloud"
    data.mkdir()
    generate_secrets(data / "secrets.toml")
    return data


def open_service(data: Path) -> CloudService:
    return CloudService.open(load_config(None, {"PULLPRINT_DATA_DIR": str(data)}))


def test_import_applies_after_checking_and_a_rerun_changes_nothing(data_dir: Path) -> None:
    lines = [
        "ada@example.org,Ada Lovelace,90:324,h10301/fn,blue badge",
        "ada@example.org,,1234:567890,corp1000/fn,fob",
        "bob@example.org,Bob,,,",
    ]
    service = open_service(data_dir)
    try:
        dry = import_users(service, csv_lines(*lines), SITE_KEY, dry_run=True)
        assert dry.ok and [r.user for r in dry.rows] == [
            "would be created",
            "exists",
            "would be created",
        ]
        assert service.identity.card_owner(credential_tag(SITE_KEY, H)) is None  # nothing written

        bad = import_users(service, csv_lines(*lines, "cy@example.org,Cy,1,h10301/fn,"), SITE_KEY)
        assert not bad.ok and bad.rows == []  # one bad row: nothing imported at all
        with pytest.raises(Exception, match="user"):
            service.passcodes.user_by_email("ada@example.org")

        done = import_users(service, csv_lines(*lines), SITE_KEY)
        assert done.ok, done
        assert [(r.user, r.badge) for r in done.rows] == [
            ("created", "added"),
            ("exists", "added"),
            ("created", "none"),
        ]
        assert set(done.tokens) == {"ada@example.org", "bob@example.org"}
        ada = service.passcodes.user_by_email("ada@example.org")
        assert ada.display_name == "Ada Lovelace"
        labels = sorted(card.label for card in service.identity.list_cards(ada.id))
        assert labels == ["blue badge", "fob"]
        assert service.identity.card_owner(credential_tag(SITE_KEY, C)) == ada.id

        again = import_users(service, csv_lines(*lines), SITE_KEY)
        assert again.ok and not again.tokens
        assert [r.badge for r in again.rows][:2] == ["already enrolled to this user"] * 2
        # The same badge listed for someone else is a failed row, not a silent move.
        moved = import_users(service, csv_lines("bob@example.org,Bob,90:324,h10301/fn,"), SITE_KEY)
        assert not moved.ok and moved.rows[0].badge == "enrolled to another user"
        assert service.identity.card_owner(credential_tag(SITE_KEY, H)) == ada.id
    finally:
        service.close()


def test_the_cli_imports_with_the_site_key_and_keeps_tokens_private(
    data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    key_file = tmp_path / "admin" / "site.key"
    common = ["--data-dir", str(data_dir), "--site-key-file", str(key_file)]
    assert (
        main(
            ["admin", "site", "init", "--data-dir", str(data_dir), "--site-key-file", str(key_file)]
        )
        == 0
    )
    site_key = bytes.fromhex(key_file.read_text().strip())
    sheet = tmp_path / "users.csv"
    with sheet.open("w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["email", "name", "badge", "label"])
        writer.writerow(["ada@example.org", "Ada", "90:324", "blue"])
        writer.writerow(["bob@example.org", "Bob", "91:1", "red"])
    capsys.readouterr()
    assert main(["admin", "user", "import", str(sheet), *common]) == 1  # no format anywhere
    err = capsys.readouterr().out
    assert "line 2: the badge has no format" in err and "nothing was imported" in err
    assert "324" not in err

    assert (
        main(["admin", "user", "import", str(sheet), "--format", "h10301/fn", "--dry-run", *common])
        == 0
    )
    assert "would be added" in capsys.readouterr().out
    tokens = tmp_path / "tokens.csv"
    args = [
        "admin",
        "user",
        "import",
        str(sheet),
        "--format",
        "h10301/fn",
        "--tokens-out",
        str(tokens),
    ]
    assert main([*args, *common]) == 0
    out = capsys.readouterr().out
    assert "added" in out and "ppu_" not in out
    assert stat.S_IMODE(tokens.stat().st_mode) == 0o600
    assert tokens.read_text().count("ppu_") == 2

    assert main(["admin", "badge", "list", "ada@example.org", "--data-dir", str(data_dir)]) == 0
    listed = capsys.readouterr().out
    assert "blue" in listed
    badge_id = listed.split()[0]
    service = open_service(data_dir)
    try:
        assert service.identity.card_owner(credential_tag(site_key, h10301(90, 324))) is not None
    finally:
        service.close()
    assert (
        main(["admin", "badge", "remove", "ada@example.org", badge_id, "--data-dir", str(data_dir)])
        == 0
    )
    add = ["admin", "badge", "add", "ada@example.org", "90-324", "--format", "h10301/fn"]
    assert main([*add, "--label", "new blue", *common]) == 0
    assert main([*add, *common]) == 1  # enrolled already
    assert "90-324" not in capsys.readouterr().out  # the badge number is in no output


def test_the_import_over_the_admin_api_sends_only_tags(
    data_dir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from cloud.app import create_app
    from cloud.server import start_in_thread
    from tools.user_import import import_users_over_api

    config = load_config(None, {"PULLPRINT_DATA_DIR": str(data_dir)})
    app = create_app(config)
    server = start_in_thread(app, host="127.0.0.1", port=0)
    sent: list[bytes] = []
    import requests

    class Recording(requests.Session):
        def send(self, request, **kwargs):  # type: ignore[no-untyped-def]
            sent.append(request.body or b"")
            return super().send(request, **kwargs)

    try:
        lines = ["ada@example.org,Ada,90:324,h10301/fn,blue", "bob@example.org,Bob,,,"]
        with Recording() as http:
            dry = import_users_over_api(
                server.url,
                config.admin_token,
                csv_lines(*lines),
                SITE_KEY,
                dry_run=True,
                session=http,
            )
            assert dry.ok and [r.badge for r in dry.rows] == ["would be added", "none"]
            done = import_users_over_api(
                server.url, config.admin_token, csv_lines(*lines), SITE_KEY, session=http
            )
        assert done.ok and set(done.tokens) == {"ada@example.org", "bob@example.org"}
        assert [r.badge for r in done.rows] == ["added", "none"]
        tag = credential_tag(SITE_KEY, H)
        assert all(b"90:324" not in body and str(H_BITS).encode() not in body for body in sent)
        assert any(tag.encode() in body for body in sent)  # the tag, and only the tag, travels
        service = app.state.service
        assert (
            service.identity.card_owner(tag)
            == service.passcodes.user_by_email("ada@example.org").id
        )

        # The CLI: the token from the environment, never a flag.
        key_file = tmp_path / "site.key"
        key_file.write_text(SITE_KEY.hex())
        key_file.chmod(0o600)
        sheet = tmp_path / "more.csv"
        sheet.write_text("email,badge,format\ncy@example.org,91:7,h10301/fn\n")
        args = ["admin", "user", "import", str(sheet), "--cloud", server.url]
        assert main([*args, "--site-key-file", str(key_file)]) == 1
        assert "PULLPRINT_ADMIN_TOKEN" in capsys.readouterr().err
        monkeypatch.setenv("PULLPRINT_ADMIN_TOKEN", config.admin_token)
        assert main([*args, "--site-key-file", str(key_file)]) == 0
        assert "added" in capsys.readouterr().out
        monkeypatch.setenv("PULLPRINT_ADMIN_TOKEN", "ppa_wrong")
        assert main([*args, "--site-key-file", str(key_file)]) == 1
        assert "HTTP 401" in capsys.readouterr().err
    finally:
        server.stop()
