"""Cameras: conventions, resize, look_at, COLMAP text/binary, transforms.json."""
import json
import logging
import math
import struct

import pytest
import torch

from refersplat_ros.core.errors import CameraFormatError
from refersplat_ros.core.scene.cameras import (Camera, qvec_to_rotmat, read_colmap_model,
                                               read_colmap_points, read_transforms_json,
                                               rotmat_to_qvec, write_colmap_binary,
                                               write_colmap_text)


def _project(cam: Camera, point):
    p = cam.world_to_camera.double() @ torch.tensor(list(point) + [1.0], dtype=torch.float64)
    return (cam.K.double() @ (p[:3] / p[2]))[:2], p[2]


def test_camera_properties_and_look_at():
    cam = Camera.look_at([0.0, -3.0, 1.0], [0.0, 0.0, 1.0], width=64, height=48, fov_y_deg=90)
    torch.testing.assert_close(cam.fy, 24.0)
    torch.testing.assert_close(cam.center, torch.tensor([0.0, -3.0, 1.0]))
    torch.testing.assert_close(cam.camera_to_world @ cam.world_to_camera, torch.eye(4))
    uv, depth = _project(cam, [0.0, 0.0, 1.0])  # the target projects to the image centre
    torch.testing.assert_close(uv, torch.tensor([32.0, 24.0], dtype=torch.float64))
    assert float(depth) == pytest.approx(3.0)
    uv_up, _ = _project(cam, [0.0, 0.0, 2.0])  # world up is image up (smaller v)
    uv_right, _ = _project(cam, [1.0, 0.0, 1.0])  # +x is to the right seen from -y
    assert uv_up[1] < 24 and uv_right[0] > 32
    assert cam.K.shape == (3, 3) and cam.K.dtype == torch.float32
    assert cam.intrinsics(torch.float64)[0, 2].item() == 32.0
    with pytest.raises(ValueError):
        Camera.look_at([0, 0, 0], [0, 0, 1], up=(0, 0, 1))


def test_resized_scales_intrinsics():
    cam = Camera(640, 480, 500.0, 510.0, 320.5, 240.5, torch.eye(4), 'a.png')
    small = cam.resized(320, 240)
    assert (small.width, small.height, small.name) == (320, 240, 'a.png')
    assert (small.fx, small.fy, small.cx, small.cy) == (250.0, 255.0, 160.25, 120.25)
    torch.testing.assert_close(small.world_to_camera, cam.world_to_camera)
    with pytest.raises(ValueError):
        Camera(0, 10, 1.0, 1.0, 0.0, 0.0, torch.eye(4))


def test_quaternion_round_trip():
    g = torch.Generator().manual_seed(0)
    for _ in range(20):
        q = torch.randn(4, generator=g, dtype=torch.float64)
        q = q / q.norm()
        q = -q if q[0] < 0 else q
        rot = qvec_to_rotmat(q)
        torch.testing.assert_close(rot @ rot.T, torch.eye(3, dtype=torch.float64))
        torch.testing.assert_close(rotmat_to_qvec(rot), q)


def _rig(n=4):
    cams = []
    for i in range(n):
        angle = 2 * math.pi * i / n
        eye = [3 * math.cos(angle), 3 * math.sin(angle), 1.0 + 0.1 * i]
        cams.append(Camera.look_at(eye, [0, 0, 0.5], width=80 + i, height=60, fov_y_deg=50,
                                   name=f'frame_{i:05d}.png'))
    return cams


def _assert_cameras_close(a: Camera, b: Camera):
    assert (a.width, a.height, a.name) == (b.width, b.height, b.name)
    assert a.fx == pytest.approx(b.fx) and a.fy == pytest.approx(b.fy)
    assert a.cx == pytest.approx(b.cx) and a.cy == pytest.approx(b.cy)
    torch.testing.assert_close(a.world_to_camera, b.world_to_camera, atol=1e-6, rtol=1e-6)


def test_colmap_text_and_binary_agree(tmp_path):
    cams = _rig()
    xyz = torch.rand(10, 3)
    rgb = torch.randint(0, 256, (10, 3), dtype=torch.uint8)
    write_colmap_text(tmp_path / 'text', cams, xyz, rgb)
    write_colmap_binary(tmp_path / 'bin', cams, xyz, rgb)
    text = read_colmap_model(tmp_path / 'text')
    binary = read_colmap_model(tmp_path / 'bin')
    assert list(text) == list(binary) == [c.name for c in cams]
    for cam in cams:
        _assert_cameras_close(text[cam.name], cam)
        _assert_cameras_close(binary[cam.name], text[cam.name])
    for folder in ('text', 'bin'):
        p_xyz, p_rgb = read_colmap_points(tmp_path / folder)
        torch.testing.assert_close(p_xyz, xyz)
        assert torch.equal(p_rgb, rgb)
    # Binary is preferred when both are present.
    write_colmap_text(tmp_path / 'bin', [c.resized(40, 30) for c in cams])
    assert read_colmap_model(tmp_path / 'bin')[cams[0].name].width == cams[0].width


def _write_text_model(folder, model, params, width=100, height=80):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / 'cameras.txt').write_text(
        '# comment\n' + f'1 {model} {width} {height} ' + ' '.join(map(str, params)) + '\n')
    (folder / 'images.txt').write_text(
        '# IMAGE_ID, QW, QX, QY, QZ, TX, TY, TZ, CAMERA_ID, NAME\n'
        '2 1 0 0 0 0.5 0 2 1 b.jpg\n1.0 2.0 -1\n'
        '1 0.7071067811865476 0.7071067811865476 0 0 0 0 1 1 a.jpg\n\n')


def _write_binary_model(folder, model_id, params, width=100, height=80):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / 'cameras.bin').write_bytes(
        struct.pack('<QiiQQ', 1, 1, model_id, width, height)
        + struct.pack('<' + 'd' * len(params), *params))
    images = struct.pack('<Q', 2)
    for image_id, q, t, name, pts in ((2, (1, 0, 0, 0), (0.5, 0, 2), b'b.jpg', [(1.0, 2.0, -1)]),
                                      (1, (math.sqrt(0.5), math.sqrt(0.5), 0, 0), (0, 0, 1),
                                       b'a.jpg', [])):
        images += struct.pack('<idddddddi', image_id, *q, *t, 1) + name + b'\x00'
        images += struct.pack('<Q', len(pts)) + b''.join(struct.pack('<ddq', *p) for p in pts)
    (folder / 'images.bin').write_bytes(images)


@pytest.mark.parametrize('model,model_id,params,expected,warns', [
    ('PINHOLE', 1, [90.0, 95.0, 50.0, 40.0], (90.0, 95.0, 50.0, 40.0), False),
    ('SIMPLE_PINHOLE', 0, [90.0, 50.0, 40.0], (90.0, 90.0, 50.0, 40.0), False),
    ('SIMPLE_RADIAL', 2, [90.0, 50.0, 40.0, 0.01], (90.0, 90.0, 50.0, 40.0), True),
    ('RADIAL', 3, [90.0, 50.0, 40.0, 0.01, 0.02], (90.0, 90.0, 50.0, 40.0), True),
    ('OPENCV', 4, [90.0, 95.0, 50.0, 40.0, 0.1, 0.0, 0.0, 0.0], (90.0, 95.0, 50.0, 40.0), True),
])
def test_colmap_models(tmp_path, caplog, model, model_id, params, expected, warns):
    _write_text_model(tmp_path / 'txt', model, params)
    _write_binary_model(tmp_path / 'bin', model_id, params)
    with caplog.at_level(logging.WARNING):
        text = read_colmap_model(tmp_path / 'txt')
        binary = read_colmap_model(tmp_path / 'bin')
    assert ('distortion' in caplog.text) == warns
    assert list(text) == list(binary) == ['a.jpg', 'b.jpg']  # image-id order
    for name in text:
        _assert_cameras_close(text[name], binary[name])
        cam = text[name]
        assert (cam.fx, cam.fy, cam.cx, cam.cy) == expected
    b = text['b.jpg']
    torch.testing.assert_close(b.center, torch.tensor([-0.5, 0.0, -2.0]))
    a = text['a.jpg']  # 90 degrees about x
    torch.testing.assert_close(a.rotation, torch.tensor([[1.0, 0, 0], [0, 0, -1], [0, 1, 0]]),
                               atol=1e-6, rtol=0)


def test_colmap_errors(tmp_path):
    with pytest.raises(CameraFormatError, match='no COLMAP model'):
        read_colmap_model(tmp_path)
    _write_text_model(tmp_path / 'fish', 'OPENCV_FISHEYE', [1, 1, 1, 1, 0, 0, 0, 0])
    with pytest.raises(CameraFormatError, match='unsupported model OPENCV_FISHEYE'):
        read_colmap_model(tmp_path / 'fish')
    _write_text_model(tmp_path / 'count', 'PINHOLE', [1, 1, 1])
    with pytest.raises(CameraFormatError, match=r'cameras\.txt.*3 params, expected 4'):
        read_colmap_model(tmp_path / 'count')
    _write_binary_model(tmp_path / 'trunc', 1, [90.0, 95.0, 50.0, 40.0])
    data = (tmp_path / 'trunc' / 'images.bin').read_bytes()
    (tmp_path / 'trunc' / 'images.bin').write_bytes(data[:-20])
    with pytest.raises(CameraFormatError, match=r'images\.bin.*truncated'):
        read_colmap_model(tmp_path / 'trunc')
    (tmp_path / 'bad').mkdir()
    (tmp_path / 'bad' / 'cameras.txt').write_text('1 PINHOLE 10 10 1 1 5 5\n')
    (tmp_path / 'bad' / 'images.txt').write_text('1 1 0 0 0 0 0 0 7 a.png\n\n')
    with pytest.raises(CameraFormatError, match='missing camera 7'):
        read_colmap_model(tmp_path / 'bad')
    with pytest.raises(ValueError, match='unique'):
        write_colmap_text(tmp_path / 'w', [_rig(1)[0], _rig(1)[0]])


def test_transforms_json_nerfstudio_and_blender(tmp_path, caplog):
    cams = _rig(3)
    frames = []
    for cam in cams:
        c2w_gl = cam.camera_to_world.double() @ torch.diag(
            torch.tensor([1.0, -1.0, -1.0, 1.0], dtype=torch.float64))
        frames.append({'file_path': f'./images/{cam.name}', 'transform_matrix': c2w_gl.tolist()})
    meta = {'fl_x': 60.0, 'fl_y': 61.0, 'cx': 40.0, 'cy': 30.0, 'w': 80, 'h': 60,
            'k1': 0.01, 'camera_model': 'OPENCV', 'frames': frames}
    path = tmp_path / 'transforms.json'
    path.write_text(json.dumps(meta))
    with caplog.at_level(logging.WARNING):
        loaded = read_transforms_json(path)
    assert 'distortion' in caplog.text
    assert list(loaded) == [f'images/{c.name}' for c in cams]
    for cam, got in zip(cams, loaded.values()):
        torch.testing.assert_close(got.world_to_camera, cam.world_to_camera, atol=1e-6, rtol=0)
        assert (got.fx, got.fy, got.cx, got.cy, got.width, got.height) == (
            60.0, 61.0, 40.0, 30.0, 80, 60)
    # Blender: camera_angle_x, no size -> read from the image; 3x4 matrices accepted.
    from PIL import Image
    (tmp_path / 'train').mkdir()
    Image.new('RGB', (40, 20)).save(tmp_path / 'train' / 'r_0.png')
    blender = {'camera_angle_x': math.pi / 2,
               'frames': [{'file_path': './train/r_0',
                           'transform_matrix': frames[0]['transform_matrix'][:3]}]}
    path_b = tmp_path / 'transforms_train.json'
    path_b.write_text(json.dumps(blender))
    cam_b = read_transforms_json(path_b)['train/r_0']
    assert (cam_b.width, cam_b.height) == (40, 20)
    assert cam_b.fx == pytest.approx(20.0) and cam_b.fy == pytest.approx(20.0)
    torch.testing.assert_close(cam_b.world_to_camera, cams[0].world_to_camera, atol=1e-6,
                               rtol=0)


def test_transforms_json_errors(tmp_path):
    with pytest.raises(CameraFormatError, match='no such'):
        read_transforms_json(tmp_path / 'absent.json')
    bad = tmp_path / 'bad.json'
    bad.write_text('{"frames": [')
    with pytest.raises(CameraFormatError, match='not valid JSON'):
        read_transforms_json(bad)
    bad.write_text(json.dumps({'w': 4, 'h': 4, 'fl_x': 2.0,
                               'frames': [{'file_path': 'a.png'}]}))
    with pytest.raises(CameraFormatError, match=r'frames\[0\].*transform_matrix'):
        read_transforms_json(bad)
    bad.write_text(json.dumps({'w': 4, 'h': 4,
                               'frames': [{'file_path': 'a.png',
                                           'transform_matrix': torch.eye(4).tolist()}]}))
    with pytest.raises(CameraFormatError, match='fl_x'):
        read_transforms_json(bad)
    bad.write_text(json.dumps({'fl_x': 2.0, 'frames': [{'file_path': 'missing.png',
                                                        'transform_matrix': [[1, 0]]}]}))
    with pytest.raises(CameraFormatError, match='4x4'):
        read_transforms_json(bad)
