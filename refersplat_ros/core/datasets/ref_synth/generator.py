"""Ref-Synth: a procedural referring benchmark with exact ground truth, in the Ref-LERF layout.

One call, :func:`make_scene`, builds a seeded tabletop scene (``scene.py``), its referring
expressions (``expressions.py``), a camera rig (``cameras.py``), renders RGB images and
per-object masks with the project rasterizer (``ground_truth.py``) and writes everything as a
Ref-LERF scene folder (docs/METHOD.md#data-layout and #annotation-json) plus a manifest::

    images/frame_XXXXX.png            RGB renders
    sparse/0/{cameras,images,points3D}.txt
    json/frame_XXXXX.json             train frames: 4 train sentences per visible object;
                                      test frames: the held-out test sentence
    gt_mask/frame_XXXXX/<category>.png
    point_cloud.ply                   the scene's Gaussians (INRIA 3DGS format)
    object_ids.npy                    [N] int32 per-Gaussian object id (0 table/background)
    manifest.json                     split, objects, expressions (with type), config;
                                      hard presets: per object also size class, footprint,
                                      on_top_of and identical twins (scene.object_facts)
    contact_sheet.png                 a picture for people (optional)

Everything is a deterministic function of the configuration (seed included).
"""
from dataclasses import asdict, dataclass, field, replace
import logging
import math
from pathlib import Path
import shutil
from typing import Dict, List, Optional

import numpy as np
import torch

from refersplat_ros.core.datasets.ref_synth.cameras import (CameraRigConfig, frame_name,
                                                            ring_cameras)
from refersplat_ros.core.datasets.ref_synth.expressions import (Expression, ExpressionConfig,
                                                                generate_expressions,
                                                                MultiAnchorConfig, TEST, TRAIN)
from refersplat_ros.core.datasets.ref_synth.ground_truth import render_ground_truth
from refersplat_ros.core.datasets.ref_synth.reconstructed import (CaptureConfig, seen_counts,
                                                                  sfm_points)
from refersplat_ros.core.datasets.ref_synth.scene import (build_gaussians, ClutterSpec,
                                                          GaussianConfig, LayoutConfig,
                                                          object_facts, sample_layout, SceneObject,
                                                          SynthGaussians, TableSpec)
from refersplat_ros.core.datasets.reflerf.layout import (CONTACT_SHEET_NAME, frame_json,
                                                         MANIFEST_NAME, mask_relpath,
                                                         OBJECT_IDS_NAME, POINT_CLOUD_NAME,
                                                         REF_SYNTH_FORMAT, split_frames,
                                                         write_image_png, write_json,
                                                         write_mask_png)
from refersplat_ros.core.scene.cameras import Camera

logger = logging.getLogger(__name__)

FORMAT_VERSION = 1
#: The true Gaussians and ids of a reconstructed scene (``RefSynthConfig.capture``), kept beside
#: the reconstructed ones for side-by-side measurements.
TRUE_POINT_CLOUD_NAME = 'true_point_cloud.ply'
TRUE_OBJECT_IDS_NAME = 'true_object_ids.npy'
_OUTPUT_ENTRIES = ('images', 'sparse', 'json', 'gt_mask', MANIFEST_NAME, OBJECT_IDS_NAME,
                   POINT_CLOUD_NAME, CONTACT_SHEET_NAME, TRUE_POINT_CLOUD_NAME,
                   TRUE_OBJECT_IDS_NAME)
PRESETS = ('default', 'tiny', 'hard', 'hard-tiny')
# Configuration fields added after the first presets: written to the manifest only when set, so
# the manifests of the ``default`` and ``tiny`` presets stay byte-identical.
_OPTIONAL_CONFIG_FIELDS = (('layout', 'clutter'), ('expressions', 'multi_anchor'),
                           (None, 'capture'))


@dataclass
class RefSynthConfig:
    """Everything that defines a Ref-Synth scene. Defaults = the ``default`` preset."""

    seed: int = 0
    layout: LayoutConfig = field(default_factory=lambda: LayoutConfig(stack_probability=1.0))
    gaussians: GaussianConfig = field(default_factory=lambda: GaussianConfig(
        density=48000.0, table_density_scale=0.35, background_density_scale=0.02))
    cameras: CameraRigConfig = field(default_factory=lambda: CameraRigConfig(
        num_views=32, width=160, height=120, fov_x_deg=56.0))
    expressions: ExpressionConfig = field(default_factory=ExpressionConfig)
    num_test_views: int = 6
    min_mask_pixels: int = 4          # an object with fewer visible pixels is not annotated
    background_rgb: tuple = (0.82, 0.86, 0.92)  # colour of pixels no Gaussian covers
    colmap_points: int = 5000         # points written to sparse/0/points3D.txt
    backend: str = 'auto'             # rasterizer backend for the ground truth
    max_layout_attempts: int = 50
    # None: the true Gaussians are the scene; set: the scene is reconstructed from its images
    # (``reconstructed.CaptureConfig``, ``make-scene --reconstructed``)
    capture: Optional[CaptureConfig] = None


def preset_config(name: str = 'default', **overrides) -> RefSynthConfig:
    """Named configurations.

    ``default``: 7 objects (one stacked on a box), about 30k Gaussians, 32 views (6 test) at
    160x120 (the demo's scene).
    ``tiny``: 4 objects, under 5k Gaussians, 6 views (2 test) at 64x48 (unit tests).
    ``hard``: the cluttered layout (``scene.ClutterSpec``) with 14 objects of very
    different sizes on a 1.2 x 0.8 m table: a long wall shelf along the back with two small
    objects on it, a box carrying a small object, two identical objects side by side, small
    fruit-sized objects; multi-anchor sentences naming 2-3 other objects
    (``expressions.MultiAnchorConfig``); about 33k Gaussians, 30 views (6 test) at 160x120.
    ``hard-tiny``: the same layout and sentences with under 8k Gaussians, 8 views (2 test) at
    64x48 (unit and end-to-end tests).

    Keyword overrides: ``seed``, ``num_objects``, ``num_views``, ``width``, ``height``,
    ``density``, ``num_test_views``.
    """
    if name == 'default':
        cfg = RefSynthConfig()
    elif name == 'tiny':
        cfg = RefSynthConfig(
            layout=LayoutConfig(num_objects=4, stack_probability=0.6),
            gaussians=GaussianConfig(density=6000.0, table_density_scale=0.35,
                                     background_density_scale=0.02),
            cameras=CameraRigConfig(num_views=6, width=64, height=48, fov_x_deg=56.0),
            num_test_views=2, min_mask_pixels=2, colmap_points=500)
    elif name in ('hard', 'hard-tiny'):
        cfg = _hard_config(tiny=name == 'hard-tiny')
    else:
        raise ValueError(f'unknown Ref-Synth preset {name!r}; choose one of {", ".join(PRESETS)}')
    simple = {'seed': ('seed', None), 'num_test_views': ('num_test_views', None)}
    nested = {'num_objects': ('layout', 'num_objects'), 'num_views': ('cameras', 'num_views'),
              'width': ('cameras', 'width'), 'height': ('cameras', 'height'),
              'density': ('gaussians', 'density')}
    for key, value in overrides.items():
        if value is None:
            continue
        if key in simple:
            cfg = replace(cfg, **{key: value})
        elif key in nested:
            part, attr = nested[key]
            cfg = replace(cfg, **{part: replace(getattr(cfg, part), **{attr: value})})
        else:
            raise ValueError(f'unknown Ref-Synth override {key!r}')
    return cfg


def _hard_config(tiny: bool) -> RefSynthConfig:
    """Build the ``hard`` / ``hard-tiny`` presets (see :func:`preset_config`)."""
    layout = LayoutConfig(num_objects=14, table=TableSpec(half_x=0.6, half_y=0.4),
                          clutter=ClutterSpec())
    # The default rig moved back by 15 % for the larger table.
    rings = ((24.0, 1.50), (40.0, 1.65), (58.0, 1.40))
    density, (num_views, width, height), extra = (
        (4000.0, (8, 64, 48), dict(num_test_views=2, min_mask_pixels=2, colmap_points=500))
        if tiny else (22000.0, (30, 160, 120), dict(num_test_views=6)))
    return RefSynthConfig(
        layout=layout,
        gaussians=GaussianConfig(density=density, table_density_scale=0.35,
                                 background_density_scale=0.02),
        cameras=CameraRigConfig(num_views=num_views, width=width, height=height,
                                fov_x_deg=56.0, rings=rings),
        expressions=ExpressionConfig(multi_anchor=MultiAnchorConfig()), **extra)


@dataclass
class RefSynthScene:
    """A generated scene before rendering (layout, expressions, Gaussians, cameras, split)."""

    config: RefSynthConfig
    objects: List[SceneObject]
    expressions: List[Expression]
    gaussians: SynthGaussians
    cameras: List[Camera]
    test_indices: List[int]   # 0-based view indices of the held-out test views

    def expressions_of(self, object_id: int, split: str) -> List[Expression]:
        return [e for e in self.expressions if e.object_id == object_id and e.split == split]


def generate_scene(config: Optional[RefSynthConfig] = None) -> RefSynthScene:
    """Sample layout, expressions, Gaussians and cameras (no rendering, no files).

    Raises:
        RuntimeError: if no layout supports enough unique expressions within
            ``config.max_layout_attempts`` attempts.
    """
    config = config or RefSynthConfig()
    rng = np.random.default_rng(config.seed)
    for attempt in range(config.max_layout_attempts):
        objects = sample_layout(rng, config.layout)
        expressions = generate_expressions(objects, rng, config.expressions)
        if expressions is not None:
            break
        logger.debug('layout %d lacks unique expressions; re-sampling', attempt)
    else:
        raise RuntimeError(f'no layout with enough unique expressions after '
                           f'{config.max_layout_attempts} attempts (seed {config.seed})')
    gaussians = build_gaussians(rng, objects, config.layout.table, config.gaussians)
    cameras = ring_cameras(rng, config.cameras)
    test_indices = split_frames(config.cameras.num_views, config.num_test_views)
    return RefSynthScene(config, objects, expressions, gaussians, cameras, test_indices)


def render_view(scene: RefSynthScene, index: int, device: str = 'cpu'):
    """RGB [3, H, W] and label map [H, W] (-1 empty, 0 background, 1..K) of view ``index``.

    ``device='cuda'`` with ``backend='auto'`` renders with gsplat; the label map is the same up
    to the backends' alpha clamp (0.99 vs 0.999) at a few boundary pixels.
    """
    g = scene.gaussians

    def t(a):
        return torch.from_numpy(a).to(device)
    return render_ground_truth(
        t(g.means), t(g.quats), t(g.scales), t(g.opacities), t(g.colors), t(g.object_ids),
        len(scene.objects), scene.cameras[index], background_rgb=scene.config.background_rgb,
        backend=scene.config.backend)


def _prepare_out_dir(out_dir: Path, overwrite: bool) -> None:
    if out_dir.exists() and any(out_dir.iterdir()):
        if not overwrite:
            raise FileExistsError(f'{out_dir} is not empty; pass overwrite=True '
                                  '(refersplat make-scene --overwrite)')
        for name in _OUTPUT_ENTRIES:  # remove only what a previous run wrote
            path = out_dir / name
            if path.is_dir():
                shutil.rmtree(path)
            elif path.exists():
                path.unlink()
    out_dir.mkdir(parents=True, exist_ok=True)


def _colmap_points(scene: RefSynthScene):
    g = scene.gaussians
    rng = np.random.default_rng(scene.config.seed + 1)
    count = min(scene.config.colmap_points, len(g))
    idx = np.sort(rng.choice(len(g), size=count, replace=False))
    return (torch.from_numpy(g.means[idx]).double(),
            torch.from_numpy(np.round(g.colors[idx] * 255.0)).to(torch.uint8))


def write_scene(scene: RefSynthScene, out_dir, *, overwrite: bool = False,
                progress: bool = True, contact_sheet: bool = True) -> Path:
    """Render the ground truth and write the scene folder; returns the manifest path."""
    from refersplat_ros.core.scene.cameras import write_colmap_text
    from refersplat_ros.core.scene.gaussian_io import save_ply

    out_dir = Path(out_dir)
    _prepare_out_dir(out_dir, overwrite)
    cfg = scene.config
    by_id = {o.id: o for o in scene.objects}
    test_set = set(scene.test_indices)
    views = []
    indices = range(len(scene.cameras))
    if progress:
        from tqdm import tqdm
        indices = tqdm(indices, desc='Ref-Synth views', unit='view')
    for i in indices:
        stem = frame_name(i)
        split = TEST if i in test_set else TRAIN
        rgb, labels = render_view(scene, i)
        write_image_png(out_dir / 'images' / f'{stem}.png', rgb.permute(1, 2, 0).cpu().numpy())
        labels = labels.cpu().numpy()
        entries, visible = [], {}
        for obj_id, obj in by_id.items():
            mask = labels == obj_id
            pixels = int(mask.sum())
            visible[obj.category] = pixels
            if pixels < cfg.min_mask_pixels:
                # Empty GT is skipped in evaluation (docs/METHOD.md#evaluation).
                continue  # hidden or nearly hidden: no annotation
            rel = mask_relpath(stem, obj.category)
            write_mask_png(out_dir / 'gt_mask' / rel, mask)
            sentences = [e.sentence for e in scene.expressions_of(obj_id, split)]
            entries.append((obj.category, rel, sentences))
        write_json(out_dir / 'json' / f'{stem}.json', frame_json(entries))
        views.append({'frame': stem, 'image': f'images/{stem}.png', 'split': split,
                      'visible_pixels': visible})
    ids = scene.gaussians.object_ids.astype(np.int32)
    reconstruction = None
    if cfg.capture is None:
        points_xyz, points_rgb = _colmap_points(scene)
        write_colmap_text(out_dir / 'sparse' / '0', scene.cameras, points_xyz, points_rgb)
        save_ply(scene.gaussians.to_scene(), out_dir / POINT_CLOUD_NAME)
    else:
        ids, reconstruction = _write_reconstruction(scene, out_dir, progress)
    np.save(out_dir / OBJECT_IDS_NAME, ids)
    manifest = build_manifest(scene, views, ids, reconstruction)
    write_json(out_dir / MANIFEST_NAME, manifest)
    if contact_sheet:
        from refersplat_ros.core.datasets.ref_synth.contact_sheet import write_contact_sheet
        write_contact_sheet(out_dir, out_dir / CONTACT_SHEET_NAME)
    logger.info('wrote Ref-Synth scene %s: %d objects, %d Gaussians, %d views (%d test)',
                out_dir, len(scene.objects), len(scene.gaussians), len(scene.cameras),
                len(scene.test_indices))
    return out_dir / MANIFEST_NAME


def _write_reconstruction(scene: RefSynthScene, out_dir: Path, progress: bool):
    """Make the written scene a capture; return (object ids, manifest entry).

    SfM-like points, the Gaussians fitted to the training images, ids from the true surface.
    """
    from refersplat_ros.core.reconstruct.capture import load_capture
    from refersplat_ros.core.reconstruct.fit import reconstruct
    from refersplat_ros.core.reconstruct.transfer import transfer_ids
    from refersplat_ros.core.scene.cameras import write_colmap_text
    from refersplat_ros.core.scene.gaussian_io import save_ply

    cfg, g = scene.config, scene.gaussians
    capture_cfg = cfg.capture
    test = set(scene.test_indices)
    train = [c for i, c in enumerate(scene.cameras) if i not in test]
    counts = seen_counts(g.means, g.quats, g.scales, g.opacities, train)
    points_xyz, points_rgb = sfm_points(g.means, g.colors, counts, capture_cfg, cfg.seed + 2)
    write_colmap_text(out_dir / 'sparse' / '0', scene.cameras, torch.from_numpy(points_xyz),
                      torch.from_numpy(points_rgb))
    save_ply(g.to_scene(), out_dir / TRUE_POINT_CLOUD_NAME)
    np.save(out_dir / TRUE_OBJECT_IDS_NAME, g.object_ids.astype(np.int32))
    capture = load_capture(out_dir, held_out=[frame_name(i) for i in scene.test_indices])
    fit_cfg = replace(capture_cfg.reconstruct, background=tuple(cfg.background_rgb),
                      seed=cfg.seed)
    result = reconstruct(capture, fit_cfg, progress=progress)
    save_ply(result.scene, out_dir / POINT_CLOUD_NAME)
    moved = transfer_ids(result.scene.means, torch.from_numpy(g.means), g.object_ids,
                         tolerance=capture_cfg.id_tolerance, true_extent=g.scales.max(axis=1))
    entry = {'true_point_cloud': TRUE_POINT_CLOUD_NAME, 'true_object_ids': TRUE_OBJECT_IDS_NAME,
             'true_num_gaussians': len(g), 'sfm_points': int(len(points_xyz)),
             'steps': fit_cfg.steps, 'seconds': round(result.seconds, 1),
             'psnr_test': (round(result.psnr, 2) if result.psnr is not None
                           and math.isfinite(result.psnr) else None),
             'floaters': moved.num_floaters,
             'history': [{k: (v if not isinstance(v, float) or math.isfinite(v) else None)
                          for k, v in h.items()} for h in result.history]}
    return moved.ids, entry


def build_manifest(scene: RefSynthScene, views: List[dict], ids: Optional[np.ndarray] = None,
                   reconstruction: Optional[dict] = None) -> dict:
    """Build the manifest: split, objects, typed expressions and file names.

    ``ids`` are the written Gaussians' object ids (default: the true ones); ``reconstruction``
    describes a reconstructed scene (``RefSynthConfig.capture``).
    """
    ids = scene.gaussians.object_ids if ids is None else ids
    counts = np.bincount(ids, minlength=len(scene.objects) + 1)
    objects = []
    for obj in scene.objects:
        entry = obj.to_dict()
        entry['num_gaussians'] = int(counts[obj.id])
        if scene.config.layout.clutter is not None:
            entry.update(object_facts(obj, scene.objects))
        objects.append(entry)
    test = [frame_name(i) for i in scene.test_indices]
    manifest = {
        'format': REF_SYNTH_FORMAT,
        'version': FORMAT_VERSION,
        'seed': scene.config.seed,
        'table_frame': 'origin at the table-top centre; z up, x right, y away from the front '
                       'viewer (at -y); left = -x, right = +x, front = -y, behind = +y',
        'split': {'test_frames': test,
                  'train_frames': [v['frame'] for v in views if v['frame'] not in test]},
        'num_gaussians': int(len(ids)),
        'background_id': 0,
        'object_ids': OBJECT_IDS_NAME,
        'point_cloud': POINT_CLOUD_NAME,
        'objects': objects,
        'expressions': [e.to_dict() for e in scene.expressions],
        'views': views,
        'config': config_dict(scene.config),
    }
    if reconstruction is not None:
        manifest['reconstruction'] = reconstruction
    return manifest


def config_dict(config: RefSynthConfig) -> dict:
    """JSON form of a configuration; optional fields that are unset are left out."""
    out = _jsonable(asdict(config))
    for part, name in _OPTIONAL_CONFIG_FIELDS:
        parent = out if part is None else out[part]
        if parent.get(name, 0) is None:
            del parent[name]
    return out


def _jsonable(value):
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value


def make_scene(config: Optional[RefSynthConfig] = None, out_dir='scenes/default', *,
               overwrite: bool = False, progress: bool = True,
               contact_sheet: bool = True) -> Path:
    """Generate a Ref-Synth scene and write it; returns the manifest path."""
    scene = generate_scene(config)
    return write_scene(scene, out_dir, overwrite=overwrite, progress=progress,
                       contact_sheet=contact_sheet)


def summary(scene: RefSynthScene) -> Dict[str, int]:
    """Return counts for a one-line report."""
    return {'objects': len(scene.objects), 'gaussians': len(scene.gaussians),
            'views': len(scene.cameras), 'test_views': len(scene.test_indices),
            'expressions': len(scene.expressions)}
