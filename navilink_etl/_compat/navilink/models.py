"""The original ``navilink.models``: the status record is ``navilink_etl.status.DeviceStatus``."""

from navilink_etl.status import DeviceStatus, EnergyDay, Feature

__all__ = ["DeviceStatus", "EnergyDay", "Feature"]
