"""Gaussian scene files: .ply and .pth round trips and every malformed-file error."""
import numpy as np
from plyfile import PlyData, PlyElement
import pytest
import torch

from refersplat_ros.core.errors import SceneFormatError
from refersplat_ros.core.scene.gaussian_io import load_capture_pth, load_ply, load_scene, save_ply
from refersplat_ros.core.scene.gaussians import GaussianScene


def _scene(n=7, degree=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    return GaussianScene(
        means=torch.randn(n, 3, generator=g),
        quats=torch.randn(n, 4, generator=g),
        log_scales=torch.randn(n, 3, generator=g) - 3,
        opacity_logits=torch.randn(n, generator=g),
        sh=torch.randn(n, (degree + 1) ** 2, 3, generator=g),
    )


def _assert_same(a: GaussianScene, b: GaussianScene):
    for name in ('means', 'quats', 'log_scales', 'opacity_logits', 'sh'):
        assert torch.equal(getattr(a, name), getattr(b, name)), name


@pytest.mark.parametrize('degree', [0, 1, 2, 3])
def test_ply_round_trip_is_exact(tmp_path, degree):
    scene = _scene(degree=degree)
    path = tmp_path / 'point_cloud.ply'
    save_ply(scene, path)
    loaded = load_ply(path)
    assert loaded.sh_degree == degree
    _assert_same(scene, loaded)
    _assert_same(scene, load_scene(path))


def test_ply_layout_is_channel_major(tmp_path):
    """f_rest_0..14 are the R coefficients, 15..29 G, 30..44 B (INRIA layout)."""
    scene = _scene(n=2, degree=3)
    path = tmp_path / 'scene.ply'
    save_ply(scene, path)
    vertex = PlyData.read(str(path))['vertex']
    names = [p.name for p in vertex.properties]
    assert names[:9] == ['x', 'y', 'z', 'nx', 'ny', 'nz', 'f_dc_0', 'f_dc_1', 'f_dc_2']
    assert names[-8:] == ['opacity', 'scale_0', 'scale_1', 'scale_2',
                          'rot_0', 'rot_1', 'rot_2', 'rot_3']
    assert len([n for n in names if n.startswith('f_rest_')]) == 45
    np.testing.assert_array_equal(vertex['f_rest_0'], scene.sh[:, 1, 0].numpy())
    np.testing.assert_array_equal(vertex['f_rest_14'], scene.sh[:, 15, 0].numpy())
    np.testing.assert_array_equal(vertex['f_rest_15'], scene.sh[:, 1, 1].numpy())
    np.testing.assert_array_equal(vertex['f_rest_44'], scene.sh[:, 15, 2].numpy())


def _write_ply(path, fields, n=3, values=None):
    records = np.zeros(n, dtype=[(f, 'f4') for f in fields])
    for f in fields:
        records[f] = np.arange(n, dtype=np.float32) * 0.1
    if values:
        for f, v in values.items():
            records[f] = v
    PlyData([PlyElement.describe(records, 'vertex')]).write(str(path))


BASE_FIELDS = (['x', 'y', 'z', 'nx', 'ny', 'nz', 'f_dc_0', 'f_dc_1', 'f_dc_2', 'opacity',
                'scale_0', 'scale_1', 'scale_2', 'rot_0', 'rot_1', 'rot_2', 'rot_3'])


def test_ply_errors_name_file_and_field(tmp_path):
    ok = tmp_path / 'ok.ply'
    _write_ply(ok, BASE_FIELDS)
    assert load_ply(ok).num_gaussians == 3
    missing = tmp_path / 'missing.ply'
    _write_ply(missing, [f for f in BASE_FIELDS if f != 'scale_1'])
    with pytest.raises(SceneFormatError, match=r'missing\.ply.*scale_1'):
        load_ply(missing)
    wrong_count = tmp_path / 'count.ply'
    _write_ply(wrong_count, BASE_FIELDS + [f'f_rest_{i}' for i in range(12)])
    with pytest.raises(SceneFormatError, match=r'count\.ply.*12 f_rest_'):
        load_ply(wrong_count)
    nan = tmp_path / 'nan.ply'
    _write_ply(nan, BASE_FIELDS, values={'opacity': [0.0, np.nan, 1.0]})
    with pytest.raises(SceneFormatError, match=r'nan\.ply.*opacity.*NaN'):
        load_ply(nan)
    inf = tmp_path / 'inf.ply'
    _write_ply(inf, BASE_FIELDS, values={'y': [0.0, np.inf, 1.0]})
    with pytest.raises(SceneFormatError, match=r"inf\.ply.*'y'.*NaN/inf"):
        load_ply(inf)
    full = tmp_path / 'full.ply'
    save_ply(_scene(n=20), full)
    data = full.read_bytes()
    truncated = tmp_path / 'truncated.ply'
    truncated.write_bytes(data[:-100])
    with pytest.raises(SceneFormatError, match=r'truncated\.ply.*truncated'):
        load_ply(truncated)
    header_only = tmp_path / 'header.ply'
    header_only.write_bytes(data[:150])
    with pytest.raises(SceneFormatError, match=r'header\.ply'):
        load_ply(header_only)
    with pytest.raises(SceneFormatError, match='no such'):
        load_ply(tmp_path / 'absent.ply')
    with pytest.raises(SceneFormatError, match='unknown scene format'):
        load_scene(tmp_path / 'scene.obj')


def _capture_tuple(scene: GaussianScene, length: int):
    """Build a 3DGS capture() tuple like graphdeco / LangSplat / ReferSplat do."""
    n = scene.num_gaussians
    param = torch.nn.Parameter(scene.means.clone())
    opt = torch.optim.Adam([param], lr=1e-3, eps=1e-15)
    param.grad = torch.ones_like(param)
    opt.step()  # the optimizer state_dict holds exp_avg tensors, as in real checkpoints
    head = (3, scene.means.clone(), scene.sh[:, :1].clone(), scene.sh[:, 1:].clone(),
            scene.log_scales.clone(), scene.quats.clone(), scene.opacity_logits[:, None].clone())
    tail = (torch.zeros(n), torch.zeros(n, 1), torch.zeros(n, 1), opt.state_dict(), 2.5)
    if length == 12:
        return head + tail
    if length == 11:
        return head + tail[:-1]
    language = torch.randn(n, 16)
    mlps = tuple(torch.nn.Linear(16, 16).state_dict() for _ in range(4))
    if length == 13:
        return head + (language,) + tail
    return head + (language,) + tail + mlps


@pytest.mark.parametrize('length', [11, 12, 13, 17])
def test_pth_captures_load(tmp_path, length):
    scene = _scene(n=9, degree=3)
    path = tmp_path / f'chkpnt{length}.pth'
    torch.save((_capture_tuple(scene, length), 30000), path)
    loaded = load_capture_pth(path)
    _assert_same(scene, loaded)
    _assert_same(scene, load_scene(path))
    bare = tmp_path / 'bare.pth'
    torch.save(_capture_tuple(scene, length), bare)
    _assert_same(scene, load_capture_pth(bare))


class _Payload:
    """An arbitrary pickled object: unpickling it would call a function."""

    def __reduce__(self):
        return (print, ('this must never run',))


def test_pth_errors(tmp_path, capsys):
    scene = _scene(n=4, degree=1)
    evil = tmp_path / 'evil.pth'
    torch.save((_capture_tuple(scene, 12)[:11] + (_Payload(),), 1), evil)
    with pytest.raises(SceneFormatError, match=r'evil\.pth.*refused.*weights_only'):
        load_capture_pth(evil)
    assert 'this must never run' not in capsys.readouterr().out
    good = tmp_path / 'good.pth'
    torch.save((_capture_tuple(scene, 12), 7), good)
    truncated = tmp_path / 'truncated.pth'
    truncated.write_bytes(good.read_bytes()[:-200])
    with pytest.raises(SceneFormatError, match=r'truncated\.pth'):
        load_capture_pth(truncated)
    args = list(_capture_tuple(scene, 12))
    bad_len = tmp_path / 'len.pth'
    torch.save((tuple(args[:10]), 1), bad_len)
    with pytest.raises(SceneFormatError, match=r'len\.pth.*10 items'):
        load_capture_pth(bad_len)
    wrong = list(args)
    wrong[4] = torch.zeros(3, 3)
    wrong_path = tmp_path / 'wrong.pth'
    torch.save((tuple(wrong), 1), wrong_path)
    with pytest.raises(SceneFormatError, match=r"wrong\.pth.*'scaling'.*shape"):
        load_capture_pth(wrong_path)
    nan = list(args)
    nan[5] = nan[5].clone()
    nan[5][0, 0] = float('nan')
    nan_path = tmp_path / 'nan.pth'
    torch.save((tuple(nan), 1), nan_path)
    with pytest.raises(SceneFormatError, match=r"nan\.pth.*'rotation'.*NaN"):
        load_capture_pth(nan_path)
    not_tuple = tmp_path / 'dict.pth'
    torch.save({'xyz': torch.zeros(2, 3)}, not_tuple)
    with pytest.raises(SceneFormatError, match=r'dict\.pth.*capture\(\) tuple'):
        load_capture_pth(not_tuple)
    with pytest.raises(SceneFormatError, match='no such'):
        load_capture_pth(tmp_path / 'absent.pth')


def test_empty_scenes_are_refused(tmp_path):
    empty_ply = tmp_path / 'empty.ply'
    _write_ply(empty_ply, BASE_FIELDS, n=0)
    with pytest.raises(SceneFormatError, match=r'empty\.ply: the scene has no Gaussians'):
        load_scene(empty_ply)
    empty_pth = tmp_path / 'empty.pth'
    torch.save((_capture_tuple(_scene(n=0, degree=0), 12), 1), empty_pth)
    with pytest.raises(SceneFormatError, match=r'empty\.pth: the scene has no Gaussians'):
        load_scene(empty_pth)


def test_ply_header_counts_must_fit_the_file(tmp_path):
    for fmt in ('binary_little_endian', 'ascii'):
        forged = tmp_path / f'forged_{fmt}.ply'
        props = ''.join(f'property float {f}\n' for f in BASE_FIELDS)
        forged.write_bytes(f'ply\nformat {fmt} 1.0\nelement vertex 1000000000\n{props}'
                           'end_header\n'.encode() + b'\0' * 680)
        with pytest.raises(SceneFormatError, match=r'header declares 1000000000 vertex rows, '
                                                   r'at least \d+ bytes, but the file holds 680'):
            load_ply(forged)


def test_pth_with_compressed_records_is_refused_before_inflating(tmp_path):
    import io
    import zipfile

    # 16 MB of Gaussians deflate to ~16 kB: torch.load would inflate every record.
    scene = _scene(n=2, degree=0)
    args = list(_capture_tuple(scene, 12))
    n = 2**20 // 3
    args[1:7] = [torch.zeros(n, 3), torch.zeros(n, 1, 3), torch.zeros(n, 0, 3),
                 torch.zeros(n, 3), torch.zeros(n, 4), torch.zeros(n, 1)]
    plain = io.BytesIO()
    torch.save((tuple(args), 1), plain)
    packed = tmp_path / 'deflated.pth'
    with zipfile.ZipFile(io.BytesIO(plain.getvalue())) as src, \
            zipfile.ZipFile(packed, 'w') as dst:
        for info in src.infolist():
            dst.writestr(info, src.read(info.filename), compress_type=zipfile.ZIP_DEFLATED)
    assert packed.stat().st_size < len(plain.getvalue()) // 20
    with pytest.raises(SceneFormatError, match=r'deflated\.pth: \d+ compressed record\(s\)'):
        load_capture_pth(packed)
    legacy = tmp_path / 'legacy.pth'
    torch.save((_capture_tuple(scene, 12), 1), legacy, _use_new_zipfile_serialization=False)
    with pytest.raises(SceneFormatError, match='legacy format, which is not supported'):
        load_capture_pth(legacy)
