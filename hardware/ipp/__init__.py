"""IPP without I/O: wire enums (`hardware.ipp.enums`) and the message codec (`hardware.ipp.codec`).

This package imports nothing at import time, so `cloud` can use the codec without pulling in the
rest of `hardware`.
"""
