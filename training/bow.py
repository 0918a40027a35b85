"""The servable format the sample trainer writes: the kit's :mod:`platform_kit.servable`.

A trainer that wants its models served by the release image exports them in this format under
the artifact path ``model``; see :mod:`training.intent`.
"""

from platform_kit.servable import FORMAT, MODEL_FILE, WEIGHTS_FILE, BowModel, featurize

__all__ = ["FORMAT", "MODEL_FILE", "WEIGHTS_FILE", "BowModel", "featurize"]
