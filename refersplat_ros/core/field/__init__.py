"""Field layer: the referring field (features, PCMI, response), its mask rule, checkpoints."""
