"""The model bundle a hub runs: a directory (or one ``.tar`` of it) with a manifest.

Layout (stable; ``edge-export`` writes it, the daemon reads it):

    BUNDLE/manifest.json
    BUNDLE/model_fp32.onnx  BUNDLE/model_int8.onnx  BUNDLE/model_fp32.tflite  BUNDLE/model_int8.tflite
    BUNDLE/quant_report.json  BUNDLE/quant_report.md  BUNDLE/plots/*.png   (not needed to run)
    BUNDLE/manifest.sig       (optional Ed25519 signature over manifest.json's bytes)

manifest.json (``schema_version`` 1):
    {"schema_version": 1, "model_id": str, "model_version": str, "created": ISO-8601,
     "git_commit": str|null, "dataset": {...}, "intended_use": str,
     "class_names": [...], "contract": InputContract.to_dict(),
     "calibration_required": bool,
     "files": {"onnx_fp32": {"path", "sha256", "size", "format": "onnx", "precision": "fp32",
               "input": {"name", "shape", "dtype", "scale"?, "zero_point"?},
               "output": {...}}, "onnx_int8": {...}, "tflite_fp32": {...}, "tflite_int8": {...}},
     "recommended": "tflite_int8" | ..., "quantization": {...}, "macs": int, "params": int,
     "metrics": {...}}

API: ``load_bundle(path, *, trusted_keys=()) -> Bundle`` verifies schema and every file's
size and sha256 and raises ``BundleError(path=<file>, reason=...)`` naming the file at fault;
``Bundle.contract``, ``Bundle.class_names``, ``Bundle.files``, ``Bundle.path_of(key)``,
``Bundle.manifest``; ``demo_bundle_path()`` -> the bundle shipped in ``edge/demo_bundle``.
"""
