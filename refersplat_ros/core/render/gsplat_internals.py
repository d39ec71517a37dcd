"""The one module that uses gsplat's private PyTorch reference functions.

The CPU rasterizer projects Gaussians and evaluates spherical harmonics exactly as gsplat does, by
calling gsplat's pure-PyTorch reference implementation (``gsplat.cuda._torch_impl``, plain torch:
it runs on the CPU). Those functions are not public API and may change in any release, so they
are imported here only, after checking that the installed gsplat is a release series they were
verified with (``requirements/venv.txt`` pins it; ``test/core/render/test_rasterize.py`` checks the
CPU path against an independent torch reference).
"""
from importlib.metadata import PackageNotFoundError, version

from packaging.specifiers import SpecifierSet
from packaging.version import Version

#: gsplat releases whose private ``_torch_impl`` signatures this module was verified against.
VERIFIED_GSPLAT = SpecifierSet('>=1.5.0,<1.6')


def check_gsplat_version(installed: str) -> None:
    """Raise ImportError unless ``installed`` is a verified gsplat release."""
    if Version(installed) not in VERIFIED_GSPLAT:
        raise ImportError(
            f'gsplat {installed} is installed; refersplat_ros uses private functions of gsplat '
            f'{VERIFIED_GSPLAT} (gsplat.cuda._torch_impl). Install the pinned version '
            '(requirements/venv.txt) or verify the CPU rasterizer tests against this one and '
            'widen VERIFIED_GSPLAT.')


try:
    check_gsplat_version(version('gsplat'))
except PackageNotFoundError as exc:  # pragma: no cover - gsplat is a hard dependency
    raise ImportError('refersplat_ros needs gsplat (requirements/venv.txt)') from exc

from gsplat.cuda._torch_impl import (  # noqa: E402  (after the version check)
    _fully_fused_projection as fully_fused_projection,
    _quat_scale_to_covar_preci as quat_scale_to_covar_preci,
    _spherical_harmonics as spherical_harmonics)

__all__ = ['check_gsplat_version', 'fully_fused_projection', 'quat_scale_to_covar_preci',
           'spherical_harmonics', 'VERIFIED_GSPLAT']
