"""Readers of relation-extraction data: SemEval-2010 Task 8 files, marked sentences, TACRED-style
JSON/JSONL and saved ``datasets`` folders; the label set; the conversion to a ``datasets.Dataset``.

Every reader returns :class:`RelationExample` objects: the sentence as words, the subject and
object as inclusive word spans, their types (``None`` when the data has none) and the label.
For SemEval, ``<e1>`` is the subject and ``<e2>`` the object, and the label keeps its direction
(``Cause-Effect(e2,e1)``: e2 is the cause), so the classifier sees 19 classes.

Input problems are one-line :class:`~spanbert.core.errors.CorpusError` messages naming the file and
line (or item index and field).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from spanbert.core.errors import CorpusError
from spanbert.core.sources import iter_jsonl, load_saved_dataset, open_text

# Markers of the SemEval format; ``<e1:PERSON>`` also gives a type (our extension, for typed models).
MARKER = re.compile(r"<(/?)e([12])(?::([^<>\s]+))?>")
SEMEVAL_RELATIONS = (
    "Cause-Effect", "Component-Whole", "Content-Container", "Entity-Destination", "Entity-Origin",
    "Instrument-Agency", "Member-Collection", "Message-Topic", "Product-Producer",
)
# A label: "Other", or a name with an optional direction, e.g. "Component-Whole(e2,e1)", "per:title".
LABEL = re.compile(r"^[^\s()]+(\((e1,e2|e2,e1)\))?$")
TACRED_FIELDS = ("id", "token", "subj_start", "subj_end", "obj_start", "obj_end", "subj_type", "obj_type", "relation")


@dataclass(frozen=True)
class RelationExample:
    """One sentence with a subject and an object (word spans, inclusive) and, when known, a label.

    ``where`` is the ``file:line`` (or ``file: item N``) the example came from, for error messages.
    """

    id: str
    words: tuple[str, ...]
    subject_span: tuple[int, int]
    object_span: tuple[int, int]
    label: str | None = None
    subject_type: str | None = None
    object_type: str | None = None
    where: str = ""

    def subject_text(self) -> str:
        return " ".join(self.words[self.subject_span[0] : self.subject_span[1] + 1])

    def object_text(self) -> str:
        return " ".join(self.words[self.object_span[0] : self.object_span[1] + 1])

    def marked_text(self) -> str:
        """The sentence with SemEval markers around the subject (e1) and object (e2)."""
        out = []
        for i, w in enumerate(self.words):
            if i == self.subject_span[0]:
                out.append("<e1>")
            if i == self.object_span[0]:
                out.append("<e2>")
            out.append(w)
            if i == self.subject_span[1]:
                out.append("</e1>")
            if i == self.object_span[1]:
                out.append("</e2>")
        return re.sub(r"(<e[12]>) ", r"\1", re.sub(r" (</e[12]>)", r"\1", " ".join(out)))


# ---------------------------------------------------------------------------------------------
# Marked sentences (SemEval style)


def parse_marked_sentence(text: str, where: str) -> tuple[tuple[str, ...], tuple[int, int], tuple[int, int], str | None, str | None]:
    """Words, subject span, object span and the types of a sentence marked ``<e1>..</e1>``/``<e2>..</e2>``.

    Words are whitespace-separated; a marker also ends a word (``doves<e2>moles</e2>`` gives
    ``doves``, ``moles``). ``<e1:TYPE>`` gives the subject a type. Each marker must occur exactly
    once, open before it closes, enclose at least one word, and the two entities must not nest
    or cross; otherwise a :class:`CorpusError` names ``where``.
    """
    words: list[str] = []
    opened: dict[str, int] = {}
    spans: dict[str, tuple[int, int]] = {}
    types: dict[str, str | None] = {"1": None, "2": None}
    seen: set[str] = set()
    pos = 0
    for m in MARKER.finditer(text):
        words.extend(text[pos : m.start()].split())
        pos = m.end()
        closing, which, kind = m.group(1) == "/", m.group(2), m.group(3)
        tag = m.group(0) if not kind else f"<e{which}>"
        if tag in seen:
            raise CorpusError(f"{where}: marker {m.group(0)} occurs twice")
        seen.add(tag)
        if not closing:
            other = "2" if which == "1" else "1"
            if other in opened:
                raise CorpusError(f"{where}: <e{which}> opens inside <e{other}> (entities must not nest)")
            opened[which] = len(words)
            types[which] = kind
        else:
            if kind:
                raise CorpusError(f"{where}: closing marker {m.group(0)} cannot carry a type")
            if which not in opened:
                raise CorpusError(f"{where}: </e{which}> without an opening <e{which}> before it")
            start = opened.pop(which)
            if start == len(words):
                raise CorpusError(f"{where}: <e{which}> encloses no word")
            spans[which] = (start, len(words) - 1)
    words.extend(text[pos:].split())
    for which in ("1", "2"):
        if which in opened:
            raise CorpusError(f"{where}: <e{which}> is never closed (missing </e{which}>)")
        if which not in spans:
            raise CorpusError(f"{where}: marker <e{which}>..</e{which}> missing")
    return tuple(words), spans["1"], spans["2"], types["1"], types["2"]


def _open_text(path: Path):
    if not path.is_file():
        raise CorpusError(f"{path}: no such file")
    return open_text(path, "utf-8-sig", newline="")


def _lines(path: Path) -> list[str]:
    """The file's lines without their line ends (CRLF or LF), read as UTF-8."""
    try:
        with _open_text(path) as f:
            text = f.read()
    except UnicodeDecodeError as e:
        raise CorpusError(f"{path}: not UTF-8 text ({e.reason} at byte {e.start})") from None
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return [line[:-1] if line.endswith("\r") else line for line in lines]


SENTENCE_LINE = re.compile(r'^(\S+)\t"(.*)"\s*$')


def read_semeval(path: str | Path) -> list[RelationExample]:
    """Read a SemEval-2010 Task 8 file (``TRAIN_FILE.TXT``, ``TEST_FILE_FULL.TXT``).

    Blocks of four lines: ``id<TAB>"sentence"``, the label, ``Comment: ...``, a blank line (the
    blank line may be missing at the end of the file). Labels look like ``Other`` or
    ``Component-Whole(e2,e1)``.
    """
    path = Path(path)
    lines = _lines(path)
    examples: list[RelationExample] = []
    seen: dict[str, int] = {}
    n = 0
    while n < len(lines):
        if not lines[n].strip():  # tolerate extra blank lines between blocks
            n += 1
            continue
        m = SENTENCE_LINE.match(lines[n])
        if not m:
            raise CorpusError(f"{path}:{n + 1}: expected 'id<TAB>\"sentence\"', got {lines[n][:60]!r}")
        sid, sentence = m.group(1), m.group(2)
        if sid in seen:
            raise CorpusError(f"{path}:{n + 1}: id {sid} already used on line {seen[sid]}")
        seen[sid] = n + 1
        words, subj, obj, st, ot = parse_marked_sentence(sentence, f"{path}:{n + 1}")
        if n + 1 >= len(lines) or not lines[n + 1].strip():
            raise CorpusError(f"{path}:{n + 2}: a relation label line must follow the sentence of id {sid}")
        label = lines[n + 1].strip()
        if label.startswith("Comment"):
            raise CorpusError(f"{path}:{n + 2}: the relation label of id {sid} is missing (found the comment line)")
        if not LABEL.match(label):
            raise CorpusError(f"{path}:{n + 2}: malformed relation label {label!r} (e.g. Other, Cause-Effect(e1,e2))")
        step = 2
        if n + 2 < len(lines) and lines[n + 2].startswith("Comment"):
            step = 3
        if n + step < len(lines) and lines[n + step].strip():
            raise CorpusError(f"{path}:{n + step + 1}: expected a blank line after the block of id {sid}")
        examples.append(RelationExample(sid, words, subj, obj, label, st, ot, f"{path}:{n + 2}"))
        n += step + 1
    if not examples:
        raise CorpusError(f"{path}: no examples")
    return examples


def read_marked_sentences(path: str | Path) -> list[RelationExample]:
    """Unlabelled sentences for prediction: one per line, either a bare marked sentence
    (``The <e1>author</e1> wrote the <e2>book</e2>.``) or SemEval's ``id<TAB>"sentence"``;
    blank lines are skipped. Ids default to the line number."""
    path = Path(path)
    examples = []
    for n, line in enumerate(_lines(path), 1):
        if not line.strip():
            continue
        m = SENTENCE_LINE.match(line)
        sid, sentence = (m.group(1), m.group(2)) if m else (str(n), line)
        words, subj, obj, st, ot = parse_marked_sentence(sentence, f"{path}:{n}")
        examples.append(RelationExample(sid, words, subj, obj, None, st, ot, f"{path}:{n}"))
    if not examples:
        raise CorpusError(f"{path}: no sentences")
    return examples


# ---------------------------------------------------------------------------------------------
# TACRED style


def example_from_tacred(row: Any, where: str, labeled: bool = True) -> RelationExample:
    """One TACRED-style record (``token`` list, inclusive ``subj_start..subj_end`` and
    ``obj_start..obj_end``, ``subj_type``/``obj_type``, ``relation``) as an example.

    Missing or ill-typed fields raise a :class:`CorpusError` naming ``where`` and the field.
    """
    if not isinstance(row, dict):
        raise CorpusError(f"{where}: expected an object with TACRED fields, got {type(row).__name__}")
    tokens = row.get("token")
    if not isinstance(tokens, list) or not tokens or not all(isinstance(t, str) for t in tokens):
        raise CorpusError(f"{where}: field 'token' must be a non-empty list of strings")
    spans = []
    for name in ("subj", "obj"):
        start, end = row.get(f"{name}_start"), row.get(f"{name}_end")
        for field, value in ((f"{name}_start", start), (f"{name}_end", end)):
            if not isinstance(value, int) or isinstance(value, bool):
                raise CorpusError(f"{where}: field '{field}' must be an integer, got {value!r}")
        if not 0 <= start <= end < len(tokens):
            raise CorpusError(f"{where}: field '{name}_start'/'{name}_end' = {start}..{end} outside the {len(tokens)} tokens")
        spans.append((start, end))
    if not (spans[0][1] < spans[1][0] or spans[1][1] < spans[0][0]):
        raise CorpusError(f"{where}: subject {spans[0]} and object {spans[1]} overlap")
    types = []
    for field in ("subj_type", "obj_type"):
        value = row.get(field)
        if value is not None and (not isinstance(value, str) or not value.strip() or any(c.isspace() for c in value)):
            raise CorpusError(f"{where}: field '{field}' must be a type name without spaces, got {value!r}")
        types.append(value)
    label = row.get("relation")
    if labeled:
        if not isinstance(label, str) or not label.strip():
            raise CorpusError(f"{where}: field 'relation' missing or empty")
    elif label is not None and not isinstance(label, str):
        raise CorpusError(f"{where}: field 'relation' must be a string, got {label!r}")
    rid = row.get("id")
    if rid is None:
        raise CorpusError(f"{where}: field 'id' missing")
    return RelationExample(str(rid), tuple(tokens), spans[0], spans[1], label, types[0], types[1], where)


def read_tacred(path: str | Path, labeled: bool = True) -> list[RelationExample]:
    """Read TACRED-style records from a JSON file (a list) or a JSON Lines file (``.jsonl``,
    one record a line); ``.gz`` is read too. Errors name the line (JSONL) or item index (JSON)."""
    path = Path(path)
    name = path.name[:-3] if path.name.endswith(".gz") else path.name
    examples = []
    if name.endswith(".jsonl"):
        examples = [example_from_tacred(row, f"{path}:{n}", labeled) for n, row in iter_jsonl(path)]
    else:
        try:
            with _open_text(path) as f:
                try:
                    data = json.load(f)
                except json.JSONDecodeError as e:
                    raise CorpusError(f"{path}:{e.lineno}:{e.colno}: not valid JSON ({e.msg})") from None
        except UnicodeDecodeError as e:
            raise CorpusError(f"{path}: not UTF-8 text ({e.reason} at byte {e.start})") from None
        if not isinstance(data, list):
            raise CorpusError(f"{path}: expected a JSON list of TACRED records")
        examples = [example_from_tacred(row, f"{path}: item {i}", labeled) for i, row in enumerate(data)]
    if not examples:
        raise CorpusError(f"{path}: no examples")
    return examples


def read_dataset_folder(path: str | Path, split: str = "train", labeled: bool = True) -> list[RelationExample]:
    """Read a folder saved with ``datasets`` (``Dataset`` or ``DatasetDict``; ``split`` picks
    from the latter) whose columns are the TACRED fields (see :func:`to_dataset`)."""
    path = Path(path)
    data = load_saved_dataset(path, split)
    required = [c for c in TACRED_FIELDS if c not in ("subj_type", "obj_type") and (labeled or c != "relation")]
    missing = [c for c in required if c not in data.column_names]
    if missing:
        raise CorpusError(f"{path}: missing column(s) {', '.join(missing)}")
    return [example_from_tacred(row, f"{path}: row {i}", labeled) for i, row in enumerate(data)]


def _is_semeval(path: Path) -> bool:
    for line in _lines(path)[:5]:
        if line.strip():
            return bool(SENTENCE_LINE.match(line))
    return False


def read_relations(source: str | Path, split: str = "train", labeled: bool = True) -> list[RelationExample]:
    """Read examples from any supported source, chosen by its form.

    A folder: a saved ``datasets`` folder; ``*.json``/``*.jsonl`` (``.gz``): TACRED style;
    other files: SemEval-2010 Task 8 blocks when labelled, or (``labeled=False``) marked
    sentences one a line (SemEval's ``id<TAB>"sentence"`` lines included).
    """
    path = Path(source)
    if path.is_dir():
        return read_dataset_folder(path, split, labeled)
    if not path.is_file():
        raise CorpusError(f"{path}: no such file or folder")
    name = path.name[:-3] if path.name.endswith(".gz") else path.name
    if name.endswith((".json", ".jsonl")):
        return read_tacred(path, labeled)
    if labeled:
        return read_semeval(path)
    lines = _lines(path)
    labelled_blocks = len(lines) > 1 and _is_semeval(path) and LABEL.match(lines[1].strip() or "-") is not None
    return [_drop_label(e) for e in read_semeval(path)] if labelled_blocks else read_marked_sentences(path)


def _drop_label(example: RelationExample) -> RelationExample:
    from dataclasses import replace

    return replace(example, label=None)


# ---------------------------------------------------------------------------------------------
# Labels, types and datasets


def label_set(examples: Iterable[RelationExample]) -> list[str]:
    """The sorted labels of ``examples`` (the classifier's classes, saved as ``id2label``)."""
    labels = {e.label for e in examples if e.label is not None}
    return sorted(labels)


def check_labels(examples: Iterable[RelationExample], label2id: dict[str, int]) -> None:
    """Raise a :class:`CorpusError` naming the example's file and line for a label the model lacks."""
    for e in examples:
        if e.label is not None and e.label not in label2id:
            known = ", ".join(sorted(label2id)[:6]) + (", ..." if len(label2id) > 6 else "")
            raise CorpusError(f"{e.where}: label {e.label!r} is not in the model's label set ({known})")


def guess_no_relation_label(labels: Sequence[str]) -> str:
    """``Other`` (SemEval), ``no_relation`` (TACRED), else ``no_relation`` (absent: nothing is excluded)."""
    for name in ("Other", "no_relation", "NA", "None"):
        if name in labels:
            return name
    return "no_relation"


def entity_types(examples: Iterable[RelationExample]) -> tuple[list[str], list[str]]:
    """Sorted subject types and object types used by ``examples`` (empty lists for SemEval)."""
    subj, obj = set(), set()
    for e in examples:
        if e.subject_type:
            subj.add(e.subject_type)
        if e.object_type:
            obj.add(e.object_type)
    return sorted(subj), sorted(obj)


def is_semeval_labels(labels: Iterable[str]) -> bool:
    """True when every label is a SemEval-2010 Task 8 label (``Other`` or a directed relation)."""
    allowed = {"Other"} | {f"{r}({d})" for r in SEMEVAL_RELATIONS for d in ("e1,e2", "e2,e1")}
    labels = list(labels)
    return bool(labels) and all(label in allowed for label in labels)


def to_rows(examples: Iterable[RelationExample]) -> Iterator[dict]:
    """TACRED-style rows of ``examples``."""
    for e in examples:
        yield {"id": e.id, "token": list(e.words), "subj_start": e.subject_span[0], "subj_end": e.subject_span[1],
               "obj_start": e.object_span[0], "obj_end": e.object_span[1], "subj_type": e.subject_type,
               "obj_type": e.object_type, "relation": e.label}


def to_dataset(examples: Sequence[RelationExample]):
    """A ``datasets.Dataset`` with the TACRED columns (id, token, subj_start, subj_end, obj_start,
    obj_end, subj_type, obj_type, relation); ``save_to_disk`` output reads back with
    :func:`read_dataset_folder`."""
    import datasets

    features = datasets.Features({
        "id": datasets.Value("string"), "token": datasets.Sequence(datasets.Value("string")),
        "subj_start": datasets.Value("int32"), "subj_end": datasets.Value("int32"),
        "obj_start": datasets.Value("int32"), "obj_end": datasets.Value("int32"),
        "subj_type": datasets.Value("string"), "obj_type": datasets.Value("string"),
        "relation": datasets.Value("string"),
    })
    rows = list(to_rows(examples))
    return datasets.Dataset.from_dict({k: [r[k] for r in rows] for k in TACRED_FIELDS}, features=features)


def split_semeval_file(path: str | Path, dev_count: int, seed: int, out_dir: str | Path) -> tuple[int, int]:
    """Split a SemEval-2010 Task 8 file into ``train.txt`` and ``dev.txt`` in ``out_dir``:
    ``dev_count`` blocks drawn with a seeded RNG go to dev, the rest (in file order) to train.
    The blocks are copied as they are (same lines, CRLF kept), so both read like the original.
    Returns (train, dev) sizes."""
    import random

    from spanbert.core.atomic import atomic_write_text

    path = Path(path)
    examples = read_semeval(path)  # validates the file and counts its blocks
    if not 0 < dev_count < len(examples):
        raise CorpusError(f"{path}: cannot put {dev_count} of {len(examples)} examples into dev")
    with _open_text(path) as f:
        text = f.read()
    newline = "\r\n" if "\r\n" in text else "\n"
    blocks = [b.strip("\r\n") for b in re.split(r"(?:\r?\n){2,}", text) if b.strip()]
    if len(blocks) != len(examples):
        raise CorpusError(f"{path}: {len(blocks)} blank-line blocks for {len(examples)} examples; cannot split it by blocks")
    dev_ids = set(random.Random(seed).sample(range(len(blocks)), dev_count))
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    for name, keep in (("train.txt", lambda i: i not in dev_ids), ("dev.txt", lambda i: i in dev_ids)):
        atomic_write_text(out / name, "".join(b + newline * 2 for i, b in enumerate(blocks) if keep(i)))
    return len(blocks) - dev_count, dev_count


def main(argv: list[str] | None = None) -> None:
    """``split FILE DEV_COUNT SEED OUT_DIR``: :func:`split_semeval_file`."""
    import sys

    args = sys.argv[1:] if argv is None else argv
    if len(args) != 5 or args[0] != "split":
        raise SystemExit("usage: python -m spanbert.tasks.relations.data split FILE DEV_COUNT SEED OUT_DIR")
    train, dev = split_semeval_file(args[1], int(args[2]), int(args[3]), args[4])
    print(f"train: {train} examples; dev: {dev} examples -> {args[4]}")


__all__ = [
    "RelationExample", "parse_marked_sentence", "read_semeval", "read_marked_sentences", "read_tacred",
    "read_dataset_folder", "read_relations", "example_from_tacred", "label_set", "check_labels",
    "guess_no_relation_label", "entity_types", "is_semeval_labels", "to_dataset", "to_rows", "SEMEVAL_RELATIONS", "split_semeval_file",
]


if __name__ == "__main__":
    main()
