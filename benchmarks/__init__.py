"""Benchmarks of skbilevel against scikit-learn baselines and published results (see README.md here)."""
