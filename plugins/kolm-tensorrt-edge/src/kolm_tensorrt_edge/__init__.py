"""kolm backend `tensorrt-edge`: Jetson Orin through NVIDIA TensorRT Edge-LLM."""
