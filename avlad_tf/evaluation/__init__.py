"""Evaluation: scoring a workdir's streams, dense evaluation, score files,
metrics (top-1, Charades mAP / wAP), late fusion and SVM fusion."""
