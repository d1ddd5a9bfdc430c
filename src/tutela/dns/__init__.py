"""DNS security: the inline sensor, its detectors and the DNS threat models."""
