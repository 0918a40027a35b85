"""platform-kit: a self-hosted MLOps kit built from Dolt, MLflow, Docker and GitHub Actions."""

__version__ = "0.1.0"
