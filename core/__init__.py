"""The numpy kernel under host and hub: contract, recordings, signal processing, config, errors.

Training (``train/``, ``export/``), the hub (``edge/``) and the wearable bridge
(``firmware_bridge/``) stand on this package, so each thing the project computes is computed
once. It imports numpy and the standard library only, never another package of ours: a test
guards that rule (see ``ARCHITECTURE.md``).
"""
