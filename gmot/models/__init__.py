"""Acoustic models of gmot: the Zipformer encoder (:mod:`gmot.models.zipformer`) and the ASR
model built on it."""
