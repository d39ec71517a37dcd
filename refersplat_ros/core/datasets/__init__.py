"""Referring-segmentation datasets: the Ref-LERF loader and the Ref-Synth generator.

- ``reflerf_loader``: :func:`load_refer_dataset` reads a Ref-LERF-layout folder (official and
  split-JSON releases, Ref-Synth) into a :class:`ReferDataset` of train/test :class:`View` s.
- ``ref_synth``: :func:`make_scene` writes a procedural tabletop scene with exact masks and
  geometry-checked referring expressions in that layout (``refersplat make-scene``).

Nothing here imports rclpy.
"""
from refersplat_ros.core.datasets.reflerf_loader import (Annotation, load_mask, load_refer_dataset,
                                                         ReferDataset, View)

__all__ = ['Annotation', 'ReferDataset', 'View', 'load_mask', 'load_refer_dataset']
