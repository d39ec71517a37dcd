"""Text layer: the frozen sentence encoder that gives the field its word features."""
