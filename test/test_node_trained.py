"""The node on a really trained field: names and held-out wording select their objects.

The field is trained here on the tiny Ref-Synth preset with the bundled text encoder
(``trained_scene.make_trained_scene``, category names as extra expressions: the tiny preset's
held-out referring expressions are beyond 500 steps of training for the field, see
docs/RESULTS.md; the node's object graph answers them, docs/LANGUAGE.md).
"""
import numpy as np
import pytest

from helpers.ros_harness import require_ros
from test_node import Listener, NODE


@pytest.fixture(scope='module')
def trained(tiny_trained_scene):
    """Return the session's tiny trained scene (trained in the background: conftest.py)."""
    require_ros()
    from refersplat_ros.core.datasets.reflerf.loader import load_referring_dataset
    scene = tiny_trained_scene
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


def _ask_held_out(client, scene, means, object_ids):
    """Ask every held-out sentence of the scene; each must answer OK on its object."""
    import json
    from refersplat_ros.msg import ReferResult
    manifest = json.loads((scene.data_dir / 'manifest.json').read_text())
    held_out = [(e['category'], e['sentence']) for e in manifest['expressions']
                if e['split'] == 'test']
    assert held_out
    for category, text in held_out:
        result = client.refer(text, timeout=30)
        assert result.status == ReferResult.OK, (text, result.message, result.interpretation)
        assert f'-> {category}' in result.interpretation, (text, result.interpretation)
        assert 0.0 < result.confidence <= 1.0
        members = means[object_ids == scene.categories[category]]
        centre = (members.min(axis=0) + members.max(axis=0)) / 2
        position = result.pose.position
        assert np.linalg.norm([position.x - centre[0], position.y - centre[1],
                               position.z - centre[2]]) < 0.05, text


def test_held_out_wording_and_a_names_only_field(rclpy_context, ros_processes, trained,
                                                 tiny_names_run):
    """Held-out sentences are answered through the node, also from a names-only field.

    The generator's held-out wording (other nouns, relation phrases, frames) is asked of the
    node with the full field and with a field trained on the category names alone (60 steps,
    ``tiny_names_run``).
    """
    from refersplat_ros.client import ReferClient

    scene, means, object_ids = trained
    names_run = tiny_names_run
    from refersplat_ros.core.field.checkpoint import load_checkpoint
    assert not any(load_checkpoint(names_run.last_checkpoint).objects.sentences)
    listener = Listener(rclpy_context)
    for checkpoint in (scene.checkpoint, names_run.last_checkpoint):
        node = ros_processes(NODE, '--ros-args', '-p', f'scene:={scene.scene_path}',
                             '-p', f'checkpoint:={checkpoint}', name='refersplat')
        client = ReferClient(listener.node)
        assert client.wait_for_server(60), node.output()
        _ask_held_out(client, scene, means, object_ids)
        client.destroy()
        assert node.stop() == 0, node.output()
