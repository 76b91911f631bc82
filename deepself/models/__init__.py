"""Models: import the families so that they register themselves."""

from deepself.models import cnn, crnn, fnn, minirocket, multirocket, panns, rnn, vision, yamnet  # noqa: F401
from deepself.models.registry import (create_model, hyperparameters, list_models, model_inputs,
                                      summary)

__all__ = ["create_model", "hyperparameters", "list_models", "model_inputs", "summary"]
