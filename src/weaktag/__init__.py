"""weaktag: weakly labeled audio event classification with (self-)supervised attention."""

__version__ = "0.1.0"
