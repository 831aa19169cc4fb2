"""`?q=` split into words as Django REST Framework's SearchFilter splits it."""

import pytest

from electro_isla.search import MAX_TERMS, search_terms


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
        ('"unclosed quote', ['"unclosed', "quote"]),
        ("O'Brien", ["O'Brien"]),  # a quote inside a word stays in it
        ('tv 24" led', ["tv", '24"', "led"]),
        ('"say \\"hi\\"" x', ['say "hi"', "x"]),
        ("a\x00b", ["ab"]),
        ('"luz,solar" panel', ["luz,solar", "panel"]),
    ],
)
def test_search_terms(q, terms):
    assert search_terms(q) == terms


def test_at_most_max_terms_words_the_rest_is_a_422(client):
    """Each word is one more LIKE per field on every row of a public list."""
    words = " ".join(f"w{n}" for n in range(MAX_TERMS))
    assert client.get(f"/api/productos/?q={words}").status_code == 200
    refused = client.get(f"/api/productos/?q={words} w{MAX_TERMS}")
    assert refused.status_code == 422
    assert refused.json["errors"] == {"q": [f"At most {MAX_TERMS} words."]}
