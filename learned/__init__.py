"""Learned matchers (PyTorch): MC-CNN and GCNet."""
