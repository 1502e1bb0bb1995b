"""Choosing a badge reader by name: `reader_from_config(kind, options)`.

The station's composition root calls this with `[hardware] reader` as `kind` and the `[reader]`
table as `options`. Every option is checked here: an unknown key, a wrong type or a bad value is a
`ValueError` naming the key (a misspelt option must not silently fall back to a default), and the
simulated reader is only ever built when asked for by name.

Kinds and their options (defaults in brackets):

* "simulated": none.
* "wedge": `device` (input-device name or /dev/input/by-id link), `gap_ms` [150], the format
  options.
* "serial": `port` (device path or pyserial URL), `baudrate` [9600], `max_line_bytes` [128],
  the format options.
* "bridge": `port`, `baudrate` [115200], `handshake_timeout_s` [1.0].
* "pcsc": `reader` (a part of the PC/SC reader's name; the first reader if not set).
* every kind but "simulated": `reopen_max_s` [5.0], the longest wait between reopen attempts.

Format options (wedge, serial; see `ReaderFormat`): `technology` ["h10301"], `encoding`
["decimal"], `bit_length`, `parity` ["included"], `reversed_bytes` [false], `prefix` [""],
`suffix` [""], `separator` [":"].

The device modules are imported when their kind is chosen: evdev and pyserial are station
extras, and a machine that only runs the simulated reader need not have them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TypeVar, cast

from hardware.readers.base import CardReader
from hardware.readers.simulated import SimulatedCardReader
from hardware.readers.text import Encoding, Parity, ReaderFormat

__all__ = ["READER_KINDS", "reader_from_config"]

T = TypeVar("T")

_FORMAT_KEYS = (
    "technology",
    "encoding",
    "bit_length",
    "parity",
    "reversed_bytes",
    "prefix",
    "suffix",
    "separator",
)


class _Options:
    """Typed access to a reader's config table."""

    def __init__(self, kind: str, options: Mapping[str, object]) -> None:
        self._kind = kind
        self._options = options

    def get(self, key: str, kind: type[T], default: T | None = None) -> T:
        if key not in self._options:
            if default is None:
                raise ValueError(f"reader {self._kind!r} needs the option {key!r}")
            return default
        value = self._options[key]
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        # bool is an int: `true` is not a baud rate, and 1 is not `true`.
        if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
            raise ValueError(f"reader option {key!r} must be a {kind.__name__}")
        return value

    def optional_int(self, key: str) -> int | None:
        if key not in self._options:
            return None
        return self.get(key, int)


def _reader_format(opts: _Options) -> ReaderFormat:
    defaults = ReaderFormat()
    return ReaderFormat(
        technology=opts.get("technology", str, defaults.technology),
        # ReaderFormat checks these against their Literal choices.
        encoding=cast(Encoding, opts.get("encoding", str, defaults.encoding)),
        bit_length=opts.optional_int("bit_length"),
        parity=cast(Parity, opts.get("parity", str, defaults.parity)),
        reversed_bytes=opts.get("reversed_bytes", bool, False),
        prefix=opts.get("prefix", str, ""),
        suffix=opts.get("suffix", str, ""),
        separator=opts.get("separator", str, defaults.separator),
    )


def _simulated(opts: _Options) -> CardReader:
    return SimulatedCardReader()


def _wedge(opts: _Options) -> CardReader:
    from hardware.readers.wedge import WedgeCardReader  # noqa: PLC0415  (see module docstring)

    gap_ms = opts.get("gap_ms", int, 150)
    if not 20 <= gap_ms <= 2000:
        raise ValueError("reader option 'gap_ms' must be 20-2000")
    return WedgeCardReader(
        opts.get("device", str),
        _reader_format(opts),
        gap_s=gap_ms / 1000,
        reopen_max_s=_reopen_max_s(opts),
    )


def _serial(opts: _Options) -> CardReader:
    from hardware.readers.serial_reader import SerialCardReader  # noqa: PLC0415

    return SerialCardReader(
        opts.get("port", str),
        opts.get("baudrate", int, 9600),
        _reader_format(opts),
        max_line_bytes=opts.get("max_line_bytes", int, 128),
        reopen_max_s=_reopen_max_s(opts),
    )


def _bridge(opts: _Options) -> CardReader:
    from hardware.readers.bridge import BridgeCardReader  # noqa: PLC0415

    return BridgeCardReader(
        opts.get("port", str),
        opts.get("baudrate", int, 115200),
        handshake_timeout_s=opts.get("handshake_timeout_s", float, 1.0),
        reopen_max_s=_reopen_max_s(opts),
    )


def _pcsc(opts: _Options) -> CardReader:
    from hardware.readers.pcsc import PcscCardReader  # noqa: PLC0415  (pyscard: an extra)

    name = opts.get("reader", str, "") or None
    return PcscCardReader(name, reopen_max_s=_reopen_max_s(opts))


def _reopen_max_s(opts: _Options) -> float:
    value = opts.get("reopen_max_s", float, 5.0)
    if not 0.25 <= value <= 300:
        raise ValueError("reader option 'reopen_max_s' must be 0.25-300")
    return value


_BUILDERS: dict[str, Callable[[_Options], CardReader]] = {
    "simulated": _simulated,
    "wedge": _wedge,
    "serial": _serial,
    "bridge": _bridge,
    "pcsc": _pcsc,
}
READER_KINDS: tuple[str, ...] = tuple(_BUILDERS)
_KEYS: dict[str, tuple[str, ...]] = {
    "simulated": (),
    "wedge": ("device", "gap_ms", "reopen_max_s", *_FORMAT_KEYS),
    "serial": ("port", "baudrate", "max_line_bytes", "reopen_max_s", *_FORMAT_KEYS),
    "bridge": ("port", "baudrate", "handshake_timeout_s", "reopen_max_s"),
    "pcsc": ("reader", "reopen_max_s"),
}


def reader_from_config(kind: str, options: Mapping[str, object]) -> CardReader:
    """Build the reader named `kind` from its options (the station's `[reader]` table).

    Options are validated before the device is opened; a device that is not plugged in yet is
    not an error here (the reader reports it from `read()` and keeps retrying).

    Raises:
        ValueError: unknown kind (the message names the choices), unknown option, wrong type
            or bad value, or a device name that is not stable (a wedge reader's eventN).
    """
    builder = _BUILDERS.get(kind)
    if builder is None:
        raise ValueError(f"unknown reader {kind!r} (choose from {', '.join(READER_KINDS)})")
    unknown = sorted(set(options) - set(_KEYS[kind]))
    if unknown:
        # Checked before building: a typo must not open (and grab) a device first.
        raise ValueError(f"unknown option(s) for reader {kind!r}: {', '.join(unknown)}")
    return builder(_Options(kind, options))
