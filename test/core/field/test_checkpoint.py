"""Tests of referring-field checkpoints (safetensors + JSON, atomic, verified)."""
import json
import os

import pytest
import torch

from refersplat_ros.core.errors import CheckpointError
from refersplat_ros.core import files as files_module
from refersplat_ros.core.field import checkpoint as checkpoint_module
from refersplat_ros.core.field.checkpoint import load_checkpoint, save_checkpoint, SceneFingerprint
from refersplat_ros.core.field.referring_field import ReferringField, ReferringFieldConfig
from refersplat_ros.core.train.losses import ReferringLossConfig

ENCODER = 'tiny-bert/h12'


def _optimizer(field):
    # docs/METHOD.md#training: features lr 0.0025, networks 1e-4, Adam eps 1e-15.
    return torch.optim.Adam([{'params': [field.features], 'lr': 0.0025},
                             {'params': field.network_parameters(), 'lr': 1e-4}], eps=1e-15)


def _train(field, optimizer, words, steps):
    for _ in range(steps):
        optimizer.zero_grad()
        out = field(words)
        (out.response - torch.linspace(-3, 3, out.response.shape[0])).square().mean().backward()
        optimizer.step()


@pytest.fixture
def trained(tmp_path):
    torch.manual_seed(0)
    means = torch.randn(30, 3)
    field = ReferringField(means, ReferringFieldConfig(text_dim=12, pcmi_form='code'))
    optimizer = _optimizer(field)
    words = torch.randn(4, 12)
    _train(field, optimizer, words, 3)
    path = tmp_path / 'ckpt' / 'field.safetensors'
    save_checkpoint(path, field, text_encoder_id=ENCODER, step=3, optimizer=optimizer,
                    training_config={'loss': ReferringLossConfig(), 'steps': 45000},
                    extra={'miou': 0.25})
    return means, field, optimizer, words, path


def test_round_trip_and_resume(trained):
    means, field, optimizer, words, path = trained
    ckpt = load_checkpoint(path, means=means, text_encoder_id=ENCODER)
    assert ckpt.step == 3
    assert ckpt.training_config['steps'] == 45000
    assert ReferringLossConfig(**ckpt.training_config['loss']) == ReferringLossConfig()
    assert ckpt.extra == {'miou': 0.25}
    assert ckpt.scene == SceneFingerprint.of(means)
    assert ckpt.field_config == field.config
    restored = ckpt.build_field(means.clone())
    with torch.no_grad():
        torch.testing.assert_close(restored(words).response, field(words).response)
    # Resuming: one more step from the checkpoint equals one more step of the original run.
    restored_opt = _optimizer(restored)
    ckpt.load_optimizer(restored_opt)
    assert restored_opt.param_groups[0]['eps'] == 1e-15
    assert restored_opt.param_groups[0]['betas'] == (0.9, 0.999)
    _train(field, optimizer, words, 1)
    _train(restored, restored_opt, words, 1)
    for (name, a), b in zip(field.named_parameters(), restored.parameters()):
        torch.testing.assert_close(a, b, msg=name)


def test_scene_and_encoder_mismatch(trained):
    means, _, _, _, path = trained
    with pytest.raises(CheckpointError, match='num_gaussians'):
        load_checkpoint(path, means=means[:29])
    moved = means.clone()
    moved[5, 0] += 1e-3
    with pytest.raises(CheckpointError, match='means_sha256'):
        load_checkpoint(path, means=moved)
    with pytest.raises(CheckpointError, match='text_encoder_id'):
        load_checkpoint(path, text_encoder_id='all-MiniLM-L6-v2/h384')
    ckpt = load_checkpoint(path)
    with pytest.raises(CheckpointError, match='means_sha256'):
        ckpt.build_field(moved)


def test_corrupt_files(trained, tmp_path):
    _, _, _, _, path = trained
    data = path.read_bytes()
    cases = {
        'truncated': data[:len(data) - 40],
        'header_only': data[:20],
        'garbage': b'not a checkpoint at all' * 10,
        'empty': b'',
    }
    flipped = bytearray(data)
    flipped[-5] ^= 0xFF  # a bit flip inside tensor data: caught by the checksum
    cases['flipped'] = bytes(flipped)
    for name, content in cases.items():
        bad = tmp_path / f'{name}.safetensors'
        bad.write_bytes(content)
        with pytest.raises(CheckpointError, match=str(bad)):
            load_checkpoint(bad)
    with pytest.raises(CheckpointError, match='no such file'):
        load_checkpoint(tmp_path / 'missing.safetensors')


def test_pickle_file_is_rejected(tmp_path):
    path = tmp_path / 'legacy.pth'
    torch.save({'features': torch.zeros(3)}, path)
    with pytest.raises(CheckpointError):
        load_checkpoint(path)


def test_foreign_safetensors_rejected(tmp_path):
    from safetensors.torch import save_file
    path = tmp_path / 'other.safetensors'
    save_file({'x': torch.zeros(2)}, str(path))
    with pytest.raises(CheckpointError, match='refersplat description'):
        load_checkpoint(path)


@pytest.mark.parametrize('failing', ['fsync', 'replace'])
def test_failed_write_leaves_previous_checkpoint(trained, monkeypatch, failing):
    means, field, optimizer, _, path = trained
    before = path.read_bytes()

    def fail(*args, **kwargs):
        raise OSError('disk full (simulated)')

    monkeypatch.setattr(files_module.os, failing, fail)  # checkpoints are written by files.py
    with pytest.raises(CheckpointError, match='write failed'):
        save_checkpoint(path, field, text_encoder_id=ENCODER, step=99, optimizer=optimizer)
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert os.listdir(path.parent) == [path.name]  # no temp file left
    assert load_checkpoint(path).step == 3


def test_metadata_is_plain_json(trained):
    _, _, _, _, path = trained
    data = path.read_bytes()
    header_len = int.from_bytes(data[:8], 'little')
    header = json.loads(data[8:8 + header_len])
    meta = json.loads(header['__metadata__']['refersplat'])
    assert meta['format'] == 'refersplat-referring-field'
    assert meta['scene']['num_gaussians'] == 30
    assert meta['text_encoder_id'] == ENCODER
    assert meta['field_config']['text_dim'] == 12
    assert 'field.features' in header and 'optim.0.exp_avg' in header


def test_save_without_optimizer(tmp_path):
    field = ReferringField(torch.randn(5, 3), ReferringFieldConfig(text_dim=8, use_pcmi=False))
    path = save_checkpoint(tmp_path / 'a.safetensors', field, text_encoder_id='x/h8', step=0)
    ckpt = load_checkpoint(path)
    assert ckpt.optimizer_state is None
    assert ckpt.field_config.use_pcmi is False
    with pytest.raises(CheckpointError, match='no optimizer state'):
        ckpt.load_optimizer(_optimizer(field))


def _rewrite(path, out, edit_header=None, edit_tensors=None):
    """Write ``out`` from ``path`` with its JSON header and/or tensors edited."""
    data = path.read_bytes()
    header_len = int.from_bytes(data[:8], 'little')
    header = json.loads(data[8:8 + header_len])
    payload = data[8 + header_len:]
    if edit_header is not None:
        edit_header(header)
    if edit_tensors is not None:
        payload = edit_tensors(header, bytearray(payload))
    text = json.dumps(header).encode()
    out.write_bytes(len(text).to_bytes(8, 'little') + text + bytes(payload))
    return out


def test_nan_weights_of_a_diverged_run_are_refused(trained, tmp_path):
    means, field, optimizer, _, _ = trained
    with torch.no_grad():
        field.features[3, 0] = float('nan')
        field.mlp1[0].weight[0, 0] = float('inf')
    path = save_checkpoint(tmp_path / 'diverged.safetensors', field, text_encoder_id=ENCODER,
                           step=9, optimizer=optimizer)
    with pytest.raises(CheckpointError, match=r'diverged\.safetensors: NaN/inf values in 2 '
                                              r"field weight\(s\): 'features' \(1\), "
                                              r"'mlp1\.0\.weight' \(1\)"):
        load_checkpoint(path, means=means)


def test_header_shapes_are_checked_before_the_payload_is_loaded(trained, tmp_path):
    means, _, _, _, path = trained

    def claim_2gib(header):  # a forged shape: 2 GiB of features in a few-kB file
        header['field.features']['shape'] = [2**25, 16]

    with pytest.raises(CheckpointError, match=r"tensor 'field\.features' declares shape "
                                              r'\[33554432, 16\] \(2147483648 bytes\)'):
        load_checkpoint(_rewrite(path, tmp_path / 'forged.safetensors', claim_2gib))

    def unknown_dtype(header):
        header['field.features']['dtype'] = 'F128'

    with pytest.raises(CheckpointError, match="'field.features' has a malformed header entry"):
        load_checkpoint(_rewrite(path, tmp_path / 'dtype.safetensors', unknown_dtype))

    def more_gaussians(header):  # a consistent header for a field of another scene size
        meta = json.loads(header['__metadata__']['refersplat'])
        meta['scene']['num_gaussians'] = 10**9
        header['__metadata__']['refersplat'] = json.dumps(meta)

    with pytest.raises(CheckpointError, match=r'field weights do not match its field_config and '
                                              r'1000000000 Gaussians: features \[30, 16\]'):
        load_checkpoint(_rewrite(path, tmp_path / 'count.safetensors', more_gaussians))
    # The scene's Gaussian count is compared before the payload is read.
    with pytest.raises(CheckpointError, match='trained on a scene with 30 Gaussians'):
        load_checkpoint(path, means=torch.zeros(10**6, 3))


def _objects(num):
    from refersplat_ros.core.scene.cameras import Camera
    from refersplat_ros.core.scene.objects import SceneObjects
    labels = torch.arange(num) % 3 - 1  # -1, 0, 1, -1, ...
    camera = Camera.look_at((0.0, -2.0, 1.0), (0.0, 0.0, 0.0), width=32, height=24)
    return SceneObjects(labels.numpy(), ['red-mug', 'bowl'], [['the red mug'], []], camera,
                        (0.0, 0.0, 1.0))


def test_objects_round_trip(tmp_path):
    field = ReferringField(torch.randn(9, 3), ReferringFieldConfig(text_dim=8))
    objects = _objects(9)
    path = save_checkpoint(tmp_path / 'o.safetensors', field, text_encoder_id='x/h8', step=0,
                           objects=objects)
    loaded = load_checkpoint(path).objects
    assert loaded.names == ['red-mug', 'bowl'] and loaded.sentences == [['the red mug'], []]
    assert (loaded.labels == objects.labels).all()
    assert torch.allclose(loaded.reference_view.world_to_camera,
                          objects.reference_view.world_to_camera)
    assert load_checkpoint(save_checkpoint(tmp_path / 'n.safetensors', field,
                                           text_encoder_id='x/h8', step=0)).objects is None


def test_objects_that_do_not_fit_are_refused(tmp_path):
    field = ReferringField(torch.randn(9, 3), ReferringFieldConfig(text_dim=8))
    with pytest.raises(CheckpointError, match='objects'):
        save_checkpoint(tmp_path / 'bad.safetensors', field, text_encoder_id='x/h8', step=0,
                        objects=_objects(7))
    path = save_checkpoint(tmp_path / 'o.safetensors', field, text_encoder_id='x/h8', step=0,
                           objects=_objects(9))

    def too_many_names(header):
        meta = json.loads(header['__metadata__']['refersplat'])
        meta['objects']['names'] = ['only-one']
        meta['objects']['sentences'] = [[]]
        header['__metadata__']['refersplat'] = json.dumps(meta)
    bad = _rewrite(path, tmp_path / 'names.safetensors', edit_header=too_many_names)
    with pytest.raises(CheckpointError, match='object labels outside'):
        load_checkpoint(bad)


def _edit_meta(edit):
    """Return an ``edit_header`` for :func:`_rewrite` that edits the refersplat description."""
    def edit_header(header):
        meta = json.loads(header['__metadata__']['refersplat'])
        edit(meta)
        header['__metadata__']['refersplat'] = json.dumps(meta)
    return edit_header


def _set(path, value):
    def edit(meta):
        *parents, last = path
        target = meta
        for key in parents:
            target = target[key]
        target[last] = value
    return edit


@pytest.mark.parametrize('entry, value, message', [
    (('step',), float('inf'), r'step is inf, not an integer in 0\.\.'),
    (('step',), -1, r'step is -1, not an integer'),
    (('step',), 2.5, r'step is 2\.5, not an integer'),
    (('step',), '7', r"step is '7', not an integer"),
    (('scene', 'num_gaussians'), float('inf'), r'scene\.num_gaussians is inf'),
    (('scene', 'num_gaussians'), 2**40, r'scene\.num_gaussians is 1099511627776'),
    (('field_config', 'text_dim'), float('-inf'), r'field_config\.text_dim is -inf'),
    (('field_config', 'width'), 10**12, r'field_config\.width is 1000000000000'),
])
def test_recorded_numbers_are_finite_and_in_range(trained, tmp_path, entry, value, message):
    _, _, _, _, path = trained
    bad = _rewrite(path, tmp_path / 'bad.safetensors', _edit_meta(_set(entry, value)))
    with pytest.raises(CheckpointError, match=r'bad\.safetensors: malformed description: '
                                              + message):
        load_checkpoint(bad)


def _objects_checkpoint(tmp_path):
    field = ReferringField(torch.randn(9, 3), ReferringFieldConfig(text_dim=8))
    return save_checkpoint(tmp_path / 'o.safetensors', field, text_encoder_id='x/h8', step=0,
                           objects=_objects(9))


def _grow(key, count, item):
    def edit(meta):
        meta['objects'][key] = [item] * count
        if key == 'names':
            meta['objects']['sentences'] = [[]] * count
    return edit


@pytest.mark.parametrize('edit, message', [
    (_grow('names', 4097, 'mug'), r'objects\.names has 4097 entries \(at most 4096\)'),
    (_set(('objects', 'names'), ['red-mug', 'b' * 257]),
     r'objects\.names\[1\] has 257 characters \(at most 256\)'),
    (_set(('objects', 'names'), ['red-mug', ['bowl']]), r'objects\.names\[1\] is a list'),
    (_set(('objects', 'sentences'), [['s'] * 1025, []]),
     r'objects\.sentences\[0\] has 1025 entries \(at most 1024\)'),
    (_set(('objects', 'sentences'), [['the red mug'], ['x' * 2049]]),
     r'objects\.sentences\[1\]\[0\] has 2049 characters \(at most 2048\)'),
    (_set(('objects', 'reference_view', 'width'), float('inf')),
     r'reference view: width is inf, not an integer in 1\.\.16384'),
    (_set(('objects', 'reference_view', 'height'), 16385), r'reference view: height is 16385'),
    (_set(('objects', 'reference_view', 'height'), 0), r'reference view: height is 0'),
    (_set(('objects', 'reference_view', 'fx'), float('nan')),
     r'reference view: fx is nan, not a finite'),
    (_set(('objects', 'reference_view', 'fy'), -3.0),
     r'reference view: fy is -3\.0, not a finite positive'),
    (_set(('objects', 'reference_view', 'cx'), float('inf')), r'reference view: cx is inf'),
])
def test_recorded_objects_are_bounded(tmp_path, edit, message):
    path = _objects_checkpoint(tmp_path)
    bad = _rewrite(path, tmp_path / 'bad.safetensors', _edit_meta(edit))
    with pytest.raises(CheckpointError, match=r'bad\.safetensors: malformed description: '
                                              + message):
        load_checkpoint(bad)


def test_objects_beyond_the_limits_are_refused_when_saved(tmp_path):
    from refersplat_ros.core.scene.objects import SceneObjects
    field = ReferringField(torch.randn(9, 3), ReferringFieldConfig(text_dim=8))
    long_name = SceneObjects(_objects(9).labels, ['m' * 300, 'bowl'], [[], []], None,
                             (0.0, 0.0, 1.0))
    with pytest.raises(CheckpointError, match=r'objects\.names\[0\] has 300 characters'):
        save_checkpoint(tmp_path / 'bad.safetensors', field, text_encoder_id='x/h8', step=0,
                        objects=long_name)
    assert not (tmp_path / 'bad.safetensors').exists()


def _raw_header(path, out, text: bytes):
    """Write ``out`` from ``path`` with the raw JSON header ``text``."""
    data = path.read_bytes()
    payload = data[8 + int.from_bytes(data[:8], 'little'):]
    out.write_bytes(len(text).to_bytes(8, 'little') + text + payload)
    return out


def test_deeply_nested_json_is_a_checkpoint_error_not_a_recursion_error(trained, tmp_path):
    _, _, _, _, path = trained
    deep = '[' * 100_000 + ']' * 100_000
    data = path.read_bytes()
    header = json.loads(data[8:8 + int.from_bytes(data[:8], 'little')])
    # in the refersplat description (a JSON string inside the header)
    meta = header['__metadata__']['refersplat']
    header['__metadata__']['refersplat'] = meta[:-1] + ', "deep": ' + deep + '}'
    bad = _raw_header(path, tmp_path / 'meta.safetensors', json.dumps(header).encode())
    with pytest.raises(CheckpointError, match='the refersplat description nests 100001 deep '
                                              r'\(at most 64\)'):
        load_checkpoint(bad)
    # in the safetensors header itself; brackets inside strings do not count
    text = json.dumps({**header, '__metadata__': {'refersplat': meta + '[[[['}})
    bad = _raw_header(path, tmp_path / 'header.safetensors',
                      (text[:-1] + ', "deep": ' + deep + '}').encode())
    with pytest.raises(CheckpointError, match='the safetensors header nests 100001 deep'):
        load_checkpoint(bad)


def test_the_header_size_is_bounded(trained, tmp_path, monkeypatch):
    _, _, _, _, path = trained
    size = int.from_bytes(path.read_bytes()[:8], 'little')
    monkeypatch.setattr(checkpoint_module, 'MAX_HEADER_BYTES', size - 1)
    with pytest.raises(CheckpointError, match=f'safetensors header of {size} bytes '
                                              rf'\(at most {size - 1}\)'):
        load_checkpoint(path)
    monkeypatch.setattr(checkpoint_module, 'MAX_HEADER_BYTES', 2 * size + 100)
    assert load_checkpoint(path).step == 3


def test_view_direction_round_trips_and_a_corrupt_one_is_refused(trained, tmp_path):
    from safetensors.torch import load as safetensors_load, save as safetensors_save

    means, field, _, _, old = trained
    assert load_checkpoint(old).view_direction is None  # checkpoints saved without it
    direction = torch.randn(30, 3)
    path = save_checkpoint(tmp_path / 'dirs.safetensors', field, text_encoder_id=ENCODER,
                           step=3, visibility=direction.norm(dim=1), view_direction=direction)
    ckpt = load_checkpoint(path, means=means)
    torch.testing.assert_close(ckpt.view_direction, direction)
    with pytest.raises(CheckpointError, match=r'view_direction has shape \[29, 3\]'):
        save_checkpoint(tmp_path / 'bad.safetensors', field, text_encoder_id=ENCODER, step=3,
                        view_direction=direction[:29])
    nan = direction.clone()
    nan[4, 1] = float('nan')
    with pytest.raises(CheckpointError, match='view_direction holds non-finite values'):
        save_checkpoint(tmp_path / 'bad.safetensors', field, text_encoder_id=ENCODER, step=3,
                        view_direction=nan)
    assert not (tmp_path / 'bad.safetensors').exists()

    def forge(value):  # a stored tensor replaced, the checksum made to match (not bit rot)
        data = path.read_bytes()
        header_len = int.from_bytes(data[:8], 'little')
        meta = json.loads(json.loads(data[8:8 + header_len])['__metadata__']['refersplat'])
        tensors = safetensors_load(data)
        tensors['scene.view_direction'] = value
        meta['payload_sha256'] = checkpoint_module._payload_sha256(tensors)
        out = tmp_path / 'forged.safetensors'
        out.write_bytes(safetensors_save(tensors, metadata={'refersplat': json.dumps(meta)}))
        return out

    with pytest.raises(CheckpointError, match=r'malformed description: '
                                              r'scene\.view_direction holds non-finite'):
        load_checkpoint(forge(nan))
    with pytest.raises(CheckpointError, match=r'scene\.view_direction has shape \(30, 2\)'):
        load_checkpoint(forge(direction[:, :2].contiguous()))
    with pytest.raises(CheckpointError, match=r'scene\.view_direction must be float32'):
        load_checkpoint(forge(direction.double()))
