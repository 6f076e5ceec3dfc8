"""kolm-tensorrt: NVIDIA GPU exports, quantized by NVIDIA ModelOpt for TensorRT-LLM."""
