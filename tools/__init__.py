"""Operator and developer commands: `pullprint demo`, `cloud`, `station run`, `submit`, `bench`."""
