"""Scene layer: frozen 3D Gaussians, their files (.ply / .pth) and cameras."""
