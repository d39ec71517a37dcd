"""``refersplat_ros.client``: what a person reads from a ReferResult (messages in memory).

The client against a running node is tested in test_node.py.
"""
import pytest

from helpers.ros_harness import require_ros


@pytest.fixture(autouse=True)
def _needs_ros():
    require_ros()


def _result(status, **fields):
    from refersplat_ros.msg import ReferResult

    result = ReferResult(text='the red can', status=status, query_id=7, **fields)
    result.header.frame_id = 'scene'
    return result


def _candidate(label, score, x):
    from refersplat_ros.msg import ReferCandidate

    candidate = ReferCandidate(label=label, score=score)
    candidate.pose.position.x, candidate.pose.orientation.w = x, 1.0
    return candidate


def test_ambiguous_is_answered_and_lists_its_candidates():
    from refersplat_ros.client import answered, format_result
    from refersplat_ros.msg import ReferResult

    result = _result(ReferResult.AMBIGUOUS, message='two cans fit', score=0.75,
                     num_gaussians=40, interpretation="target: can <- 'red can'")
    result.pose.position.x, result.pose.orientation.w = 0.5, 1.0
    result.candidates = [_candidate('red can #1', 0.75, 0.5), _candidate('red can #2', 0.625, -1)]
    assert answered(result)
    lines = format_result(result).splitlines()
    assert lines[:3] == ['status:    AMBIGUOUS (two cans fit)', "query:     'the red can' (id 7)",
                         "understood: target: can <- 'red can'"]
    assert 'score:     0.750 over 40 Gaussians' in lines
    assert "position:  (0.500, 0.000, 0.000) in 'scene'" in lines
    assert lines[-3:] == ['candidates: 2, best first (position = box centre)',
                          '  1. red can #1  score 0.750  position (0.500, 0.000, 0.000)',
                          '  2. red can #2  score 0.625  position (-1.000, 0.000, 0.000)']


def test_a_plural_lists_every_target_once():
    from refersplat_ros.client import format_result
    from refersplat_ros.msg import ReferResult

    result = _result(ReferResult.OK, score=1.0, num_gaussians=80)
    result.targets = [_candidate('red-can', 1.0, 0.5), _candidate('red-can-2', 1.0, -0.5)]
    lines = format_result(result).splitlines()
    assert lines[-3:] == ['targets:   2 (position = box centre)',
                          '  1. red-can  score 1.000  position (0.500, 0.000, 0.000)',
                          '  2. red-can-2  score 1.000  position (-0.500, 0.000, 0.000)']
    assert sum(line.startswith('targets:') for line in lines) == 1


def test_ok_and_no_match_show_the_interpretation_and_no_candidate_list():
    from refersplat_ros.client import answered, format_result
    from refersplat_ros.msg import ReferResult

    ok = _result(ReferResult.OK, score=0.875, interpretation='target: can',
                 candidates=[_candidate('red can #1', 0.875, 0.5)])
    text = format_result(ok)
    assert answered(ok) and 'understood: target: can' in text.splitlines()
    assert 'score:     0.875' in text and 'candidates' not in text
    miss = _result(ReferResult.NO_MATCH, message='only 3 Gaussians', interpretation='target: x')
    text = format_result(miss)
    assert not answered(miss) and 'understood: target: x' in text.splitlines()
    assert 'score:' not in text and 'candidates' not in text
    plain = format_result(_result(ReferResult.INVALID_QUERY, message='query is empty'))
    assert 'understood' not in plain
    for status in (ReferResult.INVALID_QUERY, ReferResult.NOT_READY, ReferResult.DROPPED,
                   ReferResult.ERROR):
        assert not answered(_result(status))


def test_names_and_messages_from_files_are_printed_escaped():
    from refersplat_ros.client import format_result
    from refersplat_ros.msg import ReferResult

    result = _result(ReferResult.AMBIGUOUS, message='two \x1b[2Jcans fit', score=0.75,
                     interpretation='target: can\x07 <- \u202ered can')
    result.pose.orientation.w = 1.0
    result.candidates = [_candidate('red can\x1b]0;owned\x07', 0.75, 0.5)]
    text = format_result(result)
    assert not any(c in text for c in '\x1b\x07\u202e')
    lines = text.splitlines()
    assert lines[0] == 'status:    AMBIGUOUS (two \\x1b[2Jcans fit)'
    assert lines[2] == 'understood: target: can\\x07 <- \\u202ered can'
    assert lines[-1].startswith('  1. red can\\x1b]0;owned\\x07  score 0.750')
