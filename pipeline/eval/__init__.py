"""Evaluation tools: event scoring, ground truth from MOT tracks, MOT metrics, threshold sweeps, HTML reports.

They sit above replay and the engine (they run them) and read the files a replay writes (`formats`).
"""
