"""The original ``navilink.client``: ``navilink_etl.cloud.client.NaviLinkClient``."""

from navilink_etl.cloud.client import NaviLinkClient

__all__ = ["NaviLinkClient"]
