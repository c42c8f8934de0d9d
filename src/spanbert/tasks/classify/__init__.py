"""Text classification and sentiment: a [CLS] head; long texts are split into windows whose
logits are averaged.

    from spanbert.tasks.classify import TextClassifier
    TextClassifier("runs/sst2").classify(["a charming journey"])[0].label
"""

from spanbert.core.lazy import lazy_exports

__all__ = ["ClassificationData", "read_classification", "ClassifySettings", "ClassPrediction", "TextClassifier", "classification_metrics"]
__getattr__, __dir__ = lazy_exports(__name__, {
    "ClassificationData": "data",
    "read_classification": "data",
    "ClassifySettings": "settings",
    "ClassPrediction": "inference",
    "TextClassifier": "inference",
    "classification_metrics": "scoring",
})
