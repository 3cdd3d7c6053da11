"""Tier profiles the unit tests load from TOML (tiers on closed loopback ports: never called)."""

NATIVE_PROFILE = """
[profiles.native]
ladder = ["nano", "mini"]

[profiles.native.tiers.nano]
model = "n"
base_url = "http://127.0.0.1:9101/v1"
price = { input = 0.2, cached_input = 0.02, output = 1.25 }
tool_mode = "native"

[profiles.native.tiers.mini]
model = "m"
base_url = "http://127.0.0.1:9102/v1"
price = { input = 0.75, cached_input = 0.075, output = 4.5 }
tool_mode = "native"
"""
