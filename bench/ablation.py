#!/usr/bin/env python3
"""ReferSplat ablation on the default Ref-SYNTH scene; writes docs/RESULTS.md.

Configurations (REFERSPLAT.md §8.2, Tab. 1 and Tab. 4):

==================  ====================================================================
baseline            referring field + m_i + BCE (no PCMI, no GTCL)
pcmi                + PCMI (official-code form, §4.4)
gtcl                + GTCL (lambda 0.02, fixed top-tau, §4.8)
full                PCMI + GTCL (ReferSplat)
full_two_stage      full, then stage-2 refinement on its own predictions (§5)
naive_attention     cross-attention without position terms, no GTCL (compare with baseline)
==================  ====================================================================

Every configuration trains with the same seed and the documented Ref-Synth defaults
(``training.REF_SYNTH_STEPS`` steps of ``REF_SYNTH_EXPRESSIONS_PER_STEP`` expressions), then every
checkpoint is evaluated with the Ref-LERF protocol (``evaluation.py``): mIoU of the last and of
the best checkpoint, per subset, 3D precision / recall of the selected Gaussians. Each
configuration's numbers are stored in ``OUT/<name>/result.json``; a configuration whose result
exists is not re-run (``--force`` re-runs), so two processes can split the list (``--configs``)
and ``--report-only`` writes the table from what exists.

Usage (make target suggestion: ``make ablation``)::

    python bench/ablation.py                       # everything, ~35 min on 2 CPU cores
    python bench/ablation.py --configs full,baseline --threads 1
    python bench/ablation.py --report-only
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
# Measurements behind the analysis (session of 2026-11-25, same machine, shared with other jobs).
NOTES = '''
## What limits the numbers

- **Adam steps, not data.** With the §5 recipe (zero-initialised 16-d features at lr 0.0025,
  networks at lr 1e-4) a feature moves at most about lr per step, and the field learns the
  objects one at a time: the first ~400 steps only push every logit below 0 (all background),
  then objects "switch on". After 600 steps the full model has learned only the largest unique
  object of the default scene (yellow box, IoU 92-95 % in every test view) and none of the six
  others. The same recipe reaches 85-89 % test mIoU after 300 steps on the 1.4k-Gaussian
  two-object test scene (test/tiny_referring.py), and the tiny Ref-Synth preset (4 objects)
  starts to take off only after ~900 steps (31 % at step 900). The paper trains 45k steps.
- **Cost per step.** At 31k Gaussians one full-model step (4 expressions) costs about 0.5 s on
  one core: the query-independent part (MLP2 and MLP3 over all N Gaussians, the N x 128 x 128
  query and position projections of PCMI, and their backward) is ~0.4 s of it (matrix products
  are 44 % of the profile); each extra expression of the same view adds ~0.045 s, so 4
  expressions per step cost about the same as 1. Without PCMI a step is ~6x cheaper (6-7 steps/s).
  A 5-minute budget therefore buys ~600 full-model steps, far from the thousands of steps the
  default scene needs at these learning rates; hitting >= 85 mIoU in 5 min would need a GPU or
  a recipe change (learning rates, initialisation), which is out of scope (method kept as §5).
- **Shared CPU.** Other jobs ran on the 2 cores during these runs (load average 3-6). Under that
  load one torch thread was ~5x faster per step than two (OpenMP threads waiting on each other),
  hence `--threads 1`; wall times above are therefore pessimistic. Measured again on the idle
  machine after the runs: a full-model step of the default scene takes 0.38 s with 2 threads
  (0.45 s with 1), so the 600-step default trains in about 4 min (plus ~4 s of compositing
  weights): the 5-minute time target holds on an idle 2-core machine, the mIoU target does not.
- **Reading the ablation.** All six runs are in this step-limited regime, so the table says
  little about the paper's claims: within 600 steps the attention-based fields (PCMI, naive
  attention) learn their first object while the fields without attention (baseline, +GTCL) have
  not yet moved any logit above 0; no configuration has learned a spatial or distractor
  expression yet. The spatial / naive-vs-baseline targets need a schedule long enough for the
  baseline to learn (`--steps`), which did not fit in this session's CPU time. Without PCMI a
  step is ~6x cheaper, so at equal wall time the baseline would get ~6x more steps. Stage 1 of
  `full_two_stage` reproduces `full` exactly (same seed: identical losses and scores), and stage 2
  re-trains on pseudo masks rendered by that 13 % field, so it cannot gain here (Ref-Synth's
  training masks are exact; the paper's stage 2 refines noisy Grounded-SAM masks).
- **Held-out wording.** Ref-Synth test expressions use a disjoint vocabulary ("carton" for "box",
  "basin" for "bowl", "on the right side of" for "right of"), so test mIoU measures
  generalisation through the frozen MiniLM encoder, as in Ref-LERF.
- **Empty pixels.** The literal M >= 0 rule scores near 0 on Ref-Synth because uncovered pixels
  render M = 0 (no background term, §4.6); LERF views are fully covered, so both rules agree there.

## Test helper for integration tests

`refersplat_ros.core.training.make_trained_scene(out_dir)` generates the tiny Ref-Synth preset and
trains 500 steps with the bundled MiniLM and the objects' category names as extra expressions:
85 s on the shared 2 cores (6.4 steps/s); afterwards every category-name query ("black ball",
"white plate", ...) selects its object (3D precision 0.70-0.99, recall 0.83-0.99) and the
open-vocabulary test mIoU is 86.6 %. The tiny preset's held-out referring expressions are not
learned in that budget (0 %).

## Reproduce

    python bench/ablation.py                    # all configurations, then this file
    python bench/ablation.py --steps 3000       # a longer schedule (same defaults otherwise)
    refersplat eval --run runs/ablation/full    # per-expression CSV and overlays
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
    from refersplat_ros.core.datasets.ref_synth import make_scene, preset_config
    print(f'generating the default Ref-Synth scene into {data}')
    make_scene(preset_config('default'), data, overwrite=True, progress=False)


def _run_config(name: str, spec: dict, args) -> dict:
    from refersplat_ros.core.evaluation import EvalConfig, evaluate_run
    from refersplat_ros.core.losses import ReferSplatLossConfig
    from refersplat_ros.core.referring_field import ReferringFieldConfig
    from refersplat_ros.core.training import TrainConfig, train

    out = args.out / name
    config = TrainConfig(
        data=args.data, out=out, steps=args.steps, seed=args.seed,
        expressions_per_step=args.expressions_per_step, num_threads=args.threads,
        field=ReferringFieldConfig(use_pcmi=spec['use_pcmi'],
                                   naive_attention=spec.get('naive', False)),
        loss=ReferSplatLossConfig(use_gtcl=spec['use_gtcl']), stage=spec.get('stage', 1),
        resume=not args.force, progress=not args.no_progress)
    load = os.getloadavg()[0]
    result = train(config)
    evaluation = evaluate_run(EvalConfig(run=out, progress=False, overlays=True))
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
    record = {'name': name, 'spec': spec, 'load_average_at_start': load,
              'threads': args.threads,
              'expressions_per_step': json.loads((out / 'config.json').read_text())[
                  'expressions_per_step'], 'stages': stages,
              'finished': datetime.datetime.now().isoformat(timespec='seconds')}
    (out / 'result.json').write_text(json.dumps(record, indent=1, default=_nan_none))
    return record


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


def write_report(args, records: dict) -> Path:
    from refersplat_ros.core.training import REF_SYNTH_EXPRESSIONS_PER_STEP, REF_SYNTH_STEPS

    machine = _machine()
    lines = [
        '# Results: ReferSplat ablation on the default Ref-Synth scene', '',
        f'Generated by `python bench/ablation.py` on {datetime.date.today().isoformat()}. '
        'Machine: ' + f'{machine["cpu"]}, {machine["cores"]} cores, torch {machine["torch"]}, '
        f'Python {machine["python"]}, CUDA {"yes" if machine["cuda"] else "no"}. '
        'The CPU was shared with other jobs while these runs trained (load average at the '
        'start of each run in the last table), so times are upper bounds.', '',
        f'Scene: `{args.data}` (Ref-Synth `default` preset: 7 objects, 31k Gaussians, 26 train / '
        '6 test views at 160x120, 28 train expressions and 1 held-out test expression per '
        'object, test wording disjoint from training wording). '
        f'Recipe: {REF_SYNTH_STEPS} steps of {REF_SYNTH_EXPRESSIONS_PER_STEP} expressions '
        '(Ref-Synth defaults of `TrainConfig`), lr 0.0025 / 1e-4, Adam eps 1e-15, lambda 0.02, '
        'tau period 1000, seed 42; checkpoints every steps / 10.', '',
        'mIoU (%) with the Ref-LERF protocol (REFERSPLAT.md §6), shown as **last / best** '
        'checkpoint. Uncovered pixels count as background (`empty_pixels=background`); the '
        '"paper rule" column applies M >= 0 literally to every pixel of the last checkpoint, '
        'which marks the empty sky (about 45 % of each view) as foreground. 3D precision / '
        'recall: Gaussians with sigmoid(m) >= 0.5 for each test expression vs the object ids '
        '(last checkpoint, mean over the 7 test expressions). Subsets: expression types of '
        'Ref-Synth; `relational` = any expression built on a relation or an ordinal.', '',
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
    lines += ['', '## Runs', '', '| config | load average at start | threads | finished |',
              '|---|---|---|---|']
    for name, record in records.items():
        lines.append(f'| {name} | {record["load_average_at_start"]:.2f} | '
                     f'{record["threads"] or "default"} | {record["finished"]} |')
    lines += ['', NOTES.strip()]
    path = args.report
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text('\n'.join(lines) + '\n')
    return path


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--data', type=Path, default=REPO / 'scenes' / 'default')
    parser.add_argument('--out', type=Path, default=REPO / 'runs' / 'ablation')
    parser.add_argument('--report', type=Path, default=REPO / 'docs' / 'RESULTS.md')
    parser.add_argument('--configs', default=','.join(CONFIGS),
                        help='comma-separated subset of ' + ', '.join(CONFIGS))
    parser.add_argument('--steps', type=int, default=None, help='default: Ref-Synth default')
    parser.add_argument('--expressions-per-step', type=int, default=None)
    parser.add_argument('--seed', type=int, default=42)
    parser.add_argument('--threads', type=int, default=None, help='torch CPU threads')
    parser.add_argument('--force', action='store_true', help='re-run configs with a result')
    parser.add_argument('--report-only', action='store_true')
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
    records = {}
    for name in CONFIGS:
        path = args.out / name / 'result.json'
        if path.is_file():
            records[name] = json.loads(path.read_text())
    print(f'wrote {write_report(args, records)}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
