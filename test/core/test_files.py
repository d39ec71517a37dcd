"""Input files a careless or hostile caller names: regular files within a size limit only."""
import os
import threading

import pytest

from refersplat_ros.core.errors import CheckpointError, SceneFormatError
from refersplat_ros.core.field.checkpoint import load_checkpoint
from refersplat_ros.core.files import open_regular_file, read_regular_file
from refersplat_ros.core.scene.gaussian_io import load_scene


def test_regular_file_within_the_limit_is_read(tmp_path):
    path = tmp_path / 'a.bin'
    path.write_bytes(b'x' * 100)
    assert read_regular_file(path, 100, SceneFormatError, 'scene') == b'x' * 100
    with open_regular_file(path, 100, SceneFormatError, 'scene') as handle:
        assert handle.read(3) == b'xxx'


def test_oversized_file_is_refused_before_reading(tmp_path):
    path = tmp_path / 'big.safetensors'
    path.write_bytes(b'\0' * 2000)
    with pytest.raises(CheckpointError, match=r'big\.safetensors: 2000 bytes, more than the '
                                              r'limit of 1000 bytes'):
        load_checkpoint(path, max_bytes=1000)
    scene = tmp_path / 'big.ply'
    scene.write_bytes(b'ply\n' + b'\0' * 2000)
    with pytest.raises(SceneFormatError, match='more than the limit'):
        load_scene(scene, max_bytes=1000)


@pytest.mark.parametrize('device', ['/dev/zero', '/dev/urandom'])
def test_character_devices_are_refused(device, tmp_path):
    # Read whole, /dev/zero grew the node to 5.9 GB in 2.7 s before this check.
    with pytest.raises(CheckpointError, match='is a character device, not a regular file'):
        load_checkpoint(device)
    for suffix in ('.ply', '.pth'):  # a link with a scene suffix is followed, then refused
        link = tmp_path / f'scene{suffix}'
        link.symlink_to(device)
        with pytest.raises(SceneFormatError, match='is a character device'):
            load_scene(link)


def test_directory_is_refused(tmp_path):
    folder = tmp_path / 'scene.ply'
    folder.mkdir()
    with pytest.raises(SceneFormatError, match=r'scene\.ply: is a directory'):
        load_scene(folder)


def test_fifo_is_refused_without_blocking(tmp_path):
    fifo = tmp_path / 'field.safetensors'
    os.mkfifo(fifo)
    outcome = []

    def load():
        try:
            load_checkpoint(fifo)
        except Exception as exc:  # recorded for the assertion below
            outcome.append(exc)

    # A FIFO without a writer blocked open() forever; the load runs on a thread so that a
    # regression fails this test instead of hanging the suite.
    thread = threading.Thread(target=load, daemon=True)
    thread.start()
    thread.join(timeout=60)
    if thread.is_alive():  # unblock the stuck open() before failing
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
        pytest.fail('load_checkpoint blocked on a FIFO')
    assert len(outcome) == 1 and isinstance(outcome[0], CheckpointError)
    assert 'is a FIFO (named pipe), not a regular file' in str(outcome[0])
