"""refersplat_ros: ReferSplat referring segmentation in 3D Gaussian Splatting, as a ROS 2 node.

``refersplat_ros.core`` is the ROS-free library (scenes, rasterizer, referring field, training,
evaluation). The generated interfaces (``refersplat_ros.msg``, ``.srv``, ``.action``) live in the
installed copy of this package; ``extend_path`` lets a source checkout on ``sys.path`` and the
install space serve one package (docs/SETUP.md#package-layout).
"""
from pkgutil import extend_path

__path__ = extend_path(__path__, __name__)
__version__ = '0.1.0'
