"""Task pipelines: data loading, features and metrics for audio, trajectory and SOC."""
