"""Train layer: the ReferSplat losses (mask BCE, GTCL) and the training loop with stage 2."""
