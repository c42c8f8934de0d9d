"""Coreference metrics against the reference scorer v8.01 (its 36 test cases: the 91 published
numbers and the real scorer's output for every metric), hand-computed cases, brute-force
references, and the ``score coref`` command."""

from __future__ import annotations

import itertools
import json
import random
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from spanbert.tasks.coref.cli import register, score_coref_files
from spanbert.tasks.coref.conll import read_conll_clusters
from spanbert.tasks.coref.metrics import (METRICS, BlancCounts, Counts, align_mentions, b_cubed, blanc, ceaf_e, ceaf_m,
                                    check_metrics, conll_f1, mention_identification, muc, score_corpus,
                                    score_document)
from spanbert.core.errors import ConfigError, CorpusError

SCORER_TESTS = Path(__file__).parent / "data" / "coref" / "scorer_tests"
EXPECTED = json.loads((SCORER_TESTS / "expected.json").read_text())
CASES = {case["id"]: case for case in EXPECTED["cases"]}
FUNCTIONS = {"muc": muc, "bcub": b_cubed, "ceafm": ceaf_m, "ceafe": ceaf_e, "blanc": blanc}


def _scores(case_id: str):
    case = CASES[case_id]
    return score_corpus(read_conll_clusters(SCORER_TESTS / case["key_file"]),
                        read_conll_clusters(SCORER_TESTS / case["response_file"]))


# ---------------------------------------------------------------------------------------------
# The reference scorer's own test cases


def test_all_published_numbers_are_listed():
    assert len(CASES) == 36
    assert sum(len(case["expected"]) for case in CASES.values()) == 91


@pytest.mark.parametrize(("case_id", "metric"),
                         [(c["id"], m) for c in EXPECTED["cases"] for m in c["expected"]])
def test_published_numbers(case_id, metric):
    """Upstream's test harness: sum of |expected - actual| over (R, P, F1) below 1e-4."""
    expected = CASES[case_id]["expected"][metric]
    got = _scores(case_id).metrics[metric]
    error = sum(abs(getattr(got, k) - expected[k]) for k in ("recall", "precision", "f1"))
    assert error < 1e-4, (case_id, metric, (got.recall, got.precision, got.f1), expected)


@pytest.mark.parametrize("case_id", list(CASES))
def test_scorer_v8_01_output(case_id):
    """All five metrics (and mention identification) as the real scorer.pl printed them."""
    output = CASES[case_id]["scorer_v8_01_output"]
    scores = _scores(case_id)
    for metric in METRICS:
        got, want = scores.metrics[metric], output[metric]
        for k in ("recall", "precision", "f1"):
            assert getattr(got, k) == pytest.approx(want[k], abs=1e-9), (metric, k)
        if metric == "blanc":
            for kind, counts in (("coref_links", got.coref), ("noncoref_links", got.noncoref)):
                assert [counts.recall_num, counts.recall_den] == want[kind]["recall"]
                assert [counts.precision_num, counts.precision_den] == want[kind]["precision"]
        else:
            assert got.recall_num == pytest.approx(want["recall_num_den"][0], abs=1e-9)
            assert got.precision_num == pytest.approx(want["precision_num_den"][0], abs=1e-9)
            assert [got.recall_den, got.precision_den] == [want["recall_num_den"][1], want["precision_num_den"][1]]
    mentions = output["mention_identification"]
    assert [scores.mentions.recall_num, scores.mentions.recall_den] == mentions["recall"]
    assert [scores.mentions.precision_num, scores.mentions.precision_den] == mentions["precision"]


def test_per_document_functions_agree_with_corpus_totals():
    case = CASES["A4"]
    key = read_conll_clusters(SCORER_TESTS / case["key_file"])
    response = read_conll_clusters(SCORER_TESTS / case["response_file"])
    (name,) = key
    for metric, function in FUNCTIONS.items():
        assert function(key[name], response[name]) == _scores("A4").metrics[metric]
    assert mention_identification(key[name], response[name]) == _scores("A4").mentions


# ---------------------------------------------------------------------------------------------
# Hand-computed cases (mentions as one-token spans: a=0, b=1, ...)

a, b, c, d, e, x, y = [(i, i) for i in range(7)]


def _rpf(counts):
    return pytest.approx((counts.recall, counts.precision, counts.f1))


def test_muc_vilain_example():
    # Vilain et al. 1995: key {A B C D}; response {A B} {C D}. The key's one cluster falls into
    # 2 response parts: recall = (4 - 2) / (4 - 1) = 2/3. Each response cluster is inside one
    # key cluster: precision = ((2 - 1) + (2 - 1)) / ((2 - 1) + (2 - 1)) = 1.
    got = muc([[a, b, c, d]], [[a, b], [c, d]])
    assert (got.recall_num, got.recall_den, got.precision_num, got.precision_den) == (2, 3, 2, 2)
    assert got.f1 == pytest.approx(0.8)
    # and the converse: response {A B C D} for key {A B} {C D}: recall 2/2, precision 2/3
    assert _rpf(muc([[a, b], [c, d]], [[a, b, c, d]])) == (1, 2 / 3, 0.8)


def test_split_and_merge_by_hand():
    key = [[a, b, c], [d, e]]
    response = [[a, b], [c, d, e]]
    # MUC: key {abc} -> parts {ab}{c}: 3-2 = 1, {de} -> 1 part: 1; recall 2/3. Response {ab}: 1,
    # {cde} -> {c}{de}: 1; precision 2/(1+2) = 2/3.
    assert _rpf(muc(key, response)) == (2 / 3, 2 / 3, 2 / 3)
    # B3 per mention (|r∩k|/|k|, |r∩k|/|r|): a, b: (2/3, 2/2); c: (1/3, 1/3); d, e: (2/2, 2/3).
    # recall = (2/3 + 2/3 + 1/3 + 1 + 1) / 5 = 11/15 ; precision = (1 + 1 + 1/3 + 2/3 + 2/3) / 5 = 11/15
    assert _rpf(b_cubed(key, response)) == (11 / 15, 11 / 15, 11 / 15)
    # CEAF-m: best alignment {abc}-{ab} (2) + {de}-{cde} (2) = 4 over 5 mentions each side.
    assert _rpf(ceaf_m(key, response)) == (0.8, 0.8, 0.8)
    # CEAF-e: phi4 = 2*2/(3+2) + 2*2/(2+3) = 1.6 over 2 clusters each side.
    assert _rpf(ceaf_e(key, response)) == (0.8, 0.8, 0.8)
    # BLANC over the 10 pairs of a..e: key coref ab ac bc de, response coref ab cd ce de -> 2 common:
    # Rc = Pc = 2/4. Non-coref: key ad ae bd be cd ce, response ac ad ae bc bd be -> 4 common:
    # Rn = Pn = 4/6. BLANC = mean: R = P = F = (1/2 + 2/3) / 2 = 7/12.
    got = blanc(key, response)
    assert got.coref == Counts(2, 4, 2, 4) and got.noncoref == Counts(4, 6, 4, 6)
    assert _rpf(got) == (7 / 12, 7 / 12, 7 / 12)
    scores = score_document(key, response)
    assert scores.conll_f1 == pytest.approx((2 / 3 + 11 / 15 + 0.8) / 3)


def test_twinless_response_mentions():
    # Key {a b}; response {a b x} with x not in the key.
    key, response = [[a, b]], [[a, b, x]]
    # MUC: key {ab} is inside one response cluster: recall 1/1; response {abx} -> key parts
    # {ab}{x}: 3 - 2 = 1 correct of 2 links: precision 1/2.
    assert _rpf(muc(key, response)) == (1, 1 / 2, 2 / 3)
    # B3: a, b each |{a,b}| / |{a,b,x}| = 2/3 precision; x has no key cluster: 0. Precision (4/3)/3.
    assert _rpf(b_cubed(key, response)) == (1, 4 / 9, 2 * 4 / 9 / (1 + 4 / 9))
    assert _rpf(ceaf_m(key, response)) == (1, 2 / 3, 0.8)  # phi3 = 2; 2 key, 3 response mentions
    assert _rpf(ceaf_e(key, response)) == (0.8, 0.8, 0.8)  # phi4 = 2*2/(2+3)
    assert mention_identification(key, response) == Counts(2, 2, 2, 3)
    # A twinless singleton {y} counts as a response mention and cluster (v8.01 keeps singletons):
    # B3 precision (1 + 1 + 0) / 3, CEAF-e precision 1 / 2; MUC has no link to add.
    response = [[a, b], [y]]
    assert _rpf(muc(key, response)) == (1, 1, 1)
    assert b_cubed(key, response).precision == pytest.approx(2 / 3)
    assert ceaf_e(key, response).precision == pytest.approx(1 / 2)


def test_repeated_mentions():
    key = [[a, b]]
    # A key span repeated in the response is dropped (its second occurrence), and a cluster left
    # empty by that is dropped too: both responses score as perfect.
    for response in ([[a, b, a]], [[a, b], [a]], [[a, b], [b, a]]):
        for metric, function in FUNCTIONS.items():
            got = function(key, response)
            assert (got.recall, got.precision, got.f1) == (1, 1, 1), (response, metric)
    # A repeated twinless span is kept, with one id: B3 precision = (2/4 + 2/4 + 0 + 0) / 4.
    assert align_mentions(key, [[a, b, x, x]]).response == [[0, 1, 2, 2]]
    assert b_cubed(key, [[a, b, x, x]]).precision == pytest.approx(0.25)
    # A span repeated in the key keeps the id of its last occurrence.
    assert align_mentions([[a, b], [a, c]], []).key == [[2, 1], [2, 3]]


def test_empty_and_singleton_only_documents():
    for function in FUNCTIONS.values():
        got = function([], [])
        assert (got.recall, got.precision, got.f1) == (0, 0, 0)
        got = function([[a, b]], [])
        assert (got.recall, got.precision, got.f1) == (0, 0, 0)
    # Key of singletons only: no key coreference link, so BLANC is the non-coreference part alone.
    # Key non-coref links ab ac bc; response {ab}{c}: non-coref ac bc -> Rn 2/3, Pn 2/2.
    got = blanc([[a], [b], [c]], [[a, b], [c]])
    assert got.coref == Counts(0, 0, 0, 1)
    assert _rpf(got) == (2 / 3, 1, 0.8)
    # One key cluster: no non-coreference link, BLANC is the coreference part alone.
    assert _rpf(blanc([[a, b, c]], [[a, b], [c]])) == (1 / 3, 1, 0.5)


def test_corpus_totals_sum_counts_over_documents():
    key = {"d1": [[a, b]], "d2": [[a, b, c, d]]}
    response = {"d1": [[a, b]], "d2": [[a], [b], [c], [d]]}
    scores = score_corpus(key, response)
    # MUC: d1 1/1 and 1/1, d2 0/3 and 0/0 -> recall 1/4, precision 1/1 (not a mean of F1s)
    assert scores.metrics["muc"] == Counts(1, 4, 1, 1)
    blanc_total = scores.metrics["blanc"]
    assert blanc_total == blanc(key["d1"], response["d1"]) + blanc(key["d2"], response["d2"])
    assert blanc_total.coref == Counts(1, 7, 1, 1)  # d2's 6 key links are all missed
    assert scores.documents == 2
    assert scores.conll_f1 == pytest.approx(conll_f1(key, response))
    # A key document without a response counts as one with no mentions.
    missing = score_corpus(key, {"d1": response["d1"]}, "muc")
    assert missing.metrics["muc"] == Counts(1, 4, 1, 1)
    assert missing.conll_f1 is None and set(missing.metrics) == {"muc"}


def _random_clusters(rng: random.Random, spans: list, max_clusters: int) -> list[list]:
    chosen = rng.sample(spans, rng.randint(0, len(spans)))
    clusters: dict[int, list] = {}
    for span in chosen:
        clusters.setdefault(rng.randrange(max_clusters), []).append(span)
    return list(clusters.values())


def _brute_force(key, response):
    """Definitions applied literally (no repeated spans): BLANC link sets and CEAF by trying
    every alignment."""
    def links(clusters):
        ref = {m: i for i, cl in enumerate(clusters) for m in cl}
        pairs = {frozenset(p) for p in itertools.combinations(ref, 2)}
        coref = {p for p in pairs if len({ref[m] for m in p}) == 1}
        return coref, pairs - coref

    (kc, kn), (rc, rn) = links(key), links(response)

    def ceaf(phi):
        k, r = [set(cl) for cl in key], [set(cl) for cl in response]
        small, large, flip = (k, r, False) if len(k) <= len(r) else (r, k, True)
        best = 0.0
        for perm in itertools.permutations(range(len(large)), len(small)):
            best = max(best, sum(phi(*((large[j], small[i]) if flip else (small[i], large[j]))) for i, j in enumerate(perm)))
        return best

    return (Counts(len(kc & rc), len(kc), len(kc & rc), len(rc)), Counts(len(kn & rn), len(kn), len(kn & rn), len(rn)),
            ceaf(lambda p, q: len(p & q)), ceaf(lambda p, q: 2 * len(p & q) / (len(p) + len(q))))


def test_blanc_and_ceaf_match_brute_force_on_random_documents():
    rng = random.Random(0)
    spans = [(i, i + w) for i in range(6) for w in range(2)]
    for _ in range(300):
        key, response = _random_clusters(rng, spans, 4), _random_clusters(rng, spans, 4)
        coref, noncoref, phi3, phi4 = _brute_force(key, response)
        got = blanc(key, response)
        assert (got.coref, got.noncoref) == (coref, noncoref), (key, response)
        assert ceaf_m(key, response).recall_num == pytest.approx(phi3)
        assert ceaf_e(key, response).recall_num == pytest.approx(phi4)


def test_blanc_with_repeated_spans_counts_link_sets():
    # Repeated twinless x in one response cluster: a self-link (x, x) counts as a response
    # coreference link, as in the scorer; key {ab}: coref links 1 -> Pc = 1 / |{ab, ax, bx, xx}|.
    got = blanc([[a, b]], [[a, b, x, x]])
    assert got.coref == Counts(1, 1, 1, 4)
    assert isinstance(got, BlancCounts)


def test_check_metrics():
    assert check_metrics("all") == METRICS
    assert check_metrics("MUC, ceafe") == ("muc", "ceafe")
    with pytest.raises(ConfigError, match="'ceaf' is not one of|ceaf is not one of"):
        check_metrics("ceaf")


# ---------------------------------------------------------------------------------------------
# The score coref command (registered on a stand-in CLI group, as spanbert.cli does)


@pytest.fixture
def score_app():
    app = typer.Typer()
    groups = {name: typer.Typer() for name in ("finetune", "evaluate", "predict", "score")}
    for name, group in groups.items():
        app.add_typer(group, name=name)
    register(groups, lambda fn: fn)
    return app


def test_score_coref_command(score_app, tmp_path):
    key, response = SCORER_TESTS / "TC-A.key", SCORER_TESTS / "TC-A-4.response"
    out = tmp_path / "m.json"
    result = CliRunner().invoke(score_app, ["score", "coref", "--key", str(key), "--response", str(response),
                                            "--output", str(out)])
    assert result.exit_code == 0, result.output
    printed = json.loads(result.output)
    assert printed == json.loads(out.read_text())
    want = CASES["A4"]["scorer_v8_01_output"]
    for metric in METRICS:
        assert printed[metric]["f1"] == pytest.approx(100 * want[metric]["f1"], abs=1e-7)
    assert printed["conll_f1"] == pytest.approx(100 * (want["muc"]["f1"] + want["bcub"]["f1"] + want["ceafe"]["f1"]) / 3)
    assert printed["documents"] == 1 and printed["documents_without_response"] == 0
    result = CliRunner().invoke(score_app, ["score", "coref", "--key", str(key), "--response", str(key),
                                            "--metric", "muc"])
    assert result.exit_code == 0
    only = json.loads(result.output)
    assert only["muc"]["f1"] == 100 and "bcub" not in only and "conll_f1" not in only


def test_score_coref_refuses_a_response_document_not_in_the_key(tmp_path):
    response = tmp_path / "response.conll"
    response.write_text("#begin document (other); part 0\nw (1)\n#end document\n")
    with pytest.raises(CorpusError, match=r"response.conll: document '\(other\); part 0' is not in the key file"):
        score_coref_files(SCORER_TESTS / "TC-A.key", response)
    # A key document absent from the response is scored as empty (as the scorer does).
    key = tmp_path / "key.conll"
    key.write_text((SCORER_TESTS / "TC-A.key").read_text() + "#begin document (other); part 0\nw (1)\nv (1)\n#end document\n")
    both = score_coref_files(key, SCORER_TESTS / "TC-A-1.response")
    assert both["documents"] == 2 and both["documents_without_response"] == 1
    assert both["muc"]["recall"] == pytest.approx(100 * 3 / 4)  # 3 of 4 key links found
    with pytest.raises(ConfigError):
        score_coref_files(key, SCORER_TESTS / "TC-A-1.response", metric="f1")


# ---------------------------------------------------------------------------------------------
# Optional: random documents against the real scorer.pl (a checkout of
# conll/reference-coreference-scorers; set SPANBERT_COREF_SCORER=/path/to/scorer.pl, needs perl)


def _random_document(rng: random.Random, name: str, key: list[list] | None):
    from spanbert.tasks.coref.conll import CorefDocument

    n = rng.randint(3, 12)
    if key is None:
        spans = [(s, s + w) for s in range(n) for w in range(3) if s + w < n]
        chosen, k = rng.sample(spans, rng.randint(0, min(len(spans), 12))), rng.randint(1, 6)
        clusters = [c for c in ([m for i, m in enumerate(chosen) if i % k == j] for j in range(k)) if c]
    else:  # a response: the key's mentions moved, dropped, repeated, plus invented ones
        n = max(e for c in key for _, e in c) + 1 if any(key) else n
        clusters = [[] for _ in range(len(key) + 2)]
        for i, cluster in enumerate(key):
            for m in cluster:
                u = rng.random()
                if u > 0.15:
                    clusters[rng.randrange(len(clusters)) if u < 0.35 else i].append(m)
                if u > 0.97:
                    clusters[rng.randrange(len(clusters))].append(m)
        for _ in range(rng.randint(0, 2)):
            s = rng.randrange(n)
            clusters[rng.randrange(len(clusters))].append((s, min(n - 1, s + rng.randint(0, 2))))
    return CorefDocument(name, ["w"] * n, [c for c in clusters if c])


def _scorer_counts(scorer: str, metric: str, key: Path, response: Path) -> list[float]:
    import re
    import subprocess

    out = subprocess.run(["perl", scorer, metric, str(key), str(response), "none"], capture_output=True, text=True,
                         cwd=Path(scorer).parent, check=True).stdout
    pair = r"Recall: \(([-\d.e+]+) / ([-\d.e+]+)\).*?Precision: \(([-\d.e+]+) / ([-\d.e+]+)\)"
    labels = ["Coreference links: ", "Non-coreference links: "] if metric == "blanc" else ["Coreference: "]
    return [float(v) for label in labels for v in re.search(label + pair, out).groups()]


def test_random_documents_against_the_real_scorer(tmp_path):
    import os
    import shutil

    from spanbert.tasks.coref.conll import format_conll, parse_conll

    scorer = os.environ.get("SPANBERT_COREF_SCORER")
    if not scorer or not shutil.which("perl"):
        pytest.skip("set SPANBERT_COREF_SCORER to the reference scorer.pl (and have perl) to run this test")
    rng = random.Random(0)
    checked = 0
    while checked < 40:
        names = [f"(doc{i}); part 0" for i in range(rng.randint(1, 3))]
        key = [_random_document(rng, n, None) for n in names]
        response = [_random_document(rng, d.name, d.clusters) for d in key]
        texts = [format_conll(key), format_conll(response)]
        try:  # skip draws with crossing mentions of one entity, which the format cannot hold
            if any(_as_sets(d.clusters) != _as_sets(b.clusters) for docs, text in zip((key, response), texts)
                   for d, b in zip(docs, parse_conll(text.split("\n")))):
                continue
        except CorpusError:
            continue
        (tmp_path / "k.conll").write_text(texts[0])
        (tmp_path / "r.conll").write_text(texts[1])
        ours = score_corpus(read_conll_clusters(tmp_path / "k.conll"), read_conll_clusters(tmp_path / "r.conll"))
        for metric in METRICS:
            got = ours.metrics[metric]
            parts = [got.coref, got.noncoref] if metric == "blanc" else [got]
            mine = [v for p in parts for v in (p.recall_num, p.recall_den, p.precision_num, p.precision_den)]
            want = _scorer_counts(scorer, metric, tmp_path / "k.conll", tmp_path / "r.conll")
            assert mine == pytest.approx(want, abs=1e-9), (metric, texts)
        checked += 1


def _as_sets(clusters):
    return sorted(sorted(c) for c in clusters if c)


def test_score_coref_through_the_spanbert_cli(tmp_path, capsys):
    """`spanbert score coref` (wired into the real CLI) prints, in percent, what the reference
    scorer printed for every case of TC-A, writes the same JSON with --output, and turns bad
    input into one line and exit status 2."""
    import json as _json

    from spanbert.cli import main

    root = Path(__file__).parent / "data" / "coref" / "scorer_tests"
    cases = [c for c in _json.loads((root / "expected.json").read_text())["cases"] if c["key_file"] == "TC-A.key"]
    assert len(cases) > 5
    for case in cases:
        out = tmp_path / f"{case['id']}.json"
        assert main(["score", "coref", "--key", str(root / case["key_file"]), "--response", str(root / case["response_file"]),
                     "--output", str(out)]) == 0
        printed = _json.loads(capsys.readouterr().out)
        assert printed == _json.loads(out.read_text())
        for metric in ("muc", "bcub", "ceafm", "ceafe", "blanc"):
            ref = case["scorer_v8_01_output"][metric]
            for field in ("recall", "precision", "f1"):
                assert printed[metric][field] == pytest.approx(100 * ref[field], abs=1e-6), (case["id"], metric, field)
        muc, bcub, ceafe = (printed[m]["f1"] for m in ("muc", "bcub", "ceafe"))
        assert printed["conll_f1"] == pytest.approx((muc + bcub + ceafe) / 3)
    bad = tmp_path / "bad.conll"
    bad.write_text("#begin document (d); part 000\nd 0 0 Ann (1\nd 0 1 left -\n#end document\n")
    rc = main(["score", "coref", "--key", str(bad), "--response", str(bad)])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and "\n" not in err and "bad.conll:" in err
