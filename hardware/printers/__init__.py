"""Printers: transports chosen by URI scheme, and a virtual IPP printer for tests and the demo."""
