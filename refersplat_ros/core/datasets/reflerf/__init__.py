"""The Ref-LERF dataset: its folder layout (``layout``) and reader (``loader``)."""
