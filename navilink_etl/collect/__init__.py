"""Collector (APScheduler jobs over the cloud client) and the durable Parquet store."""

from .store import Store, scan_dataset

__all__ = ["Store", "scan_dataset"]
