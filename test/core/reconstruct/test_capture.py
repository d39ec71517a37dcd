"""Reading a capture: COLMAP and transforms.json layouts, held-out views, bad folders."""
import json
import shutil

import pytest
import torch

from refersplat_ros.core.errors import CameraFormatError, DatasetError
from refersplat_ros.core.reconstruct.capture import load_capture


def test_a_colmap_capture_reads_images_cameras_and_points(tiny_capture_dir):
    manifest = json.loads((tiny_capture_dir / 'manifest.json').read_text())
    test_frames = manifest['split']['test_frames']
    capture = load_capture(tiny_capture_dir, held_out=test_frames)
    assert len(capture.cameras) == len(manifest['views'])
    assert [capture.cameras[i].name.split('.')[0] for i in capture.test] == test_frames
    assert len(capture.train) == len(capture.cameras) - len(test_frames)
    image = capture.images[0]
    assert image.shape == (3, capture.cameras[0].height, capture.cameras[0].width)
    assert 0.0 <= float(image.min()) and float(image.max()) <= 1.0
    assert capture.points.shape[1] == 3 and len(capture.points) > 100
    assert capture.point_colors.shape == capture.points.shape
    # frame numbers name the same views; every 8th view by default (3DGS --eval)
    numbers = [int(f.split('_')[-1]) for f in test_frames]
    assert load_capture(tiny_capture_dir, held_out=numbers).test == capture.test
    assert load_capture(tiny_capture_dir).test == [0]
    with pytest.raises(DatasetError, match='frame_09999'):
        load_capture(tiny_capture_dir, held_out=['frame_09999'])


def test_a_transforms_json_capture_has_the_same_cameras(tiny_capture_dir, tmp_path):
    colmap = load_capture(tiny_capture_dir)
    root = tmp_path / 'nerfstudio'
    shutil.copytree(tiny_capture_dir / 'images', root / 'images')
    flip = torch.diag(torch.tensor([1.0, -1.0, -1.0, 1.0], dtype=torch.float64))
    frames = [{'file_path': f'images/{c.name}',
               'transform_matrix': (c.camera_to_world.double() @ flip).tolist(),
               'fl_x': c.fx, 'fl_y': c.fy, 'cx': c.cx, 'cy': c.cy, 'w': c.width, 'h': c.height}
              for c in colmap.cameras]
    (root / 'transforms.json').write_text(json.dumps({'frames': frames}))
    capture = load_capture(root)
    assert capture.points is None  # no sparse points: the fit starts at random
    assert len(capture.cameras) == len(colmap.cameras)
    for a, b in zip(capture.cameras, colmap.cameras):
        assert torch.allclose(a.world_to_camera, b.world_to_camera, atol=1e-5)
    for a, b in zip(capture.images, colmap.images):
        assert torch.equal(a, b)


def test_bad_captures_are_named(tiny_capture_dir, tmp_path):
    with pytest.raises(DatasetError, match='not found'):
        load_capture(tmp_path / 'absent')
    (tmp_path / 'empty').mkdir()
    with pytest.raises(CameraFormatError, match='transforms.json'):
        load_capture(tmp_path / 'empty')
    broken = tmp_path / 'broken'
    shutil.copytree(tiny_capture_dir, broken)
    first = sorted((broken / 'images').iterdir())[0]
    first.write_bytes(b'not a png')
    with pytest.raises(DatasetError, match='cannot read image'):
        load_capture(broken)
    first.unlink()
    with pytest.raises(DatasetError, match='no image file'):
        load_capture(broken)


def test_large_images_are_scaled_to_max_height(tiny_capture_dir):
    capture = load_capture(tiny_capture_dir, max_height=24)
    camera = capture.cameras[0]
    assert camera.height == 24 and capture.images[0].shape[1:] == (24, camera.width)
