"""Rasterizer tests: CPU backend vs a dense per-pixel reference, the cached path, gsplat."""
import math
from pathlib import Path

import pytest
import torch

from refersplat_ros.core.render.compositing import compositing_weights, WeightsCache
from refersplat_ros.core.render.rasterize import rasterize, render_scene, resolve_backend
from refersplat_ros.core.scene.cameras import Camera
from refersplat_ros.core.scene.gaussians import GaussianScene

W, H = 24, 18


def _camera(dtype_eye=None, width=W, height=H, focal=20.0):
    return Camera(width, height, focal, focal * 1.1, width / 2 + 0.3, height / 2 - 0.2,
                  torch.eye(4))


def _random_scene(n=30, seed=0, dtype=torch.float64, behind=0):
    """Gaussians in front of an identity camera (z 2-5), some optionally behind it."""
    g = torch.Generator().manual_seed(seed)
    z = 2.0 + 3.0 * torch.rand(n, generator=g, dtype=dtype)
    xy = (torch.rand(n, 2, generator=g, dtype=dtype) - 0.5) * torch.tensor([1.5, 1.2]) * z[:, None]
    means = torch.cat([xy, z[:, None]], dim=1)
    if behind:
        means[:behind, 2] = -means[:behind, 2]
    quats = torch.randn(n, 4, generator=g, dtype=dtype)
    scales = 0.05 + 0.3 * torch.rand(n, 3, generator=g, dtype=dtype)
    opacities = 0.1 + 0.85 * torch.rand(n, generator=g, dtype=dtype)
    return means, quats, scales, opacities


def _quat_to_rotmat(q):
    q = q / q.norm(dim=-1, keepdim=True)
    w, x, y, z = q.unbind(-1)
    return torch.stack([
        1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y),
        2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x),
        2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)], -1).reshape(-1, 3, 3)


def dense_reference(means, quats, scales, opacities, features, cam, background=None,
                    t_min=1e-4):
    """Every Gaussian at every pixel, depth-sorted, composited with the CUDA-kernel rules."""
    dtype = means.dtype
    w2c = cam.world_to_camera.to(dtype)
    rot, trans = w2c[:3, :3], w2c[:3, 3]
    mc = means @ rot.T + trans
    rg = _quat_to_rotmat(quats)
    cov = rg @ torch.diag_embed(scales ** 2) @ rg.transpose(1, 2)
    cov_c = rot @ cov @ rot.T
    tx, ty, tz = mc.unbind(-1)
    # EWA Jacobian at the frustum-clamped position (as gsplat/3DGS do).
    tan_x, tan_y = 0.5 * cam.width / cam.fx, 0.5 * cam.height / cam.fy
    lx = tz * torch.clamp(tx / tz, -(cam.cx / cam.fx + 0.3 * tan_x),
                          (cam.width - cam.cx) / cam.fx + 0.3 * tan_x)
    ly = tz * torch.clamp(ty / tz, -(cam.cy / cam.fy + 0.3 * tan_y),
                          (cam.height - cam.cy) / cam.fy + 0.3 * tan_y)
    zero = torch.zeros_like(tz)
    jac = torch.stack([cam.fx / tz, zero, -cam.fx * lx / tz ** 2,
                       zero, cam.fy / tz, -cam.fy * ly / tz ** 2], -1).reshape(-1, 2, 3)
    cov2d = jac @ cov_c @ jac.transpose(1, 2) + 0.3 * torch.eye(2, dtype=dtype)
    conic = torch.linalg.inv(cov2d)
    mean2d = torch.stack([cam.fx * tx / tz + cam.cx, cam.fy * ty / tz + cam.cy], -1)
    ys, xs = torch.meshgrid(torch.arange(cam.height, dtype=dtype),
                            torch.arange(cam.width, dtype=dtype), indexing='ij')
    pix = torch.stack([xs.reshape(-1), ys.reshape(-1)], -1) + 0.5  # [P, 2]
    d = pix[:, None, :] - mean2d[None]  # [P, N, 2]
    sigma = 0.5 * torch.einsum('pni,nij,pnj->pn', d, conic, d)
    alpha = torch.clamp(opacities[None] * torch.exp(-sigma), max=0.99)
    valid = (tz > 0.01)[None] & (sigma >= 0) & (alpha >= 1 / 255)
    alpha = torch.where(valid, alpha, torch.zeros_like(alpha))
    num_px = pix.shape[0]
    trans_t = torch.ones(num_px, dtype=dtype)
    done = torch.zeros(num_px, dtype=torch.bool)
    image = torch.zeros(num_px, features.shape[1], dtype=dtype)
    acc_alpha = torch.zeros(num_px, dtype=dtype)
    acc_depth = torch.zeros(num_px, dtype=dtype)
    for g in torch.argsort(tz.detach()).tolist():
        a = alpha[:, g]
        nxt = trans_t * (1 - a)
        done = done | ((a > 0) & (nxt <= t_min))
        use = (a > 0) & ~done
        wgt = torch.where(use, a * trans_t, torch.zeros_like(a))
        image = image + wgt[:, None] * features[g][None]
        acc_alpha = acc_alpha + wgt
        acc_depth = acc_depth + wgt * tz[g]
        trans_t = torch.where(use, nxt, trans_t)
    if background is not None:
        image = image + (1 - acc_alpha)[:, None] * background[None]
    depth = acc_depth / acc_alpha.clamp(min=1e-10)
    return (image.T.reshape(-1, cam.height, cam.width), acc_alpha.reshape(cam.height, cam.width),
            depth.reshape(cam.height, cam.width))


def _leaves(*tensors):
    return [t.detach().clone().requires_grad_(True) for t in tensors]


@pytest.mark.parametrize('channels', [1, 3])
def test_cpu_matches_dense_reference_values_and_gradients(channels):
    means, quats, scales, opac = _random_scene(30, seed=channels)
    feats = torch.randn(30, channels, dtype=torch.float64,
                        generator=torch.Generator().manual_seed(5))
    cam = _camera()
    g = torch.Generator().manual_seed(7)
    wi = torch.randn(channels, H, W, dtype=torch.float64, generator=g)
    wa = torch.randn(H, W, dtype=torch.float64, generator=g)
    wd = torch.randn(H, W, dtype=torch.float64, generator=g)

    def run(fn):
        leaves = _leaves(means, quats, scales, opac, feats)
        image, alpha, depth = fn(*leaves)
        loss = (image * wi).sum() + (alpha * wa).sum() + 0.1 * (depth * wd).sum()
        loss.backward()
        return (image, alpha, depth), [t.grad for t in leaves]

    def ours(m, q, s, o, f):
        out = rasterize(m, q, s, o, f, cam, backend='cpu', return_depth=True)
        return out.image, out.alpha, out.depth

    got, got_grads = run(ours)
    ref, ref_grads = run(lambda m, q, s, o, f: dense_reference(m, q, s, o, f, cam))
    assert float(ref[1].detach().max()) > 0.5, 'scene must cover pixels'
    assert (ref[1] > 0).float().mean() > 0.5
    for a, b in zip(got, ref):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-10)
    for name, a, b in zip(['means', 'quats', 'scales', 'opacities', 'features'],
                          got_grads, ref_grads):
        assert b.abs().max() > 0, name
        torch.testing.assert_close(a, b, rtol=1e-7, atol=1e-9, msg=f'gradient of {name}')


def test_anisotropic_and_dense_scenes_match_reference():
    """Needle-like splats stress the per-row spans; 300 small splats trigger T <= 1e-4 stops."""
    means, quats, scales, opac = _random_scene(40, seed=21)
    scales = scales * torch.tensor([3.0, 0.1, 0.1], dtype=torch.float64)
    feats = torch.randn(40, 2, dtype=torch.float64)
    cam = _camera()
    out = rasterize(means, quats, scales, opac, feats, cam, backend='cpu')
    ref_image, ref_alpha, _ = dense_reference(means, quats, scales, opac, feats, cam)
    torch.testing.assert_close(out.image, ref_image, rtol=1e-9, atol=1e-10)
    means, quats, scales, opac = _random_scene(300, seed=22)
    opac = 0.5 + 0.5 * opac
    feats = torch.randn(300, 1, dtype=torch.float64)
    out = rasterize(means, quats, scales, opac, feats, cam, backend='cpu')
    ref_image, ref_alpha, _ = dense_reference(means, quats, scales, opac, feats, cam)
    no_stop, _, _ = dense_reference(means, quats, scales, opac, feats, cam, t_min=0.0)
    assert (no_stop - ref_image).abs().max() > 1e-6  # some pixels stop early
    torch.testing.assert_close(out.image, ref_image, rtol=1e-9, atol=1e-10)
    torch.testing.assert_close(out.alpha, ref_alpha, rtol=1e-9, atol=1e-10)


def test_a_window_renders_exactly_the_full_image_pixels_it_covers():
    """A window's pixels equal the full image's, gradients included; a bad window is refused.

    The window path projects in the whole camera and crops only the pixel grid.
    """
    means, quats, scales, opac = _random_scene(80, seed=31)
    feats = torch.randn(80, 2, dtype=torch.float64)
    cam = _camera()
    full = rasterize(means, quats, scales, opac, feats, cam, backend='cpu', return_depth=True)
    x0, y0, x1, y1 = 5, 3, cam.width - 7, cam.height - 2
    part = rasterize(means, quats, scales, opac, feats, cam, backend='cpu', return_depth=True,
                     window=(x0, y0, x1, y1))
    assert part.image.shape == (2, y1 - y0, x1 - x0)
    torch.testing.assert_close(part.image, full.image[:, y0:y1, x0:x1], rtol=1e-9, atol=1e-10)
    torch.testing.assert_close(part.alpha, full.alpha[y0:y1, x0:x1], rtol=1e-9, atol=1e-10)
    torch.testing.assert_close(part.depth, full.depth[y0:y1, x0:x1], rtol=1e-9, atol=1e-10)
    leaves = _leaves(means, quats, scales, opac, feats)
    g = torch.randn(2, y1 - y0, x1 - x0, dtype=torch.float64)
    (rasterize(*leaves, cam, backend='cpu', window=(x0, y0, x1, y1)).image * g).sum().backward()
    ref = _leaves(means, quats, scales, opac, feats)
    padded = torch.zeros(2, cam.height, cam.width, dtype=torch.float64)
    padded[:, y0:y1, x0:x1] = g
    (rasterize(*ref, cam, backend='cpu').image * padded).sum().backward()
    for a, b in zip(leaves, ref):
        torch.testing.assert_close(a.grad, b.grad, rtol=1e-7, atol=1e-9)
    for bad in ((0, 0, cam.width + 1, 4), (3, 3, 3, 5), (-1, 0, 4, 4)):
        with pytest.raises(ValueError, match='window'):
            rasterize(means, quats, scales, opac, feats, cam, backend='cpu', window=bad)


@pytest.mark.parametrize('block', [1, 7, 64])
def test_blocks_of_gaussians_give_the_same_pairs(monkeypatch, block):
    """Enumerating front-to-back blocks with early termination between them changes nothing."""
    from refersplat_ros.core.render import cpu
    means, quats, scales, opac = _random_scene(300, seed=22)
    opac = 0.5 + 0.5 * opac
    feats = torch.randn(300, 1, dtype=torch.float64)
    cam = _camera()
    whole = rasterize(means, quats, scales, opac, feats, cam, backend='cpu')
    proj = cpu.project(means, quats, scales, opac, cam.world_to_camera.double(),
                       cam.intrinsics(torch.float64), W, H)
    reference = cpu.enumerate_pairs(proj, W, H)
    monkeypatch.setattr(cpu, '_CHUNK_GAUSSIANS', block)
    pairs = cpu.enumerate_pairs(proj, W, H)
    assert reference.num_pairs > 0
    assert torch.equal(pairs.pixel, reference.pixel)
    assert torch.equal(pairs.gaussian, reference.gaussian)
    out = rasterize(means, quats, scales, opac, feats, cam, backend='cpu')
    # the transmittance is summed block by block: the same to float64 rounding
    torch.testing.assert_close(out.image, whole.image, rtol=1e-12, atol=1e-12)
    ref_image, _, _ = dense_reference(means, quats, scales, opac, feats, cam)
    torch.testing.assert_close(out.image, ref_image, rtol=1e-9, atol=1e-10)


@pytest.mark.parametrize('block', [7, 1 << 17])
def test_frozen_geometry_weights_equal_the_differentiable_ones(monkeypatch, block):
    """Weights from the enumeration's alpha and T equal the ones recomputed for autograd."""
    from refersplat_ros.core.render import cpu
    monkeypatch.setattr(cpu, '_CHUNK_GAUSSIANS', block)
    means, quats, scales, opac = (t.float() for t in _random_scene(300, seed=5))
    opac = 0.5 + 0.5 * opac  # opaque enough that pixels stop early
    cam = _camera()
    proj = cpu.project(means, quats, scales, opac, cam.world_to_camera, cam.intrinsics(), W, H)
    pairs = cpu.enumerate_pairs(proj, W, H)
    frozen = cpu.pair_weights(pairs, proj)
    leaf = means.clone().requires_grad_(True)
    live = cpu.project(leaf, quats, scales, opac, cam.world_to_camera, cam.intrinsics(), W, H)
    recomputed = cpu.pair_weights(pairs, live)
    assert recomputed.requires_grad and not frozen.requires_grad
    assert pairs.num_pairs > 100
    torch.testing.assert_close(frozen, recomputed.detach(), rtol=1e-6, atol=1e-7)


def test_float32_matches_float64_reference():
    means, quats, scales, opac = _random_scene(30, seed=3)
    feats = torch.rand(30, 2, dtype=torch.float64)
    cam = _camera()
    out = rasterize(means.float(), quats.float(), scales.float(), opac.float(), feats.float(),
                    cam, backend='cpu')
    ref_image, ref_alpha, _ = dense_reference(means, quats, scales, opac, feats, cam)
    assert out.image.dtype == torch.float32
    torch.testing.assert_close(out.image.double(), ref_image, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(out.alpha.double(), ref_alpha, atol=1e-5, rtol=1e-4)


def test_occlusion_order_front_to_back():
    cam = _camera()
    # Two Gaussians centred on the pixel (12, 9) centre, the red one nearer.
    x, y = (12.5 - cam.cx) / cam.fx, (9.5 - cam.cy) / cam.fy
    means = torch.tensor([[2 * x, 2 * y, 2.0], [4 * x, 4 * y, 4.0]])
    quats = torch.tensor([[1.0, 0, 0, 0], [1.0, 0, 0, 0]])
    scales = torch.full((2, 3), 0.2)
    opac = torch.tensor([0.9, 0.8])
    feats = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    out = rasterize(means, quats, scales, opac, feats, cam, backend='cpu')
    center = out.image[:, 9, 12]
    torch.testing.assert_close(center, torch.tensor([0.9, 0.1 * 0.8]))
    torch.testing.assert_close(out.alpha[9, 12], torch.tensor(0.9 + 0.1 * 0.8))
    flipped = rasterize(means.flip(0), quats, scales, opac.flip(0), feats.flip(0), cam,
                        backend='cpu')
    torch.testing.assert_close(flipped.image, out.image)


def test_alpha_clamp_and_early_termination():
    cam = _camera()
    x, y = (12.5 - cam.cx) / cam.fx, (9.5 - cam.cy) / cam.fy
    z = torch.tensor([2.0, 3.0, 4.0, 5.0])
    means = torch.stack([x * z, y * z, z], dim=1)
    quats = torch.tensor([[1.0, 0, 0, 0]]).repeat(4, 1)
    scales = torch.full((4, 3), 0.3)
    feats = torch.tensor([[1.0], [10.0], [100.0], [1000.0]])
    # 0.98 each: T = 1, 0.02, 4e-4, then 8e-6 <= 1e-4 -> the third one stops the pixel.
    out = rasterize(means, quats, scales, torch.full((4,), 0.98), feats, cam, backend='cpu')
    torch.testing.assert_close(out.image[0, 9, 12], torch.tensor(0.98 + 0.02 * 0.98 * 10.0))
    torch.testing.assert_close(out.alpha[9, 12], torch.tensor(1 - 4e-4))
    # Opacity 1 is clamped to alpha 0.99.
    one = rasterize(means[:1], quats[:1], scales[:1], torch.ones(1), feats[:1], cam,
                    backend='cpu')
    torch.testing.assert_close(one.alpha[9, 12], torch.tensor(0.99))


def test_background_is_explicit():
    means, quats, scales, opac = _random_scene(20, seed=4, dtype=torch.float32)
    means[:, 0] += 3.0  # leave the left part of the image empty
    feats = torch.rand(20, 3)
    cam = _camera()
    plain = rasterize(means, quats, scales, opac, feats, cam, backend='cpu')
    bg = torch.tensor([0.2, 0.5, 1.0])
    with_bg = rasterize(means, quats, scales, opac, feats, cam, background=bg, backend='cpu')
    assert (plain.alpha == 0).any()
    assert plain.image[:, plain.alpha == 0].abs().max() == 0
    torch.testing.assert_close(with_bg.image,
                               plain.image + (1 - plain.alpha)[None] * bg[:, None, None])


def test_empty_views_and_gaussians_behind_camera():
    means, quats, scales, opac = _random_scene(30, seed=5, behind=10)
    feats = torch.randn(30, 2, dtype=torch.float64)
    cam = _camera()
    leaves = _leaves(means, quats, scales, opac, feats)
    out = rasterize(*leaves, cam, backend='cpu', return_depth=True)
    (out.image.sum() + out.alpha.sum() + out.depth.sum()).backward()
    front = rasterize(means[10:], quats[10:], scales[10:], opac[10:], feats[10:], cam,
                      backend='cpu', return_depth=True)
    torch.testing.assert_close(out.image, front.image)
    torch.testing.assert_close(out.depth, front.depth)
    for leaf in leaves:
        assert torch.isfinite(leaf.grad).all()
        assert leaf.grad[:10].abs().max() == 0
    assert leaves[0].grad[10:].abs().max() > 0
    # Nothing in front of the camera: zeros everywhere, finite zero gradients.
    back = _leaves(means[:10], quats[:10], scales[:10], opac[:10], feats[:10])
    empty = rasterize(*back, cam, backend='cpu', return_depth=True)
    assert empty.image.shape == (2, H, W) and empty.image.abs().max() == 0
    assert empty.alpha.abs().max() == 0 and empty.depth.abs().max() == 0
    (empty.image.sum() + empty.alpha.sum()).backward()
    assert all(t.grad is None or t.grad.abs().max() == 0 for t in back)
    # No Gaussians at all.
    none = rasterize(torch.zeros(0, 3), torch.zeros(0, 4), torch.zeros(0, 3), torch.zeros(0),
                     torch.zeros(0, 4), cam, backend='cpu')
    assert none.image.shape == (4, H, W) and none.image.abs().max() == 0


def test_rasterize_validates_inputs():
    means, quats, scales, opac = _random_scene(5, dtype=torch.float32)
    cam = _camera()
    with pytest.raises(ValueError, match='features'):
        rasterize(means, quats, scales, opac, torch.zeros(4, 1), cam)
    with pytest.raises(ValueError, match='scales'):
        rasterize(means, quats, scales[:, :2], opac, torch.zeros(5, 1), cam)
    with pytest.raises(ValueError, match='background'):
        rasterize(means, quats, scales, opac, torch.zeros(5, 2), cam, background=torch.zeros(3))
    with pytest.raises(ValueError, match='backend'):
        rasterize(means, quats, scales, opac, torch.zeros(5, 1), cam, backend='vulkan')
    assert resolve_backend('auto', torch.device('cpu')) == 'cpu'
    if not torch.cuda.is_available():
        with pytest.raises(RuntimeError, match='CUDA'):
            rasterize(means, quats, scales, opac, torch.zeros(5, 1), cam, backend='gsplat')


def test_render_scene_uses_sh_colors():
    means, quats, scales, opac = _random_scene(25, seed=8, dtype=torch.float32)
    rgb = torch.rand(25, 3)
    scene = GaussianScene.from_colors(means, rgb, scales, opac, quats)
    cam = _camera()
    out = render_scene(scene, cam, backend='cpu')
    ref = rasterize(means, quats, scales, scene.opacities, rgb, cam, backend='cpu')
    torch.testing.assert_close(out.image, ref.image, atol=1e-5, rtol=1e-5)
    feats = torch.rand(25, 5)
    torch.testing.assert_close(render_scene(scene, cam, feats, backend='cpu').image,
                               rasterize(means, quats, scales, scene.opacities, feats, cam,
                                         backend='cpu').image)


@pytest.mark.parametrize('channels', [1, 16])
def test_cached_weights_equal_direct_path(channels):
    means, quats, scales, opac = _random_scene(200, seed=9, dtype=torch.float32)
    cam = _camera(width=40, height=30, focal=30.0)
    feats = torch.randn(200, channels)
    bg = torch.rand(channels)
    weights = compositing_weights(means, quats, scales, opac, cam)
    for background in (None, bg):
        f1 = feats.clone().requires_grad_(True)
        f2 = feats.clone().requires_grad_(True)
        direct = rasterize(means, quats, scales, opac, f1, cam, background=background,
                           backend='cpu', return_depth=True)
        cached = weights.render(f2, background=background)
        torch.testing.assert_close(cached, direct.image)
        grad_out = torch.randn_like(cached)
        (direct.image * grad_out).sum().backward()
        (cached * grad_out).sum().backward()
        torch.testing.assert_close(f2.grad, f1.grad)
        torch.testing.assert_close(weights.alpha, direct.alpha)
        torch.testing.assert_close(weights.depth, direct.depth)
    assert weights.num_pairs > 0
    assert weights.nbytes >= weights.num_pairs * 16
    with pytest.raises(ValueError, match='features'):
        weights.render(torch.zeros(10, channels))


def test_inference_only_weights_render_the_same_without_the_transpose():
    means, quats, scales, opac = _random_scene(200, seed=9, dtype=torch.float32)
    cam = _camera(width=40, height=30, focal=30.0)
    feats, bg = torch.randn(200, 3), torch.rand(3)
    full = compositing_weights(means, quats, scales, opac, cam)
    light = compositing_weights(means, quats, scales, opac, cam, transpose=False)
    assert light.weights_t is None and light.nbytes < full.nbytes
    torch.testing.assert_close(light.render(feats, background=bg),
                               full.render(feats, background=bg))
    torch.testing.assert_close(light.gaussian_weight(), full.gaussian_weight())
    assert (full.gaussian_weight() > 0).any()
    with pytest.raises(ValueError, match='inference only'):
        light.render(feats.clone().requires_grad_(True))


def test_weights_cache_is_lru_by_bytes():
    means, quats, scales, opac = _random_scene(100, seed=10, dtype=torch.float32)
    base = _camera(width=32, height=24, focal=25.0)
    cams = {}
    for i in range(4):
        w2c = torch.eye(4)
        w2c[0, 3] = 0.2 * i
        cams[i] = Camera(32, 24, 25.0, 25.0, 16.0, 12.0, w2c)
    builds = []

    def builder(i):
        def build():
            builds.append(i)
            return compositing_weights(means, quats, scales, opac, cams[i])
        return build

    sizes = {i: compositing_weights(means, quats, scales, opac, cams[i]).nbytes for i in cams}
    cache = WeightsCache(max_bytes=sizes[0] + sizes[1] + sizes[2] // 2)
    cache.get(0, builder(0))
    cache.get(1, builder(1))
    assert cache.keys() == [0, 1] and cache.nbytes == sizes[0] + sizes[1]
    cache.get(0, builder(0))  # hit, 0 becomes most recent
    assert builds == [0, 1] and cache.hits == 1
    cache.get(2, builder(2))  # over budget: evicts 1, the least recently used
    assert cache.keys() == [0, 2]
    assert cache.nbytes == sizes[0] + sizes[2] <= cache.max_bytes
    cache.get(1, builder(1))
    assert builds == [0, 1, 2, 1] and 1 in cache and 0 not in cache
    tiny = WeightsCache(max_bytes=10)
    entry = tiny.get('x', builder(3))
    assert entry.num_pairs > 0 and len(tiny) == 0 and tiny.nbytes == 0
    _ = base  # the base camera only documents the image size


@pytest.mark.skipif(not torch.cuda.is_available(), reason='gsplat backend needs CUDA')
@pytest.mark.parametrize('channels', [1, 3, 6, 16])
def test_gsplat_backend_matches_cpu(channels):
    means, quats, scales, opac = _random_scene(60, seed=11, dtype=torch.float32)
    opac = opac.clamp(max=0.9)  # gsplat clamps alpha at 0.999, the CPU backend at 0.99
    feats = torch.randn(60, channels)
    cam = _camera(width=48, height=36, focal=40.0)
    cpu_leaves = _leaves(means, quats, scales, opac, feats)
    cuda_leaves = [t.detach().cuda().requires_grad_(True) for t in cpu_leaves]
    bg = torch.rand(channels)
    ref = rasterize(*cpu_leaves, cam, backend='cpu', return_depth=True, background=bg)
    out = rasterize(*cuda_leaves, cam, backend='gsplat', return_depth=True, background=bg.cuda())
    torch.testing.assert_close(out.image.cpu(), ref.image, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(out.alpha.cpu(), ref.alpha, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(out.depth.cpu(), ref.depth, atol=1e-3, rtol=1e-4)
    g = torch.randn(channels, 36, 48)
    (ref.image * g).sum().backward()
    (out.image * g.cuda()).sum().backward()
    for name, a, b in zip(['means', 'quats', 'scales', 'opacities', 'features'],
                          cuda_leaves, cpu_leaves):
        scale = b.grad.abs().max().clamp(min=1e-6)
        err = (a.grad.cpu() - b.grad).abs().max() / scale
        assert err < 1e-3, f'{name} gradient differs by {err}'


@pytest.mark.skipif(not torch.cuda.is_available(), reason='needs CUDA')
def test_cached_weights_on_cuda_match_cpu():
    means, quats, scales, opac = _random_scene(60, seed=12, dtype=torch.float32)
    cam = _camera(width=48, height=36, focal=40.0)
    feats = torch.randn(60, 4)
    cpu = compositing_weights(means, quats, scales, opac, cam).render(feats)
    gpu = compositing_weights(means.cuda(), quats.cuda(), scales.cuda(), opac.cuda(), cam)
    torch.testing.assert_close(gpu.render(feats.cuda()).cpu(), cpu, atol=1e-5, rtol=1e-5)
    assert math.isfinite(gpu.nbytes)


def test_gsplat_private_functions_only_from_a_verified_release():
    from refersplat_ros.core.render.gsplat_internals import check_gsplat_version
    check_gsplat_version('1.5.3')
    with pytest.raises(ImportError, match='private functions of gsplat'):
        check_gsplat_version('1.6.0')
    offenders = [str(p) for p in (Path(__file__).parents[3] / 'refersplat_ros').rglob('*.py')
                 if '_torch_impl' in p.read_text() and p.name != 'gsplat_internals.py']
    assert offenders == []


def test_render_info_gives_the_screen_space_gradient_densification_reads():
    """Return the drawn Gaussians' pixel centres, radii and ids with ``return_info``.

    As gsplat's packed meta; the centres' gradient is the loss's gradient w.r.t. the
    projected means.
    """
    means, quats, scales, opacities = _random_scene(n=12, seed=3, behind=2)
    means.requires_grad_()
    colors = torch.rand(12, 3, dtype=means.dtype)
    out = rasterize(means, quats, scales, opacities, colors, _camera(), backend='cpu',
                    return_info=True)
    info = out.info
    assert set(info) == {'means2d', 'radii', 'gaussian_ids', 'width', 'height', 'n_cameras'}
    assert (info['width'], info['height'], info['n_cameras']) == (W, H, 1)
    ids = info['gaussian_ids']
    assert set(ids.tolist()) <= set(range(2, 12))  # the two behind the camera are not drawn
    assert (info['radii'] > 0).all()  # only drawn Gaussians, as gsplat's packed meta
    assert info['means2d'].shape == (len(ids), 2) and info['radii'].shape == (len(ids), 2)
    info['means2d'].retain_grad()
    out.image.sum().backward()
    grad = info['means2d'].grad
    assert grad is not None and torch.isfinite(grad).all() and grad.abs().sum() > 0
    plain = rasterize(means, quats, scales, opacities, colors, _camera(), backend='cpu')
    assert plain.info is None
    assert torch.allclose(plain.image, out.image)  # listing the drawn ones changes no pixel
    far = means.detach().clone()
    far[5, 0] += 100.0  # off-screen: projected, not drawn
    off = rasterize(far, quats, scales, opacities, colors, _camera(), backend='cpu',
                    return_info=True).info
    assert 5 not in off['gaussian_ids'].tolist()
