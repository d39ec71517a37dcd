"""Ground-truth rendering of Ref-Synth: RGB images and per-object visibility masks.

Masks come from compositing one-hot object ids with the *same* Gaussians, alpha and transmittance
as the RGB image (docs/METHOD.md#rasterized-logit), so occlusion is handled exactly: a pixel
belongs to the id with the largest composited weight, or to nobody when the uncovered part
``1 - alpha`` is larger.
An object hidden in a view gets an empty mask.
"""
from typing import Optional, Sequence, Tuple

import torch
from torch import Tensor

from refersplat_ros.core.render.rasterize import rasterize
from refersplat_ros.core.scene.cameras import Camera

EMPTY_LABEL = -1


def render_ground_truth(
    means: Tensor,       # [N, 3]
    quats: Tensor,       # [N, 4] wxyz
    scales: Tensor,      # [N, 3] activated
    opacities: Tensor,   # [N] activated
    colors: Tensor,      # [N, 3] RGB in [0, 1]
    object_ids: Tensor,  # [N] int, 0 = background, 1..K objects
    num_objects: int,
    camera: Camera,
    *,
    background_rgb: Optional[Sequence[float]] = None,
    backend: str = 'auto',
) -> Tuple[Tensor, Tensor]:
    """Render one view's RGB image and label map in a single compositing pass.

    Args:
        means: Gaussian centres. [N, 3]
        quats: rotations (w, x, y, z). [N, 4]
        scales: activated scales. [N, 3]
        opacities: activated opacities. [N]
        colors: RGB per Gaussian. [N, 3]
        object_ids: id per Gaussian in 0..num_objects. [N]
        num_objects: K, the number of objects (ids 1..K).
        camera: the view.
        background_rgb: colour of uncovered pixels (None: black).
        backend: rasterizer backend (see ``rasterize``).

    Returns:
        rgb [3, H, W] float in [0, 1] and labels [H, W] int64: the visible id per pixel
        (0 background, 1..K objects) or ``EMPTY_LABEL`` where nothing is drawn.
    """
    with torch.no_grad():
        onehot = torch.nn.functional.one_hot(object_ids.long(), num_objects + 1).to(colors)
        features = torch.cat([colors, onehot], dim=1)
        out = rasterize(means, quats, scales, opacities, features, camera, backend=backend)
        rgb = out.image[:3]
        if background_rgb is not None:
            bg = torch.as_tensor(background_rgb, dtype=rgb.dtype, device=rgb.device)
            rgb = rgb + (1.0 - out.alpha)[None] * bg[:, None, None]
        weights = torch.cat([out.image[3:], (1.0 - out.alpha)[None]], dim=0)
        labels = weights.argmax(dim=0)
        labels[labels == num_objects + 1] = EMPTY_LABEL
    return rgb.clamp(0.0, 1.0), labels
