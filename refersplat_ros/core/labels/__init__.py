"""Labels layer: one pseudo mask per (frame, object) from detector candidates.

The rule is the paper's (docs/METHOD.md#pseudo-labels).
"""
