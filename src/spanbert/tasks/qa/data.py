"""Readers of extractive QA data: SQuAD v1.1/v2.0 JSON, MRQA JSONL and ``datasets`` sources.

Every reader returns :class:`QAExample` objects whose answers carry character offsets
checked against the context. An answer whose ``answer_start`` does not point at its text is
dropped, counted in :class:`ReadReport` and logged with its question id; it is never kept
silently (a wrong offset would teach the model a wrong span).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from spanbert.core.errors import SpanBertError
from spanbert.core.sources import iter_jsonl, load_dataset_source, open_text
from spanbert.tasks.qa.scoring import GoldQuestion, SquadGold, gold_answers_from_squad

logger = logging.getLogger(__name__)


class QADataError(SpanBertError):
    """A QA data file is missing, malformed or breaks the SQuAD schema."""


@dataclass(frozen=True)
class Answer:
    """A gold answer: its text and the character offset of its first character in the context."""

    text: str
    start: int

    @property
    def end(self) -> int:
        """Character offset one past the answer's last character."""
        return self.start + len(self.text)


@dataclass(frozen=True)
class QAExample:
    """One question about one context. ``answers`` is empty for unanswerable questions."""

    id: str
    question: str
    context: str
    answers: tuple[Answer, ...] = ()
    is_impossible: bool = False
    title: str = ""


@dataclass
class ReadReport:
    """What a reader kept and what it had to drop, with a few question ids as examples."""

    source: str
    questions: int = 0
    answers: int = 0
    bad_offsets: int = 0
    unanswerable: int = 0
    without_valid_answer: int = 0  # answerable questions whose every answer had a bad offset
    bad_offset_ids: list[str] = field(default_factory=list)

    def note_bad_offset(self, qid: str) -> None:
        self.bad_offsets += 1
        if len(self.bad_offset_ids) < 5:
            self.bad_offset_ids.append(qid)

    def summary(self) -> str:
        text = f"{self.source}: {self.questions} questions, {self.answers} answers"
        if self.unanswerable:
            text += f", {self.unanswerable} unanswerable"
        if self.bad_offsets:
            text += (f"; dropped {self.bad_offsets} answers whose answer_start does not match their text"
                     f" (e.g. question {', '.join(map(repr, self.bad_offset_ids))})")
        if self.without_valid_answer:
            text += f"; {self.without_valid_answer} answerable questions are left without an answer"
        return text


def _check_answers(qid: str, context: str, pairs: Iterable[tuple[str, int]], report: ReadReport) -> tuple[Answer, ...]:
    """Keep the (text, start) pairs whose offset points at their text; count the others."""
    kept = []
    for text, start in pairs:
        if isinstance(start, int) and 0 <= start and text and context[start : start + len(text)] == text:
            kept.append(Answer(text, start))
        else:
            report.note_bad_offset(qid)
    report.answers += len(kept)
    return tuple(kept)


def load_json_file(path: str | Path) -> Any:
    """Parse a JSON or JSON.gz file; a syntax error names the file, line and column."""
    path = Path(path)
    if not path.is_file():
        raise QADataError(f"{path}: no such file")
    try:
        with open_text(path) as f:
            return json.load(f)
    except json.JSONDecodeError as e:
        raise QADataError(f"{path}:{e.lineno}:{e.colno}: not valid JSON ({e.msg})") from None
    except (UnicodeDecodeError, OSError, EOFError) as e:
        raise QADataError(f"{path}: unreadable ({e})") from None


def _examples_from_squad(data: Any, source: str, report: ReadReport) -> Iterator[QAExample]:
    if not isinstance(data, dict) or not isinstance(data.get("data"), list):
        raise QADataError(f"{source}: not a SQuAD file (expected an object with a 'data' list)")
    for a, article in enumerate(data["data"]):
        if not isinstance(article, dict) or not isinstance(article.get("paragraphs"), list):
            raise QADataError(f"{source}: article {a} has no 'paragraphs' list")
        title = str(article.get("title", ""))
        for p, para in enumerate(article["paragraphs"]):
            context = para.get("context") if isinstance(para, dict) else None
            if not isinstance(context, str) or not isinstance(para.get("qas"), list):
                raise QADataError(f"{source}: article {a} paragraph {p} needs a 'context' string and a 'qas' list")
            for q, qa in enumerate(para["qas"]):
                if not isinstance(qa, dict) or not isinstance(qa.get("id"), (str, int)):
                    raise QADataError(f"{source}: article {a} paragraph {p} question {q} has no 'id'")
                qid = str(qa["id"])
                question = qa.get("question")
                if not isinstance(question, str):
                    raise QADataError(f"{source}: question {qid!r} has no 'question' string")
                answers = qa.get("answers", [])
                if not isinstance(answers, list) or not all(isinstance(x, dict) and "text" in x and "answer_start" in x for x in answers):
                    raise QADataError(f"{source}: question {qid!r}: 'answers' must be a list of {{text, answer_start}}")
                impossible = bool(qa.get("is_impossible", False))
                report.questions += 1
                kept = _check_answers(qid, context, ((x["text"], x["answer_start"]) for x in answers), report)
                if impossible:
                    report.unanswerable += 1
                    kept = ()  # SQuAD 2.0: plausible answers are not answers
                elif not kept:
                    report.without_valid_answer += 1
                yield QAExample(qid, question, context, kept, impossible, title)


def _examples_from_mrqa(path: Path, report: ReadReport) -> Iterator[QAExample]:
    """MRQA shared-task JSONL: a header line, then one context per line with its questions."""
    for n, row in iter_jsonl(path, QADataError):
        if "header" in row:
            continue
        context = row.get("context")
        if not isinstance(context, str) or not isinstance(row.get("qas"), list):
            raise QADataError(f"{path}:{n}: needs a 'context' string and a 'qas' list")
        for qa in row["qas"]:
            qid = str(qa.get("qid", qa.get("id", "")))
            if not qid or not isinstance(qa.get("question"), str):
                raise QADataError(f"{path}:{n}: a question has no 'qid' or 'question'")
            report.questions += 1
            # char_spans are inclusive [start, end]; the text is what the span covers
            # (text, start) is then checked like a SQuAD answer
            pairs = [(d.get("text", ""), span[0]) for d in qa.get("detected_answers", []) for span in d.get("char_spans", [])]
            kept = _check_answers(qid, context, pairs, report)
            if not kept:
                report.without_valid_answer += 1
            yield QAExample(qid, qa["question"], context, kept, False, "")


def _examples_from_rows(rows: Iterable[dict], source: str, report: ReadReport) -> Iterator[QAExample]:
    """``datasets`` rows with SQuAD columns: id, question, context, answers{text, answer_start}."""
    for i, row in enumerate(rows):
        missing = [c for c in ("question", "context", "answers") if c not in row]
        if missing:
            raise QADataError(f"{source}: row {i} lacks column(s) {', '.join(missing)}")
        qid = str(row.get("id", i))
        ans = row["answers"] or {"text": [], "answer_start": []}
        pairs = list(zip(ans.get("text", []), ans.get("answer_start", [])))
        report.questions += 1
        kept = _check_answers(qid, row["context"], pairs, report)
        impossible = not pairs
        if impossible:
            report.unanswerable += 1
        elif not kept:
            report.without_valid_answer += 1
        yield QAExample(qid, row["question"], row["context"], kept, impossible, str(row.get("title", "")))


def read_qa(source: str | Path, split: str = "validation") -> tuple[list[QAExample], ReadReport]:
    """Read QA examples from a file or a ``datasets`` source.

    ``source`` is a SQuAD JSON(.gz) file, an MRQA ``.jsonl``(``.gz``) file, a folder saved
    with ``datasets.save_to_disk``, or ``hf:NAME[:CONFIG]`` (``split`` picks the split of the
    last two). Returns the examples and a :class:`ReadReport`; bad answer offsets are logged.
    """
    text = str(source)
    report = ReadReport(text)
    ds = load_dataset_source(source, split, QADataError)
    if ds is not None:
        examples = list(_examples_from_rows(ds, text, report))
    else:
        path = Path(source)
        if path.name.endswith((".jsonl", ".jsonl.gz")):
            examples = list(_examples_from_mrqa(path, report))
        else:
            return examples_from_squad(load_json_file(path), text)
    return _checked(examples, report)


def read_with_gold(source: str | Path) -> tuple[list[QAExample], SquadGold]:
    """Examples and the gold answers as the official scripts read them, from one parse of the file.

    For a SQuAD JSON file the gold comes from the file itself (answers whose offsets we dropped
    still count as gold text); for other sources, from the examples.
    """
    path = Path(source)
    if path.is_file() and not path.name.endswith((".jsonl", ".jsonl.gz")):
        data = load_json_file(path)
        examples, _ = examples_from_squad(data, str(path))
        return examples, gold_answers_from_squad(data, source=str(path))
    examples, _ = read_qa(source)
    gold = SquadGold(tuple(GoldQuestion(ex.id, tuple(a.text for a in ex.answers), ex.is_impossible) for ex in examples),
                     source=str(source))
    return examples, gold

def examples_from_squad(data: Any, source: str = "data") -> tuple[list[QAExample], ReadReport]:
    """Examples from an already parsed SQuAD JSON object (``source`` names it in messages)."""
    report = ReadReport(source)
    return _checked(list(_examples_from_squad(data, source, report)), report)


def _checked(examples: list[QAExample], report: ReadReport) -> tuple[list[QAExample], ReadReport]:
    if not examples:
        raise QADataError(f"{report.source}: no questions")
    if report.bad_offsets:
        logger.warning(report.summary())
    return examples, report


def examples_from_rows(rows: Iterable[dict], source: str = "rows") -> tuple[list[QAExample], ReadReport]:
    """Examples from in-memory rows with SQuAD columns (a ``datasets.Dataset`` or dicts)."""
    report = ReadReport(source)
    return list(_examples_from_rows(rows, source, report)), report


def split_squad_by_article(data: dict, dev_articles: int, seed: int = 0) -> tuple[dict, dict]:
    """Split a parsed SQuAD file into (train, dev) files by whole articles, ``dev_articles`` of
    them drawn with a seeded RNG, so no paragraph or topic is shared between the two."""
    import random

    articles = data.get("data") if isinstance(data, dict) else None
    if not isinstance(articles, list) or not 0 < dev_articles < len(articles):
        raise QADataError(f"split: need a SQuAD object with more than {dev_articles} articles")
    dev_ids = set(random.Random(seed).sample(range(len(articles)), dev_articles))
    version = data.get("version", "")
    train = {"version": version, "data": [a for i, a in enumerate(articles) if i not in dev_ids]}
    dev = {"version": version, "data": [a for i, a in enumerate(articles) if i in dev_ids]}
    return train, dev


def contexts_as_documents(examples: Iterable[QAExample]) -> list[dict]:
    """The distinct contexts of ``examples`` as ``{"id", "title", "text"}`` documents, in order:
    a corpus for span pre-training on a task's own (unlabelled) text."""
    seen: dict[str, dict] = {}
    for ex in examples:
        if ex.context not in seen:
            seen[ex.context] = {"id": len(seen), "title": ex.title, "text": ex.context}
    return list(seen.values())


USAGE = ("usage: python -m spanbert.tasks.qa.data split FILE DEV_ARTICLES SEED OUT_DIR\n"
         "       python -m spanbert.tasks.qa.data contexts FILE OUT.jsonl")


def main(argv: list[str] | None = None) -> None:
    """``split FILE DEV_ARTICLES SEED OUT_DIR`` writes train.json and dev.json split by article;
    ``contexts FILE OUT.jsonl`` writes the distinct contexts as a JSONL corpus (key ``text``)."""
    import sys

    from spanbert.core.atomic import atomic_write_json, atomic_write_text

    args = sys.argv[1:] if argv is None else argv
    if len(args) == 3 and args[0] == "contexts":
        docs = contexts_as_documents(read_qa(args[1])[0])
        atomic_write_text(args[2], "".join(json.dumps(d, ensure_ascii=False) + "\n" for d in docs))
        print(f"{len(docs)} contexts, {sum(len(d['text'].split()) for d in docs)} words -> {args[2]}")
        return
    if len(args) != 5 or args[0] != "split":
        raise SystemExit(USAGE)
    train, dev = split_squad_by_article(load_json_file(args[1]), int(args[2]), int(args[3]))
    out = Path(args[4])
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out / "train.json", train)
    atomic_write_json(out / "dev.json", dev)
    count = lambda d: sum(len(p["qas"]) for a in d["data"] for p in a["paragraphs"])  # noqa: E731
    print(f"train: {len(train['data'])} articles, {count(train)} questions; dev: {len(dev['data'])} articles, {count(dev)} questions")


if __name__ == "__main__":
    main()
