"""Admin-written parameter patterns: refused when they can backtrack for ever, matched in time.

A pattern such as `(a+)+$` takes exponential time on a value that almost matches (66 s for 31
characters). Such patterns are refused when an admin saves them (`pattern_problem`, applied by
`services.curation_rules` to the edit form and the import alike), and every match runs under a
time limit (`fullmatch`), so a pattern stored before this rule, or one that slips through it,
answers a clear error instead of holding a worker.
"""

from __future__ import annotations

import importlib
import re
from typing import Any

import regex

# A safe pattern matches a 4,000-character value in well under a millisecond.
MATCH_TIMEOUT_SECONDS = 0.2
# An outer repetition allowing more repeats than this, around a variable-length one, is refused:
# `(\d{1,3}\.){3}` is fine, `(\w+\s?)+` and `(a{1,3}){1,50}` are not.
MAX_SAFE_OUTER_REPEATS = 10

# The standard library's own parser: the very reading `re.compile` makes of the pattern.
# (Private, without type stubs; `sre_parse`, its deprecated public alias, goes in Python 3.15.)
_parser: Any = importlib.import_module("re._parser")
_REPEATS = {_parser.MAX_REPEAT, _parser.MIN_REPEAT, _parser.POSSESSIVE_REPEAT}

NESTED_MESSAGE = (
    "This pattern repeats a part that itself repeats (as in (a+)+ or (\\w*\\s?)*), which can "
    "take minutes to reject some values: repeat the part once instead (a+ rather than (a+)+)."
)


class PatternTimeout(Exception):
    """The value could not be checked against the pattern within the time limit."""


class PatternUnusable(Exception):
    """A stored pattern the matcher cannot compile (saved before the rules refused it)."""


def pattern_problem(pattern: str) -> str | None:
    """Why an admin's pattern cannot be saved (invalid, too large, nested repetition), or None."""
    try:
        re.compile(pattern)
        regex.compile(pattern)
        tree = _parser.parse(pattern)
    except (re.error, regex.error) as exc:
        return f"Not a valid regular expression: {exc}."
    except (OverflowError, RecursionError):  # a{99999999999}; groups nested too deep
        return "Not a usable regular expression: too large."
    if _nested_repetition(tree, inside=False):
        return NESTED_MESSAGE
    return None


def fullmatch(pattern: str, value: str) -> bool:
    """Whether the whole value matches.

    Raises `PatternTimeout` when it takes too long to tell, `PatternUnusable` when the pattern
    does not compile.
    """
    try:
        return regex.fullmatch(pattern, value, timeout=MATCH_TIMEOUT_SECONDS) is not None
    except TimeoutError:
        raise PatternTimeout(pattern) from None
    except (regex.error, OverflowError, RecursionError):
        raise PatternUnusable(pattern) from None


def _nested_repetition(items: Any, *, inside: bool) -> bool:
    """Whether a repetition of many repeats holds a variable-length repetition, at any depth."""
    for op, av in items:
        if op in _REPEATS:
            low, high, body = av
            if inside and low != high:
                return True
            many = high == _parser.MAXREPEAT or high > MAX_SAFE_OUTER_REPEATS
            if _nested_repetition(body, inside=inside or many):
                return True
        elif any(_nested_repetition(part, inside=inside) for part in _children(op, av)):
            return True
    return False


def _children(op: Any, av: Any) -> list[Any]:
    """The sub-patterns of one parsed item: groups, alternatives, look-arounds, conditionals."""
    if op is _parser.SUBPATTERN:
        return [av[-1]]
    if op is _parser.BRANCH:
        return list(av[1])
    if op in (_parser.ASSERT, _parser.ASSERT_NOT):
        return [av[1]]
    if op is _parser.ATOMIC_GROUP:
        return [av]
    if op is _parser.GROUPREF_EXISTS:
        return [part for part in av[1:] if part is not None]
    return []
