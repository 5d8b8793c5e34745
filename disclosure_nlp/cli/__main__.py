"""``python -m disclosure_nlp.cli``: the same as the ``disclosure`` console script."""

from . import main

main()
