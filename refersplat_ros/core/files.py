"""Opening input files a careless or hostile caller names: regular files within a size limit.

A scene or checkpoint path may name anything: ``/dev/zero`` (endless), a FIFO (``open`` blocks
until a writer appears), a directory, or a file far larger than memory. Every loader opens its
file through :func:`open_regular_file`, which never blocks (``O_NONBLOCK``), checks the opened
file itself (``fstat`` of the descriptor, so a path swapped after a check cannot slip through)
and refuses anything but a regular file of at most ``max_bytes`` with the loader's own named
error, whose message says why.
"""
import os
from pathlib import Path
import stat
import tempfile
from typing import BinaryIO, Type

#: Default limit on the size of one scene or checkpoint file: 4 GiB (a 16-million-Gaussian .ply
#: of SH degree 3 is ~4 GB). The node's ``load.max_file_mb`` parameter sets it there.
DEFAULT_MAX_FILE_BYTES = 4 * 2**30

_KINDS = ((stat.S_ISDIR, 'a directory'), (stat.S_ISCHR, 'a character device'),
          (stat.S_ISBLK, 'a block device'), (stat.S_ISFIFO, 'a FIFO (named pipe)'),
          (stat.S_ISSOCK, 'a socket'))


def _describe(mode: int) -> str:
    return next((name for test, name in _KINDS if test(mode)), 'not a regular file')


def open_regular_file(path, max_bytes: int, error: Type[Exception], what: str) -> BinaryIO:
    """Open ``path`` for binary reading if it is a regular file of at most ``max_bytes``.

    Args:
        path: The file to open (symbolic links are followed).
        max_bytes: Largest accepted size in bytes.
        error: Exception class raised on refusal (the loader's named error).
        what: What the file is, for messages (``'checkpoint'``, ``'scene'``).

    Raises:
        error: the file is missing or unreadable, not a regular file, or larger than
            ``max_bytes``; the message names the path and the reason.
    """
    flags = os.O_RDONLY | getattr(os, 'O_NONBLOCK', 0) | getattr(os, 'O_CLOEXEC', 0)
    try:
        fd = os.open(os.fspath(path), flags)
    except FileNotFoundError as exc:
        raise error(f'{what} {path}: no such file') from exc
    except OSError as exc:
        raise error(f'{what} {path}: cannot open: {exc.strerror or exc}') from exc
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise error(f'{what} {path}: is {_describe(info.st_mode)}, not a regular file')
        if info.st_size > max_bytes:
            raise error(f'{what} {path}: {info.st_size} bytes, more than the limit of '
                        f'{max_bytes} bytes ({_mib(max_bytes)})')
        return os.fdopen(fd, 'rb')
    except BaseException:
        os.close(fd)
        raise


def read_regular_file(path, max_bytes: int, error: Type[Exception], what: str) -> bytes:
    """Return the bytes of ``path``, checked like :func:`open_regular_file`.

    Reads at most ``max_bytes + 1`` bytes, so a file that grows while it is read is refused
    instead of exhausting memory.
    """
    with open_regular_file(path, max_bytes, error, what) as handle:
        try:
            data = handle.read(max_bytes + 1)
        except OSError as exc:
            raise error(f'{what} {path}: cannot read: {exc.strerror or exc}') from exc
    if len(data) > max_bytes:
        raise error(f'{what} {path}: grew beyond the limit of {max_bytes} bytes while read')
    return data


def _mib(size: int) -> str:
    return f'{size / 2**20:g} MiB'


def atomic_write(path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (temp file + fsync + os.replace)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f'.{path.name}.', suffix='.tmp', dir=path.parent)
    try:
        with os.fdopen(fd, 'wb') as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        try:
            os.unlink(tmp_name)
        except FileNotFoundError:
            pass
        raise
    try:  # make the rename durable; not possible on every platform / filesystem
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except OSError:
        pass
