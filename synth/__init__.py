"""synth: evolutionary and LLM-driven synthesis of neural-network optimizers."""

__version__ = "0.1.0"
