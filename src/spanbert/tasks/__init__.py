"""Fine-tuning tasks: the protocol every task plugs into (:mod:`.protocol`: ``Task``, the
registry, ``Predictor``), what is written once on top of it (:mod:`.runner`: fine-tune and
evaluate; :mod:`.commands`: their command-line commands; :mod:`.finetune`: the loop;
:mod:`.arguments` and :mod:`.options`: its settings and shared options), span representations
(:mod:`.span_repr`), and the six tasks, one package each: qa, classify, relations, ner,
summarize, coref."""
