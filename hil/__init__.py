"""embbert-hil: put EmbBERT-Q on microcontrollers and prove, with numbers, what it does there."""

__version__ = "0.1.0"
