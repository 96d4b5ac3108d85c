"""Ready configurations for stores built on well-known e-commerce frameworks."""
