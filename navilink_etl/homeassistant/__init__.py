"""Home Assistant sink: MQTT discovery, state and commands (``bridge.HomeAssistantBridge``).

Kept import-light (config imports ``target``); import ``bridge`` where the sink is used.
"""
