"""copr_lite: a self-hosted package build service speaking the Copr API v1."""

__version__ = "0.1.0"
