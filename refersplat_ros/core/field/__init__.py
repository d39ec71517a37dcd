"""Field layer: the referring field (per-Gaussian features, PCMI, response), its mask rule and
its checkpoint files."""
