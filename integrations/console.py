"""Console providers (development/demo). Filled in by the providers work."""
