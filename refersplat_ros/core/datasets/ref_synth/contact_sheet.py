"""Contact sheet of a Ref-LERF-layout scene: a few views with mask overlays and the expressions.

Meant for people: it is read back through the loader, so it shows exactly what training sees.
"""
import colorsys
from pathlib import Path
from typing import Dict, List, Optional

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from refersplat_ros.core.datasets.reflerf.loader import (load_referring_dataset, ReferringDataset,
                                                         View)


def _font(size: int):
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1 has no sized default font
        return ImageFont.load_default()


def _overlay_colours(categories: List[str]) -> Dict[str, tuple]:
    """Evenly spaced hues, one per category, in a fixed (sorted) order."""
    n = max(len(categories), 1)
    return {c: tuple(int(255 * v) for v in colorsys.hsv_to_rgb(i / n, 0.85, 1.0))
            for i, c in enumerate(sorted(categories))}


def _pick_views(dataset: ReferringDataset, count: int) -> List[View]:
    half = max(1, count // 2)
    test = dataset.test_views[:half]
    train = dataset.train_views
    step = max(1, len(train) // max(1, count - len(test)))
    return train[::step][:count - len(test)] + test


def _tile(view: View, colours: Dict[str, tuple], scale: int, font) -> Image.Image:
    base = view.load_image().permute(1, 2, 0).numpy() if view.image_path else \
        np.zeros((view.camera.height, view.camera.width, 3), np.float32)
    h, w = view.camera.height, view.camera.width
    big = np.asarray(Image.fromarray((base * 255).astype(np.uint8)).resize(
        (w * scale, h * scale), Image.NEAREST), dtype=np.float32) / 255.0
    labels = []
    for category in view.categories:
        ann = next(a for a in view.annotations if a.category == category)
        mask = view.load_mask(ann).numpy()
        if not mask.any():
            continue
        mask = mask.repeat(scale, 0).repeat(scale, 1)
        colour = np.asarray(colours[category]) / 255.0
        # Light tint inside, solid outline: the object's own colour stays visible.
        big[mask] = 0.75 * big[mask] + 0.25 * colour
        inner = mask.copy()
        inner[1:] &= mask[:-1]
        inner[:-1] &= mask[1:]
        inner[:, 1:] &= mask[:, :-1]
        inner[:, :-1] &= mask[:, 1:]
        big[mask & ~inner] = colour
        ys, xs = np.nonzero(mask)
        labels.append((category, float(xs.mean()), float(ys.min()) - 7))
    img = Image.fromarray((big * 255).astype(np.uint8))
    draw = ImageDraw.Draw(img)
    for category, x, y in labels:
        draw.text((x, max(y, 6)), category, fill=(255, 255, 255), font=font, anchor='mm',
                  stroke_width=2, stroke_fill=(0, 0, 0))
    header = Image.new('RGB', (img.width, 18), (30, 30, 30))
    ImageDraw.Draw(header).text((4, 2), f'{view.frame} ({view.split})', fill=(255, 255, 255),
                                font=font)
    out = Image.new('RGB', (img.width, img.height + header.height))
    out.paste(header, (0, 0))
    out.paste(img, (0, header.height))
    return out


def render_contact_sheet(dataset: ReferringDataset, num_views: int = 4,
                         scale: Optional[int] = None) -> Image.Image:
    """Compose the sheet: a row of views with overlays, then every object's expressions.

    Args:
        dataset: a loaded scene.
        num_views: views shown (half of them test views when there are some).
        scale: integer upscaling of the views (default: to about 320 px wide).
    """
    views = _pick_views(dataset, num_views)
    width0 = views[0].camera.width
    scale = scale or max(1, round(320 / width0))
    font = _font(12)
    colours = _overlay_colours(dataset.categories)
    tiles = [_tile(v, colours, scale, font) for v in views]
    row_w = sum(t.width for t in tiles) + 4 * (len(tiles) - 1)
    row_h = max(t.height for t in tiles)

    lines = []  # (category or None, text, is_test)
    by_cat: Dict[str, Dict[str, tuple]] = {}
    for view in dataset.views:
        for a in view.annotations:
            by_cat.setdefault(a.category, {})[a.sentence] = (a.split, a.kind)
    for category in sorted(by_cat):
        lines.append((category, category, False))
        for sentence, (split, kind) in by_cat[category].items():
            tag = 'TEST' if split == 'test' else 'train'
            lines.append((None, f'    [{tag}, {kind}] {sentence}', split == 'test'))
    line_h = 15
    text_h = line_h * len(lines) + 10
    sheet = Image.new('RGB', (max(row_w, 900), row_h + text_h + 6), (245, 245, 245))
    x = 0
    for t in tiles:
        sheet.paste(t, (x, 0))
        x += t.width + 4
    draw = ImageDraw.Draw(sheet)
    y = row_h + 8
    for category, text, is_test in lines:
        if category is not None:
            draw.rectangle([6, y + 2, 16, y + 12], fill=colours.get(category, (0, 0, 0)))
            draw.text((22, y), text, fill=(0, 0, 0), font=font)
        else:
            draw.text((6, y), text, fill=(170, 20, 20) if is_test else (40, 40, 40), font=font)
        y += line_h
    return sheet


def write_contact_sheet(scene_dir, out_path, num_views: int = 4) -> Path:
    """Load ``scene_dir`` and write its contact sheet PNG to ``out_path``."""
    dataset = load_referring_dataset(scene_dir)
    out_path = Path(out_path)
    render_contact_sheet(dataset, num_views).save(out_path)
    return out_path
