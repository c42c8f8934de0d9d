"""A toy task registered here, outside the package, runs through everything the protocol builds
once: ``spanbert finetune toy`` / ``evaluate toy`` (commands generated from its declaration),
its own ``predict toy`` command, its Python API (a :class:`~spanbert.tasks.protocol.Predictor`)
and ``POST /v1/toy`` on the server. docs/adding_a_task.md walks through this file.

The toy task: is a sentence of SST-2 "long" (15 words or more) or "short"? A [CLS] classifier
on the stock ``BertForSequenceClassification`` over a tiny random encoder.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import pytest
import typer

from spanbert.tasks.protocol import Card, Predictor, Task, TaskData, TrainingBatches, register_task

from .conftest import DATA, run_cli

pytestmark = pytest.mark.slow  # fine-tunes a tiny model through the CLI (about 10 s)
LABELS = ["short", "long"]


@dataclass(frozen=True)
class ToySettings:
    """Options of ``finetune toy`` (those with help) and what is saved as ``toy_settings.json``."""

    max_seq_length: int = field(default=64, metadata={"help": "Tokens per sentence, specials included.", "min": 8})
    long_from: int = field(default=15, metadata={"help": "Sentences of this many words or more are long."})


@register_task
class Toy(Task):
    """Fine-tune a sentence-length classifier (the protocol's worked example)."""

    name, unit, metric = "toy", "sentences", "accuracy"
    settings_type = options = ToySettings
    epochs, batch_size, lr = 3.0, 8, 1e-3
    evaluate_summary = "Classify sentences as short or long; write predictions and accuracy."
    data_help = "a TSV file with a sentence column."
    card = Card("Toy sentence-length classifier", "text-classification", ("toy",), "Load it with `ToyPredictor(dir)`.")
    predictor, commands = f"{__name__}:ToyPredictor", __name__

    def read(self, source, options: ToySettings, *, split: str, labelled: bool = True) -> TaskData:
        with open(source, encoding="utf-8", newline="") as f:
            sentences = [row["sentence"].strip() for row in csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE)]
        return TaskData(str(source), sentences)

    def gold(self, data: TaskData, settings: ToySettings) -> list[int]:
        return [int(len(s.split()) >= settings.long_from) for s in data.examples]

    def load_for_training(self, model_path, train: TaskData, options: ToySettings):
        from transformers import AutoTokenizer, BertForSequenceClassification

        model = BertForSequenceClassification.from_pretrained(
            model_path, num_labels=2, id2label=dict(enumerate(LABELS)), label2id={n: i for i, n in enumerate(LABELS)})
        return model, AutoTokenizer.from_pretrained(model_path), options

    def load_trained(self, model_dir, dtype=None):
        from transformers import AutoTokenizer, BertForSequenceClassification

        return (BertForSequenceClassification.from_pretrained(model_dir), AutoTokenizer.from_pretrained(model_dir),
                self.load_settings(model_dir))

    def encode(self, sentences: list[str], tokenizer, settings: ToySettings) -> list[list[int]]:
        return tokenizer(sentences, truncation=True, max_length=settings.max_seq_length)["input_ids"]

    def training_batches(self, train: TaskData, model, tokenizer, settings: ToySettings, args) -> TrainingBatches:
        ids, labels = self.encode(train.examples, tokenizer, settings), self.gold(train, settings)
        return TrainingBatches([len(x) for x in ids], lambda idx: collate([ids[i] for i in idx], [labels[i] for i in idx]),
                               info={"long_sentences": sum(labels)})

    def infer(self, model, tokenizer, data: TaskData, settings: ToySettings, *, batch_size: int, precision: str,
              progress: bool) -> list[float]:
        """P(long) of every sentence."""
        import torch

        ids, out = self.encode(data.examples, tokenizer, settings), []
        with torch.inference_mode():
            for start in range(0, len(ids), batch_size):
                batch = {k: v.to(model.device) for k, v in collate(ids[start : start + batch_size]).items()}
                out += model(**batch).logits.softmax(-1)[:, 1].tolist()
        return out

    def score(self, outputs: list[float], data: TaskData, settings: ToySettings) -> dict[str, Any]:
        gold = self.gold(data, settings)
        return {"accuracy": round(100 * sum((p >= 0.5) == g for p, g in zip(outputs, gold)) / len(gold), 4)}

    def write(self, folder: Path, outputs: list[float], data: TaskData, settings: ToySettings, metrics: dict[str, Any],
              seconds: float) -> None:
        lines = [json.dumps({"sentence": s, "label": LABELS[p >= 0.5], "p_long": round(p, 6)})
                 for s, p in zip(data.examples, outputs)]
        (folder / "predictions.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
        (folder / "metrics.json").write_text(json.dumps({"data": data.source, "metrics": metrics}), encoding="utf-8")

    def serve(self, api, items: list[dict], options) -> list[dict]:
        return [{"label": label} for label in api.predict([it["text"] for it in items])]


def collate(ids: list[list[int]], labels: list[int] | None = None) -> dict:
    """Right-padded ``input_ids`` / ``attention_mask`` (pad id 0), with ``labels`` when given."""
    import torch

    width = max(len(x) for x in ids)
    batch = {"input_ids": torch.tensor([x + [0] * (width - len(x)) for x in ids]),
             "attention_mask": torch.tensor([[1] * len(x) + [0] * (width - len(x)) for x in ids])}
    if labels is not None:
        batch["labels"] = torch.tensor(labels)
    return batch


class ToyPredictor(Predictor):
    task_name = "toy"

    def predict(self, sentences: list[str]) -> list[str]:
        outputs = self.task.infer(self.model, self.tokenizer, TaskData("api", list(sentences)), self.settings,
                                  batch_size=self.batch_size, precision=self.precision, progress=False)
        return [LABELS[p >= 0.5] for p in outputs]


def predict_toy_command(model: Annotated[Path, typer.Option("--model", "-m", help="A toy model folder.")],
                        text: Annotated[list[str], typer.Option("--text", "-t", help="A sentence; repeatable.")]) -> None:
    """Say whether each sentence is short or long."""
    for sentence, label in zip(text, ToyPredictor(model, device="cpu").predict(text)):
        typer.echo(f"{label}\t{sentence}")


def register(groups: dict[str, typer.Typer], wrap) -> None:
    """The toy task's own command: ``spanbert predict toy``."""
    groups["predict"].command("toy")(wrap(predict_toy_command))


# -- the tests ----------------------------------------------------------------------------------

SAMPLE = DATA / "classify" / "sst2_dev_sample.tsv"


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> dict[str, Path]:
    """The SST-2 sample split: the first 40 sentences train, the other 20 dev."""
    rows = SAMPLE.read_text(encoding="utf-8").splitlines()
    folder = tmp_path_factory.mktemp("toy-data")
    (folder / "train.tsv").write_text("\n".join(rows[:41]) + "\n", encoding="utf-8")
    (folder / "dev.tsv").write_text("\n".join(rows[:1] + rows[41:]) + "\n", encoding="utf-8")
    return {"train": folder / "train.tsv", "dev": folder / "dev.tsv"}


@pytest.fixture(scope="module")
def trained(tmp_path_factory, data) -> Path:
    from .serve_models import build_encoder

    encoder = build_encoder(tmp_path_factory.mktemp("toy-encoder") / "bert")
    out = tmp_path_factory.mktemp("toy-run") / "model"
    rc, stdout, stderr = run_cli(["finetune", "toy", "--model", str(encoder), "--train", str(data["train"]), "--dev",
                                  str(data["dev"]), "--output", str(out), "--precision", "no", "--seed", "3",
                                  "--long-from", "12", "--no-progress"])
    assert rc == 0, stderr
    assert stdout.startswith("trained ") and f"model: {out}" in stdout
    return out


def test_finetune_writes_the_model_settings_dev_results_and_summary(trained, data):
    summary = json.loads((trained / "finetune_summary.json").read_text())
    gold_long = sum(len(line.split("\t")[0].split()) >= 12 for line in data["train"].read_text().splitlines()[1:])
    assert summary["train_sentences"] == 40 and summary["long_sentences"] == gold_long  # the task's own entry
    assert summary["dev_sentences"] == 20 and summary["selected_on_dev"]["metric"] == "accuracy"
    dev_metrics = json.loads((trained / "dev" / "metrics.json").read_text())["metrics"]
    assert summary["dev_metrics"] == dev_metrics
    assert json.loads((trained / "toy_settings.json").read_text()) == {"max_seq_length": 64, "long_from": 12}
    assert "Toy sentence-length classifier" in (trained / "README.md").read_text()


def test_evaluate_scores_what_it_predicts(trained, data, tmp_path):
    rc, stdout, stderr = run_cli(["evaluate", "toy", "--model", str(trained), "--data", str(data["dev"]), "--output",
                                  str(tmp_path / "eval"), "--precision", "no", "--no-progress"])
    assert rc == 0, stderr
    assert stdout.startswith("20 sentences in ")
    rows = [json.loads(line) for line in (tmp_path / "eval" / "predictions.jsonl").read_text().splitlines()]
    right = sum((r["label"] == "long") == (len(r["sentence"].split()) >= 12) for r in rows)  # the saved long_from
    assert json.loads((tmp_path / "eval" / "metrics.json").read_text())["metrics"]["accuracy"] == round(100 * right / 20, 4)
    # the same model on dev during fine-tuning gave the same numbers
    assert (tmp_path / "eval" / "predictions.jsonl").read_text() == (trained / "dev" / "predictions.jsonl").read_text()


def test_python_api_and_predict_command_agree_with_evaluate(trained, data):
    rows = [json.loads(line) for line in (trained / "dev" / "predictions.jsonl").read_text().splitlines()]
    sentences = [r["sentence"] for r in rows]
    assert ToyPredictor(trained, device="cpu").predict(sentences) == [r["label"] for r in rows]
    rc, stdout, stderr = run_cli(["predict", "toy", "--model", str(trained), *sum((["--text", s] for s in sentences[:3]), [])])
    assert rc == 0, stderr
    assert stdout.splitlines() == [f"{r['label']}\t{r['sentence']}" for r in rows[:3]]


def test_server_serves_the_registered_task(trained):
    from fastapi.testclient import TestClient

    from spanbert.serve.app import create_app

    rows = [json.loads(line) for line in (trained / "dev" / "predictions.jsonl").read_text().splitlines()][:5]
    with TestClient(create_app([trained], device="cpu")) as client:
        r = client.post("/v1/toy", json={"items": [{"text": row["sentence"]} for row in rows]})
        assert r.status_code == 200, r.text
        assert [x["label"] for x in r.json()["results"]] == [row["label"] for row in rows]
        listed = client.get("/v1/models").json()["models"]
        assert [(m["name"], m["task"]) for m in listed] == [("model", "toy")]
        bad = client.post("/v1/toy", json={"items": [{"sentence": "wrong field"}]})
        assert bad.status_code == 422
