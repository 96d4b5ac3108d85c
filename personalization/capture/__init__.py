"""Capture: host signals and explicit calls become validated event rows; opt-out and erasure of those
rows.
"""
