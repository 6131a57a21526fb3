"""certainty stage."""
