"""HTTP routes, one module per resource; ``api.app`` includes every module's ``router``."""
