"""Test program: the refersplat node, with a model that reads queries and finds twins.

Runs ``refersplat_ros.node.main`` (same arguments) with ``ReferringModel.query`` wrapped so that
its outcomes carry what the core's language understanding adds, while the selection itself stays
the model's (the hand-built field of ``node_scenes.py`` always selects object A):

- every outcome the model produced gets ``interpretation`` = :func:`interpretation` of the text;
- OK lists its target as the one candidate, labelled ``'red mug #1'``;
- OK for a text containing ``'twin'`` becomes AMBIGUOUS with two candidates: A (the selection's
  best instance, as for OK) and a twin at object B's place, ``TWIN_SCORE``, 'red mug #2'.

Candidates are made like the core makes them: in metres (``SelectionConfig.metric_scale``).
"""
from pathlib import Path
import sys

import numpy as np

# This checkout's package first, as for `python -m refersplat_ros.node` run from the repository
# (a script's own folder replaces the working directory on sys.path), then node_scenes.
_TEST_DIR = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(_TEST_DIR.parent), str(_TEST_DIR)]

from helpers.node_scenes import B_CENTER  # noqa: E402
from refersplat_ros import node as node_module  # noqa: E402
from refersplat_ros.core.inference.model import Candidate, ReferringModel  # noqa: E402
from refersplat_ros.core.inference.queries import QueryStatus  # noqa: E402
from refersplat_ros.core.inference.selection import Instance, SelectionConfig  # noqa: E402

TWIN_SCORE = 0.5
TWIN_SIZE = (0.08, 0.08, 0.1)
AMBIGUOUS_MESSAGE = 'two red mugs fit about equally well'


def interpretation(text: str) -> str:
    """Return the interpretation line this program gives ``text``."""
    return f"target: red mug <- '{text}'; view: reference"


def _twin(scale: float) -> Instance:
    centre = np.asarray(B_CENTER) * scale
    return Instance(indices=np.zeros(0, np.int64), score=TWIN_SCORE, mass=1.0, centroid=centre,
                    center=centre, rotation=np.eye(3), extent=np.asarray(TWIN_SIZE) * scale)


def _reading_query(query):
    def wrapped(self, text, selection=None, *args, **kwargs):
        outcome = query(self, text, selection, *args, **kwargs)
        if outcome.status == QueryStatus.INVALID_QUERY:
            return outcome  # never read
        outcome.interpretation = interpretation(text)
        if outcome.status == QueryStatus.OK:
            best = outcome.selection.best
            outcome.candidates = [Candidate('red mug #1', best.score, best)]
            if 'twin' in text:
                scale = (selection or SelectionConfig()).metric_scale
                outcome.status, outcome.message = QueryStatus.AMBIGUOUS, AMBIGUOUS_MESSAGE
                outcome.candidates.append(Candidate('red mug #2', TWIN_SCORE, _twin(scale)))
        return outcome
    return wrapped


if __name__ == '__main__':
    ReferringModel.query = _reading_query(ReferringModel.query)
    sys.exit(node_module.main())
