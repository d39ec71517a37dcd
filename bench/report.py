"""Shared by the benchmarks: the machine line; a measured table written into a docs/ section."""
import datetime
import os
from pathlib import Path
import platform


def write_section(text: str, path: Path, section: str) -> None:
    """Replace (or append) the section of ``path`` headed ``## section`` with ``text``."""
    content = path.read_text() if path.is_file() else ''
    marker = f'## {section}'
    start = content.find(marker)
    if start < 0:
        content = content.rstrip() + '\n\n' + text.rstrip() + '\n'
    else:
        end = content.find('\n## ', start + len(marker))
        content = content[:start] + text.rstrip() + '\n' + (content[end:] if end >= 0 else '')
    path.write_text(content)


def environment(threads: int) -> str:
    """Return "on <date>: <machine>, <cores> CPU cores, torch <version>, <threads> threads"."""
    import torch
    return (f'on {datetime.date.today().isoformat()}: {platform.machine()}, {os.cpu_count()} '
            f'CPU cores, torch {torch.__version__}, {threads} threads')


def publish(text: str, path: Path, section: str, write: bool = True) -> None:
    """Print a benchmark's section and (``write``) put it into ``path``."""
    print('\n' + text)
    if write:
        write_section(text, path, section)
        print(f'written to {path}')
