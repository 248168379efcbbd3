"""The NaviLink cloud client: sign-in and tokens (auth), REST (rest), MQTT (mqtt), devices."""

from .client import NaviLinkClient
from .device import NaviLinkDevice

__all__ = ["NaviLinkClient", "NaviLinkDevice"]
