"""Relation-extraction metrics, as pure functions of gold and predicted labels (all in percent).

* :func:`relation_metrics`: accuracy and micro P/R/F1 excluding the no-relation label, with the
  TACRED scorer's semantics: a prediction is a guess only if it is not the no-relation label,
  a gold label counts only if it is not, a guess is correct if it equals the gold label;
  precision is 100 when there is no guess, recall 0 when there is no gold relation.
* :func:`score_semeval`: the official SemEval-2010 Task 8 scorer (``semeval2010_task8_scorer-v1.2.pl``)
  computed exactly as it does, for its three evaluations: (i) 19-way with direction, (ii)
  9+1-way ignoring direction, (iii) 9+1-way with direction, the official one. Its rules:

  - only relations that occur in the KEY are scored; a proposed label absent from the key
    counts like Other; ids of the key missing from the proposals ("skipped") count like Other;
  - in (iii) a prediction with the right relation and the wrong direction is wrong: it is in no
    relation's correct count, but it is added to the precision denominator of that (gold ==
    proposed) relation, P = correct / (proposed + wrong_direction), and counted in "xDIRx";
  - a relation's P is 0 when nothing was proposed for it, R = correct / gold count, F1 from
    P and R (in percent); Other is skipped in the averages;
  - macro P, R and F1 are each the plain mean over the non-Other relations of the key: macro
    F1 is the mean of the per-relation F1s, NOT the F1 of macro P and macro R;
  - micro P/R/F1 sum correct, proposed (+ wrong direction) and gold over the same relations;
  - accuracy = exact (directed) matches, Other included, / number of proposed lines; also
    reported over all key ids, with skipped ids counted wrong, and counted as Other.

  The official score is the macro-averaged F1 of (iii). Operations are done in the script's
  order so values printed with 2 decimals equal its output.
* :func:`read_answer_file` / :func:`score_semeval_files`: the scorer's file format,
  ``id<TAB>label`` a line with directed labels (``Cause-Effect(e1,e2)``) or ``Other``.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path

from spanbert.core.errors import CorpusError
from spanbert.tasks.relations.data import SEMEVAL_RELATIONS

OTHER = "Other"
SEMEVAL_LABELS = frozenset({OTHER} | {f"{r}({d})" for r in SEMEVAL_RELATIONS for d in ("e1,e2", "e2,e1")})
_DIRECTION = re.compile(r"\(e[12],e[12]\)$")
_ANSWER_LINE = re.compile(r"^([0-9]+)\t([^\r]+)$")
EVALUATIONS = ("19_way", "9+1_way_undirected", "9+1_way_directed_official")


def accuracy(gold: Sequence[str], predicted: Sequence[str]) -> float:
    """Percent of predictions equal to the gold label."""
    if len(gold) != len(predicted):
        raise ValueError(f"{len(gold)} gold labels but {len(predicted)} predictions")
    return 100.0 * sum(g == p for g, p in zip(gold, predicted)) / len(gold) if gold else 0.0


def relation_metrics(gold: Sequence[str], predicted: Sequence[str], no_relation: str) -> dict:
    """Accuracy and micro P/R/F1 excluding ``no_relation`` (TACRED semantics; see the module doc)."""
    if len(gold) != len(predicted):
        raise ValueError(f"{len(gold)} gold labels but {len(predicted)} predictions")
    guessed = sum(p != no_relation for p in predicted)
    in_gold = sum(g != no_relation for g in gold)
    correct = sum(g == p and p != no_relation for g, p in zip(gold, predicted))
    precision = correct / guessed if guessed else 1.0
    recall = correct / in_gold if in_gold else 0.0
    f1 = 2.0 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0
    return {
        "accuracy": accuracy(gold, predicted), "micro_precision": 100.0 * precision, "micro_recall": 100.0 * recall,
        "micro_f1": 100.0 * f1, "correct": correct, "guessed": guessed, "gold": in_gold, "examples": len(gold),
        "no_relation_label": no_relation,
    }


def undirected(label: str) -> str:
    """``Cause-Effect(e2,e1)`` -> ``Cause-Effect``; other labels unchanged."""
    return _DIRECTION.sub("", label)


def _evaluate(pairs: list[tuple[str, str]], answer_counts: Counter, total_answer: int, use_wrong_dir: bool) -> dict:
    """One evaluation of the official script over (proposed, answer) label pairs of the proposed ids.

    ``answer_counts``: label counts over the whole key; ``use_wrong_dir``: evaluation (iii),
    where pairs whose labels differ only in direction were mapped to ("WRONG_DIR", answer).
    """
    confusion: Counter = Counter()  # (proposed, answer) -> count
    proposed_counts: Counter = Counter()
    wrong_dir: Counter = Counter()  # answer relation -> proposals of it with the wrong direction
    for proposed, answer in pairs:
        if proposed == "WRONG_DIR":
            wrong_dir[answer] += 1
        else:
            confusion[proposed, answer] += 1
        proposed_counts[proposed] += 1
    total_proposed = len(pairs)
    labels = sorted(answer_counts)  # the script's `sort keys` of the key's labels
    correct_all = sum(confusion[label, label] for label in labels)
    skipped_other = answer_counts[OTHER] - sum(n for (p, a), n in confusion.items() if a == OTHER) - wrong_dir[OTHER]
    per_relation = {}
    macro_p = macro_r = macro_f1 = 0.0
    micro_correct = micro_proposed = micro_answer = 0
    for label in labels:
        wrong = wrong_dir[label] if use_wrong_dir else 0
        correct, proposed, answer = confusion[label, label], proposed_counts[label], answer_counts[label]
        p = 0.0 if proposed == 0 else 100.0 * correct / (proposed + wrong)
        r = 0.0 if answer == 0 else 100.0 * correct / answer
        f1 = 0.0 if p + r == 0 else 2 * p * r / (p + r)
        per_relation[label] = {"precision": p, "recall": r, "f1": f1, "correct": correct, "proposed": proposed,
                               "wrong_direction": wrong, "answer": answer}
        if label != OTHER:
            macro_p += p
            macro_r += r
            macro_f1 += f1
            micro_correct += correct
            micro_proposed += proposed + wrong
            micro_answer += answer
    micro_p = 0.0 if micro_proposed == 0 else 100.0 * micro_correct / micro_proposed
    micro_r = 0.0 if micro_answer == 0 else 100.0 * micro_correct / micro_answer
    micro_f1 = 0.0 if micro_p + micro_r == 0 else 2.0 * micro_p * micro_r / (micro_p + micro_r)
    relations = len(labels) - (OTHER in answer_counts)
    if relations:  # the script divides by zero (dies) when the key holds only Other
        macro_p, macro_r, macro_f1 = macro_p / relations, macro_r / relations, macro_f1 / relations
    return {
        "coverage": 100.0 * total_proposed / total_answer,
        "accuracy": 100.0 * correct_all / total_proposed,
        "accuracy_skipped_as_wrong": 100.0 * correct_all / total_answer,
        "accuracy_skipped_as_other": 100.0 * (correct_all + skipped_other) / total_answer,
        "correct": correct_all, "proposed": total_proposed, "answer": total_answer,
        "micro": {"precision": micro_p, "recall": micro_r, "f1": micro_f1, "correct": micro_correct,
                  "proposed": micro_proposed, "answer": micro_answer},
        "macro": {"precision": macro_p, "recall": macro_r, "f1": macro_f1, "relations": relations},
        "wrong_direction": sum(wrong_dir.values()) if use_wrong_dir else 0,
        "per_relation": per_relation,
    }


def score_semeval(key: Mapping[str, str], proposed: Mapping[str, str]) -> dict:
    """The official SemEval-2010 Task 8 scores of ``proposed`` (id -> label) against ``key``.

    ``proposed`` may cover a subset of the key's ids (the rest are "skipped"); ids outside the
    key raise ``ValueError``. Returns the official (iii) numbers at the top level
    (``official_macro_f1``, macro and micro P/R, accuracy) and all three evaluations under
    ``evaluations``.
    """
    if not proposed:
        raise ValueError("no proposed labels")
    unknown = [i for i in proposed if i not in key]
    if unknown:
        raise ValueError(f"id {unknown[0]!r} is not in the key")
    ids = list(proposed)
    answer_19 = Counter(key.values())
    answer_10 = Counter(undirected(v) for v in key.values())
    pairs_19 = [(proposed[i], key[i]) for i in ids]
    pairs_nodir = [(undirected(p), undirected(a)) for p, a in pairs_19]
    pairs_dir = [("WRONG_DIR" if p != a and pu == au else pu, au) for (p, a), (pu, au) in zip(pairs_19, pairs_nodir)]
    evaluations = {
        "19_way": _evaluate(pairs_19, answer_19, len(key), False),
        "9+1_way_undirected": _evaluate(pairs_nodir, answer_10, len(key), False),
        "9+1_way_directed_official": _evaluate(pairs_dir, answer_10, len(key), True),
    }
    official = evaluations["9+1_way_directed_official"]
    return {
        "official_macro_f1": official["macro"]["f1"], "macro_precision": official["macro"]["precision"],
        "macro_recall": official["macro"]["recall"], "micro_precision": official["micro"]["precision"],
        "micro_recall": official["micro"]["recall"], "micro_f1": official["micro"]["f1"],
        "accuracy": official["accuracy"], "coverage": official["coverage"], "examples": len(key),
        "proposed": len(proposed), "evaluations": evaluations,
    }


def read_answer_file(path: str | Path, labels: frozenset[str] | None = SEMEVAL_LABELS) -> tuple[dict[str, str], dict[str, int]]:
    """``id -> label`` and ``id -> line number`` of a file in the scorer's ``id<TAB>label`` format.

    Lines end in LF or CRLF (a missing newline at the very end is accepted, unlike the Perl
    script). With ``labels`` (default: the 19 SemEval labels) any other label, e.g. an
    undirected one, is an error, as in the script. Errors are one line naming ``file:line``.
    """
    path = Path(path)
    if not path.is_file():
        raise CorpusError(f"{path}: no such file")
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as e:
        raise CorpusError(f"{path}: not UTF-8 text ({e.reason} at byte {e.start})") from None
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    answers: dict[str, str] = {}
    where: dict[str, int] = {}
    for n, line in enumerate(lines, 1):
        line = line[:-1] if line.endswith("\r") else line
        m = _ANSWER_LINE.match(line)
        if not m:
            raise CorpusError(f"{path}:{n}: expected 'id<TAB>label' with a numeric id, got {line[:60]!r}")
        sid, label = m.group(1), m.group(2)
        if labels is not None and label not in labels:
            hint = " (undirected: add (e1,e2) or (e2,e1))" if f"{label}(e1,e2)" in labels else ""
            raise CorpusError(f"{path}:{n}: {label!r} is not a SemEval-2010 Task 8 label{hint}")
        if sid in answers:
            raise CorpusError(f"{path}:{n}: id {sid} already given on line {where[sid]}")
        answers[sid] = label
        where[sid] = n
    if not answers:
        raise CorpusError(f"{path}: empty")
    return answers, where


def score_semeval_files(key_path: str | Path, predictions_path: str | Path, allow_missing: bool = False) -> dict:
    """Score an answer file against a key file (both ``id<TAB>label``) with :func:`score_semeval`.

    A predicted id not in the key is an error naming its line; so is a key id without a
    prediction, unless ``allow_missing`` (then it is "skipped", as the official script allows).
    """
    key, key_lines = read_answer_file(key_path)
    proposed, proposed_lines = read_answer_file(predictions_path)
    for sid, n in proposed_lines.items():
        if sid not in key:
            raise CorpusError(f"{predictions_path}:{n}: id {sid} is not in the key {key_path}")
    missing = [sid for sid in key if sid not in proposed]
    if missing and not allow_missing:
        raise CorpusError(f"{predictions_path}: no prediction for {len(missing)} id(s) of the key, first {missing[0]} "
                          f"({key_path}:{key_lines[missing[0]]}); pass --allow-missing to score them as skipped")
    result = score_semeval(key, proposed)
    result.update({"key": str(key_path), "predictions": str(predictions_path)})
    return result


def format_answer_lines(ids: Sequence[str], labels: Sequence[str]) -> str:
    """The scorer's file format: ``id<TAB>label`` lines."""
    return "".join(f"{i}\t{label}\n" for i, label in zip(ids, labels))


__all__ = ["accuracy", "relation_metrics", "score_semeval", "score_semeval_files", "read_answer_file",
           "format_answer_lines", "undirected", "SEMEVAL_LABELS", "OTHER", "EVALUATIONS"]
