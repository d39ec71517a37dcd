"""The node on a really trained field: each object's name selects that object (pose and cloud).

The field is trained here on the tiny Ref-Synth preset with the bundled text encoder
(``trained_scene.make_trained_scene``, category names as extra expressions: the tiny preset's
held-out referring expressions are beyond 500 steps of training, see docs/RESULTS.md).
"""
import numpy as np
import pytest

from ros_harness import require_ros
from test_node import Listener, NODE


@pytest.fixture(scope='module')
def trained(tmp_path_factory):
    require_ros()
    from refersplat_ros.core.datasets.reflerf_loader import load_referring_dataset
    from trained_scene import make_trained_scene
    scene = make_trained_scene(tmp_path_factory.mktemp('trained'), steps=500)
    dataset = load_referring_dataset(scene.data_dir)
    from refersplat_ros.core.scene.gaussian_io import load_scene
    means = load_scene(scene.scene_path).means.numpy()
    return scene, means, dataset.object_ids().numpy()


def test_each_object_name_selects_that_object(rclpy_context, ros_processes, trained):
    from refersplat_ros.client import ReferClient
    from refersplat_ros.conversions import pointcloud2_to_xyz
    from refersplat_ros.msg import ReferResult

    scene, means, object_ids = trained
    node = ros_processes(NODE, '--ros-args', '-p', f'scene:={scene.scene_path}',
                         '-p', f'checkpoint:={scene.checkpoint}', name='refersplat')
    listener = Listener(rclpy_context)
    client = ReferClient(listener.node)
    assert client.wait_for_server(60), node.output()
    shares = []
    for category, object_id in scene.categories.items():
        text = scene.queries[category]
        result = client.refer(text, timeout=30)
        assert result.status == ReferResult.OK, (text, result.message)
        members = means[object_ids == object_id]
        centre = (members.min(axis=0) + members.max(axis=0)) / 2
        position = result.pose.position
        assert np.linalg.norm([position.x - centre[0], position.y - centre[1],
                               position.z - centre[2]]) < 0.05, text
        xyz = pointcloud2_to_xyz(result.cloud)
        nearest = np.argmin(((xyz[:, None, :] - means[None]) ** 2).sum(-1), axis=1)
        shares.append((object_ids[nearest] == object_id).mean())
    # >= 80 % of the target clouds lie on the named objects. A flat object (the plate) also
    # takes the table Gaussians hidden under it: no view sees them, so no mask says 'not plate'
    # (measured: 70 % for the plate, 90-99 % for balls and bowls).
    assert np.mean(shares) >= 0.8 and min(shares) >= 0.6, shares
    client.destroy()
    assert node.stop() == 0, node.output()
