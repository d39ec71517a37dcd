"""``refersplat make-scene``."""
import argparse
import json

import numpy as np

from refersplat_ros.cli.main import main
from refersplat_ros.cli.make_scene import configure_parser
from refersplat_ros.core.datasets.ref_synth.generator import PRESETS


def test_cli_make_scene(tmp_path, capsys):
    out = tmp_path / 'cli'
    rc = main(['make-scene', '--preset', 'tiny', '--out', str(out), '--seed', '4',
               '--num-objects', '5', '--num-views', '5', '--num-test-views', '1', '--no-progress',
               '--no-contact-sheet'])
    assert rc == 0
    assert 'Ref-Synth scene written' in capsys.readouterr().out
    manifest = json.loads((out / 'manifest.json').read_text())
    assert len(manifest['objects']) == 5 and len(manifest['split']['test_frames']) == 1
    assert len(manifest['views']) == 5 and not (out / 'contact_sheet.png').exists()
    assert np.load(out / 'object_ids.npy').shape == (manifest['num_gaussians'],)
    assert main(['make-scene', '--preset', 'tiny', '--out', str(out), '--no-progress']) == 2
    assert 'refersplat make-scene: error:' in capsys.readouterr().err  # kept, not replaced
    assert main(['make-scene', '--preset', 'tiny', '--out', str(out), '--no-progress',
                 '--overwrite', '--num-views', '4', '--num-test-views', '1']) == 0
    assert len(list((out / 'images').iterdir())) == 4  # old frames removed with --overwrite


def test_cli_make_scene_hard_tiny(tmp_path, capsys):
    out = tmp_path / 'hard'
    rc = main(['make-scene', '--preset', 'hard-tiny', '--out', str(out), '--num-views', '3',
               '--num-test-views', '1', '--no-progress', '--no-contact-sheet'])
    assert rc == 0
    assert '14 objects' in capsys.readouterr().out
    manifest = json.loads((out / 'manifest.json').read_text())
    assert len(manifest['objects']) == 14 and len(manifest['views']) == 3
    assert sum(o['has_twin'] for o in manifest['objects']) == 2
    assert any(o['on_top_of'] for o in manifest['objects'])
    assert manifest['config']['cameras']['width'] == 64
    assert main(['make-scene', '--preset', 'hard', '--out', str(tmp_path / 'few'),
                 '--num-objects', '5', '--no-progress']) == 2
    assert 'at least 10 objects' in capsys.readouterr().err


def test_cli_offers_every_preset():
    parser = argparse.ArgumentParser()
    configure_parser(parser)
    preset = next(a for a in parser._actions if a.dest == 'preset')
    assert tuple(preset.choices) == PRESETS
