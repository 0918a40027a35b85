"""MLflow: runs, the model registry and release records."""
