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
    from refersplat_ros.node_parameters import PARAMETERS

    params = yaml.safe_load((REPO_ROOT / 'config' / 'refersplat.yaml').read_text())
    assert set(_flatten(params['/**/refersplat']['ros__parameters'])) == set(PARAMETERS)
    readme = (REPO_ROOT / 'README.md').read_text()
    documented = set(re.findall(r'^\| `([a-z_.]+)` \|', readme, re.M))
    assert set(PARAMETERS) <= documented


def test_goal_overrides_have_the_parameter_ranges():
    require_ros()
    from refersplat_ros.core.inference.queries import THRESHOLD_RANGE, TOP_K_RANGE
    from refersplat_ros.node_parameters import PARAMETERS

    assert PARAMETERS['selection.threshold'].float_range == THRESHOLD_RANGE
    assert PARAMETERS['selection.top_k'].int_range == TOP_K_RANGE


def test_every_parameter_has_a_range_or_is_not_numeric():
    require_ros()
    from refersplat_ros.node_parameters import PARAMETERS

    for name, row in PARAMETERS.items():
        assert row.name == name
        if isinstance(row.default, (bool, str, list)):
            continue  # lists: the output transform, checked at configure (test_node_camera.py)
        value_range = row.float_range if isinstance(row.default, float) else row.int_range
        assert value_range is not None, name


def test_settings_cache_the_values_and_the_configs_they_make():
    require_ros()
    from refersplat_ros.node_parameters import NodeSettings, PARAMETERS

    settings = NodeSettings({name: row.default for name, row in PARAMETERS.items()})
    assert settings.problem() is None and settings['query.max_chars'] == 512
    assert settings.output_frame == 'scene'
    changed = settings.updated({'selection.threshold': 0.9, 'use_sim_time': True})
    assert changed.selection.threshold == 0.9 and settings.selection.threshold == 0.5
    assert changed.grounding is settings.grounding  # the model is not told again
    field = changed.updated({'language.grounding': 'field'})
    assert field.grounding is not settings.grounding and field.grounding.grounding == 'field'
    assert settings.selection_for() is settings.selection
    goal = settings.selection_for(top_k=3, threshold=0.7)
    assert (goal.top_k, goal.threshold, goal.min_opacity) == (3, 0.7, 0.05)
    assert settings.selection_for(top_k=3).threshold == 0.5


def test_settings_refuse_what_the_core_refuses_with_its_reason():
    require_ros()
    from refersplat_ros.node_parameters import NodeSettings, PARAMETERS

    settings = NodeSettings({name: row.default for name, row in PARAMETERS.items()})
    assert settings.updated({'selection.rank_by': 'size'}).problem() == \
        "rank_by must be one of ('support', 'mass')"
    assert settings.updated({'language.grounding': 'magic'}).problem().startswith(
        "grounding must be one of ('graph', 'field')")
    assert settings.encoder_quantize('cpu') == 'int8'
    assert settings.updated({'language.grounding': 'field'}).encoder_quantize('cpu') == 'none'
    assert settings.encoder_quantize('cuda') == 'none'
