"""Decode the DNS-SD TXT records of printers into a typed `DiscoveredPrinter`. Pure: no I/O.

Keys and values follow the Bonjour Printing Specification 1.2.1 (Apple) and PWG 5100.14
(IPP Everywhere) §4.2: `txtvers`, `rp`, `ty`, `product`, `pdl`, `UUID`, `URF`, `Color`, `Duplex`,
`adminurl`, `note`, `kind`, `PaperMax`, `TLS`, `usb_MFG`, `usb_MDL`, `priority`, `qtotal`.

Invariants:

- TXT keys are matched case-insensitively (RFC 6763 §6.4); the first occurrence wins (§6.4);
- values are untrusted bytes: decoded as UTF-8 with replacement, control characters removed and
  every string cut to 255 characters (one TXT string is at most 255 bytes, RFC 6763 §6.1);
- `decode_txt` never raises on any mapping of str/bytes keys to str/bytes/None values;
- a boolean key is True only for "T"/"true"/"1", False only for "F"/"false"/"0", else None.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

# DNS-SD service type -> the URI scheme used to print to it.
SERVICE_SCHEMES: dict[str, str] = {
    "_ipp._tcp.local.": "ipp",
    "_ipps._tcp.local.": "ipps",
    "_pdl-datastream._tcp.local.": "socket",
    "_printer._tcp.local.": "lpd",
}
PRINTER_SERVICE_TYPES: tuple[str, ...] = tuple(SERVICE_SCHEMES)

_MAX_TEXT = 255
_MAX_LIST = 64
_TRUE = frozenset({"t", "true", "1", "yes"})
_FALSE = frozenset({"f", "false", "0", "no"})

TxtValue = str | bytes | None
TxtRecord = Mapping[str, TxtValue] | Mapping[bytes, TxtValue] | Mapping[str | bytes, TxtValue]


@dataclass(frozen=True)
class DiscoveredPrinter:
    """One printer service seen over mDNS, with its TXT record decoded.

    `make`/`model` come from `usb_MFG`/`usb_MDL` where present, else from `ty` (make = its first
    word); `product` is `product` without its parentheses. `uri` is what to print to.
    """

    name: str
    service_type: str
    scheme: str
    host: str
    port: int
    addresses: tuple[str, ...] = ()
    uuid: str | None = None
    make_and_model: str | None = None
    make: str | None = None
    model: str | None = None
    product: str | None = None
    pdl: tuple[str, ...] = ()
    urf: tuple[str, ...] = ()
    color: bool | None = None
    duplex: bool | None = None
    admin_url: str | None = None
    resource_path: str | None = None
    location: str | None = None
    txt_version: str | None = None
    kinds: tuple[str, ...] = ()
    paper_max: str | None = None
    tls: str | None = None
    extra: tuple[tuple[str, str], ...] = field(default=())  # other keys, for diagnostics

    @property
    def uri(self) -> str:
        """The printer URI (`ipp://host:631/ipp/print`, `socket://host:9100`, `lpd://host/queue`)."""
        where = self.addresses[0] if self.addresses else self.host.rstrip(".")
        if ":" in where:
            where = f"[{where}]"
        path = (self.resource_path or "").lstrip("/")
        if self.scheme == "socket":
            return f"socket://{where}:{self.port}"
        return f"{self.scheme}://{where}:{self.port}/{path}"

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "name": self.name,
            "service_type": self.service_type,
            "scheme": self.scheme,
            "host": self.host,
            "port": self.port,
            "addresses": list(self.addresses),
            "uri": self.uri,
            "uuid": self.uuid,
            "make_and_model": self.make_and_model,
            "make": self.make,
            "model": self.model,
            "product": self.product,
            "pdl": list(self.pdl),
            "urf": list(self.urf),
            "color": self.color,
            "duplex": self.duplex,
            "admin_url": self.admin_url,
            "resource_path": self.resource_path,
            "location": self.location,
            "txt_version": self.txt_version,
            "kinds": list(self.kinds),
            "paper_max": self.paper_max,
            "tls": self.tls,
            "extra": dict(self.extra),
        }


def clean_text(raw: object) -> str | None:
    """A TXT key or value as text: UTF-8 with replacement, no control characters, <= 255 chars."""
    if raw is None:
        return None
    if isinstance(raw, bytes | bytearray | memoryview):
        text = bytes(raw).decode("utf-8", errors="replace")
    elif isinstance(raw, str):
        text = raw
    else:
        return None
    text = "".join(ch for ch in text if ch.isprintable() or ch == " ")
    return text[:_MAX_TEXT].strip()


def normalize_txt(record: TxtRecord) -> dict[str, str | None]:
    """Lower-cased keys -> cleaned values (None for a key without `=`); first occurrence wins."""
    result: dict[str, str | None] = {}
    try:
        items = list(record.items())
    except (AttributeError, TypeError):
        return result
    for raw_key, raw_value in items:
        key = clean_text(raw_key)
        if not key:
            continue
        key = key.lower()
        if key in result:
            continue
        result[key] = clean_text(raw_value)
    return result


def decode_txt(
    record: TxtRecord,
    *,
    name: str = "",
    service_type: str = "_ipp._tcp.local.",
    host: str = "",
    port: int = 0,
    addresses: tuple[str, ...] = (),
) -> DiscoveredPrinter:
    """Decode one service's TXT record (and where it was found) into a `DiscoveredPrinter`.

    Never raises: unknown keys go to `extra`, malformed values become None or are dropped.
    """
    txt = normalize_txt(record)
    stype = service_type.rstrip(".")
    stype = f"{stype}." if stype.lower().endswith(".local") else f"{stype}.local."
    scheme = SERVICE_SCHEMES.get(stype.lower(), "ipp")
    ty = txt.get("ty") or None
    usb_make = txt.get("usb_mfg") or None
    usb_model = txt.get("usb_mdl") or None
    make, model = _make_model(ty, usb_make, usb_model)
    known = {
        "txtvers", "rp", "ty", "product", "pdl", "uuid", "urf", "color", "duplex", "adminurl",
        "note", "kind", "papermax", "tls", "usb_mfg", "usb_mdl",
    }  # fmt: skip
    extra = tuple((k, v or "") for k, v in txt.items() if k not in known)[:_MAX_LIST]
    return DiscoveredPrinter(
        name=clean_text(name) or "",
        service_type=stype,
        scheme=scheme,
        host=clean_text(host) or "",
        port=port if isinstance(port, int) and 0 <= port < 65536 else 0,
        addresses=tuple(a for a in (clean_text(x) for x in addresses) if a),
        uuid=parse_uuid(txt.get("uuid")),
        make_and_model=ty,
        make=make,
        model=model,
        product=_product(txt.get("product")),
        pdl=split_list(txt.get("pdl")),
        urf=split_list(txt.get("urf")),
        color=parse_bool(txt.get("color")),
        duplex=parse_bool(txt.get("duplex")),
        admin_url=_url(txt.get("adminurl")),
        resource_path=txt.get("rp") or None,
        location=txt.get("note") or None,
        txt_version=txt.get("txtvers") or None,
        kinds=split_list(txt.get("kind")),
        paper_max=txt.get("papermax") or None,
        tls=txt.get("tls") or None,
        extra=extra,
    )


def parse_bool(value: str | None) -> bool | None:
    """Bonjour's "T"/"F" (and common spellings) as a bool; anything else None."""
    if value is None:
        return None
    word = value.strip().lower()
    if word in _TRUE:
        return True
    if word in _FALSE:
        return False
    return None


def parse_uuid(value: str | None) -> str | None:
    """A UUID (bare, braced or `urn:uuid:`) in canonical lower-case form, else None."""
    if not value:
        return None
    text = value.strip()
    if text.lower().startswith("urn:uuid:"):
        text = text[9:]
    try:
        return str(uuid.UUID(text))
    except ValueError:
        return None


def split_list(value: str | None) -> tuple[str, ...]:
    """A comma-separated TXT value as its non-empty, de-duplicated items (at most 64)."""
    if not value:
        return ()
    seen: dict[str, None] = {}
    for item in value.split(","):
        if (part := item.strip()) and len(seen) < _MAX_LIST:
            seen.setdefault(part, None)
    return tuple(seen)


def _make_model(
    ty: str | None, usb_make: str | None, usb_model: str | None
) -> tuple[str | None, str | None]:
    if usb_make and usb_model:
        return usb_make, usb_model
    if not ty:
        return usb_make, usb_model
    first, _, rest = ty.partition(" ")
    if usb_make and ty.lower().startswith(usb_make.lower() + " "):
        return usb_make, ty[len(usb_make) + 1 :].strip() or None
    if rest:
        return first, rest.strip()
    return usb_make, ty


def _product(value: str | None) -> str | None:
    if not value:
        return None
    text = value.strip()
    if text.startswith("(") and text.endswith(")"):
        text = text[1:-1].strip()
    return text or None


def _url(value: str | None) -> str | None:
    # Only web URLs: a TXT record must not hand an admin a javascript: or file: link.
    if value and value.lower().startswith(("http://", "https://")):
        return value
    return None
