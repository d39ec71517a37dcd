"""The language benchmark's bookkeeping: kinds, blind sets, baselines, reliability tables."""
import json
from pathlib import Path
import sys

BENCH = Path(__file__).resolve().parents[2] / 'bench'
sys.path.insert(0, str(BENCH))  # the benchmark imports its neighbours as a script does
import language  # noqa: E402


def _record(kind, mode, right, confidence, status='OK'):
    return {'kind': kind, 'mode': mode, 'text': 't', 'target': None, 'right': right,
            'ious': [], 'ms': 1.0, 'status': status, 'confidence': confidence}


def test_blind_sets_are_well_formed_and_name_their_scene_s_objects():
    sets = sorted((BENCH / 'blind').glob('*.json'))
    assert len(sets) >= 3
    for path in sets:
        data = json.loads(path.read_text())
        assert data['scene'] == path.stem and data['provenance']
        kinds = {c['kind'] for c in data['commands']}
        assert kinds == {'annotator', 'spoken', 'negative'}
        for command in data['commands']:
            assert command['text'].strip()
            assert (command['target'] is None) == (command['kind'] == 'negative')


def test_blind_kinds_stay_out_of_the_suite_s_held_out_row():
    rows = [{'records': [_record('held-out', 'graph', True, 0.9),
                         _record('blind-annotator', 'graph', False, 0.9),
                         _record('blind-spoken', 'graph', True, 0.3),
                         _record('blind-negative', 'graph', True, 0.9, 'NO_MATCH')]}]
    lines = {(line['kind'], line['mode']): line for line in language.summarise(rows)}
    assert lines[('all held-out', 'graph')]['right'] == 1.0
    assert lines[('all held-out', 'graph')]['queries'] == 1
    assert lines[('all blind', 'graph')]['queries'] == 2  # positives only
    assert lines[('all blind', 'graph')]['right'] == 0.5


def test_reliability_bins_count_and_score_answers():
    rows = [{'records': [_record('blind-spoken', 'graph', True, 0.95),
                         _record('blind-spoken', 'graph', False, 0.85),
                         _record('blind-spoken', 'graph', True, 0.6),
                         _record('blind-spoken', 'nearest', False, 0.99)]}]
    table = language.reliability(rows, ['blind-spoken']).splitlines()
    assert table[2] == '| 0.0-0.5 | 0 | n/a |'
    assert table[3] == '| 0.5-0.8 | 1 | 100.0 |'
    assert table[4] == '| 0.8-1.0 | 2 | 50.0 |'


def test_plural_queries_from_a_manifest():
    objects = [{'category': 'red-can', 'shape': 'can', 'colour': 'red'},
               {'category': 'red-can-2', 'shape': 'can', 'colour': 'red'},
               {'category': 'blue-box', 'shape': 'box', 'colour': 'blue'}]
    queries = {text: (kind, target) for kind, text, target in language.plural_queries(objects)}
    cans = ['red-can', 'red-can-2']
    assert queries['all the cans'] == ('plural', cans)
    assert queries['every can'] == ('plural', cans)
    assert queries['both cans'] == ('plural', cans)
    assert queries['the two red cans'] == ('plural', cans)
    assert queries['the red cans'] == ('plural', cans)
    assert queries['the three cans'] == ('plural-negative', None)
    assert queries['all the boxes'] == ('plural', ['blue-box'])
    assert queries['both boxes'] == ('plural-negative', None)
    assert queries['the two boxes'] == ('plural-negative', None)
    assert 'plural-negative' in language.NEGATIVE_KINDS
    assert set(language.PLURAL_KINDS) <= set(language.KINDS)


def test_plural_kinds_stay_out_of_the_held_out_row():
    rows = [{'records': [_record('held-out', 'graph', True, 0.9),
                         _record('plural', 'graph', False, 0.9)]}]
    lines = {(line['kind'], line['mode']): line for line in language.summarise(rows)}
    assert lines[('all held-out', 'graph')]['queries'] == 1
    assert lines[('plural', 'graph')]['right'] == 0.0


def test_plural_commands_are_well_formed():
    sets = sorted((BENCH / 'commands').glob('*_plural.json'))
    assert sets
    for path in sets:
        data = json.loads(path.read_text())
        assert path.stem == data['scene'] + '_plural' and data['provenance']
        for command in data['commands']:
            assert command['text'].strip()
            assert command['targets'] is None or len(command['targets']) >= 1
