"""The printer registry, station heartbeats with the config ETag, device data and discovered
devices, through the HTTP API with signed station requests."""

from __future__ import annotations

import base64
import hashlib
from typing import Any, cast

import pytest

from cloud.db import PrinterAlert
from cloud.errors import InvalidRequestError
from cloud.registry import PrinterSpec, check_spec
from cloud.service import CloudService
from hardware.printers.fallback import PrinterPolicy
from tests.cloud.conftest import FakeClock, SignedAuth, TestClient, admin_headers, pair_station
from tests.cloud.test_api import assert_problem

PIN = base64.b64encode(hashlib.sha256(b"printer key").digest()).decode()
ADMIN = "/api/v1/admin"
HEARTBEAT = "/api/v1/station/heartbeat"


def _service(client: TestClient) -> CloudService:
    return cast(CloudService, client.app.state.service)  # type: ignore[attr-defined]


def _add(client: TestClient, **fields: Any) -> dict[str, Any]:
    body = {"name": "Floor 2", "uri": "ipp://10.0.0.5/ipp/print", **fields}
    response = client.post(f"{ADMIN}/printers", json=body, headers=admin_headers())
    assert response.status_code == 201, response.text
    return cast(dict[str, Any], response.json())


@pytest.fixture
def station(client: TestClient, clock: FakeClock) -> SignedAuth:
    return SignedAuth(pair_station(_service(client)), clock)


def test_printers_are_added_listed_changed_assigned_and_removed(
    client: TestClient, station: SignedAuth
) -> None:
    printer = _add(
        client,
        mode="ipps-then-ipp",
        uri="ipps://10.0.0.5/ipp/print",
        pin=PIN,
        ipp_uri="ipp://10.0.0.5/ipp/print",
        location="2nd floor",
        capabilities={"color": True},
        snmp_community="s3cret",
    )
    assert printer["has_snmp"] is True and "s3cret" not in str(printer)
    assert_problem(
        client.post(
            f"{ADMIN}/printers",
            json={"name": "Floor 2", "uri": "ipp://x/p"},
            headers=admin_headers(),
        ),
        409,
        "printer-exists",
    )
    listed = client.get(f"{ADMIN}/printers", headers=admin_headers()).json()["printers"]
    assert [p["name"] for p in listed] == ["Floor 2"]

    pid, sid = printer["id"], str(station.station.id)
    assigned = client.put(f"{ADMIN}/printers/{pid}/stations/{sid}", headers=admin_headers())
    assert assigned.json()["stations"] == [sid]
    assert_problem(
        client.delete(f"{ADMIN}/printers/{pid}", headers=admin_headers()), 409, "printer-in-use"
    )

    changed = client.patch(
        f"{ADMIN}/printers/{pid}", json={"location": "3rd floor"}, headers=admin_headers()
    )
    assert changed.json()["config_version"] == 2 and changed.json()["location"] == "3rd floor"
    # A change that would break the policy is refused and changes nothing.
    assert_problem(
        client.patch(f"{ADMIN}/printers/{pid}", json={"pin": None}, headers=admin_headers()),
        400,
        "invalid-request",
    )
    shown = client.get(f"{ADMIN}/printers/{pid}", headers=admin_headers()).json()
    assert shown["printer"]["pin"] == PIN and shown["status"] is None

    other = _add(client, name="Floor 3")
    client.put(f"{ADMIN}/printers/{other['id']}/stations/{sid}", headers=admin_headers())
    assert client.delete(f"{ADMIN}/printers/{pid}", headers=admin_headers()).status_code == 204
    assert_problem(
        client.get(f"{ADMIN}/printers/{pid}", headers=admin_headers()), 404, "printer-not-found"
    )


SPECS = [
    {"uri": "ipps://p/ipp", "pin": PIN, "mode": "ipps-only"},
    {"uri": "ipps://p/ipp", "mode": "ipps-only"},  # no pin
    {"uri": "ipps://p/ipp", "pin": PIN, "mode": "ipps-only", "ipp_uri": "ipp://p/ipp"},
    {"uri": "ipps://p/ipp", "pin": PIN, "mode": "ipps-then-ipp", "ipp_uri": "ipp://p/ipp"},
    {"uri": "ipps://p/ipp", "pin": PIN, "mode": "ipps-then-ipp", "raw_uri": "socket://p"},
    {
        "uri": "ipps://p/ipp",
        "pin": PIN,
        "mode": "any",
        "ipp_uri": "ipp://p/ipp",
        "raw_uri": "socket://p",
    },
    {"uri": "ipp://p/ipp", "mode": "any", "raw_uri": "socket://p"},
    {"uri": "ipps://p/ipp", "pin": "not-a-pin", "mode": "ipps-only"},
    {"uri": "ipp://p/ipp", "mode": "sideways"},
]


@pytest.mark.parametrize("fields", SPECS)
def test_the_registry_accepts_exactly_the_policies_the_station_accepts(
    fields: dict[str, Any],
) -> None:
    """The cloud restates PrinterPolicy's rules (it may not import the printer stack)."""
    uri = fields["uri"]
    try:
        PrinterPolicy(
            fields["mode"],
            ipps_uri=uri if uri.startswith("ipps") else None,
            pin=fields.get("pin"),
            ipp_uri=fields.get("ipp_uri") or (uri if uri.startswith("ipp:") else None),
            raw_uri=fields.get("raw_uri"),
        )
        station_accepts = True
    except ValueError:
        station_accepts = False
    try:
        check_spec(PrinterSpec(name="p", **fields))
        cloud_accepts = True
    except InvalidRequestError:
        cloud_accepts = False
    assert cloud_accepts == station_accepts


def test_heartbeat_answers_304_while_the_config_is_current(
    client: TestClient, station: SignedAuth
) -> None:
    service = _service(client)
    unassigned = client.post(HEARTBEAT, auth=station)
    assert unassigned.status_code == 200 and unassigned.json()["config"]["printer"] is None
    printer = _add(client, snmp_community="public")
    sid = str(station.station.id)
    client.put(f"{ADMIN}/printers/{printer['id']}/stations/{sid}", headers=admin_headers())

    first = client.post(
        HEARTBEAT,
        auth=station,
        headers={"If-None-Match": '"stale"'},
        content=b'{"started":1,"version":"0.1.0"}',
    )
    assert first.status_code == 200
    etag, config = first.json()["etag"], first.json()["config"]
    assert first.headers.get("etag") in (None, etag)
    assert config["printer"]["uri"] == "ipp://10.0.0.5/ipp/print"
    assert config["printer"]["snmp_community"] == "public"  # the station needs it

    same = client.post(HEARTBEAT, auth=station, headers={"If-None-Match": etag})
    assert (same.status_code, same.content, same.headers["etag"]) == (304, b"", etag)
    health = service.registry.station_health(station.station.id, "default")
    assert health is not None and health["config_current"] is True
    assert health["health"] == {"started": 1, "version": "0.1.0"}  # kept from the last report
    assert health["heartbeats"] == 3

    client.patch(
        f"{ADMIN}/printers/{printer['id']}",
        json={"uri": "ipp://10.0.0.6/ipp/print"},
        headers=admin_headers(),
    )
    changed = client.post(HEARTBEAT, auth=station, headers={"If-None-Match": etag})
    assert changed.status_code == 200 and changed.json()["etag"] != etag
    assert changed.json()["config"]["printer"]["uri"] == "ipp://10.0.0.6/ipp/print"

    bad = client.post(HEARTBEAT, auth=station, content=b'{"started": "yesterday", "x": 1}')
    assert_problem(bad, 400, "invalid-request")
    assert client.post(HEARTBEAT).status_code == 401  # unsigned


def test_device_data_and_alerts_deduplicated(client: TestClient, station: SignedAuth) -> None:
    service = _service(client)
    url = "/api/v1/station/device-data"
    status: dict[str, Any] = {
        "status_words": "Idle",
        "problem": None,
        "errors": [],
        "supplies": [
            {"description": "Black", "kind": "toner", "percent": 42, "level_words": "42%"}
        ],
    }
    assert_problem(
        client.post(url, json={"status": status}, auth=station), 409, "no-printer-assigned"
    )
    printer = _add(client)
    client.put(
        f"{ADMIN}/printers/{printer['id']}/stations/{station.station.id}", headers=admin_headers()
    )
    paper = {"severity": "critical", "words": "Out of paper"}
    for _ in range(3):  # the same alert reported again is one alert
        sent = client.post(
            url,
            json={"status": status, "meters": {"page_count": 1234}, "alerts": [paper]},
            auth=station,
        )
        assert sent.status_code == 204, sent.text
    shown = client.get(f"{ADMIN}/printers/{printer['id']}", headers=admin_headers()).json()
    assert shown["status"]["supplies"][0]["percent"] == 42
    assert [m["page_count"] for m in shown["meters"]] == [1234] * 3
    assert [a["words"] for a in shown["alerts"]] == ["Out of paper"]
    client.post(url, json={"alerts": []}, auth=station)
    shown = client.get(f"{ADMIN}/printers/{printer['id']}", headers=admin_headers()).json()
    assert shown["alerts"] == []
    with service.context.read() as db:
        rows = db.query(PrinterAlert).all()
        assert len(rows) == 1 and rows[0].cleared_at is not None
    too_big = {"status": {**status, "supplies": [status["supplies"][0]] * 33}}
    assert client.post(url, json=too_big, auth=station).status_code == 422


def _device(serial: str, address: str, **extra: Any) -> dict[str, Any]:
    return {
        "addresses": [address],
        "serial_number": serial,
        "make": "HP",
        "model": "M130nw",
        "uris": [f"ipps://{address}/ipp/print", f"ipp://{address}/ipp/print"],
        "sources": ["mdns", "snmp"],
        **extra,
    }


def test_discovered_devices_reported_listed_and_adopted(
    client: TestClient, station: SignedAuth
) -> None:
    url = "/api/v1/station/discovered"
    first = client.post(
        url,
        json={"devices": [_device("SN1", "10.0.0.7"), _device("SN2", "10.0.0.8")]},
        auth=station,
    )
    assert first.json() == {"new": 2, "updated": 0}
    # Seen again (new address, same serial) from an admin's machine: updated, not added.
    again = client.post(
        f"{ADMIN}/discovered",
        json={"devices": [_device("sn1", "10.0.0.9")]},
        headers=admin_headers(),
    )
    assert again.json() == {"new": 0, "updated": 1}
    listed = client.get(f"{ADMIN}/discovered", headers=admin_headers()).json()["devices"]
    assert sorted(d["identity"] for d in listed) == ["serial:sn1", "serial:sn2"]
    device = next(d for d in listed if d["identity"] == "serial:sn1")
    assert device["data"]["addresses"] == ["10.0.0.9"]

    adopted = client.post(
        f"{ADMIN}/discovered/{device['id']}/register",
        json={"name": "Found"},
        headers=admin_headers(),
    )
    assert adopted.status_code == 201, adopted.text
    # No pin was given: the printer is reached by ipp://, never by an unpinned ipps://.
    assert adopted.json()["uri"] == "ipp://10.0.0.9/ipp/print"
    assert adopted.json()["capabilities"]["serial_number"] == "sn1"  # as last reported
    assert_problem(
        client.post(
            f"{ADMIN}/discovered/{device['id']}/register",
            json={"name": "Again"},
            headers=admin_headers(),
        ),
        409,
        "conflict",
    )
    pinned = next(d for d in listed if d["identity"] == "serial:sn2")
    with_pin = client.post(
        f"{ADMIN}/discovered/{pinned['id']}/register",
        json={"name": "Pinned", "pin": PIN, "mode": "ipps-only"},
        headers=admin_headers(),
    )
    assert with_pin.status_code == 201 and with_pin.json()["uri"].startswith("ipps://")
    nothing = client.post(url, json={"devices": [{"name": "no identity"}]}, auth=station)
    assert_problem(nothing, 400, "invalid-request")


def test_pair_cli_takes_the_printer_from_the_registry(client: TestClient, tmp_path: Any) -> None:
    """`pullprint pair --printer NAME` needs no URI for a registered printer and assigns it."""
    service = _service(client)
    printer = service.registry.add(PrinterSpec(name="Hall", uri="ipp://10.0.0.5/ipp/print"))
    from tools.pair_cmd import registered_printer

    assert registered_printer(service, "Hall", None, "default").id == printer.id
    from tools.cli import CliError

    with pytest.raises(CliError, match="registered at"):
        registered_printer(service, "Hall", "ipp://elsewhere/ipp", "default")
    with pytest.raises(CliError, match="no printer"):
        registered_printer(service, "Nowhere", None, "default")
    made = registered_printer(service, "New", "ipp://10.0.0.9/ipp/print", "default")
    assert service.registry.find("New").id == made.id


def test_required_fields_cannot_be_removed(client: TestClient) -> None:
    printer = _add(client)
    for field_name in ("uri", "name", "raw_pjl"):
        response = client.patch(
            f"{ADMIN}/printers/{printer['id']}", json={field_name: None}, headers=admin_headers()
        )
        assert_problem(response, 400, "invalid-request")
    unknown = client.patch(
        f"{ADMIN}/printers/{printer['id']}", json={"colour": "red"}, headers=admin_headers()
    )
    assert unknown.status_code == 422
