"""GaussianScene: activated getters, constructors, subset, bounds, device moves."""
import math

import pytest
import torch

from refersplat_ros.core.scene.gaussians import (GaussianScene, SH_C0, sh_coeffs_for_degree,
                                                 sh_degree_for_coeffs)


def _scene(n=6, degree=2, seed=0):
    g = torch.Generator().manual_seed(seed)
    k = (degree + 1) ** 2
    return GaussianScene(
        means=torch.randn(n, 3, generator=g),
        quats=torch.randn(n, 4, generator=g) * 3.0,
        log_scales=torch.randn(n, 3, generator=g),
        opacity_logits=torch.randn(n, generator=g),
        sh=torch.randn(n, k, 3, generator=g),
    )


def test_activated_getters():
    scene = _scene()
    assert scene.num_gaussians == len(scene) == 6
    assert scene.sh_degree == 2
    torch.testing.assert_close(scene.scales, torch.exp(scene.log_scales))
    torch.testing.assert_close(scene.opacities, torch.sigmoid(scene.opacity_logits))
    torch.testing.assert_close(scene.rotations.norm(dim=-1), torch.ones(6))
    torch.testing.assert_close(scene.rotations * scene.quats.norm(dim=-1, keepdim=True),
                               scene.quats)
    expected = (0.5 + SH_C0 * scene.sh[:, 0]).clamp(0, 1)
    torch.testing.assert_close(scene.colors, expected)
    assert scene.colors.min() >= 0 and scene.colors.max() <= 1
    assert scene.device == torch.device('cpu')


def test_from_colors_inverts_getters():
    means = torch.rand(5, 3)
    rgb = torch.tensor([[0.0, 0.5, 1.0], [0.2, 0.3, 0.4], [1, 1, 1], [0, 0, 0], [0.9, 0.1, 0.5]])
    scales = torch.rand(5, 3) + 0.01
    opac = torch.tensor([0.1, 0.5, 0.9, 0.99, 0.3])
    scene = GaussianScene.from_colors(means, rgb, scales, opac)
    assert scene.sh.shape == (5, 1, 3) and scene.sh_degree == 0
    torch.testing.assert_close(scene.colors, rgb)
    torch.testing.assert_close(scene.scales, scales)
    torch.testing.assert_close(scene.opacities, opac)
    torch.testing.assert_close(scene.quats, torch.tensor([[1.0, 0, 0, 0]]).repeat(5, 1))
    iso = GaussianScene.from_colors(means, rgb, torch.full((5,), 0.1), 0.5)
    torch.testing.assert_close(iso.scales, torch.full((5, 3), 0.1))
    torch.testing.assert_close(iso.opacities, torch.full((5,), 0.5))
    with pytest.raises(ValueError, match='scales'):
        GaussianScene.from_colors(means, rgb, torch.zeros(5, 3), opac)


def test_subset_by_mask_and_index():
    scene = _scene(8, degree=3)
    mask = torch.tensor([True, False, True, False, False, True, False, True])
    sub = scene.subset(mask)
    assert sub.num_gaussians == 4 and sub.sh_degree == 3
    torch.testing.assert_close(sub.means, scene.means[mask])
    torch.testing.assert_close(sub.sh, scene.sh[mask])
    idx = torch.tensor([7, 0, 0])
    sub2 = scene.subset(idx)
    torch.testing.assert_close(sub2.opacity_logits, scene.opacity_logits[idx])
    with pytest.raises(ValueError, match='mask'):
        scene.subset(torch.tensor([True, False]))
    with pytest.raises(ValueError, match='integer'):
        scene.subset(torch.tensor([0.5]))


def test_bounds_to_detach_and_cat():
    scene = _scene(10)
    lo, hi = scene.bounds()
    torch.testing.assert_close(lo, scene.means.min(0).values)
    torch.testing.assert_close(hi, scene.means.max(0).values)
    moved = scene.to('cpu')
    assert moved.means.device.type == 'cpu'
    both = GaussianScene.cat([scene, scene.subset(torch.arange(3))])
    assert both.num_gaussians == 13
    empty = GaussianScene.empty(sh_degree=1)
    assert empty.num_gaussians == 0 and empty.sh.shape == (0, 4, 3)
    with pytest.raises(ValueError, match='empty'):
        empty.bounds()
    grad_scene = GaussianScene(*(t.requires_grad_(True) for t in (
        scene.means.clone(), scene.quats.clone(), scene.log_scales.clone(),
        scene.opacity_logits.clone(), scene.sh.clone())))
    assert not grad_scene.detach().means.requires_grad


@pytest.mark.parametrize('field,shape', [
    ('means', (4, 2)), ('quats', (4, 3)), ('log_scales', (3, 3)), ('opacity_logits', (4, 1)),
    ('sh', (4, 5, 3)),
])
def test_shape_validation(field, shape):
    kwargs = dict(means=torch.zeros(4, 3), quats=torch.zeros(4, 4), log_scales=torch.zeros(4, 3),
                  opacity_logits=torch.zeros(4), sh=torch.zeros(4, 1, 3))
    kwargs[field] = torch.zeros(shape)
    with pytest.raises(ValueError):
        GaussianScene(**kwargs)


def test_sh_degree_helpers():
    for degree in range(4):
        assert sh_degree_for_coeffs(sh_coeffs_for_degree(degree)) == degree
    assert sh_coeffs_for_degree(3) == 16
    with pytest.raises(ValueError):
        sh_degree_for_coeffs(5)
    with pytest.raises(ValueError):
        sh_coeffs_for_degree(4)
    assert math.isclose(SH_C0, 0.5 / math.sqrt(math.pi))
