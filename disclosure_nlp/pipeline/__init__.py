"""The pieces of ``disclosure annotate``, behind :func:`disclosure_nlp.annotate.annotate`.

* :mod:`.labeling` — :func:`~.labeling.label_conversation` and
  :func:`~.labeling.screen_languages`, shared with the frame, Ray and ConvoKit engines.
"""
