"""The stages of ``disclosure annotate``, behind :func:`disclosure_nlp.annotate.annotate`.

* :mod:`.options` — :class:`~.options.AnnotateOptions` (every option, checked once) and
  :class:`~.options.RunPlan` (the run's files, checked before anything is read);
* :mod:`.labeling` — :func:`~.labeling.label_conversation` and
  :func:`~.labeling.screen_languages`, shared with the frame, Ray and ConvoKit engines;
* :mod:`.stages` — read → label → analyse, each a small object with one job;
* :mod:`.writers` — the write stage: output rows, rejects, the figures side file, and the
  summary and report written from it at the end;
* :mod:`.checkpoint` — what a checkpoint records and whether a run may continue from one;
* :mod:`.runner` — joins the stages window by window and owns checkpoints, resume and progress.
"""
