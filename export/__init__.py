"""Host-side export: ONNX / TFLite (fp32, int8), the model bundle, the quantization report."""
