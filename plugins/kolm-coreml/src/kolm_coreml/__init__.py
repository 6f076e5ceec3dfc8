"""kolm backend plugin: Core ML via coremltools: iPhone."""
