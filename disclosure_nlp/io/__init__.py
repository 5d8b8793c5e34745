"""Files in and out: transcript readers (one message at a time, errors naming file, line and
field) and the output writers that never leave a half-written file that looks complete.

Kept apart from the model so that a reader or writer can be tested, fuzzed and reused without
loading torch.
"""
