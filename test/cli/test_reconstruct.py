"""``refersplat reconstruct`` end to end on a tiny capture, and its errors (exit 2)."""
import csv

from refersplat_ros.cli.main import main
from refersplat_ros.core.datasets.ref_synth.generator import make_scene, preset_config
from refersplat_ros.core.scene.gaussian_io import load_scene


def test_reconstruct_writes_a_scene_a_log_and_resumes(tmp_path, capsys):
    data = tmp_path / 'capture'
    make_scene(preset_config('tiny', seed=4), data, progress=False, contact_sheet=False)
    out = tmp_path / 'splat'
    args = ['reconstruct', '--data', str(data), '--out', str(out), '--steps', '20',
            '--sh-degree', '0', '--device', 'cpu', '--no-progress']
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert '(2 held out)' in printed and 'held-out PSNR' in printed  # the manifest's test views
    scene = load_scene(out / 'point_cloud.ply')
    assert scene.num_gaussians > 0 and scene.sh.shape[1] == 1
    rows = list(csv.DictReader(open(out / 'reconstruct_log.csv', encoding='utf-8')))
    assert rows[-1]['step'] == '20' and float(rows[-1]['psnr']) > 10.0
    assert (out / 'checkpoints' / 'reconstruct_last.safetensors').is_file()
    # resuming a finished run changes nothing; a longer one continues from step 20
    assert main(args + ['--resume']) == 0
    assert main(args[:5] + ['--steps', '25'] + args[7:] + ['--resume']) == 0
    rows = list(csv.DictReader(open(out / 'reconstruct_log.csv', encoding='utf-8')))
    assert [r['step'] for r in rows][-2:] == ['20', '25']


def test_reconstruct_errors_are_one_line_exit_2(tmp_path, capsys):
    assert main(['reconstruct', '--data', str(tmp_path / 'absent'), '--out',
                 str(tmp_path / 'o')]) == 2
    assert 'capture folder not found' in capsys.readouterr().err
    (tmp_path / 'empty').mkdir()
    assert main(['reconstruct', '--data', str(tmp_path / 'empty'), '--out',
                 str(tmp_path / 'o')]) == 2
    assert 'transforms.json' in capsys.readouterr().err
    data = tmp_path / 'capture'
    make_scene(preset_config('tiny', seed=4), data, progress=False, contact_sheet=False)
    assert main(['reconstruct', '--data', str(data), '--out', str(tmp_path / 'o'),
                 '--resume', '--no-progress']) == 2
    assert 'no ' in capsys.readouterr().err
    assert main(['reconstruct', '--data', str(data), '--out', str(tmp_path / 'o'),
                 '--steps', '0', '--no-progress']) == 2
    assert 'steps must be >= 1' in capsys.readouterr().err
