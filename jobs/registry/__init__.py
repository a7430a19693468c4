"""The model registry: model records and their files, imports, promotion, downloads and comparisons."""
