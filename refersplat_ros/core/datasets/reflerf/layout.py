"""The Ref-LERF folder layout: names, known test frames, and a writer.

Reference: docs/METHOD.md#data-layout, #annotation-json and #split.

Official layout::

    <scene>/images/frame_XXXXX.{jpg,png}
    <scene>/sparse/0/{cameras,images,points3D}.{bin,txt}
    <scene>/json/frame_XXXXX.json
    <scene>/gt_mask/frame_XXXXX/<category>.png

Newer release / fork layout: ``json/train_json/<frame>.json`` and ``json/test_json/<frame>.json``,
``gt_mask/`` for all frames and ``mask/`` for test-frame ground truth. JSON schema per frame:
``{"object": [{"category": str, "segmentation": "<frame>/<category>.png", "sentence": [str]}]}``
with segmentation relative to ``gt_mask/`` (or ``mask/``).
"""
import json
from pathlib import Path
import re
from typing import Dict, Iterable, List, Optional, Sequence, Tuple, Union

import numpy as np
from PIL import Image

# Ref-LERF test frames per scene (docs/METHOD.md#split; the official code only hard-codes
# kitchen, defect b: docs/METHOD.md#defect-b). 'kitchen' is the paper's name for waldo_kitchen.
REF_LERF_TEST_FRAMES: Dict[str, Tuple[int, ...]] = {
    'ramen': (6, 24, 60, 65, 81, 119, 128),
    'figurines': (83, 97, 146, 179),
    'teatime': (2, 25, 43, 107, 129, 140),
    'waldo_kitchen': (19, 35, 67, 105, 162),
}
SCENE_ALIASES = {'kitchen': 'waldo_kitchen'}
# LangSplat's LERF-OVS test frames, for the open-vocabulary protocol (docs/METHOD.md#split).
LERF_OVS_TEST_FRAMES: Dict[str, Tuple[int, ...]] = {
    'ramen': (6, 24, 60, 65, 81, 119, 128),
    'figurines': (41, 105, 152, 195),
    'teatime': (2, 25, 43, 107, 129, 140),
    'waldo_kitchen': (53, 66, 89, 140, 154),
}

MANIFEST_NAME = 'manifest.json'
OBJECT_IDS_NAME = 'object_ids.npy'
POINT_CLOUD_NAME = 'point_cloud.ply'
CONTACT_SHEET_NAME = 'contact_sheet.png'
#: ``format`` of the manifest of a generated Ref-Synth scene.
REF_SYNTH_FORMAT = 'ref-synth'


def known_test_frames(scene_name: str) -> Optional[Tuple[int, ...]]:
    """Built-in Ref-LERF test frames of a LERF scene (by folder name), or None."""
    key = scene_name.lower()
    return REF_LERF_TEST_FRAMES.get(SCENE_ALIASES.get(key, key))


def annotation_stem(image_name: str) -> str:
    """JSON / mask stem of an image name, with the release's stem quirk.

    ``frame_00019.jpg`` -> ``frame_00019``; a 2-character stem such as ``19`` (a renamed image)
    maps to ``frame_00019``, as the fork's loader does (docs/METHOD.md#data-layout).
    """
    stem = Path(image_name).stem
    if len(stem) == 2 and stem.isdigit():
        return f'frame_{int(stem):05d}'
    return stem


def frame_number(stem: str) -> Optional[int]:
    """Return the frame index used by the test lists, or None.

    It is the first integer in the stem, as the official loader's regular expression takes it.
    """
    match = re.search(r'\d+', stem)
    return int(match.group(0)) if match else None


def category_phrase(category: str) -> str:
    """Category id as words: 'small-blue-bowl' -> 'small blue bowl' (open-vocabulary queries)."""
    return ' '.join(category.replace('-', ' ').replace('_', ' ').split())


class FrameSelector:
    """A set of frames given as numbers (``19``) or names (``frame_00019``), e.g. test frames.

    A frame matches by its stem or by its number, the one rule of :func:`frame_number`.
    """

    def __init__(self, frames: Iterable[Union[int, str]] = ()):
        self.numbers, self.stems = set(), set()
        for f in frames:
            if isinstance(f, (int, np.integer)) and not isinstance(f, bool):
                self.numbers.add(int(f))
            elif isinstance(f, str) and f.strip().isdigit():
                self.numbers.add(int(f))
            elif isinstance(f, str) and f.strip():
                self.stems.add(annotation_stem(f.strip()))
            else:
                raise ValueError(f'frame {f!r} must be a frame number or a frame name')

    def __contains__(self, stem: str) -> bool:
        return stem in self.stems or frame_number(stem) in self.numbers

    def __bool__(self) -> bool:
        return bool(self.numbers or self.stems)

    def missing(self, stems: Iterable[str]) -> List[Union[int, str]]:
        """Return the frames of the selector that none of ``stems`` matches."""
        stems = list(stems)
        numbers = {frame_number(s) for s in stems}
        return (sorted(n for n in self.numbers if n not in numbers)
                + sorted(s for s in self.stems if s not in stems))


def category_ok(category: str) -> bool:
    """Ref-LERF keys masks by the file name up to the first '_': categories carry none."""
    return bool(category) and '_' not in category and '/' not in category


def frame_json(objects: Sequence[Tuple[str, str, Sequence[str]]]) -> dict:
    """Frame JSON from (category, segmentation, sentences) triples."""
    return {'object': [{'category': c, 'segmentation': s, 'sentence': list(sent)}
                       for c, s, sent in objects]}


def write_json(path: Path, data) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=1) + '\n')


def write_mask_png(path: Path, mask: np.ndarray) -> None:
    """Write a binary mask [H, W] as a single-channel 0/255 PNG (the pseudo-mask format)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.where(mask, 255, 0).astype(np.uint8), mode='L').save(path)


def write_image_png(path: Path, rgb: np.ndarray) -> None:
    """Write an RGB image [H, W, 3] float in [0, 1] as an 8-bit PNG."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray((np.clip(rgb, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8), mode='RGB').save(path)


def mask_relpath(stem: str, category: str) -> str:
    """Segmentation path relative to ``gt_mask/``."""
    return f'{stem}/{category}.png'


def split_frames(num_views: int, num_test: int) -> List[int]:
    """0-based indices of evenly spread test views (never the first view)."""
    if num_test <= 0:
        return []
    if num_test >= num_views:
        raise ValueError(f'{num_test} test views leave no training view out of {num_views}')
    step = num_views / num_test
    return sorted({min(num_views - 1, int(step * (i + 0.5))) for i in range(num_test)})
