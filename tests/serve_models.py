"""Tiny saved model folders for every task the server knows, built in seconds (random weights).

Not a test module: the server's tests and the browser test import it.

    from tests.serve_models import build_all
    folders = build_all(tmp_path)  # {"qa": Path, "fill": Path, "classify": Path, ...}

Each folder has exactly the layout its task's own job writes (``spanbert finetune <task>``, or
``spanbert pretrain`` for ``fill``): the same save functions and settings files, over a
2-layer, hidden-32 encoder and the committed tiny WordPiece tokenizer. Their answers are those
of random weights: fine for checking plumbing, meaningless as predictions.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from .conftest import TINY_BERT, save_tiny_encoder

TESTS = Path(__file__).resolve().parent
TOKENIZER_DIR = TESTS / "data" / "tiny_wordpiece"
# 512 positions: the tokenizer truncates at its model_max_length (512), so no input overflows them
TINY = {**TINY_BERT, "max_position_embeddings": 512}

CLASSIFY_LABELS = ["negative", "positive"]
RELATION_LABELS = ["Other", "Cause-Effect(e1,e2)", "Cause-Effect(e2,e1)", "Member-Collection(e1,e2)"]
ENTITY_TYPES = ["PER", "LOC", "ORG"]
SUMMARY_SENTENCES = 2  # the saved budget of the summarizer


def _quiet():
    import transformers

    transformers.logging.set_verbosity_error()  # "newly initialized head" is expected here
    transformers.utils.logging.disable_progress_bar()


def load_tiny_tokenizer(tokenizer_dir: str | os.PathLike = TOKENIZER_DIR):
    from spanbert.core.checkpoints import load_tokenizer

    return load_tokenizer(str(tokenizer_dir))


def build_encoder(out: str | os.PathLike, tokenizer_dir: str | os.PathLike = TOKENIZER_DIR, seed: int = 0) -> Path:
    """A plain ``bert`` folder (encoder + tokenizer): what the task builders start from."""
    return save_tiny_encoder(Path(out), load_tiny_tokenizer(tokenizer_dir), seed=seed, **TINY)


def build_qa(base: Path, out: Path, seed: int = 1) -> Path:
    """Stock ``BertForQuestionAnswering`` + ``qa_settings.json`` (as ``finetune_qa`` saves)."""
    from spanbert.tasks.protocol import get_task
    from spanbert.tasks.qa.inference import load_qa_model
    from spanbert.tasks.qa.settings import DecodeConfig, QASettings, WindowConfig

    torch.manual_seed(seed)
    model, tokenizer = load_qa_model(base)
    settings = QASettings(WindowConfig(max_seq_length=128, max_question_tokens=32, window_overlap=32), DecodeConfig(), "1.1")
    return get_task("qa").save(out, model, tokenizer, settings)


def build_fill(out: Path, tokenizer_dir: str | os.PathLike = TOKENIZER_DIR, seed: int = 2) -> Path:
    """A ``SpanBertForPreTraining`` folder with MLM and SBO heads (as ``spanbert pretrain`` saves)."""
    from spanbert.pretrain.modeling import SpanBertConfig, SpanBertForPreTraining
    from spanbert.pretrain.train import save_final_model

    tokenizer = load_tiny_tokenizer(tokenizer_dir)
    torch.manual_seed(seed)
    model = SpanBertForPreTraining(SpanBertConfig(vocab_size=len(tokenizer), sbo_position_size=16, **TINY))
    out.mkdir(parents=True, exist_ok=True)
    save_final_model(out, model, tokenizer)
    return out


def build_classify(base: Path, out: Path, seed: int = 3) -> Path:
    """Stock ``BertForSequenceClassification`` + ``classify_settings.json`` (as ``finetune_classify`` saves)."""
    from spanbert.tasks.classify.settings import ClassifySettings
    from spanbert.tasks.classify.inference import load_classifier
    from spanbert.tasks.protocol import get_task

    torch.manual_seed(seed)
    model, tokenizer = load_classifier(base, num_labels=len(CLASSIFY_LABELS), id2label=dict(enumerate(CLASSIFY_LABELS)),
                                       label2id={n: i for i, n in enumerate(CLASSIFY_LABELS)})
    settings = ClassifySettings(max_seq_length=64, window_overlap=16, majority_label=CLASSIFY_LABELS[0], text_field="text")
    return get_task("classify").save(out, model, tokenizer, settings)


def build_relations(base: Path, out: Path, seed: int = 4) -> Path:
    """A relation head with entity-marker tokens in its tokenizer (as ``spanbert finetune relations`` saves)."""
    from spanbert.tasks.protocol import get_task
    from spanbert.tasks.relations.model import new_relation_model

    model, tokenizer = new_relation_model(base, RELATION_LABELS, no_relation_label="Other", max_seq_length=64, seed=seed)
    task = get_task("relations")
    return task.save(out, model, tokenizer, task.settings_type())


def build_entities(base: Path, out: Path, seed: int = 5) -> Path:
    """A span NER head + ``ner_settings.json`` (as ``spanbert finetune ner`` saves)."""
    from spanbert.tasks.ner.model import label_maps, load_ner_model
    from spanbert.tasks.ner.settings import DecodeConfig, NerSettings, WindowConfig
    from spanbert.tasks.protocol import get_task

    torch.manual_seed(seed)
    model, tokenizer = load_ner_model(base, **label_maps(ENTITY_TYPES), max_span_width=4, width_embedding_dim=8,
                                      cross_attention_heads=2, classifier_hidden_size=32)
    return get_task("ner").save(out, model, tokenizer, NerSettings(WindowConfig(max_seq_length=64), DecodeConfig(), "IOB2"))


def build_coref(base: Path, out: Path, seed: int = 6) -> Path:
    """A coreference head + ``coref_settings.json`` (as ``finetune coref`` saves)."""
    from spanbert.tasks.coref.model import load_coref_model
    from spanbert.tasks.coref.settings import CorefSettings
    from spanbert.tasks.protocol import get_task

    torch.manual_seed(seed)
    model, tokenizer = load_coref_model(base, max_span_width=6, ffnn_size=32, feature_size=8, max_top_antecedents=10)
    return get_task("coref").save(out, model, tokenizer, CorefSettings(max_segment_length=64))


def build_summarize(base: Path, out: Path, seed: int = 7) -> Path:
    """An extractive summarization head + ``summarize_settings.json`` (as ``finetune summarize`` saves)."""
    from spanbert.tasks.protocol import get_task
    from spanbert.tasks.summarize.model import load_summarizer
    from spanbert.tasks.summarize.settings import SummarizeSettings

    torch.manual_seed(seed)
    model, tokenizer = load_summarizer(base, cross_attention_heads=2, max_segment_length=64)
    return get_task("summarize").save(out, model, tokenizer, SummarizeSettings(max_sentences=SUMMARY_SENTENCES))


def build_all(root: str | os.PathLike, tokenizer_dir: str | os.PathLike = TOKENIZER_DIR) -> dict[str, Path]:
    """Every task's tiny model folder under ``root`` (named ``tiny-<task>``), as ``{task: folder}``
    with the server's task names: qa, fill, classify, relations, entities, coref, summarize."""
    _quiet()
    root = Path(root)
    base = build_encoder(root / "tiny-bert", tokenizer_dir)
    return {
        "qa": build_qa(base, root / "tiny-qa"),
        "fill": build_fill(root / "tiny-fill", tokenizer_dir),
        "classify": build_classify(base, root / "tiny-classify"),
        "relations": build_relations(base, root / "tiny-relations"),
        "entities": build_entities(base, root / "tiny-entities"),
        "coref": build_coref(base, root / "tiny-coref"),
        "summarize": build_summarize(base, root / "tiny-summarize"),
    }


__all__ = ["build_all", "build_encoder", "build_qa", "build_fill", "build_classify", "build_relations", "build_entities",
           "build_coref", "build_summarize", "TINY", "CLASSIFY_LABELS", "RELATION_LABELS", "ENTITY_TYPES"]
