"""evalflow: eval datasets built from production LLM traces, kept current."""

__version__ = "0.1.0"
