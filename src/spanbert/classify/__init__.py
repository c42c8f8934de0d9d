"""Text classification and sentiment: a [CLS] head; long texts are split into windows whose
logits are averaged.

    from spanbert.classify import TextClassifier
    TextClassifier("runs/sst2").classify(["a charming journey"])[0].label
"""

from .data import ClassificationData, read_classification
from .features import ClassifySettings
from .inference import ClassPrediction, TextClassifier
from .scoring import classification_metrics

__all__ = ["ClassificationData", "ClassifySettings", "ClassPrediction", "TextClassifier", "classification_metrics",
           "read_classification"]
