"""Typing a PIN or a release passcode on the keypad: the digits, and what the screen shows of them.

Pure and small, for `station.workflow`: the digits stay in this object until `take()` hands
them to the command that sends them; the screen shows only how many were typed (one dot
each), and neither `repr` nor any message ever contains a digit.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from station.screens import EmailEntryScreen, PinEntryScreen

Purpose = Literal["pin", "passcode"]

PIN_PROMPT = "Enter your PIN"
PASSCODE_PROMPT = "Enter passcode"
# Release passcodes are 10 (single use) or 12 (long-lived) digits (`cloud.passcodes`).
PASSCODE_DIGITS = (10, 16)
MAX_PIN_DIGITS = 16  # what a small screen can show as dots; sites require 4..12


@dataclass(slots=True)
class KeypadEntry:
    """The digits of one PIN or passcode being typed."""

    purpose: Purpose
    min_digits: int
    max_digits: int
    message: str = ""
    _digits: list[str] = field(default_factory=list, repr=False)

    @classmethod
    def for_pin(cls, min_digits: int, message: str = "") -> KeypadEntry:
        """An entry for the badge owner's PIN (at least `min_digits`)."""
        low = max(1, min(min_digits, MAX_PIN_DIGITS))
        return cls("pin", low, MAX_PIN_DIGITS, message)

    @classmethod
    def for_passcode(cls, message: str = "") -> KeypadEntry:
        """An entry for a release passcode."""
        low, high = PASSCODE_DIGITS
        return cls("passcode", low, high, message)

    @property
    def length(self) -> int:
        """How many digits are typed."""
        return len(self._digits)

    @property
    def complete(self) -> bool:
        """Whether Enter may send what is typed."""
        return len(self._digits) >= self.min_digits

    def type(self, digit: str) -> bool:
        """Add a digit; False (and nothing changes) when the field is full or it is no digit."""
        if len(digit) != 1 or digit not in "0123456789" or len(self._digits) >= self.max_digits:
            return False
        self._digits.append(digit)
        self.message = ""
        return True

    def erase(self) -> bool:
        """Remove the last digit; False when there is none."""
        if not self._digits:
            return False
        self._digits.pop()
        return True

    def take(self) -> str:
        """The digits typed, clearing the entry."""
        text = "".join(self._digits)
        self._digits.clear()
        return text

    def screen(self) -> PinEntryScreen:
        """What the display shows: the prompt, a dot per digit, and any message."""
        prompt = PIN_PROMPT if self.purpose == "pin" else PASSCODE_PROMPT
        return PinEntryScreen(prompt, len(self._digits), self.min_digits, self.message)


# --- station-entry: an email address typed on a full keyboard ---

EMAIL_PROMPT = "Enter your email"
NOT_AN_EMAIL_MESSAGE = "Not an email address"
# RFC 5321 caps a forward path at 256 octets, so an address at 254; the cloud takes up to 320.
MAX_EMAIL_CHARS = 254
EMAIL_CHARACTERS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789@.-_+")


@dataclass(slots=True)
class EmailEntry:
    """The email address being typed: shown as typed, sent trimmed and lower-cased.

    The shape check is deliberately basic (one "@", a dotted domain, no empty labels): it only
    spares the cloud, and the user a wrong-PIN count, for an obvious typo; the cloud decides.
    """

    text: str = ""
    message: str = ""

    def type(self, char: str) -> bool:
        """Add a character; False (and nothing changes) when full or not an email character."""
        if len(char) != 1 or char not in EMAIL_CHARACTERS or len(self.text) >= MAX_EMAIL_CHARS:
            return False
        self.text += char
        self.message = ""
        return True

    def erase(self) -> bool:
        """Remove the last character; False when there is none."""
        if not self.text:
            return False
        self.text = self.text[:-1]
        return True

    def address(self) -> str | None:
        """The address to send (trimmed, lower-cased), or None when it does not look like one."""
        address = self.text.strip().lower()
        local, at, domain = address.partition("@")
        labels = domain.split(".")
        if not (local and at and len(labels) >= 2 and all(labels)) or "@" in domain:
            return None
        if local.startswith(".") or local.endswith(".") or ".." in local:
            return None
        return address

    def screen(self) -> EmailEntryScreen:
        """What the display shows: the prompt, the text as typed, and any message."""
        return EmailEntryScreen(self.text, self.message, EMAIL_PROMPT)


# --- end station-entry ---
