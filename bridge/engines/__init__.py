"""Model engines; importing this package registers every kind under its ``engine`` name."""

from bridge.engines import rapidocr_engine, transformers_engine

__all__ = ["rapidocr_engine", "transformers_engine"]
