"""kolm backend plugin: WebAssembly in the browser via wllama (llama.cpp)."""
