"""Ref-LERF loader on hand-made fixtures: both layouts, split rules, quirks and errors."""
import json
import logging

import numpy as np
from PIL import Image
import pytest
import torch

from refersplat_ros.core.datasets.reflerf.layout import annotation_stem, known_test_frames
from refersplat_ros.core.datasets.reflerf.loader import load_referring_dataset
from refersplat_ros.core.errors import DatasetError
from refersplat_ros.core.scene.cameras import Camera, write_colmap_text

W, H = 40, 30


def _camera(name, i):
    return Camera.look_at((np.cos(i), np.sin(i), 1.0), (0.0, 0.0, 0.0), width=W, height=H,
                          name=name)


def _mask(path, box, size=(W, H), value=255):
    path.parent.mkdir(parents=True, exist_ok=True)
    arr = np.zeros((size[1], size[0]), np.uint8)
    x0, y0, x1, y1 = box
    arr[y0:y1, x0:x1] = value
    Image.fromarray(arr).save(path)


NAMES = ('frame_00005.jpg', 'frame_00006.jpg', 'frame_00007.jpg')


def make_fixture(root, layout='official', names=NAMES, test=(6,)):
    """Write a Ref-LERF scene folder: one 'cup' and one 'tea-glass' per frame."""
    root.mkdir(parents=True, exist_ok=True)
    cams = [_camera(n, i) for i, n in enumerate(names)]
    write_colmap_text(root / 'sparse' / '0', cams)
    (root / 'images').mkdir()
    for n in names:
        Image.fromarray(np.full((H, W, 3), 100, np.uint8)).save(root / 'images' / n)
    for n in names:
        stem = annotation_stem(n)
        number = int(stem[-5:])
        is_test = number in test
        mask_dir = 'mask' if (layout == 'split-json' and is_test) else 'gt_mask'
        _mask(root / mask_dir / stem / 'cup.png', (2, 3, 12, 13))
        _mask(root / mask_dir / stem / 'tea-glass.png', (20, 5, 30, 25))
        sentences = (['the cup on the left'] if is_test else
                     ['a white cup', 'the cup near the glass'])
        data = {'object': [
            {'category': 'cup', 'segmentation': f'{stem}/cup.png', 'sentence': sentences},
            {'category': 'tea-glass', 'segmentation': f'{stem}/tea-glass.png',
             'sentence': ['the glass of tea']}]}
        if layout == 'official':
            path = root / 'json' / f'{stem}.json'
        else:
            path = root / 'json' / ('test_json' if is_test else 'train_json') / f'{stem}.json'
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(data))
    return root


RAMEN_TEST = ('frame_00006', 'frame_00024', 'frame_00060', 'frame_00065', 'frame_00081',
              'frame_00119', 'frame_00128')


def test_builtin_ramen_split_needs_every_ramen_test_frame(tmp_path):
    names = ('frame_00005.jpg', 'frame_00007.jpg') + tuple(f'{s}.jpg' for s in RAMEN_TEST)
    root = make_fixture(tmp_path / 'ramen', names=names, test=(6, 24, 60, 65, 81, 119, 128))
    ds = load_referring_dataset(root)
    assert tuple(v.frame for v in ds.test_views) == RAMEN_TEST
    assert [v.frame for v in ds.train_views] == ['frame_00005', 'frame_00007']


def test_official_layout(tmp_path):
    root = make_fixture(tmp_path / 'scene')
    ds = load_referring_dataset(root, test_frames=[6])
    assert ds.layout == 'official'
    assert [v.frame for v in ds.test_views] == ['frame_00006']
    assert [v.frame for v in ds.train_views] == ['frame_00005', 'frame_00007']
    view = ds.train_views[0]
    assert view.camera.width == W and view.image_path.name == 'frame_00005.jpg'
    assert [(a.category, a.sentence, a.split, a.kind) for a in view.annotations] == [
        ('cup', 'a white cup', 'train', 'unknown'),
        ('cup', 'the cup near the glass', 'train', 'unknown'),
        ('tea-glass', 'the glass of tea', 'train', 'unknown')]
    mask = view.load_mask(view.annotations[0])
    assert mask.dtype == torch.bool and tuple(mask.shape) == (H, W)
    assert int(mask.sum()) == 100 and bool(mask[3:13, 2:12].all())
    image = view.load_image()
    assert tuple(image.shape) == (3, H, W) and abs(float(image.mean()) - 100 / 255) < 1e-6
    assert ds.test_views[0].annotations[0].sentence == 'the cup on the left'
    assert ds.sentences('test') == ['the cup on the left', 'the glass of tea']
    assert ds.object_ids() is None and ds.scene_path is None


def test_split_json_layout_with_mask_fallback(tmp_path):
    root = make_fixture(tmp_path / 'myscene', layout='split-json', test=(7,))
    ds = load_referring_dataset(root)
    assert ds.layout == 'split-json'
    assert [v.frame for v in ds.test_views] == ['frame_00007']
    test_ann = ds.test_views[0].annotations[0]
    assert test_ann.mask_path.parent.parent.name == 'mask' and test_ann.split == 'test'
    assert ds.train_views[0].annotations[0].mask_path.parent.parent.name == 'gt_mask'
    assert int(ds.test_views[0].load_mask(test_ann).sum()) == 100


def test_builtin_tables_and_explicit_override(tmp_path):
    assert known_test_frames('waldo_kitchen') == (19, 35, 67, 105, 162)
    assert known_test_frames('kitchen') == known_test_frames('waldo_kitchen')
    assert known_test_frames('figurines') == (83, 97, 146, 179)
    assert known_test_frames('teatime') == (2, 25, 43, 107, 129, 140)
    root = make_fixture(tmp_path / 'unknown_scene')
    with pytest.raises(DatasetError, match='no test-frame list'):
        load_referring_dataset(root)
    ds = load_referring_dataset(root, test_frames=[5, 'frame_00007'])
    assert [v.frame for v in ds.test_views] == ['frame_00005', 'frame_00007']
    # A user scene named like a Ref-LERF scene ('kitchen') but without its frames: a clear error
    # that says how to give the split, never the built-in list's stray matches.
    with pytest.raises(DatasetError, match=r'named like a Ref-LERF scene.*--test-frames'):
        load_referring_dataset(root, scene_name='ramen')
    kitchen = make_fixture(tmp_path / 'kitchen', names=('frame_00018.jpg', 'frame_00019.jpg'),
                           test=(19,))
    with pytest.raises(DatasetError, match=r'lack the Ref-LERF test frames \[35, 67, 105, 162\]'):
        load_referring_dataset(kitchen)


def test_two_character_stem_quirk(tmp_path):
    assert annotation_stem('19.jpg') == 'frame_00019'
    assert annotation_stem('frame_00019.jpg') == 'frame_00019'
    root = make_fixture(tmp_path / 'scene', names=('19.jpg', 'frame_00020.jpg'), test=(19,))
    ds = load_referring_dataset(root, test_frames=['19.jpg'])
    assert [v.frame for v in ds.test_views] == ['frame_00019']
    assert ds.test_views[0].name == '19.jpg' and ds.test_views[0].image_path.name == '19.jpg'


def test_missing_json_is_skipped_with_a_warning(tmp_path, caplog):
    root = make_fixture(tmp_path / 'scene')
    (root / 'json' / 'frame_00007.json').unlink()
    with caplog.at_level(logging.WARNING):
        ds = load_referring_dataset(root, test_frames=[6])
    assert ds.skipped == ['frame_00007.jpg']
    assert len(ds.train_views) == 1 and len(ds.test_views) == 1
    assert any('frame_00007' in r.getMessage() for r in caplog.records)


def test_missing_mask_file_is_an_error_naming_it(tmp_path):
    root = make_fixture(tmp_path / 'scene')
    (root / 'gt_mask' / 'frame_00006' / 'tea-glass.png').unlink()
    with pytest.raises(DatasetError, match=r'frame_00006\.json.*object\[1\]\.segmentation.*'
                                           r'tea-glass\.png'):
        load_referring_dataset(root, test_frames=[6])


@pytest.mark.parametrize('content, field', [
    ('{"object": [', 'invalid JSON at line 1'),
    ('[1, 2]', 'top level'),
    ('{"objects": []}', 'missing field "object"'),
    ('{"object": {}}', 'field "object" must be a list'),
    ('{"object": [{"category": "cup", "segmentation": "x.png"}]}', 'missing field "sentence"'),
    ('{"object": [{"category": "cup", "segmentation": "x.png", "sentence": "a cup"}]}',
     r'object\[0\]\.sentence must be a list'),
    ('{"object": [{"category": 3, "segmentation": "x.png", "sentence": []}]}',
     r'object\[0\]\.category'),
    ('{"object": [{"category": "a", "segmentation": "frame_00005/cup.png", "sentence": []},'
     '{"category": "a", "segmentation": "frame_00005/cup.png", "sentence": []}]}',
     r'object\[1\]\.category .* not unique'),
])
def test_malformed_json_names_file_and_field(tmp_path, content, field):
    root = make_fixture(tmp_path / 'scene')
    (root / 'json' / 'frame_00005.json').write_text(content)
    with pytest.raises(DatasetError, match=rf'frame_00005\.json.*{field}'):
        load_referring_dataset(root, test_frames=[6])


def test_masks_any_nonzero_and_resized(tmp_path):
    root = make_fixture(tmp_path / 'scene')
    # A mask at twice the camera resolution with value 1 (not 255): still foreground.
    _mask(root / 'gt_mask' / 'frame_00005' / 'cup.png', (4, 6, 24, 26), size=(2 * W, 2 * H),
          value=1)
    ds = load_referring_dataset(root, test_frames=[6])
    mask = ds.train_views[0].load_mask(ds.train_views[0].annotations[0])
    assert tuple(mask.shape) == (H, W)
    assert bool(mask[3:13, 2:12].all()) and int(mask.sum()) < 150
    assert not bool(mask[20:, 20:].any())


def test_tall_cameras_are_scaled_to_max_height(tmp_path):
    root = make_fixture(tmp_path / 'scene')
    ds = load_referring_dataset(root, test_frames=[6], max_height=15)
    cam = ds.train_views[0].camera
    assert (cam.width, cam.height) == (20, 15)
    assert tuple(ds.train_views[0].load_image().shape) == (3, 15, 20)
    assert int(ds.train_views[0].load_mask(ds.train_views[0].annotations[0]).sum()) > 0


def test_not_a_scene_folder(tmp_path):
    with pytest.raises(DatasetError, match='not found'):
        load_referring_dataset(tmp_path / 'nope')
    (tmp_path / 'empty').mkdir()
    with pytest.raises(DatasetError, match='no json/ folder'):
        load_referring_dataset(tmp_path / 'empty')
