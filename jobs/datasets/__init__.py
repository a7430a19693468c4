"""Datasets: uploads (and uploads held for a column choice), server folders, hub imports, and their previews."""
