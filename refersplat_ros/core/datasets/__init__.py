"""Referring-segmentation datasets, in two sub-packages.

- ``reflerf``: the Ref-LERF layout and reader: :func:`reflerf.loader.load_referring_dataset`
  reads a Ref-LERF-layout folder (official and split-JSON releases, Ref-Synth) into a
  ``ReferringDataset`` of train/test views.
- ``ref_synth``: the Ref-Synth generator: :func:`ref_synth.generator.make_scene` writes a
  procedural tabletop scene with exact masks and geometry-checked referring expressions in that
  layout (``refersplat make-scene``). It uses the reader; the reader never uses it.

Nothing here imports rclpy.
"""
