"""Corpus reading and packing: raw text -> documents -> fixed-length token segments.

SpanBERT trains on one contiguous segment per example (no NSP, no second segment), up to
512 tokens, never crossing a document boundary. This module owns that first step of the
data flow::

    files / datasets source --load_corpus--> Dataset["text"]
        --pack_documents--> Dataset["input_ids", "word_starts", "example_id"]

Reading is strict: every problem with the user's files (missing, empty, not UTF-8, a bad
JSON line, a JSON line without the text field) is a :class:`~spanbert.core.errors.CorpusError`
whose one-line message names the file and line at fault.

Packing fills segments greedily with *whole sentences* (a light regex splitter mapped to
tokens through the fast tokenizer's character offsets); only a sentence longer than a whole
segment is cut, and then at a word start. Word starts come from :mod:`spanbert.pretrain.words`, so
span masking can snap spans to whole words.
"""

from __future__ import annotations

import gzip
import json
import re
import zlib
from collections.abc import Callable, Iterator, Sequence
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import datasets
import numpy as np
import pyarrow.compute as pc

from spanbert.core.errors import ConfigError, CorpusError, SpanBertError, TokenizerError
from spanbert.core.sources import load_hub_dataset, load_saved_dataset
from spanbert.pretrain.arguments import MIN_SEGMENT_TOKENS
from spanbert.pretrain.words import batch_word_starts

__all__ = [
    "sample_corpus_path",
    "iter_documents",
    "load_corpus",
    "is_saved_dataset",
    "sentence_starts",
    "segment_ranges",
    "pack_documents",
    "unigram_distribution",
    "corpus_stats",
    "PACKED_FEATURES",
]

Format = Literal["auto", "text", "jsonl"]
DocPer = Literal["file", "blank_line", "line"]
DOC_PER_CHOICES = ("file", "blank_line", "line")
SentenceMode = Literal["regex", "lines"]

# Suffixes (after an optional .gz) read as JSON Lines in fmt="auto"; anything else is text.
_JSONL_SUFFIXES = (".jsonl", ".json", ".ndjson")

PACKED_FEATURES = datasets.Features(
    {
        "input_ids": datasets.List(datasets.Value("int32")),
        "word_starts": datasets.List(datasets.Value("int8")),
        "example_id": datasets.Value("int64"),
    }
)
# Column added by pack_documents(..., with_doc_ids=True).
DOC_ID = "doc_id"
_TEXT_FEATURES = datasets.Features({"text": datasets.Value("string")})


def sample_corpus_path() -> Path:
    """Path of the embedded demo corpus (a few State of the Union addresses, JSON Lines, gzip)."""
    return Path(str(resources.files("spanbert") / "data" / "sotu_sample.jsonl.gz"))


# --------------------------------------------------------------------------- reading


def _check_choice(name: str, value: str, allowed: Sequence[str]) -> None:
    if value not in allowed:
        raise ConfigError(f"{name}={value!r}: expected one of {', '.join(map(repr, allowed))}")


def _as_list(paths: Sequence[str | Path] | str | Path) -> list[str | Path]:
    # A bare string is a Sequence too: iterating it would give characters.
    return [paths] if isinstance(paths, (str, Path)) else list(paths)


def _expand_paths(paths: Sequence[str | Path]) -> list[Path]:
    """Files to read, in order: directories expand to their non-hidden files, recursively, sorted."""
    files: list[Path] = []
    for raw in paths:
        path = Path(raw).expanduser()
        if path.is_dir():
            found = sorted(
                f
                for f in path.rglob("*")
                if f.is_file() and not any(part.startswith(".") for part in f.relative_to(path).parts)
            )
            if not found:
                raise CorpusError(f"{path}: directory contains no files")
            files.extend(found)
        elif path.is_file():
            files.append(path)
        else:
            raise CorpusError(f"{path}: no such file or directory")
    if not files:
        raise CorpusError("no corpus files given")
    return files


def _is_jsonl(path: Path, fmt: Format) -> bool:
    if fmt != "auto":
        return fmt == "jsonl"
    name = path.name.lower().removesuffix(".gz")
    return name.endswith(_JSONL_SUFFIXES)


def _read_lines(path: Path) -> Iterator[tuple[int, str]]:
    """Yield (line number from 1, line with its newline) of a plain or gzipped file, strict UTF-8."""
    opener: Callable[..., Any] = gzip.open if path.name.lower().endswith(".gz") else open
    lineno = 0
    try:
        with opener(path, "rb") as handle:
            # Splitting bytes at b"\n" is safe: 0x0A never occurs inside a multi-byte UTF-8 character.
            for lineno, raw in enumerate(handle, start=1):
                try:
                    line = raw.decode("utf-8")
                except UnicodeDecodeError as err:
                    raise CorpusError(
                        f"{path}:{lineno}: not valid UTF-8 (byte 0x{raw[err.start]:02x} at byte "
                        f"{err.start + 1} of the line); re-encode the file as UTF-8"
                    ) from None
                if lineno == 1 and line.startswith("\ufeff"):
                    line = line[1:]  # byte-order mark
                yield lineno, line
    except (OSError, EOFError, zlib.error) as err:  # gzip.BadGzipFile is an OSError
        reason = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise CorpusError(f"{path}:{lineno + 1}: cannot read the file ({reason})") from None


def _text_documents(path: Path, doc_per: DocPer) -> Iterator[str]:
    """Documents of a plain-text file: the whole file, each blank-line-separated block, or each non-blank line."""
    block: list[str] = []
    for _, line in _read_lines(path):
        line = line.rstrip("\r\n")
        if doc_per == "line":
            if line.strip():
                yield line
            continue
        if doc_per == "blank_line" and not line.strip():
            if block:
                yield "\n".join(block)
                block = []
            continue
        block.append(line)
    text = "\n".join(block)
    if doc_per == "file":
        text = text.strip()
    if text.strip():
        yield text


def _jsonl_documents(path: Path, text_field: str) -> Iterator[str]:
    """The ``text_field`` of every JSON object line; blank lines and null texts are skipped."""
    for lineno, line in _read_lines(path):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as err:
            hint = (
                "; expected one JSON object per line (JSON Lines), not a JSON array"
                if lineno == 1 and line.lstrip().startswith("[")
                else ""
            )
            raise CorpusError(f"{path}:{lineno}: malformed JSON ({err.msg} at column {err.colno}){hint}") from None
        if not isinstance(record, dict):
            raise CorpusError(f"{path}:{lineno}: expected a JSON object, got a JSON {type(record).__name__}")
        if text_field not in record:
            fields = ", ".join(sorted(record)[:8]) or "none"
            raise CorpusError(f"{path}:{lineno}: no field {text_field!r} in the JSON object (fields: {fields})")
        text = record[text_field]
        if text is None:
            continue
        if not isinstance(text, str):
            raise CorpusError(
                f"{path}:{lineno}: field {text_field!r} is a JSON {type(text).__name__}, expected a string"
            )
        if text.strip():
            yield text


def _documents(files: list[Path], text_field: str, fmt: Format, doc_per: DocPer) -> Iterator[str]:
    n_docs = 0
    for path in files:
        docs = _jsonl_documents(path, text_field) if _is_jsonl(path, fmt) else _text_documents(path, doc_per)
        for doc in docs:
            n_docs += 1
            yield doc
    if n_docs == 0:
        more = f" (and {len(files) - 1} more files)" if len(files) > 1 else ""
        raise CorpusError(f"{files[0]}{more}: empty corpus, no non-blank text found")


def iter_documents(
    paths: Sequence[str | Path],
    *,
    text_field: str = "text",
    fmt: Format = "auto",
    doc_per: DocPer = "blank_line",
) -> Iterator[str]:
    """Yield the documents of local corpus files, in order.

    Args:
        paths: files or directories. A directory stands for all its non-hidden files, found
            recursively and sorted by path.
        text_field: the field holding the text in JSON Lines files.
        fmt: "auto" reads ``.jsonl``/``.json``/``.ndjson`` (optionally ``.gz``) as JSON Lines
            and every other file (``.txt``, ``.txt.gz``, ...) as plain text; "text" or
            "jsonl" force one reader for all files.
        doc_per: for plain text, one document per "file", per "blank_line"-separated block, or
            per non-blank "line" (one sentence or paragraph a line; blank lines are skipped).

    Returns:
        an iterator of non-blank document strings (the text of a block keeps its line breaks).

    Raises:
        CorpusError: (at call time) a path does not exist or a directory is empty; (while
            iterating) a line is not UTF-8 or not a JSON object with ``text_field``, or the
            corpus holds no non-blank text at all. Messages name the file and line.
    """
    _check_choice("fmt", fmt, ("auto", "text", "jsonl"))
    _check_choice("doc_per", doc_per, DOC_PER_CHOICES)
    files = _expand_paths(_as_list(paths))  # fail on a missing path now, not at the first next()
    return _documents(files, text_field, fmt, doc_per)


def _generate_rows(
    files: list[str], text_field: str, fmt: Format, doc_per: DocPer, file_state: list[tuple[int, int]]
) -> Iterator[dict[str, str]]:
    """Row generator for ``Dataset.from_generator``.

    ``file_state`` (size, mtime) is unused here, but datasets hashes the generator's arguments
    into its cache key: with it, an edited file is read again instead of served stale from cache.
    """
    del file_state
    for doc in _documents([Path(f) for f in files], text_field, fmt, doc_per):
        yield {"text": doc}


def _from_files(
    files: list[Path],
    *,
    text_field: str,
    doc_per: DocPer,
    streaming: bool,
    cache_dir: str | None,
) -> datasets.Dataset | datasets.IterableDataset:
    stats = [f.stat() for f in files]
    gen_kwargs = {
        "files": [str(f.resolve()) for f in files],
        "text_field": text_field,
        "fmt": "auto",
        "doc_per": doc_per,
        "file_state": [(s.st_size, s.st_mtime_ns) for s in stats],
    }
    if streaming:
        return datasets.IterableDataset.from_generator(_generate_rows, features=_TEXT_FEATURES, gen_kwargs=gen_kwargs)
    try:
        return datasets.Dataset.from_generator(
            _generate_rows, features=_TEXT_FEATURES, gen_kwargs=gen_kwargs, cache_dir=cache_dir
        )
    except datasets.exceptions.DatasetGenerationError as err:
        # datasets wraps whatever the generator raised; surface our one-line error instead.
        if isinstance(err.__cause__, SpanBertError):
            raise err.__cause__ from None
        raise


def is_saved_dataset(path: Path) -> bool:
    """True for a directory written by ``Dataset.save_to_disk`` or ``DatasetDict.save_to_disk``."""
    return path.is_dir() and (
        (path / "dataset_dict.json").is_file()
        or ((path / "state.json").is_file() and (path / "dataset_info.json").is_file())
    )


def _text_column(
    ds: datasets.Dataset | datasets.IterableDataset, text_field: str, source: str
) -> datasets.Dataset | datasets.IterableDataset:
    """Keep only ``text_field``, renamed to ``text``, without blank or null rows."""
    columns = ds.column_names
    if columns is not None and text_field not in columns:
        raise CorpusError(f"{source}: no field {text_field!r} (columns: {', '.join(columns)})")
    ds = ds.select_columns([text_field])
    if text_field != "text":
        ds = ds.rename_column(text_field, "text")
    # In memory: the filter only builds an index of kept rows, and must not write cache
    # files into a user's saved dataset directory.
    extra = {"keep_in_memory": True} if isinstance(ds, datasets.Dataset) else {}
    return ds.filter(_non_blank, input_columns="text", batched=True, **extra)


def _non_blank(texts: list[Any]) -> list[bool]:
    return [isinstance(t, str) and bool(t.strip()) for t in texts]


def _from_hub(
    spec: str, *, text_field: str, streaming: bool, split: str, cache_dir: str | None
) -> datasets.Dataset | datasets.IterableDataset:
    """Load ``hf:NAME[:CONFIG]`` with ``datasets.load_dataset`` (needs the network or a warm cache)."""
    ds = load_hub_dataset(spec, split, streaming=streaming, cache_dir=cache_dir)
    return _text_column(ds, text_field, spec)


def _from_disk(
    path: Path, *, text_field: str, streaming: bool, split: str
) -> datasets.Dataset | datasets.IterableDataset:
    """Load a directory saved with ``save_to_disk`` (a Dataset, or a DatasetDict's ``split``)."""
    ds = _text_column(load_saved_dataset(path, split), text_field, str(path))
    return ds.to_iterable_dataset() if streaming else ds


def load_corpus(
    sources: Sequence[str | Path],
    *,
    text_field: str = "text",
    streaming: bool = False,
    doc_per: DocPer = "blank_line",
    dataset_split: str = "train",
    cache_dir: str | None = None,
) -> datasets.Dataset | datasets.IterableDataset:
    """Load documents from files, directories or ``datasets`` sources as one ``text`` column.

    Args:
        sources: each one of
            * a local file or directory (read with :func:`iter_documents`);
            * a directory written by ``save_to_disk`` (recognised by its ``state.json``/
              ``dataset_dict.json``);
            * ``hf:NAME`` or ``hf:NAME:CONFIG``, loaded with ``datasets.load_dataset``.
            Several sources are concatenated in order.
        text_field: the field/column holding the text (JSON Lines and datasets sources).
        streaming: return an ``IterableDataset`` read lazily instead of an Arrow-backed Dataset.
        doc_per: for plain text files, "file", "blank_line" or "line" (see :func:`iter_documents`).
        dataset_split: the split taken from ``hf:`` sources and saved DatasetDicts.
        cache_dir: where datasets writes its Arrow cache (default: the datasets cache).

    Returns:
        a Dataset (or IterableDataset when streaming) with the single column ``text``, one row
        per non-blank document.

    Raises:
        CorpusError: a missing path, unreadable file, bad line or empty corpus (one line naming
            the file and line). In streaming mode, errors inside files surface while iterating.
    """
    _check_choice("doc_per", doc_per, DOC_PER_CHOICES)
    parts: list[datasets.Dataset | datasets.IterableDataset] = []
    pending: list[Path] = []  # consecutive local files become one generator

    def flush() -> None:
        if pending:
            parts.append(
                _from_files(
                    list(pending), text_field=text_field, doc_per=doc_per, streaming=streaming, cache_dir=cache_dir
                )
            )
            pending.clear()

    for source in _as_list(sources):
        text = str(source)
        if text.startswith("hf:"):
            flush()
            parts.append(
                _from_hub(text, text_field=text_field, streaming=streaming, split=dataset_split, cache_dir=cache_dir)
            )
        elif is_saved_dataset(Path(text).expanduser()):
            flush()
            parts.append(
                _from_disk(Path(text).expanduser(), text_field=text_field, streaming=streaming, split=dataset_split)
            )
        else:
            pending.extend(_expand_paths([text]))
    flush()
    if not parts:
        raise CorpusError("no corpus sources given")
    if len(parts) == 1:
        return parts[0]
    parts = [p.cast_column("text", datasets.Value("string")) for p in parts]
    return datasets.concatenate_datasets(parts)


# --------------------------------------------------------------------------- sentences

# A sentence ends at . ! ? (then optional closing quotes/brackets) followed by whitespace that
# is not followed by a lowercase letter ("etc. and" stays one sentence); at CJK full stops,
# which need no space; and at every blank line (a paragraph break). Possessive \s++ stops the
# lookahead from being dodged by giving back whitespace.
_SENTENCE_END = re.compile(
    r"""
      (?P<latin>[.!?]+)["'’”)\]]*\s++(?![a-z])
    | [。！？]+[”’」』）)]*\s*+
    | \n[^\S\n]*\n\s*+
    """,
    re.VERBOSE,
)
# Words whose trailing period rarely ends a sentence; single capitals (initials) are handled too.
_ABBREVIATIONS = frozenset(
    "mr mrs ms dr prof st jr sr gen col capt lt sgt rev hon gov sen rep pres messrs vs etc no nos "
    "art sec ch vol pp fig jan feb mar apr jun jul aug sep sept oct nov dec inc co corp ltd".split()
)
_LAST_WORD = re.compile(r"(\w+)$")
_LINE_BREAK = re.compile(r"\n\s*")


def sentence_starts(text: str, mode: SentenceMode = "regex") -> np.ndarray:
    """Character offsets where a new sentence begins (0 excluded), sorted, int64 (S,).

    Args:
        text: one document.
        mode: "regex" splits after sentence-final punctuation and at blank lines (a simple,
            language-light rule: "Mr. Smith" and "John F. Kennedy" are not split, unusual
            abbreviations may be); "lines" treats every line as a sentence (for corpora with
            one sentence a line).
    """
    _check_choice("mode", mode, ("regex", "lines"))
    if mode == "lines":
        return np.array([m.end() for m in _LINE_BREAK.finditer(text) if m.end() < len(text)], dtype=np.int64)
    starts = []
    for match in _SENTENCE_END.finditer(text):
        if match.end() >= len(text):
            continue
        if match.group("latin") == ".":
            last = _LAST_WORD.search(text, max(0, match.start() - 12), match.start())
            word = last.group(1) if last else ""
            if word.lower() in _ABBREVIATIONS or (len(word) == 1 and word.isupper()):
                continue  # "Mr. Smith", "John F. Kennedy"
        starts.append(match.end())
    return np.array(starts, dtype=np.int64)


def segment_ranges(
    n_tokens: int, sentence_token_starts: np.ndarray, word_starts: np.ndarray, room: int
) -> list[tuple[int, int]]:
    """Greedy packing of whole sentences into ranges of at most ``room`` tokens.

    Args:
        n_tokens: tokens in the document.
        sentence_token_starts: sorted token indices where a sentence begins (0 may be included).
        word_starts: (n_tokens,) bool, True where a token begins a word.
        room: most tokens a range may hold (the segment length less its special tokens).

    Returns:
        consecutive ``(start, end)`` token ranges (end exclusive) covering ``0..n_tokens``.
        A range ends at a sentence end unless one sentence is longer than ``room``: such a
        sentence starts a new range and is cut at the last word start that fits (mid-word only
        when a single word is longer than ``room``); its last piece may take further sentences.
    """
    if room < 1:
        raise ConfigError(f"room={room}: a segment must have room for at least one token")
    bounds = np.unique(np.concatenate(([0], np.asarray(sentence_token_starts, dtype=np.int64), [n_tokens])))
    bounds = bounds[(bounds >= 0) & (bounds <= n_tokens)]
    word_pos = np.flatnonzero(np.asarray(word_starts, dtype=bool))  # (W,)
    ranges: list[tuple[int, int]] = []
    seg_start = 0
    for sent_start, sent_end in zip(bounds[:-1].tolist(), bounds[1:].tolist()):
        if sent_end - seg_start <= room:
            continue  # the sentence joins the current range
        if sent_start > seg_start:
            ranges.append((seg_start, sent_start))
            seg_start = sent_start
        while sent_end - seg_start > room:  # one sentence longer than a whole range
            limit = seg_start + room
            i = int(np.searchsorted(word_pos, limit, side="right")) - 1
            cut = int(word_pos[i]) if i >= 0 and word_pos[i] > seg_start else limit
            ranges.append((seg_start, cut))
            seg_start = cut
    if n_tokens > seg_start:
        ranges.append((seg_start, n_tokens))
    return ranges


# --------------------------------------------------------------------------- packing


def _special_ids(tokenizer: Any) -> tuple[list[int], list[int]]:
    """Token ids put before and after every segment: [CLS]/[SEP], else BOS/EOS, else none."""
    first = tokenizer.cls_token_id if tokenizer.cls_token_id is not None else tokenizer.bos_token_id
    last = tokenizer.sep_token_id if tokenizer.sep_token_id is not None else tokenizer.eos_token_id
    return ([] if first is None else [int(first)]), ([] if last is None else [int(last)])


def _pack_batch(
    batch: dict[str, list[Any]],
    indices: list[int] | None = None,
    *,
    tokenizer: Any,
    max_length: int,
    min_tokens: int,
    sentence_mode: SentenceMode,
    pre_segmenter: Callable[[str], list[tuple[int, int]]] | None,
) -> dict[str, list[list[int]]]:
    """``datasets.map`` function: a batch of documents -> a batch of packed segments.

    With ``indices`` (the documents' row indices, ``with_indices=True``) each segment also gets
    a ``doc_id``: the index of the document it comes from.
    """
    prefix, suffix = _special_ids(tokenizer)
    room = max_length - len(prefix) - len(suffix)
    kept = [i for i, t in enumerate(batch["text"]) if isinstance(t, str) and t.strip()]
    texts = [batch["text"][i] for i in kept]
    out: dict[str, list[Any]] = {"input_ids": [], "word_starts": []}
    if indices is not None:
        out["doc_id"] = []
    if not texts:
        return out
    encoding = tokenizer(
        texts,
        add_special_tokens=False,
        truncation=False,
        return_offsets_mapping=True,
        return_attention_mask=False,
        return_token_type_ids=False,
        verbose=False,  # documents are longer than model_max_length by design
    )
    starts = batch_word_starts(encoding, texts, pre_segmenter)
    head = np.asarray(prefix, dtype=np.int32)
    tail = np.asarray(suffix, dtype=np.int32)
    for row, text, ids, offsets, is_start in zip(kept, texts, encoding["input_ids"], encoding["offset_mapping"], starts):
        ids = np.asarray(ids, dtype=np.int32)  # (T,)
        offsets = np.asarray(offsets, dtype=np.int64).reshape(-1, 2)  # (T, 2)
        # Token t belongs to the sentence holding its first character.
        sentence_of = np.searchsorted(sentence_starts(text, sentence_mode), offsets[:, 0], side="right")
        sentence_tokens = np.flatnonzero(np.diff(sentence_of)) + 1
        for start, end in segment_ranges(len(ids), sentence_tokens, is_start, room):
            if end - start + len(head) + len(tail) < min_tokens:
                continue
            seg_starts = is_start[start:end].astype(np.int8)
            seg_starts[0] = 1  # a segment never begins inside a word, as far as the model can see
            # Python lists, not arrays: a streamed dataset yields map outputs as they are, and
            # rows should look the same whether they were streamed or read from Arrow.
            out["input_ids"].append(np.concatenate((head, ids[start:end], tail)).tolist())
            out["word_starts"].append(
                np.concatenate((np.zeros(len(head), np.int8), seg_starts, np.zeros(len(tail), np.int8))).tolist()
            )
            if indices is not None:
                out["doc_id"].append(int(indices[row]))
    return out


def _add_example_ids(batch: dict[str, list[Any]], indices: list[int]) -> dict[str, list[int]]:
    return {"example_id": list(indices)}


def pack_documents(
    dataset: datasets.Dataset | datasets.IterableDataset,
    tokenizer: Any,
    *,
    max_length: int = 512,
    min_tokens: int = MIN_SEGMENT_TOKENS,
    batch_size: int = 256,
    sentence_mode: SentenceMode = "regex",
    pre_segmenter: Callable[[str], list[tuple[int, int]]] | None = None,
    num_proc: int | None = None,
    with_doc_ids: bool = False,
) -> datasets.Dataset | datasets.IterableDataset:
    """Tokenize documents and pack whole sentences into segments of at most ``max_length`` tokens.

    Args:
        dataset: a Dataset or IterableDataset with a ``text`` column, one document a row
            (as returned by :func:`load_corpus`).
        tokenizer: a fast tokenizer (offsets and word ids are needed).
        max_length: most tokens in a segment, special tokens included.
        min_tokens: segments shorter than this (special tokens included) are dropped; they
            occur at the end of a document or before an overlong sentence. 0 keeps all.
        batch_size: documents tokenized per batch.
        sentence_mode: "regex" or "lines" (one sentence a line), see :func:`sentence_starts`.
        pre_segmenter: optional word segmenter ``text -> [(start, end), ...]`` passed to
            :func:`spanbert.pretrain.words.batch_word_starts` (e.g. for Chinese words).
        num_proc: worker processes for ``Dataset.map`` (ignored when streaming).
        with_doc_ids: add a ``doc_id`` column (see below), e.g. to hold documents out with
            :func:`spanbert.pretrain.heldout.split_by_document`.

    Returns:
        a Dataset (IterableDataset when the input streams) with columns

        * ``input_ids`` list[int32] (L,): ``[CLS] tokens [SEP]`` (BOS/EOS for tokenizers
          without CLS/SEP, no specials if it has neither), L <= max_length; the tokens of
          one segment always come from one document;
        * ``word_starts`` list[int8] (L,): 1 where a token begins a word; the first token
          after the opening special token is always 1; special tokens are 0;
        * ``example_id`` int64: running index of the segment, 0, 1, 2, ...
        * ``doc_id`` int64, only ``with_doc_ids``: row index in ``dataset`` of the document the
          segment comes from (non-decreasing along the rows).

    Raises:
        TokenizerError: the tokenizer is not a fast tokenizer.
        ConfigError: ``max_length`` leaves no room for tokens.
        CorpusError: the dataset has no ``text`` column.
    """
    if not getattr(tokenizer, "is_fast", False):
        raise TokenizerError(
            f"{type(tokenizer).__name__} is not a fast tokenizer: packing needs offsets and word ids"
        )
    _check_choice("sentence_mode", sentence_mode, ("regex", "lines"))
    prefix, suffix = _special_ids(tokenizer)
    if max_length - len(prefix) - len(suffix) < 1:
        raise ConfigError(f"max_length={max_length} leaves no room for tokens besides the special tokens")
    columns = dataset.column_names
    if columns is not None and "text" not in columns:
        raise CorpusError(f"the dataset has no 'text' column (columns: {', '.join(columns)})")
    out_features = {k: PACKED_FEATURES[k] for k in ("input_ids", "word_starts")}
    if with_doc_ids:
        out_features[DOC_ID] = datasets.Value("int64")
    map_kwargs: dict[str, Any] = dict(
        batched=True,
        batch_size=batch_size,
        with_indices=with_doc_ids,
        remove_columns=columns or ["text"],
        features=datasets.Features(out_features),
        fn_kwargs=dict(
            tokenizer=tokenizer,
            max_length=max_length,
            min_tokens=min_tokens,
            sentence_mode=sentence_mode,
            pre_segmenter=pre_segmenter,
        ),
    )
    if isinstance(dataset, datasets.IterableDataset):
        packed = dataset.map(_pack_batch, **map_kwargs)
        # Indices of a batched map over the packed stream run over its rows: 0, 1, 2, ...
        return packed.map(_add_example_ids, with_indices=True, batched=True,
                          features=datasets.Features({**PACKED_FEATURES, **out_features}))
    packed = dataset.map(_pack_batch, num_proc=num_proc, desc="Packing segments", **map_kwargs)
    example_ids = np.arange(len(packed), dtype=np.int64)
    return packed.add_column("example_id", example_ids, feature=PACKED_FEATURES["example_id"])


# --------------------------------------------------------------------------- statistics


def _id_batches(packed: datasets.Dataset | datasets.IterableDataset, batch_size: int = 4096) -> Iterator[Any]:
    """The ``input_ids`` column in Arrow batches (a ListArray-like column per batch)."""
    for table in packed.select_columns(["input_ids"]).with_format("arrow").iter(batch_size=batch_size):
        yield table.column("input_ids")


def unigram_distribution(
    packed: datasets.Dataset | datasets.IterableDataset,
    vocab_size: int,
    *,
    exclude_ids: Sequence[int] = (),
) -> np.ndarray:
    """Relative frequency of every token id in a packed corpus, for random replacement tokens.

    Args:
        packed: output of :func:`pack_documents` (a stream is read to its end).
        vocab_size: V, the length of the returned vector.
        exclude_ids: ids whose count is set to zero before normalising (pass
            ``tokenizer.all_special_ids`` so [CLS]/[SEP] are never drawn).

    Returns:
        (V,) float64, non-negative, summing to 1.

    Raises:
        ConfigError: a token id is outside ``0..vocab_size-1`` (tokenizer and model disagree).
        CorpusError: nothing is left to count.
    """
    counts = np.zeros(vocab_size, dtype=np.int64)
    for column in _id_batches(packed):
        ids = pc.list_flatten(column).to_numpy(zero_copy_only=False)
        if ids.size == 0:
            continue
        if ids.min() < 0 or ids.max() >= vocab_size:
            raise ConfigError(
                f"token id {int(ids.max())} is outside the vocabulary of size {vocab_size}: "
                "the tokenizer does not match vocab_size"
            )
        counts += np.bincount(ids, minlength=vocab_size)
    counts[np.asarray(list(exclude_ids), dtype=np.int64)] = 0
    total = counts.sum()
    if total == 0:
        raise CorpusError("the packed corpus has no tokens to count")
    return counts / total


def corpus_stats(packed: datasets.Dataset | datasets.IterableDataset) -> dict[str, float | int]:
    """Size of a packed corpus: ``segments``, ``tokens``, ``mean_length``, ``min_length``, ``max_length``.

    Lengths count special tokens. A stream is read to its end.
    """
    segments = tokens = 0
    shortest, longest = None, 0
    for column in _id_batches(packed):
        lengths = pc.list_value_length(column).to_numpy(zero_copy_only=False)
        if lengths.size == 0:
            continue
        segments += int(lengths.size)
        tokens += int(lengths.sum())
        shortest = int(lengths.min()) if shortest is None else min(shortest, int(lengths.min()))
        longest = max(longest, int(lengths.max()))
    return {
        "segments": segments,
        "tokens": tokens,
        "mean_length": tokens / segments if segments else 0.0,
        "min_length": shortest or 0,
        "max_length": longest,
    }
