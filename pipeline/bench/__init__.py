"""Benchmarks: commands that measure speed and memory and report them (tests never assert timings)."""
