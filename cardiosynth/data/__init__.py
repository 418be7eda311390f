"""Data: readers for the sources (ACDC) and preparation of fixed-size training cines."""
