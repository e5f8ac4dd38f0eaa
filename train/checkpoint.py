"""What a training run leaves on disk (``edge-train fit ... --out RUN``), read by ``edge-export``.

Layout (stable; export and the daemon's demo bundle code against it):

    RUN/config.toml            the full config used (after command-line overrides)
    RUN/metrics.json           {"task", "cv", "subjects", "models": {name: {"accuracy",
                               "macro_f1", "macro_precision", "macro_recall", "auc", "ece",
                               "per_class": {cls: {"precision","recall","f1","support"}},
                               "confusion": [[...]], "folds": [...]}}, "student": {"params",
                               "macs"}, "ablation": [...], "notes": [...]}
    RUN/report.md + RUN/plots/*.png
    RUN/student.pt             the deployable student: torch.save of a dict
                               {"model_args": StudentConfig as dict (rebuilds the model alone),
                                "contract": InputContract.to_dict(),
                                "state_dict": ..., "train_subjects": [...],
                                "holdout_subjects": [...], "dataset": {"kind", "path", "sha256"?},
                                "metrics": {...LOSO summary of the student...},
                                "git_commit": str | None, "created": ISO time}
    RUN/teachers/*.pt          the same shape for each teacher (model_args, contract, state_dict)
    RUN/windows/calib.npz      X (N, L) float32 packed windows of TRAINING subjects only (for
                               int8 calibration), y (N,) int
    RUN/windows/heldout.npz    X (M, L), y (M,), start (M,) seconds, subject (M,) str: windows
                               of the held-out subject(s) the deployable student never saw
                               (for export parity and the quantization report)
    RUN/demo_recording.npz     (optional) the held-out subject's wrist recording in
                               ``edge.recording`` .npz form, for the simulator / demo

The deployable student is trained on every subject except ``holdout_subjects`` (default:
the last subject id), after the LOSO evaluation that produced metrics.json.
"""
