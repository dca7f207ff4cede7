"""Labels: the values a school sends that become published dimension values (resource ids,
subjects, contributing schools, a roster's categories), and the words the release reserves.

One list of reserved labels: the release marks its totals and its missing values with these
words, so a school's value spelled the same (in any case) would be read as a total or as
"unknown". Intake refuses such values; the release imports its markers from here.

What a label may look like is the contract's to declare (a field's `logicalTypeOptions.pattern`);
without one, it is a short code-like id. Some shapes are refused whatever the pattern: reserved
words, spreadsheet formulas (OWASP CSV injection: a leading `=`, `+`, `-`, `@`, tab or CR),
markup, control characters, and anything over `MAX_LABEL_CHARS`. Whether a label names a person
(roster names, e-mail addresses, phone numbers, ids) is checked in privacy.freetext.labels.
"""

from __future__ import annotations

import re
from functools import cache

ALL_SCHOOLS = "ALL"  # the school dimension's consortium total
ALL_VALUES = "all"  # any other dimension's total
UNKNOWN = "unknown"  # a missing attribute, published as its own category
# Compared case-insensitively: `All`, `ALL` and `all` are one reserved word.
RESERVED_LABELS: frozenset[str] = frozenset(w.casefold() for w in (ALL_SCHOOLS, ALL_VALUES, UNKNOWN))

DEFAULT_LABEL_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$"
MAX_LABEL_CHARS = 200
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_NUMBER = re.compile(r"^[-+]?(\d+(\.\d*)?|\.\d+)$")
_NEVER = re.compile(r"[\x00-\x1f\x7f<>\"`\\]")  # control characters, markup and quoting


def is_reserved(value: str) -> bool:
    return value.strip().casefold() in RESERVED_LABELS


def looks_like_formula(value: str) -> bool:
    """A cell a spreadsheet would evaluate (OWASP): starts with = + - @ tab or CR, and is not a number."""
    return value.startswith(FORMULA_START) and not _NUMBER.match(value)


@cache
def compiled(pattern: str | None) -> re.Pattern:
    return re.compile(pattern or DEFAULT_LABEL_PATTERN)


def label_shape_problem(value: str, pattern: str | None = None) -> str | None:
    """Why `value` may not be a label, in words that never repeat it; None when its shape is fine."""
    if is_reserved(value):
        return "a reserved word of the release (it marks totals or unknowns)"
    if looks_like_formula(value):
        return "starts like a spreadsheet formula"
    if len(value) > MAX_LABEL_CHARS:
        return f"longer than {MAX_LABEL_CHARS} characters"
    if _NEVER.search(value):
        return "holds control characters, markup or quotes"
    if not compiled(pattern).fullmatch(value):
        return "does not match the label pattern the contract declares" if pattern else "not a code-like id"
    return None
