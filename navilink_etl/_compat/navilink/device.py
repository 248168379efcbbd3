"""The original ``navilink.device``: ``navilink_etl.cloud.device.NaviLinkDevice``."""

from navilink_etl.cloud.device import NaviLinkDevice

__all__ = ["NaviLinkDevice"]
