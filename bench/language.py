"""Language benchmark: whether the node understands what people say, not only its sentences.

A suite of generated Ref-Synth scenes (several seeds of the ``default`` layout and of the ``hard``
preset: same-category distractors, identical twins, stacked objects, a long shelf). For each
scene a referring field is trained with the default recipe, then every query is answered twice
from the same checkpoint: by the field alone (``grounding: field``, the paper's method: the
baseline row) and by the object graph (``grounding: graph``, the default). Queries:

- ``train``: the scene's training sentences (the 3D-target bar: >= 98 % right);
- ``held-out``: the generator's own held-out wording (other nouns, relation phrases, frames);
- the probes of ``bench/probes.py``, written in other structures than the training
  grammar: (a) ``paraphrase``, (b) ``structure``, (c) ``spatial`` (relations and ordinals in new
  words, reversed counting, between, superlatives), (e) ``negative`` (nothing fits: must be
  NO_MATCH), (f) ``negation`` (negation, "the only ...");
- ``written`` / ``written-negative``: commands written by hand from a scene's object list (as
  a person sees the table), without reading the parser, its word lists or the generators
  (``bench/commands/<preset>_s<seed>.json``, for the scenes that have one); a null target must be
  NO_MATCH;
- (d) ``names-only``: on the first ``--names-only-scenes`` scenes a second field is trained on
  the category names alone; the probes (a)-(c) are asked of it;
- ``plural`` / ``plural-negative``: targets that are several objects, generated from each
  scene's manifest (its objects' kinds and colours): "all the <kind>s", "every <kind>", "both
  <kind>s" (exactly two), "the <n> <kind>s", "the <n> <colour> <kind>s", "the <colour>
  <kind>s"; right iff the set of returned targets (``Grounding.targets``) is exactly the set
  of such objects. A stated count that is wrong ("the three <kind>s" with two here, "both
  <kind>s" with one or three) must be NO_MATCH (``plural-negative``). ``plural-written``: the
  hand-written plural commands of ``bench/commands/<scene>_plural.json``. Asked of the object
  graph only: the field and the nearest sentence name one object and cannot return a set.

Metrics: right object (3D: the published Gaussians are mostly the named object's, by the
generator's per-Gaussian object ids; AMBIGUOUS or NO_MATCH on a query that names one object is
wrong), Ref-LERF mIoU of the 2D masks in the test views where the object is annotated (the
field's rendered logits for the field; the published Gaussians for the graph), NO_MATCH rate on
(e), 95 % bootstrap intervals over queries, query time (median) and training time.

Prints the table and writes it to docs/RESULTS.md (section "Language"). Scenes and runs are kept
in ``--out`` and reused. Usage::

    python bench/language.py       # the full suite; a default scene trains in about 6 min here
    python bench/language.py --scenes default:0 --names-only-scenes 0 --no-write   # a look
    python bench/language.py --quantize int8   # the same queries with the int8 text encoder,
                                               # compared query by query with float32's run

With ``--quantize int8`` the per-scene results go to ``<scene>_int8.json`` beside float32's, and
the agreement (same status and same right/wrong per query, each grounding) with the float32
results of the same scenes is written to docs/BENCHMARKS.md (section "Text encoder: int8 on the
language benchmark") instead of the table to docs/RESULTS.md.
"""
import argparse
import datetime
import json
import os
from pathlib import Path
import platform
import sys
import time

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from report import write_section  # noqa: E402 (bench/ is the script's folder)

SECTION = 'Language'
SECTION_RECONSTRUCTED = 'Language: reconstructed scenes'
SUITE = ('default:0', 'hard:0', 'default:1', 'default:2', 'default:3', 'default:4',
         'default:5', 'hard:1')
BLIND_KINDS = ('blind-annotator', 'blind-spoken', 'blind-negative')
#: Targets that are several objects: asked of the object graph only (a set is the answer).
PLURAL_KINDS = ('plural', 'plural-written', 'plural-negative', 'blind-plural-annotator',
                'blind-plural-spoken', 'blind-plural-negative')
KINDS = ('train', 'held-out', 'paraphrase', 'structure', 'spatial', 'names-only', 'negative',
         'negation', 'written', 'written-negative') + BLIND_KINDS + PLURAL_KINDS
NEGATIVE_KINDS = ('negative', 'written-negative', 'blind-negative', 'plural-negative',
                  'blind-plural-negative')
#: Count words of the generated plural queries.
NUMBER_WORDS = {1: 'one', 2: 'two', 3: 'three', 4: 'four', 5: 'five', 6: 'six', 7: 'seven',
                8: 'eight', 9: 'nine', 10: 'ten'}
COMMANDS = Path(__file__).resolve().parent / 'commands'
#: Blind sets: written by someone who never read the parser, lexicon, grounding or generators,
#: committed before they were scored (bench/blind/README.md).
BLIND = Path(__file__).resolve().parent / 'blind'
#: field: the referring field alone (the paper); graph: the node's default (soft grounding);
#: nearest: the object of the nearest training sentence in MiniLM space (no reasoning at all).
MODES = ('field', 'graph', 'nearest')
#: Confidence bins of the reliability table.
BINS = ((0.0, 0.5), (0.5, 0.8), (0.8, 1.01))
MAX_STEPS = {'default': 600, 'hard': 1200}
NAMES_ONLY_STEPS = 300


def _train(data: Path, run: Path, seed: int, threads: int, max_steps: int, names_only=False):
    """Train (or resume) a run; return its stage and its training time in seconds.

    The time is the one the checkpoint records (all sessions of the run), so a run reused from
    ``--out`` reports how long it trained, not the seconds this call took.
    """
    from refersplat_ros.core.field.checkpoint import load_checkpoint
    from refersplat_ros.core.train.trainer import train, TrainConfig
    result = train(TrainConfig(data=data, out=run, seed=seed, num_threads=threads,
                               max_steps=max_steps, resume=True, progress=False,
                               names_only=names_only,
                               steps=NAMES_ONLY_STEPS if names_only else None))
    stage = result.stages[0]
    recorded = load_checkpoint(stage.last_checkpoint).extra.get('wall_time_s')
    return stage, float(recorded if recorded is not None else stage.wall_time_s)


def plural_queries(objects) -> list:
    """Plural queries from a manifest's objects: (kind, text, true categories or None).

    Per kind of object (its shape): "all the <kind>s", "every <kind>", "the <n> <kind>s",
    "both <kind>s" when there are two; per colour of that kind "the <colour> <kind>s" and, with
    two or more, "the <n> <colour> <kind>s". Negatives (NO_MATCH): "the <n+1> <kind>s", and
    "both <kind>s" when there are not two.
    """
    from refersplat_ros.core.language.parse import plural as plural_of
    kinds = {}
    for obj in objects:
        kinds.setdefault(obj['shape'], []).append(obj)
    queries = []
    for shape, members in sorted(kinds.items()):
        names, plural, n = sorted(o['category'] for o in members), plural_of(shape), len(members)
        queries += [('plural', f'all the {plural}', names), ('plural', f'every {shape}', names)]
        if n >= 2:
            queries.append(('plural', f'the {NUMBER_WORDS[n]} {plural}', names))
        if n == 2:
            queries.append(('plural', f'both {plural}', names))
        else:
            queries.append(('plural-negative', f'both {plural}', None))
        if n + 1 in NUMBER_WORDS:
            queries.append(('plural-negative', f'the {NUMBER_WORDS[n + 1]} {plural}', None))
        colours = {}
        for obj in members:
            colours.setdefault(obj['colour'], []).append(obj['category'])
        for colour, group in sorted(colours.items()):
            queries.append(('plural', f'the {colour} {plural}', sorted(group)))
            if len(group) >= 2:
                queries.append(('plural', f'the {NUMBER_WORDS[len(group)]} {colour} {plural}',
                                sorted(group)))
    return queries


class _Scorer:
    """Answers and scores queries on one scene with one checkpoint, in both modes."""

    def __init__(self, dataset, checkpoint_path, encoder, names_only=False):
        import torch

        from refersplat_ros.core.field.checkpoint import load_checkpoint
        from refersplat_ros.core.inference.model import ReferringModel
        from refersplat_ros.core.labels.objects import lift_objects, names_only as strip
        from refersplat_ros.core.language.ground import GroundingConfig
        from refersplat_ros.core.render.compositing import ViewWeights
        from refersplat_ros.core.scene.gaussian_io import load_scene

        self.dataset = dataset
        scene = load_scene(dataset.scene_path)
        checkpoint = load_checkpoint(checkpoint_path, means=scene.means)
        self.weights = ViewWeights(scene, torch.device('cpu'), 2 * 1024 ** 3)
        objects = checkpoint.objects
        if objects is None:  # a run written before objects were saved: lift them here
            objects = lift_objects(dataset, self.weights)
        if names_only:
            objects = strip(objects)
        field = checkpoint.build_field(scene.means)
        self.model = ReferringModel(scene, field, encoder, None,
                                    None if checkpoint.visibility is None
                                    else checkpoint.visibility.numpy(), objects,
                                    GroundingConfig())
        self.ids = dataset.object_ids().numpy()
        self.means = scene.means.numpy()
        self._masks = {}
        self.category_ids = dataset.category_ids()
        self.test_views = dataset.test_views
        self.confidence = 0.0  # of the last answer

    def answer(self, text: str, mode: str, target):
        """Return (right, IoU per test view, ms, status name) of one query.

        Right and IoU are the evaluator's rules (``target_metrics``, ``mask_iou``); the masks are
        the field's rendered response for the field, the published Gaussians for the graph.
        """
        from refersplat_ros.core.evaluate.metrics import mask_iou, target_metrics
        from refersplat_ros.core.field.masks import predicted_mask
        from refersplat_ros.core.inference.model import target_logits
        from refersplat_ros.core.language.ground import GroundingConfig
        if mode == 'nearest':
            return self._nearest(text, target)
        self.model.set_grounding(GroundingConfig(grounding=mode))
        start = time.perf_counter()
        outcome = self.model.query(text)
        ms = (time.perf_counter() - start) * 1e3
        status = outcome.status.name
        self.confidence = float(outcome.confidence)
        if target is None:
            return status == 'NO_MATCH', [], ms, status
        empty = np.zeros(0, np.int64)
        published = outcome.selection.indices if status in ('OK', 'AMBIGUOUS') else empty
        ok = status == 'OK'  # AMBIGUOUS on a query that names one object counts as wrong
        right = target_metrics(published if ok else empty,
                               outcome.selection.best.centroid if ok else None, self.ids,
                               self.means, self.category_ids[target]).right_object == 1.0
        logits = (self.model.response(text) if mode == 'field'
                  else target_logits(self.model.num_gaussians, published))
        ious = []
        for view, truth in self._truth(target):
            weights = self.weights.get(view.camera)
            rendered = weights.render(logits.reshape(-1, 1).float())[0]
            iou = mask_iou(predicted_mask(rendered, weights.alpha).numpy(), truth)
            if iou is not None:
                ious.append(iou)
        return right, ious, ms, status

    def answer_set(self, text: str, targets):
        """Return (right, [], ms, status) of a plural query asked of the object graph.

        Right: OK with exactly the set ``targets`` (categories) as ``Grounding.targets``, or
        NO_MATCH when ``targets`` is None (a count that does not hold).
        """
        import torch

        from refersplat_ros.core.language.ground import GroundingConfig
        self.model.set_grounding(GroundingConfig(grounding='graph'))
        start = time.perf_counter()
        with torch.no_grad():
            words = self.model.encoder.encode(text)
            field = self.model.object_field(words)
        grounded = self.model.grounder.ground(text, None, field)
        ms = (time.perf_counter() - start) * 1e3
        status = grounded.status.upper()
        self.confidence = float(grounded.confidence)
        if targets is None:
            return status == 'NO_MATCH', [], ms, status
        objects = self.model.grounder.graph.objects
        found = {objects[k].name for k, _ in grounded.targets}
        return status == 'OK' and found == set(targets), [], ms, status

    def _nearest(self, text: str, target):
        """Answer as the nearest-training-sentence baseline: its object, never NO_MATCH."""
        start = time.perf_counter()
        sims = self.model.grounder.sentence_similarity(text)
        best = int(np.argmax(sims))
        ms = (time.perf_counter() - start) * 1e3
        self.confidence = float(sims[best])
        name = self.model.grounder.graph.objects[best].name
        return (target is not None and name == target), [], ms, 'OK'

    def _truth(self, target):
        """(test view, GT mask) of every test view that annotates ``target`` (read once)."""
        if target not in self._masks:
            self._masks[target] = [
                (view, view.load_mask(annotation).numpy()) for view in self.test_views
                for annotation in view.annotations if annotation.category == target]
        return self._masks[target]


def run_scene(spec: str, out: Path, threads: int, names_only: bool, encoder,
              reconstructed: bool = False, kinds=None) -> dict:
    from probes import generate_probes  # bench/ is the script's folder
    from refersplat_ros.core.datasets.ref_synth.generator import (generate_scene, make_scene,
                                                                  preset_config)
    from refersplat_ros.core.datasets.reflerf.loader import load_referring_dataset

    from dataclasses import replace

    from refersplat_ros.core.datasets.ref_synth.reconstructed import CaptureConfig

    preset, seed = spec.split(':')
    seed = int(seed)
    name = f'{preset}_s{seed}' + ('_rec' if reconstructed else '')
    data, run = out / name, out / f'{name}_run'
    config = preset_config(preset, seed=seed)
    if not (data / 'manifest.json').is_file():
        make_scene(replace(config, capture=CaptureConfig()) if reconstructed else config, data,
                   overwrite=True, progress=False, contact_sheet=False)
    stage, train_s = _train(data, run, seed, threads, MAX_STEPS[preset])
    dataset = load_referring_dataset(data)
    generated = generate_scene(config)
    queries = []  # (kind, text, target category or None)
    for e in generated.expressions:
        queries.append(('train' if e.split == 'train' else 'held-out', e.sentence, e.category))
    probes = generate_probes(generated, seed)
    queries += [(p.kind, p.text, p.target) for p in probes]
    written = COMMANDS / f'{preset}_s{seed}.json'
    if written.is_file():
        for command in json.loads(written.read_text())['commands']:
            kind = 'written' if command['target'] else 'written-negative'
            queries.append((kind, command['text'], command['target']))
    blind = BLIND / f'{preset}_s{seed}.json'
    if blind.is_file():
        for command in json.loads(blind.read_text())['commands']:
            kind = 'blind-negative' if command['target'] is None else f"blind-{command['kind']}"
            queries.append((kind, command['text'], command['target']))
    queries += plural_queries(json.loads((data / 'manifest.json').read_text())['objects'])
    written = COMMANDS / f'{preset}_s{seed}_plural.json'
    if written.is_file() and not reconstructed:
        for command in json.loads(written.read_text())['commands']:
            kind = 'plural-written' if command['targets'] else 'plural-negative'
            queries.append((kind, command['text'], command['targets']))
    blind = BLIND / 'plural' / f'{preset}_s{seed}.json'  # blind plural sets (README there)
    if blind.is_file() and not reconstructed:
        for command in json.loads(blind.read_text())['commands']:
            kind = ('blind-plural-negative' if command['targets'] is None
                    else f"blind-plural-{command['kind']}")
            queries.append((kind, command['text'], command['targets']))
    if kinds:
        queries = [q for q in queries if q[0] in kinds]
    scorer = _Scorer(dataset, stage.last_checkpoint, encoder)
    records = []
    for kind, text, target in queries:
        for mode in (('graph',) if kind in PLURAL_KINDS else MODES):
            right, ious, ms, status = (scorer.answer_set(text, target) if kind in PLURAL_KINDS
                                       else scorer.answer(text, mode, target))
            records.append({'kind': kind, 'mode': mode, 'text': text, 'target': target,
                            'right': right, 'ious': ious, 'ms': ms, 'status': status,
                            'confidence': scorer.confidence})
    names_s = None
    if names_only and (not kinds or 'names-only' in kinds):
        names_stage, names_s = _train(data, out / f'{preset}_s{seed}_names_run', seed, threads,
                                      NAMES_ONLY_STEPS, names_only=True)
        names_scorer = _Scorer(dataset, names_stage.last_checkpoint, encoder, names_only=True)
        for p in probes:
            if p.kind in ('paraphrase', 'structure', 'spatial'):
                for mode in MODES:
                    right, ious, ms, status = names_scorer.answer(p.text, mode, p.target)
                    records.append({'kind': 'names-only', 'mode': mode, 'text': p.text,
                                    'target': p.target, 'right': right, 'ious': ious,
                                    'ms': ms, 'status': status})
    return {'scene': spec, 'objects': len(dataset.categories), 'steps': stage.steps,
            'train_min': train_s / 60.0, 'names_only_min': (names_s or 0) / 60.0,
            'records': records}


def bootstrap(values, rng, samples: int = 1000):
    """95 % percentile bootstrap interval of a mean."""
    values = np.asarray(values, np.float64)
    if len(values) == 0:
        return float('nan'), float('nan')
    means = values[rng.integers(0, len(values), (samples, len(values)))].mean(axis=1)
    return float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))


def summarise(rows: list) -> list:
    rng = np.random.default_rng(0)
    records = [r for row in rows for r in row['records']]
    lines = []
    for kind in KINDS + ('all held-out', 'all blind'):
        for mode in MODES:
            if kind == 'all held-out':  # the Ref-Synth suite: generated and hand-written
                chosen = [r for r in records if r['mode'] == mode and r['kind'] not in
                          ('train',) + NEGATIVE_KINDS + BLIND_KINDS + PLURAL_KINDS]
            elif kind == 'all blind':  # the blind sets' positives
                chosen = [r for r in records if r['mode'] == mode and r['kind'] in BLIND_KINDS
                          and r['kind'] not in NEGATIVE_KINDS]
            else:
                chosen = [r for r in records if r['kind'] == kind and r['mode'] == mode]
            if not chosen:
                continue
            right = [float(r['right']) for r in chosen]
            ious = [float(np.mean(r['ious'])) for r in chosen if r['ious']]
            low, high = bootstrap(right, rng)
            lines.append({'kind': kind, 'mode': mode, 'queries': len(chosen),
                          'right': float(np.mean(right)), 'low': low, 'high': high,
                          'miou': float(np.mean(ious)) if ious else float('nan'),
                          'ambiguous': float(np.mean([r['status'] == 'AMBIGUOUS'
                                                      for r in chosen])),
                          'ms': float(np.median([r['ms'] for r in chosen]))})
    return lines


def reliability(rows: list, kinds, mode: str = 'graph') -> str:
    """Table: answers per confidence bin and how often they were right (the calibration)."""
    records = [r for row in rows for r in row['records']
               if r['mode'] == mode and r['kind'] in kinds and 'confidence' in r]
    out = ['| confidence | answers | right % |', '|---|---|---|']
    for low, high in BINS:
        chosen = [r for r in records if low <= r['confidence'] < high]
        right = f"{100 * np.mean([r['right'] for r in chosen]):.1f}" if chosen else 'n/a'
        out.append(f'| {low:.1f}-{min(high, 1.0):.1f} | {len(chosen)} | {right} |')
    return '\n'.join(out)


def table(lines: list) -> str:
    head = ['queries', 'grounding', 'n', 'right object % (95 % CI)', 'mIoU 2D', 'AMBIGUOUS %',
            'query ms (median)']
    out = ['| ' + ' | '.join(head) + ' |', '|' + '---|' * len(head)]
    for line in lines:
        miou = 'n/a' if np.isnan(line['miou']) else f'{100 * line["miou"]:.1f}'
        label = line['kind'] + (' (NO_MATCH %)' if line['kind'] in NEGATIVE_KINDS else '')
        out.append(f"| {label} | {line['mode']} | {line['queries']} | "
                   f"{100 * line['right']:.1f} ({100 * line['low']:.1f}-{100 * line['high']:.1f})"
                   f" | {miou} | {100 * line['ambiguous']:.1f} | {line['ms']:.1f} |")
    return '\n'.join(out)


def _compare_reconstructed(args, encoder) -> int:
    """Score each scene with true Gaussians and made a capture, the kinds side by side.

    Graph and field, with the reconstructions' PSNR and time.
    """
    import torch

    sides = {}
    for reconstructed in (False, True):
        rows = []
        for spec in args.scenes:
            name = spec.replace(':', '_s') + ('_rec' if reconstructed else '')
            row = run_scene(spec, args.out, args.num_threads, False, encoder, reconstructed)
            manifest = json.loads((args.out / name / 'manifest.json').read_text())
            row['reconstruction'] = {k: v for k, v in manifest.get('reconstruction', {}).items()
                                     if k != 'history'}
            row['num_gaussians'] = manifest['num_gaussians']
            (args.out / f'{name}.json').write_text(json.dumps(row, indent=1))
            rows.append(row)
            print(f"{name}: {row['objects']} objects, {row['steps']} steps", flush=True)
        sides[reconstructed] = {(line['kind'], line['mode']): line for line in summarise(rows)}
        sides[reconstructed, 'rows'] = rows
    head = ['queries', 'n', 'graph, true %', 'graph, reconstructed %', 'field, true %',
            'field, reconstructed %']
    out = ['| ' + ' | '.join(head) + ' |', '|' + '---|' * len(head)]
    for kind in KINDS + ('all held-out',):
        if (kind, 'graph') not in sides[False] or (kind, 'graph') not in sides[True]:
            continue

        def cell(side, mode):
            line = sides[side].get((kind, mode))
            return 'n/a' if line is None else (
                f"{100 * line['right']:.1f} ({100 * line['low']:.1f}-{100 * line['high']:.1f})")
        label = kind + (' (NO_MATCH %)' if kind in NEGATIVE_KINDS else '')
        out.append(f"| {label} | {sides[False][kind, 'graph']['queries']} | "
                   f"{cell(False, 'graph')} | {cell(True, 'graph')} | {cell(False, 'field')} | "
                   f"{cell(True, 'field')} |")
    recs = [row['reconstruction'] for row in sides[True, 'rows']]
    scenes = '\n'.join(
        f"| {spec} | {rec['true_num_gaussians']:,} | {row['num_gaussians']:,} "
        f"| {rec['psnr_test']:.2f} | {rec['seconds'] / 60:.1f} | {rec['floaters']:,} |"
        for spec, rec, row in zip(args.scenes, recs, sides[True, 'rows']))
    text = (
        f'## {SECTION_RECONSTRUCTED}\n\n`python bench/language.py --reconstructed --scenes '
        f'{" ".join(args.scenes)}` on {datetime.date.today().isoformat()}: '
        f'{platform.machine()}, {os.cpu_count()} CPU cores, torch {torch.__version__}. Each '
        'scene twice: with its true Gaussians and made a capture (`make-scene --reconstructed`, '
        'docs/RECONSTRUCT.md: Gaussians fitted to the training images, ids from the true '
        'surface); fields trained the same way on both; the same queries as the suite. Right '
        "object counts a published target whose Gaussians are mostly the named object's "
        '(floaters count as background).\n\n'
        '| scene | true Gaussians | fitted Gaussians | held-out PSNR dB | reconstruction min | '
        'floaters |\n|---|---|---|---|---|---|\n' + scenes + '\n\n' + '\n'.join(out) + '\n')
    print(text)
    if not args.no_write:
        write_section(text, args.report, SECTION_RECONSTRUCTED)
    return 0


def _compare_quantized(args, rows: list, suffix: str) -> int:
    """Print (and write) how the quantized encoder's answers compare with float32's."""
    import torch
    reference = {}
    for row in rows:
        path = args.out / f"{row['scene'].replace(':', '_s')}.json"
        if not path.is_file():
            raise SystemExit(f'no float32 results for {row["scene"]} ({path}): run '
                             'bench/language.py without --quantize first')
        for r in json.loads(path.read_text())['records']:
            reference[(row['scene'], r['kind'], r['mode'], r['text'])] = r
    lines = ['| queries | grounding | n | right % float32 | right % ' + suffix[1:] +
             ' | same status and same right/wrong % | mIoU float32 | mIoU ' + suffix[1:] + ' |',
             '|---|---|---|---|---|---|---|---|']
    for kind in KINDS:
        for mode in MODES:
            pairs = [(reference[(row['scene'], r['kind'], r['mode'], r['text'])], r)
                     for row in rows for r in row['records']
                     if r['kind'] == kind and r['mode'] == mode
                     and (row['scene'], r['kind'], r['mode'], r['text']) in reference]
            if not pairs:
                continue
            same = np.mean([a['status'] == b['status'] and a['right'] == b['right']
                            for a, b in pairs])
            miou = [np.mean([np.mean(x['ious']) for x in side if x['ious']] or [np.nan])
                    for side in zip(*pairs)]
            lines.append(f'| {kind} | {mode} | {len(pairs)} | '
                         f"{100 * np.mean([a['right'] for a, _ in pairs]):.1f} | "
                         f"{100 * np.mean([b['right'] for _, b in pairs]):.1f} | "
                         f'{100 * same:.1f} | {100 * miou[0]:.1f} | {100 * miou[1]:.1f} |')
    text = (f'## Text encoder: {suffix[1:]} on the language benchmark\n\n'
            f'`python bench/language.py --quantize {suffix[1:]}` on '
            f'{datetime.date.today().isoformat()} ({platform.machine()}, {os.cpu_count()} '
            f'CPU cores, torch {torch.__version__}): the queries of docs/RESULTS.md#language '
            f'({", ".join(r["scene"] for r in rows)}) answered from the same checkpoints with '
            f'the {suffix[1:]} encoder, compared query by query with the float32 results.\n\n'
            + '\n'.join(lines) + '\n')
    print(text)
    if not args.no_write:
        write_section(text, ROOT / 'docs' / 'BENCHMARKS.md',
                      f'Text encoder: {suffix[1:]} on the language benchmark')
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--scenes', nargs='+', default=list(SUITE),
                        help='preset:seed of each scene (default: the suite of 8)')
    parser.add_argument('--names-only-scenes', type=int, default=3,
                        help='how many of the scenes (first ones) also get a names-only field')
    parser.add_argument('--out', type=Path, default=ROOT / 'runs' / 'language')
    parser.add_argument('--num-threads', type=int, default=os.cpu_count() or 1)
    parser.add_argument('--report', type=Path, default=ROOT / 'docs' / 'RESULTS.md')
    parser.add_argument('--no-write', action='store_true')
    parser.add_argument('--kinds', nargs='+', choices=KINDS, default=None,
                        help='ask only these kinds of queries (a look: the per-scene results '
                             'and the report are not written)')
    parser.add_argument('--quantize', choices=('none', 'int8'), default='none',
                        help='text encoder weights (int8: compared with the float32 results)')
    parser.add_argument('--reconstructed', action='store_true',
                        help='the scenes made captures (make-scene --reconstructed), scored '
                             'beside the same scenes with true Gaussians (section "Language: '
                             'reconstructed scenes")')
    args = parser.parse_args(argv)
    import torch

    from refersplat_ros.core.text.encoder import load_text_encoder, TextEncoderConfig
    torch.set_num_threads(args.num_threads)
    encoder = load_text_encoder(TextEncoderConfig(quantize=args.quantize), torch.device('cpu'))
    suffix = '' if args.quantize == 'none' else f'_{args.quantize}'
    args.out.mkdir(parents=True, exist_ok=True)
    if args.reconstructed:
        return _compare_reconstructed(args, encoder)
    rows = []
    for index, spec in enumerate(args.scenes):
        cached = args.out / f"{spec.replace(':', '_s')}{suffix}.json"
        row = run_scene(spec, args.out, args.num_threads, index < args.names_only_scenes,
                        encoder, kinds=args.kinds)
        if args.kinds:
            args.no_write = True  # a part of the queries: the full results stay as they are
        else:
            cached.write_text(json.dumps(row, indent=1))
        rows.append(row)
        print(f"{spec}: {row['objects']} objects, {row['steps']} steps, "
              f"{row['train_min']:.1f} min", flush=True)
    if suffix:
        return _compare_quantized(args, rows, suffix)
    lines = summarise(rows)
    text = table(lines)
    blind = [k for k in BLIND_KINDS if any(r['kind'] == k for row in rows for r in row['records'])]
    text += ("\n\nReliability of the object graph's confidence (every answer, NO_MATCH included: "
             'right = the named object, or NO_MATCH on a negative), Ref-Synth suite:\n\n'
             + reliability(rows, [k for k in KINDS if k not in BLIND_KINDS and k != 'train']))
    if blind:
        text += '\n\nBlind sets:\n\n' + reliability(rows, blind)
    print(text)
    queries = sum(1 for row in rows for r in row['records'] if r['mode'] == 'graph')
    header = (
        f'## {SECTION}\n\n`python bench/language.py` on {datetime.date.today().isoformat()}: '
        f'{platform.machine()}, {os.cpu_count()} CPU cores, torch {torch.__version__}. '
        f'{len(rows)} Ref-Synth scenes ({", ".join(args.scenes)}; '
        f'{min(r["objects"] for r in rows)}-{max(r["objects"] for r in rows)} objects), '
        f'{queries} queries, each answered from the same checkpoint by the field alone '
        f'(`grounding: field`, the paper) and by the object graph (`grounding: graph`, the '
        f'default). Query time is `ReferringModel.query` in this process (no ROS), with the '
        "encoder's sentence cache (each query is asked of the field first, so the graph's "
        'encoding is cached; uncached times: docs/LANGUAGE.md#cost-measured). Training '
        '(recorded in the checkpoints, loop time): '
        f'{sum(r["train_min"] for r in rows):.1f} min for the fields, '
        f'{sum(r["names_only_min"] for r in rows):.1f} min for the names-only fields '
        f'({args.names_only_scenes} scenes, {NAMES_ONLY_STEPS} steps). Right object = the '
        "published Gaussians are mostly the named object's (AMBIGUOUS or NO_MATCH on a query "
        'naming one object counts as wrong); negative, written-negative = NO_MATCH rate on '
        'queries naming nothing in the scene; written = commands written by hand for 3 of the '
        'scenes (bench/commands/); "all held-out" = every query but the training sentences and '
        'the negatives. What the kinds are: docs/LANGUAGE.md#benchmark.\n\n')
    if not args.no_write:
        write_section(header + text, args.report, SECTION)
        (args.out / 'summary.json').write_text(json.dumps(lines, indent=1))
    return 0


if __name__ == '__main__':
    sys.exit(main())
