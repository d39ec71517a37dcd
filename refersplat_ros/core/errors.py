"""Error types of the core library: one base class, one subclass per kind of bad input.

Every error message names the file (and field) it is about, so a user can fix the input.
"""


class RefersplatError(Exception):
    """Base class of every error raised on purpose by refersplat_ros."""


class SceneFormatError(RefersplatError, ValueError):
    """A Gaussian scene file (.ply / .pth) is missing, truncated, malformed or holds NaN/inf."""


class CameraFormatError(RefersplatError, ValueError):
    """A camera file (COLMAP sparse model, transforms.json) is missing or malformed."""


class DatasetError(RefersplatError, ValueError):
    """A dataset folder (Ref-LERF / Ref-Synth layout) is malformed or misses a file."""


class CheckpointError(RefersplatError, ValueError):
    """A referring-field checkpoint is missing, corrupt, or does not match the scene/encoder."""


class TextEncoderError(RefersplatError, RuntimeError):
    """The configured text encoder cannot be loaded (e.g. not available offline)."""
