"""`keras.Model` subclasses that own a training step."""

from kerazoo.models.classifier import Classifier

__all__ = ["Classifier"]
