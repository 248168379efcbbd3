"""A calibrated twin of each heater: its fitted parameters, the period's inferred draws and
measured room temperature replayed through the simulator's plant and controller, first under the
settings it had (the backcast) and then under changed ones (``whatif``)."""

from __future__ import annotations

from .whatif import Scenario, WhatIfResult, whatif

__all__ = ["Scenario", "WhatIfResult", "whatif"]
