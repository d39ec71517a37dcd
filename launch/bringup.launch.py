"""Bring up the refersplat node, optionally with RViz 2 and the Foxglove viewer.

    ros2 launch refersplat_ros bringup.launch.py scene:=scene.ply checkpoint:=field.safetensors

Parameters come from ``params_file`` (default: the package's ``config/refersplat.yaml``); the
``scene``, ``checkpoint``, ``camera_info_topic`` and ``camera_pose_topic`` arguments override the
file's values only when they are given, so an empty default never overwrites a value set in the
file. ``use_sim_time`` and ``autostart`` always
apply. Only launch / launch_ros APIs present in Humble, Jazzy and Kilted are used.

This file sets no network configuration: discovery range, domain and the Fast DDS profile come
from the caller's environment (the project's ``env.sh`` and tests restrict them to this host).
"""
import os

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import Node
from launch_ros.substitutions import FindPackageShare

PACKAGE = 'refersplat_ros'


def _as_bool(name: str, text: str) -> bool:
    value = text.strip().lower()
    if value in ('true', '1', 'yes', 'on'):
        return True
    if value in ('false', '0', 'no', 'off'):
        return False
    raise ValueError(f"launch argument '{name}' must be true or false, got '{text}'")


def _launch_setup(context):
    """Build the actions once the launch arguments are known (optional overrides)."""
    def arg(name):
        return LaunchConfiguration(name).perform(context).strip()

    use_sim_time = _as_bool('use_sim_time', arg('use_sim_time'))
    overrides = {'use_sim_time': use_sim_time,
                 'autostart': _as_bool('autostart', arg('autostart'))}
    # Only non-empty paths override the file: '' would replace a path set in the YAML.
    for name in ('scene', 'checkpoint'):
        if arg(name):
            overrides[name] = os.path.expanduser(arg(name))
    for name, parameter in (('camera_info_topic', 'camera.info_topic'),
                            ('camera_pose_topic', 'camera.pose_topic')):
        if arg(name):
            overrides[parameter] = arg(name)
    namespace = arg('namespace') or None
    start_viewer, start_rviz = _as_bool('viewer', arg('viewer')), _as_bool('rviz', arg('rviz'))
    actions = []
    # rviz2 first: where it is not installed the launch fails before any process has started
    # (launch leaves a process started before such a failure running).
    if start_rviz:
        actions.append(Node(
            package='rviz2', executable='rviz2', name='rviz2', output='screen',
            arguments=['-d', PathJoinSubstitution([FindPackageShare(PACKAGE), 'rviz',
                                                   'refersplat.rviz'])],
            parameters=[{'use_sim_time': use_sim_time}]))
    if start_viewer:
        # The viewer reads its own section of the params file (host, port) if it has one.
        actions.append(Node(
            package=PACKAGE, executable='refersplat_viewer', namespace=namespace,
            output='screen', parameters=[arg('params_file'), {'use_sim_time': use_sim_time}]))
    actions.append(Node(
        package=PACKAGE, executable='refersplat_node', name='refersplat', namespace=namespace,
        output='screen', emulate_tty=True, parameters=[arg('params_file'), overrides],
        ros_arguments=['--log-level', arg('log_level')]))
    return actions


def generate_launch_description():
    """Declare the arguments and start the node (plus RViz / viewer on request)."""
    share = FindPackageShare(PACKAGE)
    return LaunchDescription([
        DeclareLaunchArgument(
            'params_file',
            default_value=PathJoinSubstitution([share, 'config', 'refersplat.yaml']),
            description='YAML parameter file of the refersplat node'),
        DeclareLaunchArgument(
            'scene', default_value='',
            description='Gaussian scene (.ply or 3DGS .pth); empty = the params file value'),
        DeclareLaunchArgument(
            'checkpoint', default_value='',
            description='referring-field checkpoint (.safetensors) trained on that scene; '
                        'empty = the params file value'),
        DeclareLaunchArgument(
            'camera_info_topic', default_value='',
            description="the robot camera's sensor_msgs/CameraInfo topic (rectified); empty = "
                        'the params file value (camera/camera_info)'),
        DeclareLaunchArgument(
            'camera_pose_topic', default_value='',
            description="topic of the camera optical frame's geometry_msgs/PoseStamped in the "
                        'scene or output frame; empty = the params file value (camera/pose)'),
        DeclareLaunchArgument(
            'namespace', default_value='',
            description='namespace of the node and the viewer; a params file must key the '
                        'node as /**/refersplat to apply there (the RViz config shows the '
                        'un-namespaced /refersplat topics)'),
        DeclareLaunchArgument(
            'use_sim_time', default_value='false',
            description='use the /clock topic as time source (true/false)'),
        DeclareLaunchArgument(
            'log_level', default_value='info',
            description='log level of the refersplat node (debug, info, warn, error, fatal)'),
        DeclareLaunchArgument(
            'autostart', default_value='true',
            description='configure and activate the lifecycle node on start (true/false); '
                        'false leaves it unconfigured for a lifecycle manager'),
        DeclareLaunchArgument(
            'rviz', default_value='false',
            description='start rviz2 with the bundled rviz/refersplat.rviz (true/false)'),
        DeclareLaunchArgument(
            'viewer', default_value='false',
            description='start the Foxglove viewer refersplat_viewer (true/false)'),
        OpaqueFunction(function=_launch_setup),
    ])
