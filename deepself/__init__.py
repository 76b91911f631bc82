"""deepself: classify signals and images end to end, from raw files to a cross-validated UAR report."""

__version__ = "0.1.0"
