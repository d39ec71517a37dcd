"""Oriented boxes: the axis convention (upright, right-handed, signed) and degenerate inputs."""
import numpy as np

from refersplat_ros.core.inference.boxes import oriented_box


def test_box_axis_convention_is_upright_right_handed_and_signed():
    rng = np.random.default_rng(1)
    # A box 0.4 long along the direction 30 degrees from +x, 0.1 wide, 0.2 tall.
    local = (rng.random((2000, 3)) - 0.5) * [0.4, 0.1, 0.2]
    angle = np.deg2rad(30)
    rot = np.array([[np.cos(angle), -np.sin(angle), 0], [np.sin(angle), np.cos(angle), 0],
                    [0, 0, 1]])
    for sign in (1, -1):                        # the same box mirrored gives the same axes
        points = (local * [sign, sign, 1]) @ rot.T + [1.0, 2.0, 0.5]
        center, rotation, extent = oriented_box(points)
        np.testing.assert_allclose(rotation[:, 2], [0, 0, 1], atol=1e-9)
        np.testing.assert_allclose(rotation[:, 0], rot[:, 0], atol=0.02)
        np.testing.assert_allclose(np.linalg.det(rotation), 1.0, atol=1e-9)
        np.testing.assert_allclose(extent, [0.4, 0.1, 0.2], atol=0.01)
        np.testing.assert_allclose(center, [1.0, 2.0, 0.5], atol=0.01)
    # Free 3D box of a tilted slab: z is the axis closest to up, pointing up.
    tilt = np.deg2rad(20)
    tilted = np.array([[1, 0, 0], [0, np.cos(tilt), -np.sin(tilt)],
                       [0, np.sin(tilt), np.cos(tilt)]])
    slab = ((rng.random((2000, 3)) - 0.5) * [0.5, 0.3, 0.02]) @ tilted.T
    _, rotation, extent = oriented_box(slab, upright=False)
    np.testing.assert_allclose(rotation[:, 2], tilted[:, 2], atol=0.02)
    np.testing.assert_allclose(extent, [0.5, 0.3, 0.02], atol=0.01)
    # Degenerate inputs (one point, a line) still give a valid box.
    c, r, e = oriented_box(np.array([[1.0, 2.0, 3.0]]))
    np.testing.assert_allclose(c, [1, 2, 3]) and np.testing.assert_allclose(e, 0)
    c, r, e = oriented_box(np.array([[0.0, 0, 0], [0, 1, 0]]))
    np.testing.assert_allclose(r[:, 0], [0, 1, 0], atol=1e-9)
