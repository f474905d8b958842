"""`keras.Model` subclasses that own a training step."""

from kerazoo.models.adaptation import DomainAdapter, SemiSupervised
from kerazoo.models.adco import AdCo
from kerazoo.models.base import OptimizerGroup, TrainingModel
from kerazoo.models.batchformer import BatchFormerClassifier
from kerazoo.models.classifier import Classifier
from kerazoo.models.feature_extractor import FeatureExtractor
from kerazoo.models.git import GITClassifier
from kerazoo.models.lucir import LUCIRLoss, LUCIRModel
from kerazoo.models.munit import MUNIT, MUNITGenerator

__all__ = ["AdCo", "Classifier", "DomainAdapter", "SemiSupervised", "FeatureExtractor", "GITClassifier", "LUCIRLoss", "LUCIRModel", "MUNIT", "MUNITGenerator", "OptimizerGroup", "TrainingModel"]
