"""Model code the kit calls: trainers take rows and params, write artifacts, return metrics.

Nothing here knows about MLflow or Dolt.
"""
