"""Sweeps: a grid or a random search of training jobs, launched all or none and ranked by validation accuracy."""
