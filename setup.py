"""pip packaging of refersplat_ros for a plain Python venv without ROS.

The ROS build (interfaces, launch files, executables) is CMakeLists.txt, used by colcon and by
scripts/setup.sh. This file installs the Python package (the ROS-free ``refersplat_ros.core``
and the ``refersplat`` CLI) with::

    pip install torch==2.13.0 .

(torch pinned in the same command, see docs/SETUP.md#torch-pin). Do not pip-install into a
prefix that holds the ROS build: pip would uninstall the generated interfaces of the same name.
"""
from setuptools import find_packages, setup

setup(
    name='refersplat_ros',
    version='0.1.0',
    description='ReferSplat referring segmentation in 3D Gaussian Splatting, as a ROS 2 node',
    license='Apache-2.0',
    packages=find_packages(include=['refersplat_ros', 'refersplat_ros.*']),
    python_requires='>=3.10',
    install_requires=[
        'torch>=2.4',
        'gsplat==1.5.3',
        'packaging',
        'numpy',
        'plyfile',
        'pillow',
        'safetensors',
        'tokenizers',
        'tqdm',
        'transformers',
    ],
    extras_require={
        'open3d': ['open3d-cpu==0.20.0'],
        'test': ['pytest<9', 'flake8', 'flake8-quotes', 'flake8-docstrings'],
    },
    entry_points={'console_scripts': ['refersplat = refersplat_ros.cli.main:main']},
)
