"""WordPiece tokenizers: train a BERT-style vocabulary (loading any fast tokenizer safely is
:func:`spanbert.core.checkpoints.load_tokenizer`).

SpanBERT used BERT's *cased* WordPiece vocabulary, so :func:`train_wordpiece` is cased by
default. The trained tokenizer is a ``transformers`` ``BertTokenizer`` (in transformers 5
that class is the fast, ``tokenizers``-backed one): it saves with ``save_pretrained`` and
loads back with plain ``AutoTokenizer.from_pretrained``.

Why not save the trained ``tokenizers`` pipeline as-is: transformers 5 rebuilds a
``BertTokenizer`` from the vocabulary and the *config* flags (``do_lower_case`` defaults to
True), not from the normalizer stored in ``tokenizer.json``. So the casing and accent
options must live in ``tokenizer_config.json``, which constructing the ``BertTokenizer``
with them guarantees.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

import transformers
from tokenizers import Tokenizer, normalizers, pre_tokenizers, trainers
from tokenizers.models import WordPiece
from transformers import PreTrainedTokenizerBase

from spanbert.core.atomic import atomic_directory
from spanbert.pretrain.corpus import DocPer, Format, is_saved_dataset, iter_documents, load_corpus
from spanbert.core.errors import ConfigError, CorpusError

__all__ = ["SPECIAL_TOKENS", "train_wordpiece", "train_tokenizer_from_files"]

# BERT's special tokens, in BERT's id order: [PAD] must be 0.
SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")


def train_wordpiece(
    texts: Iterable[str],
    *,
    vocab_size: int = 30000,
    lowercase: bool = False,
    min_frequency: int = 2,
    strip_accents: bool | None = None,
    handle_chinese_chars: bool = True,
    model_max_length: int = 512,
) -> transformers.BertTokenizer:
    """Train a BERT WordPiece tokenizer on raw texts.

    Args:
        texts: documents (any iterable; read once).
        vocab_size: target vocabulary size, special tokens included (fewer if the texts do not
            support that many pieces).
        lowercase: lowercase before splitting (BERT uncased). Default cased, as in SpanBERT.
        min_frequency: a merge must occur at least this often to enter the vocabulary.
        strip_accents: strip accents; None follows ``lowercase`` (BERT's rule).
        handle_chinese_chars: put spaces around CJK ideographs, one word each.
        model_max_length: the length the tokenizer reports as its model's limit.

    Returns:
        a fast ``transformers.BertTokenizer`` with [PAD]=0, [UNK]=1, [CLS]=2, [SEP]=3,
        [MASK]=4, BERT's normalizer and pre-tokenizer, a WordPiece decoder and a
        ``[CLS] $A [SEP]`` post-processor.

    Raises:
        ConfigError: ``vocab_size`` leaves no room beyond the special tokens.
        CorpusError: the texts produced no vocabulary (they were empty).

    Training is not bit-for-bit repeatable: the ``tokenizers`` WordPiece trainer numbers the
    ``##`` pieces in hash-map order and breaks count ties by those numbers, so two runs on
    the same texts can differ in ids and in a few tokens near the cut-off
    (huggingface/tokenizers#1794). Train once, save, and reuse the saved tokenizer.
    """
    if vocab_size <= len(SPECIAL_TOKENS):
        raise ConfigError(f"vocab_size={vocab_size}: must exceed the {len(SPECIAL_TOKENS)} special tokens")
    # Normalizer and pre-tokenizer decide which pieces are learned; they must equal what
    # BertTokenizer rebuilds from the same flags below.
    backend = Tokenizer(WordPiece(unk_token="[UNK]", continuing_subword_prefix="##"))
    backend.normalizer = normalizers.BertNormalizer(
        clean_text=True,
        handle_chinese_chars=handle_chinese_chars,
        strip_accents=strip_accents,
        lowercase=lowercase,
    )
    backend.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    trainer = trainers.WordPieceTrainer(
        vocab_size=vocab_size,
        min_frequency=min_frequency,
        special_tokens=list(SPECIAL_TOKENS),
        continuing_subword_prefix="##",
        show_progress=False,
    )
    backend.train_from_iterator(texts, trainer=trainer)
    vocab = backend.get_vocab()
    if len(vocab) <= len(SPECIAL_TOKENS):
        raise CorpusError("no text to train the tokenizer on (the vocabulary holds only special tokens)")
    return transformers.BertTokenizer(
        vocab=vocab,
        do_lower_case=lowercase,
        strip_accents=strip_accents,
        tokenize_chinese_chars=handle_chinese_chars,
        model_max_length=model_max_length,
    )



def _save_atomically(tokenizer: PreTrainedTokenizerBase, output_dir: Path, overwrite: bool) -> None:
    """Write into a staging directory beside ``output_dir`` that is renamed into place at the end."""
    if output_dir.exists() and not output_dir.is_dir():
        raise ConfigError(f"{output_dir}: exists and is not a directory")
    if output_dir.is_dir() and any(output_dir.iterdir()) and not overwrite:
        raise ConfigError(f"{output_dir}: already exists and is not empty (pass overwrite=True to replace it)")
    with atomic_directory(output_dir) as staging:
        tokenizer.save_pretrained(str(staging))
        # vocab.txt as well, for tools that read BERT vocabularies directly (one token a line, by id).
        vocab = sorted(tokenizer.get_vocab().items(), key=lambda item: item[1])
        (staging / "vocab.txt").write_text("".join(f"{token}\n" for token, _ in vocab), encoding="utf-8")


def _corpus_texts(
    sources: Sequence[str | Path], *, text_field: str, fmt: Format, doc_per: DocPer
) -> Iterator[str]:
    """Documents of local files via iter_documents; any other load_corpus source streamed."""
    items = [sources] if isinstance(sources, (str, Path)) else list(sources)
    if all(not str(s).startswith("hf:") and not is_saved_dataset(Path(s).expanduser()) for s in items):
        return iter_documents(items, text_field=text_field, fmt=fmt, doc_per=doc_per)
    stream = load_corpus([str(s) for s in items], text_field=text_field, streaming=True, doc_per=doc_per)
    return (row["text"] for row in stream)


def train_tokenizer_from_files(
    sources: Sequence[str | Path],
    output_dir: str | Path,
    vocab_size: int = 30000,
    lowercase: bool = False,
    *,
    min_frequency: int = 2,
    strip_accents: bool | None = None,
    handle_chinese_chars: bool = True,
    text_field: str = "text",
    fmt: Format = "auto",
    doc_per: DocPer = "blank_line",
    overwrite: bool = False,
) -> transformers.BertTokenizer:
    """Train a WordPiece tokenizer on corpus files and save it to ``output_dir`` atomically.

    Args:
        sources: files or directories, read with :func:`spanbert.pretrain.corpus.iter_documents`
            (``text_field``, ``fmt`` and ``doc_per`` are passed on); ``hf:NAME[:CONFIG]``
            sources and saved dataset directories are also accepted (streamed through
            :func:`spanbert.pretrain.corpus.load_corpus`, split "train").
        output_dir: the tokenizer directory to create (``AutoTokenizer`` loads it).
        vocab_size, lowercase, min_frequency, strip_accents, handle_chinese_chars:
            see :func:`train_wordpiece`.
        overwrite: replace a non-empty ``output_dir``.

    Returns:
        the trained tokenizer (the same one that was saved).

    Raises:
        CorpusError: a source is missing or malformed.
        ConfigError: ``output_dir`` exists and is not empty (without ``overwrite``).

    The directory appears complete or not at all: files are written to a hidden sibling
    directory that is renamed into place at the end.
    """
    output_dir = Path(output_dir).expanduser()
    if output_dir.is_dir() and any(output_dir.iterdir()) and not overwrite:
        # Checked before training too, so a long training run does not end in this error.
        raise ConfigError(f"{output_dir}: already exists and is not empty (pass overwrite=True to replace it)")
    documents = _corpus_texts(sources, text_field=text_field, fmt=fmt, doc_per=doc_per)
    tokenizer = train_wordpiece(
        documents,
        vocab_size=vocab_size,
        lowercase=lowercase,
        min_frequency=min_frequency,
        strip_accents=strip_accents,
        handle_chinese_chars=handle_chinese_chars,
    )
    _save_atomically(tokenizer, output_dir, overwrite)
    return tokenizer
