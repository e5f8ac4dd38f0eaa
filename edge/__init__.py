"""wearable-edge hub runtime: sensor sources -> windows -> inference engine -> decisions -> sinks.

Needs only numpy, onnxruntime, a TFLite interpreter, pyserial and bleak. Never imports
torch or onnx. Importing this package imports no optional backend.
"""

__version__ = "0.1.0"
