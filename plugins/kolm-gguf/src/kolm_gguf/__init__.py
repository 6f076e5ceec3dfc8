"""kolm backend plugin: GGUF via llama.cpp (llama-cpp-python, gguf): Raspberry Pi, Jetson, x86,
Steam Deck, Snapdragon, RTX."""
