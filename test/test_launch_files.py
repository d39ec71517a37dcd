"""Static checks of launch/bringup.launch.py and rviz/refersplat.rviz (no launch packages needed).

launch and launch_ros are not on PyPI (docs/SETUP.md#launch-packages): where they are missing the
launch file cannot run, so its syntax, arguments, imports and names are checked here from its
source, and the RViz config is checked against the topics and QoS the node declares.
"""
import ast
import py_compile
import re
from pathlib import Path

import yaml

from helpers.ros_harness import REPO_ROOT

LAUNCH_FILE = REPO_ROOT / 'launch' / 'bringup.launch.py'
RVIZ_FILE = REPO_ROOT / 'rviz' / 'refersplat.rviz'
NODE_FILE = REPO_ROOT / 'refersplat_ros' / 'node.py'
OUTPUTS_FILE = REPO_ROOT / 'refersplat_ros' / 'node_outputs.py'        # the node's publishers
PARAMETERS_FILE = REPO_ROOT / 'refersplat_ros' / 'node_parameters.py'  # its parameter table
ARGUMENTS = {'params_file', 'scene', 'checkpoint', 'camera_info_topic', 'camera_pose_topic',
             'namespace', 'use_sim_time', 'log_level', 'autostart', 'rviz', 'viewer'}
# launch / launch_ros names present in Humble, Jazzy and Kilted alike.
PORTABLE_NAMES = {
    'launch': {'LaunchDescription'},
    'launch.actions': {'DeclareLaunchArgument', 'OpaqueFunction', 'SetEnvironmentVariable',
                       'GroupAction', 'IncludeLaunchDescription'},
    'launch.conditions': {'IfCondition', 'UnlessCondition'},
    'launch.substitutions': {'LaunchConfiguration', 'PathJoinSubstitution'},
    'launch_ros.actions': {'Node'},
    'launch_ros.substitutions': {'FindPackageShare'},
}
RVIZ_TOPICS = {  # topic: display class
    '/refersplat/scene/cloud': 'rviz_default_plugins/PointCloud2',
    '/refersplat/target/cloud': 'rviz_default_plugins/PointCloud2',
    '/refersplat/markers': 'rviz_default_plugins/MarkerArray',
    '/refersplat/target/pose': 'rviz_default_plugins/Pose',
    '/refersplat/target/mask': 'rviz_default_plugins/Image',
}


def _tree(path):
    return ast.parse(path.read_text(), filename=str(path))


def _calls(tree, name):
    return [node for node in ast.walk(tree) if isinstance(node, ast.Call)
            and getattr(node.func, 'id', getattr(node.func, 'attr', None)) == name]


def _keywords(call):
    return {k.arg: k.value for k in call.keywords}


def _displays(displays):
    for display in displays:
        if display.get('Class') == 'rviz_common/Group':
            yield from _displays(display.get('Displays', []))
        else:
            yield display


def test_launch_file_compiles(tmp_path):
    py_compile.compile(str(LAUNCH_FILE), cfile=str(tmp_path / 'bringup.pyc'), doraise=True)
    functions = {n.name for n in _tree(LAUNCH_FILE).body if isinstance(n, ast.FunctionDef)}
    assert 'generate_launch_description' in functions


def test_every_launch_argument_is_declared_once_with_a_description():
    declared = {}
    for call in _calls(_tree(LAUNCH_FILE), 'DeclareLaunchArgument'):
        name = call.args[0]
        assert isinstance(name, ast.Constant), ast.dump(call)
        description = _keywords(call).get('description')
        assert isinstance(description, ast.Constant) and len(description.value) > 10, name.value
        assert 'default_value' in _keywords(call), name.value
        assert name.value not in declared, f'{name.value} declared twice'
        declared[name.value] = _keywords(call)['default_value']
    assert set(declared) == ARGUMENTS
    # The optional paths default to empty (= keep the params file value); extras are off.
    for name, default in (('scene', ''), ('checkpoint', ''), ('namespace', ''),
                          ('rviz', 'false'), ('viewer', 'false'), ('autostart', 'true'),
                          ('use_sim_time', 'false'), ('log_level', 'info')):
        assert ast.literal_eval(declared[name]) == default, name
    # params_file defaults to the installed config/refersplat.yaml of this package.
    source = ast.unparse(declared['params_file'])
    assert source.startswith('PathJoinSubstitution(') and source.endswith(
        "'config', 'refersplat.yaml'])"), source
    assert "PACKAGE = 'refersplat_ros'" in LAUNCH_FILE.read_text()
    assert [ast.unparse(c) for c in _calls(_tree(LAUNCH_FILE), 'FindPackageShare')] == [
        'FindPackageShare(PACKAGE)'] * 2
    assert (REPO_ROOT / 'config' / 'refersplat.yaml').is_file()


def test_launch_file_uses_only_portable_launch_apis():
    for node in ast.walk(_tree(LAUNCH_FILE)):
        if isinstance(node, ast.Import):
            assert all(a.name.split('.')[0] not in ('launch', 'launch_ros')
                       for a in node.names), 'import launch names explicitly'
        is_launch = isinstance(node, ast.ImportFrom) and node.module.split('.')[0] in (
            'launch', 'launch_ros')
        if is_launch:
            names = {a.name for a in node.names}
            assert names <= PORTABLE_NAMES.get(node.module, set()), (node.module, names)


def test_launch_file_starts_installed_executables():
    nodes = [_keywords(c) for c in _calls(_tree(LAUNCH_FILE), 'Node')]
    executables = {ast.literal_eval(k['executable']): k for k in nodes}
    assert set(executables) == {'refersplat_node', 'refersplat_viewer', 'rviz2'}
    assert ast.literal_eval(executables['refersplat_node']['name']) == 'refersplat'
    cmake = (REPO_ROOT / 'CMakeLists.txt').read_text()
    installed = set(re.findall(r'"(\w+):refersplat_ros\.\w+"', cmake))
    assert {'refersplat_node', 'refersplat_viewer'} <= installed
    # The build installed the launch file and the RViz config where ros2 launch looks.
    from ament_index_python.packages import get_package_share_directory
    share = Path(get_package_share_directory('refersplat_ros'))
    assert (share / 'launch' / 'bringup.launch.py').is_file()
    assert (share / 'rviz' / 'refersplat.rviz').is_file()
    # rviz2 gets '-d <share>/rviz/refersplat.rviz', the config checked below.
    rviz_args = ast.unparse(executables['rviz2']['arguments'])
    assert rviz_args.startswith("['-d', PathJoinSubstitution(") and rviz_args.endswith(
        "'rviz', 'refersplat.rviz'])]"), rviz_args


def test_rviz_config_shows_the_node_outputs_with_matching_qos():
    config = yaml.safe_load(RVIZ_FILE.read_text())
    manager = config['Visualization Manager']
    assert manager['Global Options']['Fixed Frame'] == 'scene'
    displays = {d['Topic']['Value']: d for d in _displays(manager['Displays']) if 'Topic' in d}
    assert {topic: d['Class'] for topic, d in displays.items()} == RVIZ_TOPICS
    for topic, display in displays.items():
        qos = display['Topic']
        assert qos['Durability Policy'] == 'Transient Local', topic
        assert qos['Reliability Policy'] == 'Reliable', topic
        assert display['Enabled'] is True, topic
    scene = displays['/refersplat/scene/cloud']
    assert scene['Color Transformer'] == 'RGB8' and scene['Position Transformer'] == 'XYZ'
    assert displays['/refersplat/target/cloud']['Position Transformer'] == 'XYZ'


def test_rviz_topics_are_latched_publishers_of_the_node():
    """Each RViz topic is a ``~/...`` publisher of the node with the LATCHED profile."""
    publishers = {}
    for call in _calls(_tree(OUTPUTS_FILE), 'create_publisher'):
        topic, qos = _name_value(call.args[1]), call.args[2]
        if topic is not None and isinstance(qos, ast.Name):
            publishers[topic] = qos.id
    for topic in RVIZ_TOPICS:
        private = '~/' + topic[len('/refersplat/'):]
        assert publishers.get(private) == 'LATCHED', (topic, publishers)
    rows = _calls(_tree(PARAMETERS_FILE), 'Parameter')
    frame_id = next(ast.literal_eval(row.args[1]) for row in rows
                    if row.args and ast.literal_eval(row.args[0]) == 'frame_id')
    assert frame_id == 'scene'
    tree = _tree(NODE_FILE)
    names = [_name_value(c.args[0]) for c in _calls(tree, '__init__') if c.args]
    assert names == ['refersplat'], names


def _name_value(node):
    """Value of a string constant or of a ``topics.NAME`` attribute (the node's ROS names)."""
    from refersplat_ros import topics
    if isinstance(node, ast.Constant):
        return node.value
    if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
            and node.value.id == 'topics'):
        return getattr(topics, node.attr)
    return None
