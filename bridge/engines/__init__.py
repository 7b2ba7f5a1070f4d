"""Model engines; importing this package registers every kind under its ``engine`` name."""

from bridge.engines import faces_engine, meter_engine, rapidocr_engine, transformers_engine

__all__ = ["faces_engine", "meter_engine", "rapidocr_engine", "transformers_engine"]
