"""`?q=` split into words as Django REST Framework's SearchFilter splits it."""

import pytest

from electro_isla.search import search_terms


@pytest.mark.parametrize(
    ("q", "terms"),
    [
        ("", []),
        (None, []),
        ("   ", []),
        ("Bosch destornilladores", ["Bosch", "destornilladores"]),
        ("a,b , c", ["a", "b", "c"]),
        ('"luz solar" panel', ["luz solar", "panel"]),
        ("'luz solar'", ["luz solar"]),
        ("panel panel", ["panel"]),
        ("50%_off", ["50%_off"]),
        ('"unclosed quote', ["unclosed", "quote"]),
    ],
)
def test_search_terms(q, terms):
    assert search_terms(q) == terms
