"""The buzzer through gpiozero: a `Buzzer` playing the `patterns.SOUNDS`.

A passive piezo ("tonal") is driven by `gpiozero.TonalBuzzer` at each step's pitch (PWM); an active
buzzer ("active") by `gpiozero.Buzzer`, which beeps at its own pitch: the sounds still differ,
because they differ in rhythm. Sounds play on a thread of ours so `play()` returns at once; a new
sound cuts the previous one short.
"""

from __future__ import annotations

import threading

from hardware.panel.base import Sound
from hardware.panel.errors import PanelError
from hardware.panel.patterns import SOUNDS, Beep
from hardware.panel.pinmap import BuzzerPin

__all__ = ["GpioBuzzer"]


class GpioBuzzer:
    """A `Buzzer` on one GPIO pin.

    Args:
        pin: the pin map's `[buzzer]`.
        pin_factory: a gpiozero pin factory; None uses gpiozero's default.

    Raises:
        PanelError: the pin cannot be claimed (or cannot do PWM, for a tonal buzzer).
    """

    def __init__(self, pin: BuzzerPin, *, pin_factory: object | None = None) -> None:
        from gpiozero import (  # noqa: PLC0415
            Buzzer,
            GPIOZeroError,
            TonalBuzzer,
        )
        from gpiozero.tones import Tone  # noqa: PLC0415

        self.tonal = pin.kind == "tonal"
        self._tone = Tone
        try:
            if self.tonal:
                # A5 +- 2 octaves (220-3520 Hz) covers every step in SOUNDS.
                self.device = TonalBuzzer(
                    pin.pin, mid_tone=Tone("A5"), octaves=2, pin_factory=pin_factory
                )
            else:
                self.device = Buzzer(pin.pin, active_high=pin.active_high, pin_factory=pin_factory)
        except GPIOZeroError as exc:
            raise PanelError(f"cannot set up the buzzer on GPIO{pin.pin}: {exc}") from exc
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    @property
    def busy(self) -> bool:
        """True while a sound is playing."""
        thread = self._thread
        return thread is not None and thread.is_alive()

    def play(self, sound: Sound) -> None:
        """Start `sound` in the background, cutting short the one playing."""
        steps = SOUNDS[sound]
        with self._lock:
            self._halt()
            self._stop = threading.Event()
            self._thread = threading.Thread(
                target=self._run, args=(steps, self._stop), name="buzzer", daemon=True
            )
            self._thread.start()

    def wait(self, timeout_s: float | None = None) -> bool:
        """Wait for the current sound to end; False if it is still playing after `timeout_s`."""
        thread = self._thread
        if thread is not None:
            thread.join(timeout_s)
        return not self.busy

    def stop(self) -> None:
        """Silence the buzzer now."""
        with self._lock:
            self._halt()

    def close(self) -> None:
        """Silence it and release the pin."""
        self.stop()
        self.device.close()

    def _halt(self) -> None:
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join()
        self._thread = None

    def _run(self, steps: tuple[Beep, ...], stop: threading.Event) -> None:
        try:
            for step in steps:
                if step.hz is None:
                    self._silence()
                elif self.tonal:
                    self.device.play(self._tone(frequency=step.hz))
                else:
                    self.device.on()
                if stop.wait(step.duration_s):
                    break
        finally:
            self._silence()

    def _silence(self) -> None:
        if self.tonal:
            self.device.stop()
        else:
            self.device.off()
