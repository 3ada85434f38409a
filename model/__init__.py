"""Proposers, segmenters, scoring and calibration. Depends on converters only."""
