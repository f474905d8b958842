"""`keras.Model` subclasses that own a training step."""

from kerazoo.models.classifier import Classifier
from kerazoo.models.lucir import LUCIRModel

__all__ = ["Classifier", "LUCIRModel"]
