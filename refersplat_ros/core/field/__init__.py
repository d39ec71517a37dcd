"""Field layer: the referring field, its mask rule and its checkpoint files.

The field holds the per-Gaussian features, PCMI and the response.
"""
