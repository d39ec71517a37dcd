"""Error types of the core library: one base class, one subclass per kind of bad input.

Every error message names the file (and field) it is about, so a user can fix the input.
"""


class ReferSplatError(Exception):
    """Base class of every error raised on purpose by refersplat_ros.

    ``exit_code`` is what the ``refersplat`` command exits with when the error ends it
    (docs/CLI.md#exit-codes): 2, bad input, unless a subclass says otherwise.
    """

    exit_code = 2


class SceneFormatError(ReferSplatError, ValueError):
    """A Gaussian scene file (.ply / .pth) is missing, truncated, malformed or holds NaN/inf."""


class CameraFormatError(ReferSplatError, ValueError):
    """A camera file (COLMAP sparse model, transforms.json) is missing or malformed."""


class DatasetError(ReferSplatError, ValueError):
    """A dataset folder (Ref-LERF / Ref-Synth layout) is malformed or misses a file."""


class CheckpointError(ReferSplatError, ValueError):
    """A referring-field checkpoint is missing, corrupt, or does not match the scene/encoder."""


class TextEncoderError(ReferSplatError, RuntimeError):
    """The configured text encoder cannot be loaded (e.g. not available offline)."""


class QueryError(ReferSplatError, ValueError):
    """A referring query the text encoder cannot use (e.g. no word piece is left of it)."""


class QueryTimeout(ReferSplatError, TimeoutError):
    """A query ran past its time budget; the work done so far is discarded."""
