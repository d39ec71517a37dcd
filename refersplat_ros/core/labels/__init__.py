"""Labels layer: one pseudo mask per (frame, object) from detector candidates (paper §7 rule)."""
