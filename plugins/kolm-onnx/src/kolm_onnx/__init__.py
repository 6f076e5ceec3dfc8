"""kolm backend plugin: ONNX Runtime via optimum / onnxruntime-genai: Android, Windows on ARM."""
