"""Chinese pre-training: jieba words as the units of span masking over a character vocabulary.

Real text: the CMRC 2018 trial sample kept in tests/data/chinese (CC BY-SA 4.0).
"""

from __future__ import annotations

import json
from pathlib import Path

import datasets
import numpy as np
import pytest

pytest.importorskip("jieba", reason="jieba is not installed (pip install 'spanbert[chinese]')")

from spanbert.cli import main  # noqa: E402
from spanbert.pretrain.collator import SpanMaskingCollator  # noqa: E402
from spanbert.pretrain.corpus import pack_documents  # noqa: E402
from spanbert.pretrain.masking import MaskingConfig  # noqa: E402
from spanbert.pretrain.segmenters import get_segmenter, jieba_segments  # noqa: E402
from spanbert.pretrain.tokenizer import train_wordpiece  # noqa: E402
from spanbert.pretrain.words import word_starts  # noqa: E402

SAMPLE = Path(__file__).parent / "data" / "chinese" / "cmrc2018_trial_sample.json"


@pytest.fixture(scope="module")
def contexts() -> list[str]:
    data = json.loads(SAMPLE.read_text(encoding="utf-8"))
    return [p["context"] for a in data["data"] for p in a["paragraphs"]]


@pytest.fixture(scope="module")
def zh_tokenizer(contexts):
    return train_wordpiece(contexts, vocab_size=2000, lowercase=True, min_frequency=1)


def test_jieba_segments_tile_the_text(contexts):
    for text in contexts:
        spans = jieba_segments(text)
        assert spans[0][0] == 0 and spans[-1][1] == len(text)
        assert all(a[1] == b[0] for a, b in zip(spans, spans[1:])), "spans must be contiguous"
        assert all(e > s for s, e in spans)
    # jieba really groups characters: most of this Wikipedia text is in multi-character words.
    words = [e - s for text in contexts for s, e in jieba_segments(text)]
    assert sum(w > 1 for w in words) > 0.3 * len(words)


def test_trained_tokenizer_is_character_level_for_chinese(zh_tokenizer, contexts):
    text = contexts[0][:60]
    enc = zh_tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    for (s, e), tok in zip(enc["offset_mapping"], zh_tokenizer.convert_ids_to_tokens(enc["input_ids"])):
        if "\u4e00" <= text[s] <= "\u9fff":
            assert e - s == 1 and tok == text[s], (tok, text[s:e])  # one ideograph, one token, in the vocab


def _word_of_token(text: str, offsets) -> np.ndarray:
    """Index of the jieba word holding each token's first character (computed independently)."""
    ends = np.cumsum([e - s for s, e in jieba_segments(text)])
    return np.searchsorted(ends, np.asarray(offsets)[:, 0], side="right")


def test_word_starts_follow_jieba_words(zh_tokenizer, contexts):
    text = contexts[1]
    enc = zh_tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    starts = word_starts(enc.word_ids(), enc["offset_mapping"], text, pre_segmenter=jieba_segments)
    plain = word_starts(enc.word_ids(), enc["offset_mapping"], text)
    word = _word_of_token(text, enc["offset_mapping"])
    expected = np.concatenate(([True], word[1:] != word[:-1]))
    np.testing.assert_array_equal(starts, expected)
    assert plain.sum() > starts.sum()  # without the segmenter every ideograph is a word


def test_span_masking_masks_whole_jieba_words(zh_tokenizer, contexts):
    ds = datasets.Dataset.from_dict({"text": contexts})
    packed = pack_documents(ds, zh_tokenizer, max_length=128, pre_segmenter=jieba_segments)
    collator = SpanMaskingCollator(zh_tokenizer, MaskingConfig(scheme="span"), seed=3)
    rows = [packed[i] for i in range(len(packed))]
    batch = collator(rows)
    masked_words = split_words = 0
    # As in the authors' code the span that meets the budget stops at the token that meets it,
    # so one word per sequence may be cut; every other masked word is masked whole.
    for row, labels in zip(rows, batch["labels"].numpy()):
        split_here = 0
        ws = np.asarray(row["word_starts"], dtype=bool)
        word = np.cumsum(ws)  # word index of each token (specials share their neighbour's)
        chosen = labels[: len(ws)] != -100
        for w in np.unique(word[chosen]):
            members = (word == w) & (np.asarray(row["input_ids"]) > 4)  # the word's real tokens
            masked_words += 1
            split_here += not chosen[members].all()
        assert split_here <= 1, f"{split_here} partly masked words in one sequence"
        split_words += split_here
    assert masked_words > 20
    assert split_words < 0.1 * masked_words


def test_num_proc_packs_the_same_rows(zh_tokenizer, contexts):
    ds = datasets.Dataset.from_dict({"text": contexts * 4})
    one = pack_documents(ds, zh_tokenizer, max_length=64, pre_segmenter=jieba_segments)
    two = pack_documents(ds, zh_tokenizer, max_length=64, pre_segmenter=jieba_segments, num_proc=2)
    assert len(one) == len(two) > 0
    assert one.to_dict() == two.to_dict()


def test_pretrain_cli_with_jieba(tmp_path, contexts, capsys):
    corpus = tmp_path / "zh.jsonl"
    corpus.write_text("".join(json.dumps({"text": c}, ensure_ascii=False) + "\n" for c in contexts), encoding="utf-8")
    out = tmp_path / "run"
    code = main([
        "pretrain", "--corpus", str(corpus), "--output", str(out), "--preset", "tiny", "--vocab-size", "1500",
        "--word-segmenter", "jieba", "--max-length", "128", "--batch-size", "4", "--max-steps", "2",
        "--save-every", "0", "--no-progress", "--num-proc", "1",
    ])
    assert code == 0, capsys.readouterr().err
    assert (out / "model.safetensors").is_file()
    vocab = (out / "tokenizer" / "vocab.txt").read_text(encoding="utf-8").split("\n")
    assert "游" in vocab and "戏" in vocab


@pytest.mark.parametrize(
    "args, message",
    [
        (["--word-segmenter", "stanza"], "--word-segmenter: unknown segmenter 'stanza'"),
        (["--num-proc", "0"], "--num-proc 0: need at least 1 process"),
        (["--num-proc", "2", "--streaming", "--max-steps", "1"], "--num-proc: a streamed corpus"),
    ],
)
def test_pretrain_cli_rejects_bad_segmentation_options(tmp_path, args, message, capsys):
    corpus = tmp_path / "zh.txt"
    corpus.write_text("你好，世界。\n", encoding="utf-8")
    code = main(["pretrain", "--corpus", str(corpus), "--output", str(tmp_path / "o"), *args])
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert code == 2 and len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], err
    assert not (tmp_path / "o").exists()


def test_get_segmenter_none():
    assert get_segmenter(None) is None and get_segmenter("none") is None
    assert get_segmenter("jieba") is jieba_segments


def test_qa_windows_recover_every_chinese_answer_exactly(zh_tokenizer):
    """With a character vocabulary every CMRC answer is a token span: the training windows'
    answer positions map back, through the offsets, to exactly the gold answer text."""
    from spanbert.tasks.qa.data import read_qa
    from spanbert.tasks.qa.features import build_features
    from spanbert.tasks.qa.settings import WindowConfig

    examples, _ = read_qa(SAMPLE)
    feats = build_features(examples, zh_tokenizer, WindowConfig(max_seq_length=128, window_overlap=48), training=True)
    found = set()
    for w in range(len(feats)):
        s, e = feats.start_positions[w], feats.end_positions[w]
        if s == feats.template.null_index:
            continue
        ex = examples[feats.example_index[w]]
        off = feats.offsets[w]
        assert ex.context[off[s, 0]:off[e, 1]] == ex.answers[0].text
        found.add(ex.id)
    assert len(found) == len(examples) == 24
