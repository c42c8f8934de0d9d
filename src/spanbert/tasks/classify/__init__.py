"""Text classification and sentiment: a [CLS] head; long texts are split into windows whose
logits are averaged.

    from spanbert.tasks.classify import TextClassifier
    TextClassifier("runs/sst2").classify(["a charming journey"])[0].label
"""

from spanbert.core.lazy import lazy_exports

__all__, __getattr__, __dir__ = lazy_exports(__name__, {
    "data": ["ClassificationData", "read_classification"],
    "settings": ["ClassifySettings"],
    "inference": ["ClassPrediction", "TextClassifier"],
    "scoring": ["classification_metrics"],
})
