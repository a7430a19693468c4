"""Distillery's ML library: data, training, distillation, evaluation and inference, with no Django.

Submodules are imported explicitly (``from mlcore.data import read_table``) so that the web process can
validate uploads without paying for torch.
"""
