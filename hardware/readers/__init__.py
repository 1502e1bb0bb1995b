"""Badge readers behind one `CardReader` port."""

from hardware.readers.base import CardReader, Credential
from hardware.readers.simulated import SimulatedCardReader

__all__ = ["CardReader", "Credential", "SimulatedCardReader"]
