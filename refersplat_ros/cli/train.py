"""``refersplat train``: train a referring field on a Ref-LERF-layout scene.

Examples::

    refersplat train --data scenes/default --out runs/full
    refersplat train --data scenes/default --out runs/baseline --no-pcmi --no-gtcl
    refersplat train --data data/ramen --out runs/ramen --official --steps 45000
    refersplat train --data scenes/default --out runs/full --resume
    refersplat train --data scenes/default --out runs/two_stage --stage 2
    refersplat train --data my_scene --out runs/mine --test-frames 3,17,42

Every flag sets the ``TrainConfig`` (or field / loss config) field of the same name; the defaults
and what they mean are documented there (``core/train/trainer.py``) and in docs/METHOD.md.
"""
import argparse
from pathlib import Path

from refersplat_ros.cli.options import (add_device, add_progress, add_test_frames,
                                        add_text_encoder, text_encoder_config)


def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument('--data', required=True, type=Path, help='scene folder (Ref-LERF layout)')
    parser.add_argument('--out', required=True, type=Path, help='run folder')
    parser.add_argument('--scene', type=Path, default=None,
                        help='Gaussians (.ply/.pth); default: the one in --data')
    add_test_frames(parser, "held out from training (default: the scene's own split)")
    parser.add_argument('--steps', type=int, default=None,
                        help='Adam steps (default: until the fit on the training views stops '
                             'improving)')
    parser.add_argument('--seed', type=int, default=42, help='random seed (default 42)')
    parser.add_argument('--lr-features', type=float, default=None,
                        help='learning rate of the per-Gaussian features (default 0.025; the '
                             'paper: 0.0025 with 45k steps)')
    parser.add_argument('--lr-networks', type=float, default=None,
                        help='learning rate of the MLPs and attention (default 1e-3; paper 1e-4)')
    parser.add_argument('--max-steps', type=int, default=None,
                        help='cap of a run without --steps (default 45000)')
    parser.add_argument('--expressions-per-step', type=int, default=None,
                        help='expressions of one view per step, 0 = all '
                             '(default: 1 on real scenes, 4 on Ref-Synth)')
    parser.add_argument('--checkpoint-every', type=int, default=None,
                        help='steps between checkpoints (default: steps / 10)')
    parser.add_argument('--no-pcmi', action='store_true', help='baseline field without PCMI')
    parser.add_argument('--naive-attention', action='store_true',
                        help='cross-attention without position terms (Tab. 4 ablation)')
    parser.add_argument('--pcmi-form', choices=('code', 'paper'), default='code',
                        help='PCMI as in the official code (default) or the parameter-free '
                             'equations of the paper')
    parser.add_argument('--no-gtcl', action='store_true', help='drop the contrastive loss')
    parser.add_argument('--gtcl-weight', type=float, default=None,
                        help='lambda, the GTCL weight (default 0.02 paper; 0.1 with --official)')
    parser.add_argument('--official', action='store_true',
                        help="official-code recipe: lambda 0.1, tau period 2000, the paper's "
                             'learning rates')
    parser.add_argument('--buggy-top-tau', action='store_true',
                        help='reproduce the official top-tau bug (ablation only)')
    parser.add_argument('--stage', type=int, choices=(1, 2), default=1,
                        help='2 = two-stage refinement: retrain on the stage-1 predictions')
    parser.add_argument('--stage2-init', choices=('reinit', 'continue'), default='reinit',
                        help='stage 2 starts from a fresh field (default) or stage-1 weights')
    parser.add_argument('--train-category-names', action='store_true',
                        help='also train on category names (open-vocabulary queries)')
    parser.add_argument('--names-only', action='store_true',
                        help="train on each object's category name only, none of its sentences")
    parser.add_argument('--resume', action='store_true',
                        help='continue from RUN/checkpoints/last.safetensors')
    add_text_encoder(parser, 'the bundled all-MiniLM-L6-v2')
    add_device(parser)
    parser.add_argument('--num-threads', type=int, default=None,
                        help='torch CPU threads (default: torch default)')
    add_progress(parser)


def config_from_args(args):
    """Build the TrainConfig of parsed arguments."""
    from refersplat_ros.core.field.referring_field import ReferringFieldConfig
    from refersplat_ros.core.text.encoder import TextEncoderConfig
    from refersplat_ros.core.train.losses import ReferringLossConfig
    from refersplat_ros.core.train.trainer import PAPER_LR, TrainConfig

    loss = ReferringLossConfig.official() if args.official else ReferringLossConfig()
    if args.gtcl_weight is not None:
        loss.gtcl_weight = args.gtcl_weight
    loss.use_gtcl = not args.no_gtcl
    loss.buggy_top_tau = args.buggy_top_tau
    field = ReferringFieldConfig(use_pcmi=not args.no_pcmi,
                                 naive_attention=args.naive_attention,
                                 pcmi_form=args.pcmi_form)
    optional = dict(zip(('lr_features', 'lr_networks'), PAPER_LR)) if args.official else {}
    optional.update({name: getattr(args, name) for name in ('lr_features', 'lr_networks',
                                                            'max_steps')
                     if getattr(args, name) is not None})
    return TrainConfig(
        **optional, data=args.data, out=args.out, scene=args.scene, test_frames=args.test_frames,
        steps=args.steps, seed=args.seed, expressions_per_step=args.expressions_per_step,
        checkpoint_every=args.checkpoint_every, device=args.device,
        num_threads=args.num_threads,
        text_encoder=text_encoder_config(args.text_encoder) or TextEncoderConfig(),
        field=field, loss=loss, stage=args.stage, stage2_init=args.stage2_init,
        train_category_names=args.train_category_names, names_only=args.names_only,
        resume=args.resume,
        progress=not args.no_progress)


def run(args) -> int:
    from refersplat_ros.core.train.trainer import train

    result = train(config_from_args(args))
    for stage in result.stages:
        losses = ', '.join(f'{k} {v:.4f}' for k, v in stage.final_losses.items())
        print(f'stage {stage.stage}: {stage.steps} steps ({stage.steps_run} run) in '
              f'{stage.wall_time_s:.1f} s, {stage.steps_per_second:.2f} steps/s; {losses}')
        print(f'  checkpoints: {stage.checkpoint_dir} (last: {stage.last_checkpoint.name})')
    return 0
