"""`keras.Model` subclasses that own a training step."""

from kerazoo.models.adaptation import DomainAdapter, SemiSupervised
from kerazoo.models.base import OptimizerGroup, TrainingModel
from kerazoo.models.batchformer import BatchFormerClassifier
from kerazoo.models.classifier import Classifier
from kerazoo.models.feature_extractor import FeatureExtractor
from kerazoo.models.lucir import LUCIRLoss, LUCIRModel

__all__ = ["Classifier", "DomainAdapter", "SemiSupervised", "FeatureExtractor", "LUCIRLoss", "LUCIRModel", "OptimizerGroup", "TrainingModel"]
