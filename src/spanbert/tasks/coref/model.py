"""The coarse-to-fine coreference model (Lee et al. 2018, as the SpanBERT authors used it).

One forward pass reads one document:

1. the encoder runs over its independent segments (batch = segments) and the content token
   states are concatenated: ``(num_tokens, hidden)``;
2. each candidate span (built by :mod:`spanbert.tasks.coref.features`) is ``g = [h_start; h_end;
   width embedding; attention-pooled tokens]`` (the pooling reads only the span's own tokens);
3. a mention FFNN (+ a learned prior over bucketed widths) scores each span; the top
   ``ceil(top_span_ratio x words)`` spans are kept, in document order, best first and skipping
   any span that crosses one already kept (nesting is allowed; ``non_crossing=False`` keeps
   the plain top k);
4. coarse score ``s_c(i, j) = m_i + m_j + g_i W g_j`` over earlier top spans ``j < i``; the
   best ``max_top_antecedents`` per span are kept (without ``coarse_to_fine``: the bilinear
   term is dropped, so the pruning uses mention scores only);
5. fine score: FFNN over ``[g_i; g_j; g_i*g_j; distance bucket; same speaker; genre]``;
   ``higher_order`` rounds refine ``g_i`` by attending over its antecedents (gated);
6. a dummy antecedent with score 0; the loss is the negative marginal log-likelihood of the
   gold antecedents (the dummy is gold when a span has no gold antecedent), summed over spans
   (plus, optionally, a mention-detection cross-entropy: ``mention_loss_weight``).

Registers with ``AutoConfig``/``AutoModel`` as ``model_type`` ``spanbert_coref``.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from huggingface_hub.dataclasses import strict
from torch import nn
from transformers import BertConfig, BertModel
from transformers.models.bert.modeling_bert import BertPreTrainedModel
from transformers.utils import ModelOutput

from spanbert.core.checkpoints import register_auto
from spanbert.core.errors import ConfigError
from spanbert.tasks.span_repr import EndpointSpanExtractor, SelfAttentiveSpanExtractor, width_bucket, width_bucket_of

SPAN_CHUNK = 4096  # candidate spans scored at a time
NEG = -1e9  # score of an impossible antecedent (float32 scores; exp() is exactly 0)


@strict
class CorefConfig(BertConfig):
    """``BertConfig`` plus the coreference head's settings.

    ``max_span_width``: widest candidate span in subword tokens. ``top_span_ratio``: spans kept
    per word. ``max_top_antecedents``: antecedents per span after coarse pruning.
    ``ffnn_size``/``ffnn_depth``: hidden layers of the scoring FFNNs. ``feature_size``: size of
    the width, distance, speaker and genre embeddings. ``num_distance_buckets``: antecedent
    distance buckets (1, 2, 3, 4, 5-7, 8-15, ...). ``higher_order``: refinement rounds.
    ``mention_loss_weight``: weight of an extra binary cross-entropy on every candidate's
    mention score (gold mention or not); 0 = the paper's loss only. On small data it keeps
    the model from learning to prune every gold mention (then the loss is trivially 0).
    """

    model_type = "spanbert_coref"

    max_span_width: int = 30
    top_span_ratio: float = 0.4
    max_top_antecedents: int = 50
    ffnn_size: int = 1000
    ffnn_depth: int = 1
    feature_size: int = 20
    coarse_to_fine: bool = True
    use_width_prior: bool = True
    use_speaker: bool = True
    use_genre: bool = False
    num_genres: int = 8
    num_distance_buckets: int = 10
    higher_order: int = 0
    mention_loss_weight: float = 0.0
    non_crossing: bool = True


def non_crossing_top_spans(spans: list[tuple[int, int]], order: list[int], k: int) -> list[int]:
    """Up to ``k`` span indices taken in ``order`` (best first), skipping every span that
    crosses one already taken: (s, e) and (s2, e2) cross when s < s2 <= e < e2 (or the
    mirror case). Nested and disjoint spans are kept, as in Lee et al.'s span pruning.
    Returns the taken indices in the order taken."""
    max_end_from: dict[int, int] = {}  # start -> largest end of a taken span starting there
    min_start_to: dict[int, int] = {}  # end -> smallest start of a taken span ending there
    taken: list[int] = []
    for i in order:
        s, e = spans[i]
        if any(max_end_from.get(j, -1) > e for j in range(s + 1, e + 1)) or \
                any(min_start_to.get(j, s) < s for j in range(s, e)):
            continue
        taken.append(i)
        max_end_from[s] = max(max_end_from.get(s, -1), e)
        min_start_to[e] = min(min_start_to.get(e, s), s)
        if len(taken) == k:
            break
    return taken


@dataclass
class CorefOutput(ModelOutput):
    """``top_spans`` (k, 2) flat subword spans kept; ``top_indices`` (k,) their candidate index;
    ``antecedents`` (k, c) indices into the top spans; ``antecedent_mask`` (k, c);
    ``scores`` (k, c + 1) antecedent scores, column 0 the dummy (always 0);
    ``mention_scores`` (num_spans,); ``loss``: summed negative marginal log-likelihood."""

    loss: torch.Tensor | None = None
    scores: torch.Tensor | None = None
    top_spans: torch.Tensor | None = None
    top_indices: torch.Tensor | None = None
    antecedents: torch.Tensor | None = None
    antecedent_mask: torch.Tensor | None = None
    mention_scores: torch.Tensor | None = None


def distance_bucket(distance: torch.Tensor, num_buckets: int) -> torch.Tensor:
    """Lee et al.'s buckets: 0..4 their own, then [5, 8), [8, 16), ...; capped at ``num_buckets - 1``."""
    d = distance.clamp(min=0)
    log = torch.floor(torch.log2(d.clamp(min=1).float())).long() + 3
    return torch.where(d <= 4, d, log).clamp(max=num_buckets - 1)


class FFNN(nn.Module):
    """``depth`` x (Linear -> ReLU -> Dropout), then Linear -> one score."""

    def __init__(self, input_dim: int, hidden: int, depth: int, dropout: float):
        super().__init__()
        layers: list[nn.Module] = []
        for _ in range(depth):
            layers += [nn.Linear(input_dim, hidden), nn.ReLU(), nn.Dropout(dropout)]
            input_dim = hidden
        self.hidden = nn.Sequential(*layers)
        self.out = nn.Linear(input_dim, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.hidden(x)).squeeze(-1)


class BertForCoreference(BertPreTrainedModel):
    """Coarse-to-fine coreference over a BERT encoder; see the module doc.

    ``forward(input_ids, attention_mask, content_mask, spans, num_words, span_cluster_ids=None,
    speaker_ids=None, genre_id=None)``: ``input_ids``/``attention_mask``/``content_mask``
    (segments, seq) -- ``content_mask`` 1 on real subwords (not [CLS]/[SEP]/padding);
    ``spans`` (num_spans, 2) inclusive flat subword spans; ``num_words`` a 0-d tensor;
    ``span_cluster_ids`` (num_spans,) 1 + gold cluster, 0 = no mention (gives the loss);
    ``speaker_ids`` (num_tokens,); ``genre_id`` 0-d.
    """

    config_class = CorefConfig

    def __init__(self, config: CorefConfig):
        super().__init__(config)
        if config.max_span_width < 1 or config.max_top_antecedents < 1 or not 0 < config.top_span_ratio <= 1:
            raise ConfigError("max_span_width, max_top_antecedents: must be >= 1; top_span_ratio: in (0, 1]")
        self.bert = BertModel(config, add_pooling_layer=False)
        h, f = config.hidden_size, config.feature_size
        self.dropout = nn.Dropout(config.hidden_dropout_prob)
        self.endpoints = EndpointSpanExtractor(h, "x,y", f, max_width=config.max_span_width, bucket_widths=True)
        self.attention = SelfAttentiveSpanExtractor(h)
        span_dim = self.endpoints.get_output_dim() + self.attention.get_output_dim()
        self.span_dim = span_dim
        ffnn = (config.ffnn_size, config.ffnn_depth, config.hidden_dropout_prob)
        self.mention_scorer = FFNN(span_dim, *ffnn)
        num_widths = width_bucket_of(config.max_span_width) + 1
        self.width_prior = nn.Sequential(nn.Embedding(num_widths, f), FFNN(f, *ffnn)) if config.use_width_prior else None
        self.coarse_bilinear = nn.Linear(span_dim, span_dim) if config.coarse_to_fine else None
        self.distance_embedding = nn.Embedding(config.num_distance_buckets, f)
        self.speaker_embedding = nn.Embedding(2, f) if config.use_speaker else None
        self.genre_embedding = nn.Embedding(config.num_genres, f) if config.use_genre else None
        pair_dim = 3 * span_dim + f * (1 + int(config.use_speaker) + int(config.use_genre))
        self.fine_scorer = FFNN(pair_dim, *ffnn)
        self.refine_gate = nn.Linear(2 * span_dim, span_dim) if config.higher_order > 0 else None
        self.post_init()

    def _span_vectors(self, tokens: torch.Tensor, spans: torch.Tensor) -> torch.Tensor:
        """(tokens, h) x (spans, 2) -> (spans, span_dim)."""
        endpoints = self.endpoints(tokens.unsqueeze(0), spans.unsqueeze(0))[0]  # batch of one: (N, 2h + f)
        pooled = self.attention(tokens.unsqueeze(0), spans.unsqueeze(0))[0]  # (N, h): reads (N, widest span, h)
        return self.dropout(torch.cat([endpoints, pooled], dim=-1))

    def _mention_scores(self, g: torch.Tensor, spans: torch.Tensor) -> torch.Tensor:
        """(n, D), (n, 2) -> mention scores (n,), float32: FFNN(g) + the learned width prior."""
        mention = self.mention_scorer(g)
        if self.width_prior is not None:
            widths = width_bucket(spans[:, 1] - spans[:, 0] + 1, self.width_prior[0].num_embeddings)
            mention = mention + self.width_prior(widths)
        return mention.float()

    def _fine_scores(self, g: torch.Tensor, antecedents: torch.Tensor, pair_features: torch.Tensor,
                     rows: int = 256) -> torch.Tensor:
        """(k, D), (k, c), (k, c, F) -> fine scores (k, c); ``rows`` spans at a time, so the
        (rows, c, 3D + F) pair tensor stays small on long documents."""
        out = []
        for a in range(0, g.size(0), rows):
            ante = antecedents[a : a + rows]
            gi = g[a : a + rows].unsqueeze(1).expand(-1, ante.size(1), -1)  # (r, c, D)
            gj = g[ante]  # (r, c, D)
            out.append(self.fine_scorer(torch.cat([gi, gj, gi * gj, pair_features[a : a + rows]], dim=-1)))
        return torch.cat(out)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, content_mask: torch.Tensor,
                spans: torch.Tensor, num_words: torch.Tensor, span_cluster_ids: torch.Tensor | None = None,
                speaker_ids: torch.Tensor | None = None, genre_id: torch.Tensor | None = None, **kwargs) -> CorefOutput:
        cfg = self.config
        hidden = self.bert(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state  # (S, L, h)
        tokens = hidden[content_mask.bool()]  # (T, h): segments concatenated in document order
        # span vectors and mention scores, SPAN_CHUNK spans at a time: a 10,000-token document has
        # ~180,000 candidates, and their (spans, width, hidden) pooling windows would not fit at once
        vectors, scores = [], []
        for a in range(0, spans.size(0), SPAN_CHUNK):
            g_chunk = self._span_vectors(tokens, spans[a : a + SPAN_CHUNK])  # (n, D)
            scores.append(self._mention_scores(g_chunk, spans[a : a + SPAN_CHUNK]))
            if torch.is_grad_enabled():
                vectors.append(g_chunk)
        mention = torch.cat(scores)  # (N,)

        # keep the top spans, in document order (start, then end)
        k = max(1, min(spans.size(0), math.ceil(cfg.top_span_ratio * int(num_words))))
        if cfg.non_crossing:
            order = torch.argsort(mention.detach(), descending=True, stable=True).tolist()
            top = torch.tensor(non_crossing_top_spans(spans.tolist(), order, k), dtype=torch.long, device=spans.device)
            k = top.numel()
        else:
            top = torch.topk(mention, k).indices
        order = torch.argsort(spans[top, 0] * (spans[:, 1].max() + 1) + spans[top, 1])
        top = top[order]  # (k,)
        m, top_spans = mention[top], spans[top]  # (k,), (k, 2)
        # training keeps every vector for the backward pass anyway; inference recomputes the top ones
        g = torch.cat(vectors)[top] if vectors else self._span_vectors(tokens, top_spans)  # (k, D)

        # coarse pruning: the c best earlier spans of each span
        c = min(cfg.max_top_antecedents, k)
        offsets = torch.arange(k, device=g.device).unsqueeze(1) - torch.arange(k, device=g.device).unsqueeze(0)  # (k, k) i - j
        earlier = offsets > 0
        coarse = m.unsqueeze(1) + m.unsqueeze(0)  # (k, k)
        if self.coarse_bilinear is not None:
            coarse = coarse + (self.coarse_bilinear(g) @ g.t()).float()
        coarse = coarse.masked_fill(~earlier, NEG)
        coarse_top, antecedents = torch.topk(coarse, c, dim=1)  # (k, c) both
        ante_mask = earlier.gather(1, antecedents)  # (k, c)

        # pair features: distance bucket (in top-span positions), same speaker, genre
        features = [self.distance_embedding(distance_bucket(offsets.gather(1, antecedents), cfg.num_distance_buckets))]
        if self.speaker_embedding is not None:
            speakers = speaker_ids[top_spans[:, 0]] if speaker_ids is not None else torch.zeros_like(top)
            same = (speakers.unsqueeze(1) == speakers[antecedents]).long()  # (k, c)
            features.append(self.speaker_embedding(same))
        if self.genre_embedding is not None:
            genre = genre_id if genre_id is not None else torch.zeros((), dtype=torch.long, device=g.device)
            features.append(self.genre_embedding(genre.view(1, 1).expand(k, c)))
        pair = self.dropout(torch.cat(features, dim=-1))  # (k, c, F)

        for _ in range(cfg.higher_order):  # refine g by attending over the antecedents (the dummy = itself)
            scores = self._scores(coarse_top, self._fine_scores(g, antecedents, pair), ante_mask)  # (k, c + 1)
            weights = torch.softmax(scores, dim=1).to(g.dtype)
            candidates = torch.cat([g.unsqueeze(1), g[antecedents]], dim=1)  # (k, c + 1, D)
            attended = (weights.unsqueeze(-1) * candidates).sum(1)  # (k, D)
            gate = torch.sigmoid(self.refine_gate(torch.cat([g, attended], dim=-1)))
            g = gate * g + (1 - gate) * attended
        scores = self._scores(coarse_top, self._fine_scores(g, antecedents, pair), ante_mask)

        loss = None
        if span_cluster_ids is not None:
            loss = marginal_log_likelihood_loss(scores, span_cluster_ids[top], antecedents, ante_mask)
            if cfg.mention_loss_weight > 0:
                loss = loss + cfg.mention_loss_weight * F.binary_cross_entropy_with_logits(
                    mention, (span_cluster_ids > 0).float(), reduction="sum")
        return CorefOutput(loss=loss, scores=scores, top_spans=top_spans, top_indices=top, antecedents=antecedents,
                           antecedent_mask=ante_mask, mention_scores=mention)

    @staticmethod
    def _scores(coarse: torch.Tensor, fine: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """(k, c) coarse + fine, impossible ones NEG, with the dummy column 0 first: (k, c + 1)."""
        s = (coarse + fine.float()).masked_fill(~mask, NEG)
        return torch.cat([torch.zeros_like(s[:, :1]), s], dim=1)


def marginal_log_likelihood_loss(scores: torch.Tensor, cluster_ids: torch.Tensor, antecedents: torch.Tensor,
                                 mask: torch.Tensor) -> torch.Tensor:
    """``sum_i [logsumexp_j s(i, j) - logsumexp_{j gold} s(i, j)]``: ``scores`` (k, c + 1) with
    the dummy first; ``cluster_ids`` (k,) of the top spans (0 = not a mention); antecedents and
    their mask (k, c). Gold antecedents are valid earlier spans of the same cluster; the dummy
    is gold when there is none."""
    ante_ids = cluster_ids[antecedents].masked_fill(~mask, -1)  # (k, c)
    same = (ante_ids == cluster_ids.unsqueeze(1)) & (cluster_ids.unsqueeze(1) > 0)
    gold = torch.cat([~same.any(dim=1, keepdim=True), same], dim=1)  # (k, c + 1)
    gold_scores = scores.masked_fill(~gold, NEG)
    return (torch.logsumexp(scores, dim=1) - torch.logsumexp(gold_scores, dim=1)).sum()


register_auto(BertForCoreference)


def load_coref_model(path: str | os.PathLike, dtype=None, *, trained: bool = False, **fields):
    """``(model, tokenizer)``: a saved coreference model as it is, or any BERT-family folder with
    a fresh head made from ``fields`` (``max_span_width``, ``ffnn_size``, ...).
    ``trained``: the folder must be one fine-tuned for this task (prediction, evaluation)."""
    from spanbert.core.checkpoints import load_head_model

    return load_head_model(path, BertForCoreference, "coreference", dtype=dtype, trained=trained, **fields)


__all__ = ["CorefConfig", "BertForCoreference", "CorefOutput", "distance_bucket", "load_coref_model",
           "marginal_log_likelihood_loss", "non_crossing_top_spans"]
