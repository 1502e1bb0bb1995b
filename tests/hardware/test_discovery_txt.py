"""The DNS-SD TXT decoder: real-looking records, odd spellings, and garbage (property test)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from hardware.discovery.txt import (
    DiscoveredPrinter,
    decode_txt,
    parse_bool,
    parse_uuid,
    split_list,
)

HP_TXT = {
    b"txtvers": b"1",
    b"qtotal": b"1",
    b"rp": b"ipp/print",
    b"ty": b"HP Color LaserJet Pro M252dw",
    b"product": b"(HP Color LaserJet Pro M252dw)",
    b"pdl": b"application/vnd.hp-PCL,image/jpeg,application/PCLm,image/urf,application/pdf",
    b"UUID": b"564e4233-4a39-3939-3939-c48e8fa24548",
    b"URF": b"CP1,MT1-2-8-9-10-11,OB9,OFU0,PQ3-4-5,RS600,SRGB24,W8,DM1,IS1-4",
    b"Color": b"T",
    b"Duplex": b"T",
    b"adminurl": b"http://NPIA24548.local./#hId-pgAirPrint",
    b"note": b"Floor 2",
    b"kind": b"document,envelope,photo",
    b"PaperMax": b"legal-A4",
    b"TLS": b"1.2",
    b"priority": b"10",
}


def test_decodes_an_airprint_record() -> None:
    printer = decode_txt(
        HP_TXT,
        name="HP Color LaserJet",
        service_type="_ipps._tcp.local.",
        host="NPIA24548.local.",
        port=631,
        addresses=("127.0.0.1",),
    )
    assert printer.scheme == "ipps"
    assert printer.uuid == "564e4233-4a39-3939-3939-c48e8fa24548"
    assert printer.make == "HP"
    assert printer.model == "Color LaserJet Pro M252dw"
    assert printer.make_and_model == "HP Color LaserJet Pro M252dw"
    assert printer.product == "HP Color LaserJet Pro M252dw"
    assert "application/pdf" in printer.pdl and len(printer.pdl) == 5
    assert printer.urf[0] == "CP1" and "DM1" in printer.urf
    assert printer.color is True and printer.duplex is True
    assert printer.admin_url == "http://NPIA24548.local./#hId-pgAirPrint"
    assert printer.resource_path == "ipp/print"
    assert printer.location == "Floor 2"
    assert printer.txt_version == "1"
    assert printer.kinds == ("document", "envelope", "photo")
    assert printer.paper_max == "legal-A4"
    assert printer.tls == "1.2"
    assert ("priority", "10") in printer.extra
    assert printer.uri == "ipps://127.0.0.1:631/ipp/print"
    assert printer.to_json()["uri"] == printer.uri


def test_keys_are_case_insensitive_and_first_wins() -> None:
    printer = decode_txt({"COLOR": "F", "color": "T", "duplex": None, "Ty": "Brother HL-L2350DW"})
    assert printer.color is False
    assert printer.duplex is None
    assert (printer.make, printer.model) == ("Brother", "HL-L2350DW")


def test_usb_make_and_model_take_precedence() -> None:
    printer = decode_txt(
        {b"ty": b"Kyocera ECOSYS P2040dw", b"usb_MFG": b"Kyocera", b"usb_MDL": b"ECOSYS P2040dw"}
    )
    assert (printer.make, printer.model) == ("Kyocera", "ECOSYS P2040dw")
    only_mfg = decode_txt({b"ty": b"Hewlett-Packard LaserJet 400", b"usb_MFG": b"Hewlett-Packard"})
    assert (only_mfg.make, only_mfg.model) == ("Hewlett-Packard", "LaserJet 400")


def test_service_types_map_to_schemes_and_uris() -> None:
    raw = decode_txt({}, service_type="_pdl-datastream._tcp", host="p.local.", port=9100)
    assert raw.scheme == "socket"
    assert raw.uri == "socket://p.local:9100"
    lpd = decode_txt(
        {"rp": "queue"}, service_type="_printer._tcp.local.", host="p.local.", port=515
    )
    assert lpd.uri == "lpd://p.local:515/queue"
    ipp = decode_txt({"rp": "/ipp/print"}, service_type="_ipp._tcp.local.", port=631, host="h")
    assert ipp.uri == "ipp://h:631/ipp/print"


def test_garbage_values_become_none() -> None:
    printer = decode_txt(
        {
            b"UUID": b"not-a-uuid",
            b"Color": b"maybe",
            b"adminurl": b"javascript:alert(1)",
            b"ty": b"\xff\xfe\x00HP\x07 M1",
            b"pdl": b",,application/pdf,,application/pdf, ",
            b"\xff": b"x",
            b"": b"empty key",
        }
    )
    assert printer.uuid is None
    assert printer.color is None
    assert printer.admin_url is None
    assert printer.pdl == ("application/pdf",)
    assert printer.make_and_model is not None and "\x00" not in printer.make_and_model


def test_helpers() -> None:
    assert parse_bool("T") is True and parse_bool("f") is False and parse_bool("") is None
    assert parse_uuid("urn:uuid:564E4233-4A39-3939-3939-C48E8FA24548") == (
        "564e4233-4a39-3939-3939-c48e8fa24548"
    )
    assert parse_uuid("{564e4233-4a39-3939-3939-c48e8fa24548}") is not None
    assert split_list(None) == ()
    assert len(split_list(",".join(str(i) for i in range(500)))) == 64


def test_values_are_cut_to_255_characters() -> None:
    printer = decode_txt({b"note": b"x" * 1000})
    assert printer.location is not None and len(printer.location) == 255


_text = st.one_of(st.binary(max_size=300), st.text(max_size=300))


@given(st.dictionaries(_text, st.one_of(st.none(), _text), max_size=20), st.integers())
def test_never_raises_on_any_record(
    record: dict[str | bytes, str | bytes | None], port: int
) -> None:
    printer = decode_txt(record, name="x", port=port)
    assert isinstance(printer, DiscoveredPrinter)
    assert 0 <= printer.port < 65536
    printer.to_json()
    _ = printer.uri


def test_never_raises_on_a_non_mapping() -> None:
    assert decode_txt(None).pdl == ()  # type: ignore[arg-type]
