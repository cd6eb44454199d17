"""An AI agent scaffolded by Agent Portal from the python-agent golden path."""

__version__ = "0.1.0"
