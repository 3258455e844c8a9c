"""Built-in builder plugins, shipped with copr_lite and loaded by path."""
