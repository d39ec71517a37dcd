"""What a query may be and how it ended: the statuses every interface reports.

``QueryStatus`` is the one definition of the status names and values: ``msg/ReferResult.msg``
repeats the values as constants (``test/test_interfaces.py`` keeps the two equal), and the node,
the client and the CLI print ``QueryStatus(value).name``. No torch here, so a ROS client can
import it cheaply.

The ranges of the per-query overrides (``THRESHOLD_RANGE``, ``TOP_K_RANGE``) are also those of
the node's ``selection.threshold`` and ``selection.top_k`` parameters: an action goal may ask
for no more than the parameters allow (:func:`validate_overrides`).
"""
import enum
import math
from typing import Optional
import unicodedata

#: Allowed probability threshold (node parameter ``selection.threshold``, action goal override).
THRESHOLD_RANGE = (0.01, 0.99)
#: Allowed number of merged instances (``selection.top_k``, action goal override).
TOP_K_RANGE = (1, 64)
# Characters that show nothing and that the BERT tokenizer drops: separators, format characters
# (U+200B, U+FEFF, soft hyphen, bidi overrides) and non-spacing / enclosing combining marks.
_INVISIBLE = frozenset({'Zs', 'Zl', 'Zp', 'Cf', 'Mn', 'Me'})


class QueryStatus(enum.IntEnum):
    """Outcome of one query; values equal the ReferResult status constants."""

    OK = 0
    NO_MATCH = 1
    INVALID_QUERY = 2
    NOT_READY = 3
    DROPPED = 4
    ERROR = 5
    AMBIGUOUS = 6


#: Statuses whose answer carries a target (pose, box, cloud, mask): AMBIGUOUS fills in its best
#: candidate like OK and lists every candidate.
ANSWERED = (QueryStatus.OK, QueryStatus.AMBIGUOUS)


def validate_query(text, max_chars: int = 512) -> Optional[str]:
    """Return why ``text`` is not a valid query, or None if it is.

    Rejected: non-strings, empty or whitespace-only text, more than ``max_chars`` characters,
    control characters (Unicode category Cc, e.g. NUL, BEL, newline), which no spoken or typed
    referring expression contains and which corrupt logs and terminals, and text of only
    invisible characters (separators, format characters such as U+200B, U+FEFF, the soft hyphen
    or a bidi override, combining marks), of which the text encoder keeps no word piece. The
    encoder has the last word: a query it gets no word piece from is INVALID_QUERY too
    (``ReferringModel.query``).
    """
    if not isinstance(text, str):
        return f'query must be a string, got {type(text).__name__}'
    if not text.strip():
        return 'query is empty'
    if len(text) > max_chars:
        return f'query has {len(text)} characters (maximum {max_chars})'
    visible = False
    for position, char in enumerate(text):
        category = unicodedata.category(char)
        if category == 'Cc':
            return f'query contains control character U+{ord(char):04X} at position {position}'
        visible = visible or category not in _INVISIBLE
    if not visible:
        return ('query has only invisible characters (format, separator or combining '
                f'characters such as U+{ord(text.strip()[0]):04X})')
    return None


def validate_overrides(top_k: int, threshold: float) -> Optional[str]:
    """Return why an action goal's ``top_k`` / ``score_threshold`` is invalid, or None.

    0 means "the node's parameter" for both (the Refer action's convention); any other value
    must lie in the parameter's own range (``TOP_K_RANGE``, ``THRESHOLD_RANGE``). NaN, infinite,
    negative and out-of-range values are refused with the range in the message, never replaced.
    """
    low, high = TOP_K_RANGE
    if top_k != 0 and not low <= top_k <= high:
        return f'top_k {top_k} is out of range (0 = node parameter, or {low}..{high})'
    low, high = THRESHOLD_RANGE
    slack = 1e-6  # the goal's float32 rounding: float32(0.99) = 0.99000001
    if not math.isfinite(threshold) or (threshold != 0.0
                                        and not low - slack <= threshold <= high + slack):
        return (f'score_threshold {threshold:g} is out of range (0 = node parameter, or '
                f'{low:g}..{high:g})')
    return None


def status_name(value: int) -> str:
    """Name of a status value (``'NO_MATCH'``); the number itself when it is unknown."""
    try:
        return QueryStatus(value).name
    except ValueError:
        return str(value)


def printable(text) -> str:
    r"""Return ``text`` safe to print on a terminal: every non-printable character escaped.

    Object names and sentences come from files; one holding an escape sequence (``ESC [2J``)
    or another control character would act on the terminal that prints it. Such characters are
    shown as Python writes them (``\x1b``, ``\n``, ``\u202e``); the rest is unchanged.
    """
    text = str(text)
    if text.isprintable():
        return text
    return ''.join(c if c.isprintable() else c.encode('unicode_escape').decode('ascii')
                   for c in text)
