"""Reading meter displays: crop the configured region, recognise each digit, check plausibility.

The approach follows AI-on-the-edge-device: the user says where the digits are (a region and
how many digits), a tiny classifier trained on synthetic displays reads each digit cell, and
plausibility rules decide whether the reading may be published.
"""
