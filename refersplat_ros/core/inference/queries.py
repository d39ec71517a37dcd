"""What a query may be and how it ended: the statuses every interface reports.

``QueryStatus`` is the one definition of the status names and values: ``msg/ReferResult.msg``
repeats the values as constants (``test/test_interfaces.py`` keeps the two equal), and the node,
the client and the CLI print ``QueryStatus(value).name``. No torch here, so a ROS client can
import it cheaply.
"""
import enum
from typing import Optional
import unicodedata


class QueryStatus(enum.IntEnum):
    """Outcome of one query; values equal the ReferResult status constants."""

    OK = 0
    NO_MATCH = 1
    INVALID_QUERY = 2
    NOT_READY = 3
    DROPPED = 4
    ERROR = 5


def validate_query(text, max_chars: int = 512) -> Optional[str]:
    """Return why ``text`` is not a valid query, or None if it is.

    Rejected: non-strings, empty or whitespace-only text, more than ``max_chars`` characters, and
    control characters (Unicode category Cc, e.g. NUL, BEL, newline), which no spoken or typed
    referring expression contains and which corrupt logs and terminals.
    """
    if not isinstance(text, str):
        return f'query must be a string, got {type(text).__name__}'
    if not text.strip():
        return 'query is empty'
    if len(text) > max_chars:
        return f'query has {len(text)} characters (maximum {max_chars})'
    for position, char in enumerate(text):
        if unicodedata.category(char) == 'Cc':
            return f'query contains control character U+{ord(char):04X} at position {position}'
    return None


def status_name(value: int) -> str:
    """Name of a status value (``'NO_MATCH'``); the number itself when it is unknown."""
    try:
        return QueryStatus(value).name
    except ValueError:
        return str(value)
