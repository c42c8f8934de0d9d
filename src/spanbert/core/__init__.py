"""What every part of spanbert shares: one-line errors, atomic writes, data sources, model and
tokenizer folders (checkpoints), run folders, what the training loops share, precision, text splitting,
lazy package faces."""
