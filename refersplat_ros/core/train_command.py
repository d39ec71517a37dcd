"""``refersplat train``: train a referring field on a Ref-LERF-layout scene (REFERSPLAT.md §5).

Examples::

    refersplat train --data scenes/default --out runs/full
    refersplat train --data scenes/default --out runs/baseline --no-pcmi --no-gtcl
    refersplat train --data data/ramen --out runs/ramen --official --steps 45000
    refersplat train --data scenes/default --out runs/full --resume
    refersplat train --data scenes/default --out runs/two_stage --stage2
"""
import argparse
from pathlib import Path

from refersplat_ros.core.errors import RefersplatError


def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument('--data', required=True, type=Path, help='scene folder (Ref-LERF layout)')
    parser.add_argument('--out', required=True, type=Path, help='run folder')
    parser.add_argument('--scene', type=Path, default=None,
                        help='Gaussians (.ply/.pth); default: the one in --data')
    parser.add_argument('--steps', type=int, default=None,
                        help='Adam steps (default: 45000 on real scenes, 600 on Ref-Synth)')
    parser.add_argument('--seed', type=int, default=42, help='random seed (default 42)')
    parser.add_argument('--expressions-per-step', type=int, default=None,
                        help='expressions of one view per step, 0 = all '
                             '(default: 1 on real scenes, 4 on Ref-Synth)')
    parser.add_argument('--checkpoint-every', type=int, default=None,
                        help='steps between checkpoints (default: steps / 10)')
    parser.add_argument('--no-pcmi', action='store_true', help='baseline field without PCMI')
    parser.add_argument('--naive-attention', action='store_true',
                        help='cross-attention without position terms (Tab. 4 ablation)')
    parser.add_argument('--paper-pcmi', action='store_true',
                        help='parameter-free PCMI equations of the paper (§4.3)')
    parser.add_argument('--no-gtcl', action='store_true', help='drop the contrastive loss')
    parser.add_argument('--lambda', dest='gtcl_weight', type=float, default=None,
                        help='GTCL weight (default 0.02 paper; 0.1 with --official)')
    parser.add_argument('--official', action='store_true',
                        help='official-code recipe: lambda 0.1, tau period 2000')
    parser.add_argument('--buggy-top-tau', action='store_true',
                        help='reproduce the official top-tau bug (ablation only)')
    parser.add_argument('--stage2', action='store_true',
                        help='two-stage refinement: retrain on the stage-1 predictions')
    parser.add_argument('--stage2-init', choices=('reinit', 'continue'), default='reinit',
                        help='stage 2 starts from a fresh field (default) or stage-1 weights')
    parser.add_argument('--category-names', action='store_true',
                        help='also train on category names (open-vocabulary queries)')
    parser.add_argument('--resume', action='store_true',
                        help='continue from RUN/checkpoints/last.safetensors')
    parser.add_argument('--encoder', default=None,
                        help='text encoder: HF name in the local cache or model folder '
                             '(default: bundled all-MiniLM-L6-v2)')
    parser.add_argument('--device', default='auto', help='auto, cpu, cuda, cuda:1, ...')
    parser.add_argument('--threads', type=int, default=None,
                        help='torch CPU threads (default: torch default)')
    parser.add_argument('--no-progress', action='store_true', help='no progress bar')


def config_from_args(args):
    """Build the TrainConfig of parsed arguments."""
    from refersplat_ros.core.losses import ReferSplatLossConfig
    from refersplat_ros.core.referring_field import ReferringFieldConfig
    from refersplat_ros.core.text_encoder import TextEncoderConfig
    from refersplat_ros.core.training import TrainConfig

    loss = ReferSplatLossConfig.official() if args.official else ReferSplatLossConfig()
    if args.gtcl_weight is not None:
        loss.gtcl_weight = args.gtcl_weight
    loss.use_gtcl = not args.no_gtcl
    loss.buggy_top_tau = args.buggy_top_tau
    field = ReferringFieldConfig(use_pcmi=not args.no_pcmi,
                                 naive_attention=args.naive_attention,
                                 pcmi_form='paper' if args.paper_pcmi else 'code')
    encoder = TextEncoderConfig() if args.encoder is None else TextEncoderConfig(
        model=str(Path(args.encoder).resolve()) if Path(args.encoder).is_dir() else args.encoder)
    return TrainConfig(
        data=args.data, out=args.out, scene=args.scene, steps=args.steps, seed=args.seed,
        expressions_per_step=args.expressions_per_step, checkpoint_every=args.checkpoint_every,
        device=args.device, num_threads=args.threads, text_encoder=encoder, field=field,
        loss=loss, stage=2 if args.stage2 else 1, stage2_init=args.stage2_init,
        train_category_names=args.category_names, resume=args.resume,
        progress=not args.no_progress)


def run(args) -> int:
    from refersplat_ros.core.training import train

    try:
        config = config_from_args(args)
        result = train(config)
    except (RefersplatError, ValueError) as exc:
        print(f'error: {exc}')
        return 1
    for stage in result.stages:
        losses = ', '.join(f'{k} {v:.4f}' for k, v in stage.final_losses.items())
        print(f'stage {stage.stage}: {stage.steps} steps ({stage.steps_run} run) in '
              f'{stage.wall_time_s:.1f} s, {stage.steps_per_second:.2f} steps/s; {losses}')
        print(f'  checkpoints: {stage.checkpoint_dir} (last: {stage.last_checkpoint.name})')
    return 0
