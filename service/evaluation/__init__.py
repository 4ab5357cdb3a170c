"""Evaluation with the ArcFace paper's metrics, on the user's data, through the service's
own pipeline: verification accuracy (10-fold), ROC and TAR@FAR, identification CMC."""
