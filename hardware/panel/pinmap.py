"""Pin maps: which GPIO pin each button, the status LED, the buzzer and the display lines use.

A pin map is a TOML data file, one per board or HAT (`pinmaps/*.toml` ship with PullPrint; a site
can point at its own file). It is validated when it is loaded, before any pin is claimed, and a
problem is a `PinMapError` naming the key and the pin:

* every key is known (a typo such as `buzzr` is an error, not a silently missing buzzer);
* pins are BCM GPIO numbers 2-27 (0 and 1 belong to the HAT ID EEPROM; a number above 27 is
  usually a physical header pin number by mistake);
* no pin is used twice;
* no pin is taken by the display: its bus (I2C1 SDA/SCL, SPI0 MOSI/SCLK/CE...) or its D/C, reset
  and backlight lines (`hardware.display.registry.display_pins`).

Button names are free strings ("print-all", "up", ...) that the station maps onto its own
buttons; `hold` gives a button a second name reported when it is held down for `hold_s`.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from hardware.display.registry import display_pins
from hardware.panel.errors import PinMapError

__all__ = [
    "ButtonPin",
    "BuzzerPin",
    "PinMap",
    "RgbPins",
    "available_pin_maps",
    "load_pin_map",
    "parse_pin_map",
]

GPIO_MIN, GPIO_MAX = 2, 27
_NAME = re.compile(r"^[a-z][a-z0-9-]{0,31}$")
_TOP_KEYS = frozenset({"name", "description", "display", "buttons", "status_light", "buzzer"})
_BUTTON_KEYS = frozenset({"pin", "hold", "hold_s", "pull_up", "bounce_s"})
_LIGHT_KEYS = frozenset({"red", "green", "blue", "common_anode", "pwm"})
_BUZZER_KEYS = frozenset({"pin", "kind", "active_high"})


@dataclass(frozen=True, slots=True)
class ButtonPin:
    """One push button, wired from `pin` to ground (`pull_up`) or to 3.3 V."""

    name: str
    pin: int
    hold: str | None = None
    hold_s: float = 1.0
    pull_up: bool = True
    bounce_s: float = 0.05


@dataclass(frozen=True, slots=True)
class RgbPins:
    """An RGB LED; a common-anode LED lights when its pins go low."""

    red: int
    green: int
    blue: int
    common_anode: bool = False
    pwm: bool = True


@dataclass(frozen=True, slots=True)
class BuzzerPin:
    """A buzzer: "tonal" (a passive piezo driven by PWM at each tone) or "active" (one pitch)."""

    pin: int
    kind: str = "tonal"
    active_high: bool = True


@dataclass(frozen=True, slots=True)
class PinMap:
    """A validated pin map."""

    name: str
    description: str
    buttons: tuple[ButtonPin, ...]
    status_light: RgbPins | None = None
    buzzer: BuzzerPin | None = None
    display_kind: str | None = None
    display_wiring: tuple[tuple[str, object], ...] = ()  # the [display] table less `kind`

    @property
    def display_options(self) -> dict[str, object]:
        """The display's wiring options, to pass to `display_from_config`."""
        return dict(self.display_wiring)

    @property
    def event_names(self) -> tuple[str, ...]:
        """Every name a button can report (press and hold names), without repeats."""
        names: dict[str, None] = {}
        for button in self.buttons:
            names[button.name] = None
            if button.hold is not None:
                names[button.hold] = None
        return tuple(names)


def available_pin_maps() -> list[str]:
    """The names of the pin maps that ship with PullPrint."""
    folder = resources.files("hardware.panel.pinmaps")
    return sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".toml"))


def load_pin_map(
    name_or_path: str | Path,
    *,
    display_kind: str | None = None,
    display_options: Mapping[str, object] | None = None,
) -> PinMap:
    """Load and validate a pin map: a bundled one by name, or a TOML file by path.

    Args:
        name_or_path: "generic-4button", or a path (anything with a "/" or ending in ".toml").
        display_kind: the display the station is configured with; by default the pin map's own.
        display_options: the station's display options; they override the pin map's wiring.
            The pin map's wiring applies only when `display_kind` is its own display.

    Raises:
        PinMapError: no such map, bad TOML, an unknown key, a bad or clashing pin.
    """
    text, source = _read(name_or_path)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise PinMapError(f"pin map {source}: not valid TOML: {exc}") from exc
    return parse_pin_map(
        data, source=source, display_kind=display_kind, display_options=display_options
    )


def _read(name_or_path: str | Path) -> tuple[str, str]:
    spec = str(name_or_path)
    if isinstance(name_or_path, Path) or "/" in spec or spec.endswith(".toml"):
        path = Path(spec)
        try:
            return path.read_text(encoding="utf-8"), str(path)
        except OSError as exc:
            raise PinMapError(f"cannot read pin map {path}: {exc}") from exc
    if not _NAME.match(spec):
        raise PinMapError(f"{spec!r} is not a pin map name")
    resource = resources.files("hardware.panel.pinmaps") / f"{spec}.toml"
    if not resource.is_file():
        choices = ", ".join(available_pin_maps())
        raise PinMapError(f"no pin map named {spec!r}; bundled maps: {choices}")
    return resource.read_text(encoding="utf-8"), spec


def parse_pin_map(
    data: Mapping[str, object],
    *,
    source: str = "<pin map>",
    display_kind: str | None = None,
    display_options: Mapping[str, object] | None = None,
) -> PinMap:
    """Validate parsed TOML (see `load_pin_map`)."""
    check = _Checker(source)
    check.keys(data, _TOP_KEYS, "")
    name = check.string(data, "name", "", required=True)
    assert name is not None
    description = check.string(data, "description", "") or ""
    buttons = tuple(check.buttons(data.get("buttons")))
    light = check.light(data.get("status_light"))
    buzzer = check.buzzer(data.get("buzzer"))

    own = check.table(data.get("display", {}), "display")
    own_kind = check.string(own, "kind", "display.")
    wiring = {k: v for k, v in own.items() if k != "kind"}
    kind = display_kind if display_kind is not None else own_kind
    options = dict(wiring) if kind == own_kind else {}
    options.update(display_options or {})
    if kind is not None:
        try:
            taken = display_pins(kind, options)
        except ValueError as exc:
            raise PinMapError(f"pin map {source}: [display]: {exc}") from exc
        for pin, use in taken.items():
            check.reserve(pin, f"the display ({use})")
    check.claim_all()
    return PinMap(
        name=name,
        description=description,
        buttons=buttons,
        status_light=light,
        buzzer=buzzer,
        display_kind=kind,
        display_wiring=tuple(options.items()),
    )


class _Checker:
    """Validation state for one pin map: which key took which pin."""

    def __init__(self, source: str) -> None:
        self.source = source
        self._uses: list[tuple[str, int]] = []  # (key, pin), in file order
        self._reserved: dict[int, str] = {}

    def fail(self, message: str) -> PinMapError:
        return PinMapError(f"pin map {self.source}: {message}")

    def keys(self, table: Mapping[str, object], allowed: frozenset[str], where: str) -> None:
        unknown = sorted(set(table) - allowed)
        if unknown:
            raise self.fail(
                f"unknown key {where}{unknown[0]} (allowed here: {', '.join(sorted(allowed))})"
            )

    def table(self, value: object, where: str) -> Mapping[str, object]:
        if not isinstance(value, dict):
            raise self.fail(f"{where} must be a table")
        return value

    def string(
        self, table: Mapping[str, object], key: str, where: str, *, required: bool = False
    ) -> str | None:
        value = table.get(key)
        if value is None:
            if required:
                raise self.fail(f"{where}{key} is missing")
            return None
        if not isinstance(value, str) or not value:
            raise self.fail(f"{where}{key} must be a non-empty string")
        return value

    def flag(self, table: Mapping[str, object], key: str, where: str, default: bool) -> bool:
        value = table.get(key, default)
        if not isinstance(value, bool):
            raise self.fail(f"{where}{key} must be true or false")
        return value

    def seconds(self, table: Mapping[str, object], key: str, where: str, default: float) -> float:
        value = table.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value <= 10:
            raise self.fail(f"{where}{key} must be a number of seconds in (0, 10]")
        return float(value)

    def pin(self, value: object, key: str) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(f"{key} must be a BCM GPIO number, not {value!r}")
        if value in (0, 1):
            raise self.fail(f"{key} uses GPIO{value}, which is kept for the HAT ID EEPROM")
        if not GPIO_MIN <= value <= GPIO_MAX:
            raise self.fail(
                f"{key} uses pin {value}, out of range: use BCM GPIO numbers "
                f"{GPIO_MIN}-{GPIO_MAX}, not header pin numbers"
            )
        self._uses.append((key, value))
        return value

    def reserve(self, pin: int, use: str) -> None:
        self._reserved[pin] = use

    def claim_all(self) -> None:
        """Fail on the first pin used twice or taken by the display."""
        seen: dict[int, str] = {}
        for key, pin in self._uses:
            if pin in self._reserved:
                raise self.fail(f"{key} uses GPIO{pin}, which {self._reserved[pin]} needs")
            if pin in seen:
                raise self.fail(f"GPIO{pin} is used twice: by {seen[pin]} and by {key}")
            seen[pin] = key

    def buttons(self, value: object) -> Iterator[ButtonPin]:
        table = self.table(value, "[buttons]") if value is not None else {}
        if not table:
            raise self.fail("[buttons] must name at least one button")
        for name, spec in table.items():
            where = f"buttons.{name}"
            if not _NAME.match(name):
                raise self.fail(f"{where}: a button name is lower-case letters, digits and '-'")
            if not isinstance(spec, dict):
                yield ButtonPin(name, self.pin(spec, where))
                continue
            self.keys(spec, _BUTTON_KEYS, where + ".")
            if "pin" not in spec:
                raise self.fail(f"{where}.pin is missing")
            hold = self.string(spec, "hold", where + ".")
            if hold is not None and not _NAME.match(hold):
                raise self.fail(f"{where}.hold: a name is lower-case letters, digits and '-'")
            yield ButtonPin(
                name,
                self.pin(spec["pin"], where + ".pin"),
                hold=hold,
                hold_s=self.seconds(spec, "hold_s", where + ".", 1.0),
                pull_up=self.flag(spec, "pull_up", where + ".", True),
                bounce_s=self.seconds(spec, "bounce_s", where + ".", 0.05),
            )

    def light(self, value: object) -> RgbPins | None:
        if value is None:
            return None
        table = self.table(value, "[status_light]")
        self.keys(table, _LIGHT_KEYS, "status_light.")
        pins: dict[str, int] = {}
        for colour in ("red", "green", "blue"):
            if colour not in table:
                raise self.fail(f"status_light.{colour} is missing")
            pins[colour] = self.pin(table[colour], f"status_light.{colour}")
        return RgbPins(
            pins["red"],
            pins["green"],
            pins["blue"],
            common_anode=self.flag(table, "common_anode", "status_light.", False),
            pwm=self.flag(table, "pwm", "status_light.", True),
        )

    def buzzer(self, value: object) -> BuzzerPin | None:
        if value is None:
            return None
        table = self.table(value, "[buzzer]")
        self.keys(table, _BUZZER_KEYS, "buzzer.")
        if "pin" not in table:
            raise self.fail("buzzer.pin is missing")
        kind = self.string(table, "kind", "buzzer.") or "tonal"
        if kind not in ("tonal", "active"):
            raise self.fail(f"buzzer.kind must be 'tonal' or 'active', not {kind!r}")
        return BuzzerPin(
            self.pin(table["pin"], "buzzer.pin"),
            kind=kind,
            active_high=self.flag(table, "active_high", "buzzer.", True),
        )
