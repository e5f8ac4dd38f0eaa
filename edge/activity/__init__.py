"""Actigraphy on the hub: activity counts from the wrist, each wearer's day, rhythm trends.

Beside the pipeline, one module each (imported where used, so reading the configuration
imports only :mod:`~edge.activity.options`):

- :mod:`~edge.activity.options`: the ``[actigraphy]`` section;
- :mod:`~edge.activity.epochs`: one device's raw acceleration (and light) -> count epochs;
- :mod:`~edge.activity.store`: epochs, days and trend events in the hub's database;
- :mod:`~edge.activity.daily`: a day that has ended -> its row and trend events;
- :mod:`~edge.activity.service`: the daemon's side: taps, the database worker, the daily close;
- :mod:`~edge.activity.report`: what the database holds, read back for people.
"""
