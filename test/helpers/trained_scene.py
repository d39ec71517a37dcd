"""Test helper: a generated Ref-Synth scene with a trained field (node and CLI tests)."""
from dataclasses import dataclass
import json
from pathlib import Path
from typing import Dict, Optional, Union

from refersplat_ros.core.datasets.ref_synth.generator import make_scene, preset_config
from refersplat_ros.core.datasets.reflerf.layout import category_phrase
from refersplat_ros.core.text.encoder import TextEncoder, TextEncoderConfig
from refersplat_ros.core.train.trainer import train, TrainConfig, TrainResult


@dataclass
class TrainedScene:
    """A generated Ref-Synth scene with a trained field (``make_trained_scene``)."""

    data_dir: Path
    scene_path: Path
    checkpoint: Path
    categories: Dict[str, int]     # category -> object id
    queries: Dict[str, str]        # category -> a query naming it ("small blue bowl")
    result: TrainResult


def make_trained_scene(out_dir: Union[str, Path], *, preset: str = 'tiny', seed: int = 0,
                       steps: int = 500, encoder: Optional[TextEncoder] = None,
                       text_encoder: Optional[TextEncoderConfig] = None,
                       progress: bool = False) -> TrainedScene:
    """Generate a Ref-Synth scene and train a field whose category-name queries work.

    For integration tests (node, CLI): ``out_dir/scene`` holds the scene, ``out_dir/run`` the
    run. Training adds each object's category name as an expression
    (``train_category_names``), so ``queries[category]`` (e.g. "small blue bowl") selects that
    object. With the bundled MiniLM, the tiny preset and 500 steps (training time:
    docs/RESULTS.md#test-helper-for-integration-tests), every category-name query then selected
    its object. The held-out referring expressions of the tiny preset are not learned in that
    budget: use category names.
    """
    out_dir = Path(out_dir)
    data_dir = out_dir / 'scene'
    if not (data_dir / 'manifest.json').is_file():
        make_scene(preset_config(preset, seed=seed), data_dir, overwrite=True, progress=False,
                   contact_sheet=False)
    config = TrainConfig(data=data_dir, out=out_dir / 'run', steps=steps,
                         text_encoder=text_encoder or TextEncoderConfig(),
                         train_category_names=True, progress=progress, seed=seed)
    result = train(config, encoder=encoder)
    manifest = json.loads((data_dir / 'manifest.json').read_text())
    categories = {o['category']: int(o['id']) for o in manifest['objects']}
    return TrainedScene(data_dir=data_dir, scene_path=data_dir / manifest['point_cloud'],
                        checkpoint=result.last_checkpoint, categories=categories,
                        queries={c: category_phrase(c) for c in categories}, result=result)
