"""Camera rig of Ref-Synth: rings of views around the table, all looking at it.

Azimuth 0 is the default "front" viewer at -y looking along +y (table frame, ``scene.py``);
azimuth grows counter-clockwise seen from above. Views are dealt round-robin to the rings, so
every ring covers the full circle; small seeded jitter in azimuth and distance avoids a perfectly
regular rig.
"""
from dataclasses import dataclass
import math
from typing import List, Tuple

import numpy as np

from refersplat_ros.core.scene.cameras import Camera


@dataclass
class CameraRigConfig:
    """Views and resolution of a Ref-Synth scene."""

    num_views: int = 30
    width: int = 320
    height: int = 240
    fov_x_deg: float = 62.0
    # (elevation above the table plane in degrees, distance to the target in metres) per ring
    rings: Tuple[Tuple[float, float], ...] = ((24.0, 1.30), (40.0, 1.45), (58.0, 1.20))
    target: Tuple[float, float, float] = (0.0, 0.0, 0.04)
    azimuth_jitter_deg: float = 5.0
    distance_jitter: float = 0.06


def frame_name(index: int) -> str:
    """Ref-LERF frame stem of the 0-based view ``index``: 1-based, five digits."""
    return f'frame_{index + 1:05d}'


def ring_cameras(rng: np.random.Generator, config: CameraRigConfig) -> List[Camera]:
    """Build ``config.num_views`` cameras named ``frame_XXXXX.png``.

    Args:
        rng: random generator for the jitter.
        config: rig configuration.

    Returns:
        Cameras in view order (index i is frame i + 1).
    """
    rings = len(config.rings)
    per_ring = [len(range(r, config.num_views, rings)) for r in range(rings)]
    fx = 0.5 * config.width / math.tan(math.radians(0.5 * config.fov_x_deg))
    cams = []
    for i in range(config.num_views):
        ring, k = i % rings, i // rings
        elev_deg, dist = config.rings[ring]
        az = 2 * math.pi * (k + 0.5 * ring / rings) / max(per_ring[ring], 1)
        az += math.radians(rng.uniform(-config.azimuth_jitter_deg, config.azimuth_jitter_deg))
        dist += rng.uniform(-config.distance_jitter, config.distance_jitter)
        elev = math.radians(elev_deg)
        target = np.asarray(config.target, dtype=np.float64)
        eye = target + dist * np.array([math.cos(elev) * math.sin(az),
                                        -math.cos(elev) * math.cos(az), math.sin(elev)])
        cams.append(Camera.look_at(eye.tolist(), target.tolist(), (0.0, 0.0, 1.0),
                                   width=config.width, height=config.height, fx=fx, fy=fx,
                                   name=frame_name(i) + '.png'))
    return cams
