"""The embedded default: a simulated NWP500 plant behind an offline fake of the NaviLink cloud."""
