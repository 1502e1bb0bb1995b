"""Every device PullPrint touches, each behind a small port with a simulated twin.

This package imports none of `station`, `cloud` or `tools` (an import-linter contract).
"""
