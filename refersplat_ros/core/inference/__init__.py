"""Inference layer: the model a node or the CLI queries, and the 3D target selection."""
