"""Shared by the benchmarks: write a measured table into a section of a docs/ file."""
from pathlib import Path


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
