"""bot.patches.fast_features joins sparse features exactly as scipy.sparse.hstack does."""

import numpy as np
import pytest
import scipy.sparse
from rasa.shared.nlu.training_data.features import Features

from bot.patches import fast_features


def _features(matrix, origin):
    return Features(matrix, "sequence", "text", origin)


@pytest.mark.parametrize(
    "left_dtype, right_dtype",
    [(np.float32, np.float32), (np.float32, np.float64), (np.int64, np.float32)],
)
def test_the_join_is_hstacks(left_dtype, right_dtype):
    left = scipy.sparse.random(7, 60, density=0.1, format="coo", dtype=left_dtype, random_state=1)
    right = scipy.sparse.random(7, 300, density=0.05, format="coo", dtype=right_dtype, random_state=2)

    joined = fast_features.hstack_coo(left, right)
    expected = scipy.sparse.hstack([left, right])

    assert isinstance(joined, scipy.sparse.coo_matrix)
    assert joined.shape == expected.shape and joined.dtype == expected.dtype
    assert np.array_equal(joined.row, expected.row)
    assert np.array_equal(joined.col, expected.col)
    assert np.array_equal(joined.data, expected.data)


def test_features_combine_through_it_and_other_formats_keep_rasas_join(monkeypatch):
    monkeypatch.setattr(Features, "_combine_sparse_features", fast_features._combine_sparse_features)
    calls = []
    monkeypatch.setattr(fast_features, "hstack_coo", lambda *m: calls.append(1) or scipy.sparse.hstack(m).tocoo())
    coo = _features(scipy.sparse.coo_matrix(np.eye(3)), "a")
    coo.combine_with_features(_features(scipy.sparse.coo_matrix(np.ones((3, 2))), "b"))
    csr = _features(scipy.sparse.csr_matrix(np.eye(3)), "a")
    csr.combine_with_features(_features(scipy.sparse.csr_matrix(np.ones((3, 2))), "b"))

    assert calls == [1]
    assert coo.features.toarray().tolist() == csr.features.toarray().tolist() == np.hstack([np.eye(3), np.ones((3, 2))]).tolist()


def test_rows_that_do_not_match_are_refused_as_rasa_does(monkeypatch):
    monkeypatch.setattr(Features, "_combine_sparse_features", fast_features._combine_sparse_features)
    three = _features(scipy.sparse.coo_matrix(np.eye(3)), "a")
    with pytest.raises(ValueError, match="sequence dimensions do not match"):
        three.combine_with_features(_features(scipy.sparse.coo_matrix(np.ones((2, 2))), "b"))
