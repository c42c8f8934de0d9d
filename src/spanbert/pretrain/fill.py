"""Span infilling with the trained heads: each run of [MASK] tokens is predicted three ways.

* ``mlm``: the MLM head, from each masked position's own final state;
* ``sbo``: the span boundary head, from only the two states just outside the run and each
  token's position inside it (what SpanBERT's SBO is trained to do);
* ``joint``: the product of the two heads' distributions (sum of log-probabilities);
* ``iterative``: ``joint`` one token at a time: the most confident masked position is filled,
  the text is encoded again, and the rest of the run is predicted from the new context (a
  filled token becomes a boundary for SBO), until no mask is left.

The first three decode every position in one parallel pass, so they are directly comparable;
parallel decoding tends to repeat frequent words ("the the"), which ``iterative`` avoids at the
cost of one encoder pass per masked token.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch

from spanbert.core.errors import CheckpointError, ConfigError, SpanBertError
from spanbert.pretrain.modeling import SpanBertForPreTraining


@dataclass
class HeadPrediction:
    """One head's reading of one masked run."""

    token_ids: list[int]
    tokens: list[str]
    text: str  # the run decoded on its own
    probabilities: list[float]  # of each chosen token under this head
    top_k: list[list[tuple[str, float]]]  # per position: the head's k best tokens


@dataclass
class SpanFill:
    """A maximal run of [MASK] tokens (token positions ``start..end`` inclusive) and its fills."""

    start: int
    end: int
    boundary_tokens: tuple[str, str]  # the tokens just outside the run, which SBO reads
    predictions: dict[str, HeadPrediction] = field(default_factory=dict)  # "mlm", "sbo", "joint", "iterative"


@dataclass
class FillResult:
    """All masked runs of one input text, and the text re-written by each head."""

    text: str
    spans: list[SpanFill]
    filled_text: dict[str, str]


def mask_runs(mask: torch.Tensor) -> list[tuple[int, int]]:
    """Maximal runs of True in a 1-D bool tensor, as inclusive (start, end) pairs."""
    runs: list[tuple[int, int]] = []
    positions = mask.nonzero().flatten().tolist()
    for p in positions:
        if runs and runs[-1][1] == p - 1:
            runs[-1] = (runs[-1][0], p)
        else:
            runs.append((p, p))
    return runs


HEADS = ("mlm", "sbo", "joint", "iterative")


class SpanFiller:
    """Fills [MASK] runs with a pre-trained :class:`SpanBertForPreTraining` and its tokenizer."""

    def __init__(self, model: SpanBertForPreTraining, tokenizer, device: str | torch.device = "cpu"):
        if tokenizer.mask_token_id is None:
            raise SpanBertError("tokenizer has no mask token: cannot fill spans")
        vocab_size = model.config.vocab_size
        if len(tokenizer) > vocab_size:
            raise CheckpointError(f"the tokenizer has {len(tokenizer)} tokens but the model only {vocab_size} embeddings")
        self.model = model.to(device).eval()
        self.tokenizer = tokenizer
        self.device = torch.device(device)
        # Never predicted: special tokens (a fill of [MASK] would leave the mask in place, and the
        # iterative fill would never end) and ids the tokenizer does not have (padding rows).
        banned = torch.zeros(vocab_size, dtype=torch.bool)
        banned[[i for i in tokenizer.all_special_ids if 0 <= i < vocab_size]] = True
        banned[len(tokenizer):] = True
        self.fillable = int((~banned).sum())  # tokens a head can predict
        if not self.fillable:
            raise CheckpointError("the tokenizer has only special tokens: nothing to fill spans with")
        self._banned = banned.to(self.device)

    @classmethod
    def from_pretrained(cls, model_dir: str | Path, device: str | torch.device = "cpu") -> SpanFiller:
        """Load model and tokenizer from a folder written by ``spanbert pretrain`` or ``spanbert
        convert`` (a BERT checkpoint with the SBO head beside it, or an older ``model_type:
        spanbert`` folder); a missing or damaged folder (config, weights, tokenizer), or one without
        trained MLM and SBO heads, is a one-line :class:`CheckpointError`."""
        from spanbert.pretrain.modeling import SBO_HEAD_FILE, load_pretraining_model
        from spanbert.core.checkpoints import check_model_folder, check_tokenizer_fits, read_checkpoint_config
        from spanbert.core.checkpoints import load_tokenizer

        name = str(model_dir)
        model_dir = check_model_folder(model_dir)
        if not (model_dir / "config.json").is_file():
            raise CheckpointError(f"--model {name}: no such model folder")
        kind = read_checkpoint_config(model_dir).get("model_type")
        if kind not in ("spanbert", "bert"):
            raise CheckpointError(f"--model {model_dir}: model_type {kind!r} is not a SpanBERT pre-training model "
                                  "(written by `spanbert pretrain`)")
        try:
            model, info = load_pretraining_model(model_dir)
        except (CheckpointError, ConfigError) as e:
            raise CheckpointError(f"--model {e}") from None
        missing = sorted(k for k in info["missing_keys"] if k.startswith(("cls.", "sbo.")))
        if missing:
            lacking = (f"no {SBO_HEAD_FILE}: a plain BERT checkpoint" if kind == "bert" and missing[0].startswith("sbo.")
                       else f"{missing[0]} missing")
            raise CheckpointError(
                f"--model {model_dir}: no trained MLM/SBO head weights ({lacking}); "
                "pre-train it with `spanbert pretrain --init-from` first"
            )
        tokenizer = load_tokenizer(str(model_dir))
        check_tokenizer_fits(tokenizer, model.config, model_dir)
        return cls(model, tokenizer, device)

    def _run_log_probs(self, hidden: torch.Tensor, b: int, s: int, e: int) -> dict[str, torch.Tensor]:
        """Log-probabilities (L, V) of each head for the masked run s..e of row ``b`` of ``hidden`` (B, T, H)."""
        positions = torch.arange(s, e + 1, device=self.device)
        pairs = torch.stack([
            torch.full_like(positions, b), torch.full_like(positions, s - 1),
            torch.full_like(positions, e + 1), positions - s,
        ], dim=1)  # (L, 4)
        mlm = self.model.mlm_logits(hidden, b * hidden.size(1) + positions).masked_fill(self._banned, -torch.inf)
        sbo = self.model.sbo_logits(hidden, pairs).masked_fill(self._banned, -torch.inf)
        mlm, sbo = mlm.log_softmax(-1), sbo.log_softmax(-1)
        return {"mlm": mlm, "sbo": sbo, "joint": (mlm + sbo).log_softmax(-1)}

    def _fill_iteratively(self, ids: torch.Tensor, attention: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Fill the masks of one row (T,) most-confident-first; returns the ids and each fill's probability.

        Each step replaces one [MASK] by a token that is never special (see ``_banned``), so
        the loop ends after as many steps as there are masks."""
        ids, probs = ids.clone(), torch.zeros(ids.shape, device=self.device)
        for _ in range(int((ids == self.tokenizer.mask_token_id).sum()) + 1):
            runs = mask_runs(ids == self.tokenizer.mask_token_id)
            if not runs:
                break
            hidden = self.model(input_ids=ids[None], attention_mask=attention[None]).last_hidden_state  # (1, T, H)
            best = None  # (probability, position, token)
            for s, e in runs:
                p, tokens = self._run_log_probs(hidden, 0, s, e)["joint"].exp().max(-1)  # (L,)
                i = int(p.argmax())
                if best is None or float(p[i]) > best[0]:
                    best = (float(p[i]), s + i, int(tokens[i]))
            ids[best[1]], probs[best[1]] = best[2], best[0]
        return ids, probs

    @torch.no_grad()
    def fill(self, texts: str | list[str], top_k: int = 5) -> list[FillResult]:
        """Predict every [MASK] run in each text with the MLM head, the SBO head, both, and both iteratively."""
        if isinstance(texts, str):
            texts = [texts]
        if isinstance(top_k, bool) or not isinstance(top_k, int) or not 0 <= top_k <= self.fillable:
            raise ConfigError(f"--top-k {top_k!r}: must be between 0 and {self.fillable} (the tokens the model can predict)")
        tok = self.tokenizer
        enc = tok(texts, padding=True, truncation=True, return_tensors="pt").to(self.device)
        ids = enc["input_ids"]  # (B, T)
        hidden = self.model(input_ids=ids, attention_mask=enc["attention_mask"]).last_hidden_state  # (B, T, H)
        max_span = self.model.config.sbo_max_span_tokens
        results = []
        for b, text in enumerate(texts):
            runs = mask_runs(ids[b] == tok.mask_token_id)
            if not runs:
                raise SpanBertError(f"text {b + 1}: no {tok.mask_token} token to fill in {text[:60]!r}")
            for s, e in runs:
                if e - s + 1 > max_span:
                    raise SpanBertError(
                        f"text {b + 1}: a run of {e - s + 1} masks is longer than the SBO head's {max_span} positions"
                    )
            filled = {head: ids[b].clone() for head in HEADS}
            filled["iterative"], iterative_probs = self._fill_iteratively(ids[b], enc["attention_mask"][b])
            spans = []
            for s, e in runs:
                logp = self._run_log_probs(hidden, b, s, e)  # each (L, V)
                fill = SpanFill(s, e, (tok.convert_ids_to_tokens(int(ids[b, s - 1])), tok.convert_ids_to_tokens(int(ids[b, e + 1]))))
                for head, lp in logp.items():
                    best = lp.argmax(-1)
                    filled[head][s : e + 1] = best
                    fill.predictions[head] = self._prediction(best, lp.gather(1, best[:, None]).exp().squeeze(1), lp, top_k)
                chosen = filled["iterative"][s : e + 1]
                fill.predictions["iterative"] = self._prediction(chosen, iterative_probs[s : e + 1], None, top_k)
                spans.append(fill)
            mask = enc["attention_mask"][b].bool()
            results.append(FillResult(
                text=text,
                spans=spans,
                filled_text={h: tok.decode(v[mask].tolist(), skip_special_tokens=True) for h, v in filled.items()},
            ))
        return results

    def _prediction(self, token_ids: torch.Tensor, probs: torch.Tensor, log_probs: torch.Tensor | None, top_k: int) -> HeadPrediction:
        tok = self.tokenizer
        top = []
        if log_probs is not None:
            top_p, top_i = log_probs.exp().topk(top_k, dim=-1)
            top = [list(zip(tok.convert_ids_to_tokens(i.tolist()), p.tolist())) for i, p in zip(top_i, top_p)]
        return HeadPrediction(
            token_ids=token_ids.tolist(),
            tokens=tok.convert_ids_to_tokens(token_ids.tolist()),
            text=tok.decode(token_ids.tolist()),
            probabilities=probs.tolist(),
            top_k=top,
        )


LABELS = (("mlm", "MLM      "), ("sbo", "SBO      "), ("joint", "joint    "), ("iterative", "iterative"))


def format_fill(result: FillResult) -> str:
    """A readable rendering of a :class:`FillResult`: each span's predictions by every head, then the filled texts."""
    lines = [f"input: {result.text}"]
    for i, span in enumerate(result.spans, 1):
        left, right = span.boundary_tokens
        lines.append(f"  span {i} (tokens {span.start}-{span.end}, between {left!r} and {right!r}):")
        for head, label in LABELS:
            p = span.predictions[head]
            probs = " ".join(f"{x:.2f}" for x in p.probabilities)
            lines.append(f"    {label} {p.text!r:<32} p=[{probs}]")
    for head, label in LABELS:
        lines.append(f"  {label} -> {result.filled_text[head]}")
    return "\n".join(lines)
