"""Long-horizon outputs of the hub: daily rest-activity rhythm, sleep and trends for people.

The measures live in the kernel (:mod:`core.actigraphy`); this package reads and writes epoch
files (:mod:`edge.trends.csvio`), draws the last weeks (:mod:`edge.trends.plot`, host only)
and is the ``edge-trends`` command (:mod:`edge.trends.cli`).
"""
