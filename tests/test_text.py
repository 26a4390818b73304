"""Transcript normalisation and tokenizers (asr.text)."""
from __future__ import annotations

import random
import re

import pytest

from asr.errors import TextError
from asr.text import BPETokenizer, CharTokenizer, load_tokenizer, normalize_text

CASES = [
    ("Hello, World!", "hello world"),
    ("  lots\tof \n  space  ", "lots of space"),
    ("In 1990 we met.", "in nineteen ninety we met"),
    ("Back in 1905.", "back in nineteen oh five"),
    ("the year 2005", "the year two thousand and five"),
    ("The 1990s were loud", "the nineteen nineties were loud"),
    ("in the '80s and 90s", "in the eighties and nineties"),
    ("the 100s", "the hundreds"),
    ("the 3rd time", "the third time"),
    ("21st century", "twenty first century"),
    ("on the 2nd and 4th", "on the second and fourth"),
    ("It costs $5.", "it costs five dollars"),
    ("$1 and $0.99 and $5.50", "one dollar and ninety nine cents and five dollars fifty cents"),
    ("£3 or €1.01", "three pounds or one euro one cent"),
    ("$2 million", "two million dollars"),
    ("$1,000,000", "one million dollars"),
    ("25% off", "twenty five percent off"),
    ("2.5 %", "two point five percent"),
    ("pi is 3.14", "pi is three point one four"),
    ("0.5 kg", "zero point five kg"),
    ("42 apples", "forty two apples"),
    ("1,234 people", "one thousand two hundred and thirty four people"),
    ("1000 people", "one thousand people"),
    ("agent 007", "agent zero zero seven"),
    ("-5 degrees", "minus five degrees"),
    ("well-known", "well known"),
    ("a \u2014 b \u2013 c", "a b c"),
    ("don't stop", "don't stop"),
    ("Don\u2019t say \u201ccaf\u00e9\u201d", "don't say cafe"),
    ("'quoted' words'", "quoted words"),
    ("the students' books", "the students books"),
    ("O'Brien's car", "o'brien's car"),
    ("na\u00efve Z\u00fcrich cr\u00e8me br\u00fbl\u00e9e", "naive zurich creme brulee"),
    ("Stra\u00dfe", "strasse"),
    ("A&B", "a and b"),
    ("at 3:30", "at three thirty"),
    ("COVID-19", "covid nineteen"),
    ("U.S.A.", "u s a"),
    ("\uff21\uff22\uff23", "abc"),  # fullwidth letters (NFKC)
    ("\u00bd cup", "one half cup"),
    ("2\u00be miles", "two and three quarters miles"),
    ("\u2154", "two thirds"),
    ("\u4e2d\u6587 ok", "ok"),
    ("", ""),
]


@pytest.mark.parametrize("raw,expected", CASES)
def test_normalize_table(raw, expected):
    assert normalize_text(raw) == expected


def test_normalize_output_alphabet_and_idempotent():
    rng = random.Random(0)
    alphabet = "abcXYZ 0123456789.,;:!?'\"-$%&()\u2019\u201c\u00e9\u00df\u4e2d\t\n/"
    for _ in range(500):
        s = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 40)))
        out = normalize_text(s)
        assert re.fullmatch(r"[a-z' ]*", out), (s, out)
        assert "  " not in out and out == out.strip()
        assert not re.search(r"(^|[^a-z])'|'([^a-z]|$)", out), (s, out)
        assert normalize_text(out) == out


def test_normalize_rejects_non_str():
    with pytest.raises(TypeError):
        normalize_text(None)  # type: ignore[arg-type]


def test_char_tokenizer_layout_and_roundtrip(tmp_path):
    tok = CharTokenizer()
    assert tok.tokens[:3] == ["<blank>", "|", "'"]
    assert tok.tokens[3:] == [chr(c) for c in range(ord("a"), ord("z") + 1)]
    assert (tok.blank_id, tok.space_id, tok.vocab_size) == (0, 1, 29)
    text = "don't stop me now"
    ids = tok.encode(text)
    assert 0 not in ids and ids.count(1) == 3
    assert tok.decode(ids) == text
    assert tok.decode([0] + ids + [0, 1]) == text  # blanks skipped, trailing boundary stripped
    assert tok.encode("  a   b ") == tok.encode("a b")
    tok.save(tmp_path / "tokens.txt")
    lines = (tmp_path / "tokens.txt").read_text().splitlines()
    assert lines[:2] == ["<blank> 0", "| 1"] and len(lines) == 29
    again = load_tokenizer(tmp_path / "tokens.txt")
    assert isinstance(again, CharTokenizer) and again.tokens == tok.tokens
    assert isinstance(load_tokenizer(tmp_path), CharTokenizer)


def test_char_tokenizer_names_bad_chars():
    tok = CharTokenizer()
    with pytest.raises(TextError) as e:
        tok.encode("hello World!")
    msg = str(e.value)
    assert "'W'" in msg and "'!'" in msg and "normalize_text" in msg
    with pytest.raises(TextError, match="out of range"):
        tok.decode([99])


def test_tokens_txt_errors(tmp_path):
    p = tmp_path / "tokens.txt"
    p.write_text("<blank> 0\n| 1\na 3\n")
    with pytest.raises(TextError, match="without gaps"):
        CharTokenizer.load(p)
    p.write_text("| 0\n<blank> 1\n")
    with pytest.raises(TextError):
        CharTokenizer.load(p)
    with pytest.raises(TextError, match="does not exist"):
        load_tokenizer(tmp_path / "missing.txt")


CORPUS = [
    "the quick brown fox jumps over the lazy dog",
    "she sells sea shells by the sea shore",
    "how much wood would a woodchuck chuck",
    "peter piper picked a peck of pickled peppers",
    "the rain in spain stays mainly in the plain",
    "don't count your chickens before they hatch",
] * 5


def test_bpe_train_roundtrip(tmp_path):
    tok = BPETokenizer.train(CORPUS, vocab_size=60, model_prefix=tmp_path / "bpe_train")
    assert (tmp_path / "bpe_train.model").is_file()
    assert tok.tokens[0] == "<blank>" and tok.blank_id == 0 and tok.tokens[1] == "<unk>"
    assert 10 < tok.vocab_size <= 60
    for line in set(CORPUS) | {"a new sentence with words the model never saw"}:
        ids = tok.encode(line)
        assert ids and 0 not in ids and tok.unk_id not in ids
        assert tok.decode(ids) == line
    ids = tok.encode("the sea")
    assert ids[0] in tok.word_start_ids
    assert len(tok.encode("the quick brown fox")) < len("the quick brown fox")  # merges happened
    out = tmp_path / "pkg"
    out.mkdir()
    tok.save(out / "tokens.txt")
    assert (out / "bpe.model").is_file()
    again = load_tokenizer(out / "tokens.txt")
    assert isinstance(again, BPETokenizer)
    assert again.tokens == tok.tokens and again.encode("the sea") == ids
    with pytest.raises(TextError) as e:
        tok.encode("the sea!")
    assert "'!'" in str(e.value)


def test_bpe_rejects_empty_corpus():
    with pytest.raises(TextError):
        BPETokenizer.train(["", "  "], vocab_size=30)
