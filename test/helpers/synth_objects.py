"""Test helper: hand-placed Ref-Synth objects for relation and expression tests."""
from refersplat_ros.core.datasets.ref_synth.scene import SceneObject
from refersplat_ros.core.datasets.ref_synth.shapes import shape_extent


def obj(i, shape, x, y, colour='red', size='large', base_z=0.0, support=0):
    """Return object ``i`` of ``shape`` at (x, y); category '<colour>-<shape>-<i>'."""
    return SceneObject(i, shape, colour, size, x, y, base_z, 0.0,
                       shape_extent(shape, 1.0 if size == 'large' else 0.7), support,
                       f'{colour}-{shape}-{i}')
