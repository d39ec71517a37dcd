"""env.sh, written by scripts/write_env.sh for scripts/setup.sh: the network rule for a shell."""
import os
import subprocess

from helpers.ros_harness import REPO_ROOT


def _sourced(env_file, **extra):
    base = {k: v for k, v in os.environ.items() if not k.startswith(('ROS_', 'FASTDDS_'))}
    shown = subprocess.run(['bash', '-c', f'. "{env_file}" && env'], env={**base, **extra},
                           capture_output=True, text=True, check=True).stdout
    return dict(line.split('=', 1) for line in shown.splitlines() if '=' in line)


def test_env_file_sets_the_network_rule_and_a_log_folder_of_the_checkout(tmp_path):
    venv = tmp_path / 'venv'
    (venv / 'bin').mkdir(parents=True)
    (venv / 'bin' / 'activate').write_text('')
    checkout = tmp_path / 'checkout'
    checkout.mkdir()
    subprocess.run(['bash', str(REPO_ROOT / 'scripts' / 'write_env.sh'), str(checkout),
                    str(venv)], check=True)
    values = _sourced(checkout / 'env.sh')
    assert values['ROS_AUTOMATIC_DISCOVERY_RANGE'] == 'LOCALHOST'
    assert values['ROS_DOMAIN_ID'] == '77'
    # Without ROS_LOG_DIR every process of every checkout logged into ~/.ros/log.
    assert values['ROS_LOG_DIR'] == str(checkout / 'log' / 'ros')
    assert values['FASTDDS_DEFAULT_PROFILES_FILE'] == str(
        venv / 'share' / 'refersplat_ros' / 'config' / 'fastdds_loopback.xml')
    chosen = _sourced(checkout / 'env.sh', ROS_LOG_DIR='/tmp/mine', ROS_DOMAIN_ID='12')
    assert (chosen['ROS_LOG_DIR'], chosen['ROS_DOMAIN_ID']) == ('/tmp/mine', '12')


def test_setup_writes_env_sh_with_that_script():
    setup = (REPO_ROOT / 'scripts' / 'setup.sh').read_text()
    assert 'bash "$ROOT/scripts/write_env.sh" "$ROOT" "$VENV"' in setup
