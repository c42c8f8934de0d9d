"""SpanBERT on PyTorch and Hugging Face transformers 5.

Span masking with a span boundary objective (Joshi et al., TACL 2020): pre-train from
scratch or continue from any BERT checkpoint, fill masked spans, and use the encoder
for span tasks.
"""

__version__ = "0.1.0"
