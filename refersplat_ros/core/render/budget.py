"""How much work one render of a target in a robot's camera may do (no torch: the node reads it).

``RenderBudget`` is used by ``core/inference/target_view.py``; the node's ``render.*``
parameters set it (docs/ROBOT.md#render-budget).
"""
from dataclasses import dataclass
import math


@dataclass(frozen=True)
class RenderBudget:
    """The most work one target render may do (node parameters ``render.*``).

    Attributes:
        max_pixels: Pixels of the target's window rendered at most; a larger window is rendered
            at a lower resolution and upsampled. 1 MP by default.
        max_candidates: Gaussian-pixel candidates at most, the CPU rasterizer's work: each
            Gaussian's footprint (its largest axis, 3.33 sigma) clipped to the window. The
            rasterizer keeps about a third of them and handles 6-7 million kept pairs a second
            on a 2-core CPU (docs/ROBUSTNESS.md): a camera close to the target, whose Gaussians
            each cover many pixels, is rendered at a lower resolution. gsplat (CUDA) ignores
            it. 2 million by default (about 0.1 s here: tracking at 10 Hz).
    """

    max_pixels: int = 1_000_000
    max_candidates: int = 2_000_000

    def __post_init__(self):
        if self.max_pixels < 1 or self.max_candidates < 1:
            raise ValueError('RenderBudget: max_pixels and max_candidates must be >= 1')

    def scale(self, window_pixels: int, candidates: float, gaussians: int,
              count_candidates: bool = True) -> float:
        """Return the resolution factor (<= 1) that keeps a render within the budget.

        Pixels scale with its square; so do the candidates, except that each Gaussian still
        costs at least one (``gaussians``).
        """
        factor = 1.0
        if window_pixels > self.max_pixels:
            factor = math.sqrt(self.max_pixels / window_pixels)
        if count_candidates and candidates > self.max_candidates:
            room = max(self.max_candidates - gaussians, 0.01 * self.max_candidates)
            factor = min(factor, math.sqrt(room / max(candidates - gaussians, 1.0)))
        return factor
