"""Property-based fuzzing of every decoder that takes bytes from the network.

Each test states which exceptions its decoder may raise on bad input (the
"documented" errors); anything else, a hang or an unbounded allocation is a bug.

Budgets: ``make test`` runs the small deterministic profile (derandomized,
100 examples per test, 60 for the costly ones; every decoder has several tests,
so each gets a few hundred); ``GETHP2P_FUZZ=long`` (``make fuzz``) selects the
long randomized profile: 20,000 examples per test, or GETHP2P_FUZZ_EXAMPLES.
"""

import os

from hypothesis import HealthCheck, settings, strategies as st

_SUPPRESS = [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much]

settings.register_profile(
    "gethp2p-ci", max_examples=100, deadline=None, derandomize=True, database=None,
    suppress_health_check=_SUPPRESS, print_blob=True)
settings.register_profile(
    "gethp2p-long", max_examples=int(os.environ.get("GETHP2P_FUZZ_EXAMPLES", "20000")),
    deadline=None, derandomize=False, suppress_health_check=_SUPPRESS, print_blob=True)

LONG = os.environ.get("GETHP2P_FUZZ", "") == "long"

# Applied per test (not loaded globally) so other hypothesis tests in the suite
# keep their own settings.
FUZZ = settings.get_profile("gethp2p-long" if LONG else "gethp2p-ci")


def fuzz_settings(ci_examples=None):
    """FUZZ, with a smaller example count in the CI profile for costly decoders."""
    if LONG or ci_examples is None:
        return FUZZ
    return settings(FUZZ, max_examples=ci_examples)


@st.composite
def mutated(draw, data: bytes, max_ops: int = 4):
    """``data`` with up to ``max_ops`` bit flips, byte inserts, deletes, overwrites or a truncation."""
    buf = bytearray(data)
    for _ in range(draw(st.integers(1, max_ops))):
        op = draw(st.sampled_from(("flip", "insert", "delete", "set", "truncate", "extend")))
        n = len(buf)
        if op == "flip" and n:
            i = draw(st.integers(0, n - 1))
            buf[i] ^= 1 << draw(st.integers(0, 7))
        elif op == "insert":
            i = draw(st.integers(0, n))
            buf[i:i] = draw(st.binary(min_size=1, max_size=8))
        elif op == "delete" and n:
            i = draw(st.integers(0, n - 1))
            del buf[i:i + draw(st.integers(1, 8))]
        elif op == "set" and n:
            i = draw(st.integers(0, n - 1))
            buf[i] = draw(st.sampled_from((0x00, 0x7F, 0x80, 0x81, 0xB7, 0xB8, 0xBF, 0xC0, 0xF7, 0xF8, 0xFF)))
        elif op == "truncate" and n:
            del buf[draw(st.integers(0, n - 1)):]
        elif op == "extend":
            buf += draw(st.binary(min_size=1, max_size=32))
    return bytes(buf)


# Nested RLP-shaped values: byte strings and lists of them.
rlp_values = st.recursive(
    st.binary(max_size=70),
    lambda children: st.lists(children, max_size=6),
    max_leaves=10,
)


def rlp_len_prefix(n: int, short: int) -> bytes:
    if n < 56:
        return bytes((short + n,))
    ln = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes((short + 55 + len(ln),)) + ln


@st.composite
def rlp_headers(draw):
    """An RLP string or list header, possibly claiming far more bytes than follow."""
    short = draw(st.sampled_from((0x80, 0xC0)))
    n = draw(st.one_of(st.integers(0, 80), st.sampled_from((1 << 16, 1 << 24, (1 << 32) - 1, (1 << 64) - 1))))
    return rlp_len_prefix(n, short)
