"""Per-resident personalization on the hub: a small numpy head on the frozen student's embedding.

One module per job, each imported where it is used (importing this package imports nothing
heavy): :mod:`~edge.personal.head` is the classifier head, its training and the choice
between a resident's own head and the shared one.
"""
