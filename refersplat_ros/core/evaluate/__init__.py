"""Evaluate layer: mask and selection metrics, and the Ref-LERF protocol over a run folder."""
