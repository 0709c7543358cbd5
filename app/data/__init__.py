"""Datasets: the bundled Parquet store, imports and point-in-time membership."""
