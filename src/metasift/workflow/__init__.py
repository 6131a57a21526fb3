"""Stage glue between the stage libraries and the store (used by the Review object)."""
