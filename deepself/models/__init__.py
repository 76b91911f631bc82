"""Models: import the families so that they register themselves."""

from deepself.models import (cnn, crnn, fnn, hydra, inception, lite, minirocket, multirocket, panns,  # noqa: F401
                             rnn, vision, yamnet)
from deepself.models.registry import (create_model, hyperparameters, list_models, model_inputs,
                                      summary)

__all__ = ["create_model", "hyperparameters", "list_models", "model_inputs", "summary"]
