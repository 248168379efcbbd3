"""The original ``navilink.config``: ``NaviLinkConfig`` from ``navilink_etl.config``."""

from navilink_etl.config import NaviLinkConfig

__all__ = ["NaviLinkConfig"]
