"""The node's parameter table, its params file, the README and the goal-override ranges agree."""
import re

import yaml

from helpers.ros_harness import REPO_ROOT, require_ros


def _flatten(tree, prefix=''):
    for key, value in tree.items():
        if isinstance(value, dict):
            yield from _flatten(value, f'{prefix}{key}.')
        else:
            yield f'{prefix}{key}'


def test_params_file_and_readme_list_every_parameter():
    require_ros()
    from refersplat_ros.node import PARAMETERS

    params = yaml.safe_load((REPO_ROOT / 'config' / 'refersplat.yaml').read_text())
    assert set(_flatten(params['/**/refersplat']['ros__parameters'])) == set(PARAMETERS)
    readme = (REPO_ROOT / 'README.md').read_text()
    documented = set(re.findall(r'^\| `([a-z_.]+)` \|', readme, re.M))
    assert set(PARAMETERS) <= documented


def test_goal_overrides_have_the_parameter_ranges():
    require_ros()
    from refersplat_ros.core.inference.queries import THRESHOLD_RANGE, TOP_K_RANGE
    from refersplat_ros.node import PARAMETERS

    assert PARAMETERS['selection.threshold'][3] == THRESHOLD_RANGE
    assert PARAMETERS['selection.top_k'][4] == TOP_K_RANGE


def test_every_parameter_has_a_range_or_is_not_numeric():
    require_ros()
    from refersplat_ros.node import PARAMETERS

    for name, (default, _description, _read_only, float_range, int_range) in PARAMETERS.items():
        if isinstance(default, (bool, str, list)):
            continue  # lists: the output transform, checked at configure (test_node_camera.py)
        assert (float_range if isinstance(default, float) else int_range) is not None, name
