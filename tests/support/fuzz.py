"""Hypothesis strategies the vendors' fuzz tests share: any JSON a server could send, and the
numbers that break parsers (overflow, NaN, infinities, bool-as-int)."""

from hypothesis import strategies as st

PLAIN_SCALARS = (
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=12)
)

EXTREME_NUMBERS: list[object] = [
    "NaN",
    "Infinity",
    "-1",
    "1e999",
    "0",
    0,
    -1,
    -3600,
    10**13,
    10**20,
    2**63,
    -(2**63),
    2**64,
    10**400,
    1e308,
    -1e308,
    0.5,
    float("nan"),
    float("inf"),
    True,
]


def json_values(scalars: st.SearchStrategy = PLAIN_SCALARS, key_size: int = 6) -> st.SearchStrategy:
    """Nested lists and objects of ``scalars``, a dozen leaves at most."""
    return st.recursive(
        scalars,
        lambda children: (
            st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=key_size), children, max_size=4)
        ),
        max_leaves=12,
    )
