"""Referring-segmentation datasets: the Ref-LERF loader and the Ref-Synth generator.

- ``reflerf_loader``: :func:`load_referring_dataset` reads a Ref-LERF-layout folder (official and
  split-JSON releases, Ref-Synth) into a :class:`ReferringDataset` of train/test :class:`View` s.
- ``ref_synth``: :func:`make_scene` writes a procedural tabletop scene with exact masks and
  geometry-checked referring expressions in that layout (``refersplat make-scene``).

Nothing here imports rclpy.
"""
from refersplat_ros.core.datasets.reflerf_loader import (Annotation, load_mask,
                                                         load_referring_dataset, ReferringDataset,
                                                         View)

__all__ = ['Annotation', 'ReferringDataset', 'View', 'load_mask', 'load_referring_dataset']
