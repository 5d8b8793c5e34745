"""The classifier and everything that makes, stores, calibrates and measures it.

Nothing here reads transcripts or writes annotation outputs; :mod:`disclosure_nlp.io` and the
annotate pipeline do, so the model can be trained, evaluated and loaded on its own.
"""
