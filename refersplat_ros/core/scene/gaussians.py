"""A pretrained 3D Gaussian Splatting scene, in the stored (pre-activation) form of 3DGS files.

The fields hold exactly what an INRIA 3DGS ``.ply`` / ``.pth`` holds
(docs/METHOD.md#gaussians-input): log-scales, opacity logits, unnormalised w-first quaternions
and SH coefficients. Activated values are properties, so a scene round-trips through its files
without loss.
"""
from dataclasses import dataclass, fields
import math
from typing import Optional, Tuple, Union

import torch
from torch import Tensor

# Zeroth-order real spherical harmonic, Y_0^0 = 1 / (2 sqrt(pi)); 3DGS stores colour as
# rgb = 0.5 + SH_C0 * sh_dc (``utils/sh_utils.py`` RGB2SH / SH2RGB).
SH_C0 = 0.28209479177387814

# Opacities are clamped away from 0 and 1 before the logit so that from_colors stays finite.
_OPACITY_EPS = 1e-6


def sh_coeffs_for_degree(degree: int) -> int:
    """Return the number of SH coefficients per colour channel, K = (degree + 1)^2."""
    if degree not in (0, 1, 2, 3):
        raise ValueError(f'SH degree must be 0..3, got {degree}')
    return (degree + 1) ** 2


def sh_degree_for_coeffs(num_coeffs: int) -> int:
    """Return the SH degree for K coefficients per channel (K in {1, 4, 9, 16})."""
    degree = round(math.sqrt(num_coeffs)) - 1
    if degree not in (0, 1, 2, 3) or (degree + 1) ** 2 != num_coeffs:
        raise ValueError(f'number of SH coefficients must be 1, 4, 9 or 16, got {num_coeffs}')
    return degree


@dataclass
class GaussianScene:
    """A set of N 3D Gaussians in the stored form of 3DGS captures.

    Attributes:
        means: World positions. [N, 3]
        quats: Rotations as (w, x, y, z) quaternions, unnormalised as stored by 3DGS. [N, 4]
        log_scales: Per-axis scales before ``exp``. [N, 3]
        opacity_logits: Opacities before ``sigmoid``. [N]
        sh: SH colour coefficients, ``sh[:, 0]`` is the DC term; K = (degree + 1)^2 in
            {1, 4, 9, 16}. [N, K, 3]
    """

    means: Tensor  # [N, 3]
    quats: Tensor  # [N, 4]
    log_scales: Tensor  # [N, 3]
    opacity_logits: Tensor  # [N]
    sh: Tensor  # [N, K, 3]

    def __post_init__(self):
        n = self.means.shape[0] if self.means.dim() == 2 else -1
        expected = {
            'means': (n, 3), 'quats': (n, 4), 'log_scales': (n, 3), 'opacity_logits': (n,),
        }
        for name, shape in expected.items():
            value = getattr(self, name)
            if not isinstance(value, Tensor) or tuple(value.shape) != shape or n < 0:
                got = tuple(value.shape) if isinstance(value, Tensor) else type(value).__name__
                raise ValueError(f'GaussianScene.{name} must have shape {shape}, got {got}')
        if self.sh.dim() != 3 or self.sh.shape[0] != n or self.sh.shape[2] != 3:
            raise ValueError(f'GaussianScene.sh must have shape [{n}, K, 3], '
                             f'got {tuple(self.sh.shape)}')
        sh_degree_for_coeffs(self.sh.shape[1])

    # ---------------------------------------------------------------- activated getters
    @property
    def num_gaussians(self) -> int:
        """Number of Gaussians N."""
        return self.means.shape[0]

    def __len__(self) -> int:
        return self.num_gaussians

    @property
    def sh_degree(self) -> int:
        """SH degree (0..3) of the stored coefficients."""
        return sh_degree_for_coeffs(self.sh.shape[1])

    @property
    def scales(self) -> Tensor:  # [N, 3]
        """Per-axis standard deviations, ``exp(log_scales)``."""
        return torch.exp(self.log_scales)

    @property
    def opacities(self) -> Tensor:  # [N]
        """Opacities in (0, 1), ``sigmoid(opacity_logits)``."""
        return torch.sigmoid(self.opacity_logits)

    @property
    def rotations(self) -> Tensor:  # [N, 4]
        """Unit (w, x, y, z) quaternions."""
        return torch.nn.functional.normalize(self.quats, dim=-1)

    @property
    def colors(self) -> Tensor:  # [N, 3]
        """View-independent RGB in [0, 1] from the DC term, ``0.5 + SH_C0 * sh[:, 0]``."""
        return (0.5 + SH_C0 * self.sh[:, 0]).clamp(0.0, 1.0)

    @property
    def device(self) -> torch.device:
        """Device of the tensors."""
        return self.means.device

    # ---------------------------------------------------------------- transforms
    def _map(self, fn) -> 'GaussianScene':
        return GaussianScene(**{f.name: fn(getattr(self, f.name)) for f in fields(self)})

    def to(self, device: Union[str, torch.device]) -> 'GaussianScene':
        """Return a copy on ``device`` (no copy for tensors already there)."""
        return self._map(lambda t: t.to(device))

    def detach(self) -> 'GaussianScene':
        """Return a copy whose tensors are detached from any autograd graph."""
        return self._map(lambda t: t.detach())

    def subset(self, mask_or_index: Tensor) -> 'GaussianScene':
        """Return the Gaussians selected by a boolean mask [N] or an index tensor [M]."""
        sel = torch.as_tensor(mask_or_index, device=self.device)
        if sel.dtype == torch.bool:
            if sel.shape != (self.num_gaussians,):
                raise ValueError(f'subset mask must have shape ({self.num_gaussians},), '
                                 f'got {tuple(sel.shape)}')
        elif sel.dtype not in (torch.int64, torch.int32, torch.int16, torch.uint8, torch.int8):
            raise ValueError(f'subset needs a bool mask or an integer index, got {sel.dtype}')
        else:
            sel = sel.long().reshape(-1)
        return self._map(lambda t: t[sel])

    def bounds(self) -> Tuple[Tensor, Tensor]:
        """Return the axis-aligned bounds of the means, (min [3], max [3])."""
        if self.num_gaussians == 0:
            raise ValueError('bounds() of an empty GaussianScene')
        return self.means.min(dim=0).values, self.means.max(dim=0).values

    # ---------------------------------------------------------------- constructors
    @classmethod
    def from_colors(
        cls,
        means: Tensor,  # [N, 3]
        rgb: Tensor,  # [N, 3] in [0, 1]
        scales: Tensor,  # [N, 3] or [N] (isotropic), activated (> 0)
        opacities: Tensor,  # [N] or scalar, activated in (0, 1)
        quats: Optional[Tensor] = None,  # [N, 4] (w, x, y, z); None = identity
    ) -> 'GaussianScene':
        """Build a degree-0 scene from activated values (inverse of the getters).

        Opacities are clamped to [1e-6, 1 - 1e-6] before the logit.
        """
        means = torch.as_tensor(means, dtype=torch.float32)
        n = means.shape[0]
        dtype, device = means.dtype, means.device
        rgb = torch.as_tensor(rgb, dtype=dtype, device=device).reshape(n, 3)
        scales = torch.as_tensor(scales, dtype=dtype, device=device)
        if scales.dim() <= 1:
            scales = scales.reshape(-1, 1).expand(n, 3)
        opacities = torch.as_tensor(opacities, dtype=dtype, device=device).reshape(-1)
        opacities = opacities.expand(n) if opacities.numel() == 1 else opacities
        if quats is None:
            quats = torch.zeros(n, 4, dtype=dtype, device=device)
            quats[:, 0] = 1.0
        quats = torch.as_tensor(quats, dtype=dtype, device=device)
        if bool((scales <= 0).any()):
            raise ValueError('from_colors: scales must be > 0')
        opacities = opacities.clamp(_OPACITY_EPS, 1.0 - _OPACITY_EPS)
        return cls(
            means=means,
            quats=quats.clone(),
            log_scales=torch.log(scales).contiguous(),
            opacity_logits=torch.logit(opacities),
            sh=((rgb - 0.5) / SH_C0).reshape(n, 1, 3).contiguous(),
        )

    @classmethod
    def empty(cls, sh_degree: int = 0, device: Union[str, torch.device] = 'cpu'):
        """Return a scene with no Gaussians."""
        k = sh_coeffs_for_degree(sh_degree)
        z = torch.zeros
        return cls(z(0, 3, device=device), z(0, 4, device=device), z(0, 3, device=device),
                   z(0, device=device), z(0, k, 3, device=device))

    @staticmethod
    def cat(scenes: 'list[GaussianScene]') -> 'GaussianScene':
        """Concatenate scenes of the same SH degree."""
        names = [f.name for f in fields(GaussianScene)]
        return GaussianScene(**{n: torch.cat([getattr(s, n) for s in scenes]) for n in names})
