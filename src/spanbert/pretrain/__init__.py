"""SpanBERT pre-training: words, span masking, the collator, corpora, tokenizers, the model and its heads, the loop, fill."""
