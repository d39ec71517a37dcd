"""Ref-Synth writer -> loader round trips (tiny and hard-tiny); unchanged classic manifests."""
import hashlib
import json

import numpy as np
from PIL import Image
import pytest
import torch

from refersplat_ros.core.datasets.ref_synth.expressions import Referring
from refersplat_ros.core.datasets.ref_synth.generator import (build_manifest, generate_scene,
                                                              preset_config, render_view,
                                                              write_scene)
from refersplat_ros.core.datasets.reflerf.loader import load_referring_dataset
from refersplat_ros.core.scene.gaussian_io import load_ply


@pytest.fixture(scope='module')
def tiny(tmp_path_factory):
    scene = generate_scene(preset_config('tiny', seed=3))
    out = tmp_path_factory.mktemp('refsynth') / 'tiny'
    write_scene(scene, out, progress=False)
    return scene, out


def test_layout_files(tiny):
    scene, out = tiny
    for i in range(len(scene.cameras)):
        stem = f'frame_{i + 1:05d}'
        assert (out / 'images' / f'{stem}.png').is_file()
        assert (out / 'json' / f'{stem}.json').is_file()
    for name in ('cameras.txt', 'images.txt', 'points3D.txt'):
        assert (out / 'sparse' / '0' / name).is_file()
    assert (out / 'contact_sheet.png').is_file()
    with Image.open(out / 'contact_sheet.png') as sheet:
        assert sheet.width >= 4 * 64 and sheet.height > 48
    frame = json.loads((out / 'json' / 'frame_00001.json').read_text())
    for obj in frame['object']:
        assert '_' not in obj['category']
        assert obj['segmentation'] == f'frame_00001/{obj["category"]}.png'


def test_loader_round_trip(tiny):
    scene, out = tiny
    ds = load_referring_dataset(out)
    manifest = json.loads((out / 'manifest.json').read_text())
    assert ds.layout == 'official'
    assert ds.test_frames == manifest['split']['test_frames']
    assert len(ds.train_views) + len(ds.test_views) == len(scene.cameras)
    assert [v.frame for v in ds.test_views] == [f'frame_{i + 1:05d}' for i in scene.test_indices]
    by_cat = {o.category: o for o in scene.objects}
    kinds = {e.sentence: e.kind for e in scene.expressions}
    for view in ds.views:
        index = int(view.frame[-5:]) - 1
        cam = scene.cameras[index]
        torch.testing.assert_close(view.camera.world_to_camera, cam.world_to_camera,
                                   atol=1e-5, rtol=0)
        assert (view.camera.width, view.camera.height) == (64, 48)
        rgb, labels = render_view(scene, index)
        image = view.load_image()
        assert float((image - rgb).abs().max()) <= 1.0 / 255 + 1e-6
        for category in view.categories:
            obj = by_cat[category]
            anns = [a for a in view.annotations if a.category == category]
            want = [e.sentence for e in scene.expressions_of(obj.id, view.split)]
            assert [a.sentence for a in anns] == want
            assert len(anns) == (4 if view.split == 'train' else 1)
            assert all(a.kind == kinds[a.sentence] for a in anns)
            mask = view.load_mask(anns[0])
            assert torch.equal(mask, labels == obj.id)
        # Objects left out of the JSON are (nearly) invisible in that view.
        for obj in scene.objects:
            if obj.category not in view.categories:
                assert int((labels == obj.id).sum()) < scene.config.min_mask_pixels
    ids = ds.object_ids()
    gs = load_ply(ds.scene_path)
    assert ids.shape == (gs.num_gaussians,) and gs.num_gaussians <= 5000
    assert sorted(torch.unique(ids).tolist()) == list(range(len(scene.objects) + 1))
    torch.testing.assert_close(gs.means, torch.from_numpy(scene.gaussians.means))
    assert ds.category_ids() == {o.category: o.id for o in scene.objects}
    assert set(ds.expression_kinds().values()) <= {'attribute', 'spatial', 'distractor'}


def test_same_seed_same_files(tiny, tmp_path):
    scene, out = tiny
    again = tmp_path / 'again'
    write_scene(generate_scene(preset_config('tiny', seed=3)), again, progress=False,
                contact_sheet=False)
    for rel in ('manifest.json', 'json/frame_00002.json', 'images/frame_00002.png',
                'object_ids.npy', 'sparse/0/images.txt'):
        assert (out / rel).read_bytes() == (again / rel).read_bytes(), rel
    masks = sorted(p.relative_to(out) for p in (out / 'gt_mask').rglob('*.png'))
    assert masks == sorted(p.relative_to(again) for p in (again / 'gt_mask').rglob('*.png'))
    with pytest.raises(FileExistsError):
        write_scene(scene, again, progress=False)


# sha256 of the manifest without views (objects, expressions, config, split) computed before the
# hard presets were added: the default and tiny presets must keep producing exactly these scenes
# (cached demo scenes and other tests depend on them).
CLASSIC_MANIFESTS = {
    ('default', 0, None): 'd7cafb919c4af081de64e7783d78a913866c63f300d3430313f0343d8a215174',
    ('default', 1, None): '9989a3d15299285570f8e4bb985fe519f3f6448156e25906113fe032b4e4e79d',
    ('tiny', 0, None): '0dcb074971ca15a775e6d1f525a90d4dab7f8836992c7987629837958f40c9a8',
    ('tiny', 3, None): 'a6f04ec4b1cc9005f75b4dbb51e8913a64e25e6612cf7b738abbc1b01c409cdf',
    ('tiny', 2, 7): '7e526ed38b0ba4046030a102130f385a96ea22781e862a646816804499b71508',
}


@pytest.mark.parametrize('preset,seed,num_objects', sorted(CLASSIC_MANIFESTS))
def test_classic_presets_are_unchanged(preset, seed, num_objects):
    scene = generate_scene(preset_config(preset, seed=seed, num_objects=num_objects))
    manifest = build_manifest(scene, [])
    text = json.dumps(manifest, indent=1, sort_keys=True)
    assert hashlib.sha256(text.encode()).hexdigest() == \
        CLASSIC_MANIFESTS[(preset, seed, num_objects)]
    for key in ('"clutter"', '"multi_anchor"', '"size_class"', '"more"', '"pair"'):
        assert key not in text


@pytest.fixture(scope='module')
def hard_tiny(tmp_path_factory):
    scene = generate_scene(preset_config('hard-tiny'))
    out = tmp_path_factory.mktemp('refsynth') / 'hard-tiny'
    write_scene(scene, out, progress=False, contact_sheet=False)
    return scene, out


def test_hard_tiny_manifest_records_the_hard_parts(hard_tiny):
    scene, out = hard_tiny
    manifest = json.loads((out / 'manifest.json').read_text())
    assert manifest['num_gaussians'] == len(scene.gaussians) < 8000
    assert manifest['config']['layout']['clutter'] is not None
    assert manifest['config']['expressions']['multi_anchor'] is not None
    objects = {o['category']: o for o in manifest['objects']}
    assert len(objects) >= 12
    for o in objects.values():
        assert o['size_class'] in ('small', 'medium', 'large')
        assert o['has_twin'] == bool(o['identical_to'])
        if o['support']:
            parent = next(p for p in objects.values() if p['id'] == o['support'])
            assert o['on_top_of'] == parent['category']
        else:
            assert o['on_top_of'] is None
    twins = [o for o in objects.values() if o['has_twin']]
    assert len(twins) == 2 and twins[0]['identical_to'] == [twins[1]['category']]
    assert {k: twins[0][k] for k in ('shape', 'colour', 'size')} == \
        {k: twins[1][k] for k in ('shape', 'colour', 'size')}
    assert {objects[o['on_top_of']]['shape'] for o in objects.values() if o['on_top_of']} == \
        {'shelf', 'box'}
    counts = [o['num_gaussians'] for o in objects.values()]
    longest = max(objects.values(), key=lambda o: max(o['footprint_size']))
    assert longest['shape'] == 'shelf' and longest['elongated']
    assert longest['size_class'] == 'large'
    assert longest['num_gaussians'] == max(counts) >= 5 * min(counts)
    multi = [e for e in manifest['expressions'] if e['form'].get('more')]
    assert {e['split'] for e in multi} == {'train', 'test'}
    for e in multi:
        assert 2 <= len(Referring.from_dict(e['object_id'], e['form']).all_anchors) <= 3


def test_hard_tiny_loader_round_trip(hard_tiny):
    scene, out = hard_tiny
    ds = load_referring_dataset(out)
    manifest = json.loads((out / 'manifest.json').read_text())
    assert ds.test_frames == manifest['split']['test_frames']
    assert (len(ds.train_views), len(ds.test_views)) == (6, 2)
    by_cat = {o.category: o for o in scene.objects}
    annotated = set()
    for view in ds.views:
        assert (view.camera.width, view.camera.height) == (64, 48)
        for category in view.categories:
            anns = [a for a in view.annotations if a.category == category]
            want = [e.sentence for e in scene.expressions_of(by_cat[category].id, view.split)]
            assert [a.sentence for a in anns] == want
            annotated.add(category)
    assert len(annotated) >= 12  # even the small objects are seen in some view
    kinds = ds.expression_kinds()
    assert all(kinds[e.sentence] == e.kind for e in scene.expressions
               if e.sentence in kinds)
    for view in (ds.train_views[0], ds.test_views[0]):  # masks = the rendered label map
        _, labels = render_view(scene, int(view.frame[-5:]) - 1)
        for ann in view.annotations:
            assert torch.equal(view.load_mask(ann), labels == by_cat[ann.category].id)
    ids = ds.object_ids()
    assert torch.equal(ids, torch.from_numpy(scene.gaussians.object_ids.astype(np.int64)))
    assert ds.category_ids() == {o.category: o.id for o in scene.objects}
