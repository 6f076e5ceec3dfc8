"""kolm backend plugin: MLX via mlx-lm: Apple Silicon."""
