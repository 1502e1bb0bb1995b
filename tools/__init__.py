"""Operator and developer commands: `pullprint demo`, `cloud serve`, `station run`, `submit`, `bench`."""
