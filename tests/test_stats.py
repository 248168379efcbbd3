"""Collector statistics: the latency windows keep the newest values in fixed memory."""

from __future__ import annotations

from navilink_etl.collect.stats import CollectorStats, Window, percentile


def test_window_keeps_the_newest_values_in_fixed_memory() -> None:
    w = Window(size=100)
    assert len(w) == 0 and percentile(w, 50) is None
    size = w._a.buffer_info()[1]
    for i in range(1_000):
        w.append(float(i))
    assert len(w) == 100 and sorted(w) == [float(i) for i in range(900, 1_000)]
    assert w._a.buffer_info()[1] == size  # nothing grew
    assert percentile(w, 50) == 949.0 and percentile(w, 100) == 999.0


def test_summary_reads_the_windows() -> None:
    st = CollectorStats()
    for v in (0.1, 0.2, 0.3):
        st.latencies_s.append(v)
    assert "p50 200 ms" in st.summary() and st.as_dict()["latency_p99_s"] == 0.3
