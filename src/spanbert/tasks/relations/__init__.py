"""Relation extraction: typed entity markers, marker-start (or [CLS]) classification, SemEval-2010 Task 8 scoring.

Data flows one way: :mod:`.data` reads examples (SemEval-2010 Task 8 files, marked sentences,
TACRED-style JSON) -> :mod:`.features` inserts the marker tokens and tokenises -> :mod:`.model`
classifies from the subject/object marker states -> :mod:`.inference` turns logits into labels
-> :mod:`.scoring` compares them with the gold labels as the official SemEval scorer (and the
TACRED scorer) does. :mod:`.task` declares the task to ``spanbert finetune/evaluate relations``
(options in :mod:`.settings`), :mod:`.cli` the predict and score commands.
"""

from __future__ import annotations

from spanbert.core.lazy import lazy_exports

__all__, __getattr__, __dir__ = lazy_exports(__name__, {
    "inference": ["RelationClassifier", "RelationPrediction"],
    "data": ["RelationExample", "read_relations", "read_semeval", "read_tacred", "to_dataset"],
    "model": ["RelationConfig", "BertForRelationExtraction"],
    "scoring": ["score_semeval", "score_semeval_files", "relation_metrics"],
    "settings": ["RelationSettings"],
})
