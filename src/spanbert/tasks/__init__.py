"""Fine-tuning tasks (qa, classify, relations, ner, summarize, coref) and what they share: the loop, options, span representations."""
