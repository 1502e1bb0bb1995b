"""Finding, opening and grabbing an evdev input device: shared by badge readers and the panel.

A device is named by its input-device name (as evdev reports it) or by a stable
`/dev/input/by-id` / `by-path` link, never by `/dev/input/eventN`, whose number changes between
boots and plug-ins. It is grabbed (EVIOCGRAB) for as long as it is open, so badge numbers and PIN
digits never reach a console or another application as typed text.
"""

from __future__ import annotations

import contextlib
import re
from contextlib import AbstractContextManager
from typing import Any, Generic, Protocol, TypeVar

EV_KEY, EV_ABS = 0x01, 0x03
_STABLE_DIRS = ("/dev/input/by-id/", "/dev/input/by-path/")
_EVENT_N = re.compile(r"^/dev/input/event\d+$")


class GrabbableDevice(Protocol):
    """What holding a grab needs from a device."""

    def grab_context(self) -> AbstractContextManager[None]: ...
    def close(self) -> None: ...


D = TypeVar("D", bound=GrabbableDevice)


def check_device_spec(spec: str, what: str) -> None:
    """Refuse a device spec that is not stable across boots; raises ValueError naming `what`."""
    if not spec.strip():
        raise ValueError(f"the {what} device must be named")
    if spec.startswith("/") and not spec.startswith(_STABLE_DIRS):
        hint = " (eventN numbers change between boots)" if _EVENT_N.match(spec) else ""
        raise ValueError(
            f"name the {what} by its device name or a /dev/input/by-id or by-path link" + hint
        )


def open_input_device(spec: str, what: str, needs: int) -> Any:
    """Open the evdev device `spec` (a name, or a by-id / by-path link) that reports event type
    `needs` (EV_KEY for readers and keypads, EV_ABS for touch panels); an `evdev.InputDevice`.

    Raises:
        ValueError: `spec` is not a stable name.
        OSError: no such device now (FileNotFoundError), or it cannot be opened.
    """
    import evdev  # noqa: PLC0415  (evdev is Linux-only and in the station extra)

    check_device_spec(spec, what)
    if spec.startswith("/"):
        return evdev.InputDevice(spec)
    for path in evdev.list_devices():
        try:
            device = evdev.InputDevice(path)
        except OSError:
            continue  # vanished, or not ours to open: keep looking
        # One USB device can expose several interfaces under one name; take the one that fits.
        if device.name == spec and needs in device.capabilities():
            return device
        device.close()
    raise FileNotFoundError(f"no input device named {spec!r}")


class Grabbed(Generic[D]):
    """An open device and the grab held on it."""

    def __init__(self, device: D) -> None:
        self.device = device
        self._stack = contextlib.ExitStack()
        try:
            self._stack.enter_context(device.grab_context())
        except OSError:
            device.close()
            raise

    def close(self) -> None:
        # Ungrabbing a device that was unplugged fails with ENODEV: it is released anyway.
        with contextlib.suppress(OSError):
            self._stack.close()
        self.device.close()
