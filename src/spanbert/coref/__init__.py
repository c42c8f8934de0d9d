"""Coreference resolution: CoNLL-2012 reading/writing (:mod:`.conll`), the reference scorer's
metrics (:mod:`.metrics`) and the ``spanbert score coref`` command (:mod:`.cli`)."""
