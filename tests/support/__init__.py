"""The one test kit both suites and the benchmarks share: ports, a broker, waiting, fonts.

Standard library only: Home Assistant's test environment imports it too, and it has neither the
bridge nor paho.
"""
