"""Trained runs shared by the whole session, trained once in one background process.

Training dominates the suite's time (the hard-tiny run alone was a third of it) and uses one
core, while the ROS tests mostly wait on node processes. So the runs the selected tests need
are trained once per session by ``python -m helpers.trained_runs OUT JOB...``, a worker
process with one torch thread started when the session starts, job after job; a session
fixture waits for its job (``TrainingWorker.result``) and gets the job's return value. Tests
that would modify a run copy it first.

Jobs (``JOBS``: name -> function of the output folder):
    tiny: ``make_trained_scene`` (the tiny Ref-Synth preset, 500 steps, the bundled encoder).
    tiny-names: a names-only field on the same scene (60 steps), after ``tiny``.
    hard-tiny: the hard-tiny preset trained with the default recipe, capped at 1500 steps.
    tiny-reconstructed: the tiny preset as a capture (``make-scene --reconstructed``, 200
        reconstruction steps), a field of 150 steps with the object names.
"""
import os
import pickle
from pathlib import Path
import subprocess
import sys
import time
import traceback

REPO_ROOT = Path(__file__).resolve().parents[2]
#: Seconds a test waits for its run: far above the runs' few minutes on a loaded 2-core machine.
WAIT_S = 3600.0


def _tiny(out: Path):
    from helpers.trained_scene import make_trained_scene
    return make_trained_scene(out, steps=500)


def _tiny_names(out: Path):
    from refersplat_ros.core.train.trainer import train, TrainConfig
    return train(TrainConfig(data=out.parent / 'tiny' / 'scene', out=out / 'run', steps=60,
                             names_only=True, progress=False))


def _hard_tiny(out: Path):
    import json

    from refersplat_ros.core.datasets.ref_synth.generator import make_scene, preset_config
    from refersplat_ros.core.train.trainer import train, TrainConfig
    data = out / 'scene'
    make_scene(preset_config('hard-tiny', seed=0), data, overwrite=True, progress=False,
               contact_sheet=False)
    result = train(TrainConfig(data=data, out=out / 'run', max_steps=1500, progress=False))
    return data, json.loads((data / 'manifest.json').read_text()), result


def _tiny_reconstructed(out: Path):
    from dataclasses import replace

    from refersplat_ros.core.datasets.ref_synth.generator import make_scene, preset_config
    from refersplat_ros.core.datasets.ref_synth.reconstructed import CaptureConfig
    from refersplat_ros.core.reconstruct.fit import ReconstructConfig, scaled_schedule
    from helpers.trained_scene import make_trained_scene
    capture = CaptureConfig(reconstruct=replace(scaled_schedule(ReconstructConfig(), 200),
                                                max_gaussians=4000))
    make_scene(replace(preset_config('tiny', seed=2), capture=capture), out / 'scene',
               progress=False, contact_sheet=False)
    # the object graph answers from the labels lifted from the masks: a short field will do
    return make_trained_scene(out, seed=2, steps=150)


#: In the order they are trained: jobs that tests need early come first.
JOBS = {'tiny': _tiny, 'tiny-names': _tiny_names, 'tiny-reconstructed': _tiny_reconstructed,
        'hard-tiny': _hard_tiny}
#: What a job needs trained before it (added to a session's jobs).
NEEDS = {'tiny-names': 'tiny'}


class TrainingWorker:
    """The background process that trains ``jobs`` into ``root`` (one folder per job)."""

    def __init__(self, root, jobs):
        self.root = Path(root)
        wanted = set(jobs) | {NEEDS[j] for j in jobs if j in NEEDS}
        self.jobs = [job for job in JOBS if job in wanted]
        self.log_path = self.root / 'worker.log'
        self.popen = None
        if self.jobs:
            env = dict(os.environ, OMP_NUM_THREADS='1',
                       PYTHONPATH=os.pathsep.join([str(REPO_ROOT), str(REPO_ROOT / 'test')]))
            with open(self.log_path, 'wb') as log:
                self.popen = subprocess.Popen(
                    [sys.executable, '-m', 'helpers.trained_runs', str(self.root), *self.jobs],
                    cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL)

    def result(self, job: str, timeout: float = WAIT_S):
        """Wait for ``job`` and return what its function returned; AssertionError if it failed."""
        assert job in self.jobs, f'{job} was not scheduled (jobs: {self.jobs})'
        done, failed = self.root / f'{job}.pkl', self.root / f'{job}.error'
        deadline = time.monotonic() + timeout
        while not done.is_file():
            assert not failed.is_file(), f'training {job} failed:\n{failed.read_text()}'
            assert self.popen.poll() is None or done.is_file(), \
                f'training worker exited ({self.popen.returncode}):\n{self.log()}'
            assert time.monotonic() < deadline, f'training {job} took over {timeout} s'
            time.sleep(0.2)
        with open(done, 'rb') as handle:
            return pickle.load(handle)

    def log(self) -> str:
        return self.log_path.read_text(errors='replace') if self.log_path.is_file() else ''

    def stop(self):
        """Stop the worker if it still runs (a session that ended early)."""
        if self.popen is not None and self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(timeout=10)


def main(argv):
    """Train each named job into ``argv[0]/<job>``; write ``<job>.pkl`` or ``<job>.error``."""
    import torch
    torch.set_num_threads(1)  # one core: the suite runs on the other one
    root = Path(argv[0])
    for job in argv[1:]:
        try:
            value = JOBS[job](root / job)
        except BaseException:
            (root / f'{job}.error').write_text(traceback.format_exc())
            continue
        partial = root / f'{job}.pkl.partial'
        with open(partial, 'wb') as handle:
            pickle.dump(value, handle)
        partial.rename(root / f'{job}.pkl')  # atomic: a waiting test never reads half a file
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
