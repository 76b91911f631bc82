"""Models: import the families so that they register themselves."""

from deepself.models import cnn, fnn  # noqa: F401
from deepself.models.registry import create_model, list_models, model_inputs, summary

__all__ = ["create_model", "list_models", "model_inputs", "summary"]
