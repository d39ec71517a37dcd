"""Tracking mode: after an answer, re-render its target in the live camera as the camera moves.

The node's worker thread calls :meth:`TargetTracker.step` when no query waits; any new query,
``~/clear``, a new or freed model ends tracking (:meth:`TargetTracker.stop`). A render that
``~/clear`` or a new query overtook is not published: every stop bumps a generation, and a
query starts tracking only if no stop came since it began. No rclpy here.
"""
from dataclasses import dataclass
import threading
import time
from typing import Callable, Optional

import numpy as np

from refersplat_ros.core.scene.frames import FrameError
from refersplat_ros.live_camera import LiveCamera


@dataclass
class Tracked:
    """The target that tracking mode re-renders for each new camera pose."""

    query_id: int
    indices: np.ndarray
    last: float = 0.0          # time.monotonic() of the last render published
    renders: int = 0


class TargetTracker:
    """The tracked target, its render rate limit and the guard against stale renders.

    Args:
        camera: The live camera; a render needs a new message in it since the last one.
        render: ``render(indices, info, pose)`` returns the target's view in that camera, or
            None when there is no model; ``FrameError`` for a camera it cannot use.
        publish: ``publish(view, info)`` publishes a render.
        warn: Logs why a live camera was not used.
    """

    def __init__(self, camera: LiveCamera, render: Callable, publish: Callable,
                 warn: Callable[[str], None]):
        self._camera, self._render, self._publish, self._warn = camera, render, publish, warn
        self._lock = threading.Lock()
        self._tracked: Optional[Tracked] = None
        self._generation = 0   # bumped by every stop: a query started before keeps off
        self.renders = 0       # renders published, over the node's lifetime
        self.last_render_ms = 0.0

    @property
    def generation(self) -> int:
        """Count of stops so far; a query notes it when it starts (:meth:`start`)."""
        return self._generation

    @property
    def active(self) -> bool:
        """True while a target is tracked."""
        return self._tracked is not None

    def start(self, query_id: int, indices, generation: int) -> bool:
        """Track a query's target unless a stop came since the query noted ``generation``."""
        with self._lock:
            if self._generation != generation:
                return False
            self._tracked = Tracked(query_id, np.asarray(indices), time.monotonic())
            return True

    def stop(self) -> Optional[Tracked]:
        """End tracking; return what was tracked (None if nothing)."""
        with self._lock:
            tracked, self._tracked = self._tracked, None
            self._generation += 1
        return tracked

    def describe(self) -> str:
        """Say what is tracked, for diagnostics."""
        tracked = self._tracked
        return 'off' if tracked is None else f'query {tracked.query_id}, {tracked.renders} renders'

    def step(self, max_rate_hz: float) -> None:
        """Render and publish the tracked target for the newest camera, at most max_rate_hz."""
        tracked = self._tracked
        if (tracked is None or not self._camera.changed
                or time.monotonic() - tracked.last < 1.0 / max_rate_hz):
            return
        self._camera.changed = False
        info, pose = self._camera.pair()
        if info is None:
            return
        tracked.last = time.monotonic()  # failures, too, wait for the next interval
        try:
            view = self._render(tracked.indices, info, pose)
        except FrameError as exc:
            self._warn(f'tracking: live camera not used: {exc}')
            return
        with self._lock:  # a stop answered before this point: nothing is published
            if view is None or self._tracked is not tracked:
                return  # cleared or replaced while rendering
            self._publish(view, info)
            tracked.last = time.monotonic()
            tracked.renders += 1
        self.renders += 1
        self.last_render_ms = view.render_ms
