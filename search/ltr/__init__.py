"""Learned fusion: candidate features, a LightGBM LambdaMART model file with its manifest, and its training."""
