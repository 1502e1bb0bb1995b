"""Push buttons on GPIO pins through gpiozero: a `ButtonPanel`.

Each button is a debounced `gpiozero.Button`. A button without a hold action reports its name the
moment it goes down (the station must feel immediate). A button with a hold action cannot know on
the way down which it will be, so it reports its name when released before `hold_s`, or its hold
name once `hold_s` has passed (and nothing on the release after that).

Callbacks run on gpiozero's threads; `on_button` must be quick and thread-safe.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from functools import partial

from hardware.panel.base import ButtonHandler
from hardware.panel.errors import PanelError
from hardware.panel.pinmap import ButtonPin

__all__ = ["GpioButtonPanel"]

logger = logging.getLogger(__name__)


class GpioButtonPanel:
    """A `ButtonPanel` of gpiozero buttons, one per pin-map entry.

    Args:
        buttons: the pin map's buttons.
        pin_factory: a gpiozero pin factory; None uses gpiozero's default (`Device.pin_factory`,
            or `GPIOZERO_PIN_FACTORY`), which is `MockFactory` in tests.

    Raises:
        PanelError: a pin cannot be claimed (in use, not a GPIO on this board).
    """

    def __init__(self, buttons: Sequence[ButtonPin], *, pin_factory: object | None = None) -> None:
        from gpiozero import Button, GPIOZeroError  # noqa: PLC0415

        self.on_button: ButtonHandler | None = None
        self._specs = tuple(buttons)
        self._held: set[str] = set()
        self._lock = threading.Lock()
        self.devices: dict[str, object] = {}  # name -> gpiozero.Button, for tests and HIL checks
        try:
            for spec in self._specs:
                button = Button(
                    spec.pin,
                    pull_up=spec.pull_up,
                    bounce_time=spec.bounce_s,
                    hold_time=spec.hold_s,
                    pin_factory=pin_factory,
                )
                self.devices[spec.name] = button
                if spec.hold is None:
                    button.when_pressed = partial(self._emit, spec.name)
                else:
                    button.when_pressed = partial(self._pressed, spec.name)
                    button.when_held = partial(self._held_down, spec.name, spec.hold)
                    button.when_released = partial(self._released, spec.name)
        except GPIOZeroError as exc:
            self.close()
            raise PanelError(
                f"cannot set up button {spec.name!r} on GPIO{spec.pin}: {exc}"
            ) from exc

    @property
    def names(self) -> tuple[str, ...]:
        """Every name `on_button` can be called with (press names, then hold names)."""
        names: dict[str, None] = {}
        for spec in self._specs:
            names[spec.name] = None
        for spec in self._specs:
            if spec.hold is not None:
                names[spec.hold] = None
        return tuple(names)

    def close(self) -> None:
        """Release the pins; no callback fires after this returns."""
        self.on_button = None
        for device in self.devices.values():
            device.close()  # type: ignore[attr-defined]
        self.devices.clear()

    def _emit(self, name: str) -> None:
        handler = self.on_button
        if handler is None:
            return
        try:
            handler(name)
        except Exception:
            # An exception here would be swallowed by gpiozero's thread; make it visible.
            logger.exception("button handler failed for %s", name)

    def _pressed(self, name: str) -> None:
        with self._lock:
            self._held.discard(name)

    def _held_down(self, name: str, hold_name: str) -> None:
        with self._lock:
            self._held.add(name)
        self._emit(hold_name)

    def _released(self, name: str) -> None:
        with self._lock:
            was_held = name in self._held
            self._held.discard(name)
        if not was_held:
            self._emit(name)
