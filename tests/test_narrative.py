"""The phrase matcher: phrase syntax, simple negation, clause boundaries."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from plugin import narrative
from plugin.narrative import PhraseMatcher, shingles, similarity
from plugin.policy import load_policy


@pytest.fixture(scope="module")
def matcher():
    return PhraseMatcher(load_policy())


def affirmed(matcher, name, text):
    return matcher.affirmed(name, matcher.clauses(text))


@pytest.mark.parametrize(
    ("text", "found"),
    [
        ("Mod verbal cues for hip strategy", True),
        ("No cues needed", False),
        ("without cues", False),
        ("cues were not required", False),
        ("Cues not needed, tolerated well", False),
        ("Pt did not need tactile cueing", False),
        ("No pain. Tactile cues for weight shift", True),  # negation stays in its clause
        ("PNF D2 patterns with manual facilitation", True),
    ],
)
def test_skilled_phrases_and_negation(matcher, text, found):
    assert bool(affirmed(matcher, "skilled", text)) is found


@pytest.mark.parametrize(
    ("text", "found"),
    [
        ("impaired single-leg balance", True),
        ("decreased proprioception R ankle", True),
        ("balance deficits noted", True),
        ("ambulated without loss of balance", False),
        ("denies dizziness", False),
        ("Good balance. Deficit in strength", False),  # a phrase never spans two clauses
    ],
)
def test_deficit_phrases(matcher, text, found):
    assert bool(affirmed(matcher, "deficit", text)) is found


def test_response_is_not_negatable(matcher):
    assert affirmed(matcher, "response", "Pt did not tolerate standing")


def test_shingle_similarity():
    a = shingles("Tandem stance on foam with verbal cues for hip strategy today")
    assert similarity(a, a) == 1.0
    assert similarity(a, shingles("Gait training on stairs with rail")) == 0.0
    assert similarity(a, frozenset()) == 0.0


_PLAIN_CLAUSE_SPLIT = re.compile(r"[.;!?,\n()\[\]]+|\s(?:but|however|although|though)\s")
_CLAUSE_PIECES = st.lists(
    st.sampled_from(
        list("abt ,.;\n()[]!?\t\r\xa0") + [" but ", " however ", "\nbut ", " although\n", "though"]
    ),
    max_size=25,
).map("".join)


def _plain_shingles(text: str, size: int) -> frozenset:
    words = narrative._NON_WORD.sub(" ", narrative.normalise(text)).split()
    return frozenset(tuple(words[i : i + size]) for i in range(max(0, len(words) - size + 1)))


@given(
    st.text(alphabet=st.sampled_from("ab1 .,;'*_-\n\tÄİßé\u00a0\u2003/:"), max_size=60)
    | st.text(max_size=40),
    st.integers(min_value=1, max_value=4),
)
@settings(max_examples=3000, deadline=None)
def test_shingles_are_the_word_ngrams_of_the_normalised_text(text, size):
    """Made in one regex pass and by zip for speed, they must be those of the plain definition:
    the normalised text's words, n at a time; and the similarity is Jaccard's."""
    plain = _plain_shingles(text, size)
    assert shingles(text, size) == plain
    other = _plain_shingles(text[: len(text) // 2] + " tandem stance foam", size)
    if plain and other:
        assert similarity(plain, other) == len(plain & other) / len(plain | other)


@given(_CLAUSE_PIECES)
@settings(max_examples=3000, deadline=None)
def test_the_fast_clause_split_splits_as_the_plain_pattern(text):
    """The clause-break regex is written for speed; it must split exactly as the plain one."""
    assert narrative._CLAUSE_SPLIT.split(text) == _PLAIN_CLAUSE_SPLIT.split(text)
