"""Loader of Ref-LERF-layout scenes: the official release, the newer split-JSON release, Ref-Synth.

Layouts (docs/METHOD.md#data-layout; detected automatically):

- ``official``: ``json/frame_XXXXX.json``, masks in ``gt_mask/``.
- ``split-json``: ``json/train_json/<frame>.json`` and ``json/test_json/<frame>.json``; masks in
  ``gt_mask/`` (all frames) and/or ``mask/`` (test ground truth); a segmentation path is looked up
  in ``gt_mask/`` first, then in ``mask/``.

Test views, first rule that applies: the ``test_frames`` argument (frame numbers or stems); the
Ref-Synth ``manifest.json``; the ``test_json`` folder of the split-JSON layout; the built-in
per-scene Ref-LERF lists for ramen, figurines, teatime and waldo_kitchen (docs/METHOD.md#split,
not only kitchen: docs/METHOD.md#defect-b). Otherwise loading fails with a message asking for a
list.

Where the official loader crashes we are tolerant: a registered image without JSON is skipped with
a warning (defect i). We are strict elsewhere: malformed JSON and missing mask files raise
``DatasetError`` naming the file and field. Masks are read lazily; any non-zero pixel is
foreground after resizing to the camera resolution with PIL's default resampling
(docs/METHOD.md#annotation-json).
"""
from dataclasses import dataclass, field
import json
import logging
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
from PIL import Image
import torch
from torch import Tensor

from refersplat_ros.core.datasets.reflerf.layout import (annotation_stem, frame_number,
                                                         FrameSelector, known_test_frames,
                                                         MANIFEST_NAME, OBJECT_IDS_NAME,
                                                         POINT_CLOUD_NAME)
from refersplat_ros.core.errors import DatasetError
from refersplat_ros.core.scene.cameras import Camera, read_colmap_model
from refersplat_ros.core.scene.images import read_rgb

logger = logging.getLogger(__name__)

OFFICIAL, SPLIT_JSON = 'official', 'split-json'
UNKNOWN_KIND = 'unknown'
BUILT_IN_SPLIT = 'built-in Ref-LERF list for'
HOW_TO_SPLIT = ('Give the test frames: --test-frames 3,17,frame_00042 (refersplat train / eval), '
                'load_referring_dataset(test_frames=...), "split": {"test_frames": [...]} in '
                'manifest.json, or the json/train_json + json/test_json layout')
_IMAGE_SUFFIXES = ('.jpg', '.JPG', '.jpeg', '.png', '.PNG')


def load_mask(path: Path, width: int, height: int) -> Tensor:  # [H, W] bool
    """Read a mask PNG: any non-zero pixel is foreground, resized to ``width`` x ``height``.

    Resizing uses PIL's default resampling on the 0/255 mask, then ``> 0`` (as the official
    loader's resize then clamp to [0, 1]).
    """
    try:
        with Image.open(path) as img:
            img.load()
    except (OSError, ValueError) as exc:
        raise DatasetError(f'{path}: cannot read mask image ({exc})') from exc
    arr = np.asarray(img)
    if arr.ndim == 3:
        arr = arr[..., :3].max(axis=-1) if arr.shape[-1] >= 3 else arr[..., 0]
    fg = arr > 0
    if fg.shape != (height, width):
        resized = Image.fromarray(fg.astype(np.uint8) * 255, mode='L').resize((width, height))
        fg = np.asarray(resized) > 0
    return torch.from_numpy(np.ascontiguousarray(fg))


@dataclass
class Annotation:
    """One (object, sentence) pair of a view, with its mask file (read on demand)."""

    category: str
    sentence: str
    mask_path: Path
    kind: str = UNKNOWN_KIND  # 'attribute' | 'spatial' | 'distractor' (Ref-Synth) or 'unknown'
    split: str = 'train'      # split of the view that carries it

    def load_mask(self, width: int, height: int) -> Tensor:  # [H, W] bool
        return load_mask(self.mask_path, width, height)


@dataclass
class View:
    """A registered image with its camera and annotations."""

    camera: Camera
    image_path: Optional[Path]   # None when the image file is missing (masks still usable)
    annotations: List[Annotation]
    frame: str                   # annotation stem, e.g. 'frame_00019'
    frame_number: Optional[int]
    split: str                   # 'train' or 'test'
    json_path: Optional[Path] = None

    @property
    def name(self) -> str:
        return self.camera.name

    @property
    def categories(self) -> List[str]:
        """Distinct categories of the view, in annotation order."""
        return list(dict.fromkeys(a.category for a in self.annotations))

    def load_mask(self, annotation: Annotation) -> Tensor:  # [H, W] bool
        """Load the annotation's mask at this view's camera resolution."""
        return annotation.load_mask(self.camera.width, self.camera.height)

    def load_image(self) -> Tensor:  # [3, H, W] float32 in [0, 1]
        """Load the RGB image, resized to the camera resolution."""
        if self.image_path is None:
            raise DatasetError(f'view {self.name}: image file is missing')
        return read_rgb(self.image_path, self.camera.width, self.camera.height)


@dataclass
class ReferringDataset:
    """A referring-segmentation scene: cameras split into train/test views with annotations."""

    root: Path
    layout: str
    train_views: List[View]
    test_views: List[View]
    scene_path: Optional[Path] = None      # Gaussians (.ply / .pth) when found
    manifest: Optional[dict] = None        # Ref-Synth manifest, else None
    object_ids_path: Optional[Path] = None
    skipped: List[str] = field(default_factory=list)  # image names without JSON

    @property
    def views(self) -> List[View]:
        return self.train_views + self.test_views

    @property
    def test_frames(self) -> List[str]:
        return [v.frame for v in self.test_views]

    @property
    def categories(self) -> List[str]:
        return sorted({a.category for v in self.views for a in v.annotations})

    def sentences(self, split: Optional[str] = None) -> List[str]:
        """Return the distinct sentences of one split (or of all) in first-seen order."""
        views = self.views if split is None else [v for v in self.views if v.split == split]
        return list(dict.fromkeys(a.sentence for v in views for a in v.annotations))

    def expression_kinds(self) -> Dict[str, str]:
        """Sentence -> expression type ('unknown' outside Ref-Synth)."""
        return {a.sentence: a.kind for v in self.views for a in v.annotations}

    def object_ids(self) -> Optional[Tensor]:  # [N] int64
        """Per-Gaussian object ids of a Ref-Synth scene (0 = background), else None."""
        if self.object_ids_path is None:
            return None
        try:
            ids = np.load(self.object_ids_path)
        except (OSError, ValueError) as exc:
            raise DatasetError(f'{self.object_ids_path}: cannot read object ids ({exc})') from exc
        if ids.ndim != 1:
            raise DatasetError(f'{self.object_ids_path}: object ids must be 1-D, got {ids.shape}')
        return torch.from_numpy(ids.astype(np.int64))

    def category_ids(self) -> Dict[str, int]:
        """Category -> object id (Ref-Synth manifest), else empty."""
        if not self.manifest:
            return {}
        return {o['category']: int(o['id']) for o in self.manifest.get('objects', [])}


# ------------------------------------------------------------------------------ parsing
def _read_json(path: Path):
    try:
        text = path.read_text()
    except OSError as exc:
        raise DatasetError(f'{path}: cannot read ({exc})') from exc
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise DatasetError(f'{path}: invalid JSON at line {exc.lineno} column {exc.colno}: '
                           f'{exc.msg}') from exc


def parse_frame_json(path: Path) -> List[dict]:
    """Validate one frame JSON and return its objects (category, segmentation, sentence list).

    Raises:
        DatasetError: naming the file and the field at fault.
    """
    data = _read_json(path)
    if not isinstance(data, dict):
        raise DatasetError(f'{path}: top level must be an object with field "object"')
    if 'object' not in data:
        raise DatasetError(f'{path}: missing field "object"')
    objects = data['object']
    if not isinstance(objects, list):
        raise DatasetError(f'{path}: field "object" must be a list')
    out, seen = [], set()
    for i, obj in enumerate(objects):
        where = f'{path}: object[{i}]'
        if not isinstance(obj, dict):
            raise DatasetError(f'{where} must be an object')
        for key in ('category', 'segmentation', 'sentence'):
            if key not in obj:
                raise DatasetError(f'{where}: missing field "{key}"')
        category, seg, sentences = obj['category'], obj['segmentation'], obj['sentence']
        if not isinstance(category, str) or not category.strip():
            raise DatasetError(f'{where}.category must be a non-empty string')
        if category in seen:
            raise DatasetError(f'{where}.category {category!r} is not unique in the frame')
        seen.add(category)
        if not isinstance(seg, str) or not seg.strip():
            raise DatasetError(f'{where}.segmentation must be a non-empty string')
        if not isinstance(sentences, list) or not all(isinstance(s, str) and s.strip()
                                                      for s in sentences):
            raise DatasetError(f'{where}.sentence must be a list of non-empty strings')
        if '_' in category:
            logger.warning('%s.category %r holds "_": the official loader would key its mask '
                           'by the text before it', where, category)
        out.append({'category': category, 'segmentation': seg, 'sentence': sentences})
    return out


def detect_layout(root: Path) -> str:
    """'split-json' when json/train_json or json/test_json exists, else 'official'."""
    json_dir = root / 'json'
    if (json_dir / 'train_json').is_dir() or (json_dir / 'test_json').is_dir():
        return SPLIT_JSON
    if json_dir.is_dir():
        return OFFICIAL
    raise DatasetError(f'{root}: no json/ folder (not a Ref-LERF-layout scene)')


def _find_json(root: Path, layout: str, stem: str) -> Optional[tuple]:
    """(path, 'train'|'test'|None) of a frame's JSON, or None."""
    if layout == OFFICIAL:
        path = root / 'json' / f'{stem}.json'
        return (path, None) if path.is_file() else None
    for sub, split in (('train_json', 'train'), ('test_json', 'test')):
        path = root / 'json' / sub / f'{stem}.json'
        if path.is_file():
            return path, split
    return None


def _find_mask(root: Path, segmentation: str, json_path: Path, index: int) -> Path:
    tried = []
    for folder in ('gt_mask', 'mask'):
        path = root / folder / segmentation
        if path.is_file():
            return path
        tried.append(str(path))
    raise DatasetError(f'{json_path}: object[{index}].segmentation: mask file not found '
                       f'(tried {", ".join(tried)})')


def _find_image(images_dir: Path, name: str) -> Optional[Path]:
    path = images_dir / name
    if path.is_file():
        return path
    for suffix in _IMAGE_SUFFIXES:
        alt = path.with_suffix(suffix)
        if alt.is_file():
            return alt
    return None


def _find_scene(root: Path, manifest: Optional[dict]) -> Optional[Path]:
    if manifest and manifest.get('point_cloud') and (root / manifest['point_cloud']).is_file():
        return root / manifest['point_cloud']
    if (root / POINT_CLOUD_NAME).is_file():
        return root / POINT_CLOUD_NAME
    checkpoints = sorted(root.glob('*chkpnt*.pth'))
    if checkpoints:
        return checkpoints[-1]
    iterations = sorted(root.glob('point_cloud/iteration_*/point_cloud.ply'),
                        key=lambda p: frame_number(p.parent.name) or 0)
    return iterations[-1] if iterations else None


def _manifest_kinds(manifest: Optional[dict], path: Path) -> Dict[tuple, str]:
    if not manifest:
        return {}
    kinds = {}
    for i, expr in enumerate(manifest.get('expressions', [])):
        try:
            kinds[(expr['category'], expr['sentence'])] = expr['kind']
        except (KeyError, TypeError) as exc:
            raise DatasetError(f'{path}: expressions[{i}] lacks field {exc}') from exc
    return kinds


def load_referring_dataset(
    root,
    *,
    test_frames: Optional[Sequence[Union[int, str]]] = None,
    scene_name: Optional[str] = None,
    max_height: Optional[int] = 1080,
    sparse_dir: Optional[Union[str, Path]] = None,
    images_dir: str = 'images',
) -> ReferringDataset:
    """Read a Ref-LERF-layout scene folder (either layout, Ref-Synth included).

    Args:
        root: the scene folder.
        test_frames: test views as frame numbers (``19``) or names (``frame_00019``); overrides
            every other source of the split.
        scene_name: name for the built-in test lists (default: the folder name).
        max_height: cameras taller than this are scaled down to it (3DGS ``-r -1`` rule,
            docs/METHOD.md#cameras);
            None keeps the COLMAP resolution.
        sparse_dir: COLMAP model folder (default ``root/sparse/0``).
        images_dir: image folder name under root.

    Returns:
        The dataset; views sorted by image name.

    Raises:
        DatasetError: unknown split, malformed JSON or manifest, missing mask file.
        CameraFormatError: unreadable COLMAP model.
    """
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f'{root}: scene folder not found')
    layout = detect_layout(root)
    manifest_path = root / MANIFEST_NAME
    manifest = _read_json(manifest_path) if manifest_path.is_file() else None
    if manifest is not None and not isinstance(manifest, dict):
        raise DatasetError(f'{manifest_path}: top level must be an object')
    kinds = _manifest_kinds(manifest, manifest_path)
    test_set, split_source = _resolve_split(root, layout, manifest, test_frames, scene_name)

    sparse = Path(sparse_dir) if sparse_dir is not None else root / 'sparse' / '0'
    cameras = read_colmap_model(sparse)
    train_views: List[View] = []
    test_views: List[View] = []
    skipped: List[str] = []
    for name in sorted(cameras):
        view = _read_view(root, layout, cameras[name], name, test_set, split_source, kinds,
                          max_height, images_dir)
        if view is None:
            skipped.append(name)
        else:
            (test_views if view.split == 'test' else train_views).append(view)
    if not train_views and not test_views:
        raise DatasetError(f'{root}: no registered image has an annotation JSON')
    if split_source != 'test_json':
        _check_test_frames(root, test_set, split_source, test_views)
    object_ids_path = None
    if manifest is not None:
        ids_name = manifest.get('object_ids', OBJECT_IDS_NAME)
        if (root / ids_name).is_file():
            object_ids_path = root / ids_name
    logger.info('%s: %s layout, %d train / %d test views (split: %s), %d skipped', root,
                layout, len(train_views), len(test_views), split_source, len(skipped))
    return ReferringDataset(root, layout, train_views, test_views, _find_scene(root, manifest),
                            manifest, object_ids_path, skipped)


def _resolve_split(root: Path, layout: str, manifest: Optional[dict],
                   test_frames: Optional[Sequence[Union[int, str]]],
                   scene_name: Optional[str]) -> Tuple[FrameSelector, str]:
    """Return the test frames and where they come from, first rule that applies (module doc)."""
    if test_frames is not None:
        try:
            return FrameSelector(test_frames), 'argument'
        except ValueError as exc:
            raise DatasetError(f'{root}: test_frames: {exc}') from exc
    if manifest is not None and 'split' in manifest:
        split = manifest['split']
        manifest_path = root / MANIFEST_NAME
        if not isinstance(split, dict) or not isinstance(split.get('test_frames'), list):
            raise DatasetError(f'{manifest_path}: field split.test_frames must be a list')
        try:
            return FrameSelector(split['test_frames']), 'manifest'
        except ValueError as exc:
            raise DatasetError(f'{manifest_path}: split.test_frames: {exc}') from exc
    if layout == SPLIT_JSON:
        return FrameSelector(), 'test_json'
    name = scene_name or root.resolve().name
    known = known_test_frames(name)
    if known is None:
        raise DatasetError(f'{root}: no test-frame list for scene {name!r}. {HOW_TO_SPLIT}')
    return FrameSelector(known), f'{BUILT_IN_SPLIT} {name}'


def _read_view(root: Path, layout: str, camera: Camera, name: str, test_set: FrameSelector,
               split_source: str, kinds: Dict[tuple, str], max_height: Optional[int],
               images_dir: str) -> Optional[View]:
    """One registered image as a View, or None when it has no annotation JSON (skipped)."""
    stem = annotation_stem(name)
    found = _find_json(root, layout, stem)
    if found is None:
        # Defect i (docs/METHOD.md#defect-i): the official loader crashes here; we skip the view.
        logger.warning('%s: no annotation JSON for image %s (frame %s); view skipped',
                       root, name, stem)
        return None
    json_path, json_split = found
    if split_source == 'test_json':
        split = json_split
    else:
        split = 'test' if stem in test_set else 'train'
    if max_height is not None and camera.height > max_height:
        camera = camera.resized(int(round(camera.width * max_height / camera.height)), max_height)
    annotations = []
    for i, obj in enumerate(parse_frame_json(json_path)):
        mask_path = _find_mask(root, obj['segmentation'], json_path, i)
        for sentence in obj['sentence']:
            kind = kinds.get((obj['category'], sentence), UNKNOWN_KIND)
            annotations.append(Annotation(obj['category'], sentence, mask_path, kind, split))
    image_path = _find_image(root / images_dir, name)
    if image_path is None:
        logger.warning('%s: image %s not found under %s', root, name, images_dir)
    return View(camera, image_path, annotations, stem, frame_number(stem), split, json_path)


def _check_test_frames(root: Path, test_set: FrameSelector, split_source: str,
                       test_views: List[View]) -> None:
    """Refuse a built-in Ref-LERF list the folder does not match; warn about other misses."""
    missing = test_set.missing(v.frame for v in test_views)
    if missing and split_source.startswith(BUILT_IN_SPLIT):
        # A user scene that only shares a Ref-LERF scene's folder name (e.g. 'kitchen').
        raise DatasetError(
            f'{root}: the folder is named like a Ref-LERF scene, but its views lack the '
            f'Ref-LERF test frames {missing} ({split_source}). {HOW_TO_SPLIT}')
    if missing:
        logger.warning('%s: test frames %s (%s) are not registered views', root, missing,
                       split_source)
