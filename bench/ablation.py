#!/usr/bin/env python3
"""ReferSplat ablation on the default Ref-SYNTH scene; writes docs/RESULTS.md.

Configurations (paper Tab. 1 and Tab. 4, docs/METHOD.md#ablations):

==================  ====================================================================
baseline            referring field + m_i + BCE (no PCMI, no GTCL)
pcmi                + PCMI (official-code form, docs/METHOD.md#pcmi-code)
gtcl                + GTCL (lambda 0.02, fixed top-tau, docs/METHOD.md#gtcl)
full                PCMI + GTCL (ReferSplat)
full_two_stage      full, then stage-2 refinement on its own predictions (docs/METHOD.md#two-stage)
naive_attention     cross-attention without position terms, no GTCL (compare with baseline)
==================  ====================================================================

Every configuration trains with the same seed and the documented Ref-Synth defaults (600 steps of
``EXPRESSIONS_PER_STEP`` expressions, ``core/train/trainer.py``; fixed, not until convergence, so
that the configurations compare), then every checkpoint is evaluated with the Ref-LERF protocol
(``core/evaluate/evaluator.py``): mIoU of the last and of the best checkpoint, per subset, 3D
precision / recall of the selected Gaussians. Each configuration's numbers are stored in
``OUT/<name>/result.json``; a configuration whose result exists is not re-run (``--force``
re-runs), so two processes can split the list (``--configs``) and ``--report-only`` writes the
table from what exists. The last checkpoint of every run is also scored on the training views with
the training expressions (fit) and on the test views with the training expressions (new viewpoints,
seen wording): beside the protocol's held-out wording they show where a configuration loses
(``--rescore`` adds these scores to existing results).

Usage (make target suggestion: ``make ablation``)::

    python bench/ablation.py                       # everything (run times: docs/RESULTS.md)
    python bench/ablation.py --configs full,baseline --num-threads 1
    python bench/ablation.py --report-only
    python bench/ablation.py --rescore --report-only   # add fit / seen-wording scores
"""
import argparse
import datetime
import json
import math
import os
from pathlib import Path
import platform
import sys
import time

REPO = Path(__file__).resolve().parents[1]
CONFIGS = {
    'baseline': dict(use_pcmi=False, use_gtcl=False),
    'pcmi': dict(use_pcmi=True, use_gtcl=False),
    'gtcl': dict(use_pcmi=False, use_gtcl=True),
    'full': dict(use_pcmi=True, use_gtcl=True),
    'full_two_stage': dict(use_pcmi=True, use_gtcl=True, stage=2),
    'naive_attention': dict(use_pcmi=True, naive=True, use_gtcl=False),
}
SUBSETS = ('attribute', 'spatial', 'distractor', 'relational')
EXTRA_SPLITS = ('train', 'test-seen-wording')
# Hand-written analysis of docs/RESULTS.md; the extra runs it quotes are described there.
NOTES = '''
## What limits the numbers

- **The field fits and generalises to new viewpoints; it does not generalise to new wording.**
  Scored on three splits (table above; `refersplat eval --split`), the full model's last
  checkpoint reaches {full_fit} % mIoU on the training views with the training expressions and
  {full_seen} % on the held-out test views with the same (seen) expressions, but {full_test} % on
  the protocol's held-out wording. The >= 85 target is met for new viewpoints and missed for new
  wording, and more steps do not change that (3000 steps below: 98.7 / 97.7 / 12.4 %). The
  earlier reading of
  the 600-step table ("Adam steps, not data: objects switch on one at a time") was wrong: it
  looked only at the test split, where the six objects whose test wording shares no decisive
  word with their training wording score 0 at every step.
- **What the held-out wording changes.** Each Ref-Synth test expression swaps the noun
  ("sphere" for "ball", "dish" for "plate", "basin" for "bowl", "carton" for "box"), the size
  word ("little" / "big") and the relation or ordinal phrase ("on the right side of", "second
  when counting from the back") for wording never seen in training, and each object has only
  4 training expressions (as in Ref-LERF). The response m_i = <g'_i, sum_j MLP1(w_j)> is learnt
  from those 4 sentences through a frozen 384-d MiniLM (the paper uses the 1024-d
  bert-large-uncased, not available offline here), so the field keys on the training words: on
  the 3000-step checkpoint the object with the highest mean logit is the target for 28 / 28
  training expressions and 2 / 7 test expressions. Only "locate the big yellow carton" is
  answered (IoU 80-92 % in every test view; "yellow" is unique to that object); the other six
  test expressions select nothing at all (every logit < 0: the node would answer NO_MATCH
  rather than a wrong object), except "the dish that comes second when counting from the left"
  which selects a few pixels of the other plate. The paper's own Ref-LERF numbers (29.2 mIoU
  on average, docs/METHOD.md#reported-numbers) are measured in this held-out-wording regime.
- **PCMI, naive attention and the baseline.** At the 600-step default the attention fields have
  learnt the scene (seen wording: PCMI {pcmi_seen} %, full {full_seen} %, naive attention
  {naive_attention_seen} %) while the fields without attention have hardly moved a logit
  above 0 (baseline {baseline_seen} %, +GTCL {gtcl_seen} %): with zero-initialised features at
  lr 0.0025 the baseline needs ~1000 steps before any object switches on. On the spatial subset
  (seen wording) PCMI beats naive attention ({pcmi_seen_spatial} vs
  {naive_attention_seen_spatial} %), the paper's Tab. 4 direction. Given time, the baseline
  catches up: 3000 steps of the baseline (`--no-pcmi --no-gtcl`, 9.8 steps/s on one thread,
  5.1 min) reach 98.6 % fit and 96.8 % seen wording (spatial 96.0 %), against 97.7 % (spatial
  97.1 %) for the full model at 3000 steps (17 min). A per-scene field can memorise which
  object each seen
  sentence names without any reasoning, so Ref-Synth with seen wording cannot show the
  paper's spatial gain beyond learning speed per step, and with held-out wording every
  configuration fails alike (12.4-13.6 %, the carton expression only).
- **Time.** At 31k Gaussians one full-model step (4 expressions) costs {full_step_s} s here
  ({full_min} min for the 600-step default; an earlier 2-core AMD
  EPYC VM measured 0.38 s a step with 2 threads, 0.45 s with 1). Wall times of runs that shared
  the 2 cores with other jobs (load average in the Runs table) are upper bounds. The
  query-independent part (MLP2 and MLP3 over all N, the
  N x 128 x 128 PCMI projections and their backward) is ~0.4 s of a step, so 4 expressions per
  step cost about the same as 1. Without PCMI a step is ~6x cheaper.
- **Two-stage refinement.** Stage 1 of `full_two_stage` reproduces `full` exactly (same seed).
  Stage 2 re-trains on the stage-1 renders of the training views as pseudo masks; Ref-Synth's
  training masks are exact, so it can only lose what stage 1 got wrong (fit {stage2_fit} vs
  {full_fit} %). The
  paper's stage 2 refines noisy Grounded-SAM masks, which this benchmark does not have.
- **Empty pixels.** The literal M >= 0 rule scores near 0 on Ref-Synth because uncovered pixels
  render M = 0 (no background term, docs/METHOD.md#rasterized-logit); LERF views are fully
  covered, so both rules agree there.

## Longer schedules: 3000 steps

`refersplat train --data scenes/default --out runs/long --steps 3000 --checkpoint-every 500`
(full model, idle 2-core AMD EPYC VM, 2.90 steps/s, 17.2 min) and the same with `--no-pcmi
--no-gtcl --num-threads 1 --out runs/baseline_long` (9.80 steps/s, 5.1 min); each checkpoint scored
with
`refersplat eval --split train|test-seen-wording|test` (2026-11-25). mIoU %:

| step | full: train | full: seen | full: test | base: train | base: seen | base: test |
|---|---|---|---|---|---|---|
| 500 | 75.9 | 75.6 | 0.1 | 0.0 | 0.0 | 0.0 |
| 1000 | 98.1 | 96.7 | 4.3 | 74.0 | 73.4 | 12.6 |
| 1500 | 98.2 | 97.1 | 0.0 | 93.4 | 92.2 | 13.4 |
| 2000 | 98.3 | 96.9 | 0.0 | 98.0 | 96.4 | 13.5 |
| 2500 | 98.3 | 97.7 | 13.4 | 98.5 | 96.8 | 13.6 |
| 3000 | 98.7 | 97.7 | 12.4 | 98.6 | 96.8 | 12.6 |

Per step the full model learns faster (98.1 % fit at step 1000 against the baseline's 74.0 %);
per minute the baseline does (5.1 against 17.2 min for 3000 steps). The full model's test
mIoU swings between 0 and 13 % across checkpoints because the carton expression's logits hover
around the threshold while fit and seen wording stay at 96-99 %.

## Test helper for integration tests

`make_trained_scene(out_dir)` (`test/helpers/trained_scene.py`) generates the tiny Ref-Synth preset
and trains 500 steps with the bundled MiniLM and the objects' category names as extra expressions:
85 s on the shared 2 cores (6.4 steps/s); afterwards every category-name query ("black ball",
"white plate", ...) selects its object (3D precision 0.70-0.99, recall 0.83-0.99) and the
open-vocabulary test mIoU is 86.6 %. The tiny preset's held-out referring expressions are not
learned in that budget (0 %).

## Reproduce

    python bench/ablation.py                    # all configurations, then this file
    python bench/ablation.py --steps 3000       # a longer schedule (same defaults otherwise)
    refersplat eval --run runs/ablation/full    # per-expression CSV and overlays
    refersplat eval --run runs/ablation/full --split test-seen-wording   # new views, seen wording
'''


def _machine() -> dict:
    import torch
    cpu = platform.processor() or ''
    try:
        for line in Path('/proc/cpuinfo').read_text().splitlines():
            if line.startswith('model name'):
                cpu = line.split(':', 1)[1].strip()
                break
    except OSError:
        pass
    return {'cpu': cpu, 'cores': os.cpu_count(), 'torch': torch.__version__,
            'python': platform.python_version(), 'system': platform.platform(),
            'cuda': torch.cuda.is_available()}


def _ensure_scene(data: Path) -> None:
    if (data / 'manifest.json').is_file():
        return
    from refersplat_ros.core.datasets.ref_synth.generator import make_scene, preset_config
    print(f'generating the default Ref-Synth scene into {data}')
    make_scene(preset_config('default'), data, overwrite=True, progress=False)


def _run_config(name: str, spec: dict, args) -> dict:
    from refersplat_ros.core.evaluate.evaluator import EvalConfig, evaluate_run
    from refersplat_ros.core.field.referring_field import ReferringFieldConfig
    from refersplat_ros.core.train.losses import ReferringLossConfig
    from refersplat_ros.core.train.trainer import TrainConfig, train

    out = args.out / name
    config = TrainConfig(
        data=args.data, out=out, steps=args.steps, seed=args.seed,
        expressions_per_step=args.expressions_per_step, num_threads=args.num_threads,
        field=ReferringFieldConfig(use_pcmi=spec['use_pcmi'],
                                   naive_attention=spec.get('naive', False)),
        loss=ReferringLossConfig(use_gtcl=spec['use_gtcl']), stage=spec.get('stage', 1),
        resume=not args.force, progress=not args.no_progress)
    load = os.getloadavg()[0]
    result = train(config)
    # The ablation compares fields: every split is scored on the field's own answer (the
    # paper's protocol), not the object graph the node grounds in by default.
    evaluation = evaluate_run(EvalConfig(run=out, progress=False, overlays=True,
                                         grounding='field'))
    stages = []
    for train_stage, eval_stage in zip(result.stages, evaluation.stages):
        entry = {'stage': train_stage.stage, 'steps': train_stage.steps,
                 'wall_time_s': train_stage.wall_time_s,
                 'weights_build_s': train_stage.weights_build_s,
                 'steps_per_second': train_stage.steps_per_second,
                 'steps_run': train_stage.steps_run,
                 'final_losses': train_stage.final_losses}
        for label, ev in (('last', eval_stage.last), ('best', eval_stage.best)):
            entry[label] = {
                'checkpoint': ev.checkpoint.name, 'step': ev.step, 'miou': ev.miou,
                'miou_paper_rule': ev.paper_summary.average,
                'subsets': {k: v.average for k, v in ev.subsets.items()},
                'subset_pairs': {k: sum(v.num_pairs.values()) for k, v in ev.subsets.items()},
                'pairs': sum(ev.summary.num_pairs.values()),
                'selection_3d': ev.selection_means()}
        stages.append(entry)
    _add_split_scores(args.data, out, stages)
    record = {'name': name, 'spec': spec, 'load_average_at_start': load,
              'threads': args.num_threads,
              'expressions_per_step': json.loads((out / 'config.json').read_text())[
                  'expressions_per_step'], 'stages': stages,
              'finished': datetime.datetime.now().isoformat(timespec='seconds')}
    (out / 'result.json').write_text(json.dumps(record, indent=1, default=_nan_none))
    return record


def _add_split_scores(data: Path, out: Path, stages: list) -> None:
    """Score each stage's last checkpoint on the extra splits (``stage['splits']``)."""
    from refersplat_ros.core.evaluate.evaluator import evaluate_checkpoint
    from refersplat_ros.core.runs import checkpoint_dir

    for stage in stages:
        checkpoint = checkpoint_dir(out, stage['stage']) / stage['last']['checkpoint']
        scores = {}
        for split in EXTRA_SPLITS:
            ev = evaluate_checkpoint(checkpoint, data, split=split)
            scores[split] = {'miou': ev.miou, 'pairs': sum(ev.summary.num_pairs.values()),
                             'subsets': {k: v.average for k, v in ev.subsets.items()}}
        stage['splits'] = scores


def _rescore(args, names) -> None:
    """Add the extra-split scores to existing results that lack them."""
    for name in names:
        path = args.out / name / 'result.json'
        if not path.is_file():
            continue
        record = json.loads(path.read_text())
        if all('splits' in stage for stage in record['stages']):
            continue
        _add_split_scores(args.data, args.out / name, record['stages'])
        path.write_text(json.dumps(record, indent=1, default=_nan_none))
        print(f'{name}: split scores added')


def _nan_none(value):
    return None


def _pct(value) -> str:
    return 'n/a' if value is None or (isinstance(value, float) and math.isnan(value)) \
        else f'{100.0 * value:.1f}'


def _row(name: str, stage: dict) -> str:
    last, best = stage['last'], stage['best']
    cells = [name + (' (stage 2)' if stage['stage'] == 2 else ''),
             f'{_pct(last["miou"])} / {_pct(best["miou"])} (step {best["step"]})']
    for subset in SUBSETS:
        cells.append(f'{_pct(last["subsets"].get(subset))} / {_pct(best["subsets"].get(subset))}')
    sel = last['selection_3d']
    cells += [_pct(last['miou_paper_rule']), _pct(sel.get('precision')), _pct(sel.get('recall')),
              f'{stage["steps"]}', f'{stage["wall_time_s"] / 60.0:.1f}',
              f'{stage["steps_per_second"]:.2f}' if stage['steps_run'] else 'resumed']
    return '| ' + ' | '.join(cells) + ' |'


def _relative(path: Path) -> str:
    """``path`` relative to the repository when inside it (tables do not name a home folder)."""
    try:
        return str(Path(path).resolve().relative_to(REPO))
    except ValueError:
        return str(path)


def _split_table(records: dict) -> list:
    """Fit / seen wording / held-out wording of every last checkpoint (when scored)."""
    rows = []
    for name in CONFIGS:
        for stage in (records.get(name) or {}).get('stages', []):
            if 'splits' not in stage:
                continue
            train, seen = stage['splits']['train'], stage['splits']['test-seen-wording']
            rows.append('| ' + ' | '.join([
                name + (' (stage 2)' if stage['stage'] == 2 else ''),
                _pct(train['miou']), _pct(seen['miou']), _pct(stage['last']['miou']),
                _pct(seen['subsets'].get('spatial')), _pct(seen['subsets'].get('distractor')),
                _pct(seen['subsets'].get('relational'))]) + ' |')
    if not rows:
        return []
    pairs = next(s['splits'] for r in records.values() for s in r['stages'] if 'splits' in s)
    return ['', '### Fit, new viewpoints, new wording', '',
            'The last checkpoint of each run scored with the same protocol on three splits '
            '(`refersplat eval --split`): **train** = training views with their training '
            f'expressions ({pairs["train"]["pairs"]} pairs; how well the field fits what it was '
            'trained on), **seen wording** = the held-out test views with every training '
            f'expression of each object ({pairs["test-seen-wording"]["pairs"]} pairs; new '
            'viewpoints, known wording), **test** = the protocol above (held-out views and '
            'held-out wording). The last three columns are subsets of the seen-wording split.',
            '', '| config | train (fit) | seen wording | test (held-out wording) | '
            'seen wording: spatial | distractor | relational |',
            '|---|---|---|---|---|---|---|'] + rows


def _notes(records: dict) -> str:
    """Return NOTES with this run's numbers filled in ('n/a' for a configuration not run)."""
    values = {}
    for name in CONFIGS:
        stages = (records.get(name) or {}).get('stages', [])
        for stage in stages:
            key = name if stage['stage'] == 1 else 'stage2'
            splits = stage.get('splits', {})
            seen = splits.get('test-seen-wording', {})
            values[f'{key}_fit'] = _pct(splits.get('train', {}).get('miou'))
            values[f'{key}_seen'] = _pct(seen.get('miou'))
            values[f'{key}_seen_spatial'] = _pct(seen.get('subsets', {}).get('spatial'))
            values[f'{key}_test'] = _pct(stage['last']['miou'])
            if stage['stage'] == 1 and stage.get('steps_run'):
                values[f'{key}_step_s'] = f'{1.0 / stage["steps_per_second"]:.2f}'
                values[f'{key}_min'] = f'{stage["wall_time_s"] / 60.0:.1f}'

    class _Missing(dict):
        def __missing__(self, key):
            return 'n/a'

    return NOTES.strip().format_map(_Missing(values))


def write_report(args, records: dict) -> Path:
    from refersplat_ros.core.train.trainer import EXPRESSIONS_PER_STEP

    machine = _machine()
    lines = [
        '# Results: ReferSplat ablation on the default Ref-Synth scene', '',
        f'Generated by `python bench/ablation.py` on {datetime.date.today().isoformat()}. '
        'Machine: ' + f'{machine["cpu"]}, {machine["cores"]} cores, torch {machine["torch"]}, '
        f'Python {machine["python"]}, CUDA {"yes" if machine["cuda"] else "no"}. '
        'The CPU was shared with other jobs while these runs trained (load average at the '
        'start of each run in the last table), so times are upper bounds.', '',
        f'Scene: `{_relative(args.data)}` (Ref-Synth `default` preset: 7 objects, 31k '
        'Gaussians, 26 train / 6 test views at 160x120, 4 training expressions and 1 held-out '
        'test expression per object (28 / 7), test wording disjoint from training wording). '
        f'Recipe: {args.steps} steps of {args.expressions_per_step or EXPRESSIONS_PER_STEP} '
        'expressions per step (fixed, so that configurations compare), lr 0.0025 / 1e-4, '
        'Adam eps 1e-15, lambda 0.02, tau period 1000, seed 42; checkpoints every steps / 10.',
        '',
        'mIoU (%) with the Ref-LERF protocol (docs/METHOD.md#evaluation), shown as '
        '**last / best** checkpoint. Uncovered pixels count as background '
        '(`empty_pixels=background`); the "paper rule" column applies M >= 0 literally to '
        'every pixel of the last checkpoint, which marks the empty sky (about 45 % of each '
        'view) as foreground. 3D precision / recall: Gaussians with sigmoid(m) >= 0.5 for each '
        'test expression vs the object ids (last checkpoint, mean over the 7 test expressions). '
        'Subsets: expression types of Ref-Synth; `relational` = any expression built on a '
        'relation or an ordinal.', '',
        '| config | mIoU last / best | attribute | spatial | distractor | relational | '
        'paper rule | 3D precision | 3D recall | steps | train min | steps/s |',
        '|---|---|---|---|---|---|---|---|---|---|---|---|',
    ]
    for name in CONFIGS:
        record = records.get(name)
        if record is None:
            lines.append(f'| {name} | not run | | | | | | | | | | |')
            continue
        for stage in record['stages']:
            lines.append(_row(name, stage))
    pairs = None
    for record in records.values():
        last = record['stages'][0]['last']
        pairs = (last['pairs'], last.get('subset_pairs', {}))
        break
    if pairs:
        lines += ['', f'Test pairs: {pairs[0]} (view, expression) pairs; per subset: ' +
                  ', '.join(f'{k} {v}' for k, v in sorted(pairs[1].items())) + '.']
    lines += _split_table(records)
    lines += ['', '## Targets', '']
    full = records.get('full')
    base = records.get('baseline')
    pcmi = records.get('pcmi')
    naive = records.get('naive_attention')
    if full:
        stage = full['stages'][0]
        lines.append(f'- Full model trains in <= 5 min: {stage["wall_time_s"] / 60.0:.1f} min '
                     f'({"met" if stage["wall_time_s"] <= 300 else "missed"}); test mIoU >= 85: '
                     f'last {_pct(stage["last"]["miou"])}, best {_pct(stage["best"]["miou"])} '
                     f'({"met" if (stage["last"]["miou"] or 0) >= 0.85 else "missed"}).')
    if pcmi and base:
        a = pcmi['stages'][0]['last']['subsets'].get('spatial')
        b = base['stages'][0]['last']['subsets'].get('spatial')
        ar = pcmi['stages'][0]['last']['subsets'].get('relational')
        br = base['stages'][0]['last']['subsets'].get('relational')
        lines.append(f'- PCMI beats the baseline on the spatial subset: {_pct(a)} vs {_pct(b)} '
                     f'({"met" if (a or 0) > (b or 0) else "missed"}); relational: '
                     f'{_pct(ar)} vs {_pct(br)}.')
    if naive and base:
        a = naive['stages'][0]['last']['miou']
        b = base['stages'][0]['last']['miou']
        lines.append(f'- Naive attention does not beat the baseline: {_pct(a)} vs {_pct(b)} '
                     f'({"met" if (a or 0) <= (b or 0) else "missed"}).')
    seen = {name: r['stages'][0]['splits']['test-seen-wording'] for name, r in records.items()
            if 'splits' in r['stages'][0]}
    if seen:
        parts = [f'{name} {_pct(split["miou"])}' for name, split in seen.items()]
        lines.append('- Same checks with seen wording on the test views (mIoU): '
                     + ', '.join(parts) + '; spatial subset: ' + ', '.join(
                         f'{name} {_pct(split["subsets"].get("spatial"))}'
                         for name, split in seen.items()) + '.')
    lines += ['', '## Runs', '', '| config | load average at start | threads | finished |',
              '|---|---|---|---|']
    for name, record in records.items():
        lines.append(f'| {name} | {record["load_average_at_start"]:.2f} | '
                     f'{record["threads"] or "default"} | {record["finished"]} |')
    lines += ['', _notes(records)]
    path = args.report
    path.parent.mkdir(parents=True, exist_ok=True)
    text = '\n'.join(lines) + '\n'
    path.write_text(text + _other_sections(path, text))
    return path


def _other_sections(path: Path, generated: str) -> str:
    """``## `` sections of the existing report that this script does not write (other benches').

    A section starts at its heading, or at an ``<a id=...>`` anchor line right before it.
    """
    if not path.is_file():
        return ''
    old = path.read_text().split('\n')
    mine = {line for line in generated.split('\n') if line.startswith('## ')}
    kept, keep = [], False
    for index, line in enumerate(old):
        if line.startswith('<a id=') and index + 1 < len(old) and old[index + 1].startswith('## '):
            keep = old[index + 1] not in mine
        elif line.startswith('## ') and not (index and old[index - 1].startswith('<a id=')):
            keep = line not in mine
        if keep:
            kept.append(line)
    return ('\n' + '\n'.join(kept).rstrip() + '\n') if kept else ''


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--data', type=Path, default=REPO / 'scenes' / 'default')
    parser.add_argument('--out', type=Path, default=REPO / 'runs' / 'ablation')
    parser.add_argument('--report', type=Path, default=REPO / 'docs' / 'RESULTS.md')
    parser.add_argument('--configs', default=','.join(CONFIGS),
                        help='comma-separated subset of ' + ', '.join(CONFIGS))
    parser.add_argument('--steps', type=int, default=600,
                        help='fixed steps of every configuration (default 600)')
    parser.add_argument('--expressions-per-step', type=int, default=None)
    parser.add_argument('--seed', type=int, default=42)
    parser.add_argument('--num-threads', type=int, default=None, help='torch CPU threads')
    parser.add_argument('--force', action='store_true', help='re-run configs with a result')
    parser.add_argument('--report-only', action='store_true')
    parser.add_argument('--rescore', action='store_true',
                        help='add fit / seen-wording scores to existing results')
    parser.add_argument('--no-progress', action='store_true')
    args = parser.parse_args(argv)
    names = [n.strip() for n in args.configs.split(',') if n.strip()]
    unknown = [n for n in names if n not in CONFIGS]
    if unknown:
        parser.error(f'unknown configs {unknown}; choose from {list(CONFIGS)}')
    if not args.report_only:
        _ensure_scene(args.data)
        for name in names:
            result_path = args.out / name / 'result.json'
            if result_path.is_file() and not args.force:
                print(f'{name}: result exists, skipped')
                continue
            start = time.perf_counter()
            _run_config(name, CONFIGS[name], args)
            print(f'{name}: done in {time.perf_counter() - start:.0f} s', flush=True)
    if args.rescore:
        _rescore(args, names)
    records = {}
    for name in CONFIGS:
        path = args.out / name / 'result.json'
        if path.is_file():
            records[name] = json.loads(path.read_text())
    print(f'wrote {write_report(args, records)}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
