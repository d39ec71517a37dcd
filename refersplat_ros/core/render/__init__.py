"""Render layer: the public ``rasterize`` (device picks the backend) and compositing weights.

- ``rasterize``: the API every caller uses (:func:`~.rasterize.rasterize`,
  :func:`~.rasterize.render_scene`).
- ``cpu``: the exact CPU compositor; ``gsplat_backend``: gsplat on CUDA.
- ``compositing``: frozen-geometry per-pixel weights, for training and the node's mask.
- ``gsplat_internals``: the one module that touches gsplat's private functions (version-checked).
"""
