"""A tiny Ref-Synth scene written once for the reconstruction tests (a capture of 6 views)."""
import pytest

from refersplat_ros.core.datasets.ref_synth.generator import make_scene, preset_config


@pytest.fixture(scope='package')
def tiny_capture_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp('capture') / 'tiny'
    make_scene(preset_config('tiny', seed=1), out, progress=False, contact_sheet=False)
    return out
