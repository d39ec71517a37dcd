"""Reconstruction: fit an RGB 3D Gaussian Splatting scene to a capture's posed images.

``capture`` reads the images, cameras and sparse points (COLMAP or transforms.json); ``fit``
optimises the Gaussians with the project's rasterizer and gsplat's densification;
``transfer`` gives reconstructed Gaussians the object ids of a known surface (Ref-Synth's
scoring). docs/RECONSTRUCT.md.
"""
