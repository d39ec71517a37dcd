"""Fit an RGB 3D Gaussian Splatting scene to a capture: what a user runs before ReferSplat.

The recipe of 3DGS as gsplat's ``simple_trainer`` implements it (docs/RECONSTRUCT.md), sized
for a CPU:

- **initialisation** from the capture's sparse points (COLMAP ``points3D``): one Gaussian per
  point, its colour, isotropic scale = mean distance to its 3 nearest neighbours, opacity 0.1,
  random rotation; without points, ``random_init_points`` at random in the cameras' box;
- **loss** ``(1 - ssim_lambda) * L1 + ssim_lambda * (1 - SSIM)``, one training view per step
  (shuffled every epoch), Adam per parameter with 3DGS's learning rates (the means' scaled by
  the scene size and decayed to 1 % at the end);
- **densification and pruning** by gsplat's own ``DefaultStrategy`` (clone small / split large
  Gaussians with a large screen-space gradient, prune transparent ones; huge ones only after
  ``reset_every`` steps, which the default run never reaches: gsplat 1.5.3 never resets
  opacities, its test ``step % reset_every == 0 & step > 0`` is always false), fed by the
  rasterizer's screen-space means of the drawn Gaussians (``rasterize(..., return_info=True)``);
  growth stops above ``max_gaussians``;
- SH colour degree raised by one every ``sh_degree_interval`` steps up to ``sh_degree``.

The rasterizer is the project's (``render.rasterize``): the exact CPU compositor here, gsplat's
CUDA kernels on a GPU. Checkpoints are safetensors (never pickled) with a JSON description,
written atomically; ``resume`` continues from the last one exactly (RNG state included).
"""
from dataclasses import asdict, dataclass, field, fields
import json
import logging
import math
from pathlib import Path
import time
from typing import Callable, Dict, List, Optional, Tuple

import torch
from torch import Tensor

from refersplat_ros.core.errors import CheckpointError
from refersplat_ros.core.files import atomic_write, DEFAULT_MAX_FILE_BYTES, read_regular_file
from refersplat_ros.core.reconstruct.capture import camera_centres, Capture
from refersplat_ros.core.reconstruct.ssim import psnr, ssim
from refersplat_ros.core.render.gsplat_internals import spherical_harmonics
from refersplat_ros.core.render.rasterize import rasterize
from refersplat_ros.core.scene.gaussians import GaussianScene, SH_C0

logger = logging.getLogger(__name__)

#: Name of the checkpoint a run resumes from, in its checkpoint folder.
LAST_CHECKPOINT = 'reconstruct_last.safetensors'
_META_KEY = 'refersplat_reconstruct'
_FORMAT_VERSION = 1


@dataclass
class ReconstructConfig:
    """How a capture is fitted (``refersplat reconstruct`` options; defaults sized for a CPU).

    Attributes:
        steps: Optimisation steps (one view each).
        sh_degree: Final SH degree of the colours (0-3); 0 is one colour per Gaussian.
        sh_degree_interval: Steps between raising the SH degree by one.
        ssim_lambda: Weight of the D-SSIM term (3DGS: 0.2).
        init_opacity: Opacity of the initial Gaussians.
        init_scale: Initial scale, times the mean distance to the 3 nearest points.
        random_init_points: Gaussians of the random initialisation (captures without points).
        means_lr: Learning rate of the means, times the scene scale; decays to 1 % at the end.
        scales_lr, quats_lr, opacities_lr, sh0_lr, shN_lr: Adam learning rates (3DGS's).
        refine_start, refine_stop, refine_every, reset_every: densification schedule (steps),
            gsplat ``DefaultStrategy``'s ``refine_start_iter`` and so on (huge Gaussians are
            pruned only after ``reset_every``; gsplat 1.5.3 never resets the opacities).
        grow_grad2d: Screen-space gradient above which a Gaussian is cloned or split.
        prune_opacity: Opacity below which a Gaussian is pruned.
        max_gaussians: Growth stops above this count (pruning goes on).
        background: RGB behind the Gaussians (the images' empty pixels).
        eval_every: Steps between PSNR measurements on the held-out views.
        checkpoint_every: Steps between checkpoints (0: only the last).
        seed: Seed of the initialisation, the view order and the splits.
        backend: Rasterizer backend ('auto', 'cpu', 'gsplat').
    """

    steps: int = 3000
    sh_degree: int = 1
    sh_degree_interval: int = 1000
    ssim_lambda: float = 0.2
    init_opacity: float = 0.1
    init_scale: float = 1.0
    random_init_points: int = 10_000
    means_lr: float = 1.6e-4
    scales_lr: float = 5e-3
    quats_lr: float = 1e-3
    opacities_lr: float = 5e-2
    sh0_lr: float = 2.5e-3
    shN_lr: float = 2.5e-3 / 20
    refine_start: int = 300
    refine_stop: int = 2400
    refine_every: int = 100
    reset_every: int = 3000
    grow_grad2d: float = 0.0002
    prune_opacity: float = 0.005
    max_gaussians: int = 200_000
    background: Tuple[float, float, float] = (0.0, 0.0, 0.0)
    eval_every: int = 500
    checkpoint_every: int = 1000
    seed: int = 0
    backend: str = 'auto'

    def __post_init__(self):
        if self.steps < 1:
            raise ValueError(f'steps must be >= 1, got {self.steps}')
        if self.sh_degree not in (0, 1, 2, 3):
            raise ValueError(f'sh_degree must be 0-3, got {self.sh_degree}')
        for name in ('sh_degree_interval', 'refine_every', 'reset_every', 'eval_every',
                     'max_gaussians', 'random_init_points'):
            if getattr(self, name) < 1:
                raise ValueError(f'{name} must be >= 1, got {getattr(self, name)}')
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, float) and not math.isfinite(value):
                raise ValueError(f'{f.name} must be finite, got {value}')
        if not 0.0 <= self.ssim_lambda <= 1.0:
            raise ValueError(f'ssim_lambda must be in [0, 1], got {self.ssim_lambda}')
        if not 0.0 < self.init_opacity < 1.0 or self.init_scale <= 0.0:
            raise ValueError('init_opacity must be in (0, 1) and init_scale > 0, got '
                             f'{self.init_opacity}, {self.init_scale}')
        if not 0 <= self.refine_start < self.refine_stop or self.checkpoint_every < 0:
            raise ValueError('need 0 <= refine_start < refine_stop and checkpoint_every >= 0, '
                             f'got {self.refine_start}, {self.refine_stop}, '
                             f'{self.checkpoint_every}')
        if len(self.background) != 3 or not all(0.0 <= c <= 1.0 for c in self.background):
            raise ValueError(f'background must be RGB in [0, 1], got {self.background}')


@dataclass
class Reconstruction:
    """Result of ``reconstruct``: the Gaussians and how the fit went."""

    scene: GaussianScene
    history: List[dict] = field(default_factory=list)  # step, loss, psnr, gaussians, seconds
    seconds: float = 0.0  # optimisation time of this run (resumed runs: since the resume)

    @property
    def psnr(self) -> Optional[float]:
        """Held-out PSNR of the last measurement (None if none was made)."""
        values = [h['psnr'] for h in self.history if h.get('psnr') is not None]
        return values[-1] if values else None


def scene_scale(capture: Capture) -> float:
    """Return the scene size as gsplat measures it (1.1 x the cameras' largest radius)."""
    centres = camera_centres(capture.cameras)
    return 1.1 * float((centres - centres.mean(0)).norm(dim=1).max().clamp_min(1e-6))


def _knn_mean_distance(points: Tensor, k: int = 3) -> Tensor:  # [M, 3] -> [M]
    out = torch.empty(len(points))
    rows = max(1, (1 << 25) // max(1, len(points)))  # at most 128 MB of distances at once
    kk = min(k + 1, len(points))
    for start in range(0, len(points), rows):
        d = torch.cdist(points[start:start + rows], points)
        out[start:start + rows] = d.topk(kk, largest=False).values[:, 1:].mean(1) \
            if kk > 1 else torch.ones(len(d))
    return out.clamp_min(1e-7)


def initial_params(capture: Capture, config: ReconstructConfig) -> Dict[str, Tensor]:
    """Return the initial Gaussians: the sparse points, or random points in the cameras' box."""
    g = torch.Generator().manual_seed(config.seed)
    if capture.points is not None and len(capture.points) >= 1:
        points = capture.points.float()
        colors = capture.point_colors.float() if capture.point_colors is not None \
            else torch.full_like(points, 0.5)
    else:
        centres = camera_centres(capture.cameras)
        scale = scene_scale(capture)
        points = centres.mean(0) + (torch.rand(config.random_init_points, 3, generator=g)
                                    * 2 - 1) * scale
        colors = torch.rand(config.random_init_points, 3, generator=g)
    n = len(points)
    dist = _knn_mean_distance(points)
    params = {
        'means': points.clone(),
        'scales': torch.log(dist * config.init_scale)[:, None].repeat(1, 3),
        'quats': torch.rand(n, 4, generator=g),
        'opacities': torch.logit(torch.full((n,), config.init_opacity)),
        'sh0': ((colors - 0.5) / SH_C0)[:, None, :],
    }
    if config.sh_degree > 0:
        params['shN'] = torch.zeros(n, (config.sh_degree + 1) ** 2 - 1, 3)
    return params


def to_scene(params: Dict[str, Tensor]) -> GaussianScene:
    """Return the fitted parameters as a GaussianScene (the INRIA .ply fields)."""
    sh = params['sh0']
    if 'shN' in params:
        sh = torch.cat([sh, params['shN']], dim=1)
    return GaussianScene(params['means'].detach().clone(), params['quats'].detach().clone(),
                         params['scales'].detach().clone(),
                         params['opacities'].detach().clone(), sh.detach().clone())


class _Fit:
    """The optimisation state: parameters, optimizers, densification strategy, history."""

    def __init__(self, capture: Capture, config: ReconstructConfig, device):
        from gsplat.strategy import DefaultStrategy

        self.capture, self.config, self.device = capture, config, torch.device(device)
        self.scale = scene_scale(capture)
        self.strategy = DefaultStrategy(
            prune_opa=config.prune_opacity, grow_grad2d=config.grow_grad2d,
            refine_start_iter=config.refine_start, refine_stop_iter=config.refine_stop,
            refine_every=config.refine_every, reset_every=config.reset_every)
        self.step = 0
        self.history: List[dict] = []
        self.params: Optional[torch.nn.ParameterDict] = None
        self.optimizers: Dict[str, torch.optim.Optimizer] = {}
        self.state: Dict = {}

    def lrs(self) -> Dict[str, float]:
        c = self.config
        return {'means': c.means_lr * self.scale, 'scales': c.scales_lr, 'quats': c.quats_lr,
                'opacities': c.opacities_lr, 'sh0': c.sh0_lr, 'shN': c.shN_lr}

    def means_lr_at(self, step: int) -> float:
        """Exponential decay of the means' rate from 1 to 0.01 over the run (gsplat)."""
        return self.lrs()['means'] * 0.01 ** (min(step, self.config.steps) / self.config.steps)

    def setup(self, params: Dict[str, Tensor]) -> None:
        self.params = torch.nn.ParameterDict(
            {k: torch.nn.Parameter(v.to(self.device)) for k, v in params.items()})
        lrs = self.lrs()
        self.optimizers = {k: torch.optim.Adam([{'params': p, 'lr': lrs[k], 'name': k}],
                                               eps=1e-15)
                           for k, p in self.params.items()}
        self.state = self.strategy.initialize_state(scene_scale=self.scale)
        self.strategy.check_sanity(self.params, self.optimizers)

    # ------------------------------------------------------------------------ one step
    def colors(self, camera, degree: int) -> Tensor:  # [N, 3]
        p = self.params
        coeffs = torch.cat([p['sh0'], p['shN']], dim=1) if 'shN' in p else p['sh0']
        dirs = p['means'] - camera.center.to(p['means'])[None]
        return torch.clamp_min(spherical_harmonics(degree, dirs, coeffs) + 0.5, 0.0)

    def render(self, index: int, degree: int, **kwargs):
        p = self.params
        camera = self.capture.cameras[index]
        return rasterize(p['means'], p['quats'], torch.exp(p['scales']),
                         torch.sigmoid(p['opacities']), self.colors(camera, degree), camera,
                         background=torch.tensor(self.config.background, device=self.device),
                         backend=self.config.backend, **kwargs)

    def degree(self) -> int:
        return min(self.step // self.config.sh_degree_interval, self.config.sh_degree)

    def train_step(self, index: int) -> float:
        cfg = self.config
        for group in self.optimizers['means'].param_groups:
            group['lr'] = self.means_lr_at(self.step)
        out = self.render(index, self.degree(), return_info=True)
        target = self.capture.images[index].to(self.device)
        image = out.image
        l1 = (image - target).abs().mean()
        loss = (1.0 - cfg.ssim_lambda) * l1 + cfg.ssim_lambda * (1.0 - ssim(image, target))
        self.strategy.step_pre_backward(self.params, self.optimizers, self.state, self.step,
                                        out.info)
        loss.backward()
        for optimizer in self.optimizers.values():
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
        if out.info['means2d'].grad is None:  # nothing drawn in this view: no screen gradient
            out.info['means2d'].grad = torch.zeros_like(out.info['means2d'])
        growing = len(self.params['means']) < cfg.max_gaussians
        self.strategy.grow_grad2d = cfg.grow_grad2d if growing else math.inf
        self.strategy.step_post_backward(self.params, self.optimizers, self.state, self.step,
                                         out.info, packed=True)
        self.step += 1
        return float(loss.detach())

    @torch.no_grad()
    def evaluate(self) -> Optional[float]:
        """Mean PSNR over the held-out views (None without any)."""
        views = list(self.capture.test)
        if not views:
            return None
        values = [psnr(self.render(i, self.degree()).image, self.capture.images[i])
                  for i in views]
        return sum(values) / len(values)

    def view_order(self, epoch: int) -> List[int]:
        train = self.capture.train
        g = torch.Generator().manual_seed(self.config.seed * 1_000_003 + epoch)
        return [train[i] for i in torch.randperm(len(train), generator=g).tolist()]

    # ------------------------------------------------------------------------ checkpoints
    def save(self, path: Path) -> None:
        from safetensors.torch import save as safetensors_save

        tensors = {f'param/{k}': v.detach().cpu().contiguous() for k, v in self.params.items()}
        adam_steps = {}
        for k, optimizer in self.optimizers.items():
            st = optimizer.state.get(self.params[k], {})
            if st:
                tensors[f'adam/{k}/exp_avg'] = st['exp_avg'].cpu().contiguous()
                tensors[f'adam/{k}/exp_avg_sq'] = st['exp_avg_sq'].cpu().contiguous()
                adam_steps[k] = float(st['step'])
        for k in ('grad2d', 'count'):
            if self.state.get(k) is not None:
                tensors[f'strategy/{k}'] = self.state[k].cpu().contiguous()
        tensors['rng'] = torch.get_rng_state()
        if self.device.type == 'cuda':  # gsplat's splits draw on the GPU
            tensors['rng_cuda'] = torch.cuda.get_rng_state(self.device)
        meta = {'version': _FORMAT_VERSION, 'step': self.step, 'adam_steps': adam_steps,
                'config': asdict(self.config), 'history': self.history}
        atomic_write(path, safetensors_save(tensors, metadata={_META_KEY: json.dumps(meta)}))

    def load(self, path: Path) -> None:
        """Restore a checkpoint written by ``save``; CheckpointError names what does not fit."""
        tensors, meta = _read_checkpoint(path)
        step, history, adam_steps = _checked_meta(path, meta, self.config)
        shapes = param_shapes(self.config, len(tensors.get('param/means', ())))
        params = {k[len('param/'):]: v for k, v in tensors.items() if k.startswith('param/')}
        if set(params) != set(shapes):
            raise CheckpointError(f'{path}: parameters {sorted(params)}, this configuration '
                                  f'has {sorted(shapes)}')
        n = shapes['means'][0]
        expected = {f'param/{k}': shape for k, shape in shapes.items()}
        for k, shape in shapes.items():
            if f'adam/{k}/exp_avg' in tensors or f'adam/{k}/exp_avg_sq' in tensors:
                expected[f'adam/{k}/exp_avg'] = expected[f'adam/{k}/exp_avg_sq'] = shape
        for k in ('grad2d', 'count'):
            if f'strategy/{k}' in tensors:
                expected[f'strategy/{k}'] = (n,)
        expected['rng'] = tuple(torch.get_rng_state().shape)
        if 'rng_cuda' in tensors and self.device.type == 'cuda':
            expected['rng_cuda'] = tuple(torch.cuda.get_rng_state(self.device).shape)
        for k, shape in expected.items():
            v = tensors.get(k)
            if v is None or tuple(v.shape) != shape:
                got = 'missing' if v is None else f'shape {tuple(v.shape)}'
                raise CheckpointError(f'{path}: entry {k} is {got}, expected {shape} '
                                      f'(sh degree {self.config.sh_degree}, {n} Gaussians)')
            wanted = torch.uint8 if k.startswith('rng') else torch.float32
            if v.dtype != wanted or (v.is_floating_point() and not torch.isfinite(v).all()):
                raise CheckpointError(f'{path}: entry {k} must be finite {wanted}, '
                                      f'got {v.dtype}')
        unknown = set(tensors) - set(expected)
        if unknown:
            raise CheckpointError(f'{path}: unknown entries {sorted(unknown)[:5]}')
        self.setup(params)
        for k, optimizer in self.optimizers.items():
            if f'adam/{k}/exp_avg' in tensors:
                optimizer.state[self.params[k]] = {
                    'step': torch.tensor(float(adam_steps.get(k, step))),
                    'exp_avg': tensors[f'adam/{k}/exp_avg'].to(self.device),
                    'exp_avg_sq': tensors[f'adam/{k}/exp_avg_sq'].to(self.device)}
        for k in ('grad2d', 'count'):
            if f'strategy/{k}' in tensors:
                self.state[k] = tensors[f'strategy/{k}'].to(self.device)
        torch.set_rng_state(tensors['rng'])
        if 'rng_cuda' in expected:
            torch.cuda.set_rng_state(tensors['rng_cuda'], self.device)
        self.step, self.history = step, history


#: Settings a resumed run must share with the run it continues (``steps`` may grow).
_RESUME_MAY_DIFFER = ('steps', 'refine_start', 'refine_stop', 'refine_every', 'reset_every',
                      'sh_degree_interval', 'eval_every', 'checkpoint_every')


def param_shapes(config: ReconstructConfig, n: int) -> Dict[str, tuple]:
    """Return the shape of each fitted parameter for ``n`` Gaussians."""
    shapes = {'means': (n, 3), 'scales': (n, 3), 'quats': (n, 4), 'opacities': (n,),
              'sh0': (n, 1, 3)}
    if config.sh_degree > 0:
        shapes['shN'] = (n, (config.sh_degree + 1) ** 2 - 1, 3)
    return shapes


def _read_checkpoint(path: Path):
    from safetensors import SafetensorError
    from safetensors.torch import load as safetensors_load

    data = read_regular_file(path, DEFAULT_MAX_FILE_BYTES, CheckpointError,
                             'reconstruction checkpoint')
    try:
        tensors = safetensors_load(data)
        header_len = int.from_bytes(data[:8], 'little')
        header = json.loads(data[8:8 + header_len])
        meta = json.loads(header['__metadata__'][_META_KEY])
    except (SafetensorError, ValueError, KeyError, TypeError, RecursionError,
            OverflowError) as exc:
        raise CheckpointError(f'{path}: not a reconstruction checkpoint ({exc})') from exc
    if not isinstance(meta, dict):
        raise CheckpointError(f'{path}: not a reconstruction checkpoint (description)')
    return tensors, meta


def _checked_meta(path: Path, meta: dict, config: ReconstructConfig):
    """Return (step, history, Adam steps) of a checkpoint's description, checked."""
    step, history, adam_steps = meta.get('step'), meta.get('history'), meta.get('adam_steps')
    if not isinstance(step, int) or not 0 <= step <= config.steps:
        raise CheckpointError(f'{path}: step {step!r} is not a step of 0..{config.steps}')
    if not isinstance(history, list) or not all(
            isinstance(h, dict) and isinstance(h.get('step'), int)
            and isinstance(h.get('seconds'), (int, float)) for h in history):
        raise CheckpointError(f'{path}: malformed history')
    if not isinstance(adam_steps, dict) or not all(
            isinstance(v, (int, float)) and math.isfinite(v) and v >= 0
            for v in adam_steps.values()):
        raise CheckpointError(f'{path}: malformed adam_steps')
    saved = meta.get('config')
    if isinstance(saved, dict):
        ours = json.loads(json.dumps(asdict(config)))
        differ = sorted(k for k in ours if k not in _RESUME_MAY_DIFFER and saved.get(k) != ours[k])
        if differ:
            raise CheckpointError(f'{path}: written with other settings ({", ".join(differ)}); '
                                  'resume with the same ones or start a new run')
    return step, history, adam_steps


def scaled_schedule(config: ReconstructConfig, steps: int) -> ReconstructConfig:
    """``config`` for ``steps`` steps, the densification window scaled with it.

    The window starts and stops at the same fractions of the run (10 % and 80 % by default) and
    refines about every tenth of it (at most every ``refine_every`` steps); ``reset_every``
    scales with the run; the SH degree reaches ``sh_degree`` at a third of the run.
    """
    from dataclasses import replace

    if steps < 1:
        raise ValueError(f'steps must be >= 1, got {steps}')
    ratio = steps / config.steps
    start = max(1, round(config.refine_start * ratio))
    stop = max(start + 1, round(config.refine_stop * ratio))
    return replace(config, steps=steps, refine_start=start, refine_stop=stop,
                   refine_every=max(1, min(config.refine_every, (stop - start) // 10)),
                   reset_every=max(1, round(config.reset_every * ratio)),
                   sh_degree_interval=max(1, steps // (3 * max(1, config.sh_degree))),
                   eval_every=max(1, min(config.eval_every, steps)))


def reconstruct(capture: Capture, config: Optional[ReconstructConfig] = None, *,
                checkpoint_dir=None, resume: bool = False, device='cpu',
                progress: bool = False,
                callback: Optional[Callable[[int, float], None]] = None) -> Reconstruction:
    """Fit Gaussians to a capture.

    Args:
        capture: Posed images (and sparse points).
        config: The recipe (defaults: ``ReconstructConfig()``).
        checkpoint_dir: Folder for checkpoints (``reconstruct_last.safetensors`` and one every
            ``checkpoint_every`` steps); None: none written.
        resume: Continue from ``checkpoint_dir``'s last checkpoint if there is one.
        device: Torch device of the optimisation.
        progress: Show a progress bar (tqdm) with the loss, PSNR and Gaussian count.
        callback: Called after each step with (step, loss).

    Returns:
        The fitted scene and its history (held-out PSNR every ``eval_every`` steps and at the
        end).
    """
    config = config or ReconstructConfig()
    fit = _Fit(capture, config, device)
    last = Path(checkpoint_dir) / LAST_CHECKPOINT if checkpoint_dir is not None else None
    if last is not None and not resume:  # a new run: an older run's checkpoints go
        for old in Path(checkpoint_dir).glob('reconstruct_*.safetensors'):
            old.unlink()
    if resume and last is not None and last.is_file():
        fit.load(last)
        logger.info('resumed %s at step %d', last, fit.step)
    else:
        torch.manual_seed(config.seed)
        fit.setup(initial_params(capture, config))
    bar = None
    if progress:
        from tqdm import tqdm
        bar = tqdm(total=config.steps, initial=fit.step, desc='reconstruct', unit='step')
    start = time.perf_counter()
    elapsed0 = fit.history[-1]['seconds'] if fit.history else 0.0
    n_train = len(capture.train)
    order: List[int] = []
    loss_sum, loss_count = 0.0, 0
    while fit.step < config.steps:
        epoch, pos = divmod(fit.step, n_train)
        if pos == 0 or not order:
            order = fit.view_order(epoch)
        loss = fit.train_step(order[pos])
        loss_sum, loss_count = loss_sum + loss, loss_count + 1
        if callback is not None:
            callback(fit.step, loss)
        done = fit.step == config.steps
        if fit.step % config.eval_every == 0 or done:
            record = {'step': fit.step, 'loss': loss_sum / max(loss_count, 1),
                      'psnr': fit.evaluate(), 'gaussians': len(fit.params['means']),
                      'seconds': elapsed0 + time.perf_counter() - start}
            fit.history.append(record)
            loss_sum, loss_count = 0.0, 0
            if bar is not None:
                bar.set_postfix(psnr=('-' if record['psnr'] is None
                                      else f"{record['psnr']:.2f}"),
                                gaussians=record['gaussians'])
        if last is not None and (done or (config.checkpoint_every > 0
                                          and fit.step % config.checkpoint_every == 0)):
            if not fit.history or fit.history[-1]['step'] != fit.step:
                fit.history.append({'step': fit.step, 'loss': loss_sum / max(loss_count, 1),
                                    'psnr': None, 'gaussians': len(fit.params['means']),
                                    'seconds': elapsed0 + time.perf_counter() - start})
                loss_sum, loss_count = 0.0, 0  # a resumed run averages the same steps
            fit.save(last)
            if not done:
                fit.save(last.with_name(f'reconstruct_{fit.step:06d}.safetensors'))
        if bar is not None:
            bar.update(1)
    if bar is not None:
        bar.close()
    return Reconstruction(to_scene(fit.params), fit.history, time.perf_counter() - start)
