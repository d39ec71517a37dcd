"""Object ids of reconstructed Gaussians from the true surface, on a hand-built case."""
import numpy as np
import pytest
import torch

from refersplat_ros.core.reconstruct.transfer import nearest, purity, transfer_ids


def test_ids_come_from_the_nearest_true_gaussian_within_the_tolerance():
    true = torch.tensor([[0.0, 0, 0], [1.0, 0, 0], [2.0, 0, 0]])
    true_ids = np.array([0, 1, 2])
    fitted = torch.tensor([[0.01, 0, 0],      # on the table: 0
                           [1.0, 0.015, 0],   # on object 1, within 2 cm
                           [1.6, 0, 0],       # between 1 and 2 but 40 cm from both: floater
                           [2.0, 0, 0.019],   # object 2
                           [2.0, 0, 0.5]])    # above object 2: floater
    moved = transfer_ids(fitted, true, true_ids, tolerance=0.02)
    assert moved.ids.tolist() == [0, 1, 0, 2, 0]
    assert moved.floater.tolist() == [False, False, True, False, True]
    assert moved.num_floaters == 2
    assert moved.distance[2] == pytest.approx(0.4, abs=1e-6)
    assert transfer_ids(fitted, true, true_ids, tolerance=0.02, floater_id=-1).ids[4] == -1
    # a large true Gaussian (a sparse floor sample of 22 cm) reaches twice its scale
    wide = transfer_ids(fitted, true, true_ids, tolerance=0.02,
                        true_extent=np.array([0.01, 0.01, 0.22]))
    assert wide.ids.tolist() == [0, 1, 2, 2, 0] and wide.num_floaters == 1


def test_nearest_is_exact_across_chunks():
    g = torch.Generator().manual_seed(1)
    query, reference = torch.rand(2500, 3, generator=g), torch.rand(700, 3, generator=g)
    dist, index = nearest(query, reference)
    brute = torch.cdist(query, reference)
    assert torch.equal(index, brute.argmin(1))
    assert torch.allclose(dist, brute.min(1).values)


def test_transfer_checks_its_inputs():
    with pytest.raises(ValueError, match='ids'):
        transfer_ids(torch.zeros(2, 3), torch.zeros(3, 3), np.zeros(2))
    with pytest.raises(ValueError, match='no true'):
        transfer_ids(torch.zeros(2, 3), torch.zeros(0, 3), np.zeros(0))


def test_purity_is_the_share_of_a_label_that_is_the_object():
    ids = np.array([1, 1, 0, 2, 2, 2])
    labels = np.array([1, 1, 1, 2, 2, 0])
    out = purity(ids, labels, 3)
    assert out[0] == pytest.approx(2 / 3) and out[1] == 1.0 and np.isnan(out[2])
