"""ROS-free core of refersplat_ros: pure Python + torch; nothing here imports rclpy.

The sub-packages are the layers of the method, lowest first; a module imports only from its own
layer or a lower one (``test/core/test_layers.py`` enforces it, see docs/ARCHITECTURE.md):

==============  ====================================================================
``errors``      the error types (every layer may raise them), ``devices``, ``files``
``scene``       Gaussians, their .ply/.pth files, cameras, annotated objects
``render``      the public ``rasterize`` with its CPU and gsplat backends, compositing weights
``reconstruct`` fitting RGB Gaussians to a capture's posed images (3DGS), object-id transfer
``text``        the frozen text encoder (word features)
``field``       the referring field, its mask rule and its checkpoints
``datasets``    ``reflerf``: the Ref-LERF layout and reader; ``ref_synth``: the generator
``labels``      pseudo-mask selection, training masks lifted onto the Gaussians
``runs``        the run-folder layout shared by training, evaluation and inference
``language``    query parsing, the object graph, grounding of relations and ordinals
``inference``   the model a node queries, 3D target selection
``train``       losses and the training loop
``evaluate``    metrics and the Ref-LERF protocol
==============  ====================================================================
"""
