"""Pin maps shipped with PullPrint, one TOML file per board or HAT (data only)."""
