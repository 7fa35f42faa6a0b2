"""The EmbBERT model, its tokenizer, training and evaluation (torch lives here and in hil.quant)."""
