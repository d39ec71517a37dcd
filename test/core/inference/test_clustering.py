"""DBSCAN: exact labels whatever the radius, in memory that does not grow with it."""
import os
import subprocess
import sys

import numpy as np
import open3d as o3d
import pytest

from refersplat_ros.core.inference.clustering import cluster_points
from helpers.ros_harness import REPO_ROOT


def _dbscan_reference(points, eps, min_points):
    """Core flags and labels by the DBSCAN definition, from all pairwise distances."""
    distances = np.sqrt(((points[:, None] - points[None]) ** 2).sum(-1))
    core = (distances <= eps).sum(axis=1) >= min_points
    cloud = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(points))
    return distances, core, np.asarray(cloud.cluster_dbscan(eps=eps, min_points=min_points))


@pytest.mark.parametrize('seed', range(12))
def test_clustering_is_exact_dbscan(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(5, 400))
    centres = rng.random((int(rng.integers(1, 6)), 3)) * 2
    points = centres[rng.integers(0, len(centres), n)] + rng.normal(
        scale=rng.choice([0.02, 0.1, 0.3]), size=(n, 3))
    if seed % 3 == 0:
        points = points[rng.integers(0, n, n)]  # duplicates
    eps = float(rng.choice([0.01, 0.05, 0.1, 0.3, 1.0, 10.0]))
    min_points = int(rng.integers(1, 8))
    ours = cluster_points(points, eps, min_points)
    distances, core, reference = _dbscan_reference(points, eps, min_points)
    # Same noise, same partition of the core points (labels may be numbered differently).
    np.testing.assert_array_equal(ours < 0, reference < 0)
    pairs = set(zip(ours[core], reference[core]))
    assert len(pairs) == len({a for a, _ in pairs}) == len({b for _, b in pairs})
    # A border point joins a cluster that has a core point within eps of it.
    for point in np.flatnonzero(~core & (ours >= 0)):
        assert (core & (ours == ours[point]) & (distances[point] <= eps)).any()


def test_huge_cluster_eps_does_not_make_clustering_quadratic(tmp_path):
    # open3d's DBSCAN lists every neighbour within eps: eps = 1e6 over 20k points needed 2.9 GB
    # (and 40 s). Run in a process whose address space is capped at 768 MiB above its start.
    script = tmp_path / 'cluster.py'
    script.write_text(
        'import resource\n'
        'import numpy as np\n'
        'from refersplat_ros.core.inference.clustering import cluster_points\n'
        "size = next(int(line.split()[1]) for line in open('/proc/self/status')\n"
        "            if line.startswith('VmSize')) * 1024\n"
        'resource.setrlimit(resource.RLIMIT_AS, (size + 768 * 2**20, resource.RLIM_INFINITY))\n'
        'points = np.random.default_rng(0).random((20000, 3)).astype(np.float32)\n'
        'labels = cluster_points(points, 1e6, 5)\n'
        'print(labels.max() + 1, int((labels < 0).sum()))\n')
    run = subprocess.run([sys.executable, str(script)], cwd=REPO_ROOT, capture_output=True,
                         text=True, env={**os.environ, 'PYTHONPATH': str(REPO_ROOT)})
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stdout.split() == ['1', '0']  # one cluster, no noise
