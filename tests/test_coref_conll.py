"""CoNLL coreference reading (the reference scorer's semantics) and writing: the scorer's test
files, committed LitBank samples (counts made with grep, see comments), the full LitBank corpus
when shared data is present, bad input, and write/read round trips."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from spanbert.tasks.coref.conll import CorefDocument, coref_column, read_conll, read_conll_clusters, write_conll
from spanbert.tasks.coref.metrics import score_corpus
from spanbert.core.errors import CorpusError

DATA = Path(__file__).parent / "data" / "coref"
SCORER_TESTS = DATA / "scorer_tests"
EXPECTED = json.loads((SCORER_TESTS / "expected.json").read_text())
CASES = {case["id"]: case for case in EXPECTED["cases"]}
PRIDE = DATA / "1342_pride_and_prejudice_brat_head.conll"
ALICE = DATA / "11_alices_adventures_in_wonderland_brat_head.conll"


def _as_multiset(clusters):
    return sorted(sorted(tuple(m) for m in cluster) for cluster in clusters)


@pytest.mark.parametrize("case", EXPECTED["cases"], ids=lambda c: c["id"])
def test_scorer_test_files_read_as_the_scorer_reads_them(case):
    for which in ("key", "response"):
        got = read_conll_clusters(SCORER_TESTS / case[f"{which}_file"])
        want = case[f"{which}_clusters"]
        # names keep the part but lose the trailing space after "(LuoTestCase); "
        assert set(got) == {name.strip() for name in want}
        for name, entities in want.items():
            assert _as_multiset(got[name.strip()]) == _as_multiset(entities.values())


def test_clusters_in_order_of_first_appearance_and_scorer_piece_order():
    # TC-A-6.response: entity 3 opens on token 4, before entity 2 first appears (token 11).
    (clusters,) = read_conll_clusters(SCORER_TESTS / "TC-A-6.response").values()
    assert clusters == [[(0, 1)], [(3, 6), (9, 9), (10, 10)], [(4, 5), (13, 13)], [(11, 12), (15, 15)]]
    # TC-A-7.response writes two openings without '|': "(1(1"; TC-B's lines are "docname coref"
    # without TABs; TC-A.key has lines ending with a TAB.
    (clusters,) = read_conll_clusters(SCORER_TESTS / "TC-A-7.response").values()
    assert _as_multiset(clusters) == _as_multiset(CASES["A7"]["response_clusters"]["(LuoTestCase); "].values())
    names = list(read_conll_clusters(SCORER_TESTS / "TC-B.key"))
    assert names == ["(nw/xinhua/00/chtb_0009); part 000"]


def test_nested_same_entity_and_one_token_pieces(tmp_path):
    path = tmp_path / "nested.conll"
    # token 0 opens two mentions of entity 7; token 1 is a one-token mention of 7 and closes the
    # inner one (one-token pieces are applied before closings, as in the scorer); token 2 closes
    # the outer one; (3+4) is a double antecedent, skipped.
    path.write_text("#begin document (d); part 0\n"
                    "d 0 0 A * (7|(7\n"
                    "d 0 1 B * (7)|7)\n"
                    "d 0 2 C * 7)|(3+4)\n"
                    "\n"
                    "d 0 0 D * -\n"
                    "#end document\n")
    (doc,) = read_conll(path)
    assert doc.clusters == [[(1, 1), (0, 1), (0, 2)]]
    assert doc.words == ["A", "B", "C", "D"] and doc.sentences == [(0, 3), (3, 4)]
    assert doc.speakers is None


def test_litbank_samples():
    # Counted independently on the files with:
    #   awk -F'\t' 'NF>1{print $NF}' F | grep -o '([0-9]*' | wc -l            (mentions)
    #   awk -F'\t' 'NF>1{print $NF}' F | grep -o '([0-9]*' | sort -u | wc -l  (clusters)
    #   grep -vc '^#\|^$' F (tokens), grep -c '^$' F (sentences)
    (pride,) = read_conll(PRIDE)
    assert (pride.num_mentions, len(pride.clusters), len(pride.words), len(pride.sentences)) == (26, 11, 147, 6)
    (alice,) = read_conll(ALICE)
    assert (alice.num_mentions, len(alice.clusters), len(alice.words), len(alice.sentences)) == (17, 5, 166, 3)
    assert pride.name == "(1342_pride_and_prejudice_brat); part 0"
    # "It is a truth universally acknowledged, that [a single man in possession of a good
    # fortune]_0, must be in want of [a wife]_1." (tokens 10-18 and 25-26, after "Chapter 1")
    assert pride.words[:3] == ["Chapter", "1", "It"]
    assert pride.clusters[0][0] == (10, 18) and " ".join(pride.words[10:19]) == "a single man in possession of a good fortune"
    assert pride.clusters[1][0] == (25, 26) and pride.words[25:27] == ["a", "wife"]


def test_full_litbank_corpus(shared_data):
    # shared/data/SOURCES.md: 100 documents, 210532 tokens, 29103 mentions, 7927 clusters.
    files = sorted((shared_data / "litbank_coref" / "conll").glob("*.conll.gz"))
    docs = [doc for f in files for doc in read_conll(f)]
    assert len(docs) == 100
    assert sum(len(d.words) for d in docs) == 210532
    assert sum(d.num_mentions for d in docs) == 29103
    assert sum(len(d.clusters) for d in docs) == 7927


def test_gzip_input(tmp_path):
    path = tmp_path / "pride.conll.gz"
    path.write_bytes(gzip.compress(PRIDE.read_bytes()))
    assert read_conll(path) == read_conll(PRIDE)


BAD = {
    "close without open": ("#begin document (d); part 0\nd 0 0 a (1)\nd 0 1 b 2)\n#end document\n", 3, "never opened"),
    "never closed": ("#begin document (d); part 0\nd 0 0 a (1\nd 0 1 b -\n#end document\n", 2, "never closed"),
    "wrong entity closed": ("#begin document (d); part 0\nd 0 0 a (1\nd 0 1 b 2)\n#end document\n", 3, "never opened"),
    "no tokens": ("#begin document (d); part 0\n\n#end document\n", 1, "has no tokens"),
    "malformed": ("#begin document (d); part 0\nd 0 0 a (1\nd 0 1 b (x)\n#end document\n", 3, "malformed coreference column"),
    "unbalanced paren": ("#begin document (d); part 0\nd 0 0 a ((1)\n#end document\n", 2, "malformed"),
    "no end": ("\n#begin document (d); part 0\nd 0 0 a -\n", 2, "no '#end document'"),
    "nested begin": ("#begin document (d); part 0\nd 0 0 a -\n#begin document (e); part 0\n", 3, "inside document"),
    "token outside": ("d 0 0 a -\n", 1, "outside a document"),
    "end outside": ("#end document\n", 1, "without '#begin document'"),
    "repeated name": ("#begin document (d); part 0\nd 0 0 a -\n#end document\n#begin document (d); part 0\n"
                      "d 0 0 a -\n#end document\n", 4, "already began at line 1"),
}


@pytest.mark.parametrize("name", list(BAD))
def test_bad_input_is_one_line_error_with_file_and_line(tmp_path, name):
    text, line, message = BAD[name]
    path = tmp_path / "bad.conll"
    path.write_text(text)
    with pytest.raises(CorpusError, match=message) as info:
        read_conll(path)
    assert str(info.value).startswith(f"{path}:{line}: ")
    assert "\n" not in str(info.value)


def test_unreadable_files(tmp_path):
    with pytest.raises(CorpusError, match="no such CoNLL file"):
        read_conll(tmp_path / "missing.conll")
    empty = tmp_path / "empty.conll"
    empty.write_text("\n")
    with pytest.raises(CorpusError, match="no '#begin document' line"):
        read_conll(empty)
    latin = tmp_path / "latin.conll"
    latin.write_bytes(b"#begin document (d); part 0\nd 0 0 caf\xe9 -\n#end document\n")
    with pytest.raises(CorpusError, match=rf"^{latin}:2: not UTF-8"):
        read_conll(latin)


def test_coref_column():
    # one token of cluster 0, a nested pair of cluster 1 sharing token 1, none on token 3
    assert coref_column(4, [[(0, 0)], [(1, 2), (1, 1)]]) == ["(0)", "(1|(1)", "1)", "-"]
    with pytest.raises(ValueError, match="outside"):
        coref_column(2, [[(1, 2)]])


def test_write_read_round_trip(tmp_path):
    docs = read_conll(PRIDE) + read_conll(ALICE)
    out = tmp_path / "both.conll"
    write_conll(out, docs)
    back = read_conll(out)
    assert [d.name for d in back] == [d.name for d in docs]
    for got, want in zip(back, docs):
        assert got.words == want.words and got.sentences == want.sentences
        assert _as_multiset(got.clusters) == _as_multiset(want.clusters)
    key = {d.name: d.clusters for d in docs}
    scores = score_corpus(key, read_conll_clusters(out))
    assert scores.conll_f1 == pytest.approx(1.0) and scores.metrics["blanc"].f1 == pytest.approx(1.0)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["both.conll"]  # atomic: no temporary left


def test_write_response_with_predicted_clusters(tmp_path):
    (pride,) = read_conll(PRIDE)
    predicted = CorefDocument(pride.name, pride.words, [[(10, 18), (36, 38)], [(25, 26)]], pride.sentences)
    write_conll(tmp_path / "response.conll", {pride.name: predicted})
    assert read_conll_clusters(tmp_path / "response.conll") == {pride.name: predicted.clusters}


def test_write_refuses_what_the_format_cannot_hold(tmp_path):
    crossing = CorefDocument("(d); part 0", ["a", "b", "c", "d"], [[(0, 2), (1, 3)]])
    with pytest.raises(ValueError, match="cross"):
        write_conll(tmp_path / "x.conll", [crossing])
    with pytest.raises(ValueError, match="no tokens"):
        write_conll(tmp_path / "x.conll", [CorefDocument("(d); part 0", [], [])])
    assert not list(tmp_path.iterdir())
