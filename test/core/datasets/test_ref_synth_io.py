"""Ref-Synth writer -> loader round trip on the tiny preset."""
import json

from PIL import Image
import pytest
import torch

from refersplat_ros.core.datasets.ref_synth import (generate_scene, preset_config, render_view,
                                                    write_scene)
from refersplat_ros.core.datasets.reflerf_loader import load_referring_dataset
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
