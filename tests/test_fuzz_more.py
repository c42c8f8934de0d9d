"""More fuzzing (hypothesis), beyond tests/test_fuzz.py (the readers, the scorers' command lines
and QA decoding): span masking end to end over random Unicode text, the pre-segmenter path of
word starts, and the ``pretrain``, ``fill`` and ``predict qa|classify`` command lines on damaged
inputs and bad option values.

Masking: random text (emoji and ZWJ sequences, combining marks, CJK, right-to-left scripts,
zero-width and control characters, literal "[MASK]"/"[SEP]" strings, empty documents, and
"huge tokens": one 5,000-character run without a space) goes through the tiny tokenizer,
``pack_documents`` and ``SpanMaskingCollator`` with random masking settings. The invariants
are the ones ``spanbert.pretrain.masking`` implements:

* only maskable positions (attention 1, not a special id) are chosen; labels are the original
  id exactly at chosen positions and -100 everywhere else; only chosen positions change, and a
  changed position holds [MASK] or a non-special id;
* the budget is exact: per row, ``mask_budget(n_maskable, ratio)`` = ceil(ratio x n_maskable)
  chosen tokens for the ``span`` and ``token`` schemes (the span that meets the budget is cut
  short, so it is never exceeded), at most that for ``whole_word``;
* every maximal run of chosen tokens begins at a word start (a ``word_starts`` token, or the
  first maskable token after a non-maskable one), and at most one run per row (the cut one)
  ends inside a word (none for ``whole_word``);
* SBO pairs: both boundaries are maskable, unchosen and inside the row; every position between
  them is chosen; offsets are below ``max_pair_targets``; the label is the original id; and
  every run with maskable neighbours gets exactly min(length, max_pair_targets) targets;
* the same seed gives the same batch.

Command lines: every run gives exit status 2 with exactly one ``error:`` line (or 0 for inputs
that are odd but valid) and never a traceback; option values that are plainly invalid must give
2. Values click rejects itself (wrong types, unknown choices) end in click's usage box, exit 2,
without an ``error:`` line. The inputs this fuzzing found that used to end in exit status 1
(an exception that reached the CLI's catch-all), in a silent acceptance or in a hang are kept,
with a minimal input each, in the ``*_CASES`` tables at the end (with what they used to do), as
regression tests: each must give exit 2 and one error line naming the option, field or file.

Case counts (``max_examples``): masking 100, word starts with random segments 150, pretrain
with random corpus files 25, bad option values 40, usage errors 25, fill 30, predict qa 25,
predict classify 25, damaged model folders 40: up to 460 fuzzed inputs per run, plus 96 fixed
inputs the fuzzing found (regressions).
"""

from __future__ import annotations

import gzip
import itertools
import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from spanbert.core.errors import SpanBertError

from .conftest import DATA, run_cli as _run
from .test_fuzz import assert_clean_exit, json_value, text

pytestmark = pytest.mark.timeout(300)  # a hang fails the test instead of stalling the suite


def _profile(n: int) -> settings:
    return settings(max_examples=n, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


# ------------------------------------------------------------------------ random Unicode text

PIECES = [
    "the", "Union", "State", "of", "Mr.", "U.S.", "unconstitutionally", " ", "  ", "\n", "\n\n", ".", ". ", "!", "?",
    ",", "\t", "😀", "👩\u200d👩\u200d👧", "🇫🇷", "e\u0301", "a\u0308\u0323", "中文", "字", "。", "日本語", "한국어", "שלום",
    "مرحبا", "\u200f", "\u202e", "\u200b", "\u200c", "\u200d", "\ufeff", "\x00", "\x07", "\x1b", "\x7f", "\u0085",
    "\u2028", "[MASK]", "[CLS]", "[SEP]", "[PAD]", "[UNK]", "##", "",
]
pieces_text = st.lists(st.sampled_from(PIECES), max_size=80).map("".join)
huge_token = st.tuples(pieces_text, st.sampled_from(["x", "中", "é", "😀", "a\u0301", "\u200b"]), pieces_text).map(
    lambda t: t[0] + t[1] * 5000 + t[2])
REAL = (DATA / "sotu_1790_washington.txt").read_text(encoding="utf-8")[:3000]
# Real English with random Unicode spliced in: text that tokenizes to many maskable tokens.
noisy_real = st.tuples(st.integers(0, len(REAL)), st.integers(0, 1500), st.lists(st.one_of(text, pieces_text), max_size=4)).map(
    lambda t: " ".join([REAL[t[0] : t[0] + t[1]], *t[2]]))
unicode_text = st.one_of(text, pieces_text, huge_token, noisy_real, st.just(""))


def _special_table(tokenizer) -> np.ndarray:
    table = np.zeros(max(len(tokenizer), *(i + 1 for i in tokenizer.all_special_ids)), dtype=bool)
    table[tokenizer.all_special_ids] = True
    return table


def _pad(rows: list[list[int]], width: int, value: int) -> np.ndarray:
    out = np.full((len(rows), width), value, dtype=np.int64)
    for b, row in enumerate(rows):
        out[b, : len(row)] = row
    return out


def _check_masked_batch(batch, features, tokenizer, config) -> None:
    """The invariants of the module docstring for one collated batch."""
    from spanbert.pretrain.masking import IGNORE_INDEX, mask_budget

    out, labels = batch["input_ids"].numpy(), batch["labels"].numpy()
    attention = batch["attention_mask"].numpy().astype(bool)
    n_rows, width = out.shape
    lengths = [len(f["input_ids"]) for f in features]
    assert n_rows == len(features) and width == max(lengths)
    ids = _pad([f["input_ids"] for f in features], width, tokenizer.pad_token_id)
    starts = _pad([f["word_starts"] for f in features], width, 0).astype(bool)
    np.testing.assert_array_equal(attention, np.arange(width)[None] < np.array(lengths)[:, None])
    special = _special_table(tokenizer)
    maskable = attention & ~special[ids]
    chosen = labels != IGNORE_INDEX

    assert not (chosen & ~maskable).any(), "a special token or padding was chosen"
    np.testing.assert_array_equal(labels[chosen], ids[chosen])
    changed = out != ids
    assert not (changed & ~chosen).any(), "an unchosen position changed"
    assert ((out[changed] == tokenizer.mask_token_id) | ~special[out[changed]]).all()

    budget = np.array([mask_budget(int(n), config.mask_ratio) for n in maskable.sum(1)])
    if config.scheme == "whole_word":
        assert (chosen.sum(1) <= budget).all()
    else:
        np.testing.assert_array_equal(chosen.sum(1), budget)

    prev_maskable = np.pad(maskable, ((0, 0), (1, 0)))[:, :-1]
    word_start = maskable & (starts | ~prev_maskable)
    prev_chosen = np.pad(chosen, ((0, 0), (1, 0)))[:, :-1]
    next_chosen = np.pad(chosen, ((0, 0), (0, 1)))[:, 1:]
    run_start, run_end = chosen & ~prev_chosen, chosen & ~next_chosen
    word_end = np.pad(word_start | ~maskable, ((0, 0), (0, 1)), constant_values=True)[:, 1:]  # next token starts a word
    if config.scheme != "token":
        assert word_start[run_start].all(), "a span does not begin at a word start"
        cut = (run_end & ~word_end).sum(1)
        assert (cut <= (1 if config.scheme == "span" else 0)).all(), "spans end inside words"

    pairs, sbo_labels = batch["sbo_pairs"].numpy(), batch["sbo_labels"].numpy()
    b, left, right, offset = pairs.T
    assert ((left >= 0) & (left < right) & (right < width)).all()
    assert maskable[b, left].all() and maskable[b, right].all()
    assert not chosen[b, left].any() and not chosen[b, right].any()
    inside = np.cumsum(chosen, axis=1)
    assert (inside[b, right - 1] - inside[b, left] == right - left - 1).all(), "an SBO gap holds unchosen tokens"
    target = left + 1 + offset
    assert (offset >= 0).all() and (offset < config.max_pair_targets).all() and (target < right).all()
    np.testing.assert_array_equal(sbo_labels, ids[b, target])
    # Completeness: each run with maskable neighbours has min(length, max_pair_targets) targets.
    expected = {}
    for row, s in zip(*run_start.nonzero()):
        e = s + int(np.argmax(run_end[row, s:]))
        if s > 0 and e + 1 < width and maskable[row, s - 1] and maskable[row, e + 1]:
            expected[(int(row), int(s) - 1)] = min(e - s + 1, config.max_pair_targets)
    got = {}
    for row, lft in zip(b.tolist(), left.tolist()):
        got[(row, lft)] = got.get((row, lft), 0) + 1
    assert got == {k: v for k, v in expected.items() if v}


@st.composite
def masking_configs(draw):
    from spanbert.pretrain.masking import MaskingConfig

    lo = draw(st.integers(1, 3))
    mask_prob = draw(st.floats(0, 1))
    return MaskingConfig(
        scheme=draw(st.sampled_from(["span", "whole_word", "token"])),
        mask_ratio=draw(st.one_of(st.floats(0.01, 1.0), st.sampled_from([0.15, 1.0, 1e-9]))),
        geometric_p=draw(st.floats(0.05, 1.0)),
        min_span_words=lo,
        max_span_words=draw(st.integers(lo, 12)),
        mask_prob=mask_prob,
        random_prob=draw(st.floats(0, 1 - mask_prob)),
        max_pair_targets=draw(st.integers(0, 16)),
    )


@_profile(100)
@given(docs=st.lists(unicode_text, min_size=1, max_size=4), max_length=st.integers(3, 64), min_tokens=st.integers(0, 8),
       config=masking_configs(), seed=st.integers(0, 2**31))
def test_masking_end_to_end_on_random_unicode(tiny_tokenizer, docs, max_length, min_tokens, config, seed):
    """Random text -> tokenizer -> pack_documents -> SpanMaskingCollator: never an exception,
    and every invariant of the module docstring holds."""
    import datasets

    from spanbert.pretrain.collator import SpanMaskingCollator
    from spanbert.pretrain.corpus import pack_documents

    packed = pack_documents(datasets.Dataset.from_dict({"text": docs}), tiny_tokenizer, max_length=max_length,
                            min_tokens=min_tokens)
    features = list(packed)
    if not any(d.strip() for d in docs):
        assert features == []
    event(f"segments: {'0' if not features else '1-9' if len(features) < 10 else '10+'}")
    if not features:
        return
    for f in features:
        assert 3 <= len(f["input_ids"]) <= max_length and len(f["word_starts"]) == len(f["input_ids"])
        assert f["word_starts"][0] == f["word_starts"][-1] == 0 and f["word_starts"][1] == 1
    batch = SpanMaskingCollator(tiny_tokenizer, config, seed=seed)(features)
    event("tokens chosen" if (batch["labels"] != -100).any() else "nothing maskable")
    _check_masked_batch(batch, features, tiny_tokenizer, config)
    again = SpanMaskingCollator(tiny_tokenizer, config, seed=seed)(features)
    for key in batch:
        assert batch[key].equal(again[key]), key


positions = st.one_of(st.integers(-3, 40), st.integers(-2**62, 2**62))


@_profile(150)
@given(text_=unicode_text, data=st.data(), config=masking_configs())
def test_word_starts_with_random_pre_segmenter(tiny_tokenizer, text_, data, config):
    """Random (overlapping, reversed, empty, out-of-range) segments: word_starts works or raises
    one of our errors; its output is well formed; no segments, or segments outside the text,
    change nothing; one segment over the whole text makes one word; and masking with the
    result still starts every span at one of its word starts."""
    from spanbert.pretrain.collator import SpanMaskingCollator
    from spanbert.pretrain.words import word_starts

    enc = tiny_tokenizer(text_, return_offsets_mapping=True, verbose=False)
    wid, off = enc.word_ids(), enc["offset_mapping"]
    n = len(text_)
    near = st.integers(-3, n + 3)
    segments = data.draw(st.lists(st.tuples(st.one_of(near, positions), st.one_of(near, positions)), max_size=30))
    default = word_starts(wid, off, text_)
    try:
        got = word_starts(wid, off, text_, pre_segmenter=lambda _: list(segments))
    except SpanBertError as e:
        assert str(e) and "\n" not in str(e)
        event("word_starts raised SpanBertError")
        return
    real = np.array([w is not None for w in wid], dtype=bool)
    assert got.dtype == bool and got.shape == (len(wid),)
    assert not got[~real].any()
    if real.any():
        assert got[real.argmax()]  # the first real token starts a word
    np.testing.assert_array_equal(word_starts(wid, off, text_, pre_segmenter=lambda _: []), default)
    np.testing.assert_array_equal(word_starts(wid, off, text_, pre_segmenter=lambda _: [(n, n + 5), (-9, -1)]), default)
    whole = word_starts(wid, off, text_, pre_segmenter=lambda _: [(0, n)])
    assert whole.sum() == int(real.any())

    feature = {"input_ids": enc["input_ids"], "word_starts": got.astype(np.int8).tolist(), "example_id": 0}
    batch = SpanMaskingCollator(tiny_tokenizer, config, seed=1)([feature])
    _check_masked_batch(batch, [feature], tiny_tokenizer, config)


@pytest.mark.parametrize("segments", [
    pytest.param([(1, 2, 3)], id="triples"),  # was ValueError 'cannot reshape array of size 3 into shape (2)'
    pytest.param(None, id="none"),  # was TypeError 'int() argument must be ... not NoneType'
    pytest.param([(0, 2**70)], id="beyond_int64"),  # was OverflowError 'Python int too large to convert to C long'
    pytest.param([(0, 2), (3,)], id="ragged"),
    pytest.param("0 2", id="a_string"),
    pytest.param(5, id="not_iterable"),
])
def test_malformed_pre_segmenter_output(tiny_tokenizer, segments):
    """A pre_segmenter that returns something other than (start, end) pairs of int64: one of our
    errors, one line, naming the pre_segmenter (it used to be a raw numpy error)."""
    from spanbert.pretrain.words import word_starts

    text_ = "the union of states"
    enc = tiny_tokenizer(text_, return_offsets_mapping=True)
    with pytest.raises(SpanBertError, match="pre_segmenter") as info:
        word_starts(enc.word_ids(), enc["offset_mapping"], text_, pre_segmenter=lambda _: segments)
    assert "\n" not in str(info.value)


# ------------------------------------------------------------------------ command lines

_case = itertools.count()


def _error_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, err
    return lines[0]


@pytest.fixture(scope="module", autouse=True)
def _cli_environment(offline_cli_environment):
    """The CLI as a user runs it (conftest.offline_cli_environment)."""
    yield


def _pretrain_args(corpus: str | Path, tokenizer: str | Path, output: Path, *extra: str) -> list[str]:
    return ["pretrain", "--corpus", str(corpus), "--tokenizer", str(tokenizer), "--preset", "tiny", "--max-length", "24",
            "--batch-size", "1", "--max-steps", "1", "--save-every", "0", "--no-progress", "--output", str(output), *extra]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory, tiny_tokenizer_dir) -> Path:
    """A real `spanbert pretrain` output folder (tiny preset, one step)."""
    out = tmp_path_factory.mktemp("pretrained") / "model"
    rc, _, err = _run(_pretrain_args(DATA / "tiny_corpus.txt", tiny_tokenizer_dir, out))
    assert rc == 0, err
    return out


@pytest.fixture(scope="module")
def task_dirs(model_dir, tmp_path_factory) -> dict[str, Path]:
    """The folder each command takes: the pre-training run for ``fill``, and a QA and a classifier
    folder on its encoder (random heads, saved as fine-tuning saves them) for ``predict``, which
    refuses folders that were not fine-tuned for its task."""
    from .serve_models import build_classify, build_qa

    root = tmp_path_factory.mktemp("tasks")
    return {"fill": model_dir, "qa": build_qa(model_dir, root / "qa"), "classify": build_classify(model_dir, root / "classify")}


def _copy_model(model_dir: Path, dest: Path) -> Path:
    shutil.copytree(model_dir, dest, ignore=shutil.ignore_patterns("checkpoints", "tensorboard", "*.png"))
    return dest


# -- pretrain: random corpus files

json_line = st.one_of(
    st.fixed_dictionaries({"text": unicode_text}).map(json.dumps),
    st.fixed_dictionaries({"body": text}).map(json.dumps),
    st.dictionaries(text, json_value, max_size=3).map(json.dumps),
    json_value.map(json.dumps),
    st.sampled_from(["{not json", "[", "", "   ", '{"text": null}', '{"text": 5}', '["text"]', '{"text": "a"}{"text": "b"}']),
)
corpus_content = st.one_of(
    st.binary(max_size=400),
    unicode_text,
    st.tuples(unicode_text, st.binary(min_size=1, max_size=4), unicode_text).map(  # invalid UTF-8 spliced in
        lambda t: t[0].encode("utf-8", "surrogatepass") + b"\xff" + t[1] + t[2].encode("utf-8", "surrogatepass")),
    st.lists(json_line, max_size=8).map("\n".join),
    st.tuples(st.integers(0, 30), json_line).map(  # real JSON Lines with one random line
        lambda t: "\n".join([json.dumps({"text": p}) for p in REAL.split("\n\n")][: t[0]] + [t[1]])),
    st.lists(noisy_real, min_size=1, max_size=4).map("\n\n".join),
    st.sampled_from(["", "\n \n\t\n", REAL]),
)


@st.composite
def corpus_layouts(draw, root: Path) -> Path:
    """A corpus path under ``root``: a file with random content and suffix (gzipped or a broken
    .gz), a folder holding it, an empty folder, or a folder of hidden files only."""
    content = draw(corpus_content)
    data = content if isinstance(content, bytes) else content.encode("utf-8", "surrogatepass")
    suffix = draw(st.sampled_from([".txt", ".jsonl", ".json", ".ndjson", ".txt.gz", ".jsonl.gz", ""]))
    if suffix.endswith(".gz") and draw(st.booleans()):
        data = gzip.compress(data)
    layout = draw(st.sampled_from(["file", "folder", "empty_folder", "hidden_only"]))
    root.mkdir(parents=True)
    if layout == "empty_folder":
        return root
    name = ("." if layout == "hidden_only" else "") + "corpus" + suffix
    path = root / "sub" / name if layout != "file" else root / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path if layout == "file" else root


@_profile(25)
@given(data=st.data(), text_field=st.one_of(st.just("text"), text), doc_per=st.sampled_from(["blank_line", "file"]))
def test_pretrain_on_random_corpus_files(tmp_path, tiny_tokenizer_dir, data, text_field, doc_per):
    """Random bytes, invalid UTF-8, broken JSON Lines, --text-field mismatches, empty files and
    folders: exit 0 (a model is written) or 2 with one error line."""
    case = tmp_path / f"case{next(_case)}"
    corpus = data.draw(corpus_layouts(case / "corpus"))
    out = case / "out"
    rc, _, err = _run(_pretrain_args(corpus, tiny_tokenizer_dir, out, f"--text-field={text_field}", f"--doc-per={doc_per}"))
    assert_clean_exit(rc, err)
    event(f"exit {rc}")
    if rc == 0:
        assert (out / "config.json").is_file() and (out / "model.safetensors").is_file()


# -- pretrain: bad option values


@st.composite
def bad_options(draw, root: Path) -> tuple[list[str], str | None]:
    """One plainly invalid option value, and a string its error line must contain."""
    from spanbert.pretrain.modeling import PRESETS

    kind = draw(st.sampled_from(["batch", "accum", "steps", "lr", "ratio", "length", "preset", "doc_per", "tokenizer",
                                 "huge_batch"]))
    if kind in ("batch", "accum", "steps"):
        flag = {"batch": "batch-size", "accum": "grad-accum", "steps": "max-steps"}[kind]
        return [f"--{flag}={draw(st.integers(-10**12, 0))}"], flag.replace("-", "_")
    if kind == "lr":
        return [f"--lr={draw(st.floats(max_value=0.0, allow_nan=False))!r}"], "lr"
    if kind == "ratio":
        value = draw(st.one_of(st.floats(max_value=0.0), st.floats(min_value=1.0, exclude_min=True),
                               st.sampled_from([math.nan, math.inf, -math.inf])))
        return [f"--mask-ratio={value!r}"], "mask_ratio"
    if kind == "length":
        return [f"--max-length={draw(st.integers(-10**12, 2))}"], "max_length"
    if kind == "preset":
        return [f"--preset={draw(text.filter(lambda s: s not in PRESETS))}"], "--preset"
    if kind == "doc_per":
        return [f"--doc-per={draw(text.filter(lambda s: s not in ('file', 'blank_line', 'line')))}"], "doc_per"
    if kind == "huge_batch":
        return [f"--batch-size={draw(st.integers(10**4, 10**12))}"], "--batch-size"
    path = root / "tokenizer"
    how = draw(st.sampled_from(["missing", "file", "empty", "garbage", "wrong_json"]))
    if how == "file":
        path.write_bytes(draw(st.binary(max_size=100)))
    elif how != "missing":
        path.mkdir()
        if how != "empty":
            shutil.copytree(DATA / "tiny_wordpiece", path, dirs_exist_ok=True)
            junk = draw(st.binary(max_size=200)) if how == "garbage" else json.dumps(draw(json_value)).encode()
            (path / "tokenizer.json").write_bytes(junk)
            (path / "vocab.txt").unlink()
    return [f"--tokenizer={path}"], str(path)


@_profile(40)
@given(data=st.data())
def test_pretrain_rejects_bad_option_values(tmp_path, tiny_tokenizer_dir, data):
    """Non-positive batch size, accumulation, steps or learning rate; a mask ratio outside (0, 1];
    a max length with no room for a token; an unknown preset or doc-per; a missing, empty or
    corrupt tokenizer; a batch larger than the corpus: exit 2, one error line naming it."""
    case = tmp_path / f"case{next(_case)}"
    case.mkdir()
    extra, needle = data.draw(bad_options(case))
    event(extra[0].split("=")[0])
    rc, _, err = _run(_pretrain_args(DATA / "tiny_corpus.txt", tiny_tokenizer_dir, case / "out", *extra))
    assert_clean_exit(rc, err)
    assert rc == 2, (extra, err)
    line = _error_line(err)  # our check names the field, click's range check the option
    assert needle in line or "--" + needle.replace("_", "-") in line, (extra, err)


@_profile(25)
@given(option=st.sampled_from(["--batch-size", "--max-length", "--max-steps", "--mask-ratio", "--lr", "--masking",
                               "--mixed-precision", "--epochs", "--seed"]),
       value=st.one_of(text, st.sampled_from(["", "1.5", "abc", "0x10", "1e400", "--", "span "])),
       unknown=st.booleans())
def test_pretrain_usage_errors_are_one_line_not_a_traceback(tmp_path, tiny_tokenizer_dir, option, value, unknown):
    """Values of the wrong type or outside an enum, and unknown options, are click usage errors:
    exit 2, one error line naming the option and pointing to --help, no traceback."""
    if not unknown and _parses(option, value):
        event("value parses: not a usage error, skipped")
        return  # not a usage error: the tests above cover values of the right type
    extra = ["--no-such-option"] if unknown else [f"{option}={value}"]
    rc, _, err = _run(_pretrain_args(DATA / "tiny_corpus.txt", tiny_tokenizer_dir, tmp_path / "never", *extra))
    assert rc == 2, err
    line = _error_line(err)
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert ("--no-such-option" if unknown else option) in line and "spanbert pretrain --help" in line, err


def _parses(option: str, value: str) -> bool:
    """Whether click accepts ``value`` for ``option`` (right type, or one of the enum's choices)."""
    if option == "--masking":
        return value in ("span", "whole_word", "token")
    if option == "--mixed-precision":
        return value in ("no", "bf16", "fp16", "auto")
    try:
        (float if option in ("--mask-ratio", "--lr", "--epochs") else int)(value)
    except ValueError:
        return False
    return True


# -- fill


class FillMadeNoProgress(Exception):
    """Raised by the guard below instead of letting ``spanbert fill`` loop forever."""


@pytest.fixture
def fill_progress_guard(monkeypatch):
    """Stop the iterative fill when a step leaves as many [MASK] tokens as before.

    ``SpanFiller._fill_iteratively`` calls ``mask_runs`` once a step and ends when no mask is
    left; a step that wrote [MASK] back (the joint head's best token could be [MASK] itself)
    made no progress and the loop never ended (see ``test_fill_never_predicts_mask_and_ends``).
    Two calls with the same count within one iterative fill mean no progress: the guard's
    exception then fails the command (exit 1). Counts are kept per iterative fill, so texts of
    other examples (the fixture lives for all of a test's examples) never mix in.
    """
    from spanbert.pretrain import fill

    real_runs, real_fill = fill.mask_runs, fill.SpanFiller._fill_iteratively
    counts: list[int] | None = None  # within the current iterative fill

    def guarded_runs(mask):
        if counts is not None:
            counts.append(int(mask.sum()))
            if len(counts) >= 2 and counts[-1] == counts[-2] > 0:
                raise FillMadeNoProgress(f"{counts[-1]} [MASK] tokens left after a fill step")
        return real_runs(mask)

    def guarded_fill(self, *args, **kwargs):
        nonlocal counts
        counts = []
        try:
            return real_fill(self, *args, **kwargs)
        finally:
            counts = None

    monkeypatch.setattr(fill, "mask_runs", guarded_runs)
    monkeypatch.setattr(fill.SpanFiller, "_fill_iteratively", guarded_fill)


@st.composite
def fill_texts(draw) -> str:
    """Random text with random runs of [MASK]: one run in nine texts out of ten, often near the
    start (a run past the 512-token limit is cut off by truncation)."""
    mask_run = st.integers(1, 18).map(lambda n: " ".join(["[MASK]"] * n))
    parts = draw(st.lists(st.one_of(unicode_text, mask_run), max_size=4))
    if draw(st.integers(0, 9)):
        parts.insert(draw(st.sampled_from([0, min(1, len(parts)), len(parts)])), draw(mask_run))
    return draw(st.sampled_from([" ", "", "\n"])).join(parts)


@_profile(30)
@given(texts=st.lists(fill_texts(), min_size=1, max_size=3), top_k=st.integers(1, 20), as_json=st.booleans())
def test_fill_on_random_texts(model_dir, fill_progress_guard, texts, top_k, as_json):
    """Random text with random runs of [MASK] (none, or longer than the SBO head's 15 positions,
    or cut off by truncation): exit 0 with one result per text, or 2 with one error line."""
    rc, out, err = _run(["fill", "--model", str(model_dir), "--top-k", str(top_k), *(["--json"] if as_json else []), "--",
                         *texts])
    assert "FillMadeNoProgress" not in err  # the hang that test_fill_never_predicts_mask_and_ends pins down
    assert_clean_exit(rc, err)
    event(f"exit {rc}")
    if rc == 2:
        line = _error_line(err)
        assert line.startswith("error: text "), err  # no [MASK] in text N, or a run too long
        event("no [MASK] token" if "no [MASK]" in line else "a run longer than 15")
    elif as_json:
        results = json.loads(out)
        assert [r["text"] for r in results] == texts
        for r in results:
            assert r["spans"] and set(r["filled_text"]) == {"mlm", "sbo", "joint", "iterative"}
            for span in r["spans"]:
                assert span["end"] - span["start"] + 1 <= 15
                for head, p in span["predictions"].items():
                    assert len(p["token_ids"]) == span["end"] - span["start"] + 1
                    assert all(0.0 <= x <= 1.0 for x in p["probabilities"])
                    assert head == "iterative" or all(len(k) == top_k for k in p["top_k"])


# -- predict qa / classify


@_profile(25)
@given(questions=st.lists(unicode_text, min_size=1, max_size=3), context=st.one_of(unicode_text, st.binary(max_size=300)),
       as_file=st.booleans(), top_k=st.integers(0, 30), precision=st.sampled_from(["no", "auto", "bf16"]))
def test_predict_qa_on_random_inputs(tmp_path, task_dirs, questions, context, as_file, top_k, precision):
    """Random questions and contexts (inline, or a file of random bytes): exit 0 with answers
    that are slices of the context, or 2 with one error line."""
    as_file = as_file or isinstance(context, bytes)
    where = f"--context-file={_file(tmp_path, context)}" if as_file else f"--context={context}"
    args = ["predict", "qa", "--model", str(task_dirs["qa"]), *[f"--question={q}" for q in questions], where,
            f"--top-k={top_k}", f"--precision={precision}", "--json"]
    rc, out, err = _run(args)
    assert_clean_exit(rc, err)
    event(f"exit {rc}")
    if rc == 0:
        ctx = context if isinstance(context, str) else context.decode("utf-8")
        if as_file:  # the file is read in text mode: offsets index the text with \r\n and \r made \n
            ctx = ctx.replace("\r\n", "\n").replace("\r", "\n")
        rows = json.loads(out)
        assert [r["question"] for r in rows] == questions
        for r in rows:
            assert r["text"] == (ctx[r["start"] : r["end"]] if r["start"] >= 0 else "")
            assert len(r["alternatives"]) <= top_k


def _file(tmp_path: Path, content: str | bytes) -> Path:
    path = tmp_path / f"input{next(_case)}.txt"
    path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8", "surrogatepass"))
    return path


@_profile(25)
@given(texts=st.lists(unicode_text, max_size=3), file_content=st.one_of(st.none(), unicode_text, st.binary(max_size=300)))
def test_predict_classify_on_random_inputs(tmp_path, task_dirs, texts, file_content):
    """Random --text values and --input files: exit 0 with one JSON line per text (non-blank
    file lines included) whose probabilities sum to 1, or 2 with one error line."""
    args = ["predict", "classify", "--model", str(task_dirs["classify"]), "--json", *[f"--text={t}" for t in texts]]
    if file_content is not None:
        args.append(f"--input={_file(tmp_path, file_content)}")
    rc, out, err = _run(args)
    assert_clean_exit(rc, err)
    event(f"exit {rc}")
    if rc == 0:
        content = file_content.decode("utf-8") if isinstance(file_content, bytes) else file_content
        # "One text per line" splits at every Unicode line boundary (str.splitlines: also \x85, \u2028, ...).
        lines = [x for x in (content or "").splitlines() if x.strip()]
        rows = [json.loads(line) for line in out.split("\n") if line]  # JSON strings may hold \x85 / \u2028 raw
        assert [r["text"] for r in rows] == texts + lines
        for r in rows:
            assert sum(r["probabilities"].values()) == pytest.approx(1.0, abs=1e-4)
            assert r["label"] == max(r["probabilities"], key=r["probabilities"].get)


# -- damaged model folders

COMMANDS = {
    "fill": lambda m: ["fill", "--model", str(m), "The [MASK] of the Union."],
    "qa": lambda m: ["predict", "qa", "--model", str(m), "--question", "Who spoke?", "--context", "Washington spoke."],
    "classify": lambda m: ["predict", "classify", "--model", str(m), "--text", "A fine speech."],
}
DAMAGES = ("missing", "empty_folder", "a_file", "no_config", "bad_training_args", "config_not_json", "no_weights",
           "unknown_model_type", "tokenizer_json_damaged", "tokenizer_config_damaged")
HANDLED = [(c, d) for c in COMMANDS for d in DAMAGES]  # every command on every kind of damage


def _damage(model_dir: Path, dest: Path, damage: str, junk: bytes) -> Path:
    if damage == "missing":
        return dest / "nope"
    if damage == "empty_folder":
        dest.mkdir()
        return dest
    if damage == "a_file":
        dest.write_bytes(junk)
        return dest
    path = _copy_model(model_dir, dest)
    if damage == "no_config":
        (path / "config.json").unlink()
    elif damage == "no_weights":
        (path / "model.safetensors").unlink()
    elif damage == "bad_training_args":
        (path / "training_args.json").write_bytes(junk)
    elif damage == "config_not_json":
        (path / "config.json").write_bytes(b"{" + junk.replace(b"}", b""))
    elif damage == "unknown_model_type":
        config = json.loads((path / "config.json").read_text())
        config["model_type"] = "no-such-" + junk.hex()
        (path / "config.json").write_text(json.dumps(config))
    elif damage in ("tokenizer_json_damaged", "tokenizer_config_damaged"):
        name = "tokenizer.json" if damage == "tokenizer_json_damaged" else "tokenizer_config.json"
        (path / name).write_bytes(junk or b"{")
    return path


@_profile(40)
@given(case=st.sampled_from(HANDLED), junk=st.one_of(st.binary(max_size=200), json_value.map(lambda v: json.dumps(v).encode())))
def test_damaged_model_folders(tmp_path, task_dirs, case, junk):
    """A --model folder that is missing, empty, a file, without config.json or weights, with
    random bytes in a config or tokenizer file: exit 2 with one error line naming the folder
    (or 0 when only training_args.json is damaged: inference does not read it)."""
    command, damage = case
    path = _damage(task_dirs[command], tmp_path / f"model{next(_case)}", damage, junk)
    rc, _, err = _run(COMMANDS[command](path))
    assert_clean_exit(rc, err)
    if damage == "tokenizer_config_damaged" and _is_json_object(junk or b"{") and rc == 0:
        event("a JSON object as tokenizer_config.json: a valid tokenizer")  # e.g. {}: the defaults
        return
    assert rc == (0 if damage == "bad_training_args" else 2), err
    if rc == 2:
        assert str(path) in _error_line(err)


def _is_json_object(data: bytes) -> bool:
    try:
        return isinstance(json.loads(data), dict)
    except ValueError:
        return False


# ------------------------------------------------------------------------ regressions
# Minimal inputs found by the fuzzing above. Each used to end in exit 1 (an exception that reached
# the CLI's catch-all: "error: <Type>: ... (SPANBERT_DEBUG=1 shows the traceback)"), in exit 0
# with a silently broken result, or in a hang (the "was" column); each now gives exit 2 and one
# error line that names the option, field or file at fault (the "names" column).


def _config_edit(**fields):
    def edit(path: Path) -> None:
        config = json.loads((path / "config.json").read_text())
        (path / "config.json").write_text(json.dumps({**config, **fields}))
    return edit


def _write_file(name: str, content: bytes | None):
    def edit(path: Path) -> None:
        if content is None:
            (path / name).unlink()
        else:
            (path / name).write_bytes(content)
    return edit


def _truncate(name: str):
    def edit(path: Path) -> None:
        data = (path / name).read_bytes()
        (path / name).write_bytes(data[: len(data) // 2])
    return edit


PRETRAIN_CASES = [  # (id, extra options, what the error line names, what it was)
    ("init_from_missing", ["--init-from={tmp}/no-such-model"], "--init-from", "exit 1: OSError 'Repo id must be in the form ...'"),
    ("init_from_empty_folder", ["--init-from={tmp}"], "--init-from", "exit 1: ValueError 'Unrecognized model in ...'"),
    ("dropout_above_1", ["--dropout=2"], "--dropout", "exit 1: ValueError 'dropout probability has to be between 0 and 1'"),
    ("dropout_nan", ["--dropout=nan"], "--dropout", "exit 1: ValueError 'cannot convert float NaN to integer'"),
    ("seed_negative", ["--seed=-1"], "--seed", "exit 1: ValueError 'seed must be >= 0, got -1' (not a SpanBertError)"),
    ("num_workers_negative", ["--num-workers=-1"], "--num-workers", "exit 1: ValueError 'num_workers option should be non-negative'"),
    ("lr_nan", ["--lr=nan"], "--lr", "exit 1: ValueError 'Invalid learning rate: nan'"),
    ("lr_inf", ["--lr=inf"], "--lr", "exit 0: trains with lr nan"),
    ("output_is_a_file", ["--output={tmp}/a_file"], "--output", "exit 1: FileExistsError"),
    ("output_under_a_file", ["--output={tmp}/a_file/run"], "--output", "exit 1: NotADirectoryError"),
    ("corpus_unknown_user_home", ["--corpus=~no_such_user_zz/x.txt"], "--corpus",
     "exit 1: RuntimeError 'Could not determine home directory.'"),
    ("tokenizer_unknown_user_home", ["--tokenizer=~no_such_user_zz/tok"], "~no_such_user_zz",
     "exit 1: RuntimeError 'Could not determine home directory.'"),
    ("sbo_weight_nan", ["--sbo-weight=nan"], "--sbo-weight", "exit 0: loss nan, model saved"),
    ("sbo_weight_negative", ["--sbo-weight=-1"], "--sbo-weight", "exit 0: maximises the SBO loss"),
    ("epochs_zero", ["--epochs=0"], "--epochs", "not checked"),
    ("epochs_nan", ["--epochs=nan"], "--epochs", "not checked"),
    ("warmup_negative", ["--warmup-steps=-1"], "--warmup-steps", "not checked"),
    ("save_every_negative", ["--save-every=-1"], "--save-every", "not checked"),
    ("time_budget_zero", ["--time-budget=0"], "--time-budget", "not checked"),
    ("weight_decay_nan", ["--weight-decay=nan"], "--weight-decay", "not checked"),
    ("weight_decay_negative", ["--weight-decay=-0.1"], "--weight-decay", "not checked"),
    ("max_length_3", ["--max-length=3"], "max-length", "exit 2, but 'the packed corpus has no tokens to count'"),
    ("max_length_7", ["--max-length=7"], "max-length", "exit 2, but 'the packed corpus has no tokens to count'"),
    ("only_short_documents", ["--corpus={tmp}/short.txt"], "--max-length", "exit 2, but 'the packed corpus has no tokens to count'"),
]


@pytest.mark.parametrize("extra, names", [pytest.param(e, n, id=i) for i, e, n, _ in PRETRAIN_CASES])
def test_pretrain_refuses_found_inputs(tmp_path, tiny_tokenizer_dir, extra, names):
    (tmp_path / "a_file").write_text("x")
    (tmp_path / "short.txt").write_text("Hi.\n\nYes.\n")  # no document reaches a segment of 8 tokens
    extra = [e.replace("{tmp}", str(tmp_path)) for e in extra]
    corpus = next((e.split("=", 1)[1] for e in extra if e.startswith("--corpus=")), DATA / "tiny_corpus.txt")
    extra = [e for e in extra if not e.startswith("--corpus=")]
    rc, _, err = _run(_pretrain_args(corpus, tiny_tokenizer_dir, tmp_path / "out", *extra))
    assert_clean_exit(rc, err)
    assert rc == 2, err
    assert names in _error_line(err), err


ALL = tuple(COMMANDS)
MODEL_CASES = [  # (id, damage, what the error line names besides the folder, what it was)
    ("config_empty", _write_file("config.json", b""), "not valid JSON",
     "fill: exit 1: OSError 'It looks like the config file ... is not a valid JSON file' (predict: exit 2)"),
    ("config_empty_object", _write_file("config.json", b"{}"), "model_type",
     "fill: exit 1: RuntimeError 'You set `ignore_mismatched_sizes` to `False`' (predict: exit 2)"),
    ("config_json_null", _write_file("config.json", b"null"), "JSON object", "exit 1: TypeError/AttributeError on a JSON null config"),
    ("config_json_list", _write_file("config.json", b"[1, 2]"), "JSON object", "exit 1 (as null)"),
    ("config_json_string", _write_file("config.json", b'"bert"'), "JSON object", "exit 1 (as null)"),
    ("no_weights", _write_file("model.safetensors", None), "model.safetensors",
     "fill: exit 1: OSError 'Error no file named model.safetensors' (predict: exit 2)"),
    ("weights_garbage", _write_file("model.safetensors", b"garbage"), "safetensors",
     "exit 1: SafetensorError 'Error while deserializing header: header too small'"),
    ("weights_truncated", _truncate("model.safetensors"), "safetensors", "exit 1: SafetensorError"),
    ("heads_not_dividing_hidden", _config_edit(num_attention_heads=3), "num_attention_heads",
     "fill: exit 1: ValueError 'The hidden size (128) is not a multiple of ...' (predict: exit 2)"),
    ("hidden_size_zero", _config_edit(hidden_size=0), "hidden_size", "exit 1"),
    ("more_layers_than_weights", _config_edit(num_hidden_layers=5), "missing",
     "fill: exit 0: layers 3-5 are silently random (encoder weights missing from the file)"),
    ("fewer_layers_than_weights", _config_edit(num_hidden_layers=1), "encoder tensors",
     "exit 0: the second layer's weights are silently dropped"),
    ("config_weights_disagree", _config_edit(hidden_size=64), "does not match",
     "exit 1: RuntimeError 'You set `ignore_mismatched_sizes` to `False`'"),
    ("vocab_size_disagrees", _config_edit(vocab_size=700), "does not match", "exit 1: RuntimeError (as above)"),
    ("unknown_activation", _config_edit(hidden_act="foo"), "hidden_act", "exit 1: KeyError 'foo'"),
    ("pad_id_out_of_vocab", _config_edit(pad_token_id=9999), "pad_token_id",
     "exit 1: AssertionError 'Padding_idx must be within num_embeddings'"),
    ("tokenizer_json_broken", _write_file("tokenizer.json", b"{"), "tokenizer",
     "predict: exit 1: JSONDecodeError from the tokenizer (fill: exit 2)"),
    ("tokenizer_config_broken", _write_file("tokenizer_config.json", b"{"), "tokenizer",
     "predict: exit 1: JSONDecodeError from the tokenizer (fill: exit 2)"),
    ("tokenizer_json_missing", _write_file("tokenizer.json", None), "special tokens",
     "exit 0: without tokenizer.json a 5-token vocabulary (the specials) loads and every word is [UNK]"),
]


@pytest.mark.parametrize("command, edit, names", [
    pytest.param(c, e, n, id=f"{c}-{i}") for i, e, n, _ in MODEL_CASES for c in ALL])
def test_damaged_model_folder_found_inputs(tmp_path, task_dirs, command, edit, names):
    path = _copy_model(task_dirs[command], tmp_path / "model")
    edit(path)
    rc, _, err = _run(COMMANDS[command](path))
    assert_clean_exit(rc, err)
    assert rc == 2, err
    line = _error_line(err)
    assert str(path) in line and names in line, err


OPTION_CASES = [  # (id, arguments after `--model M`, what the error line names, what it was)
    ("fill-top_k_negative", ["fill", "--top-k", "-1", "a [MASK] b"], "--top-k",
     "exit 1: RuntimeError 'selected index k out of range'"),
    ("fill-top_k_above_vocab", ["fill", "--top-k", "100000", "a [MASK] b"], "--top-k",
     "exit 1: RuntimeError 'selected index k out of range' (--top-k above the vocabulary size)"),
    ("qa-top_k_negative", ["predict", "qa", "--question", "Who?", "--context", "Washington spoke.", "--top-k", "-1", "--json"],
     "--top-k", "exit 0: a negative --top-k is accepted and shows all but the last alternatives (nbest[:-1])"),
    ("qa-unknown_precision", ["predict", "qa", "--question", "Who?", "--context", "Washington.", "--precision", "fp8"],
     "--precision", "exit 0: an unknown --precision silently means fp16 autocast"),
    ("classify-unknown_precision", ["predict", "classify", "--text", "hello", "--precision", "fp8"], "--precision",
     "exit 0: an unknown --precision silently means fp16 autocast"),
]


@pytest.mark.parametrize("args, names", [pytest.param(a, n, id=i) for i, a, n, _ in OPTION_CASES])
def test_option_found_inputs(task_dirs, args, names):
    at = 2 if args[0] == "predict" else 1
    rc, _, err = _run([*args[:at], "--model", str(task_dirs[args[at - 1]]), *args[at:]])
    assert_clean_exit(rc, err)
    assert rc == 2, err
    assert names in _error_line(err), err


@pytest.mark.parametrize("command", ALL)
def test_model_path_of_an_unknown_users_home(command):
    """``~user`` of a user that does not exist: was exit 1 (RuntimeError from expanduser)."""
    rc, _, err = _run(COMMANDS[command]("~no_such_user_zz/model"))
    assert_clean_exit(rc, err)
    assert rc == 2 and "~no_such_user_zz/model" in _error_line(err), err


def test_fill_never_predicts_mask_and_ends(tmp_path, model_dir, fill_progress_guard):
    """A model whose heads rank [MASK] first (an undertrained one can: the fuzzing above found
    it with the one-step fixture model on "Mr." + "x" * 200 + "Mr. Mr." + "á" * 200 + " [SEP] 😀 "
    + 12 x "[MASK]"); here made certain by raising the [MASK] bias of both heads. It used to
    hang: the iterative fill wrote [MASK] back forever. Now no head predicts a special token,
    and the iterative fill takes one step per mask."""
    from safetensors import safe_open
    from safetensors.torch import load_file, save_file

    from spanbert.core.checkpoints import load_tokenizer

    from spanbert.pretrain.modeling import SBO_HEAD_FILE

    path = _copy_model(model_dir, tmp_path / "model")
    tokenizer = load_tokenizer(path)
    # the MLM head is in model.safetensors, the SBO head beside it (the run folder's layout)
    for file_name, bias in (("model.safetensors", "cls.predictions.bias"), (SBO_HEAD_FILE, "sbo.bias")):
        weights_file = str(path / file_name)
        with safe_open(weights_file, "pt") as f:
            metadata = f.metadata()
        weights = load_file(weights_file)
        weights[bias][tokenizer.mask_token_id] += 50.0
        save_file(weights, weights_file, metadata=metadata)
    rc, out, err = _run(["fill", "--model", str(path), "--json", "The [MASK] [MASK] of the Union."])
    assert "FillMadeNoProgress" not in err
    assert_clean_exit(rc, err)
    assert rc == 0, err
    special = set(tokenizer.all_special_ids)
    (result,) = json.loads(out)
    for span in result["spans"]:
        for head, prediction in span["predictions"].items():
            assert not special & set(prediction["token_ids"]), head
            for alternatives in prediction["top_k"]:
                assert not set(tokenizer.all_special_tokens) & {token for token, _ in alternatives}, head
