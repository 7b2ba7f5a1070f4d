"""The Prometheus text the bridge writes itself, read back with Prometheus' own parser."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from bridge.config import parse_config
from bridge.metrics import LATENCY_BUCKETS, Histogram, exposition
from bridge.work import Accounts


def test_a_value_on_a_bucket_bound_counts_in_that_bucket_as_prometheus_le_means() -> None:
    histogram = Histogram((1.0, 2.0))
    for value in (0.5, 1.0, 1.5, 2.0, 7.0):
        histogram.observe(value)
    assert histogram.cumulative() == [("1.0", 2), ("2.0", 4), ("+Inf", 5)]
    assert (histogram.count, histogram.total) == (5, 12.0)


def test_odd_camera_names_and_error_codes_survive_the_round_trip() -> None:
    config = parse_config({"cameras": {'Front"door"\\1': {"topic": "cam/front"}}})
    accounts = Accounts(dict(config.cameras))
    name = 'Front"door"\\1'
    accounts.cameras[name].counters.received = 3
    accounts.telemetry.error(name, "decode_failed", {"camera": name})
    accounts.telemetry.result(
        name, "caption", {"frame_id": "ab"}, latency_ms=LATENCY_BUCKETS[2] * 1000
    )
    text = exposition(
        accounts.cameras, accounts.telemetry, {}, connected=False, info={"version": "0.1.0"}
    )
    families = {family.name: family for family in text_string_to_metric_families(text)}
    assert families["image_to_text_frames_received"].type == "counter"
    (received,) = families["image_to_text_frames_received"].samples
    assert (received.labels, received.value) == ({"camera": name}, 3)
    (error,) = families["image_to_text_errors"].samples
    assert error.labels == {"camera": name, "code": "decode_failed"}
    buckets = {
        s.labels["le"]: s.value
        for s in families["image_to_text_latency_seconds"].samples
        if s.name.endswith("_bucket")
    }
    assert buckets["0.1"] == 0
    assert buckets["0.25"] == 1
    assert families["image_to_text_broker_connected"].samples[0].value == 0
